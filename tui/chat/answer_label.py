"""The small dim line at the top of each answer: which engine and model wrote it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from anechat.safe_text import sanitize_for_terminal

from anechat.tui.widgets.chat_pane import AssistantMessage


def answer_label(engine: str, model: str, runtime: str = "") -> str:
    """``mlx · tiny-llama`` (with the runtime when it says more: ``coreml · MIL on CPU · name``)."""
    parts = [engine, runtime, model] if runtime and runtime != engine else [engine, model]
    return " · ".join(sanitize_for_terminal(part) for part in parts if part)


class AnswerLabel(Static):
    DEFAULT_CSS = """
    AnswerLabel { color: $text-muted; text-style: italic; height: 1; }
    """

    def __init__(self, text: str) -> None:
        super().__init__(Text(text), classes="answer-label")
        self.text = text


async def label_answer(answer: AssistantMessage, loaded) -> AnswerLabel | None:
    """Put the loaded model's engine and name on top of ``answer`` (None when nothing is loaded)."""
    if loaded is None:
        return None
    label = AnswerLabel(answer_label(loaded.engine, loaded.name))
    await answer.mount(label, before=answer.body)
    return label
