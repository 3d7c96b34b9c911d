"""The MLX engine as rank 0 of a distributed session (``--hosts`` / ``--hostfile``).

To the app it is the MLX engine: ``load`` returns a session on the shared turn
driver, ``memory()`` a report, ``unload`` frees the model. Underneath, the first
load starts the other ranks (:mod:`.launch`) after checking every host has the
model (:mod:`.probe`), joins the ring, and each load sends every rank the model
to take its part of (:mod:`.loading`). ``mx.distributed`` joins one ring per
process, so the ranks live until this process ends (QUIT at exit) and later
loads reuse them.

When a rank is lost the turn ends with one line (:class:`~.link.RanksDown`)
saying which rank and how, the other ranks are ended, and the next ``load``
runs the model in this process alone when it fits this machine's memory.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import time
from pathlib import Path

from anechat.engines.base import Availability, MemoryReport
from anechat.engines.errors import InvalidParameter, OutOfMemory
from anechat.engines.mlx.engine import MLXEngine, MLXSession
from anechat.engines.mlx.runtime import availability, generation_stream, runtime_label
from anechat.engines.mlx.distributed.hosts import RankPlan
from anechat.engines.mlx.distributed.link import MEMORY, QUIT, UNLOAD, Link, Message, RanksDown

#: how long the ranks may take to join the ring (imports and ssh included)
START_TIMEOUT_S = float(os.environ.get("ANECHAT_RANKS_START_TIMEOUT_S", "120"))


class DistributedMLXEngine(MLXEngine):
    name = "mlx"
    label = "MLX"

    def __init__(self, plan: RankPlan) -> None:
        super().__init__()
        self.plan = plan
        self.link: Link | None = None
        self.followers = None
        self.down: str | None = None  # why the ranks are gone (then loads run in this process)
        self._ranks_memory: list[dict] = []

    def available(self) -> Availability:  # type: ignore[override]  # per instance: says how many ranks
        avail = availability()
        if not avail.ok:
            return avail
        label = f"{self.plan.label()} · {runtime_label()}" if self.down is None else runtime_label()
        return Availability(True, avail.reason, runtime=label)

    # -- ranks --------------------------------------------------------------------
    def _ranks(self, path: Path) -> Link:
        """The link to the other ranks, starting them on the first load."""
        self._check_hosts(path)
        if self.link is not None:
            return self.link
        from anechat.engines.mlx.distributed.launch import Followers

        ring = self.plan.ring()
        self.followers = Followers(self.plan, ring)
        atexit.register(self.shutdown)
        fd, ring_file = tempfile.mkstemp(prefix="anechat-ring-", suffix=".json")
        with os.fdopen(fd, "w") as fh:
            json.dump(ring, fh)
        os.environ["MLX_RANK"], os.environ["MLX_HOSTFILE"] = "0", ring_file
        try:
            group = self._join(self.followers)
        finally:
            os.unlink(ring_file)
        self.link = Link(group, generation_stream())
        self.link.explain = self._explain
        return self.link

    def _join(self, followers):
        """``mx.distributed.init`` once every follower said it is joining.

        MLX's ring init waits for its peers for ever, holding the interpreter, so the
        wait for the followers (bounded, and cut short when mlx.launch reports a rank
        that ended) happens before it, here.
        """
        import mlx.core as mx

        deadline = time.monotonic() + START_TIMEOUT_S
        while followers.joining() < self.plan.size - 1:
            if followers.exited() is not None:
                why = followers.what_failed()
                break
            if time.monotonic() > deadline:
                why = f"not every rank started within {START_TIMEOUT_S:.0f} s ({followers.what_failed(0)})"
                break
            time.sleep(0.05)
        else:
            group = mx.distributed.init(backend="ring", strict=True)
            if group.size() == self.plan.size:
                return group
            why = f"the ring has {group.size()} ranks instead of {self.plan.size}"
        self._end_ranks(f"the other ranks did not start: {why}")
        raise RanksDown(self.down, hint="check the hosts with `anechat doctor --hosts ...`, or leave out --hosts to run in this process alone")

    def _check_hosts(self, path: Path) -> None:
        """Every remote host must hold the same model files as this one (local ranks share them)."""
        from anechat.engines.mlx.distributed.probe import ask, model_difference, model_manifest

        remote = [h for h in self.plan.hosts[1:] if not h.local]
        if not remote:
            return
        mine = model_manifest(path)
        problems = []
        for host in remote:
            answer = ask(host.ssh, path, local=False)
            if answer.facts is None:
                problems.append(f"{host.ssh}: {answer.error}")
            elif (diff := model_difference(mine, answer.facts.get("model", {"missing": "no answer about the model"}))):
                problems.append(f"{host.ssh}: {diff}")
        if problems:
            raise InvalidParameter(
                f"not every host has {path.name}: " + "; ".join(problems),
                hint=f"copy the model folder to the same path ({path}) on every host",
            )

    def _end_ranks(self, why: str) -> None:
        self.down = why
        if self.followers is not None:
            self.followers.stop(grace_s=0.5)

    def shutdown(self) -> None:
        """End the other ranks (QUIT, then whatever is left). Called at exit."""
        followers, self.followers = self.followers, None
        if followers is None:
            return
        if self.link is not None and not self.link.broken:
            try:
                self.link.send(Message(QUIT))
            except RanksDown:
                pass
        followers.stop()

    def _fallback_hint(self, path: Path | None) -> str:
        if path is not None and not self._fits_here(path):
            return "the conversation is kept; the model does not fit this machine alone: restart with --hosts once every host is up"
        fits = "the model fits this machine: " if path is not None else ""
        return f"the conversation is kept; {fits}load the model again to go on in this process alone"

    @staticmethod
    def _fits_here(path: Path) -> bool:
        import psutil

        weights = sum(f.stat().st_size for f in Path(path).glob("*.safetensors"))
        return weights * 2 < psutil.virtual_memory().available

    # -- the engine -----------------------------------------------------------------
    def load(self, path: Path | str, *, context_length: int | None = None) -> MLXSession:
        if self.down is not None:  # ranks lost: this process alone
            return super().load(path, context_length=context_length)
        from anechat.engines.mlx.distributed.loading import load_rank
        from anechat.engines.mlx.loader import check_folder

        self.unload()
        folder = check_folder(path).resolve()
        link = self._ranks(folder)
        message = link.send(Message.load(str(folder), self.plan.shard, context_length))
        session = load_rank(link, message)
        session.info.extra["ranks"] = self.plan.size
        session.info.extra["shard"] = self.plan.shard
        session.info.extra["runtime"] = self.available().runtime
        self._session = session
        session.memory_probe = self.snapshot_memory
        self.snapshot_memory()
        return session

    def _explain(self, exc: BaseException) -> RanksDown:
        """A peer was lost: say which rank and how, end the others, offer this process alone."""
        if self.down is None:
            why = self.followers.what_failed() if self.followers is not None else str(exc)
            self._end_ranks(why)
        session = self._session
        path = session.info.path if session is not None else None
        error = RanksDown(f"the distributed session stopped: {self.down}", hint=self._fallback_hint(path))
        if self.link is not None:
            self.link.broken = str(error)
        return error

    def open_session(self):
        if self.down is None:
            return None  # one conversation drives the ranks
        return super().open_session()

    def unload(self) -> None:
        had = self._session is not None
        super().unload()
        if had and self.link is not None and not self.link.broken and self.down is None:
            try:
                self.link.send(Message(UNLOAD))
            except RanksDown:
                pass

    def measure_memory(self) -> MemoryReport:
        report = super().measure_memory()
        session = self._session
        link = self.link
        if session is None or link is None or self.down is not None or not hasattr(session, "memory_row"):
            return report
        mine = session.memory_row()
        if not session.in_turn and not link.broken:
            try:
                link.send(Message(MEMORY))
                self._ranks_memory = link.gather_memory(mine)
            except RanksDown:
                pass
        ranks = [dict(r) for r in self._ranks_memory] or [mine]
        ranks[0] = mine
        for rank, row in enumerate(ranks):
            row["host"] = self.plan.hosts[rank].ssh if rank < self.plan.size else "?"
        return MemoryReport(
            model_bytes=report.model_bytes,
            active_bytes=report.active_bytes,
            peak_bytes=report.peak_bytes,
            cache_bytes=report.cache_bytes,
            details=dict(report.details, ranks=ranks, shard=self.plan.shard),
        )
