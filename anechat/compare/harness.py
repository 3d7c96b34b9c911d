"""Running a comparison: load, warm up and time each contestant, sequentially or concurrently."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Sequence

from anechat.chat.controller import ChatController
from anechat.engines.base import CancelToken, GenerationStats, SamplingParams, Session, TextDelta
from anechat.engines.threads import release_engine_thread
from anechat.engines.errors import AnechatError, InvalidParameter
from anechat.compare.results import CompareReport, Contestant, ContestantResult, OnEvent, Phase

_TOKENIZER_PROBE = "The quick brown fox: 12345, café, 東京 🙂\n<|im_end|>"


def tokenizer_key(session: Session) -> tuple | None:
    """(vocabulary size, ids of a probe text): equal for tokenizers that give ids the same meaning."""
    tok = getattr(session, "tokenizer", None)
    if tok is None:
        return None
    try:
        return (int(tok.vocab_size), tuple(tok.encode(_TOKENIZER_PROBE)))
    except Exception:
        return None


def warm_up(session: Session) -> None:
    """A two-token generation from a few token ids, then an empty cache."""
    vocab = max(int(getattr(session.info, "vocab_size", 0) or 0), 16)
    ids = [(7 * i + 3) % vocab for i in range(8)]
    for _ in session.generate_ids(ids, SamplingParams(max_tokens=2), ignore_eos=True):
        pass
    session.reset()


def run_compare(
    contestants: Sequence[Contestant],
    prompt: str,
    *,
    params: SamplingParams | None = None,
    system_prompt: str = "",
    concurrent: bool = False,
    on_event: OnEvent | None = None,
    cancel: CancelToken | None = None,
    warmup: bool = True,
) -> CompareReport:
    """Blocking: every contestant answers ``prompt``; see the module docstring."""
    if not contestants:
        raise InvalidParameter("nothing to compare: give at least one model and engine")
    if not prompt.strip():
        raise InvalidParameter("the prompt is empty: type something to compare")
    params = (params or SamplingParams()).validate()
    emit: OnEvent = on_event or (lambda _i, _e: None)
    cancel = cancel or CancelToken()
    results = [ContestantResult(c) for c in contestants]
    for i in range(len(results)):
        emit(i, Phase("waiting"))
    started = time.perf_counter()
    job = _Job(prompt, params, system_prompt, emit, cancel, warmup)
    if concurrent and len(results) > 1:
        gate = threading.Barrier(len(results))
        threads = [
            threading.Thread(target=job.run_in_thread, args=(i, r, gate), name=f"anechat-compare-{i}", daemon=True)
            for i, r in enumerate(results)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i, r in enumerate(results):
            job.run(i, r, None)
    return CompareReport(prompt, params, concurrent and len(results) > 1, results, time.perf_counter() - started)


@dataclass
class _Job:
    prompt: str
    params: SamplingParams
    system_prompt: str
    emit: OnEvent
    cancel: CancelToken
    warmup: bool

    def run_in_thread(self, index: int, result: ContestantResult, gate: threading.Barrier) -> None:
        try:
            self.run(index, result, gate)
        finally:
            release_engine_thread()

    def run(self, index: int, result: ContestantResult, gate: threading.Barrier | None) -> None:
        controller = ChatController(system_prompt=self.system_prompt, params=self.params)
        at_gate = False
        try:
            if self.cancel.cancelled:
                raise _Cancelled
            self._prepare(index, result, controller)
            at_gate = True
            self._wait(gate)
            if self.cancel.cancelled:
                raise _Cancelled
            self._answer(index, result, controller)
        except _Cancelled:
            result.error = "cancelled"
            self.emit(index, Phase("cancelled"))
        except AnechatError as exc:
            result.error = str(exc)
            self.emit(index, Phase("failed", str(exc)))
        except Exception as exc:  # one broken contestant must not stop the others
            result.error = f"{type(exc).__name__}: {exc}"
            self.emit(index, Phase("failed", result.error))
        finally:
            if not at_gate:
                self._wait(gate)
            try:
                controller.unload()
            except Exception:
                pass

    @staticmethod
    def _wait(gate: threading.Barrier | None) -> None:
        if gate is not None:
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                pass

    def _prepare(self, index: int, result: ContestantResult, controller: ChatController) -> None:
        c = result.contestant
        self.emit(index, Phase("loading", c.label))
        t0 = time.perf_counter()
        result.loaded = controller.load(c.model, c.engine)
        result.load_s = time.perf_counter() - t0
        session = controller.session
        assert session is not None
        result.tokenizer_key = tokenizer_key(session)
        if self.warmup:
            self.emit(index, Phase("warming", loaded=result.loaded))
            warm_up(session)
        self.emit(index, Phase("ready", loaded=result.loaded))

    def _answer(self, index: int, result: ContestantResult, controller: ChatController) -> None:
        self.emit(index, Phase("generating", loaded=result.loaded))
        for event in controller.send(self.prompt, self.cancel):
            if isinstance(event, TextDelta):
                result.token_ids.extend(event.token_ids)
            elif isinstance(event, GenerationStats):
                result.stats = event
                result.error = event.error
            self.emit(index, event)
        stats = result.stats
        if stats is None or stats.finish_reason == "error":
            self.emit(index, Phase("failed", result.error or "no answer"))
        elif stats.finish_reason == "cancelled":
            result.error = "cancelled"
            self.emit(index, Phase("cancelled", loaded=result.loaded))
        else:
            self.emit(index, Phase("done", stats.finish_reason, loaded=result.loaded))


class _Cancelled(Exception):
    pass
