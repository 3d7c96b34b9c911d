"""Model folders in each format the catalog recognises, built at test time from the tiny llama.

- ``build_mlx_quantized``: the tiny model quantized by MLX itself (``mx.quantize``), saved
  the way mlx-lm saves (``quantization`` in config.json, ``format: mlx`` metadata).
- ``build_coreml_layout``: an ANEMLL-layout folder (meta.yaml + parts); ``rewrite_meta`` edits
  its meta.yaml as other ANEMLL releases write it. The catalog checks
  the layout only, so each part is a ``.mlpackage`` folder holding just its manifest.
- ``build_gguf``: a small GGUF written with the ``gguf`` package's writer.
- ``build_hf_cache_repo``: a model placed in a Hugging Face cache folder the way the hub
  lays it out (``blobs/``, ``snapshots/<commit>/`` symlinks, ``refs/main``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


def build_mlx_quantized(src: Path, dst: Path, *, bits: int = 4, group_size: int = 32, overrides: dict | None = None) -> Path:
    import mlx.core as mx

    dst.mkdir(parents=True, exist_ok=True)
    weights = mx.load(str(src / "model.safetensors"))
    overrides = overrides or {}
    out = {}
    for name, w in weights.items():
        layer = name[: -len(".weight")]
        if name.endswith(".weight") and w.ndim == 2:
            b = overrides.get(layer, {}).get("bits", bits)
            wq, scales, biases = mx.quantize(w, group_size=group_size, bits=b)
            out[name], out[f"{layer}.scales"], out[f"{layer}.biases"] = wq, scales, biases
        else:
            out[name] = w
    mx.save_safetensors(str(dst / "model.safetensors"), out, metadata={"format": "mlx"})
    config = json.loads((src / "config.json").read_text())
    config["quantization"] = {"group_size": group_size, "bits": bits, **overrides}
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        shutil.copy(src / name, dst / name)
    return dst


def build_coreml_layout(
    src: Path,
    dst: Path,
    *,
    context: int = 256,
    chunks: int = 1,
    lut_ffn: int | None = 6,
    lut_lmhead: int | None = 6,
    lut_embeddings: int | None = None,
    parameters: dict | None = None,
    skip_parts: tuple[str, ...] = (),
    compile_skipped: bool = False,
) -> Path:
    """meta.yaml names parts ``.mlmodelc`` and the FFN without a chunk suffix (as ANEMLL 0.3.4
    does) while the folder holds ``.mlpackage`` parts (as on Linux, uncompiled).

    ``compile_skipped``: meta.yaml names the embeddings and LM head without their LUT
    (``llama_lm_head.mlmodelc``, ``lut_lmhead: none``), as ANEMLL's converter writes it when
    its compile step is skipped, while the parts on disk keep theirs (``llama_lm_head_lut6``)."""
    import yaml

    dst.mkdir(parents=True, exist_ok=True)

    def lut(n: int | None) -> str:
        return f"_lut{n}" if n else ""

    emb, head, ffn = f"llama_embeddings{lut(lut_embeddings)}", f"llama_lm_head{lut(lut_lmhead)}", f"llama_FFN_PF{lut(lut_ffn)}"
    params = {
        "context_length": context,
        "batch_size": 64,
        "num_chunks": chunks,
        "model_prefix": "llama",
        "lut_embeddings": lut_embeddings if lut_embeddings else "none",
        "lut_ffn": lut_ffn if lut_ffn else "none",
        "lut_lmhead": lut_lmhead if lut_lmhead else "none",
        "split_lm_head": 8,
        "embeddings": f"{emb}.mlmodelc",
        "lm_head": f"{head}.mlmodelc",
        **(
            {"embeddings": "llama_embeddings.mlmodelc", "lm_head": "llama_lm_head.mlmodelc", "lut_embeddings": "none", "lut_lmhead": "none"}
            if compile_skipped
            else {}
        ),
        "ffn": f"{ffn}.mlmodelc",
    }
    params.update(parameters or {})
    meta = {"model_info": {"name": dst.name, "version": "0.3.4", "architecture": "llama", "parameters": params}}
    (dst / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    parts = [emb, head] + [f"{ffn}_chunk_{i:02d}of{chunks:02d}" for i in range(1, chunks + 1)]
    for part in parts:
        if part in skip_parts:
            continue
        package = dst / f"{part}.mlpackage"
        package.mkdir()
        (package / "Manifest.json").write_text(json.dumps({"fileFormatVersion": "1.0.0", "itemInfoEntries": {}}))
    for name in TOKENIZER_FILES + ("config.json",):
        shutil.copy(src / name, dst / name)
    return dst


def rewrite_meta(folder: Path, **params: object) -> Path:
    """Change ``model_info.parameters`` in ``folder/meta.yaml``; a value of None drops the key."""
    import yaml

    doc = yaml.safe_load((folder / "meta.yaml").read_text())
    merged = {**doc["model_info"]["parameters"], **params}
    doc["model_info"]["parameters"] = {k: v for k, v in merged.items() if v is not None}
    (folder / "meta.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def build_gguf(path: Path, *, arch: str = "llama", context: int = 2048, n_layers: int = 2, file_type: int = 0) -> tuple[Path, int]:
    """A small GGUF with a tokenizer vocabulary (so the header has big arrays to skip).
    Returns (path, number of parameters written)."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name("tiny test model")
    writer.add_context_length(context)
    writer.add_block_count(n_layers)
    writer.add_embedding_length(16)
    writer.add_file_type(file_type)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([f"tok{i}" for i in range(500)])
    writer.add_token_types([1] * 500)
    rng = np.random.default_rng(0)
    count = 0
    shapes = {"token_embd.weight": (500, 16), "output_norm.weight": (16,)}
    for i in range(n_layers):
        shapes[f"blk.{i}.attn_q.weight"] = (16, 16)
        shapes[f"blk.{i}.ffn_up.weight"] = (32, 16)
    for name, shape in shapes.items():
        writer.add_tensor(name, rng.standard_normal(shape).astype(np.float32))
        count += int(np.prod(shape))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, count


def build_hf_cache_repo(cache: Path, repo_id: str, src: Path, *, commit: str | None = None, files: list[str] | None = None) -> Path:
    """Place ``src``'s files in a hub cache as ``repo_id``; returns the snapshot folder."""
    commit = commit or hashlib.sha1(repo_id.encode()).hexdigest()
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for p in sorted(src.iterdir()):
        if not p.is_file() or (files is not None and p.name not in files):
            continue
        data = p.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / p.name).symlink_to(Path("../../blobs") / blob.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def safetensors_parameter_count(folder: Path) -> int:
    """Elements in every tensor, counted by loading the weights (the slow, sure way)."""
    from safetensors.numpy import load_file

    return sum(int(a.size) for p in folder.glob("*.safetensors") for a in load_file(str(p)).values())
