"""The model description both converters rebuild: one :class:`ModelSpec` read from ``config.json``.

Four families share one decoder (:mod:`anechat.engines.modeling.decoder`); what tells them
apart is a handful of switches read here, in one place:

- **llama** (Llama 2/3.x, SmolLM2, TinyLlama): RMSNorm, SiLU-gated MLP, rope (plain, linear
  or Llama 3 scaling), optional attention biases;
- **qwen2** (Qwen 2.5): biases on the q/k/v projections, tied or untied embeddings;
- **qwen3**: per-head RMSNorm on queries and keys (before rope), no biases;
- **gemma3_text** (Gemma 3): RMSNorm scaled by ``1 + weight``, norms before *and* after
  attention and MLP, GELU-tanh-gated MLP, embeddings scaled by √hidden, queries scaled by
  ``query_pre_attn_scalar ** -0.5``, per-head q/k norms, and local sliding-window layers
  (their own rope base) interleaved with global ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from anechat.engines.errors import ModelFormatError

#: ``config.json`` architecture -> model family
ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Gemma3ForCausalLM": "gemma3_text",
}
#: ``config.json`` architectures the converters know how to rebuild.
SUPPORTED_ARCHITECTURES = tuple(ARCHITECTURES)
#: rope_scaling types implemented (``None`` / "default" is plain rope).
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")
#: a layer's attention: over the whole context, or over the last ``sliding_window`` positions
FULL, SLIDING = "full_attention", "sliding_attention"


@dataclass(frozen=True)
class ModelSpec:
    """The numbers and switches that shape a decoder-only model."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int  # rows of the embedding / LM head matrices
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict | None
    tie_word_embeddings: bool
    license: str | None = None
    family: str = "llama"
    qkv_bias: bool = False
    o_bias: bool = False
    qk_norm: bool = False  # per-head RMSNorm on queries and keys, before rope
    norm_offset: float = 0.0  # RMSNorm multiplies by (norm_offset + weight): 1 for Gemma
    sandwich_norms: bool = False  # Gemma: post-attention / pre- and post-feedforward norms too
    activation: str = "silu"  # the MLP gate: "silu" or "gelu_tanh"
    embed_scale: float = 1.0  # embeddings are multiplied by this (Gemma: √hidden, bf16-rounded)
    query_scale: float = 0.0  # 0: head_dim ** -0.5
    layer_types: tuple[str, ...] = ()  # per layer FULL or SLIDING; () = all FULL
    sliding_window: int | None = None
    local_rope_theta: float | None = None  # rope base of the sliding layers
    #: the residual stream is carried multiplied by this (a power of two, <= 1) so it fits in
    #: fp16: embeddings and post-norms scaled, pre-norms are scale-invariant (their eps follows)
    residual_scale: float = 1.0

    @property
    def rope_type(self) -> str:
        if not self.rope_scaling:
            return "default"
        return str(self.rope_scaling.get("rope_type") or self.rope_scaling.get("type") or "default")

    @property
    def attention_scale(self) -> float:
        return self.query_scale or self.head_dim**-0.5

    def layer_type(self, layer: int) -> str:
        return self.layer_types[layer] if self.layer_types else FULL

    @property
    def has_sliding_layers(self) -> bool:
        return SLIDING in self.layer_types


def family_of(cfg: dict) -> str:
    """The model family of a ``config.json``, or a one-line refusal listing the supported ones."""
    archs = cfg.get("architectures") or []
    for arch in archs:
        if arch in ARCHITECTURES:
            return ARCHITECTURES[arch]
    found = ", ".join(archs) or f"model_type {cfg.get('model_type')!r}"
    raise ModelFormatError(
        f"cannot convert {found}",
        hint="supported architectures: " + ", ".join(SUPPORTED_ARCHITECTURES) + " (Llama 2/3.x, SmolLM2, Qwen 2.5, Qwen 3, Gemma 3)",
    )


def _int(cfg: dict, key: str) -> int:
    if not isinstance(cfg.get(key), int):
        raise ModelFormatError(f"config.json lacks {key}")
    return cfg[key]


def _rope(cfg: dict, kind: str) -> dict:
    """The rope parameters of a layer kind: transformers 5 keeps them in ``rope_parameters``
    (per layer kind for Gemma 3), older configs at the top level."""
    params = cfg.get("rope_parameters") or {}
    if kind in params and isinstance(params[kind], dict):
        return params[kind]
    return params if "rope_theta" in params or "rope_type" in params else {}


