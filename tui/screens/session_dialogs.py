"""Small dialogs of the sessions list: a new title for a session, and "are you sure?"."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from anechat.safe_text import sanitize_for_terminal


class RenameDialog(ModalScreen[str | None]):
    """Returns the new title (Enter), or None (Esc). An empty title is refused by the store."""

    BINDINGS = [Binding("escape", "close", "Cancel")]
    DEFAULT_CSS = """
    RenameDialog #rename-dialog { width: 70; }
    """

    def __init__(self, title: str) -> None:
        super().__init__(classes="modal")
        self.old_title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="rename-dialog") as box:
            box.border_title = "Rename session"
            yield Input(self.old_title, placeholder="a title for this session", id="rename-title", compact=True)
            yield Label("Enter saves · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question: ``y`` answers yes, ``n`` or Esc answers no (Enter does nothing:
    a key pressed by habit must not delete anything)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", priority=True),
        Binding("n,escape", "answer(False)", "No", priority=True),
    ]
    DEFAULT_CSS = """
    ConfirmDialog #confirm-dialog { width: 70; border: round $error; border-title-color: $error; }
    """

    def __init__(self, question: str, title: str = "Are you sure?") -> None:
        super().__init__(classes="modal")
        self.question = question
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog") as box:
            box.border_title = self.title_text
            yield Static(Text(sanitize_for_terminal(self.question)), id="confirm-question")
            yield Label("y: yes · n or Esc: no", classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
