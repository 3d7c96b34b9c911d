"""The command palette's "Compare the current prompt on another engine or model".

The loaded model (on its engine) is the first contestant, the baseline; the person
picks the second one from the models here (each model on each engine that runs it,
the same model's other-engine versions first). The prompt is what is in the message
box, or else the last message sent. Then the compare screen takes over.
"""

from __future__ import annotations

from typing import Callable, Protocol

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from anechat.catalog.variants import group_models
from anechat.chat.controller import ChatController, LoadedModel
from anechat.compare import Contestant
from anechat.safe_text import sanitize_for_terminal

from anechat.tui.compare.screen import CompareScreen
from anechat.tui.same_model import same_path
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.screens.model_picker import describe, model_ref

COMPARE_TITLE = "Compare the current prompt on another engine or model"
COMPARE_HELP = "Side by side with the loaded model: answers, tok/s, TTFT, memory, token agreement"


def contestant_choices(loaded: LoadedModel, entries: list) -> list[tuple[Contestant, Text]]:
    """Every runnable model on every engine that runs it, as (contestant, two-line label):
    the loaded model's other versions first, other models next, the loaded model on its
    own engine last (comparing it with itself shows the run-to-run noise)."""
    family = next((g for g in group_models(entries) if any(same_path(v.path, loaded.path) for v in g.variants)), None)
    ranked = []
    for order, entry in enumerate(entries):
        for engine in entry.engines:
            itself = engine == loaded.engine and same_path(entry.path, loaded.path)
            related = family is not None and family.contains(entry)
            rank = 2 if itself else 0 if related else 1
            label = Text(f"{sanitize_for_terminal(entry.name)} · {engine}", style="bold")
            if itself:
                label.append("  (the loaded one again: run-to-run noise)", style="italic")
            elif related:
                label.append("  (the same model)", style="italic")
            label.append("\n" + sanitize_for_terminal(describe(entry)), style="dim")
            ranked.append((rank, order, Contestant(model_ref(entry), engine), label))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [(c, label) for _rank, _order, c, label in ranked]


class ContestantPicker(ModalScreen[Contestant | None]):
    """Pick the contestant to compare the loaded model with; None when closed with Esc."""

    BINDINGS = [Binding("escape", "close", "Close")]
    DEFAULT_CSS = """
    ContestantPicker #contestant-list { height: auto; max-height: 16; margin: 1 0 0 0; }
    """

    def __init__(self, loaded: LoadedModel, list_models: Callable[[], list]) -> None:
        super().__init__(classes="modal")
        self.loaded = loaded
        self._list_models = list_models
        self.choices: list[tuple[Contestant, Text]] = []
        self.scanned = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="contestant-dialog") as box:
            box.border_title = "Compare with…"
            yield Static(Text(f"baseline: {sanitize_for_terminal(self.loaded.name)} · {self.loaded.engine}"))
            yield OptionList(Option(Text("looking for models…", style="italic"), disabled=True), id="contestant-list")
            yield Label("Enter compares the prompt on both, side by side · Esc closes", classes="hint")

    def on_mount(self) -> None:
        self.scan()

    @work(thread=True, exclusive=True, group="contestants")
    def scan(self) -> None:
        try:
            choices, error = contestant_choices(self.loaded, list(self._list_models())), None
        except Exception as exc:  # a broken catalog must not close the app
            choices, error = [], f"could not list models: {exc}"
        self.app.call_from_thread(self._show, choices, error)

    def _show(self, choices: list[tuple[Contestant, Text]], error: str | None) -> None:
        self.choices = choices
        self.scanned = True
        options = self.query_one("#contestant-list", OptionList)
        options.clear_options()
        for _contestant, label in choices:
            options.add_option(Option(label))
        if error or not choices:
            options.add_option(Option(Text(error or "no models here to compare with", style="italic"), disabled=True))
        else:
            options.highlighted = 0
        options.focus()

    @on(OptionList.OptionSelected, "#contestant-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if 0 <= event.option_index < len(self.choices):
            self.dismiss(self.choices[event.option_index][0])

    def action_close(self) -> None:
        self.dismiss(None)


class Chat(Protocol):
    """What the compare entry uses of the chat screen."""

    app: object
    chat_input: ChatInput

    @property
    def controller(self) -> ChatController: ...
    def busy_reason(self) -> str | None: ...
    def notify(self, message: str, *, severity: str = "information") -> None: ...


class CompareEntry:
    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    def current_prompt(self) -> str:
        """The message being written (pastes included), or else the last message sent."""
        box = self.chat.chat_input
        text = box.expanded(box.text)
        if text.strip():
            return text
        for message in reversed(self.chat.controller.messages):
            if message.role == "user":
                return message.content
        return ""

    def start(self) -> None:
        """Ask for the second contestant, then open the compare screen on the current prompt."""
        chat = self.chat
        loaded = chat.controller.loaded
        if loaded is None:
            chat.notify("load a model first (Ctrl+O): it is the baseline of the comparison", severity="warning")
            return
        busy = chat.busy_reason()
        if busy:
            chat.notify(busy, severity="warning")
            return
        app = chat.app

        def chosen(other: Contestant | None) -> None:
            if other is None:
                return
            state = chat.controller.state
            baseline = Contestant(loaded.ref or str(loaded.path), loaded.engine)
            app.push_screen(
                CompareScreen([baseline, other], self.current_prompt(), params=state.params, system_prompt=state.system_prompt)
            )

        app.push_screen(ContestantPicker(loaded, app.list_models), chosen)
