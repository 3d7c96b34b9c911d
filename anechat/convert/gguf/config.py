"""Builds a Hugging Face ``LlamaForCausalLM`` config.json from a GGUF file's metadata.

llama.cpp keeps llama-3 style rope scaling not as metadata but as a
``rope_freqs.weight`` tensor of per-frequency divisors; :func:`llama3_rope_scaling`
recovers the config from it (and checks that the recovered config reproduces the
tensor exactly, refusing the file otherwise).
"""

from __future__ import annotations

import math

import numpy as np

from anechat.engines.errors import ModelFormatError

from anechat.convert.gguf.reader import GGUFFile


def f32_value(value: float) -> float:
    """A float32 metadata value as its shortest decimal (9.9999997e-06 -> 1e-05)."""
    return float(str(np.float32(value)))


def llama3_factors(head_dim: int, theta: float, scaling: dict) -> np.ndarray:
    """The per-frequency divisors that llama.cpp's converter writes for llama-3 rope scaling."""
    factor = scaling["factor"]
    low, high = scaling.get("low_freq_factor", 1.0), scaling.get("high_freq_factor", 4.0)
    old_ctx = scaling.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / freqs
    smooth = (old_ctx / wavelen - low) / (high - low)
    medium = 1.0 / ((1 - smooth) / factor + smooth)
    return np.where(wavelen < old_ctx / high, 1.0, np.where(wavelen > old_ctx / low, factor, medium))


def llama3_rope_scaling(rope_freqs: np.ndarray, head_dim: int, theta: float, name: str) -> dict | None:
    """Recover ``rope_scaling`` (llama3 type) from llama.cpp's ``rope_freqs`` tensor."""
    divisors = np.asarray(rope_freqs, dtype=np.float64).reshape(-1)
    if divisors.size != head_dim // 2:
        raise ModelFormatError(f"{name}: rope_freqs has {divisors.size} values, expected {head_dim // 2}")
    factor = float(divisors.max())
    if np.allclose(divisors, 1.0):
        return None
    low, high = 1.0, 4.0  # the values every llama-3 release uses; checked below
    freqs = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    wavelen = 2 * math.pi / freqs
    medium = (divisors > 1.0 + 1e-6) & (divisors < factor - 1e-6)
    if medium.any():
        smooth = (1.0 / divisors[medium] - 1.0 / factor) / (1.0 - 1.0 / factor)
        old_ctx = float(np.median(wavelen[medium] * (smooth * (high - low) + low)))
    else:
        old_ctx = 8192.0
    scaling = {
        "rope_type": "llama3",
        "factor": f32_value(factor),
        "low_freq_factor": low,
        "high_freq_factor": high,
        "original_max_position_embeddings": int(round(old_ctx)),
    }
    if not np.allclose(llama3_factors(head_dim, theta, scaling), divisors, rtol=1e-4, atol=1e-5):
        raise ModelFormatError(
            f"{name}: its rope_freqs tensor does not match llama-3 rope scaling",
            hint="this GGUF uses a rope variant anechat cannot express in an MLX config",
        )
    return scaling


def rope_scaling(gguf: GGUFFile, head_dim: int, theta: float, rope_freqs: np.ndarray | None) -> dict | None:
    """``rope_scaling`` from the GGUF keys (linear, yarn) or the ``rope_freqs`` tensor (llama3)."""
    if rope_freqs is not None:
        return llama3_rope_scaling(rope_freqs, head_dim, theta, gguf.path.name)
    factor = gguf.arch_key("rope.scaling.factor") or gguf.arch_key("rope.scale_linear")  # the latter: old files
    kind = gguf.arch_key("rope.scaling.type") or ("linear" if factor else "none")
    if kind == "none":
        return None
    if kind == "linear":
        return {"rope_type": "linear", "factor": f32_value(factor)} if factor and factor != 1.0 else None
    if kind == "yarn":
        scaling = {"rope_type": "yarn", "factor": f32_value(factor or 1.0)}
        orig = gguf.arch_key("rope.scaling.original_context_length")
        if orig:
            scaling["original_max_position_embeddings"] = int(orig)
        for key, hf_key in (("yarn_beta_fast", "beta_fast"), ("yarn_beta_slow", "beta_slow")):
            value = gguf.arch_key(f"rope.scaling.{key}")
            if value is not None:
                scaling[hf_key] = f32_value(value)
        return scaling
    raise ModelFormatError(f"{gguf.path.name} uses '{kind}' rope scaling, which anechat cannot import")


def llama_config(gguf: GGUFFile, rope_freqs: np.ndarray | None = None) -> dict:
    """config.json for the MLX/Hugging Face llama that this GGUF holds."""
    hidden = gguf.arch_int("embedding_length")
    heads = gguf.arch_int("attention.head_count")
    kv_heads = gguf.arch_int("attention.head_count_kv", heads)
    head_dim = gguf.arch_int("attention.key_length", hidden // heads)
    if gguf.arch_int("attention.value_length", head_dim) != head_dim:
        raise ModelFormatError(f"{gguf.path.name} has different key and value head sizes, which llama cannot express")
    if gguf.arch_int("rope.dimension_count", head_dim) != head_dim:
        raise ModelFormatError(f"{gguf.path.name} applies rope to part of each head only, which llama cannot express")
    theta = f32_value(gguf.arch_key("rope.freq_base", 10000.0))
    tensors = gguf.tensors
    if "token_embd.weight" not in tensors:
        raise ModelFormatError(f"{gguf.path.name} has no token embedding tensor")
    vocab_size = gguf.tensor_shape("token_embd.weight")[0]
    attention_bias = "blk.0.attn_q.bias" in tensors
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": gguf.arch_int("feed_forward_length"),
        "num_hidden_layers": gguf.arch_int("block_count"),
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": gguf.arch_int("context_length", 2048),
        "rms_norm_eps": f32_value(gguf.arch_key("attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": theta,
        "rope_scaling": rope_scaling(gguf, head_dim, theta, rope_freqs),
        "tie_word_embeddings": "output.weight" not in tensors,
        "vocab_size": vocab_size,
        "hidden_act": "silu",
        "attention_bias": attention_bias,
        "mlp_bias": "blk.0.ffn_up.bias" in tensors,
        "torch_dtype": "float32",
    }
    for key in ("bos", "eos"):
        value = gguf.get(f"tokenizer.ggml.{key}_token_id")
        if value is not None:
            config[f"{key}_token_id"] = int(value)
    return config
