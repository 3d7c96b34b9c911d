"""What this machine is and what anechat can run on it: the rows of `anechat doctor`
and the machine facts a benchmark record keeps (:mod:`anechat.bench.machine`)."""

from __future__ import annotations

import platform
import subprocess
import sys


def chip() -> str:
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=2)
            if out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def os_line() -> str:
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]} ({platform.machine()})"
    return f"{platform.system()} {platform.release()} ({platform.machine()})"


def engine_runtimes() -> dict[str, tuple[bool, str]]:
    """Each engine: (available, its runtime label such as "MLX on CPU (OpenBLAS)", or why it cannot run)."""
    from anechat.engines.registry import ENGINE_NAMES, availability

    out = {}
    for name in ENGINE_NAMES:
        avail = availability(name)
        out[name] = (avail.ok, (avail.runtime or avail.reason) if avail.ok else avail.reason)
    return out


def report() -> list[tuple[str, str]]:
    """(label, value) rows; every value is one line."""
    import psutil

    from anechat.blas import blas_in_use
    from anechat.config import load_config
    from anechat.paths import config_file, data_dir, models_dir

    rows = [
        ("OS", os_line()),
        ("chip", chip()),
        ("memory", f"{psutil.virtual_memory().total / 2**30:.1f} GiB"),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
    ]
    for name, (ok, line) in engine_runtimes().items():
        rows.append((f"engine {name}", f"available — {line}" if ok else f"not available — {line}"))
    from anechat.engines.coreai.placement import doctor_line

    rows.append(("Core AI", doctor_line()))
    rows.append(("BLAS", blas_in_use()))
    rows.append(("default model", _default_model_line()))
    rows.append(("models folder", str(models_dir())))
    rows.append(("data folder", str(data_dir())))
    settings = load_config()
    rows.append(("config file", str(config_file()) + (f" — {settings.warning}" if settings.warning else "")))
    return rows


def _default_model_line() -> str:
    from anechat.catalog.default_model import DEFAULT_MODEL_NAME, default_gguf_problem, default_model_dir, default_model_ready

    if default_model_ready():
        return f"{DEFAULT_MODEL_NAME}: ready in {default_model_dir()}"
    problem = default_gguf_problem()
    if problem:
        return f"{DEFAULT_MODEL_NAME}: missing — {problem}"
    return f"{DEFAULT_MODEL_NAME}: shipped as GGUF, converted on first use"


def hosts_report(plan, model: str | None) -> list[tuple[str, str]]:
    """`anechat doctor --hosts`: each host reachable or not, its Python, anechat and MLX
    versions (marked when they differ from this machine's), and whether it holds the same
    files of the model (the given one, else the built-in one once converted)."""
    from anechat.engines.mlx.distributed.probe import ask, host_facts, model_difference

    folder = _mlx_folder(model)
    mine = host_facts(folder)
    rows = []
    for rank, host in enumerate(plan.hosts):
        answer = ask(host.ssh, folder, local=host.local)
        label = f"rank {rank} {host.ssh}"
        if answer.facts is None:
            rows.append((label, answer.error))
            continue
        facts = answer.facts
        parts = ["reachable" if not host.local else "this machine"]
        for key, name in (("python", "Python"), ("anechat", "anechat"), ("mlx", "mlx")):
            value = facts.get(key) or "missing"
            parts.append(f"{name} {value}" + ("" if value == mine.get(key) else f" (here: {mine.get(key)})"))
        if folder is not None:
            diff = model_difference(mine["model"], facts.get("model", {"missing": "no answer"})) if "files" in mine["model"] else mine["model"]["missing"]
            parts.append(f"model {folder.name}: " + (diff or "same files"))
        rows.append((label, " · ".join(parts)))
    return rows


def _mlx_folder(model: str | None):
    """The MLX folder of ``model`` (a path or a catalog name) if it is on disk, else None."""
    from pathlib import Path

    if model is not None and Path(model).expanduser().is_dir():
        return Path(model).expanduser().resolve()
    from anechat.catalog.variants import resolve_variant

    try:
        entry = resolve_variant(model, "mlx").entry
    except Exception:  # an unknown name: the rows say nothing about a model
        return None
    path = getattr(entry, "path", None)
    return Path(path) if path is not None and Path(path).is_dir() else None
