"""Opens a GGUF file for import: its metadata, tensors and vocabulary (the ``gguf``
package's ``GGUFReader``).

The file is first checked with the catalog's fast header reader
(:mod:`anechat.catalog.gguf_header`, the one rule for what can be imported); the
``GGUFReader`` memory-maps it, so tensors are only touched when the importer
dequantizes them one by one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from anechat.catalog.gguf_header import GGUFHeaderError, import_problem, read_gguf_header
from anechat.engines.errors import BackendUnavailable, ModelFormatError, ModelNotFound


class GGUFFile:
    """One GGUF file: typed access to its key/value metadata and its tensors by name."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFound(f"GGUF file {self.path} does not exist")
        try:
            problem = import_problem(read_gguf_header(self.path))
        except (GGUFHeaderError, OSError) as exc:
            raise ModelFormatError(
                f"{self.path.name} is not a readable GGUF file ({exc})", hint="check that the download is complete"
            ) from exc
        if problem is not None:
            raise ModelFormatError(f"{self.path.name} holds {problem[0]}", hint=problem[1])
        try:
            from gguf import GGUFReader
        except ImportError as exc:  # pragma: no cover - gguf ships with anechat[mlx]
            raise BackendUnavailable(
                "importing GGUF files needs the 'gguf' package", hint="pip install 'anechat[mlx]'"
            ) from exc
        try:
            self.reader = GGUFReader(str(self.path))
        except Exception as exc:  # the reader raises ValueError/struct.error/... on bad files
            raise ModelFormatError(
                f"{self.path.name} is not a readable GGUF file ({exc})",
                hint="check that the download is complete",
            ) from exc
        self.tensors = {t.name: t for t in self.reader.tensors}
        self.arch = self.get("general.architecture")

    # -- metadata ----------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        field = self.reader.get_field(key)
        if field is None:
            return default
        return field.contents()

    def require(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise ModelFormatError(f"{self.path.name} lacks the GGUF key '{key}'", hint="the file may be truncated or from an unsupported converter")
        return value

    def arch_key(self, suffix: str, default: Any = None) -> Any:
        """``{arch}.{suffix}``, e.g. ``arch_key("block_count")`` -> ``llama.block_count``."""
        return self.get(f"{self.arch}.{suffix}", default)

    def arch_int(self, suffix: str, default: int | None = None) -> int:
        value = self.arch_key(suffix, default)
        if value is None:
            raise ModelFormatError(f"{self.path.name} lacks the GGUF key '{self.arch}.{suffix}'")
        if isinstance(value, list):  # per-layer values (e.g. head counts) are not llama
            raise ModelFormatError(f"{self.path.name} has per-layer '{self.arch}.{suffix}', which a llama model cannot express")
        return int(value)

    @property
    def name(self) -> str:
        return str(self.get("general.name") or self.path.stem)

    def tensor_shape(self, name: str) -> tuple[int, ...]:
        """Shape in numpy (row-major) order; GGUF stores dimensions innermost first."""
        return tuple(int(d) for d in reversed(self.tensors[name].shape.tolist()))
