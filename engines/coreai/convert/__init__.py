"""The Core AI converter: a llama-family folder -> a ``.aimodel`` model folder (see :mod:`.to_coreai`)."""

from anechat.engines.coreai.convert.options import COMPRESSIONS, DTYPES, CoreAIConvertOptions
from anechat.engines.coreai.convert.to_coreai import convert_to_coreai

__all__ = ["COMPRESSIONS", "DTYPES", "CoreAIConvertOptions", "convert_to_coreai"]
