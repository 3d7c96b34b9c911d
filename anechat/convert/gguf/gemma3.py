"""What a Gemma 3 text model looks like inside a llama.cpp GGUF, and its Hugging Face config.

llama.cpp's converter (``Gemma3Model`` in convert_hf_to_gguf.py) writes:

* every ``*norm.weight`` as ``1 + weight``: Gemma's RMSNorm multiplies by ``(1 + w)``
  and llama.cpp's by ``w``. Hugging Face and mlx-lm keep ``w``, so the importer
  subtracts 1 again (:data:`NORM_SHIFT`);
* q/k projections unpermuted (Gemma uses rotate-half rope, as llama.cpp's NEOX mode);
* no ``output.weight``: the LM head is the token embedding (tied);
* four norms per layer — ``attn_norm``, ``post_attention_norm`` around attention,
  ``ffn_norm``, ``post_ffw_norm`` around the MLP — and per-head ``attn_q_norm`` /
  ``attn_k_norm``.

What the file does not say, llama.cpp hard-codes (llama-model.cpp, ``LLM_ARCH_GEMMA3``),
and so do we: five sliding-window layers then one global layer, local rope base
10000, and the query scale ``1/sqrt(head_dim)`` (``1/sqrt(hidden/heads)`` for the
62-layer 27B).
"""

from __future__ import annotations

from anechat.convert.gguf.config import f32_value, rope_scaling
from anechat.convert.gguf.reader import GGUFFile

NORM_SHIFT = 1.0
SLIDING_WINDOW_PATTERN = 6  # llama.cpp: hparams.set_swa_pattern(6)
LOCAL_ROPE_BASE = 10000.0  # llama.cpp: hparams.rope_freq_base_train_swa
LAYERS_OF_27B = 62

LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "post_attention_norm": "post_attention_layernorm",
    "ffn_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}

#: Gemma's own chat format, for GGUFs written without ``tokenizer.chat_template``
#: (GGUF-my-repo conversions of the base models); llama.cpp falls back to the same
#: built-in "gemma" template. Text only: images are not part of a text model.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set first_user_prefix = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)
#: the tokens that template writes; it is used only when the vocabulary has them
TEMPLATE_TOKENS = ("<start_of_turn>", "<end_of_turn>")


def sliding_window_pattern(gguf: GGUFFile, layers: int) -> int:
    """Every how many layers a global one comes: the file's per-layer flags if it has them, else 6."""
    flags = gguf.arch_key("attention.sliding_window_pattern")
    if isinstance(flags, list) and len(flags) == layers:
        globals_ = [i for i, local in enumerate(flags) if not local]
        if globals_:
            return globals_[0] + 1
    return SLIDING_WINDOW_PATTERN


def gemma3_config(gguf: GGUFFile) -> dict:
    """config.json (``gemma3_text``) for the Gemma 3 text model this GGUF holds."""
    hidden = gguf.arch_int("embedding_length")
    heads = gguf.arch_int("attention.head_count")
    layers = gguf.arch_int("block_count")
    head_dim = gguf.arch_int("attention.key_length", hidden // heads)
    theta = f32_value(gguf.arch_key("rope.freq_base", 1_000_000.0))
    pattern = sliding_window_pattern(gguf, layers)
    window = gguf.arch_int("attention.sliding_window", 512)
    config = {
        "architectures": ["Gemma3ForCausalLM"],
        "model_type": "gemma3_text",
        "hidden_size": hidden,
        "intermediate_size": gguf.arch_int("feed_forward_length"),
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": gguf.arch_int("attention.head_count_kv", heads),
        "head_dim": head_dim,
        "max_position_embeddings": gguf.arch_int("context_length", 32768),
        "rms_norm_eps": f32_value(gguf.arch_key("attention.layer_norm_rms_epsilon", 1e-6)),
        "rope_theta": theta,
        "rope_local_base_freq": LOCAL_ROPE_BASE,
        "rope_scaling": rope_scaling(gguf, head_dim, theta, None),
        "query_pre_attn_scalar": hidden // heads if layers == LAYERS_OF_27B else head_dim,
        "sliding_window": window,
        "sliding_window_pattern": pattern,
        "layer_types": ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers)],
        "hidden_activation": "gelu_pytorch_tanh",
        "final_logit_softcapping": gguf.arch_key("final_logit_softcapping"),
        "attn_logit_softcapping": gguf.arch_key("attn_logit_softcapping"),
        "tie_word_embeddings": "output.weight" not in gguf.tensors,
        "vocab_size": gguf.tensor_shape("token_embd.weight")[0],
        "attention_bias": False,
        "torch_dtype": "float32",
    }
    for key in ("bos", "eos", "padding"):
        value = gguf.get(f"tokenizer.ggml.{key}_token_id")
        if value is not None:
            config[f"{'pad' if key == 'padding' else key}_token_id"] = int(value)
    return config
