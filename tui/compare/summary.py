"""The summary row under the panes: each figure and its ratio to the first contestant."""

from __future__ import annotations

from textual.widgets import DataTable

from anechat.compare import Agreement, SummaryRow
from anechat.formatting import human_bytes

#: shown under the table when a memory ratio compares two engines' own measures
MEMORY_FOOTNOTE = "* each engine measures peak memory its own way (MLX: its allocator; Core ML: process memory)"

COLUMNS = ("contestant", "decode tok/s", "prefill tok/s", "TTFT", "peak memory", "agreement")


def _with_ratio(text: str, ratio: float | None, baseline: bool) -> str:
    if baseline:
        return f"{text} (base)" if text != "—" else text
    return f"{text} ×{ratio:.2f}" if ratio is not None else text


def agreement_text(agreement: Agreement | None, baseline: bool, greedy: bool) -> str:
    if baseline:
        return "baseline"
    if agreement is None:
        return "—"
    text = f"{agreement.prefix:.0%} prefix · {agreement.overall:.0%} overall"
    if agreement.first_divergence is not None:
        text += f" (diverges at token {agreement.first_divergence})"
    return text if greedy else text + " (sampled)"


def summary_cells(row: SummaryRow, index: int, greedy: bool) -> tuple[str, ...]:
    base = index == 0
    if row.error and row.decode_tps is None:
        return (row.label, f"failed: {row.error}", "", "", "", "")
    ttft = "—" if row.ttft_s is None else (f"{row.ttft_s * 1000:.0f} ms" if row.ttft_s < 1 else f"{row.ttft_s:.2f} s")
    return (
        row.label,
        _with_ratio("—" if row.decode_tps is None else f"{row.decode_tps:.1f}", row.decode_ratio, base),
        _with_ratio("—" if row.prefill_tps is None else f"{row.prefill_tps:.1f}", row.prefill_ratio, base),
        _with_ratio(ttft, row.ttft_ratio, base),
        _with_ratio(human_bytes(row.peak_memory_bytes) if row.peak_memory_bytes else "—", row.memory_ratio, base)
        + ("" if row.memory_like_for_like or row.memory_ratio is None else " *"),
        agreement_text(row.agreement, base, greedy),
    )


class CompareSummary(DataTable):
    DEFAULT_CSS = """
    CompareSummary { height: auto; max-height: 10; }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns(*COLUMNS)

    def show(self, rows: list[SummaryRow], greedy: bool) -> None:
        self.clear()
        for i, row in enumerate(rows):
            self.add_row(*summary_cells(row, i, greedy), key=str(i))
