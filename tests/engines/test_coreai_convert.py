"""The Core AI converter: one asset with prefill + infer, the compiled cache, compression."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("coreai_torch")

sys.path.insert(0, str(Path(__file__).parent))
from coreai_fixtures import convert_tiny  # noqa: E402

from anechat.engines.base import SamplingParams  # noqa: E402
from anechat.engines.coreai.engine import CoreAIEngine  # noqa: E402
from anechat.engines.errors import InvalidParameter  # noqa: E402


def test_the_private_compile_step_the_cache_relies_on_still_exists():
    """If this fails, coreai renamed AIModelAsset._write_odix: engines/coreai/compiled.py must follow."""
    from anechat.engines.coreai.compiled import can_write_compiled

    assert can_write_compiled()


def test_conversion_writes_asset_cache_tokenizer_and_manifest_with_progress(tiny_coreai_dir):
    out = tiny_coreai_dir
    events = json.loads(out.with_name(out.name + ".progress.json").read_text())
    names = {p.name for p in out.iterdir()}
    assert {"model.aimodel", "compiled.aimodelx", "coreai.json", "tokenizer.json", "tokenizer_config.json"} <= names
    manifest = json.loads((out / "coreai.json").read_text())
    assert manifest["entrypoints"] == ["prefill", "infer"]
    assert manifest["state_names"] == ["k_cache_0", "v_cache_0", "k_cache_1", "v_cache_1"]
    assert (manifest["context_length"], manifest["batch_size"], manifest["dtype"], manifest["compression"]) == (128, 16, "fp32", "none")
    fractions = [f for _, f in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_bad_options_and_an_existing_folder_are_refused_in_one_line(tiny_model_dir, tmp_path):
    with pytest.raises(InvalidParameter, match="--compress"):
        convert_tiny(tiny_model_dir, tmp_path / "a", compress="lut5")
    with pytest.raises(InvalidParameter, match="--batch"):
        convert_tiny(tiny_model_dir, tmp_path / "b", batch_size=500)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x").write_text("keep me")
    with pytest.raises(InvalidParameter, match="already exists"):
        convert_tiny(tiny_model_dir, tmp_path / "c")
    assert (tmp_path / "c" / "x").read_text() == "keep me"


def logits_along(session, ids):
    session.reset()
    return np.stack([session.runtime.infer(t, i) for i, t in enumerate(ids)])


def test_a_lut8_variant_runs_and_stays_close_to_fp32(tiny_coreai_dir, tiny_coreai_lut8_dir):
    fp32 = CoreAIEngine().load(tiny_coreai_dir)
    lut8 = CoreAIEngine().load(tiny_coreai_lut8_dir)
    assert lut8.info.quantization == "LUT8 (fp32)"
    ids = np.random.default_rng(0).integers(3, 384, size=48).tolist()
    ref, got = logits_along(fp32, ids), logits_along(lut8, ids)
    agreement = float(np.mean(ref.argmax(-1) == got.argmax(-1)))
    assert agreement >= 0.9
    assert float(np.abs(ref - got).max()) < 0.1 * float(np.abs(ref).max())
    stats = list(lut8.generate_ids(ids[:10], SamplingParams(max_tokens=5), ignore_eos=True))[-1]
    assert stats.generation_tokens == 5
    fp32.close(), lut8.close()
