"""Tiny llama conversions to Core AI, shared by the coreai test modules (imported by plain name)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: context 128 with batches of 16: a 50-token prompt prefills in several batches
TINY_COREAI = dict(context_length=128, batch_size=16)


def convert_tiny(src: Path, out: Path, events: list | None = None, **options) -> Path:
    pytest.importorskip("coreai_torch")
    from anechat.engines.coreai.convert import CoreAIConvertOptions, convert_to_coreai

    sink = events if events is not None else []
    return convert_to_coreai(src, out, CoreAIConvertOptions(**{**TINY_COREAI, **options}), lambda m, f: sink.append((m, f)))
