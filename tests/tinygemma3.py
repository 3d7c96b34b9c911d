"""A tiny random-weight Gemma 3 text model, as a Hugging Face folder and as the GGUF file
llama.cpp's converter (``Gemma3Model``) writes from it:

* a SentencePiece BPE vocabulary trained here with ``sentencepiece`` (Gemma's ids: pad 0,
  eos 1, bos 2, unk 3; ``<start_of_turn>`` / ``<end_of_turn>`` control pieces; ``\\n`` and
  ``<start_of_image>`` user-defined; byte fallback; no dummy prefix), stored as pieces,
  scores and piece types, without a chat template (as GGUF-my-repo writes the base models);
* every ``*norm.weight`` stored as ``1 + w``, llama.cpp names, no ``output.weight`` (tied);
* chosen tensors as Q4_K / Q6_K blocks (tests/kquants.py), the rest float32.

Written independently of anechat's importer, so a test comparing the two proves the importer.
``always_token`` makes the model answer that piece at every step (layers add nothing, every
embedding is the same positive vector but that piece's, which is twice as long).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from kquants import quantize_q4_k, quantize_q6_k
from tinymodel import CORPUS

CONTROL = ["<start_of_turn>", "<end_of_turn>"]
USER_DEFINED = ["\n", "<start_of_image>"]
LAYER_PARTS = {
    "input_layernorm": "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
#: the K-quant mix of a Q4_K_M file, on the tensors whose rows are whole 256-value blocks
K_QUANTS = {
    "token_embd.weight": "Q6_K",
    "blk.0.attn_q.weight": "Q4_K",
    "blk.0.ffn_gate.weight": "Q4_K",
    "blk.1.ffn_up.weight": "Q4_K",
    "blk.0.ffn_down.weight": "Q6_K",
    "blk.5.ffn_down.weight": "Q4_K",
}


def train_spm() -> bytes:
    """A SentencePiece BPE model proto trained on the tiny corpus, Gemma-style."""
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([line.replace("\n", " ") for line in CORPUS]),
        model_writer=model,
        model_type="bpe",
        vocab_size=420,
        byte_fallback=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        split_digits=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        control_symbols=CONTROL,
        user_defined_symbols=USER_DEFINED,
        character_coverage=1.0,
        minloglevel=2,
    )
    return model.getvalue()


def gguf_name(hf_name: str) -> str:
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    _, _, layer, rest = hf_name.split(".", 3)
    part, kind = rest.rsplit(".", 1)
    return f"blk.{layer}.{LAYER_PARTS[part]}.{kind}"


def build_tiny_gemma3(
    folder: Path, *, seed: int = 0, always_token: str | None = None, k_quants: bool = True
) -> tuple[Path, Path]:
    """Write the Hugging Face folder ``folder`` and ``folder.gguf`` (all float32 unless ``k_quants``);
    returns (folder, gguf path)."""
    from safetensors.numpy import save_file
    from sentencepiece import sentencepiece_model_pb2 as pb

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    proto_bytes = train_spm()
    (folder / "tokenizer.model").write_bytes(proto_bytes)
    proto = pb.ModelProto.FromString(proto_bytes)
    pieces = [(p.piece, p.score, int(p.type)) for p in proto.pieces]
    vocab = (len(pieces) + 63) // 64 * 64
    pieces += [(f"<unused{i}>", 0.0, 3) for i in range(vocab - len(pieces))]  # padded as Gemma's <unusedN>

    hidden, heads, kv_heads, head_dim, inter, layers = 256, 2, 1, 64, 512, 6
    rng = np.random.default_rng(seed)

    def w(*shape: int, scale: float = 0.08) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    t: dict[str, np.ndarray] = {"model.embed_tokens.weight": w(vocab, hidden, scale=0.5)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for norm in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm"):
            t[p + norm + ".weight"] = w(hidden, scale=0.3)
        t[p + "self_attn.q_norm.weight"] = w(head_dim, scale=0.3)
        t[p + "self_attn.k_norm.weight"] = w(head_dim, scale=0.3)
        t[p + "self_attn.q_proj.weight"] = w(heads * head_dim, hidden)
        t[p + "self_attn.k_proj.weight"] = w(kv_heads * head_dim, hidden)
        t[p + "self_attn.v_proj.weight"] = w(kv_heads * head_dim, hidden)
        t[p + "self_attn.o_proj.weight"] = w(hidden, heads * head_dim)
        t[p + "mlp.gate_proj.weight"] = w(inter, hidden)
        t[p + "mlp.up_proj.weight"] = w(inter, hidden)
        t[p + "mlp.down_proj.weight"] = w(hidden, inter)
    t["model.norm.weight"] = w(hidden, scale=0.3)
    if always_token is not None:
        target = next(i for i, (text, _, _) in enumerate(pieces) if text == always_token)
        for name in t:
            if name.endswith(("o_proj.weight", "down_proj.weight")):
                t[name] = np.zeros_like(t[name])
        t["model.embed_tokens.weight"] = np.full((vocab, hidden), 0.1, np.float32)
        t["model.embed_tokens.weight"][target] = 0.2
        t["model.norm.weight"] = np.zeros(hidden, np.float32)
    save_file(t, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": hidden,
        "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv_heads, "head_dim": head_dim, "max_position_embeddings": 512,
        "rms_norm_eps": 1e-6, "rope_theta": 1_000_000.0, "rope_local_base_freq": 10_000.0, "rope_scaling": None,
        "query_pre_attn_scalar": head_dim, "sliding_window": 4, "sliding_window_pattern": 6,
        "vocab_size": vocab, "tie_word_embeddings": True, "bos_token_id": 2, "eos_token_id": 1, "pad_token_id": 0,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    path = folder.with_suffix(".gguf")
    _write_gguf(path, config, t, pieces, K_QUANTS if k_quants else {})
    return folder, path


def _write_gguf(path: Path, config: dict, tensors: dict[str, np.ndarray], pieces: list, quants: dict) -> None:
    import gguf

    w = gguf.GGUFWriter(str(path), "gemma3")
    w.add_name("tiny test gemma3")
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_head_count_kv(config["num_key_value_heads"])
    w.add_key_length(config["head_dim"])
    w.add_value_length(config["head_dim"])
    w.add_rope_freq_base(config["rope_theta"])
    w.add_layer_norm_rms_eps(config["rms_norm_eps"])
    w.add_sliding_window(config["sliding_window"])
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([p[0] for p in pieces])
    w.add_token_scores([p[1] for p in pieces])
    w.add_token_types([p[2] for p in pieces])
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    for name, value in tensors.items():
        gname = gguf_name(name)
        if name.endswith("norm.weight"):
            value = value + np.float32(1.0)  # llama.cpp's Gemma: (1 + w) stored
        kind = quants.get(gname)
        if kind == "Q4_K":
            w.add_tensor(gname, quantize_q4_k(value), raw_dtype=gguf.GGMLQuantizationType.Q4_K)
        elif kind == "Q6_K":
            w.add_tensor(gname, quantize_q6_k(value), raw_dtype=gguf.GGMLQuantizationType.Q6_K)
        else:
            w.add_tensor(gname, value.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
