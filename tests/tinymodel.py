"""Builds tiny random-weight models (llama, Qwen 2.5, Qwen 3, Gemma 3) in the Hugging Face layout, for tests and benches.

The tokenizer is a byte-level BPE trained here with ``tokenizers`` on a small
corpus, with ChatML special tokens and a ChatML chat template, so the folder
looks like any small instruct model on the hub (config.json, model.safetensors,
tokenizer.json, tokenizer_config.json, generation_config.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a tiny test model.<|im_end|>\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? Paris is the capital of France.",
    "Hello! How can I help you today? I am a small language model.",
    "Numbers like 12345 and 67890 are split into single digits.",
    "Émoji 🙂 and accents: café, naïve, Zürich, 東京, مرحبا, שלום.",
    "def add(a, b):\n    return a + b\n",
    "Write a haiku about the sea. The sea is calm and blue tonight.",
] * 20


def train_tokenizer(vocab_size: int = 384):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


def _write_chatml_files(folder: Path, tok, config: dict, max_length: int) -> None:
    """config.json, and the files that make the folder a ChatML instruct model: the stop
    tokens (generation_config.json) and the tokenizer's settings with its chat template."""
    im_end = tok.token_to_id("<|im_end|>")
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [im_end, 0]}, indent=2))
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>",
        "unk_token": None,
        "model_max_length": max_length,
        "chat_template": CHATML_TEMPLATE,
        "added_tokens_decoder": {str(tok.token_to_id(t)): {"content": t, "special": True} for t in SPECIAL_TOKENS},
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))


def build_tiny_llama(
    folder: Path | str,
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 512,
    rope_theta: float = 10000.0,
    rope_scaling: dict | None = None,
    tie_word_embeddings: bool = False,
    seed: int = 0,
    always_stop: bool = False,
    always_text: str | None = None,
) -> Path:
    """Write a random-weight llama model folder and return its path.

    ``always_stop=True`` makes the model answer ``<|endoftext|>`` (a stop token)
    at every step, so a test can see a "stop" finish deterministically.
    ``always_text="\x1b"`` makes it answer the token of that text at every step
    (every layer adds nothing, every embedding is the same positive vector, and
    only that token's LM-head row is non-zero).
    """
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer()
    vocab = tok.get_vocab_size(with_added_tokens=True)
    # pad the embedding matrix to a multiple of 64 like real checkpoints do
    vocab_padded = (vocab + 63) // 64 * 64
    tok.save(str(folder / "tokenizer.json"))
    head_dim = hidden_size // num_heads
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    tensors: dict[str, np.ndarray] = {"model.embed_tokens.weight": w(vocab_padded, hidden_size, scale=0.5)}
    for i in range(num_layers):
        p = f"model.layers.{i}."
        tensors[p + "input_layernorm.weight"] = (1 + w(hidden_size, scale=0.05)).astype(np.float32)
        tensors[p + "post_attention_layernorm.weight"] = (1 + w(hidden_size, scale=0.05)).astype(np.float32)
        tensors[p + "self_attn.q_proj.weight"] = w(num_heads * head_dim, hidden_size)
        tensors[p + "self_attn.k_proj.weight"] = w(num_kv_heads * head_dim, hidden_size)
        tensors[p + "self_attn.v_proj.weight"] = w(num_kv_heads * head_dim, hidden_size)
        tensors[p + "self_attn.o_proj.weight"] = w(hidden_size, num_heads * head_dim)
        tensors[p + "mlp.gate_proj.weight"] = w(intermediate_size, hidden_size)
        tensors[p + "mlp.up_proj.weight"] = w(intermediate_size, hidden_size)
        tensors[p + "mlp.down_proj.weight"] = w(hidden_size, intermediate_size)
    tensors["model.norm.weight"] = np.ones(hidden_size, dtype=np.float32)
    if not tie_word_embeddings:
        tensors["lm_head.weight"] = w(vocab_padded, hidden_size, scale=0.3)
    if always_stop:
        stop_id = tok.token_to_id("<|endoftext|>")
        head = "model.embed_tokens.weight" if tie_word_embeddings else "lm_head.weight"
        tensors["model.norm.weight"] = np.zeros(hidden_size, dtype=np.float32)
        tensors[head] = np.zeros_like(tensors[head])
        assert stop_id == 0  # argmax of all-zero logits is token 0
    if always_text is not None:
        ids = tok.encode(always_text, add_special_tokens=False).ids
        assert len(ids) == 1, f"{always_text!r} is {len(ids)} tokens; pick a text that is one token"
        for name in list(tensors):
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                tensors[name] = np.zeros_like(tensors[name])
        tensors["model.embed_tokens.weight"] = np.ones_like(tensors["model.embed_tokens.weight"])
        tensors["model.norm.weight"] = np.ones(hidden_size, dtype=np.float32)
        head = np.zeros((vocab_padded, hidden_size), dtype=np.float32)
        head[ids[0]] = 1.0
        if tie_word_embeddings:
            raise ValueError("always_text needs untied embeddings")
        tensors["lm_head.weight"] = head
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

    im_end = tok.token_to_id("<|im_end|>")
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "head_dim": head_dim,
        "max_position_embeddings": max_position_embeddings,
        "rms_norm_eps": 1e-5,
        "rope_theta": rope_theta,
        "rope_scaling": rope_scaling,
        "tie_word_embeddings": tie_word_embeddings,
        "vocab_size": vocab_padded,
        "bos_token_id": tok.token_to_id("<|im_start|>"),
        "eos_token_id": im_end,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "float32",
    }
    _write_chatml_files(folder, tok, config, max_position_embeddings)
    return folder


