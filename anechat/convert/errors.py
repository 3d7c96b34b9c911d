"""Errors a conversion raises on purpose (MLX conversion, Core ML conversion, GGUF import).

They derive from the one root, :class:`anechat.engines.errors.AnechatError`, not from
the engine errors: a conversion that fails ran no engine. A source that is not a
model anechat can read still raises the engine layer's ``ModelFormatError``.
"""

from __future__ import annotations

from anechat.engines.errors import AnechatError


class ConversionError(AnechatError):
    """Base of every conversion error."""

    kind = "conversion_failed"


class ConversionFailed(ConversionError):
    """The conversion (or its child process) stopped without a model."""

    kind = "conversion_failed"


class ConversionCancelled(ConversionError):
    kind = "cancelled"


class TargetExists(ConversionError):
    """The output folder is already there; nothing of the person's is overwritten."""

    kind = "target_exists"


class ImportTargetExists(TargetExists):
    """The output folder of a GGUF import is already there (and is not to be replaced)."""
