"""Core ML converter: a float llama-family model folder -> an ANEMLL-layout folder of
``.mlpackage`` parts (embeddings, FFN chunks with ``infer`` + ``prefill``, split LM head)."""

from .options import CoreMLConvertOptions
from .pipeline import convert_to_coreml
from .source import SUPPORTED_ARCHITECTURES

__all__ = ["CoreMLConvertOptions", "SUPPORTED_ARCHITECTURES", "convert_to_coreml"]
