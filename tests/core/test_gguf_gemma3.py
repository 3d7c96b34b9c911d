"""Importing a Gemma 3 GGUF: its tensors (K-quants, llama.cpp's 1 + w norms), its config,
its SentencePiece vocabulary and its chat format.

The tiny Gemma 3 (tests/tinygemma3.py) is written both as a Hugging Face folder and as the
GGUF llama.cpp's converter makes from it; the import must give the folder back.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sentencepiece")

from gguf import GGUFReader  # noqa: E402
from kquants import dequantize_q4_k_ref, dequantize_q6_k_ref  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from tinygemma3 import CONTROL, K_QUANTS, USER_DEFINED, build_tiny_gemma3, gguf_name  # noqa: E402

from anechat.catalog.gguf_header import SUPPORTED_ARCHITECTURES  # noqa: E402
from anechat.convert.gguf import import_gguf  # noqa: E402
from anechat.convert.gguf.architectures import ARCHITECTURES  # noqa: E402
from anechat.engines.tokenizer import ChatTokenizer  # noqa: E402

TEXTS = [
    "Hello! How can I help you today?",
    "What is the capital of France? Paris is the capital of France.",
    "The  quick\n\nbrown fox jumps over the lazy dog 12345",
    "   leading, trailing and    inner   spaces   ",
    "Unseen: zymurgy ø € 𝔘𝔫𝔦 and control \x01 bytes",
    "def add(a, b):\n    return a + b\n",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("gemma3")
    source, quantized = build_tiny_gemma3(root / "tiny-gemma3")
    _, exact = build_tiny_gemma3(root / "tiny-gemma3-f32", k_quants=False)
    return {
        "source": source,
        "gguf": quantized,
        "imported": import_gguf(quantized, root / "imported"),
        "imported_f32": import_gguf(exact, root / "imported-f32"),
    }


def test_the_catalog_and_the_importer_name_the_same_architectures():
    assert set(SUPPORTED_ARCHITECTURES) == set(ARCHITECTURES)


def test_norms_come_back_as_hugging_face_weights_without_llama_cpps_plus_one(tiny):
    source = load_file(str(tiny["source"] / "model.safetensors"))
    imported = load_file(str(tiny["imported"] / "model.safetensors"))
    norms = [n for n in source if n.endswith("norm.weight")]
    assert len(norms) == 6 * 6 + 1  # four per layer, q/k norms, the final one
    for name in norms:
        np.testing.assert_allclose(imported[name], source[name], atol=1e-6, err_msg=name)
    assert "lm_head.weight" not in imported  # tied to the embedding, as in Gemma


def test_k_quant_tensors_dequantize_like_ggmls_reference_code(tiny):
    reader = GGUFReader(str(tiny["gguf"]))
    blocks = {t.name: t for t in reader.tensors}
    imported = load_file(str(tiny["imported"] / "model.safetensors"))
    source = load_file(str(tiny["source"] / "model.safetensors"))
    by_gguf = {gguf_name(n): n for n in source}
    for name, kind in K_QUANTS.items():
        assert blocks[name].tensor_type.name == kind
        reference = (dequantize_q4_k_ref if kind == "Q4_K" else dequantize_q6_k_ref)(np.asarray(blocks[name].data))
        hf = by_gguf[name]
        np.testing.assert_allclose(imported[hf].reshape(-1), reference, rtol=1e-6, atol=1e-7, err_msg=name)
        step = np.abs(source[hf]).max() / (7 if kind == "Q4_K" else 31)
        assert np.abs(imported[hf] - source[hf]).max() < step, name  # and close to what was quantized


def test_float32_tensors_come_back_exactly(tiny):
    source = load_file(str(tiny["source"] / "model.safetensors"))
    imported = load_file(str(tiny["imported_f32"] / "model.safetensors"))
    assert set(imported) == set(source)
    for name, value in source.items():
        np.testing.assert_allclose(imported[name], value, atol=1e-6, err_msg=name)


def test_config_is_a_gemma3_text_model_with_its_sliding_window_and_rope_bases(tiny):
    config = json.loads((tiny["imported"] / "config.json").read_text())
    source = json.loads((tiny["source"] / "config.json").read_text())
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "head_dim", "rope_theta", "rope_local_base_freq", "query_pre_attn_scalar", "sliding_window",
                "sliding_window_pattern", "vocab_size", "tie_word_embeddings", "rms_norm_eps"):
        assert config[key] == source[key], key
    assert config["model_type"] == "gemma3_text" and config["architectures"] == ["Gemma3ForCausalLM"]
    assert config["layer_types"] == ["sliding_attention"] * 5 + ["full_attention"]


def _logits(folder, ids):
    import mlx.core as mx
    from mlx_lm.utils import load_model

    model, _ = load_model(folder)
    return np.array(model(mx.array([ids]))[0].astype(mx.float32))


def test_imported_folder_computes_what_the_source_folder_computes_in_mlx_lm(tiny):
    pytest.importorskip("mlx_lm")
    ids = [2, 10, 40, 7, 99, 200, 31, 64, 12, 5, 77]  # longer than the sliding window (4)
    expected = _logits(tiny["source"], ids)
    np.testing.assert_allclose(_logits(tiny["imported_f32"], ids), expected, atol=2e-4)
    quantized = _logits(tiny["imported"], ids)
    assert (quantized.argmax(-1) == expected.argmax(-1)).mean() >= 0.8


def _sentencepiece_with_specials(source, text: str) -> list[int]:
    """SentencePiece on the text between control / user-defined pieces, those matched whole
    first (what llama.cpp and Hugging Face do; SentencePiece itself never reads control pieces)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(source / "tokenizer.model"))
    whole = sorted(CONTROL + USER_DEFINED, key=len, reverse=True)
    out, buf, i = [], "", 0
    while i < len(text):
        match = next((w for w in whole if text.startswith(w, i)), None)
        if match is None:
            buf, i = buf + text[i], i + 1
            continue
        out += sp.encode(buf) if buf else []
        out.append(sp.piece_to_id(match))
        buf, i = "", i + len(match)
    return out + (sp.encode(buf) if buf else [])