def _scaling(cfg: dict, rope: dict) -> dict | None:
    if cfg.get("rope_scaling"):
        return cfg["rope_scaling"]
    return rope if rope.get("rope_type", "default") != "default" else None


def _layer_types(cfg: dict, family: str, layers: int) -> tuple[str, ...]:
    if family != "gemma3_text":
        if cfg.get("use_sliding_window"):
            raise ModelFormatError("use_sliding_window=true is not supported for this family")
        return ()
    types = cfg.get("layer_types")
    if types:
        if len(types) != layers or any(t not in (FULL, SLIDING) for t in types):
            raise ModelFormatError(f"config.json layer_types must list {FULL!r} or {SLIDING!r} for each of the {layers} layers")
        return tuple(types)
    pattern = int(cfg.get("sliding_window_pattern") or cfg.get("_sliding_window_pattern") or 6)
    return tuple(SLIDING if (i + 1) % pattern else FULL for i in range(layers))


def _bf16(value: float) -> float:
    """``value`` rounded to bfloat16, as Gemma's checkpoints (and mlx-lm) apply √hidden."""
    import numpy as np

    bits = np.array([value], dtype=np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return float(rounded.view(np.float32)[0])


def spec_from_config(cfg: dict, name: str) -> ModelSpec:
    """Read the shape of a float model of a supported family from its ``config.json`` dict."""
    family = family_of(cfg)
    if cfg.get("mlp_bias"):
        raise ModelFormatError("mlp_bias=true is not supported by the converters")
    act = cfg.get("hidden_activation") or cfg.get("hidden_act") or "silu"
    activation = {"silu": "silu", "gelu_pytorch_tanh": "gelu_tanh", "gelu_tanh": "gelu_tanh"}.get(act)
    if activation is None or (family == "gemma3_text") != (activation == "gelu_tanh"):
        raise ModelFormatError(f"hidden_act {act!r} is not supported for {family}")
    for key in ("final_logit_softcapping", "attn_logit_softcapping", "use_bidirectional_attention"):
        if cfg.get(key):
            raise ModelFormatError(f"{key} is not supported by the converters")
    hidden, layers, heads = _int(cfg, "hidden_size"), _int(cfg, "num_hidden_layers"), _int(cfg, "num_attention_heads")
    kv_heads = cfg.get("num_key_value_heads") or heads
    if heads % kv_heads:
        raise ModelFormatError(f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    gemma = family == "gemma3_text"
    full = _rope(cfg, FULL)
    local = _rope(cfg, SLIDING) if gemma else {}
    types = _layer_types(cfg, family, layers)
    spec = ModelSpec(
        name=name,
        hidden_size=hidden,
        intermediate_size=_int(cfg, "intermediate_size"),
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=cfg.get("head_dim") or hidden // heads,
        vocab_size=int(cfg.get("vocab_size") or 0),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(cfg.get("rope_theta") or full.get("rope_theta") or (1e6 if gemma else 10000.0)),
        rope_scaling=_scaling(cfg, full),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", gemma)),
        license=cfg.get("license"),
        family=family,
        qkv_bias=family == "qwen2" or bool(cfg.get("attention_bias")),
        o_bias=family == "llama" and bool(cfg.get("attention_bias")),
        qk_norm=family in ("qwen3", "gemma3_text"),
        norm_offset=1.0 if gemma else 0.0,
        sandwich_norms=gemma,
        activation=activation,
        embed_scale=_bf16(hidden**0.5) if gemma else 1.0,
        query_scale=float(cfg.get("query_pre_attn_scalar") or 256) ** -0.5 if gemma else 0.0,
        layer_types=types,
        sliding_window=int(cfg.get("sliding_window") or 512) if SLIDING in types else None,
        local_rope_theta=float(cfg.get("rope_local_base_freq") or local.get("rope_theta") or 10000.0) if gemma else None,
    )
    if spec.rope_type not in SUPPORTED_ROPE_TYPES:
        raise ModelFormatError(
            f"rope_scaling type {spec.rope_type!r} is not supported", hint="supported: " + ", ".join(SUPPORTED_ROPE_TYPES)
        )
    return spec
