"""Benchmark records as table rows, rendered as a Rich table or a Markdown table."""

from __future__ import annotations

from typing import Sequence

from anechat.formatting import human_bytes

RESULT_HEADERS = ("engine", "runtime", "model", "prompt", "gen", "runs", "prefill tok/s", "decode tok/s", "TTFT", "peak memory", "decode vs first")
HISTORY_HEADERS = ("date", "run", "model", "engine", "prompt", "gen", "prefill tok/s", "decode tok/s", "TTFT", "peak memory", "machine")
_NUMERIC = {"prompt", "gen", "runs", "prefill tok/s", "decode tok/s", "TTFT", "peak memory", "decode vs first"}
_TEXT = {"runtime", "model", "machine"}  # may fold onto several lines in a narrow terminal


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "—" if value is None else fmt.format(value)


def _ttft(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _figures(cell: dict) -> list[str]:
    med = cell.get("median") or {}
    if cell.get("error"):
        return ["error: " + str(cell["error"]), "", "", ""]
    return [
        _num(med.get("prefill_tps")),
        _num(med.get("decode_tps")),
        _ttft(med.get("ttft_s")),
        human_bytes(med.get("peak_memory_bytes")) if med.get("peak_memory_bytes") else "—",
    ]


def result_rows(record: dict) -> list[list[str]]:
    """One row per engine × prompt length; the last column is decode tok/s over the first engine's."""
    cells = record.get("results", [])
    first_decode: dict[int, float] = {}
    for cell in cells:
        decode = (cell.get("median") or {}).get("decode_tps")
        if decode and cell.get("prompt_tokens") not in first_decode:
            first_decode[cell["prompt_tokens"]] = decode
    rows = []
    for cell in cells:
        decode = (cell.get("median") or {}).get("decode_tps")
        base = first_decode.get(cell.get("prompt_tokens"))
        vs = f"×{decode / base:.2f}" if decode and base else "—"
        rows.append(
            [
                str(cell.get("engine", "")),
                str(cell.get("runtime", "")),
                str(cell.get("model", "")),
                str(cell.get("prompt_tokens", "")),
                str(cell.get("gen_tokens", "")),
                str(len(cell.get("runs", []))),
                *_figures(cell),
                vs,
            ]
        )
    return rows


def _short_blas(blas: str) -> str:
    return blas.split(" (")[0] if blas else ""


def history_rows(runs: Sequence[dict]) -> list[list[str]]:
    rows = []
    for run in runs:
        machine = run.get("machine") or {}
        where = " · ".join(x for x in (str(machine.get("chip", "")), _short_blas(str(machine.get("blas", "")))) if x)
        for cell in run.get("results", []):
            rows.append(
                [
                    str(run.get("created", ""))[:16].replace("T", " "),
                    str(run.get("id", ""))[:8],
                    str(cell.get("model", "")),
                    str(cell.get("engine", "")),
                    str(cell.get("prompt_tokens", "")),
                    str(cell.get("gen_tokens", "")),
                    *_figures(cell),
                    where,
                ]
            )
    return rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |"]
    lines.append("|" + "|".join("---:" if h in _NUMERIC else "---" for h in headers) + "|")
    lines.extend("| " + " | ".join(esc(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = ""):
    """A light table: figures never wrap; headers and text columns fold in a narrow terminal."""
    from rich import box
    from rich.table import Table

    table = Table(title=title or None, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for i, h in enumerate(headers):
        widest = max((len(str(row[i])) for row in rows), default=1)
        folds = h in _TEXT or widest > 24
        table.add_column(
            h,
            justify="right" if h in _NUMERIC else "left",
            overflow="fold",
            min_width=8 if folds else max(widest, *(len(word) for word in h.split())),
        )
    for row in rows:
        table.add_row(*row)
    return table
