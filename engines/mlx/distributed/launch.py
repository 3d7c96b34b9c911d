"""The follower ranks, started by ``mlx.launch`` and watched from rank 0.

This process is rank 0 and keeps the terminal; ``mlx.launch`` (ring backend)
starts ranks 1.. from a host file listing only them — ssh on real hosts, local
processes for ``127.0.0.1`` — each running :mod:`.follower`, which takes its place
in the full ring (``ANECHAT_RING``: every rank's address; its mlx.launch rank + 1).
mlx.launch's output (the followers' too) goes to a log file, whose last lines
explain a rank that failed. That file and the host file live in a temporary folder
named after rank 0's process id; a rank 0 that was killed before it could remove
its folder has it removed by the next one (:func:`remove_stale_folders`). mlx.launch stops every rank when one of them fails;
:meth:`Followers.stop` ends whatever is left, local process group and ssh sessions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anechat.engines.files import pid_alive
from anechat.engines.mlx.distributed.hosts import RankPlan

_LAUNCH = "from mlx._distributed_utils.launch import main; main()"
FOLLOWER_MODULE = "anechat.engines.mlx.distributed.follower"
#: what a follower prints just before it joins the ring
JOINING = "anechat rank joining"
_FOLDER_PREFIX = "anechat-ranks-"
_NODE_EXIT = re.compile(r"Node with rank (\d+) (exited with code (-?\d+)|was killed)")


class Followers:
    """``mlx.launch`` running ranks 1.. of ``plan``."""

    def __init__(self, plan: RankPlan, ring: list[list[str]]) -> None:
        self.plan = plan
        remove_stale_folders()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-"))
        self.log_path = self.folder / "ranks.log"
        hostfile = self.folder / "hostfile.json"
        hostfile.write_text(json.dumps(plan.hostfile()))
        command = [
            sys.executable, "-P", "-c", _LAUNCH,
            "--hostfile", str(hostfile), "--backend", "ring",
            "--env", f"ANECHAT_RING={json.dumps(ring)}",
            "--", sys.executable, "-P", "-m", FOLLOWER_MODULE,
        ]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "wb") as log:
            # stdin: a pipe kept open (mlx.launch copies its stdin to every rank and
            # spins on end-of-file); a session of its own, so stop() ends its group
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    def exited(self) -> int | None:
        return self.process.poll()

    def joining(self) -> int:
        """How many followers said they are joining the ring (:data:`JOINING` lines in the log)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        return len(set(re.findall(JOINING + r" (\d+)", text)))

    def log_tail(self, lines: int = 20) -> list[str]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        clean = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in text.splitlines()]
        return [line for line in clean if line][-lines:]

    def what_failed(self, wait_s: float = 1.0) -> str:
        """Which rank ended and how (from mlx.launch's own report), else the log's last line."""
        deadline = time.monotonic() + wait_s
        while True:
            tail = self.log_tail(40)
            for line in tail:
                m = _NODE_EXIT.search(line)
                if m and m.group(3) != "0":
                    rank = int(m.group(1)) + 1
                    host = self.plan.hosts[rank].ssh if rank < self.plan.size else "?"
                    how = f"exited with code {m.group(3)}" if m.group(3) else "was killed"
                    return f"rank {rank} ({host}) {how}"
            if time.monotonic() >= deadline:
                errors = [line for line in tail if "rror" in line or "anechat:" in line]
                return (errors or tail or ["no rank said why"])[-1][:300]
            time.sleep(0.1)

    def stop(self, grace_s: float = 5.0) -> None:
        """Wait up to ``grace_s`` for the ranks to end, then end them (never raises)."""
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait(timeout=3)
        finally:
            self._signal(signal.SIGKILL)  # local ranks left in the group, if any
            if self.process.stdin is not None:
                try:
                    self.process.stdin.close()
                except OSError:
                    pass
            shutil.rmtree(self.folder, ignore_errors=True)

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def remove_stale_folders(parent: str | Path | None = None) -> list[Path]:
    """Remove the ranks' folders whose rank 0 process is gone; returns what was removed."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(_FOLDER_PREFIX + "*"):
        owner = folder.name[len(_FOLDER_PREFIX) :].split("-", 1)[0]
        if folder.is_dir() and owner.isdigit() and not pid_alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
