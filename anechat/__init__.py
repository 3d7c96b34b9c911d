"""anechat: a terminal chat app and model manager for local LLMs (Core ML on the ANE vs MLX)."""

__version__ = "0.1.0"
