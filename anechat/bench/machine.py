"""The machine record stored with every benchmark figure: figures from two machines
(or two BLAS libraries) are only comparable when this says what each ran on."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

PACKAGES = ("anechat", "mlx", "mlx-lm", "coremltools", "numpy", "torch")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions; None for a package that is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def memory_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:
        return None


def engine_runtimes() -> dict[str, str]:
    """Each engine's runtime label ("MLX on CPU (OpenBLAS)", "MIL on CPU", …) or why it cannot run."""
    from anechat.doctor import engine_runtimes as runtimes

    return {name: line if ok else f"not available: {line}" for name, (ok, line) in runtimes().items()}


def machine_record() -> dict:
    """OS, chip, memory, Python, package versions, BLAS (Linux), engine runtimes incl. Core ML's."""
    from anechat.blas import blas_in_use
    from anechat.doctor import chip, os_line

    runtimes = engine_runtimes()
    return {
        "os": os_line(),
        "platform": sys.platform,
        "machine": platform.machine(),
        "chip": chip(),
        "memory_bytes": memory_bytes(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "blas": blas_in_use(),
        "coreml_runtime": runtimes.get("coreml", ""),
        "engine_runtimes": runtimes,
    }
