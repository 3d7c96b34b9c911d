"""This rank's part of a model, split by mlx-lm: ``model.model.pipeline(group)``
(layers per rank) or ``model.shard(group)`` (tensor parallelism), applied to the
lazily loaded model before any weight is read, so each rank reads only its part.

mlx-lm's llama (SmolLM2, Llama 3.x, the tests' tiny models) has ``shard`` but no
pipeline support in the installed versions. the classes made by :func:`_classes` give it
mlx-lm's own :class:`~mlx_lm.models.pipeline.PipelineMixin` split and the
forward pass of mlx-lm's pipelined models (``qwen2.Qwen2Model``: receive from the
rank before, run the local layers, send on, ``all_gather`` the hidden state),
nothing else; models that mlx-lm pipelines itself use their own.
"""

from __future__ import annotations

from functools import lru_cache

from anechat.engines.errors import ModelFormatError

SHARD_HINT = {"pipeline": "try --shard tensor", "tensor": "try --shard pipeline"}


def split(model, group, shard: str) -> None:
    """Split ``model`` (loaded lazily) for this rank of ``group``, in place."""
    size = group.size()
    args = getattr(model, "args", None)
    model_type = getattr(args, "model_type", type(model).__module__.rsplit(".", 1)[-1])
    if shard == "tensor":
        if not hasattr(model, "shard"):
            raise _cannot(model_type, shard, "mlx-lm has no tensor parallelism for it")
        for name in ("num_attention_heads", "num_key_value_heads", "intermediate_size"):
            value = getattr(args, name, None)
            if isinstance(value, int) and value % size:
                raise _cannot(model_type, shard, f"its {name} ({value}) does not divide into {size} ranks")
        model.shard(group)
        return
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers"):
        raise _cannot(model_type, shard, "mlx-lm cannot split it by layers")
    if len(inner.layers) < size:
        raise _cannot(model_type, shard, f"it has {len(inner.layers)} layers for {size} ranks")
    if not hasattr(inner, "pipeline"):
        _pipelined_llama(model, model_type, shard)
    model.model.pipeline(group)


def _cannot(model_type: str, shard: str, why: str) -> ModelFormatError:
    return ModelFormatError(f"{model_type} cannot be split by {shard} sharding: {why}", hint=SHARD_HINT[shard])


def _pipelined_llama(model, model_type: str, shard: str) -> None:
    from mlx_lm.models import llama

    if not isinstance(model, llama.Model) or getattr(model.model, "swa_idx", None) is not None:
        raise _cannot(model_type, shard, "mlx-lm has no pipeline split for it")
    pipelined_model, pipelined = _classes()
    inner = model.model
    inner.__class__ = pipelined_model
    inner.pipeline_rank, inner.pipeline_size, inner.start_idx, inner.end_idx = 0, 1, 0, None
    model.__class__ = pipelined


@lru_cache(maxsize=None)
def _classes():
    """(PipelinedLlamaModel, PipelinedLlama), made on first use (they subclass mlx-lm's)."""
    import mlx.core as mx
    from mlx_lm.models import llama
    from mlx_lm.models.base import create_attention_mask
    from mlx_lm.models.pipeline import PipelineMixin

    class PipelinedLlamaModel(PipelineMixin, llama.LlamaModel):
        def __call__(self, inputs, cache=None, input_embeddings=None):
            h = input_embeddings if input_embeddings is not None else self.embed_tokens(inputs)
            layers = self.pipeline_layers
            rank, size = self.pipeline_rank, self.pipeline_size
            if cache is None:
                cache = [None] * len(layers)
            mask = create_attention_mask(h, cache[0])
            if rank < size - 1:
                h = mx.distributed.recv_like(h, rank + 1)
            for layer, c in zip(layers, cache):
                h = layer(h, mask, cache=c)
            if rank != 0:
                h = mx.distributed.send(h, (rank - 1) % size)
                if cache[-1] is not None:
                    cache[-1].keys = mx.depends(cache[-1].keys, h)
            if size > 1:
                h = mx.distributed.all_gather(h)[: h.shape[0]]
            return self.norm(h)

    class PipelinedLlama(llama.Model):
        @property
        def layers(self):
            return self.model.pipeline_layers

    return PipelinedLlamaModel, PipelinedLlama

