"""The chat's slash commands: one table for the line chat (`anechat chat`) and the app.

:func:`parse` turns a typed line into a :class:`Command` (its arguments checked, bad
ones refused in one line that says what to type); each UI then acts on it. A line
that does not start with ``/`` is a message; ``//`` sends a message that starts
with ``/`` (``//etc/hosts is…`` sends ``/etc/hosts is…``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from anechat.engines.base import SamplingParams
from anechat.engines.errors import InvalidParameter

#: where a command works: the line chat (`anechat chat`) and/or the app
CHAT, APP = "chat", "app"
EXPORT_FORMATS = ("md", "json")


@dataclass(frozen=True)
class CommandSpec:
    name: str  # with its slash: "/system"
    args: str  # how its arguments read in the help ("" = none)
    help: str
    where: tuple[str, ...] = (CHAT, APP)
    aliases: tuple[str, ...] = ()
    needs_arg: bool = False

    @property
    def usage(self) -> str:
        return f"{self.name} {self.args}".rstrip()


COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("/help", "", "list the commands"),
    CommandSpec("/reset", "", "forget the conversation and start a new one", aliases=("/new",)),
    CommandSpec("/system", "TEXT", "set the system prompt (nothing clears it)"),
    CommandSpec("/regen", "", "answer the last message again (replaces the last answer)"),
    CommandSpec("/params", "[KEY=VALUE…]", "show or set sampling parameters, e.g. /params temperature=0.7 max_tokens=256"),
    CommandSpec("/export", "[md|json] [PATH]", "write this conversation to a file (Markdown by default)"),
    CommandSpec("/engine", "NAME", "continue this conversation on another engine", where=(APP,), needs_arg=True),
    CommandSpec("/model", "NAME", "load another model (name or folder) on the current engine", where=(APP,), needs_arg=True),
    CommandSpec("/compare", "[TEXT]", "answer the last message (or TEXT) on the other engine too, figures side by side", where=(APP,)),
    CommandSpec("/search", "[TEXT]", "find TEXT in this chat (Enter/F3 next, Shift+F3 previous)", where=(APP,)),
    CommandSpec("/quit", "", "leave", aliases=("/exit",)),
)

_BY_NAME = {name: spec for spec in COMMANDS for name in (spec.name, *spec.aliases)}


@dataclass(frozen=True)
class Command:
    spec: CommandSpec
    arg: str = ""  # the text after the name, stripped
    value: Any = None  # the checked arguments: see parse()

    @property
    def name(self) -> str:
        return self.spec.name


def available(where: str) -> list[CommandSpec]:
    return [spec for spec in COMMANDS if where in spec.where]


def command_list(where: str) -> str:
    """The commands of one UI on one line: ``/help, /reset, /system TEXT, …``."""
    return ", ".join(spec.usage for spec in available(where))


def help_lines(where: str) -> list[str]:
    return [f"{spec.usage:<22} {spec.help}" for spec in available(where)]


def is_command(line: str) -> bool:
    text = line.lstrip()
    return text.startswith("/") and not text.startswith("//")


def message_text(line: str) -> str:
    """What a non-command line sends: ``//x`` becomes ``/x``."""
    stripped = line.lstrip()
    return stripped[1:] if stripped.startswith("//") else line


def complete(prefix: str, where: str) -> list[str]:
    """Command names (with their slash) of ``where`` that start with ``prefix``."""
    return [spec.name for spec in available(where) if spec.name.startswith(prefix.strip())]


def parse(line: str, where: str) -> Command | None:
    """The command ``line`` holds, its arguments checked; None for a message.

    Raises InvalidParameter with one line for an unknown command (with the list),
    a command this UI does not have, or bad arguments. ``value`` holds:
    ``/export`` (format, Path or None); ``/params`` a dict of changes (maybe empty);
    ``/engine`` the engine name; the rest None.
    """
    if not is_command(line):
        return None
    name, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    spec = _BY_NAME.get(name.lower())
    if spec is None:
        raise InvalidParameter(f"unknown command {name}: use {command_list(where)}")
    if where not in spec.where:
        place = "the app (anechat)" if APP in spec.where else "the line chat"
        raise InvalidParameter(f"{spec.name} works in {place}; here: {command_list(where)}")
    if spec.needs_arg and not arg:
        raise InvalidParameter(f"{spec.name} needs {spec.args}: {spec.usage}")
    if not spec.args and arg:
        raise InvalidParameter(f"{spec.name} takes nothing after it: type {spec.name} alone")
    value: Any = None
    if spec.name == "/export":
        value = export_args(arg)
    elif spec.name == "/params":
        value = param_changes(arg)
    elif spec.name == "/engine":
        value = engine_name(arg)
    return Command(spec, arg, value)


def export_args(arg: str) -> tuple[str, Path | None]:
    """``[md|json] [PATH]`` -> (format, path or None); a path ending in .json means json."""
    fmt, _, rest = arg.partition(" ")
    if fmt.lower() in EXPORT_FORMATS:
        fmt, path = fmt.lower(), rest.strip()
    else:
        fmt, path = "", arg
    target = Path(path).expanduser() if path else None
    if not fmt:
        fmt = "json" if target is not None and target.suffix.lower() == ".json" else "md"
    return fmt, target


def engine_name(arg: str) -> str:
    from anechat.engines.registry import ENGINE_NAMES

    if arg not in ENGINE_NAMES:
        raise InvalidParameter(f"unknown engine {arg!r}: use /engine {' or /engine '.join(ENGINE_NAMES)}")
    return arg


_PARAM_TYPES = {f.name: f.type for f in fields(SamplingParams)}


def param_changes(arg: str) -> dict[str, Any]:
    """``temperature=0.7 max_tokens=256`` -> {"temperature": 0.7, "max_tokens": 256} (names checked)."""
    changes: dict[str, Any] = {}
    for item in arg.split():
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in _PARAM_TYPES:
            names = ", ".join(_PARAM_TYPES)
            raise InvalidParameter(f"cannot read {item!r}: use KEY=VALUE with KEY one of {names}")
        kind = str(_PARAM_TYPES[key])
        try:
            if raw.lower() in ("none", "off", "") and "None" in kind:
                changes[key] = None
            elif kind.startswith("int"):
                changes[key] = int(raw)
            else:
                changes[key] = float(raw)
        except ValueError:
            raise InvalidParameter(f"{key}={raw} is not a number: e.g. /params {key}=1") from None
    return changes


def apply_params(params: SamplingParams, changes: dict[str, Any]) -> SamplingParams:
    """``params`` with ``changes`` made, validated (a bad value raises one line)."""
    return params.with_(**changes).validate()


def params_line(params: SamplingParams) -> str:
    return " ".join(f"{f.name}={getattr(params, f.name)}" for f in fields(SamplingParams))
