"""The model catalog: what models are on this machine, in what format, runnable by which engine.

    from anechat.catalog import list_models, resolve_model
    entry = resolve_model("smollm2-135m-instruct")   # or a path, a repo id, "default"
    folder = entry.ensure_local()                    # its folder (the built-in GGUF: see anechat.convert.default_model)
"""

from anechat.catalog.entry import ModelEntry
from anechat.catalog.remove import ModelInUse, remove_model
from anechat.catalog.resolve import CatalogScan, entry_for_path, list_models, lookup_model, resolve_model, scan_catalog
from anechat.catalog.sources import hf_cache_dir

__all__ = [
    "CatalogScan",
    "ModelEntry",
    "ModelInUse",
    "entry_for_path",
    "hf_cache_dir",
    "list_models",
    "lookup_model",
    "remove_model",
    "resolve_model",
    "scan_catalog",
]
