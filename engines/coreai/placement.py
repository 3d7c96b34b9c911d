"""Where Core AI runs a model, and the honest label for it.

On Linux (and on a Mac without the OS framework) the in-package runtime runs on the CPU:
``SpecializationOptions`` is macOS-only (``is_supported()`` is False, ``cpu_only()``
raises). On macOS 27 with the OS framework the model is specialised with the Neural Engine
as the preferred compute unit. That branch is written against the documented API and is
UNTESTED on this build (no Mac here); ``anechat doctor`` says so.
"""

from __future__ import annotations

CPU_LABEL = "Apple Core AI runtime on CPU"
NEURAL_ENGINE_LABEL = "Apple Core AI, Neural Engine preferred"
UNTESTED_NOTE = "the macOS placement (Neural Engine preferred) is untested on this build"


def specialization():
    """``SpecializationOptions`` preferring the Neural Engine, or None where the runtime cannot specialise."""
    from coreai.runtime._specialization_options import SpecializationOptions

    if not SpecializationOptions.is_supported():
        return None
    from coreai.runtime import ComputeUnitKind  # macOS only

    return SpecializationOptions.from_preferred_compute_unit_kind(ComputeUnitKind.neural_engine())


def runtime_label() -> str:
    try:
        from coreai.runtime._specialization_options import SpecializationOptions

        return NEURAL_ENGINE_LABEL if SpecializationOptions.is_supported() else CPU_LABEL
    except Exception:
        return CPU_LABEL


def doctor_line() -> str:
    """``anechat doctor``'s Core AI row: runtime version, platform, where it runs, what is untested."""
    import platform
    from importlib import metadata

    try:
        version = metadata.version("coreai-core")
    except metadata.PackageNotFoundError:
        return 'not installed — pip install "anechat[coreai]"'
    where = f"{platform.system()} {platform.machine()}"
    if runtime_label() == CPU_LABEL:
        return f"coreai-core {version} on {where}: {CPU_LABEL} (no Neural Engine here); {UNTESTED_NOTE}"
    return f"coreai-core {version} on {where}: {NEURAL_ENGINE_LABEL} — {UNTESTED_NOTE}"
