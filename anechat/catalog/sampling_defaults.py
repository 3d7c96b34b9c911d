"""A model folder's own sampling defaults (``generation_config.json``), applied when the
model is loaded in the app and shown in its parameters dialog."""

from __future__ import annotations

import json
from pathlib import Path

from anechat.engines.base import SamplingParams
from anechat.engines.errors import InvalidParameter

#: the repetition penalty a model gets when its folder does not set one: greedy decoding
#: of a small model otherwise repeats one paragraph until max_tokens
MILD_REPETITION_PENALTY = 1.1
#: generation_config.json keys read as sampling defaults (the folder is untrusted: each
#: value is checked, a bad one is skipped)
_GENERATION_CONFIG_KEYS = {"temperature": float, "top_p": float, "top_k": int, "min_p": float, "repetition_penalty": float}
_GENERATION_CONFIG_MAX_BYTES = 1 << 20


def model_sampling_defaults(folder: Path | str, base: SamplingParams | None = None) -> tuple[SamplingParams, str]:
    """The model's own sampling defaults over ``base`` (its max_tokens and seed are kept),
    and where they came from, in words.

    From the folder's ``generation_config.json`` (as Hugging Face writes it: ``do_sample``
    false means greedy) where it sets them; a repetition penalty it does not set is
    :data:`MILD_REPETITION_PENALTY`.
    """
    base = base or SamplingParams()
    path = Path(folder) / "generation_config.json"
    data: dict = {}
    try:
        if path.is_file() and path.stat().st_size <= _GENERATION_CONFIG_MAX_BYTES:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            data = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        data = {}
    taken: dict[str, object] = {}
    for key, kind in _GENERATION_CONFIG_KEYS.items():
        value = data.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                base.with_(**{key: kind(value)}).validate()
            except (InvalidParameter, ValueError, OverflowError):
                continue
            taken[key] = kind(value)
    if data.get("do_sample") is False:
        taken["temperature"] = 0.0  # greedy, whatever temperature it names
    source = f"{path.name}: {', '.join(taken)}" if taken else ""
    if "repetition_penalty" not in taken:
        taken["repetition_penalty"] = MILD_REPETITION_PENALTY
        source += ("; " if source else "") + f"repetition penalty {MILD_REPETITION_PENALTY} (anechat's default)"
    return base.with_(**taken), source
