"""Shared fixtures: tiny random-weight llama models made at test time, and an
isolated anechat home (config, data and models folders) per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tinymodel import build_tiny_family, build_tiny_llama  # noqa: E402

#: The test files that take longest (real processes, conversions), longest first, as measured
#: on a 2-core machine. `make test` runs two workers that take whole files in collection order
#: (-n 2 --dist loadfile --no-loadscope-reorder): these go first, so that no long file is left
#: running alone at the end while the other worker idles. Only the order depends on this list.
LONGEST_FILES = (
    "engines/test_architectures.py",
    "core/test_cli.py",
    "engines/test_mlx_distributed.py",
    "engines/test_coreml_convert_lean.py",
    "tui/test_tui_models_screen.py",
    "engines/test_coreml_quality.py",
    "core/test_gemma3_real.py",
    "engines/test_coreml_monolithic.py",
    "core/test_coreai_cli.py",
    "engines/test_coreai_precision.py",
    "core/test_cli_ranks.py",
    "tui/test_tui_stream_bytes.py",
    "engines/test_coreai_engine.py",
    "tui/test_tui_ranks.py",
)


def pytest_collection_modifyitems(items) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FILES)}
    here = Path(__file__).parent
    items.sort(key=lambda item: rank.get(item.path.relative_to(here).as_posix(), len(rank)))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-weight llama (2 layers, hidden 64) with a trained BPE tokenizer and ChatML template."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_stop_model_dir(tmp_path_factory) -> Path:
    """A tiny llama that always answers its stop token first."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-stop", always_stop=True)


@pytest.fixture(scope="session")
def tiny_qwen2_dir(tmp_path_factory) -> Path:
    """A random-weight Qwen 2.5 (2 layers, q/k/v biases, tied embeddings)."""
    return build_tiny_family(tmp_path_factory.mktemp("models") / "tiny-qwen2", "qwen2")


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory) -> Path:
    """A random-weight Qwen 3 (2 layers, per-head q/k norms, head_dim 32, untied embeddings)."""
    return build_tiny_family(tmp_path_factory.mktemp("models") / "tiny-qwen3", "qwen3")


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tmp_path_factory) -> Path:
    """A random-weight Gemma 3 (4 layers: sliding window 8 / global alternating, one KV head)."""
    return build_tiny_family(tmp_path_factory.mktemp("models") / "tiny-gemma3", "gemma3_text", num_layers=4)


@pytest.fixture(autouse=True, scope="session")
def _isolated_anechat_home(tmp_path_factory):
    """Point anechat's config and data folders at a temporary home.

    The models folder stays the user's real one, so the built-in default model is
    converted once per machine ("on first use") rather than once per test run.
    """
    from anechat.paths import models_dir

    home = tmp_path_factory.mktemp("anechat-home")
    old = {k: os.environ.get(k) for k in ("ANECHAT_CONFIG_DIR", "ANECHAT_DATA_DIR", "ANECHAT_MODELS_DIR")}
    os.environ["ANECHAT_MODELS_DIR"] = str(models_dir())
    os.environ["ANECHAT_CONFIG_DIR"] = str(home / "config")
    os.environ["ANECHAT_DATA_DIR"] = str(home / "data")
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# --- Core ML conversions of the tiny model (shared by the converter's and the runtime's tests) ---

TINY_COREML_OPTIONS = dict(context_length=64, batch_size=16, num_chunks=2)
TINY_COREML_LUT6_OPTIONS = dict(context_length=64, batch_size=16, num_chunks=1, lut_ffn=6, lut_lmhead=6, lut_embeddings=6, lut_ffn_last=6)


def _convert_tiny(tiny_model_dir: Path, out: Path, options: dict) -> Path:
    """Convert and keep the progress reports next to the folder (``<out>.progress.json``)."""
    import json

    pytest.importorskip("coremltools")
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml

    events: list = []
    convert_to_coreml(tiny_model_dir, out, CoreMLConvertOptions(**options), lambda m, f: events.append([m, f]))
    out.with_name(out.name + ".progress.json").write_text(json.dumps(events))
    return out


@pytest.fixture(scope="session")
def tiny_coreml_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny llama converted to Core ML parts: context 64, batch 16, 2 FFN chunks, fp16 (no LUT)."""
    return _convert_tiny(tiny_model_dir, tmp_path_factory.mktemp("coreml") / "tiny-coreml", TINY_COREML_OPTIONS)


@pytest.fixture(scope="session")
def tiny_coreml_lut6_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny llama converted with 6-bit LUTs on every part: context 64, batch 16, 1 FFN chunk."""
    return _convert_tiny(tiny_model_dir, tmp_path_factory.mktemp("coreml") / "tiny-coreml-lut6", TINY_COREML_LUT6_OPTIONS)


# --- Core AI conversions of the tiny llama (shared by the converter's, the engine's and the app's tests) ---


def _coreai(tiny_model_dir: Path, tmp_path_factory, name: str, **options) -> Path:
    """Convert with tests/engines/coreai_fixtures.py's options; the progress reports are kept
    next to the folder (``<out>.progress.json``)."""
    import json

    sys.path.insert(0, str(Path(__file__).parent / "engines"))
    from coreai_fixtures import convert_tiny

    events: list = []
    out = convert_tiny(tiny_model_dir, tmp_path_factory.mktemp("coreai") / name, events, **options)
    out.with_name(out.name + ".progress.json").write_text(json.dumps(events))
    return out


@pytest.fixture(scope="session")
def tiny_coreai_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny llama converted to Core AI: context 128, batch 16, fp32 weights."""
    return _coreai(tiny_model_dir, tmp_path_factory, "tiny-llama-coreai-ctx128-fp32")


@pytest.fixture(scope="session")
def tiny_coreai_lut8_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The same with 8-bit LUTs (groups of 16 channels)."""
    return _coreai(tiny_model_dir, tmp_path_factory, "tiny-llama-coreai-ctx128-lut8", compress="lut8", group_size=16)