@pytest.mark.parametrize("text", TEXTS + ["<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n"])
def test_tokenizer_encodes_like_sentencepiece_and_decodes_back(tiny, text):
    tok = ChatTokenizer(tiny["imported"])
    ids = tok.encode(text)
    assert ids == _sentencepiece_with_specials(tiny["source"], text)
    assert tok.decode(ids, skip_special=False) == text


def test_characters_outside_the_vocabulary_fall_back_to_their_bytes(tiny):
    tok = ChatTokenizer(tiny["imported"])
    ids = tok.encode("€")
    assert [tok._tok.id_to_token(i) for i in ids] == ["<0xE2>", "<0x82>", "<0xAC>"]
    assert tok.decode(ids) == "€"


def test_plain_encoding_adds_bos_as_the_gguf_asks(tiny):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny["imported"] / "tokenizer.json"))
    assert tok.encode("Hello").ids[0] == 2 and tok.encode("Hello", add_special_tokens=False).ids[0] != 2


def test_a_gguf_without_a_chat_template_gets_gemmas_own_turn_format(tiny):
    tok = ChatTokenizer(tiny["imported"])
    assert tok.has_chat_template
    prompt = tok.render([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}])
    assert prompt == ("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
                      "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
    ids = tok.encode(prompt)
    assert ids[0] == 2 and ids.count(tok.token_id("<start_of_turn>")) == 4


def test_end_of_turn_is_a_stop_token_written_in_generation_config(tiny):
    generation = json.loads((tiny["imported"] / "generation_config.json").read_text())
    tok = ChatTokenizer(tiny["imported"])
    end = tok.token_id("<end_of_turn>")
    assert generation["eos_token_id"] == [1, end] and {1, end} <= tok.stop_ids
