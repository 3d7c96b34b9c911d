"""Finds the parts of an ANEMLL-layout folder: embeddings, FFN chunks, LM head — or the one
monolithic package (``model_type: monolithic``) that holds all three.

Handles what real ANEMLL folders do: ``meta.yaml`` names parts ``.mlmodelc`` where
only the ``.mlpackage`` exists (or the other way round); ``ffn`` carries no chunk
suffix (``llama_FFN_PF_lut6`` -> ``llama_FFN_PF_lut6_chunk_01of01``); single-function
``*_FFN_*`` / ``*_prefill_*`` leftovers sit beside the combined ``*_FFN_PF_*`` package
(the combined one wins); older releases ship infer and prefill as separate packages.

When its compile step is skipped, ANEMLL's converter names ``X.mlmodelc`` (and LUT none)
for a part it saved as ``X_lutN.mlpackage``: that part is used, its LUT read from the
name, and the layout carries a warning saying so.

A monolithic folder (ANEMLL 0.3.5 ``--monolithic``) is read as a layout without separate
embeddings and LM head: one "chunk" whose ``infer`` / ``prefill`` functions take token ids and
return logits (``{prefix}_monolithic_full[_lutN]``; or, before ANEMLL's combine step, the
single-function ``{prefix}_monolithic[_lutN]`` and ``{prefix}_monolithic_prefill[_lutN]``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anechat.engines.coreml.anemll.meta import AnemllMeta, LayoutError, read_meta
from anechat.engines.coreml.anemll.names import (
    CHUNK_RE, LUT_RE, PART_SUFFIXES, chunk_stem, embeddings_stem, ffn_stem, lm_head_stem, lut_of, lut_suffix,
    monolithic_stem, strip_chunk, strip_part_suffix,
)

_MISSING = "download the missing files again or re-convert the model"


@dataclass(frozen=True)
class PartFiles:
    """One model part, as whichever of ``.mlpackage`` / ``.mlmodelc`` exist."""

    label: str
    stem: str
    mlpackage: Path | None
    mlmodelc: Path | None

    def pick(self, prefer: str) -> Path:
        """The file to load; ``prefer`` is ".mlpackage" (MIL executor) or ".mlmodelc" (Core ML)."""
        first, second = (self.mlpackage, self.mlmodelc) if prefer == ".mlpackage" else (self.mlmodelc, self.mlpackage)
        return first or second  # type: ignore[return-value]

    @property
    def any_path(self) -> Path:
        return self.mlpackage or self.mlmodelc  # type: ignore[return-value]


@dataclass(frozen=True)
class FFNChunk:
    """One chunk of decoder layers: ``infer`` (one token) and, when present, ``prefill`` (a batch).
    In a monolithic layout the one chunk is the whole model: token ids in, logits out."""

    index: int  # from 1
    count: int
    infer: PartFiles
    prefill: PartFiles | None
    #: function names inside the packages; None = the package's only (default) function
    infer_function: str | None
    prefill_function: str | None


@dataclass(frozen=True)
class CoreMLLayout:
    folder: Path
    meta: AnemllMeta
    #: None in a monolithic layout (the one chunk embeds and projects itself)
    embeddings: PartFiles | None
    chunks: tuple[FFNChunk, ...]
    lm_head: PartFiles | None
    #: LUT bits of each part ("embeddings", "ffn", "lm_head") as found: meta.yaml's, or the file name's
    luts: dict[str, int | None] = field(default_factory=dict)
    #: what was odd but usable, one line each (the engine passes them on; nothing here prints)
    warnings: tuple[str, ...] = ()

    @property
    def monolithic(self) -> bool:
        """One package holds embeddings, layers and LM head (its functions take ids, return logits)."""
        return self.embeddings is None

    @property
    def all_parts(self) -> list[PartFiles]:
        seen, out = set(), []
        for part in [self.embeddings, *[c.infer for c in self.chunks], *[c.prefill for c in self.chunks if c.prefill], self.lm_head]:
            if part is not None and part.stem not in seen:
                seen.add(part.stem)
                out.append(part)
        return out


def find_part(folder: Path, stem: str, label: str) -> PartFiles | None:
    pkg, mlc = folder / f"{stem}.mlpackage", folder / f"{stem}.mlmodelc"
    if not pkg.is_dir() and not mlc.is_dir():
        return None
    return PartFiles(label, stem, pkg if pkg.is_dir() else None, mlc if mlc.is_dir() else None)


def _lut_variants(folder: Path, stem: str) -> list[str]:
    """Stems ``{stem}_lutN`` that exist as a part (``stem`` itself carries no LUT)."""
    if lut_of(stem) is not None:
        return []
    found = {strip_part_suffix(p.name) for p in folder.glob(f"{stem}_lut*") if p.suffix in PART_SUFFIXES}
    return sorted(s for s in found if LUT_RE.fullmatch(s[len(stem):]))


class _Finder:
    def __init__(self, folder: Path, meta: AnemllMeta) -> None:
        self.folder, self.meta = folder, meta
        self.warnings: list[str] = []
        self.luts = {"embeddings": meta.lut_embeddings, "ffn": meta.lut_ffn, "lm_head": meta.lut_lmhead}

    def _fallback(self, key: str, stem: str, variant: str, named: str | None) -> None:
        bits = lut_of(variant)
        self.luts[key] = bits
        self.warnings.append(
            f"meta.yaml names {named or stem} but only {variant} (LUT{bits}) is here — using it "
            "(ANEMLL writes this when its compile step is skipped)"
        )

    def single(self, key: str, candidates: list[str], label: str) -> PartFiles:
        named = getattr(self.meta, key)
        for stem in dict.fromkeys(candidates):
            part = find_part(self.folder, stem, label)
            if part is not None:
                return part
        for stem in dict.fromkeys(candidates if self.luts[key] is None else ()):
            variants = _lut_variants(self.folder, stem)
            if len(variants) == 1:
                self._fallback(key, stem, variants[0], named)
                return find_part(self.folder, variants[0], label)  # type: ignore[return-value]
        raise LayoutError(
            self.folder,
            f"missing Core ML part {candidates[0]} (.mlpackage or .mlmodelc): the {label}"
            + (f" that model_info.parameters.{key} names ({named})" if named else ""),
            hint=_MISSING,
        )

    def chunk_set(self, base: str, label: str) -> dict[int, tuple[int, PartFiles]]:
        """Chunks ``{base}_chunk_NNofMM`` present: index -> (count, files)."""
        found: dict[int, tuple[int, PartFiles]] = {}
        for path in self.folder.glob(f"{base}_chunk_*"):
            stem = strip_part_suffix(path.name)
            m = CHUNK_RE.search(stem)
            if path.suffix not in PART_SUFFIXES or not m or stem[: m.start()] != base:
                continue
            index, count = int(m.group(1)), int(m.group(2))
            part = find_part(self.folder, stem, f"{label} chunk {index}/{count}")
            if part is not None:
                found[index] = (count, part)
        return found

    def chunks(self, base: str, label: str) -> list[PartFiles] | None:
        """All chunks of ``base``, or the unchunked package itself; None when there are none."""
        found = self.chunk_set(base, label)
        if not found:
            single = find_part(self.folder, base, label)
            return [single] if single is not None else None
        counts = {c for c, _ in found.values()}
        expected = self.meta.num_chunks
        if expected is not None and expected in counts:
            count = expected
        elif len(counts) == 1:
            count = counts.pop()
        else:
            raise LayoutError(
                self.folder,
                f"{base} chunks disagree on their count ({', '.join(sorted(f'of{c:02d}' for c in counts))})",
                hint="remove the stale chunk files or re-convert the model",
            )
        missing = [chunk_stem(base, i, count) for i in range(1, count + 1) if i not in found or found[i][0] != count]
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise LayoutError(self.folder, f"missing Core ML part {missing[0]} (.mlpackage or .mlmodelc){more}", hint=_MISSING)
        if expected is not None and expected != count:
            raise LayoutError(
                self.meta.path or self.folder,
                f"model_info.parameters.num_chunks is {expected} but the folder has {count} {base} chunks",
            )
        return [found[i][1] for i in range(1, count + 1)]

    def ffn(self, prefix: str) -> tuple[FFNChunk, ...]:
        meta = self.meta
        named = [strip_chunk(strip_part_suffix(meta.ffn))] if meta.ffn else []
        named = list(dict.fromkeys(named + [ffn_stem(prefix, meta.lut_ffn), ffn_stem(prefix, None)]))
        # the combined infer+prefill package wins over single-function leftovers
        combined = [b.replace("_FFN_", "_FFN_PF_") if "_FFN_PF" not in b and "_FFN_" in b else b for b in named]
        combined = [b for b in dict.fromkeys(combined + named) if "_FFN_PF" in b]
        for base in combined:
            parts = self.chunks(base, "FFN")
            if parts:
                return tuple(FFNChunk(i + 1, len(parts), p, p, "infer", "prefill") for i, p in enumerate(parts))
        older = self._separate_infer_and_prefill(prefix, named)
        if older:
            return older
        for base in combined if meta.lut_ffn is None else ():
            variants = sorted({strip_chunk(strip_part_suffix(p.name)) for p in self.folder.glob(f"{base}_lut*_chunk_*")})
            variants = [v for v in variants if LUT_RE.fullmatch(v[len(base):])]
            if len(variants) == 1 and (parts := self.chunks(variants[0], "FFN")):
                self._fallback("ffn", base, variants[0], meta.ffn)
                return tuple(FFNChunk(i + 1, len(parts), p, p, "infer", "prefill") for i, p in enumerate(parts))
        first = chunk_stem(named[0], 1, meta.num_chunks or 1)
        raise LayoutError(
            self.folder,
            f"missing Core ML part {first} (.mlpackage or .mlmodelc): no FFN chunks"
            + (f" for model_info.parameters.ffn ({meta.ffn})" if meta.ffn else "")
            + f" (looked for {', '.join(n + '_chunk_NNofMM' for n in named)})",
            hint=_MISSING,
        )

    def monolithic(self, prefix: str) -> tuple[FFNChunk, ...]:
        """The combined ``infer`` + ``prefill`` package, or the two single-function ones."""
        meta, lut = self.meta, self.meta.lut_ffn
        named = [strip_part_suffix(meta.monolithic_model)] if meta.monolithic_model else []
        for stem in dict.fromkeys(named + [monolithic_stem(prefix, lut), monolithic_stem(prefix, None)]):
            part = find_part(self.folder, stem, "monolithic model")
            if part is not None:
                return (FFNChunk(1, 1, part, part, "infer", "prefill"),)
        for lut_bits in dict.fromkeys((lut, None)):
            infer = find_part(self.folder, monolithic_stem(prefix, lut_bits, "infer"), "monolithic model")
            if infer is not None:
                prefill = find_part(self.folder, monolithic_stem(prefix, lut_bits, "prefill"), "monolithic prefill")
                return (FFNChunk(1, 1, infer, prefill, None, None),)
        first = named[0] if named else monolithic_stem(prefix, lut)
        raise LayoutError(
            self.folder,
            f"missing Core ML part {first} (.mlpackage or .mlmodelc): the monolithic model"
            + (f" that model_info.parameters.monolithic_model names ({meta.monolithic_model})" if meta.monolithic_model else ""),
            hint=_MISSING,
        )

    def _separate_infer_and_prefill(self, prefix: str, named: list[str]) -> tuple[FFNChunk, ...] | None:
        """Older releases: a single-function FFN (infer) per chunk, and a separate prefill package."""
        meta, lut = self.meta, lut_suffix(self.meta.lut_ffn)
        infer_bases = [b for b in named if "_FFN_PF" not in b] + [f"{prefix}_FFN{lut}", f"{prefix}_FFN"]
        for base in dict.fromkeys(infer_bases):
            infer_parts = self.chunks(base, "FFN")
            if not infer_parts:
                continue
            prefill_bases = [strip_chunk(strip_part_suffix(meta.prefill))] if meta.prefill else []
            prefill_bases += [base.replace("_FFN", "_prefill", 1), f"{prefix}_prefill{lut}", f"{prefix}_prefill"]
            prefill_parts = None
            for pbase in dict.fromkeys(prefill_bases):
                prefill_parts = self.chunks(pbase, "prefill")
                if prefill_parts:
                    break
            n = len(infer_parts)
            if prefill_parts is not None and len(prefill_parts) != n:
                raise LayoutError(self.folder, f"{n} FFN chunks but {len(prefill_parts)} prefill chunks", hint="re-convert the model")
            return tuple(
                FFNChunk(i + 1, n, p, prefill_parts[i] if prefill_parts else None, None, None) for i, p in enumerate(infer_parts)
            )
        return None


def _prefix(folder: Path, meta: AnemllMeta) -> str:
    if meta.model_prefix:
        return meta.model_prefix
    for value in (meta.embeddings, meta.lm_head, meta.ffn, meta.monolithic_model):
        if value and "_" in value:
            return strip_part_suffix(value).split("_")[0]
    found = sorted(p.name.split("_embeddings")[0] for p in folder.glob("*_embeddings*") if p.suffix in PART_SUFFIXES)
    return found[0] if found else "llama"


def locate_parts(folder: Path | str, meta: AnemllMeta) -> CoreMLLayout:
    """Find every part ``meta`` describes in ``folder`` (LayoutError naming what is missing)."""
    folder = Path(folder)
    prefix = _prefix(folder, meta)
    finder = _Finder(folder, meta)
    if meta.model_type == "monolithic" or (meta.monolithic_model and not meta.ffn):
        return CoreMLLayout(folder, meta, None, finder.monolithic(prefix), None, finder.luts, tuple(finder.warnings))
    named = [strip_part_suffix(meta.embeddings)] if meta.embeddings else []
    embeddings = finder.single("embeddings", named + [embeddings_stem(prefix, meta.lut_embeddings), embeddings_stem(prefix, None)], "embeddings")
    named = [strip_part_suffix(meta.lm_head)] if meta.lm_head else []
    lm_head = finder.single("lm_head", named + [lm_head_stem(prefix, meta.lut_lmhead), lm_head_stem(prefix, None)], "LM head")
    chunks = finder.ffn(prefix)
    return CoreMLLayout(folder, meta, embeddings, chunks, lm_head, finder.luts, tuple(finder.warnings))


def read_layout(folder: Path | str) -> CoreMLLayout:
    """Parse meta.yaml and find every part (LayoutError naming file/key when it cannot)."""
    return locate_parts(folder, read_meta(folder))
