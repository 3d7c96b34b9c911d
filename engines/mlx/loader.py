"""Loading an MLX or plain Hugging Face safetensors model folder with mlx-lm's model classes.

Every way a folder can be wrong becomes a ModelNotFound / ModelFormatError that
names the file and says what to do. On the CPU, 16-bit weights (and the
scales of quantized layers) are cast to float32: MLX's CPU kernels are much
slower in float16/bfloat16 (measured on x86-64 with OpenBLAS: a 135M llama
decodes ~2.3x faster in float32 than in bfloat16, and a 4-bit matmul with
float16 scales is ~50x slower than with float32 scales).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from anechat.engines.base import ModelInfo
from anechat.engines.errors import InvalidParameter, ModelFormatError, ModelNotFound, OutOfMemory
from anechat.engines.model_config_check import check_config_sizes
from anechat.engines.tokenizer import ChatTokenizer
from anechat.engines.mlx.runtime import is_out_of_memory, on_cpu, runtime_label

_REDOWNLOAD = "the file is incomplete or damaged: download or convert the model again"


@dataclass
class LoadedModel:
    model: object  # mlx.nn.Module
    info: ModelInfo
    tokenizer: ChatTokenizer


def load_folder(
    path: Path | str, context_length: int | None = None, *, split: Callable[[object], None] | None = None, ranks: int = 1
) -> LoadedModel:
    """Load a model folder. ``split`` (a distributed rank: :mod:`.distributed.shard`) cuts the
    lazily built model down to this rank's part before any weight is read; the memory
    check then asks for about ``1/ranks`` of the model."""
    folder = check_folder(path)
    if context_length is not None and (not isinstance(context_length, int) or context_length < 2):
        raise InvalidParameter(f"context_length={context_length} is invalid: use an integer >= 2")
    config = read_config(folder)
    tokenizer = ChatTokenizer(folder)
    weight_files = find_weight_files(folder)
    tensor_bytes: dict[str, int] = {}
    for file in weight_files:
        for dtype, n in check_safetensors(file).items():
            tensor_bytes[dtype] = tensor_bytes.get(dtype, 0) + n
    check_config_sizes(config, weight_files, folder)  # before mlx-lm builds anything from it
    cast = on_cpu()
    check_fits({dtype: n // ranks for dtype, n in tensor_bytes.items()}, cast)
    model, config = _load_model(folder, config, cast, split)
    return LoadedModel(model=model, info=describe(folder, config, model, tokenizer, context_length), tokenizer=tokenizer)


def check_folder(path: Path | str) -> Path:
    folder = Path(path).expanduser()
    if not folder.exists():
        raise ModelNotFound(f"no model at {folder}", hint="check the path, or pull / convert the model first")
    if not folder.is_dir():
        raise ModelFormatError(f"{folder} is a file", hint="give the model's folder (with config.json and *.safetensors)")
    if not (folder / "config.json").is_file():
        raise ModelFormatError(f"{folder} has no config.json", hint=_what_it_looks_like(folder))
    return folder


def _what_it_looks_like(folder: Path) -> str:
    if (folder / "meta.yaml").is_file() or any(folder.glob("*.mlpackage")) or any(folder.glob("*.mlmodelc")):
        return "this looks like a Core ML (ANEMLL) model: load it with the coreml engine"
    if any(folder.glob("*.gguf")):
        return "this folder holds a GGUF file: convert it to safetensors first"
    return "an MLX / Hugging Face model folder needs config.json next to its model*.safetensors weights"


def read_config(folder: Path) -> dict:
    file = folder / "config.json"
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{file} is not valid JSON ({exc})", hint=_REDOWNLOAD) from exc
    if not isinstance(config, dict) or not config.get("model_type"):
        raise ModelFormatError(f"{file} has no model_type", hint="this is not a transformers / MLX language model config")
    return config


def find_weight_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("model*.safetensors"))
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            raise ModelFormatError(f"{index} is not a valid safetensors index ({exc})", hint=_REDOWNLOAD) from exc
        missing = sorted(name for name in shards if not (folder / name).is_file())
        if missing:
            raise ModelFormatError(
                f"{folder} is missing weight shard(s) {', '.join(missing)} listed in {index.name}",
                hint="the download is incomplete: download the model again",
            )
    if not files:
        others = sorted(p.name for p in folder.glob("*.safetensors"))
        detail = f" (found {', '.join(others)}; mlx-lm reads only model*.safetensors)" if others else ""
        raise ModelFormatError(f"{folder} has no model*.safetensors weights{detail}", hint=_what_it_looks_like(folder))
    return files


def check_safetensors(file: Path) -> dict[str, int]:
    """Read a safetensors header, check the file is as long as it says; bytes per dtype."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than a safetensors header")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size - 8, 100 << 20):
                raise ValueError(f"header length {header_len} is past the end of the file")
            header = json.loads(fh.read(header_len))
        tensors = [t for k, t in header.items() if k != "__metadata__"]
        end = max((int(t["data_offsets"][1]) for t in tensors), default=0)
        by_dtype: dict[str, int] = {}
        for t in tensors:
            begin, stop = t["data_offsets"]
            by_dtype[str(t["dtype"])] = by_dtype.get(str(t["dtype"]), 0) + int(stop) - int(begin)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise ModelFormatError(f"{file} is not a readable safetensors file ({exc})", hint=_REDOWNLOAD) from exc
    if 8 + header_len + end > size:
        raise ModelFormatError(
            f"{file} is truncated: its header promises {8 + header_len + end} bytes but the file has {size}",
            hint=_REDOWNLOAD,
        )
    return by_dtype


