"""The messages rank 0 sends the other ranks, over ``mx.distributed`` collectives.

Every message is a broadcast made of ``all_sum`` calls in which only rank 0
contributes non-zero values (exact for integers and for float32 + 0): a fixed
header, the sampling floats, then a payload of int32 (token ids, or a path's
UTF-8 bytes). Every rank makes the same calls in the same order, on the
generation stream, so they queue behind the model's own collectives.

While a turn decodes, rank 0 says after every token whether the ranks go on
(:meth:`Link.decide`), so cancelling or stopping at any token keeps every rank's
KV cache in step. A lost peer makes MLX raise at once ("[ring] connection to a
peer was lost"); that becomes :class:`RanksDown`, one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from anechat.engines.base import SamplingParams
from anechat.engines.errors import EngineError

# message kinds (header[0]); 0 is never sent so an all-zero header means a broken link
LOAD, TURN, MEMORY, UNLOAD, QUIT = 1, 2, 3, 4, 5
_HEADER = 8
_FLOATS = 4
_MEMORY_FIELDS = ("active", "peak", "weights", "kv_cache")


class RanksDown(EngineError):
    """A rank stopped answering (died, lost its link, never started)."""

    kind = "ranks_down"


@dataclass(frozen=True)
class Message:
    kind: int
    payload: tuple[int, ...] = ()
    start: int = 0  # TURN: tokens of the cache to keep; LOAD: 1 = tensor sharding
    params: SamplingParams | None = None
    context_length: int = 0  # LOAD

    @property
    def text(self) -> str:
        return bytes(self.payload).decode("utf-8")

    @classmethod
    def load(cls, path: str, shard: str, context_length: int | None) -> "Message":
        return cls(LOAD, tuple(path.encode("utf-8")), start=int(shard == "tensor"), context_length=context_length or 0)


class Link:
    """One rank's end of the message channel (``group``: the whole world)."""

    def __init__(self, group, stream) -> None:
        self.group = group
        self.stream = stream
        self.rank = group.rank()
        self.size = group.size()
        self.broken: str | None = None
        #: set by rank 0's engine: turns a lost peer into the line that says which rank and how
        self.explain: Callable[[BaseException], RanksDown] | None = None

    # -- collectives ------------------------------------------------------------
    def _sum(self, values, dtype):
        import mlx.core as mx

        if self.broken:
            raise RanksDown(self.broken, hint="fall back to a single process, or restart with --hosts")
        try:
            with mx.stream(self.stream):
                out = mx.distributed.all_sum(mx.array(values, dtype=dtype), group=self.group, stream=self.stream)
                mx.eval(out)
            return out
        except RuntimeError as exc:
            raise self.lost(exc) from exc

    def lost(self, exc: BaseException) -> RanksDown:
        """Mark the link broken; the one-line error for it."""
        if self.broken:
            return RanksDown(self.broken)
        self.broken = f"a rank of the distributed session was lost ({_first_line(exc)})"
        if self.explain is not None:
            return self.explain(exc)
        return RanksDown(self.broken, hint="the conversation is kept: fall back to a single process, or restart with --hosts")

    # -- messages -----------------------------------------------------------------
    def send(self, message: Message) -> Message:
        """Rank 0: broadcast ``message``; returns it as every rank decoded it."""
        p = message.params or SamplingParams()
        header = [message.kind, len(message.payload), message.start, p.top_k, p.repetition_context, p.seed or 0, int(p.seed is not None), message.context_length]
        floats = [p.temperature, p.top_p, p.min_p, p.repetition_penalty]
        return self._exchange(header, floats, list(message.payload), message.params is not None)

    def receive(self) -> Message:
        """Any other rank: wait for rank 0's next message."""
        return self._exchange(None, None, None, True)

    def _exchange(self, header, floats, payload, with_params: bool) -> Message:
        import mlx.core as mx

        h = [int(x) for x in self._sum(header or [0] * _HEADER, mx.int32).tolist()]
        f = [float(x) for x in self._sum(floats or [0.0] * _FLOATS, mx.float32).tolist()]
        n = h[1]
        ids = tuple(int(x) for x in self._sum(payload if payload is not None else [0] * n, mx.int32).tolist()) if n else ()
        if h[0] == 0:
            raise self.lost(RuntimeError("an empty message arrived"))
        params = None
        if with_params and h[0] == TURN:
            params = SamplingParams(
                temperature=f[0], top_p=f[1], min_p=f[2], repetition_penalty=f[3],
                top_k=h[3], repetition_context=h[4], seed=h[5] if h[6] else None,
            )
        return Message(h[0], ids, start=h[2], params=params, context_length=h[7])

    def decide(self, go_on: bool | None) -> bool:
        """After each token: rank 0 says whether to go on (the others pass None and learn it)."""
        import mlx.core as mx

        return bool(self._sum([int(bool(go_on))], mx.int32).item())

    def gather_flags(self, ok: bool) -> list[bool]:
        """Every rank's yes/no (after loading), rank 0 first."""
        import mlx.core as mx

        return [bool(x) for x in self._gather([int(ok)], mx.int32)]

    def _gather(self, row: list, dtype) -> list:
        import mlx.core as mx

        if self.broken:
            raise RanksDown(self.broken)
        try:
            with mx.stream(self.stream):
                out = mx.distributed.all_gather(mx.array(row, dtype=dtype), group=self.group, stream=self.stream)
                mx.eval(out)
        except RuntimeError as exc:
            raise self.lost(exc) from exc
        return out.tolist()

    def gather_memory(self, mine: dict) -> list[dict]:
        """Every rank's memory figures (bytes), rank 0 first."""
        import mlx.core as mx

        row = [int(mine.get(k, 0)) // 1024 for k in _MEMORY_FIELDS]
        values = [int(x) for x in self._gather(row, mx.int32)]
        k = len(_MEMORY_FIELDS)
        return [dict(zip(_MEMORY_FIELDS, (v * 1024 for v in values[i * k : (i + 1) * k]))) for i in range(self.size)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
