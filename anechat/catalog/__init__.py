"""The model catalog: what models are on this machine, in what format, runnable by which engine.

    from anechat.catalog import list_models, resolve_model
    entry = resolve_model("smollm2-135m-instruct")   # or a path, a repo id, "default"
    folder = entry.ensure_local()                    # its folder (the built-in GGUF: see anechat.convert.default_model)
    choice = resolve_variant("smollm2-135m-instruct", "coreml")   # -m NAME -e ENGINE: the model's variant for it
"""

from anechat.catalog.entry import ModelEntry
from anechat.catalog.remove import ModelInUse, remove_model
from anechat.catalog.resolve import CatalogScan, entry_for_path, list_models, lookup_model, resolve_model, scan_catalog
from anechat.catalog.sources import hf_cache_dir
from anechat.catalog.variants import ModelGroup, VariantChoice, group_models, resolve_variant

__all__ = [
    "CatalogScan",
    "ModelEntry",
    "ModelGroup",
    "ModelInUse",
    "entry_for_path",
    "group_models",
    "hf_cache_dir",
    "list_models",
    "lookup_model",
    "remove_model",
    "resolve_model",
    "resolve_variant",
    "scan_catalog",
    "VariantChoice",
]
