"""Importing a llama.cpp GGUF file as an MLX / Hugging Face model folder.

Every test starts from the tiny random-weight llama (tests/tinymodel.py), writes
it as a GGUF the way llama.cpp's converter does (tests/tinygguf.py: q/k rows
permuted, llama.cpp names, some tensors quantized), imports it back with
``anechat.convert.gguf.import_gguf`` and compares the result with the original folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from safetensors.numpy import load_file
from tinygguf import gguf_name, write_gguf
from tinymodel import build_tiny_llama

from anechat.engines.errors import ModelFormatError
from anechat.engines.tokenizer import ChatTokenizer
from anechat.convert.gguf import ImportTargetExists, ensure_imported, import_gguf, is_current_import

# llama.cpp quantizes the big matrices and keeps norms in float32; so do we, on a mix of tensors
MIXED = {
    "token_embd.weight": Q.Q8_0,
    "blk.0.attn_q.weight": Q.Q8_0,
    "blk.0.attn_k.weight": Q.Q4_1,
    "blk.1.attn_q.weight": Q.Q4_1,
    "blk.1.attn_k.weight": Q.Q8_0,
    "blk.0.ffn_gate.weight": Q.Q4_1,
    "blk.1.ffn_down.weight": Q.Q4_1,
    "output.weight": Q.Q8_0,
}

TEXTS = [
    "Hello! How can I help you today?",
    "Numbers: 12345, 3.14159 and 2024-06-01.",
    "Émoji 🙂🎉 and accents: café, naïve, Zürich, 東京, مرحبا, שלום.",
    "def add(a, b):\n    return a + b\n\n\n",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    "   leading, trailing and    inner   spaces   ",
    "Unseen words: zymurgy quixotic Schnabeltier 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
]


@pytest.fixture(scope="module")
def ggufs(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    return {
        "f32": write_gguf(tiny_model_dir, root / "tiny-f32.gguf"),
        "mixed": write_gguf(tiny_model_dir, root / "tiny-mixed.gguf", quantize=MIXED),
    }


@pytest.fixture(scope="module")
def imported(ggufs, tmp_path_factory):
    root = tmp_path_factory.mktemp("imported")
    return {kind: import_gguf(path, root / kind) for kind, path in ggufs.items()}


def greedy_tokens(folder, prompt_ids, n=12):
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import load_model

    model, _ = load_model(folder)
    tokens = [int(t) for t, _ in generate_step(mx.array(prompt_ids), model, max_tokens=n)]
    logits = np.array(model(mx.array([prompt_ids]))[0, -1].astype(mx.float32))
    return tokens, logits


# -- weights ---------------------------------------------------------------------------


def test_float32_tensors_come_back_exactly_with_the_rope_permutation_undone(tiny_model_dir, imported):
    source = load_file(str(tiny_model_dir / "model.safetensors"))
    result = load_file(str(imported["f32"] / "model.safetensors"))
    assert sorted(result) == sorted(source)
    for name, value in source.items():
        assert result[name].dtype == np.float32
        np.testing.assert_array_equal(result[name], value, err_msg=name)


def test_quantized_tensors_come_back_within_quantization_error(tiny_model_dir, imported):
    source = load_file(str(tiny_model_dir / "model.safetensors"))
    result = load_file(str(imported["mixed"] / "model.safetensors"))
    for name, value in source.items():
        qtype = MIXED.get(gguf_name(name))
        error = np.abs(result[name] - value)
        # per 32-value block: Q8_0 steps are max|w|/127, Q4_1 steps (max-min)/15; half a step plus f16 scale rounding
        blocks = value.reshape(-1, 32)
        if qtype is None:
            assert error.max() == 0, name
        elif qtype == Q.Q8_0:
            step = np.abs(blocks).max(axis=1) / 127
            assert (error.reshape(-1, 32) <= step[:, None] * 0.51 + 1e-3 * step[:, None] * 127).all(), name
        else:
            step = (blocks.max(axis=1) - blocks.min(axis=1)) / 15
            assert (error.reshape(-1, 32) <= step[:, None] * 0.51 + 2e-3 * np.abs(blocks).max(axis=1)[:, None]).all(), name
        # a wrong row order would leave errors of the size of the weights themselves
        if qtype is not None:
            assert error.mean() < 0.1 * np.abs(value).mean(), name


# -- config ----------------------------------------------------------------------------


def test_config_describes_the_same_llama(tiny_model_dir, imported):
    source = json.loads((tiny_model_dir / "config.json").read_text())
    config = json.loads((imported["mixed"] / "config.json").read_text())
    for key in (
        "model_type",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "rms_norm_eps",
        "rope_theta",
        "rope_scaling",
        "tie_word_embeddings",
        "vocab_size",
        "bos_token_id",
        "eos_token_id",
    ):
        assert config[key] == source[key], key
    assert config["architectures"] == ["LlamaForCausalLM"]
    marker = json.loads((imported["mixed"] / "anechat-import.json").read_text())
    assert marker["source_types"] == ["F32", "Q4_1", "Q8_0"]


# -- tokenizer and chat template ---------------------------------------------------------


def test_tokenizer_encodes_and_decodes_like_the_source(tiny_model_dir, imported):
    source, result = ChatTokenizer(tiny_model_dir), ChatTokenizer(imported["mixed"])
    assert result.vocab_size == source.vocab_size
    for text in TEXTS:
        ids = source.encode(text)
        assert result.encode(text) == ids, text
        assert result.decode(ids) == source.decode(ids)
        assert result.decode(ids, skip_special=False) == source.decode(ids, skip_special=False) == text


def test_digits_are_split_one_by_one(imported):
    tok = ChatTokenizer(imported["mixed"])
    ids = tok.encode("12345")
    assert [tok.decode([i]) for i in ids] == ["1", "2", "3", "4", "5"]


def test_special_tokens_stay_single_special_tokens(imported):
    tok = ChatTokenizer(imported["mixed"])
    im_start, im_end = tok.token_id("<|im_start|>"), tok.token_id("<|im_end|>")
    assert tok.encode("<|im_start|>user<|im_end|>")[0] == im_start
    assert tok.encode("<|im_start|>user<|im_end|>")[-1] == im_end
    assert tok.decode([im_start, im_end]) == ""  # special: skipped when decoding answers
    assert tok.eos_token == "<|im_end|>" and im_end in tok.stop_ids


def test_chat_template_is_kept(tiny_model_dir, imported):
    source, result = ChatTokenizer(tiny_model_dir), ChatTokenizer(imported["mixed"])
    assert result.has_chat_template and result.chat_template == source.chat_template
    messages = [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}]
    assert result.render(messages) == source.render(messages)


@pytest.mark.parametrize(
    "pre, pieces",
    [
        ("smollm", ["I", "Ġhave", "Ġ", "1", "2", "3", "4", "5", "Ġapples"]),
        ("gpt-2", ["I", "Ġhave", "Ġ12345", "Ġapples"]),
        ("llama-bpe", ["I", "Ġhave", "Ġ", "123", "45", "Ġapples"]),
        ("qwen2", ["I", "Ġhave", "Ġ", "1", "2", "3", "4", "5", "Ġapples"]),
    ],
)
def test_each_llama_cpp_pre_tokenizer_splits_text_like_the_original(tiny_model_dir, tmp_path, pre, pieces):
    from tokenizers import Tokenizer

    folder = import_gguf(write_gguf(tiny_model_dir, tmp_path / "t.gguf", pre=pre), tmp_path / "out")
    split = Tokenizer.from_file(str(folder / "tokenizer.json")).pre_tokenizer.pre_tokenize_str("I have 12345 apples")
    assert [piece for piece, _ in split] == pieces
    tok = ChatTokenizer(folder)
    for text in TEXTS:
        assert tok.decode(tok.encode(text), skip_special=False) == text


def test_add_bos_token_is_honoured_for_plain_encoding(tiny_model_dir, tmp_path):
    from tokenizers import Tokenizer

    folder = import_gguf(write_gguf(tiny_model_dir, tmp_path / "t.gguf", add_bos=True), tmp_path / "out")
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    assert tok.encode("hi").ids[0] == tok.token_to_id("<|im_start|>")
    assert ChatTokenizer(folder).encode("hi")[0] != tok.token_to_id("<|im_start|>")  # chat templates add their own


# -- the folder runs -------------------------------------------------------------------


def test_imported_folder_loads_in_mlx_lm_and_generates_the_same_greedy_tokens(tiny_model_dir, imported):
    import mlx_lm

    model, tokenizer = mlx_lm.load(str(imported["f32"]))  # also loads the tokenizer through transformers
    chat = ChatTokenizer(imported["f32"])
    prompt = chat.encode(chat.render([{"role": "user", "content": "What is the capital of France?"}]))
    assert tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}], add_generation_prompt=True) == prompt
    source_tokens, source_logits = greedy_tokens(tiny_model_dir, prompt)
    tokens, logits = greedy_tokens(imported["f32"], prompt)
    assert tokens == source_tokens
    np.testing.assert_allclose(logits, source_logits, atol=1e-4)
    mixed_tokens, mixed_logits = greedy_tokens(imported["mixed"], prompt)
    assert np.corrcoef(mixed_logits, source_logits)[0, 1] > 0.95  # quantized: close, not equal


@pytest.mark.parametrize(
    "variant",
    [
        {"tie_word_embeddings": True},
        {"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
        {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128}},
        {
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 256,
            }
        },
    ],
    ids=["tied-embeddings", "rope-linear", "rope-yarn", "rope-llama3"],
)
def test_tied_embeddings_and_rope_scaling_survive_the_round_trip(tmp_path, variant):
    source = build_tiny_llama(tmp_path / "src", seed=3, **variant)
    folder = import_gguf(write_gguf(source, tmp_path / "t.gguf"), tmp_path / "out")
    config = json.loads((folder / "config.json").read_text())
    for key, value in variant.items():
        assert config[key] == value
    assert not (variant.get("tie_word_embeddings") and "lm_head.weight" in load_file(str(folder / "model.safetensors")))
    prompt = list(range(3, 60))  # long enough for rope scaling to matter
    source_tokens, source_logits = greedy_tokens(source, prompt, n=4)
    tokens, logits = greedy_tokens(folder, prompt, n=4)
    assert tokens == source_tokens
    np.testing.assert_allclose(logits, source_logits, atol=1e-4)


# -- refusals ----------------------------------------------------------------------------


def test_an_unsupported_architecture_is_refused_with_the_supported_list(tiny_model_dir, tmp_path):
    path = write_gguf(tiny_model_dir, tmp_path / "phi.gguf", arch="phi3")
    with pytest.raises(ModelFormatError, match=r"'phi3' model.*architectures: llama"):
        import_gguf(path, tmp_path / "out")
    assert list(tmp_path.iterdir()) == [path]


def test_an_unknown_pre_tokenizer_is_refused(tiny_model_dir, tmp_path):
    path = write_gguf(tiny_model_dir, tmp_path / "t.gguf", pre="deepseek-llm")
    with pytest.raises(ModelFormatError, match="pre-tokenizer"):
        import_gguf(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    path = tmp_path / "junk.gguf"
    path.write_bytes(b"not a gguf file at all" * 10)
    with pytest.raises(ModelFormatError, match="not a readable GGUF"):
        import_gguf(path, tmp_path / "out")


def test_an_existing_folder_is_not_overwritten_unless_asked(ggufs, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(ImportTargetExists):
        import_gguf(ggufs["f32"], target)
    assert (target / "keep.txt").read_text() == "mine"
    import_gguf(ggufs["f32"], target, overwrite=True)
    assert not (target / "keep.txt").exists() and is_current_import(target, ggufs["f32"])


# -- atomic writing, progress, concurrency ---------------------------------------------------


def test_progress_goes_from_zero_to_one_through_named_steps(ggufs, tmp_path):
    seen = []
    import_gguf(ggufs["mixed"], tmp_path / "out", progress=lambda step, fraction: seen.append((step, fraction)))
    fractions = [f for _, f in seen]
    assert fractions[0] == 0.0 and seen[-1] == ("done", 1.0)
    assert fractions == sorted(fractions)
    assert {"reading", "weights", "done"} <= {s for s, _ in seen}


def test_an_interrupted_import_leaves_nothing_behind(ggufs, tmp_path):
    def interrupt(step, fraction):
        if step == "weights" and fraction > 0.3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_gguf(ggufs["mixed"], tmp_path / "out", progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_killed_import_are_cleaned_up_by_the_next_one(ggufs, tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".out.partial-{int(dead.stdout)}-deadbeef"
    leftover.mkdir()
    (leftover / "config.json").write_text("{}")
    import_gguf(ggufs["f32"], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_ensure_imported_converts_once_even_when_two_callers_race(ggufs, tmp_path):
    target = tmp_path / "model"
    done = []
    results = []

    def worker():
        results.append(ensure_imported(ggufs["mixed"], target, progress=lambda s, f: s == "done" and done.append(s)))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [target, target] and done == ["done"]
    weights = (target / "model.safetensors").stat()
    assert ensure_imported(ggufs["mixed"], target) == target  # already current: nothing rewritten
    assert (target / "model.safetensors").stat().st_mtime_ns == weights.st_mtime_ns
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["model"]


def test_ensure_imported_never_replaces_a_folder_it_did_not_make(ggufs, tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")
    with pytest.raises(ModelFormatError, match="not made by anechat"):
        ensure_imported(ggufs["f32"], target)
    assert (target / "config.json").read_text() == "{}"
