"""The MLX engine across several local ranks: real processes started by mlx.launch,
joined by mx.distributed's ring backend on 127.0.0.1, the model split by mlx-lm.

Rank 0 is its own process in every scenario (tests/ranks_driver.py): mx.distributed
joins one ring per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from tinymodel import build_tiny_llama

pytestmark = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")

DRIVER = Path(__file__).parent.parent / "ranks_driver.py"
TWO = "127.0.0.1,127.0.0.1"
THREE = "127.0.0.1,127.0.0.1,127.0.0.1"


def drive(scenario: str, model: Path, hosts: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(DRIVER), scenario, str(model), hosts],
        capture_output=True, text=True, timeout=400, cwd=Path(__file__).parent.parent.parent, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def held_once(ranks: list[dict], single_weights: int) -> bool:
    """The ranks' weights add up to the single process's (each rank reports whole KiB)."""
    total = sum(r["weights"] for r in ranks)
    return single_weights - 1024 * len(ranks) < total <= single_weights


@pytest.fixture(scope="module")
def three_way_model(tmp_path_factory) -> Path:
    """A tiny llama that splits three ways both ways: 3 layers, 6 heads, 3 KV heads; its
    embedding table is its LM head too (tied, like SmolLM2)."""
    return build_tiny_llama(
        tmp_path_factory.mktemp("models") / "tiny-three",
        hidden_size=48, num_heads=6, num_kv_heads=3, num_layers=3, intermediate_size=96, tie_word_embeddings=True,
    )  # fmt: skip


def test_two_ranks_answer_token_for_token_like_one_process_and_keep_the_conversation(tiny_model_dir):
    out = drive("conversation", tiny_model_dir, TWO)
    single, ranks = out["single"], out["pipeline"]
    assert ranks["first"] == single["first"] and len(single["first"]) == 24
    assert ranks["second"] == single["second"]
    assert ranks["second_cached"] == single["second_cached"] > 0  # turn 2 reused turn 1's cache on every rank
    assert ranks["cut"] == 3 and ranks["cut_finish"] == "cancelled"
    assert ranks["after_cancel"] == single["after_cancel"]  # every rank usable after the cancel
    assert out["tensor"]["first"] == single["first"]  # the same ranks, reloaded with tensor sharding
    assert ranks["runtime"].startswith("2 ranks (pipeline)") and out["tensor"]["runtime"].startswith("2 ranks (tensor)")
    assert [r["host"] for r in ranks["ranks"]] == ["127.0.0.1", "127.0.0.1"]
    assert all(0 < r["weights"] < out["single_weights"] for r in ranks["ranks"])  # each rank holds a part
    assert held_once(ranks["ranks"], out["single_weights"])  # and no tensor is held twice
    assert all(r["active"] > 0 and r["kv_cache"] > 0 for r in ranks["ranks"])
    assert out["left_after_shutdown"] == []


def test_three_ranks_split_by_pipeline_and_by_tensor_answer_like_one_process(three_way_model):
    out = drive("equal", three_way_model, THREE)
    expected = out["single"]["first"]
    assert out["pipeline"]["first"] == expected and out["tensor"]["first"] == expected
    assert len(out["pipeline"]["ranks"]) == len(out["tensor"]["ranks"]) == 3
    # only rank 0 holds the tied embedding table / LM head; the others hold layers alone
    assert held_once(out["pipeline"]["ranks"], out["single_weights"])
    assert out["left_after_shutdown"] == []


def test_killing_a_follower_mid_answer_ends_the_turn_with_one_line_and_leaves_no_process(tiny_model_dir):
    from anechat.engines.mlx.engine import MLXEngine

    out = drive("kill", tiny_model_dir, TWO)["kill"]
    assert out["finish"] == "error" and "\n" not in out["error"]
    assert "rank 1 (127.0.0.1)" in out["error"] and "conversation is kept" in out["error"] and "fits this machine" in out["error"]
    assert out["seconds"] < 10
    assert out["orphans"] == []
    engine = MLXEngine()
    alone = [t for e in engine.load(tiny_model_dir).generate([{"role": "user", "content": "hello there"}], SamplingParams(max_tokens=24)) for t in getattr(e, "token_ids", ())]
    engine.unload()
    assert out["fallback"] == alone  # the next load ran in rank 0's process alone
    assert not out["runtime"].startswith("2 ranks")
