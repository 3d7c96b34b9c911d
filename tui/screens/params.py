"""System prompt and sampling parameters, validated by SamplingParams.validate()."""

from __future__ import annotations

from dataclasses import dataclass, fields

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from anechat.engines.base import SamplingParams
from anechat.engines.errors import InvalidParameter
from anechat.safe_text import sanitize_for_terminal

#: the fields shown, with the type each text box is read as
FIELDS: dict[str, type] = {
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "min_p": float,
    "repetition_penalty": float,
    "seed": int,
    "max_tokens": int,
}
HELP = {
    "temperature": "0 = greedy",
    "top_p": "(0, 1]",
    "top_k": "0 = off",
    "min_p": "[0, 1)",
    "repetition_penalty": "1 = off",
    "seed": "blank = random",
    "max_tokens": ">= 1",
}


@dataclass(frozen=True)
class ParamsResult:
    system_prompt: str
    params: SamplingParams


def parse_params(values: dict[str, str], base: SamplingParams) -> SamplingParams:
    """Text boxes -> validated SamplingParams, or InvalidParameter naming the field."""
    changes: dict[str, object] = {}
    for name, kind in FIELDS.items():
        raw = values.get(name, "").strip()
        if name == "seed" and raw == "":
            changes[name] = None
            continue
        try:
            changes[name] = kind(raw)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise InvalidParameter(f"{name}={raw or '(empty)'} is invalid: use {what}") from None
    return base.with_(**changes).validate()


def _shown(value: object) -> str:
    return "" if value is None else str(value)


class ParamsScreen(ModalScreen[ParamsResult | None]):
    BINDINGS = [
        Binding("escape", "close", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    def __init__(self, system_prompt: str, params: SamplingParams, source: str = "") -> None:
        """``source``: where the parameters came from (the model's generation_config.json,
        anechat's default, the person), shown under the fields."""
        super().__init__(classes="modal")
        self.system_prompt = system_prompt
        self.params = params
        self.source = source

    def compose(self) -> ComposeResult:
        known = {f.name for f in fields(SamplingParams)}
        with Vertical(classes="dialog", id="params-dialog") as box:
            box.border_title = "System prompt & sampling"
            yield Label("System prompt", classes="field-label")
            yield TextArea(self.system_prompt, id="system-prompt", soft_wrap=True, tab_behavior="focus", compact=True)
            with Grid(id="params-grid"):
                for name in FIELDS:
                    if name not in known:
                        continue
                    yield Label(name, classes="field-label")
                    yield Input(_shown(getattr(self.params, name)), id=f"param-{name}", compact=True)
                    yield Label(HELP[name], classes="field-help")
            if self.source:
                yield Label(Text(f"defaults: {sanitize_for_terminal(self.source)}", style="italic"), id="params-source", classes="field-help")
            yield Static("", id="params-error")
            with Horizontal(classes="buttons"):
                yield Button("Save (Ctrl+S)", id="params-save", variant="primary", compact=True)
                yield Button("Cancel (Esc)", id="params-cancel", compact=True)

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#param-{name}", Input).value for name in FIELDS}

    def _checked(self) -> SamplingParams | None:
        """The fields as parameters; None (and the reason shown) while one is invalid."""
        error = self.query_one("#params-error", Static)
        try:
            params = parse_params(self.values(), self.params)
        except InvalidParameter as exc:
            error.update(Text(str(exc), style="bold"))
            error.add_class("shown")
            return None
        error.update("")
        error.remove_class("shown")
        return params

    @on(Input.Changed)
    def _recheck(self) -> None:
        """A shown error goes (or changes) as soon as the fields are fixed, not on the next save."""
        if self.query_one("#params-error", Static).has_class("shown"):
            self._checked()

    @on(Input.Submitted)
    @on(Button.Pressed, "#params-save")
    def action_save(self) -> None:
        params = self._checked()
        if params is None:
            return
        prompt = self.query_one("#system-prompt", TextArea).text
        self.dismiss(ParamsResult(prompt, params))

    @on(Button.Pressed, "#params-cancel")
    def action_close(self) -> None:
        self.dismiss(None)
