"""`anechat convert SRC --to mlx|coreml|coreai`: MLX quantization, Core ML with LUT palettization, or Core AI."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from anechat.cli.errors import fail
from anechat.safe_text import sanitize_for_terminal
from anechat.cli.progress import progress_bar

LUT_CHOICES = ("4", "6", "8", "none")
CONVERT_HELP = "Convert a model: --to mlx (quantize with mlx-lm), --to coreml (ANEMLL layout, LUT palettization) or --to coreai (Core AI .aimodel)."
#: the LUT flags' default: the recommended recipe when no LUT flag is given, else none
DEFAULT = "default"


def _lut(name: str, value: str, choices: tuple[str, ...] = LUT_CHOICES) -> int | None:
    value = value.strip().lower()
    if value not in choices + (DEFAULT,):
        raise fail(f"{name} {value!r} is invalid: use one of {', '.join(choices)}")
    return None if value in ("none", DEFAULT) else int(value)


def _luts(to: str, lut_ffn: str, lut_lmhead: str, lut_embeddings: str, lut_ffn_down: str, lut_ffn_last: str) -> dict:
    """The LUT sizes asked for; with no LUT flag, Core ML gets the recommended recipe."""
    bits = LUT_CHOICES[:-1]  # a part of the FFN cannot stay fp16 alone
    mixed = {"lut_ffn_down": _lut("--lut-ffn-down", lut_ffn_down, bits), "lut_ffn_last": _lut("--lut-ffn-last", lut_ffn_last, bits)}
    if to.strip().lower() == "coreml" and DEFAULT == lut_ffn == lut_lmhead == lut_embeddings:
        from anechat.engines.coreml.convert.options import RECOMMENDED

        return dict(RECOMMENDED, **mixed)
    return {"lut_ffn": _lut("--lut-ffn", lut_ffn), "lut_lmhead": _lut("--lut-lmhead", lut_lmhead),
            "lut_embeddings": _lut("--lut-embeddings", lut_embeddings), **mixed}


def convert(
    src: str = typer.Argument(..., help="Source model: a catalog name or a Hugging Face / MLX folder."),
    to: str = typer.Option(..., "--to", help="Target: mlx, coreml or coreai."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output folder (default: in anechat's models folder)."),
    bits: Optional[int] = typer.Option(None, "--bits", help="mlx: quantize to 4 or 8 bits (default: no quantization)."),
    group_size: Optional[int] = typer.Option(None, "--group-size", help="mlx: quantization group size (64). coreml: output channels per LUT, every part (default: one table per row below 8 bits, else 4 for the FFN and 16 for the embeddings and LM head)."),
    mixed: Optional[str] = typer.Option(None, "--mixed", help="mlx: mixed-precision recipe (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)."),
    context: int = typer.Option(512, "--context", help="coreml, coreai: context length."),
    batch: int = typer.Option(64, "--batch", help="coreml, coreai: prefill batch size."),
    chunks: int = typer.Option(1, "--chunks", help="coreml: number of FFN chunks."),
    lut_ffn: str = typer.Option(DEFAULT, "--lut-ffn", help="coreml: LUT bits for the FFN chunks (4, 6, 8, none). No LUT flag: the recommended recipe (FFN 6 with its last layer at 8, LM head 8, embeddings 8). Below 8 bits each row gets its own table."),
    lut_lmhead: str = typer.Option(DEFAULT, "--lut-lmhead", help="coreml: LUT bits for the LM head (4, 6, 8, none)."),
    lut_embeddings: str = typer.Option(DEFAULT, "--lut-embeddings", help="coreml: LUT bits for the embeddings (4, 6, 8, none)."),
    lut_ffn_down: str = typer.Option(DEFAULT, "--lut-ffn-down", help="coreml: LUT bits for the FFN's most sensitive projections: the MLP's down and the attention's k and v (4, 6, 8). Default: 6 when --lut-ffn is 4, else the --lut-ffn bits."),
    lut_ffn_last: str = typer.Option(DEFAULT, "--lut-ffn-last", help="coreml: LUT bits for the last decoder layer, the most sensitive (4, 6, 8). Default: 8 when --lut-ffn is below 8. Set both to the --lut-ffn bits for a uniform FFN."),
    dtype: str = typer.Option("fp32", "--dtype", help="coreai: weight dtype (fp32, bf16, fp16; fp32 is the fast one on Linux)."),
    compress: str = typer.Option("none", "--compress", help="coreai: none, lut8, lut6, lut4 (palettized by anechat, expanded by Core AI), int8 or int4 (coreai-opt)."),
    check: bool = typer.Option(False, "--check", help="coreml: measure what was written against the source (top-1 agreement, perplexity, size)."),
) -> None:
    """Convert a model: `--to mlx` (mlx-lm, optionally quantized), `--to coreml` (ANEMLL layout for the Neural Engine) or `--to coreai` (a Core AI `.aimodel`)."""
    from anechat.catalog import resolve_model
    from anechat.convert.jobs import ConvertRequest, check_source, convert_model

    request = ConvertRequest(
        to=to.strip().lower(),
        bits=bits,
        group_size=group_size,
        mixed=mixed,
        context=context,
        batch=batch,
        chunks=chunks,
        **_luts(to, lut_ffn, lut_lmhead, lut_embeddings, lut_ffn_down, lut_ffn_last),
        dtype=dtype.strip().lower(),
        compress=compress.strip().lower(),
    ).checked()
    entry = resolve_model(src)
    check_source(entry)
    with progress_bar(f"convert {entry.name}") as progress:
        done = convert_model(entry, request, out, progress)
    typer.echo(f"wrote {sanitize_for_terminal(str(done))}")
    if check and request.to == "coreml":
        from anechat.convert.jobs import check_model
        from anechat.engines.coreml.convert.check import quality_lines

        with progress_bar(f"check {done.name}") as progress:
            figures = check_model(entry, done, progress)
        for label, value in quality_lines(figures):
            typer.echo(f"{label}: {value}")

