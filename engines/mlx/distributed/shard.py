"""This rank's part of a model, split by mlx-lm: ``model.model.pipeline(group, split)``
(layers per rank) or ``model.shard(group)`` (tensor parallelism), applied to the
lazily loaded model before any weight is read, so each rank reads only its part.

Pipeline: the layers go to the ranks by their bytes, not their count
(:func:`balanced_split`), so the largest rank holds about ``1/N`` of the model.

mlx-lm's llama (SmolLM2, Llama 3.x, the tests' tiny models) has ``shard`` but no
pipeline support in the installed versions. The classes made by :func:`_classes`
give it mlx-lm's own :class:`~mlx_lm.models.pipeline.PipelineMixin` split and the
send / receive steps of mlx-lm's pipelined models, arranged so that only rank 0
holds the embedding table, the final norm and the LM head: rank 0 looks the tokens
up and sends the vectors to the rank with the first layers (the last rank); each
rank receives from the rank after it, runs its layers and sends on to the rank
before it; rank 0 runs the last layers and scores the vocabulary. The other ranks
drop those tensors before they are read (a tied table is the model's largest
tensor) and score nothing (:func:`scores_tokens`). Models that mlx-lm pipelines
itself keep their own forward pass (every rank holds its ends).
"""

from __future__ import annotations

import inspect
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
    ends_on_rank_0 = not hasattr(inner, "pipeline")
    if ends_on_rank_0:
        _pipelined_llama(model, model_type, shard)
    layers = [_nbytes(layer) for layer in inner.layers]
    ends = _nbytes(model) - sum(layers)  # embedding table, final norm, LM head
    if ends_on_rank_0:
        counts = balanced_split(layers, size, rank_0_extra=ends)
    else:  # every rank holds the ends: only the layers' bytes differ
        counts = balanced_split(layers, size)
    if "split" in inspect.signature(inner.pipeline).parameters:
        inner.pipeline(group, split=counts)
    else:  # an mlx-lm without uneven splits: its own even split
        inner.pipeline(group)
    if ends_on_rank_0 and group.rank() != 0:
        for name in ("embed_tokens", "norm"):
            delattr(inner, name)
        if "lm_head" in model:
            del model.lm_head


def balanced_split(layer_bytes: list[int], ranks: int, rank_0_extra: int = 0) -> list[int]:
    """Layers per rank, rank 0 first (as ``PipelineMixin.pipeline`` takes them), so that
    the largest rank's bytes are as small as they can be.

    The last rank runs the first layers and rank 0 the last ones (mlx-lm's order);
    rank 0 also holds ``rank_0_extra`` bytes. Every rank gets at least one layer.
    """
    n = len(layer_bytes)
    if not 1 <= ranks <= n:
        raise ValueError(f"cannot split {n} layers over {ranks} ranks")
    prefix = [0]
    for b in layer_bytes:
        prefix.append(prefix[-1] + b)
    # best[j][i]: the smallest possible largest part when layers[:i] fill parts 0..j in
    # layer order (part j is rank ranks-1-j); cut[j][i]: where part j then begins
    best = [[float("inf")] * (n + 1) for _ in range(ranks)]
    cut = [[0] * (n + 1) for _ in range(ranks)]
    for i in range(1, n + 1):
        best[0][i] = prefix[i] + (rank_0_extra if ranks == 1 else 0)
    for j in range(1, ranks):
        extra = rank_0_extra if j == ranks - 1 else 0
        for i in range(j + 1, n + 1):
            for k in range(j, i):
                value = max(best[j - 1][k], prefix[i] - prefix[k] + extra)
                if value < best[j][i]:
                    best[j][i], cut[j][i] = value, k
    counts, end = [], n
    for j in range(ranks - 1, 0, -1):
        begin = cut[j][end]
        counts.append(end - begin)  # part j: rank ranks-1-j, so rank 0 comes first
        end = begin
    counts.append(end)
    return counts


def scores_tokens(model) -> bool:
    """Whether this rank computes logits (False: a pipeline rank without the LM head,
    whose sampled tokens mean nothing; it only passes hidden states on)."""
    return getattr(model, "scores_tokens", True)


def _nbytes(module) -> int:
    from mlx.utils import tree_flatten

    return sum(int(a.nbytes) for _, a in tree_flatten(module.parameters()))


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
            layers = self.pipeline_layers
            rank, size = self.pipeline_rank, self.pipeline_size
            if cache is None:
                cache = [None] * len(layers)
            # the hidden states' dtype on the wire: what every rank's layers take
            dtype = layers[0].input_layernorm.weight.dtype
            if rank == 0:
                h = input_embeddings if input_embeddings is not None else self.embed_tokens(inputs)
                if size > 1:
                    # to the rank with the first layers; queued now, so the stream
                    # sends it before it waits for the hidden states to come back
                    mx.async_eval(mx.distributed.send(h.astype(dtype), size - 1))
                    h = mx.distributed.recv((*h.shape[:2], self.args.hidden_size), dtype, 1)
            else:
                h = mx.distributed.recv((*inputs.shape[:2], self.args.hidden_size), dtype, (rank + 1) % size)
            mask = create_attention_mask(h, cache[0])
            for layer, c in zip(layers, cache):
                h = layer(h, mask, cache=c)
            if rank == 0:
                return self.norm(h)
            h = mx.distributed.send(h, rank - 1)
            if cache[-1] is not None:
                cache[-1].keys = mx.depends(cache[-1].keys, h)
            # no vocabulary here: one "logit" per position, computed once h is sent
            return mx.depends(mx.zeros((*h.shape[:2], 1), dtype), h)

    class PipelinedLlama(llama.Model):
        @property
        def layers(self):
            return self.model.pipeline_layers

        @property
        def scores_tokens(self) -> bool:
            return self.model.pipeline_rank == 0

        def __call__(self, inputs, cache=None, input_embeddings=None):
            if self.scores_tokens:
                return super().__call__(inputs, cache, input_embeddings)
            return self.model(inputs, cache, input_embeddings)

    return PipelinedLlamaModel, PipelinedLlama
