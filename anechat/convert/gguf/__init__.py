"""Import llama and Gemma 3 GGUF files (llama.cpp's format) as MLX / Hugging Face folders.

    from anechat.convert.gguf import import_gguf
    import_gguf("model.Q4_1.gguf", "models/my-model", progress=lambda step, frac: ...)

The folder holds config.json, a float32 model.safetensors, tokenizer.json,
tokenizer_config.json (with the chat template) and generation_config.json, and
loads with mlx-lm and with anechat's ChatTokenizer.
"""

from anechat.catalog.import_marker import IMPORTER_VERSION, is_current_import
from anechat.convert.errors import ImportTargetExists
from anechat.convert.gguf.importer import Progress, ensure_imported, import_gguf

__all__ = [
    "IMPORTER_VERSION",
    "ImportTargetExists",
    "Progress",
    "ensure_imported",
    "import_gguf",
    "is_current_import",
]
