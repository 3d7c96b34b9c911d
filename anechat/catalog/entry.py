"""One model the catalog knows about: where it is, what format it is, what can run it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from anechat.catalog.provenance import Origin
from anechat.engines.errors import ModelFormatError

Source = Literal["anechat", "hf-cache", "folder", "builtin", "path"]
Format = Literal["mlx", "hf", "coreml", "coreai", "gguf", "unsupported"]


@dataclass(frozen=True)
class ModelEntry:
    """A model on this machine.

    ``name`` is the short catalog name a person types (``smollm2-135m-instruct``);
    ``repo_id`` is set for models from the Hugging Face cache. ``engines`` lists the
    engines that can run the entry as it is; ``convertible`` says that ``anechat
    convert`` can turn it into something runnable. ``reason`` says why an entry is
    unsupported or how to make it runnable.
    """

    name: str
    path: Path
    source: Source
    format: Format
    engines: tuple[str, ...] = ()
    size_bytes: int | None = None
    parameters: int | None = None
    quantization: str = ""
    context_length: int | None = None
    architecture: str = ""
    reason: str = ""
    convertible: bool = False
    repo_id: str | None = None
    revision: str | None = None
    notes: tuple[str, ...] = ()
    details: dict = field(default_factory=dict, compare=False, hash=False)
    #: True for the built-in GGUF before its first use (``anechat.convert.default_model`` converts it)
    needs_conversion: bool = False
    #: what this folder was converted from (its ``anechat-source.json``); None for a source
    origin: Origin | None = field(default=None, compare=False, hash=False)

    @property
    def runnable(self) -> bool:
        return bool(self.engines)

    def ensure_local(self) -> Path:
        """The model's folder on disk (``path``).

        Raises ModelFormatError for an unsupported entry, or for the built-in GGUF
        before its first use (``anechat.convert.default_model.local_model_path``
        converts it); whether an engine can run the result is ``engines`` (see
        :meth:`require_engine`)."""
        if self.needs_conversion:
            raise ModelFormatError(f"{self.name} is converted on first use", hint="load it through the chat or anechat convert")
        if self.format == "unsupported":
            raise ModelFormatError(f"{self.name} is not a model anechat can use: {self.reason}")
        return self.path

    def require_engine(self, engine: str) -> None:
        """Raise ModelFormatError (with what to do) unless ``engine`` can run this entry."""
        if engine in self.engines:
            return
        if self.engines:
            hint = f"use the {self.engines[0]} engine"
            if engine in ("coreml", "coreai") and self.convertible:
                hint += f", or convert it: anechat convert {self.name} --to {engine}"
        else:
            hint = self.reason or "see: anechat models info " + self.name
        raise ModelFormatError(
            f"{self.name} ({self.format}) cannot run on the {engine} engine", hint=hint
        )

    def with_(self, **changes: object) -> "ModelEntry":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-ready data (for ``--json``)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "source": self.source,
            "format": self.format,
            "engines": list(self.engines),
            "runnable": self.runnable,
            "convertible": self.convertible,
            "size_bytes": self.size_bytes,
            "parameters": self.parameters,
            "quantization": self.quantization or None,
            "context_length": self.context_length,
            "architecture": self.architecture or None,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "reason": self.reason or None,
            "notes": list(self.notes),
            "details": self.details,
            "origin": self.origin.to_dict() if self.origin else None,
        }
