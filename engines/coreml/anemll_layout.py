"""Finds the parts of an ANEMLL-layout folder: embeddings, FFN chunks, LM head.

Handles what real ANEMLL folders do: ``meta.yaml`` names parts ``.mlmodelc``
where only the ``.mlpackage`` exists (or the other way round); ``ffn`` carries no
chunk suffix (``llama_FFN_PF_lut6`` -> ``llama_FFN_PF_lut6_chunk_01of01``);
single-function ``*_FFN_*`` / ``*_prefill_*`` leftovers sit beside the combined
``*_FFN_PF_*`` package (the combined one wins); older releases ship infer and
prefill as separate packages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from anechat.engines.errors import ModelFormatError
from anechat.engines.coreml.anemll_meta import AnemllMeta, read_meta

SUFFIXES = (".mlpackage", ".mlmodelc")
_CHUNK_RE = re.compile(r"_chunk_(\d+)of(\d+)$")


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
    """One chunk of decoder layers: ``infer`` (one token) and, when present, ``prefill`` (a batch)."""

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
    embeddings: PartFiles
    chunks: tuple[FFNChunk, ...]
    lm_head: PartFiles

    @property
    def all_parts(self) -> list[PartFiles]:
        seen, out = set(), []
        for part in [self.embeddings, *[c.infer for c in self.chunks], *[c.prefill for c in self.chunks if c.prefill], self.lm_head]:
            if part.stem not in seen:
                seen.add(part.stem)
                out.append(part)
        return out


def strip_suffix(name: str) -> str:
    for s in SUFFIXES:
        if name.endswith(s):
            return name[: -len(s)]
    return name


def find_part(folder: Path, stem: str, label: str) -> PartFiles | None:
    pkg, mlc = folder / f"{stem}.mlpackage", folder / f"{stem}.mlmodelc"
    if not pkg.is_dir() and not mlc.is_dir():
        return None
    return PartFiles(label, stem, pkg if pkg.is_dir() else None, mlc if mlc.is_dir() else None)


def _require_part(folder: Path, meta: AnemllMeta, key: str, candidates: list[str], label: str) -> PartFiles:
    for stem in candidates:
        part = find_part(folder, stem, label)
        if part is not None:
            return part
    named = getattr(meta, key, None)
    tried = ", ".join(f"{c}.mlpackage|.mlmodelc" for c in dict.fromkeys(candidates))
    raise ModelFormatError(
        f"{meta.path}: the {label} part named by model_info.parameters.{key}"
        + (f" ({named})" if named else "")
        + f" is not in {folder} (looked for {tried})",
        hint="download the missing files again or re-convert the model",
    )


def _lut(bits: int | None) -> str:
    return f"_lut{bits}" if bits else ""


def _prefix(folder: Path, meta: AnemllMeta) -> str:
    if meta.model_prefix:
        return meta.model_prefix
    for key in ("embeddings", "lm_head", "ffn"):
        value = getattr(meta, key)
        if value and "_" in value:
            return strip_suffix(value).split("_")[0]
    found = sorted(p.name.split("_embeddings")[0] for p in folder.glob("*_embeddings*") if p.suffix in SUFFIXES)
    return found[0] if found else "llama"


def _chunk_set(folder: Path, base: str, label: str) -> dict[int, tuple[int, PartFiles]]:
    """Chunks ``{base}_chunk_NNofMM`` present in ``folder``: index -> (count, files)."""
    found: dict[int, tuple[int, PartFiles]] = {}
    for path in folder.glob(f"{base}_chunk_*"):
        if path.suffix not in SUFFIXES:
            continue
        m = _CHUNK_RE.search(strip_suffix(path.name))
        if not m or strip_suffix(path.name)[: m.start()] != base:
            continue
        index, count = int(m.group(1)), int(m.group(2))
        part = find_part(folder, strip_suffix(path.name), f"{label} chunk {index}/{count}")
        if part is not None:
            found[index] = (count, part)
    return found


def _chunks_for(folder: Path, meta: AnemllMeta, base: str, label: str) -> list[PartFiles] | None:
    """All chunks of ``base``, or the unchunked package itself; None when there are none."""
    found = _chunk_set(folder, base, label)
    if not found:
        single = find_part(folder, base, label)
        return [single] if single is not None else None
    counts = {c for c, _ in found.values()}
    expected = meta.num_chunks
    if expected is not None and expected in counts:
        count = expected
    elif len(counts) == 1:
        count = counts.pop()
    else:
        raise ModelFormatError(
            f"{folder}: {base} chunks disagree on their count ({', '.join(sorted(f'of{c:02d}' for c in counts))})",
            hint="remove the stale chunk files or re-convert the model",
        )
    missing = [i for i in range(1, count + 1) if i not in found or found[i][0] != count]
    if missing:
        raise ModelFormatError(
            f"{folder}: {base} is missing chunk(s) {', '.join(f'{i:02d}of{count:02d}' for i in missing)}",
            hint="download the missing files again or re-convert the model",
        )
    if expected is not None and expected != count:
        raise ModelFormatError(
            f"{meta.path}: model_info.parameters.num_chunks is {expected} but the folder has {count} {base} chunks",
            hint="fix meta.yaml or re-convert the model",
        )
    return [found[i][1] for i in range(1, count + 1)]


def _ffn_candidates(meta: AnemllMeta, prefix: str) -> list[str]:
    bases = []
    if meta.ffn:
        bases.append(_CHUNK_RE.sub("", strip_suffix(meta.ffn)))
    bases.append(f"{prefix}_FFN_PF{_lut(meta.lut_ffn)}")
    bases.append(f"{prefix}_FFN_PF")
    return list(dict.fromkeys(bases))


def _discover_chunks(folder: Path, meta: AnemllMeta, prefix: str) -> tuple[FFNChunk, ...]:
    named = _ffn_candidates(meta, prefix)
    # the combined infer+prefill package wins over single-function leftovers
    combined_bases = [b.replace("_FFN_", "_FFN_PF_") if "_FFN_PF" not in b and "_FFN_" in b else b for b in named]
    for base in dict.fromkeys(combined_bases + named):
        if "_FFN_PF" not in base:
            continue
        parts = _chunks_for(folder, meta, base, "FFN")
        if parts:
            n = len(parts)
            return tuple(FFNChunk(i + 1, n, p, p, "infer", "prefill") for i, p in enumerate(parts))
    # older releases: a single-function FFN (infer) per chunk, and a separate prefill package
    lut = _lut(meta.lut_ffn)
    infer_bases = [b for b in named if "_FFN_PF" not in b] + [f"{prefix}_FFN{lut}", f"{prefix}_FFN"]
    for base in dict.fromkeys(infer_bases):
        infer_parts = _chunks_for(folder, meta, base, "FFN")
        if not infer_parts:
            continue
        prefill_bases = []
        if meta.prefill:
            prefill_bases.append(_CHUNK_RE.sub("", strip_suffix(meta.prefill)))
        prefill_bases += [base.replace("_FFN", "_prefill", 1), f"{prefix}_prefill{lut}", f"{prefix}_prefill"]
        prefill_parts = None
        for pbase in dict.fromkeys(prefill_bases):
            prefill_parts = _chunks_for(folder, meta, pbase, "prefill")
            if prefill_parts:
                break
        n = len(infer_parts)
        if prefill_parts is not None and len(prefill_parts) != n:
            raise ModelFormatError(f"{folder}: {n} FFN chunks but {len(prefill_parts)} prefill chunks", hint="re-convert the model")
        return tuple(
            FFNChunk(i + 1, n, p, prefill_parts[i] if prefill_parts else None, None, None) for i, p in enumerate(infer_parts)
        )
    raise ModelFormatError(
        f"{meta.path}: no FFN part found for model_info.parameters.ffn"
        + (f" ({meta.ffn})" if meta.ffn else "")
        + f" in {folder} (looked for {', '.join(n + '_chunk_NNofMM' for n in named)})",
        hint="download the missing files again or re-convert the model",
    )


def read_layout(folder: Path | str) -> CoreMLLayout:
    """Parse meta.yaml and find every part (ModelFormatError naming file/key when it cannot)."""
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.model_type == "monolithic" or (meta.monolithic_model and not meta.ffn):
        raise ModelFormatError(
            f"{meta.path}: model_info.model_type monolithic (one {meta.monolithic_model or 'monolithic'} part) is not supported",
            hint="use the chunked release of this model (embeddings + FFN + LM head parts)",
        )
    prefix = _prefix(folder, meta)
    emb = [strip_suffix(meta.embeddings)] if meta.embeddings else []
    emb += [f"{prefix}_embeddings{_lut(meta.lut_embeddings)}", f"{prefix}_embeddings"]
    embeddings = _require_part(folder, meta, "embeddings", emb, "embeddings")
    head = [strip_suffix(meta.lm_head)] if meta.lm_head else []
    head += [f"{prefix}_lm_head{_lut(meta.lut_lmhead)}", f"{prefix}_lm_head"]
    lm_head = _require_part(folder, meta, "lm_head", head, "LM head")
    chunks = _discover_chunks(folder, meta, prefix)
    return CoreMLLayout(folder=folder, meta=meta, embeddings=embeddings, chunks=chunks, lm_head=lm_head)


def looks_like_coreml_folder(folder: Path | str) -> bool:
    folder = Path(folder)
    return (folder / "meta.yaml").is_file() and any(p.suffix in SUFFIXES for p in folder.iterdir())
