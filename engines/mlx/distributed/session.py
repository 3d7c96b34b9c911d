"""An MLX session on one rank of a distributed model.

Rank 0's session is the one the app talks to: the shared turn driver
(:class:`~anechat.engines.session.TokenSession`) runs there unchanged — prompt
templating, prefix reuse, stop tokens, cancellation, figures. Its ``_stream``
first broadcasts the turn (the whole context's token ids, how much of the cache
to keep, the sampling parameters with a seed every rank uses) and then runs
mlx-lm's ``generate_step`` in lockstep with the other ranks, saying after every
token whether they go on. A follower's session (:meth:`RankSession.follow`)
runs the very same steps on what it received, so every KV cache holds the same
tokens: with tensor sharding every rank samples the same token from the same
logits; in a pipeline only rank 0 holds the LM head and samples, and the other
ranks' forward passes take the hidden states rank 0 sends (:mod:`.shard`).
"""

from __future__ import annotations

import random
from typing import Iterator

from anechat.engines.base import ModelInfo, SamplingParams
from anechat.engines.tokenizer import ChatTokenizer
from anechat.engines.mlx.engine import MLXSession
from anechat.engines.mlx.distributed.link import TURN, Link, Message


class RankSession(MLXSession):
    """One rank's share of the model and its KV cache."""

    def __init__(self, model, info: ModelInfo, tokenizer: ChatTokenizer, link: Link) -> None:
        super().__init__(model, info, tokenizer)
        self.link = link
        self.in_turn = False

    # -- rank 0 -------------------------------------------------------------------
    def _stream(self, new_ids: list[int], context_ids: list[int], params: SamplingParams) -> Iterator[int]:
        if params.seed is None:  # every rank must draw the same random numbers
            params = params.with_(seed=random.randrange(2**31))
        start = min(self._cache_length(), len(context_ids) - len(new_ids))
        sent = self.link.send(Message(TURN, tuple(context_ids), start=start, params=params))
        tokens = self._steps(context_ids[start:], context_ids, sent.params)
        self.in_turn = True
        try:
            for token in tokens:
                yield token
                self.link.decide(True)
        finally:
            self.in_turn = False
            try:
                if not self.link.broken:
                    self.link.decide(False)
            finally:
                tokens.close()

    # -- the other ranks ----------------------------------------------------------------
    def follow(self, message: Message) -> None:
        """Run one turn rank 0 announced, token for token, until it says stop."""
        import mlx.core as mx

        from anechat.engines.mlx.distributed.shard import scores_tokens

        context = list(message.payload)
        if self._cache_length() > message.start:
            self._trim_cache(message.start)
        mx.reset_peak_memory()
        params = message.params
        if not scores_tokens(self.model):  # no logits here: nothing to sample or penalise
            params = SamplingParams(seed=params.seed if params is not None else None)
        tokens = self._steps(context[message.start :], context, params)
        try:
            for _ in tokens:
                if not self.link.decide(None):
                    break
        finally:
            tokens.close()

    # -- both ---------------------------------------------------------------------------
    def _steps(self, new_ids: list[int], context_ids: list[int], params: SamplingParams) -> Iterator[int]:
        """MLXSession's generation; a lost peer becomes one RanksDown line."""
        tokens = super()._stream(new_ids, context_ids, params)
        try:
            yield from tokens
        except RuntimeError as exc:
            if "[ring]" in str(exc) or "distributed" in str(exc).lower():
                raise self.link.lost(exc) from exc
            raise
        finally:
            tokens.close()

    def memory_row(self) -> dict:
        """This rank's memory figures (bytes), for :meth:`Link.gather_memory`."""
        import mlx.core as mx

        from anechat.engines.mlx.loader import weights_nbytes

        return {
            "active": int(mx.get_active_memory()),
            "peak": int(mx.get_peak_memory()),
            "weights": weights_nbytes(self.model) if self.model is not None else 0,
            "kv_cache": self.cache_bytes(),
        }
