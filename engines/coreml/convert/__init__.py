"""Core ML converter: a float model folder (Llama, Qwen 2.5, Qwen 3, Gemma 3) -> an ANEMLL-layout folder of
``.mlpackage`` parts (embeddings, FFN chunks with ``infer`` + ``prefill``, split LM head)."""

from anechat.engines.coreml.convert.options import CoreMLConvertOptions
from anechat.engines.coreml.convert.to_coreml import convert_to_coreml
from anechat.engines.coreml.convert.source import SUPPORTED_ARCHITECTURES

__all__ = ["CoreMLConvertOptions", "SUPPORTED_ARCHITECTURES", "convert_to_coreml"]
