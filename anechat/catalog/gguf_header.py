"""Reads a GGUF file's header (metadata and tensor shapes) without touching the weights,
and says whether anechat can import the file (one rule for the catalog and the importer).

``gguf.GGUFReader`` parses every array in the file (a 49k-token vocabulary takes
seconds), which is too slow for listing models; this reader walks the header with
``struct`` over a memory map and skips arrays it does not need. Layout (GGUF v2/v3):
magic ``GGUF``, u32 version, u64 tensor count, u64 key/value count, the key/values,
then per tensor: name, u32 n_dims, u64 dims, u32 type, u64 offset.

The importer (:mod:`anechat.convert.gguf.reader`) checks a file with this header
first and only then opens it with ``gguf.GGUFReader`` for its tensors and vocabulary.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

# GGUF value types (fixed by the file format)
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9

# general.file_type values (llama.cpp's LlamaFileType) for the common quantizations
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S",
    29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0",
}


#: ``general.architecture`` values anechat can import as a Hugging Face / MLX folder
SUPPORTED_ARCHITECTURES = ("llama", "gemma3")


class GGUFHeaderError(ValueError):
    pass


@dataclass
class GGUFHeader:
    version: int
    metadata: dict = field(default_factory=dict)
    tensor_count: int = 0
    parameters: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture") or "")

    def arch_value(self, suffix: str):
        return self.metadata.get(f"{self.architecture}.{suffix}")

    @property
    def file_type(self) -> str:
        ft = self.metadata.get("general.file_type")
        if ft is None:
            return ""
        return FILE_TYPES.get(int(ft), f"type {ft}")


class _Cursor:
    def __init__(self, buf, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, fmt: str):
        n = struct.calcsize(fmt)
        if self.pos + n > self.size:
            raise GGUFHeaderError("the file ends inside its header (truncated)")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value

    def string(self, keep: bool = True) -> str | None:
        n = self.take("<Q")
        if self.pos + n > self.size:
            raise GGUFHeaderError("the file ends inside its header (truncated)")
        start, self.pos = self.pos, self.pos + n
        return bytes(self.buf[start:self.pos]).decode("utf-8", "replace") if keep else None

    def value(self, vtype: int, keep: bool = True):
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string(keep)
        if vtype == _ARRAY:
            item_type, count = self.take("<I"), self.take("<Q")
            if item_type in _SCALARS:  # fixed-size items: skip in one step
                width = struct.calcsize(_SCALARS[item_type])
                if self.pos + width * count > self.size:
                    raise GGUFHeaderError("the file ends inside its header (truncated)")
                if not keep:
                    self.pos += width * count
                    return None
                return [self.take(_SCALARS[item_type]) for _ in range(count)]
            if item_type == _STRING and not keep:
                for _ in range(count):
                    n = self.take("<Q")
                    self.pos += n
                    if self.pos > self.size:
                        raise GGUFHeaderError("the file ends inside its header (truncated)")
                return None
            return [self.value(item_type, keep) for _ in range(count)]
        raise GGUFHeaderError(f"unknown GGUF value type {vtype} (corrupt header?)")


def _wanted(key: str) -> bool:
    """Arrays of the tokenizer are large and not needed for the catalog."""
    return not key.startswith("tokenizer.")


def read_gguf_header(path: Path | str) -> GGUFHeader:
    """Metadata (tokenizer arrays skipped) and the parameter count of a GGUF file."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = path.stat().st_size
        if size < 24:
            raise GGUFHeaderError("too short to be a GGUF file")
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            if bytes(buf[:4]) != b"GGUF":
                raise GGUFHeaderError("no GGUF magic at the start of the file")
            cur = _Cursor(buf, size)
            cur.pos = 4
            version = cur.take("<I")
            if version not in (2, 3):
                raise GGUFHeaderError(f"GGUF version {version} is not supported (2 or 3)")
            n_tensors, n_kv = cur.take("<Q"), cur.take("<Q")
            if n_kv > 1_000_000 or n_tensors > 10_000_000:
                raise GGUFHeaderError("implausible header counts (corrupt file?)")
            header = GGUFHeader(version=version, tensor_count=n_tensors)
            for _ in range(n_kv):
                key = cur.string()
                vtype = cur.take("<I")
                keep = _wanted(key)
                value = cur.value(vtype, keep)
                if keep:
                    header.metadata[key] = value
            total = 0
            for _ in range(n_tensors):
                cur.string(keep=False)
                n_dims = cur.take("<I")
                if n_dims > 8:
                    raise GGUFHeaderError("implausible tensor rank (corrupt file?)")
                numel = 1
                for _ in range(n_dims):
                    numel *= cur.take("<Q")
                cur.take("<I")  # type
                cur.take("<Q")  # offset
                total += numel
            header.parameters = total
            return header


def import_problem(header: GGUFHeader) -> tuple[str, str] | None:
    """Why anechat cannot import this GGUF, as (what it is, what to do); None when it can."""
    if int(header.metadata.get("split.count") or 1) > 1:
        return "one part of a split GGUF", "merge the parts first (llama-gguf-split --merge)"
    if header.architecture not in SUPPORTED_ARCHITECTURES:
        return (
            f"a '{header.architecture or 'unknown'}' model; anechat imports only these GGUF architectures: "
            + ", ".join(SUPPORTED_ARCHITECTURES),
            "use an MLX or Hugging Face copy of this model instead",
        )
    return None
