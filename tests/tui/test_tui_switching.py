"""Which model an engine switch loads: the same one, or its variant for that engine (found
through the origin each conversion records; legacy folders by their names)."""

from __future__ import annotations

from pathlib import Path

from anechat.catalog import ModelEntry
from anechat.catalog.provenance import Origin
from anechat.tui.switching import no_target_hint, switch_target


def entry(name: str, *engines: str, made_from: str | None = None, quantization: str = "") -> ModelEntry:
    origin = Origin(source_name=made_from, source_path=f"/models/{made_from}", engine=engines[0]) if made_from else None
    return ModelEntry(name=name, path=Path("/models") / name, source="anechat", format="hf", engines=engines,
                      quantization=quantization, origin=origin)


CATALOG = [
    entry("tiny-llama", "mlx"),
    entry("ane-fast", "coreml", made_from="tiny-llama", quantization="LUT6"),
    entry("ane-exact", "coreml", made_from="tiny-llama", quantization="float16"),
    entry("other-model", "mlx"),
]


def test_the_same_model_is_kept_when_the_new_engine_runs_it():
    both = [entry("m", "mlx", "coreml")]
    assert switch_target("m", "/models/m", "coreml", both).name == "m"


def test_a_variant_is_found_both_ways_through_the_recorded_source_whatever_its_folder_name():
    assert switch_target("tiny-llama", "/models/tiny-llama", "coreml", CATALOG).name == "ane-exact"  # the recommended one
    assert switch_target("ane-fast", "/models/ane-fast", "mlx", CATALOG).name == "tiny-llama"


def test_legacy_path_folders_without_a_recorded_source_are_found_by_the_naming_convention():
    legacy = [entry("tiny-llama", "mlx"), entry("tiny-llama-coreml-ctx512-lut6", "coreml")]
    assert switch_target("tiny-llama", "/models/tiny-llama", "coreml", legacy).name == "tiny-llama-coreml-ctx512-lut6"
    assert switch_target("tiny-llama-coreml-ctx512-lut6", "/models/tiny-llama-coreml-ctx512-lut6", "mlx", legacy).name == "tiny-llama"


def test_no_variant_means_none_and_a_hint_to_convert_the_source():
    assert switch_target("other-model", "/models/other-model", "coreml", CATALOG) is None
    assert no_target_hint("other-model", "/models/other-model", "coreml", CATALOG) == (
        "no coreml variant of other-model here (it runs on mlx) — make one: anechat convert other-model --to coreml"
    )
    only_coreml = [entry("tiny-llama", "mlx"), entry("ane-fast", "coreml", made_from="tiny-llama")]
    assert no_target_hint("ane-fast", "/models/ane-fast", "coreai", only_coreml).endswith("anechat convert tiny-llama --to coreai")
