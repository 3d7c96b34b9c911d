"""One chat turn on the engine thread: :func:`run_turn` streams the answer into a
:class:`~anechat.tui.stream_buffer.StreamBuffer` that the UI drains on a timer; and
the heap freeze that keeps garbage collections short while it streams.
"""

from __future__ import annotations

import gc

from anechat.chat.controller import ChatController
from anechat.engines.base import CancelToken

from anechat.tui.errors import error_line
from anechat.tui.stream_buffer import StreamBuffer


_frozen = 0


def freeze_heap() -> None:
    """While an answer streams, keep Python's full garbage collections short.

    A full collection walks every tracked object (the app's widgets, the model's
    Python objects, the tokenizer...) — a few hundred ms with the GIL held, during
    which the engine thread cannot hand out a token. ``gc.freeze()`` moves what
    exists now out of the collector's sight; :func:`thaw_heap` gives it back when
    the answer ends, so nothing is kept for good.
    """
    global _frozen
    if _frozen == 0:
        gc.freeze()
    _frozen += 1


def thaw_heap() -> None:
    global _frozen
    if _frozen > 0:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()


def run_turn(controller: ChatController, text: str, cancel: CancelToken, buffer: StreamBuffer) -> None:
    """Blocking: stream one answer into ``buffer``. Never raises (errors end up in the buffer)."""
    try:
        for event in controller.send(text, cancel):
            buffer.push(event)
        buffer.finish()
    except Exception as exc:  # never let an engine bug take the app down
        buffer.finish(error=error_line(exc))
