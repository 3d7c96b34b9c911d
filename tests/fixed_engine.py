"""A scripted engine for the app's tests: a fixed answer at a fixed token rate, with
figures shaped like an engine's, behind the real Engine/Session contract; optionally
held before its first token (a long prefill)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from anechat.chat.controller import ChatController, LoadedModel
from anechat.engines.base import (
    Availability, Engine, Figures, GenerationStats, MemoryReport, ModelInfo, Session, TextDelta,
)

#: a fixed answer: prose, a list and a code block, as a model would write it
ANSWER_WORDS = (
    ("Here is a short guide to baking bread at home. " * 6 + "\n\n"
     + "".join(f"- step {i}: mix, knead and wait a little longer\n" for i in range(8)) + "\n"
     + "```python\n" + "".join(f"grams_{i} = cups_{i} * 120\n" for i in range(6)) + "```\n\n"
     + "And that is all there is to it. " * 6).split(" ")
) * 3
TOKENS_PER_S = 80.0


class FixedSession(Session):
    """Streams ANSWER_WORDS at TOKENS_PER_S, one word per token, with figures like an engine's."""

    info = ModelInfo(name="fixed", path=Path("/fixed"), context_length=4096)
    sent = 0  # tokens handed out so far in this answer
    #: when set, the first token waits until this is set (a prefill that takes as long as the test wants)
    prefill_gate: threading.Event | None = None

    def generate(self, messages, params=None, cancel=None):
        started = time.perf_counter()
        text = ""
        if self.prefill_gate is not None:
            self.prefill_gate.wait(60)
        for n, word in enumerate(ANSWER_WORDS, 1):
            time.sleep(1 / TOKENS_PER_S)
            self.sent = n
            piece = word if n == 1 else " " + word
            text += piece
            figures = Figures(prompt_tokens=20, generation_tokens=n, ttft_s=0.05, prefill_tps=400.0, decode_tps=TOKENS_PER_S)
            yield TextDelta(piece, (n,), figures)
            if cancel is not None and cancel.cancelled:
                break
        yield GenerationStats.from_figures(figures, peak_memory_bytes=0, finish_reason="stop", context_tokens=20 + n, text=text)

    def generate_ids(self, prompt_ids, params=None, cancel=None, *, ignore_eos=False):
        raise NotImplementedError

    def count_tokens(self, messages):
        return 20

    @property
    def cached_tokens(self):
        return 0

    def reset(self):
        pass


class FixedEngine(Engine):
    name = "fixed"

    def __init__(self) -> None:
        self._session = FixedSession()

    @classmethod
    def available(cls):
        return Availability(True, "fixed answers")

    def load(self, path, *, context_length=None):
        return self._session

    def unload(self):
        pass

    def measure_memory(self):
        return MemoryReport()

    @property
    def session(self):
        return self._session



def fixed_controller() -> ChatController:
    controller = ChatController()
    controller.engine = FixedEngine()
    controller.session = controller.engine.session
    controller.loaded = LoadedModel("fixed", Path("/fixed"), "fixed", "scripted")
    return controller
