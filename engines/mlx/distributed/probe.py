"""What a host has: Python, anechat and MLX versions, and a model folder's files.

Before the ranks start, every host's copy of the model is compared with rank 0's
(each file's size, the sha256 of config.json), so a missing or different copy is
named per host instead of failing mid-load. ``anechat doctor --hosts`` shows the
same facts. A real host is asked by ssh running this module
(``python -m anechat.engines.mlx.distributed.probe [MODEL]``, one JSON line out);
``127.0.0.1`` is this machine and is read in-process.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: how long one host may take to answer (ssh connect included)
PROBE_TIMEOUT_S = 15.0
_MODEL_FILES = ("*.json", "*.safetensors", "tokenizer.model", "*.tiktoken", "*.jinja")


def model_manifest(folder: str | Path) -> dict:
    """``{"files": {name: size}, "config_sha256": ...}``, or ``{"missing": why}``."""
    path = Path(folder).expanduser()
    if not (path / "config.json").is_file():
        return {"missing": f"no model at {path}" if not path.exists() else f"{path} has no config.json"}
    files = {}
    for pattern in _MODEL_FILES:
        for f in path.glob(pattern):
            if f.is_file():
                files[f.name] = f.stat().st_size
    return {"files": dict(sorted(files.items())), "config_sha256": hashlib.sha256((path / "config.json").read_bytes()).hexdigest()}


def host_facts(model: str | Path | None = None) -> dict:
    """This machine's answer to a probe."""
    from anechat import __version__

    facts = {"python": platform.python_version(), "anechat": __version__, "platform": sys.platform}
    try:
        import mlx.core as mx

        facts["mlx"] = mx.__version__
    except ImportError as exc:
        facts["mlx"] = None
        facts["mlx_error"] = str(exc)
    if model is not None:
        facts["model"] = model_manifest(model)
    return facts


@dataclass(frozen=True)
class Answer:
    host: str
    facts: dict | None  # None: the host did not answer
    error: str = ""


def ask(host: str, model: str | Path | None, *, local: bool, python: str | None = None) -> Answer:
    """Probe one host: in-process for 127.0.0.1, by ssh otherwise (bounded in time)."""
    if local:
        return Answer(host, host_facts(model))
    command = [python or sys.executable, "-P", "-m", __name__] + ([str(model)] if model is not None else [])
    ssh = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(PROBE_TIMEOUT_S)}", host, shlex.join(command)]
    try:
        out = subprocess.run(ssh, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S + 5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Answer(host, None, f"not reachable by ssh ({type(exc).__name__})")
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit code {out.returncode}"])[-1]
        return Answer(host, None, f"not reachable or no anechat there ({last[:200]})")
    try:
        return Answer(host, json.loads(out.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return Answer(host, None, "answered something that is not a probe result")


def model_difference(mine: dict, theirs: dict) -> str:
    """'' when ``theirs`` holds the same model files as ``mine``, else what it lacks, in one line."""
    if "missing" in theirs:
        return theirs["missing"]
    missing = sorted(set(mine["files"]) - set(theirs["files"]))
    if missing:
        return "lacks " + ", ".join(missing)
    differ = sorted(n for n, size in mine["files"].items() if theirs["files"].get(n) != size)
    if differ:
        return "has different sizes for " + ", ".join(differ)
    if mine["config_sha256"] != theirs["config_sha256"]:
        return "has a different config.json"
    return ""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    print(json.dumps(host_facts(args[0] if args else None)))


if __name__ == "__main__":
    main()