def check_fits(tensor_bytes: dict[str, int], cast_to_float32: bool) -> None:
    """Refuse a model that cannot fit in this machine's memory at all (before reading it)."""
    try:
        import psutil

        total = psutil.virtual_memory().total
    except Exception:  # psutil missing or unsupported: let MLX find out
        return
    widen = {"F16": 2, "BF16": 2} if cast_to_float32 else {}
    need = sum(n * widen.get(dtype, 1) for dtype, n in tensor_bytes.items())
    if need > total:
        raise OutOfMemory(
            f"the model needs about {need / 2**30:.1f} GiB but this machine has {total / 2**30:.1f} GiB",
            hint="use a smaller or quantized model",
        )


def _load_model(folder: Path, config: dict, cast_to_float32: bool, split: Callable[[object], None] | None = None):
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm.utils import load_model

    from anechat.engines.mlx.runtime import generation_stream

    try:
        with mx.stream(generation_stream()):
            model, config = load_model(folder, lazy=True)
            if split is not None:
                split(model)
            if cast_to_float32:
                sources = {_dtype_name(p.dtype) for p in _leaves(model) if p.dtype in (mx.float16, mx.bfloat16)}
                if sources:
                    model.update(tree_map(_to_float32, model.parameters()))
                    config = dict(config, _anechat_cast_from=sorted(sources))
            mx.eval(model.parameters())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        text = str(exc)
        if "trust_remote_code" in text:
            raise ModelFormatError(
                f"{folder} needs its own Python code to build the model, which anechat does not run",
                hint="pick a model whose architecture mlx-lm supports",
            ) from exc
        if "not supported" in text:
            raise ModelFormatError(
                f"{folder}: model_type {config.get('model_type')!r} is not supported by this mlx-lm",
                hint="upgrade mlx-lm (pip install -U mlx-lm) or pick another model",
            ) from exc
        raise ModelFormatError(f"the weights in {folder} do not match its config.json ({text})", hint=_REDOWNLOAD) from exc
    except (RuntimeError, MemoryError) as exc:
        if is_out_of_memory(exc):
            raise OutOfMemory(f"out of memory while loading {folder.name} ({exc})", hint="use a smaller or quantized model") from exc
        raise ModelFormatError(f"MLX could not read the weights in {folder} ({exc})", hint=_REDOWNLOAD) from exc
    return model, config


def _dtype_name(dtype) -> str:
    return str(dtype).replace("mlx.core.", "")


def _to_float32(a):
    import mlx.core as mx

    return a.astype(mx.float32) if a.dtype in (mx.float16, mx.bfloat16) else a


def _leaves(model) -> list:
    from mlx.utils import tree_flatten

    return [v for _, v in tree_flatten(model.parameters())]


def weights_nbytes(model) -> int:
    return sum(int(a.nbytes) for a in _leaves(model))


def describe(folder: Path, config: dict, model, tokenizer: ChatTokenizer, context_length: int | None) -> ModelInfo:
    from mlx_lm.utils import get_total_parameters

    text_config = config.get("text_config") if isinstance(config.get("text_config"), dict) else {}
    max_positions = config.get("max_position_embeddings") or text_config.get("max_position_embeddings")
    vocab = config.get("vocab_size") or text_config.get("vocab_size") or tokenizer.vocab_size
    architectures = config.get("architectures") or [config["model_type"]]
    dtype = _dominant_float_dtype(model)
    quant = config.get("quantization") if isinstance(config.get("quantization"), dict) else None
    if quant:
        mode = quant.get("mode", "affine")
        quantization = f"{quant.get('bits')}-bit g{quant.get('group_size')}" if mode == "affine" else str(mode)
    else:
        quantization = dtype
    cast_from = config.get("_anechat_cast_from")
    extra = {
        "model_type": config["model_type"],
        "dtype": dtype,
        "weights_bytes": weights_nbytes(model),
        "runtime": runtime_label(),
    }
    if cast_from:
        extra["cast_from"] = ", ".join(cast_from)
    return ModelInfo(
        name=folder.name,
        path=folder,
        architecture=str(architectures[0]),
        context_length=int(context_length or max_positions or 4096),
        vocab_size=int(vocab),
        parameters=int(get_total_parameters(model)),
        quantization=quantization,
        extra=extra,
    )


def _dominant_float_dtype(model) -> str:
    import mlx.core as mx

    by_dtype: dict[str, int] = {}
    for a in _leaves(model):
        if mx.issubdtype(a.dtype, mx.floating):
            name = _dtype_name(a.dtype)
            by_dtype[name] = by_dtype.get(name, 0) + int(a.nbytes)
    return max(by_dtype, key=by_dtype.get) if by_dtype else "unknown"
