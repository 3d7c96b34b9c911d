"""Reads an ANEMLL ``meta.yaml``: ``model_info.parameters`` with typed checks.

Older and newer ANEMLL releases write different keys (``lut_bits`` in 0.2,
``lut_ffn`` / ``lut_lmhead`` later; ``num_logits`` before ``split_lm_head``;
``argmax_in_model``, ``vocab_size``, ``lm_head_chunk_sizes``, ``sliding_window``
and ``monolithic_model`` in 0.3.5). Every value is checked here, and a bad one is
refused with a :class:`ModelFormatError` that names the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anechat.engines.errors import ModelFormatError

_NONE_WORDS = ("none", "", "false", "null", "no", "fp16", "-1", "0")


@dataclass(frozen=True)
class AnemllMeta:
    path: Path
    name: str
    version: str
    architecture: str
    context_length: int
    batch_size: int
    num_chunks: int | None
    model_prefix: str
    lut_embeddings: int | None
    lut_ffn: int | None
    lut_lmhead: int | None
    split_lm_head: int | None
    argmax_in_model: bool
    vocab_size: int | None
    lm_head_chunk_sizes: tuple[int, ...] | None
    state_length: int | None
    sliding_window: int | None
    embeddings: str | None
    lm_head: str | None
    ffn: str | None
    prefill: str | None
    monolithic_model: str | None
    model_type: str
    raw: dict = field(default_factory=dict, repr=False)


class _Params:
    def __init__(self, path: Path, params: dict):
        self.path = path
        self.params = params

    def bad(self, key: str, value: Any, rule: str) -> ModelFormatError:
        return ModelFormatError(
            f"{self.path}: model_info.parameters.{key} must be {rule}, got {value!r}",
            hint="fix meta.yaml or re-convert the model",
        )

    def int_(self, key: str, default: int | None = None, *, minimum: int = 1, required: bool = False) -> int | None:
        if key not in self.params or self.params[key] is None:
            if required:
                raise ModelFormatError(f"{self.path}: model_info.parameters.{key} is missing", hint="fix meta.yaml or re-convert the model")
            return default
        value = self.params[key]
        number = _as_int(value)
        if number is None or number < minimum:
            raise self.bad(key, value, f"an integer >= {minimum}")
        return number

    def lut(self, key: str, default: Any = None) -> int | None:
        value = self.params.get(key, default)
        if value is None or value is False:
            return None
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _NONE_WORDS:
                return None
            text = text.split(",")[0].strip()  # "6,4": bits, then ANEMLL's per-channel setting
            number = _as_int(text)
        else:
            number = _as_int(value)
        if number is not None and number <= 0:
            return None
        if number is None or number > 16:
            raise self.bad(key, value, "a LUT size in bits (1-16) or none")
        return number

    def bool_(self, key: str, default: bool = False) -> bool:
        value = self.params.get(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.strip().lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise self.bad(key, value, "true or false")

    def str_(self, key: str, default: str | None = None) -> str | None:
        value = self.params.get(key, default)
        if value is None:
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.bad(key, value, "a file or folder name")
        text = str(value).strip()
        if not text or Path(text).is_absolute() or ".." in Path(text).parts:
            raise self.bad(key, value, "a file name inside the model folder")
        return text

    def int_list(self, key: str) -> tuple[int, ...] | None:
        value = self.params.get(key)
        if value is None:
            return None
        items: list[Any]
        if isinstance(value, str):
            items = [p for p in value.strip().strip("[]").split(",") if p.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise self.bad(key, value, "a list of positive integers")
        numbers = [_as_int(v) for v in items]
        if not numbers or any(n is None or n < 1 for n in numbers):
            raise self.bad(key, value, "a list of positive integers")
        return tuple(int(n) for n in numbers)  # type: ignore[arg-type]


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    return None


def read_meta(folder: Path | str) -> AnemllMeta:
    """Parse ``folder/meta.yaml``; ModelFormatError (naming file and key) when it is unusable."""
    import yaml

    path = Path(folder) / "meta.yaml"
    if not path.is_file():
        raise ModelFormatError(f"{Path(folder)} has no meta.yaml", hint="a Core ML model folder in the ANEMLL layout needs one")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ModelFormatError(f"{path} is not valid YAML{where}", hint="fix meta.yaml or re-convert the model") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path} cannot be read ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("model_info"), dict):
        raise ModelFormatError(f"{path}: model_info is missing or not a mapping", hint="not an ANEMLL-layout meta.yaml")
    info = doc["model_info"]
    params = info.get("parameters")
    if not isinstance(params, dict):
        raise ModelFormatError(f"{path}: model_info.parameters is missing or not a mapping", hint="not an ANEMLL-layout meta.yaml")
    p = _Params(path, params)
    lut_bits = p.lut("lut_bits")  # ANEMLL 0.2: one LUT size for every part
    context = p.int_("context_length", required=True, minimum=2)
    state_length = p.int_("state_length", None, minimum=2)
    if state_length is not None and context is not None and state_length < context:
        raise p.bad("state_length", params["state_length"], f"at least context_length ({context})")
    split = p.int_("split_lm_head", None)
    if split is None:
        split = p.int_("num_logits", None)
    model_type = str(info.get("model_type") or params.get("model_type") or "chunked").strip().lower()
    return AnemllMeta(
        path=path,
        name=str(info.get("name") or Path(folder).name),
        version=str(info.get("version") or ""),
        architecture=str(info.get("architecture") or params.get("architecture") or "").strip().lower(),
        context_length=int(context),  # type: ignore[arg-type]
        batch_size=int(p.int_("batch_size", 64)),  # type: ignore[arg-type]
        num_chunks=p.int_("num_chunks", None),
        model_prefix=p.str_("model_prefix", None) or "",
        lut_embeddings=p.lut("lut_embeddings", lut_bits),
        lut_ffn=p.lut("lut_ffn", lut_bits),
        lut_lmhead=p.lut("lut_lmhead", lut_bits),
        split_lm_head=split,
        argmax_in_model=p.bool_("argmax_in_model", False),
        vocab_size=p.int_("vocab_size", None),
        lm_head_chunk_sizes=p.int_list("lm_head_chunk_sizes"),
        state_length=state_length,
        sliding_window=p.int_("sliding_window", None),
        embeddings=p.str_("embeddings"),
        lm_head=p.str_("lm_head"),
        ffn=p.str_("ffn"),
        prefill=p.str_("prefill") or p.str_("pf"),
        monolithic_model=p.str_("monolithic_model") or p.str_("model"),
        model_type=model_type,
        raw=params,
    )
