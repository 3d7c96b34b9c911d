"""A model is a logical thing with variants per engine: its source folder and every
conversion of it (MLX quantizations, Core ML and Core AI variants).

Variants are linked to their source by the origin each conversion records
(:mod:`anechat.catalog.provenance`): the source's folder, else its catalog name with the
same ``config.json`` digest, else only the recorded name (the source is gone). Folders
converted before origins were recorded fall back to the old naming convention
(``NAME-coreml-…``, ``NAME-mlx-…``; :func:`legacy_base_name`).

``resolve_variant(NAME, ENGINE)`` is what ``-m NAME -e ENGINE`` means everywhere (run,
chat, compare, bench, the app, the API): the named folder when the engine runs it,
else the recommended variant of its model for that engine (said in ``note``), else a
one-line error saying how to make one.

Recommended, among several variants for one engine: the source itself, then recorded
conversions before legacy ones, then the most faithful (more bits: float before LUT8
before LUT6 before 4-bit), then the longest context, then by name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from anechat.catalog.entry import ModelEntry
from anechat.catalog.provenance import config_digest
from anechat.engines.errors import AnechatError, ModelFormatError, ModelNotFound

#: the suffixes ``anechat convert`` put on its output folders before origins were recorded
_LEGACY_MARKERS = ("-coreml", "-mlx")
#: where such folders can be (a hub repo named ``…-mlx`` was never an anechat conversion)
LEGACY_SOURCES = ("anechat", "folder")


def legacy_base_name(name: str) -> str:
    """The legacy naming rule: ``tiny-llama-coreml-ctx512-lut6`` -> ``tiny-llama``; others unchanged."""
    for marker in _LEGACY_MARKERS:
        head, sep, tail = name.partition(marker)
        if sep and head and (not tail or tail.startswith("-")):
            return head
    return name


def variant_engine(entry: ModelEntry) -> str:
    """The engine a variant is for: the first that runs it, else the one it was made for."""
    if entry.engines:
        return entry.engines[0]
    return entry.origin.engine if entry.origin else entry.format


def variant_label(entry: ModelEntry) -> str:
    """``coreml, LUT6, ctx 512`` / ``mlx, 4-bit g64``: what tells variants of one model apart."""
    bits = [variant_engine(entry), entry.quantization or entry.format]
    if entry.format == "coreml" and entry.context_length:
        bits.append(f"ctx {entry.context_length}")
    return ", ".join(bits)


def weight_bits(entry: ModelEntry) -> int:
    """Bits per weight of the main layers, read from the quantization label (16 for float)."""
    label = entry.quantization or ""
    lut = re.match(r"LUT(\d+)", label)
    if lut:
        return int(lut.group(1))
    found = re.search(r"([\d/]+)-bit", label)
    if found:
        return min(int(b) for b in found.group(1).split("/") if b)
    return 16


@dataclass(frozen=True)
class ModelGroup:
    """One model: ``source`` (None when its folder is gone) and every variant, source first."""

    name: str
    source: ModelEntry | None
    variants: tuple[ModelEntry, ...]

    @property
    def engines(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for v in self.variants for e in v.engines))

    def for_engine(self, engine: str) -> list[ModelEntry]:
        """The variants ``engine`` runs, the recommended one first."""

        def rank(entry: ModelEntry) -> tuple:
            return (entry is not self.source, entry.origin is None, -weight_bits(entry), -(entry.context_length or 0), entry.name)

        return sorted((v for v in self.variants if engine in v.engines), key=rank)

    def contains(self, entry: ModelEntry) -> bool:
        return any(_same(v.path, entry.path) for v in self.variants)


def _key(path: Path) -> str:
    try:
        return os.path.normcase(str(Path(path).expanduser().resolve()))
    except OSError:
        return str(path)


def _same(a: Path, b: Path) -> bool:
    return _key(a) == _key(b)


def group_models(entries: list[ModelEntry]) -> list[ModelGroup]:
    """Every model of ``entries`` with its variants, in the order their first entry comes."""
    by_path = {_key(e.path): e for e in entries}
    by_name = {e.name: e for e in entries}

    def parent(entry: ModelEntry) -> ModelEntry | str | None:
        """The entry ``entry`` was made from, or just its recorded name, or None for a source."""
        origin = entry.origin
        if origin is not None:
            found = by_path.get(_key(Path(origin.source_path)))
            if found is None:
                named = by_name.get(origin.source_name)
                if named is not None and origin.source_config_sha256 and config_digest(named.path) == origin.source_config_sha256:
                    found = named
            return found if found is not None and found is not entry else origin.source_name
        base = legacy_base_name(entry.name)
        if base == entry.name or entry.source not in LEGACY_SOURCES:
            return None
        return by_name.get(base) or base

    def root(entry: ModelEntry) -> ModelEntry | str:
        seen = {id(entry)}
        current: ModelEntry | str = entry
        while isinstance(current, ModelEntry):
            up = parent(current)
            if up is None or (isinstance(up, ModelEntry) and id(up) in seen):
                return current
            if isinstance(up, ModelEntry):
                seen.add(id(up))
            current = up
        return current

    members: dict[tuple[str, str], list[ModelEntry]] = {}
    sources: dict[tuple[str, str], ModelEntry | None] = {}
    for entry in entries:
        top = root(entry)
        key = ("entry", _key(top.path)) if isinstance(top, ModelEntry) else ("name", top)
        members.setdefault(key, []).append(entry)
        sources.setdefault(key, top if isinstance(top, ModelEntry) else None)
    groups = []
    for key, found in members.items():
        source = sources[key]
        rest = sorted((e for e in found if e is not source), key=lambda e: (variant_engine(e), e.name))
        name = source.name if source is not None else key[1]
        groups.append(ModelGroup(name, source, tuple(([source] if source is not None else []) + rest)))
    return groups


@dataclass(frozen=True)
class VariantChoice:
    """The entry to load, and the line to show when a variant was picked for the engine."""

    entry: ModelEntry
    note: str = ""


def choose_variant(groups: list[ModelGroup], entry: ModelEntry, engine: str) -> VariantChoice:
    """``entry`` itself when ``engine`` runs it, else the recommended variant of its model
    for ``engine``; ModelFormatError (saying how to make one) when there is none."""
    if engine in entry.engines:
        return VariantChoice(entry)
    group = next((g for g in groups if g.contains(entry)), None) or ModelGroup(entry.name, entry, (entry,))
    found = group.for_engine(engine)
    if not found:
        if len(group.variants) == 1 and not entry.engines:
            raise ModelFormatError(
                f"model {entry.name} ({entry.format}) runs on no engine", hint=entry.reason or f"see anechat models info {entry.name}"
            )
        has = ", ".join(group.engines) or "no engine"
        source = group.source.name if group.source is not None else group.name
        raise ModelFormatError(
            f"no {engine} variant of {group.name} here (it runs on {has})",
            hint=f"make one: anechat convert {source} --to {engine}",
        )
    chosen = found[0]
    if len(found) == 1:
        note = f"using {chosen.name} ({variant_label(chosen)}), the {engine} variant of {group.name}"
    else:
        note = f"using {chosen.name} ({variant_label(chosen)}) — {len(found)} {engine} variants of {group.name}; pick one with -m PATH"
    return VariantChoice(chosen, note)


def resolve_variant(name_or_path: str | os.PathLike | None, engine: str) -> VariantChoice:
    """What ``-m NAME -e ENGINE`` loads (None or ``default``: the default model).

    NAME is a catalog name, a repo id, a path, or a model's name whose source folder is
    gone (its variants remain). Raises ModelNotFound or ModelFormatError, one line each.
    """
    from anechat.catalog.resolve import resolve_model, scan_catalog

    asked = os.fspath(name_or_path).strip() if name_or_path is not None else "default"
    try:
        entry = resolve_model(asked or "default")
    except ModelNotFound:
        groups = group_models(scan_catalog().entries)
        group = next((g for g in groups if g.source is None and g.name == asked.lower()), None)
        if group is None:
            raise
        entry = group.variants[0]
    if engine in entry.engines:
        return VariantChoice(entry)
    entries = scan_catalog().entries
    for extra in (entry, _recorded_source(entry)):  # a folder given by path, and what it was made from
        if extra is not None and not any(_same(e.path, extra.path) for e in entries):
            entries = entries + [extra]
    return choose_variant(group_models(entries), entry, engine)


def _recorded_source(entry: ModelEntry) -> ModelEntry | None:
    """The folder ``entry`` was converted from, when it still exists (listed or not)."""
    from anechat.catalog.resolve import entry_for_path

    if entry.origin is None or not Path(entry.origin.source_path).is_dir():
        return None
    try:
        return entry_for_path(Path(entry.origin.source_path))
    except AnechatError:
        return None
