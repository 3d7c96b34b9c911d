"""Model picker: a fuzzy filter over the models on this machine, one model per group with
its variants per engine under it (the catalog's grouping, :mod:`anechat.catalog.variants`),
each with format, size, quantization and the engines that can run it.

Enter on a model's row loads its variant for the current engine (the recommended one);
Enter on a variant's row loads that variant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.fuzzy import FuzzySearch
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from anechat.catalog.variants import ModelGroup, group_models, variant_label
from anechat.formatting import human_bytes, human_count


@dataclass(frozen=True)
class PickedModel:
    ref: str  # what ChatController.load() resolves: a catalog name or a path
    engine: str
    name: str


def describe(entry) -> str:
    """The searchable one-line description of a catalog entry."""
    bits = [entry.format]
    if entry.quantization:
        bits.append(entry.quantization)
    if entry.parameters:
        bits.append(f"{human_count(entry.parameters)} params")
    if entry.size_bytes:
        bits.append(human_bytes(entry.size_bytes))
    if entry.engines:
        bits.append("runs on " + ", ".join(entry.engines))
    else:
        bits.append("not runnable" + (f": {entry.reason}" if entry.reason else ""))
    return " · ".join(bits)


def model_ref(entry) -> str:
    """Built-in entries load by name (first use converts them); the rest by their folder."""
    return entry.name if entry.source == "builtin" else str(entry.path)


def _highlighted(name: str, positions: Sequence[int]) -> Text:
    text = Text(name, style="bold")
    for i in positions:
        if i < len(name):
            text.stylize("reverse", i, i + 1)
    return text


class ModelPicker(ModalScreen[PickedModel | None]):
    """Returns the chosen model and engine, or None when closed with Esc."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("enter", "choose", "Load", priority=True),
    ]

    def __init__(self, list_models: Callable[[], list], engine: str) -> None:
        super().__init__(classes="modal")
        self._list_models = list_models
        self.engine = engine
        self.entries: list = []
        self.shown: list = []  # the entries of the rows shown, in order
        self.groups: list[ModelGroup] = []
        self.headers: set[int] = set()  # rows that stand for a whole model (its first variant)
        self.scanned = False  # the catalog scan has answered (tests wait on it)
        self._search = FuzzySearch()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="picker-dialog") as box:
            box.border_title = "Models"
            yield Input(placeholder="type to filter (fuzzy): name, format, quantization, engine", id="picker-filter", compact=True)
            yield OptionList(id="picker-list")
            yield Static("", id="picker-detail")
            yield Label("Enter loads the model on this engine, or the variant picked · Esc closes", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#picker-detail", Static).update(Text("scanning for models…", style="italic"))
        self.scan()

    @work(thread=True, exclusive=True, group="scan")
    def scan(self) -> None:
        try:
            entries = list(self._list_models())
            error = None
        except Exception as exc:  # a broken catalog must not close the app
            entries, error = [], f"could not list models: {exc}"
        self.app.call_from_thread(self._set_entries, entries, error)

    def _set_entries(self, entries: list, error: str | None) -> None:
        self.entries = sorted(entries, key=lambda e: (not e.engines, e.name.lower()))
        self.groups = sorted(group_models(self.entries), key=lambda g: (not g.engines, g.name.lower()))
        self.scanned = True
        self._refilter(self.query_one("#picker-filter", Input).value)
        detail = self.query_one("#picker-detail", Static)
        if error:
            detail.update(Text(error, style="bold red"))
        elif not self.entries:
            detail.update(Text("no models found: anechat models pull REPO, or start anechat -m PATH", style="italic"))
        else:
            self._show_detail()

    @on(Input.Changed, "#picker-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._refilter(event.value)

    def _refilter(self, query: str) -> None:
        """Show every model one of whose variants matches ``query``, best match first."""
        query = query.strip()
        scored = []
        for order, group in enumerate(self.groups):
            positions: Sequence[int] = ()
            score = 0.0
            if query:
                for variant in group.variants:
                    score = max(score, self._search.match(query, f"{group.name} {variant.name} {describe(variant)}")[0])
                positions = self._search.match(query, group.name)[1]
                if score <= 0:
                    continue
            scored.append((-score, order, group, positions))
        scored.sort(key=lambda s: (s[0], s[1]))
        self.shown, self.headers = [], set()
        options = self.query_one("#picker-list", OptionList)
        options.clear_options()
        for _score, _order, group, positions in scored:
            for i, entry in enumerate(group.variants):
                if i == 0:
                    self.headers.add(len(self.shown))
                    prompt = _highlighted(group.name, positions)
                    prompt.append("\n")
                    prompt.append(describe(entry), style="dim" if entry.engines else "dim italic")
                else:
                    prompt = Text(f"  └ {entry.name}", style="bold" if entry.engines else "")
                    prompt.append(f"  {describe(entry)}", style="dim" if entry.engines else "dim italic")
                self.shown.append(entry)
                options.add_option(Option(prompt))
        if self.shown:
            options.highlighted = 0
        self._show_detail()

    def _group_of(self, entry) -> ModelGroup | None:
        return next((g for g in self.groups if any(v is entry for v in g.variants)), None)

    def _current(self):
        index = self.query_one("#picker-list", OptionList).highlighted
        if index is None or not 0 <= index < len(self.shown):
            return None
        return self.shown[index]

    @on(OptionList.OptionHighlighted)
    def _show_detail(self) -> None:
        entry = self._current()
        detail = self.query_one("#picker-detail", Static)
        if entry is None:
            if self.entries:
                detail.update(Text("no model matches the filter", style="italic"))
            return
        lines = Text(str(entry.path), style="dim")
        if entry.context_length:
            lines.append(f"\ncontext {entry.context_length} tokens", style="dim")
        group = self._group_of(entry)
        if group is not None and len(group.variants) > 1:
            lines.append(f"\n{len(group.variants)} variants: " + "; ".join(variant_label(v) for v in group.variants), style="dim")
        if entry.reason:
            lines.append(f"\n{entry.reason}", style="italic")
        detail.update(lines)

    def action_move(self, step: int) -> None:
        options = self.query_one("#picker-list", OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    @on(OptionList.OptionSelected)
    def action_choose(self) -> None:
        entry = self._current()
        if entry is None:
            return
        index = self.query_one("#picker-list", OptionList).highlighted
        group = self._group_of(entry)
        if index in self.headers and group is not None and self.engine not in entry.engines:
            variants = group.for_engine(self.engine)  # the model on the current engine
            if variants:
                entry = variants[0]
        if not entry.engines:
            self.notify(f"{entry.name} cannot run as it is: {entry.reason or entry.format}", severity="warning")
            return
        engine = self.engine if self.engine in entry.engines else entry.engines[0]
        self.dismiss(PickedModel(model_ref(entry), engine, entry.name))

    def action_close(self) -> None:
        self.dismiss(None)
