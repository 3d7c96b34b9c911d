"""The model picker shows each model once, with its variants per engine under it."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import OptionList

from anechat.catalog import ModelEntry
from anechat.catalog.provenance import Origin
from anechat.tui.screens.model_picker import ModelPicker
from tui_support import quiet_app, wait_for

pytestmark = pytest.mark.anyio


def entry(name: str, engine: str, quantization: str, made_from: str | None = None) -> ModelEntry:
    origin = Origin(source_name=made_from, source_path=f"/models/{made_from}", engine=engine) if made_from else None
    return ModelEntry(name=name, path=Path("/models") / name, source="anechat", format="hf" if engine == "mlx" else engine,
                      engines=(engine,), quantization=quantization, context_length=512, origin=origin)


ENTRIES = [
    entry("zeta", "mlx", "float32"),
    entry("ane-lut6", "coreml", "LUT6", made_from="tiny"),
    entry("tiny", "mlx", "float32"),
    entry("q4-somewhere", "mlx", "4-bit g64", made_from="tiny"),
]


async def _open(engine: str):
    app = quiet_app()
    picked: list = []
    async with app.run_test(size=(120, 40)) as pilot:
        picker = ModelPicker(lambda: ENTRIES, engine)
        await app.push_screen(picker, picked.append)
        await wait_for(pilot, lambda: picker.scanned, limit_s=30)
        rows = [str(picker.query_one(OptionList).get_option_at_index(i).prompt).splitlines()[0] for i in range(len(picker.shown))]
        picker.action_choose()  # Enter on the first row: the model "tiny"
        await wait_for(pilot, lambda: picked, limit_s=30)
    return rows, picked[0]


async def test_variants_are_listed_under_their_model_and_enter_on_the_model_loads_its_variant_for_the_engine():
    rows, picked = await _open("coreml")
    assert rows == ["tiny", "  └ ane-lut6  coreml · LUT6 · runs on coreml", "  └ q4-somewhere  hf · 4-bit g64 · runs on mlx", "zeta"]
    assert (picked.name, picked.engine, picked.ref) == ("ane-lut6", "coreml", "/models/ane-lut6")


async def test_on_the_source_s_engine_enter_on_the_model_loads_the_source():
    _rows, picked = await _open("mlx")
    assert (picked.name, picked.engine) == ("tiny", "mlx")
