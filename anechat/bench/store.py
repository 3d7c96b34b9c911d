"""Benchmark runs kept as JSON lines in ``<data dir>/bench/runs.jsonl``.

One line per `anechat bench` invocation: the same document `--json FILE` writes
(machine record, settings, every cell). Appending one line is atomic enough for
a single writer; a damaged line is skipped when reading, never fatal.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

from anechat import paths

SCHEMA = "anechat.bench/1"


def bench_dir() -> Path:
    return paths.data_dir() / "bench"


def history_file() -> Path:
    return bench_dir() / "runs.jsonl"


def new_record(machine: dict, settings: dict, cells: list[dict]) -> dict:
    return {
        "schema": SCHEMA,
        "id": uuid.uuid4().hex[:12],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "settings": settings,
        "results": cells,
    }


def save_run(record: dict, path: Path | None = None) -> Path:
    path = path or history_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)
    return path


def load_runs(path: Path | None = None) -> tuple[list[dict], int]:
    """(runs oldest first, number of damaged lines skipped)."""
    path = path or history_file()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], 0
    runs, skipped = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if isinstance(record, dict) and record.get("schema") == SCHEMA and isinstance(record.get("results"), list):
            runs.append(record)
        else:
            skipped += 1
    return runs, skipped
