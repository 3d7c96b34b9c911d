"""Writes a tiny Hugging Face llama folder (tests/tinymodel.py) as a GGUF file, the way
llama.cpp's convert_hf_to_gguf.py does for llama:

* q_proj / k_proj rows permuted for llama.cpp's rope layout (its ``permute``);
* llama.cpp tensor names (``blk.N.attn_q.weight`` ...), ``output.weight`` left out when tied;
* the byte-level BPE vocabulary as tokens / merges / token types, padded with
  ``[PAD<i>]`` UNUSED tokens up to the embedding rows, added special tokens as CONTROL;
* llama-3 rope scaling as a ``rope_freqs.weight`` tensor, linear / yarn as metadata;
* any tensor stored quantized on request (``quantize={"blk.0.attn_q.weight": Q8_0}``).

Written independently of anechat's importer, so a test comparing the two proves the importer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
LAYER_PARTS = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def gguf_name(hf_name: str) -> str:
    if hf_name in HF_TO_GGUF:
        return HF_TO_GGUF[hf_name]
    _, _, layer, rest = hf_name.split(".", 3)
    part, kind = rest.rsplit(".", 1)
    return f"blk.{layer}.{LAYER_PARTS[part]}.{kind}"


def llamacpp_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's LlamaModel.permute (convert_hf_to_gguf.py)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def llamacpp_rope_factors(head_dim: int, theta: float, rope_scaling: dict) -> np.ndarray:
    """llama.cpp's rope_freqs for llama-3 scaling (LlamaModel.generate_extra_tensors)."""
    factor = rope_scaling.get("factor", 8.0)
    low_freq_factor = rope_scaling.get("low_freq_factor", 1.0)
    high_freq_factor = rope_scaling.get("high_freq_factor", 4.0)
    old_context_len = rope_scaling.get("original_max_position_embeddings", 8192)
    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    factors = []
    for freq in 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim)):
        wavelen = 2 * math.pi / freq
        if wavelen < high_freq_wavelen:
            factors.append(1)
        elif wavelen > low_freq_wavelen:
            factors.append(factor)
        else:
            smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def write_gguf(
    model_dir: Path,
    dest: Path,
    *,
    quantize: dict | None = None,
    pre: str = "smollm",
    arch: str = "llama",
    add_bos: bool = False,
) -> Path:
    """Write ``model_dir`` (a tiny HF llama folder) as the GGUF file ``dest``."""
    import gguf
    from safetensors.numpy import load_file

    quantize = quantize or {}
    config = json.loads((model_dir / "config.json").read_text())
    tok_json = json.loads((model_dir / "tokenizer.json").read_text())
    tok_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    tensors = load_file(str(model_dir / "model.safetensors"))
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads

    w = gguf.GGUFWriter(str(dest), arch)
    w.add_name("tiny test llama")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_freq_base(config["rope_theta"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(config["vocab_size"])
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("rope_type") or scaling.get("type")
    if kind == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(scaling["factor"])
    elif kind == "yarn":
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(scaling["factor"])
        w.add_rope_scaling_orig_ctx_len(scaling["original_max_position_embeddings"])
    elif kind == "llama3":
        w.add_tensor("rope_freqs.weight", llamacpp_rope_factors(head_dim, config["rope_theta"], scaling))

    # vocabulary, in id order, padded to the embedding rows like convert_hf_to_gguf does
    vocab = dict(tok_json["model"]["vocab"])
    specials = {t["content"]: t["id"] for t in tok_json["added_tokens"] if t["special"]}
    vocab.update(specials)
    by_id = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(config["vocab_size"]):
        if i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.CONTROL if by_id[i] in specials else gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(config["bos_token_id"])
    w.add_eos_token_id(config["eos_token_id"])
    w.add_add_bos_token(add_bos)
    w.add_chat_template(tok_config["chat_template"])

    for name, value in tensors.items():
        value = value.astype(np.float32)
        if name.endswith("self_attn.q_proj.weight"):
            value = llamacpp_permute(value, heads, heads)
        elif name.endswith("self_attn.k_proj.weight"):
            value = llamacpp_permute(value, heads, kv_heads)
        if config.get("tie_word_embeddings") and name == "lm_head.weight":
            continue
        target = gguf_name(name)
        qtype = quantize.get(target)
        if qtype is None:
            w.add_tensor(target, value)
        else:
            w.add_tensor(target, gguf.quants.quantize(value, qtype), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return dest
