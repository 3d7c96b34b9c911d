"""``meta.yaml`` of an ANEMLL-layout folder as one typed record, read and written here only.

:class:`AnemllMeta` mirrors ``model_info`` and its ``parameters`` key for key. Older and
newer ANEMLL releases write different keys: ``lut_bits`` (0.2, one LUT for every part),
``num_logits`` before ``split_lm_head``, ``lut_ffn: "6,4"`` (6 bits, 4 channels per LUT
group) beside ``lut_ffn: 6`` + ``lut_ffn_per_channel: 4`` (0.3.5), and the 0.3.5 keys
``argmax_in_model``, ``vocab_size``, ``lm_head_chunk_sizes``, ``sliding_window``,
``update_mask_prefill``, ``prefill_dynamic_slice``, ``monolithic_model``. Reading folds
them into one record; writing spells them the 0.3.5 way, so ``read(write(m)) == m``.
Every bad value is named (file and key) in one :class:`LayoutError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from anechat.engines.errors import ModelFormatError

#: the ANEMLL layout version anechat writes
LAYOUT_VERSION = "0.3.4"
#: LUT sizes Core ML's lookup-table weights come in (``constexpr_lut_to_dense``)
LUT_BITS = (1, 2, 3, 4, 6, 8)
_NONE_WORDS = ("none", "", "false", "null", "no", "fp16", "0")
_FIX = "fix meta.yaml or re-convert the model"


class LayoutError(ModelFormatError):
    """An ANEMLL folder anechat cannot use: ``where`` (meta.yaml or the folder) and the ``problem``."""

    def __init__(self, where: Path, problem: str, *, hint: str | None = _FIX) -> None:
        self.where, self.problem = Path(where), problem
        super().__init__(f"{where}: {problem}", hint=hint)

    def relative_to(self, folder: Path) -> str:
        """The problem as a model list shows it beside ``folder``: ``meta.yaml: …`` or just the problem."""
        return self.problem if self.where == Path(folder) else f"{self.where.name}: {self.problem}"


@dataclass(frozen=True)
class AnemllMeta:
    context_length: int
    name: str = ""
    version: str = ""
    description: str = ""
    license: str = ""
    framework: str = ""
    architecture: str = ""
    converter: str = ""
    model_type: str = "chunked"  # or "monolithic" (0.3.5)
    batch_size: int = 64
    num_chunks: int | None = None
    model_prefix: str = ""
    lut_embeddings: int | None = None
    lut_embeddings_per_channel: int | None = None  # channels per LUT group; 0 = one LUT per tensor
    lut_ffn: int | None = None
    lut_ffn_per_channel: int | None = None
    lut_lmhead: int | None = None
    lut_lmhead_per_channel: int | None = None
    #: anechat's mixed recipes: the bits of the FFN's down projections and of its last layer,
    #: when they differ from ``lut_ffn``
    lut_ffn_down: int | None = None
    lut_ffn_last: int | None = None
    split_lm_head: int | None = None
    lm_head_chunk_sizes: tuple[int, ...] | None = None
    vocab_size: int | None = None
    state_length: int | None = None
    hidden_size: int | None = None
    num_layers: int | None = None
    embeddings: str | None = None
    lm_head: str | None = None
    ffn: str | None = None
    prefill: str | None = None
    monolithic_model: str | None = None
    argmax_in_model: bool = False
    sliding_window: int | None = None
    update_mask_prefill: bool = False
    prefill_dynamic_slice: bool = False
    #: the file it was read from (not part of the record's value)
    path: Path | None = field(default=None, compare=False)


_INFO_KEYS = ("name", "version", "description", "license", "framework", "architecture", "converter")
_LUT_PARTS = ("lut_embeddings", "lut_ffn", "lut_lmhead")
_INT_KEYS = {"lut_ffn_down": 1, "lut_ffn_last": 1, "batch_size": 1, "num_chunks": 1, "split_lm_head": 1, "vocab_size": 1, "hidden_size": 1, "num_layers": 1, "sliding_window": 1, "state_length": 2}
_NAME_KEYS = ("embeddings", "lm_head", "ffn", "prefill", "monolithic_model")
_BOOL_KEYS = ("argmax_in_model", "update_mask_prefill", "prefill_dynamic_slice")


class _Bad(Exception):
    """A value that breaks ``rule`` (turned into one line naming file and key)."""

    def __init__(self, rule: str):
        self.rule = rule


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _int(value: Any, minimum: int) -> int:
    number = _as_int(value)
    if number is None or number < minimum:
        raise _Bad("a positive integer" if minimum == 1 else f"a positive integer >= {minimum}")
    return number


_LUT_RULE = f"a bit count ({', '.join(map(str, LUT_BITS[:-1]))} or {LUT_BITS[-1]}), optionally with its channel group as in \"6,4\", or none"


def _per_channel(value: Any) -> int:
    """Channels per LUT group; ``0`` / ``"tensor"``: one LUT for the whole tensor."""
    if isinstance(value, str) and value.strip().lower() == "tensor":
        return 0
    number = _as_int(value)
    if number is None or number < 0:
        raise _Bad('a channel group size, or 0 / "tensor" for one LUT per tensor')
    return number


def parse_lut(value: Any) -> tuple[int | None, int | None]:
    """``6`` -> (6, None); ``"6,4"`` -> (6, 4): 6 bits, 4 channels per LUT group (ANEMLL's
    ``--lut 6,4``); ``"6,tensor"`` / ``"6,0"`` -> (6, 0); none / null / false / 0 -> (None, None)."""
    if value is None or value is False:
        return None, None
    group: int | None = None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _NONE_WORDS:
            return None, None
        if "," in text:
            text, group_text = (t.strip() for t in text.split(",", 1))
            try:
                group = _per_channel(group_text)
            except _Bad:
                raise _Bad(_LUT_RULE) from None
        value = text
    bits = _as_int(value)
    if bits == 0 and group is None:
        return None, None
    if bits not in LUT_BITS:
        raise _Bad(_LUT_RULE)
    return bits, group


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _Bad("true or false")


def _name(value: Any) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise _Bad("a file or folder name")
    text = str(value).strip()
    if not text or Path(text).is_absolute() or ".." in Path(text).parts:
        raise _Bad("a file name inside the model folder")
    return text


def _int_list(value: Any) -> tuple[int, ...]:
    items = [p for p in value.strip().strip("[]").split(",") if p.strip()] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise _Bad("a list of positive integers")
    return tuple(_int(v, 1) for v in items)


#: keys read under an older name too: (key, older names...)
_ALIASES = {"split_lm_head": ("num_logits",), "prefill": ("pf",), "monolithic_model": ("model",)}


def parse_meta(doc: Any, path: Path) -> AnemllMeta:
    """The record in a parsed ``meta.yaml`` document; one LayoutError naming every bad key."""
    info = doc.get("model_info") if isinstance(doc, dict) else None
    params = info.get("parameters") if isinstance(info, dict) else None
    if not isinstance(params, dict):
        raise LayoutError(path, "model_info.parameters is missing or not a mapping (not an ANEMLL-layout meta.yaml)")
    problems: list[str] = []

    def get(key: str, parse) -> Any:
        for source in (key, *_ALIASES.get(key, ())):
            if params.get(source) is not None:
                try:
                    return parse(params[source])
                except _Bad as bad:
                    problems.append(f"model_info.parameters.{source} must be {bad.rule}, got {params[source]!r}")
                    return None
        return None

    values: dict[str, Any] = {k: str(info[k]) for k in _INFO_KEYS if info.get(k) is not None}
    values["architecture"] = str(info.get("architecture") or params.get("architecture") or "").strip().lower()
    values["model_type"] = str(info.get("model_type") or params.get("model_type") or "chunked").strip().lower()
    if params.get("context_length") is None:
        problems.append("model_info.parameters.context_length is missing")
    values["context_length"] = get("context_length", lambda v: _int(v, 2))
    for key, minimum in _INT_KEYS.items():
        values[key] = get(key, lambda v, m=minimum: _int(v, m))
    values["model_prefix"] = get("model_prefix", _name)
    # ANEMLL 0.2 and monolithic models: one LUT (lut_bits, lut_per_channel) for every part;
    # anechat before 0.3.5 keys: one lut_group_size
    every_bits, every_group = get("lut_bits", parse_lut) or (None, None)
    every_group = get("lut_per_channel", _per_channel) if every_group is None else every_group
    every_group = get("lut_group_size", _per_channel) if every_group is None else every_group
    for key in _LUT_PARTS:
        bits, group = (get(key, parse_lut) or (None, None)) if key in params else (every_bits, None)
        explicit = get(f"{key}_per_channel", _per_channel)
        values[key] = bits
        values[f"{key}_per_channel"] = None if not bits else next((g for g in (explicit, group, every_group) if g is not None), None)
    values["lm_head_chunk_sizes"] = get("lm_head_chunk_sizes", _int_list)
    for key in _NAME_KEYS:
        values[key] = get(key, _name)
    for key in _BOOL_KEYS:
        values[key] = get(key, _bool)
    context, state = values["context_length"], values["state_length"]
    if context is not None and state is not None and state < context:
        problems.append(f"model_info.parameters.state_length must be at least context_length ({context}), got {state}")
    if problems:
        raise LayoutError(path, "; ".join(problems))
    return AnemllMeta(**{k: v for k, v in values.items() if v is not None}, path=path)


def read_meta(folder: Path | str) -> AnemllMeta:
    """Parse ``folder/meta.yaml``; LayoutError (naming file and key) when it is unusable."""
    import yaml

    path = Path(folder) / "meta.yaml"
    if not path.is_file():
        raise LayoutError(Path(folder), "no meta.yaml here", hint="a Core ML model folder in the ANEMLL layout needs one")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise LayoutError(path, "not valid YAML" + (f" (line {mark.line + 1})" if mark is not None else "")) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LayoutError(path, f"cannot be read ({exc})", hint=None) from exc
    return parse_meta(doc, path)


def meta_document(meta: AnemllMeta) -> dict:
    """The ``meta.yaml`` document of ``meta``, keys spelled as ANEMLL 0.3.5 spells them."""
    info: dict[str, Any] = {k: getattr(meta, k) for k in _INFO_KEYS if getattr(meta, k)}
    if meta.model_type != "chunked":
        info["model_type"] = meta.model_type
    params: dict[str, Any] = {}
    for f in fields(AnemllMeta):
        key, value = f.name, getattr(meta, f.name)
        if key in _INFO_KEYS or key in ("model_type", "path"):
            continue
        if key in _LUT_PARTS:
            params[key] = value if value else "none"
        elif key == "lm_head_chunk_sizes" and value is not None:
            params[key] = list(value)
        elif key == "argmax_in_model" or not (value is None or value is False or value == ""):
            params[key] = value
    info["parameters"] = params
    return {"model_info": info}


def write_meta(folder: Path, meta: AnemllMeta) -> Path:
    import yaml

    path = Path(folder) / "meta.yaml"
    path.write_text(yaml.safe_dump(meta_document(meta), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
