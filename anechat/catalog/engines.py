"""The engines anechat knows and whether each runs here: what the UI asks of the engine
layer's registry, without importing an engine's insides."""

from __future__ import annotations

from anechat.engines.base import Availability
from anechat.engines.registry import ENGINE_NAMES, availability as _availability

__all__ = ["ENGINE_NAMES", "engine_availability"]


def engine_availability(name: str) -> Availability:
    """Whether engine ``name`` runs on this machine, with the reason when it does not."""
    return _availability(name)
