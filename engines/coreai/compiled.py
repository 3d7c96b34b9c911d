"""The compiled cache of an asset: the one place that uses coreai's private compile step.

On Linux ``AIModelAsset.executable()`` compiles the asset into a temporary directory on
every load (seconds); the same compile written once into the model folder loads in
milliseconds with the public ``AIModel.load(dir)``. Only the private
``AIModelAsset._write_odix(dir)`` writes it; if a coreai release renames it,
:func:`write_compiled` raises and ``tests/engines/test_coreai_convert.py`` fails loudly,
and loading falls back to compiling per load (slow, still correct).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from anechat.engines.errors import BackendUnavailable


def can_write_compiled() -> bool:
    from coreai.authoring import AIModelAsset

    return callable(getattr(AIModelAsset, "_write_odix", None))


def write_compiled(asset_dir: Path, out_dir: Path) -> None:
    """Compile the asset at ``asset_dir`` into ``out_dir`` (replaced whole)."""
    from coreai.authoring import AIModelAsset

    if not can_write_compiled():
        raise BackendUnavailable("this coreai-core has no AIModelAsset._write_odix: the compiled cache cannot be written")
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        AIModelAsset.load(Path(asset_dir))._write_odix(tmp)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_compiled(out_dir: Path) -> bool:
    return (Path(out_dir) / "main-universal.odix").is_file()
