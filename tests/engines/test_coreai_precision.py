"""Core AI conversions that store less than fp32: bf16 weights (computed in fp32) and LUT
palettization (our k-means tables, lowered by coreai-torch into ``lut_to_dense``), run by
Apple's runtime on the tiny llama."""

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

PROMPTS = ["The quick brown fox jumps over the lazy dog.", "What is the capital of France?", "def add(a, b):"]


@pytest.fixture(scope="module")
def folders(tiny_model_dir, tiny_coreai_dir, tiny_coreai_lut8_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("coreai-precision")
    return {
        "fp32": tiny_coreai_dir,
        "bf16": convert_tiny(tiny_model_dir, root / "bf16", dtype="bf16"),
        "lut8": tiny_coreai_lut8_dir,
        "lut6": convert_tiny(tiny_model_dir, root / "lut6", compress="lut6", group_size=16),
    }


@pytest.fixture(scope="module")
def sessions(folders):
    engines = {name: CoreAIEngine() for name in folders}
    yield {name: engines[name].load(folder) for name, folder in folders.items()}
    for engine in engines.values():
        engine.unload()


def asset_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "model.aimodel").rglob("*") if p.is_file())


def greedy_ids(session, prompt_ids, n=32) -> list[int]:
    session.reset()
    events = list(session.generate_ids(prompt_ids, SamplingParams(max_tokens=n), ignore_eos=True))
    return [t for e in events[:-1] for t in e.token_ids]


def scored(session, ids) -> np.ndarray:
    """Teacher-forced logits, one ``infer`` per position from an empty cache."""
    session.reset()
    return np.stack([session.runtime.infer(t, i) for i, t in enumerate(ids)])


def test_bf16_stores_half_the_weights_and_keeps_an_fp32_kv_state(folders, sessions):
    manifest = json.loads((folders["bf16"] / "coreai.json").read_text())
    assert (manifest["dtype"], manifest["extra"]["state_dtype"]) == ("bf16", "fp32")
    assert asset_bytes(folders["bf16"]) < 0.6 * asset_bytes(folders["fp32"])
    assert sessions["bf16"].runtime.state_bytes() == sessions["fp32"].runtime.state_bytes()


def test_bf16_greedy_tokens_equal_the_mlx_engines(sessions, tiny_model_dir):
    pytest.importorskip("mlx")
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    mlx = engine.load(tiny_model_dir)
    try:
        for text in PROMPTS:
            ids = mlx.prompt_ids([{"role": "user", "content": text}])
            assert greedy_ids(sessions["bf16"], ids) == greedy_ids(mlx, ids)
    finally:
        engine.unload()


def test_bf16_logits_differ_from_fp32_only_by_the_rounding_of_the_weights(sessions):
    ids = np.random.default_rng(1).integers(3, 384, size=24).tolist()
    ref, got = scored(sessions["fp32"], ids), scored(sessions["bf16"], ids)
    assert 0 < float(np.abs(ref - got).max()) < 0.02 * float(np.abs(ref).max())
    assert np.array_equal(ref.argmax(-1), got.argmax(-1))


def test_prefill_returns_every_positions_logits_as_infer_would(sessions, folders):
    session = sessions["fp32"]
    batch = session.batch_size
    ids = np.random.default_rng(2).integers(3, 384, size=batch).tolist()
    one_by_one = scored(session, ids)
    session.reset()
    batched = session.runtime.prefill(ids, 0)
    assert batched.shape == one_by_one.shape
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4 * float(np.abs(one_by_one).max()))


def test_lut6_runs_stays_close_to_fp32_and_packs_its_indices_smaller_than_lut8(folders, sessions):
    manifest = json.loads((folders["lut6"] / "coreai.json").read_text())
    assert manifest["compression"] == "lut6" and sessions["lut6"].info.quantization == "LUT6 (fp32)"
    assert asset_bytes(folders["lut6"]) < 0.85 * asset_bytes(folders["lut8"]) < 0.5 * asset_bytes(folders["fp32"])
    ids = np.random.default_rng(0).integers(3, 384, size=48).tolist()
    ref, got = scored(sessions["fp32"], ids), scored(sessions["lut6"], ids)
    assert float(np.mean(ref.argmax(-1) == got.argmax(-1))) >= 0.8
    assert 0 < float(np.abs(ref - got).max()) < 0.2 * float(np.abs(ref).max())
    stats = list(sessions["lut6"].generate_ids(ids[:10], SamplingParams(max_tokens=5), ignore_eos=True))[-1]
    assert stats.generation_tokens == 5


def test_the_private_module_defining_coreais_lut_op_still_exists():
    """If this fails, coreai-torch moved ``coreai::lut_to_dense``: engines/coreai/convert/palettized.py must follow."""
    import torch

    from anechat.engines.coreai.convert.palettized import register_lut_op

    register_lut_op()
    lut = torch.tensor([[[[-1.0], [2.0]]]])  # one table of two values
    dense = torch.ops.coreai.lut_to_dense(torch.tensor([[1, 0, 1]], dtype=torch.uint8), lut, 0)
    assert dense.tolist() == [[2.0, -1.0, 2.0]]
