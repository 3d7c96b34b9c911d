"""Which model an engine switch loads: the same one, or its conversion for that engine."""

from __future__ import annotations

from pathlib import Path

from anechat.catalog import ModelEntry
from anechat.tui.switching import base_name, no_target_hint, switch_target


def entry(name: str, *engines: str) -> ModelEntry:
    return ModelEntry(name=name, path=Path("/models") / name, source="anechat", format="hf", engines=engines)


CATALOG = [
    entry("tiny-llama", "mlx"),
    entry("tiny-llama-coreml-ctx512-lut6", "coreml"),
    entry("tiny-llama-coreml-ctx256-fp16", "coreml"),
    entry("other-model", "mlx"),
]


def test_base_name_strips_the_conversion_suffix_only():
    assert base_name("tiny-llama-coreml-ctx512-lut6") == "tiny-llama"
    assert base_name("qwen-mlx-4bit") == "qwen"
    assert base_name("mlxfoo") == "mlxfoo" and base_name("a-mlxish") == "a-mlxish"


def test_the_same_model_is_kept_when_the_new_engine_runs_it():
    both = [entry("m", "mlx", "coreml")]
    assert switch_target("m", "/models/m", "coreml", both).name == "m"


def test_a_conversion_of_the_same_model_is_found_both_ways():
    assert switch_target("tiny-llama", "/models/tiny-llama", "coreml", CATALOG).name == "tiny-llama-coreml-ctx256-fp16"
    back = switch_target("tiny-llama-coreml-ctx512-lut6", "/models/tiny-llama-coreml-ctx512-lut6", "mlx", CATALOG)
    assert back.name == "tiny-llama"


def test_no_conversion_means_none_and_a_hint_to_convert():
    assert switch_target("other-model", "/models/other-model", "coreml", CATALOG) is None
    assert no_target_hint("other-model", "coreml") == (
        "no Core ML version of other-model here: convert it with anechat convert other-model --to coreml"
    )