#: the families :func:`build_tiny_family` writes, with their ``config.json`` architecture
FAMILIES = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "gemma3_text": "Gemma3ForCausalLM"}


def _family_config(family: str, vocab: int, tok, *, layers: int, tie: bool, sliding_window: int, pattern: int) -> dict:
    """config.json of a tiny model of ``family``, written by transformers' config class, plus the
    top-level keys mlx-lm reads (``rope_theta``, Gemma's ``rope_local_base_freq`` and
    ``sliding_window_pattern``), as real checkpoints carry them."""
    from transformers import Gemma3TextConfig, Qwen2Config, Qwen3Config

    common = dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=4, vocab_size=vocab,
        max_position_embeddings=512, rms_norm_eps=1e-6, tie_word_embeddings=tie,
        bos_token_id=tok.token_to_id("<|im_start|>"), eos_token_id=tok.token_to_id("<|im_end|>"), pad_token_id=tok.token_to_id("<|im_end|>"),
    )
    if family == "qwen2":
        config = Qwen2Config(num_key_value_heads=2, rope_parameters=dict(rope_type="default", rope_theta=1e6), **common).to_dict()
        extra = {"rope_theta": 1000000.0}
    elif family == "qwen3":
        config = Qwen3Config(num_key_value_heads=2, head_dim=32, rope_parameters=dict(rope_type="default", rope_theta=1e6), **common).to_dict()
        extra = {"rope_theta": 1000000.0}
    else:
        types = ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(layers)]
        config = Gemma3TextConfig(
            num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=24, sliding_window=sliding_window, layer_types=types, **common
        ).to_dict()
        extra = {"rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "sliding_window_pattern": pattern}
    config.update(extra, architectures=[FAMILIES[family]], torch_dtype="float32")
    return config


def build_tiny_family(
    folder: Path | str, family: str, *, num_layers: int = 2, tie_word_embeddings: bool | None = None,
    sliding_window: int = 8, sliding_window_pattern: int = 2, post_norm_gain: float = 0.0, seed: int = 0,
) -> Path:
    """Write a random-weight model of ``family`` (qwen2, qwen3 or gemma3_text) with the tiny
    llama's trained tokenizer and ChatML template, and return its path.

    Qwen 2.5: q/k/v biases, tied embeddings. Qwen 3: per-head q/k norms, head_dim 32 (not
    hidden / heads). Gemma 3: (1 + weight) norms around 0, pre- and post-norms, one KV head,
    query_pre_attn_scalar 24, every ``sliding_window_pattern``-th layer global and the others
    seeing the last ``sliding_window`` positions. Logits spread over several units so greedy
    ties are rare. ``post_norm_gain`` (Gemma) is added to the post-norm weights: a large one
    grows the residual stream past what fp16 holds, as real Gemma checkpoints do.
    """
    from safetensors.numpy import save_file

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; pick one of {', '.join(FAMILIES)}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer()
    vocab = (tok.get_vocab_size(with_added_tokens=True) + 63) // 64 * 64
    tok.save(str(folder / "tokenizer.json"))
    gemma = family == "gemma3_text"
    tie = (gemma or family == "qwen2") if tie_word_embeddings is None else tie_word_embeddings
    config = _family_config(family, vocab, tok, layers=num_layers, tie=tie, sliding_window=sliding_window, pattern=sliding_window_pattern)
    h, i, hd = config["hidden_size"], config["intermediate_size"], config.get("head_dim") or 16
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def norm_weight(size: int) -> np.ndarray:
        return w(size, scale=0.05) if gemma else (1 + w(size, scale=0.05)).astype(np.float32)

    # tied: embeddings so small that a token's own row, still in the residual stream, does not
    # outvote the layers (random tied models otherwise echo their last token), and a final
    # norm large enough to spread the logits again (std about 3)
    embed = 0.002 if tie else 0.5
    tensors = {"model.embed_tokens.weight": w(vocab, h, scale=embed)}
    for layer in range(num_layers):
        p = f"model.layers.{layer}."
        norms = ["input_layernorm", "post_attention_layernorm"] + (["pre_feedforward_layernorm", "post_feedforward_layernorm"] if gemma else [])
        for name in norms:
            tensors[p + name + ".weight"] = norm_weight(h) + (post_norm_gain if name.startswith("post_") and gemma else 0.0)
        for name, rows in (("q", heads * hd), ("k", kv * hd), ("v", kv * hd)):
            tensors[p + f"self_attn.{name}_proj.weight"] = w(rows, h)
            if family == "qwen2":
                tensors[p + f"self_attn.{name}_proj.bias"] = w(rows, scale=0.2)
        tensors[p + "self_attn.o_proj.weight"] = w(h, heads * hd)
        if family != "qwen2":
            tensors[p + "self_attn.q_norm.weight"] = norm_weight(hd)
            tensors[p + "self_attn.k_norm.weight"] = norm_weight(hd)
        tensors[p + "mlp.gate_proj.weight"] = w(i, h)
        tensors[p + "mlp.up_proj.weight"] = w(i, h)
        tensors[p + "mlp.down_proj.weight"] = w(h, i)
    tensors["model.norm.weight"] = (norm_weight(h) + (3.0 / (embed * h**0.5) - 1.0) * tie).astype(np.float32)
    if not tie:
        tensors["lm_head.weight"] = w(vocab, h, scale=0.3)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})

    _write_chatml_files(folder, tok, config, config["max_position_embeddings"])
    return folder
