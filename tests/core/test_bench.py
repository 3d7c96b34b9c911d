"""`anechat bench`: the mlx_lm.benchmark method (random prompt, one warm-up, stop tokens
ignored, median over runs) for every engine, a machine record with the figures, and a
history of earlier runs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

import pytest

from anechat.bench.method import BenchSettings, parse_lengths, random_prompt, run_bench
from anechat.bench.report import markdown_table
from anechat.bench.store import history_file, load_runs, new_record, save_run
from anechat.compare import pair_contestants
from anechat.engines.errors import InvalidParameter

ANECHAT = [sys.executable, "-c", "from anechat.tui.entry import main; main()"]
MACHINE_KEYS = {"os", "chip", "memory_bytes", "python", "packages", "blas", "coreml_runtime", "engine_runtimes"}


def anechat(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ANECHAT, *args], capture_output=True, text=True, timeout=300, env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"})


@pytest.fixture(scope="module")
def bench_run(tiny_model_dir, tmp_path_factory):
    """One real `anechat bench` on the tiny model: two prompt lengths, two runs each."""
    out_file = tmp_path_factory.mktemp("bench") / "bench.json"
    result = anechat(
        "bench", "-m", str(tiny_model_dir), "-e", "mlx",
        "--prompt-tokens", "16,48", "--gen-tokens", "8", "--runs", "2",
        "--json", str(out_file), "--markdown",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result, json.loads(out_file.read_text())


def test_bench_json_records_the_machine_alongside_every_figure(bench_run):
    _, record = bench_run
    assert record["schema"] == "anechat.bench/1" and record["id"] and record["created"]
    machine = record["machine"]
    assert MACHINE_KEYS <= set(machine)
    assert machine["memory_bytes"] > 0 and machine["python"].count(".") == 2
    assert {"anechat", "mlx", "mlx-lm", "coremltools", "numpy"} <= set(machine["packages"])
    assert machine["packages"]["anechat"] == "0.1.0"
    if sys.platform.startswith("linux"):
        assert "BLAS" in machine["blas"]
    assert record["settings"]["prompt_tokens"] == [16, 48] and record["settings"]["runs"] == 2


def test_bench_figures_are_medians_of_full_length_runs(bench_run):
    _, record = bench_run
    cells = record["results"]
    assert [(c["engine"], c["prompt_tokens"]) for c in cells] == [("mlx", 16), ("mlx", 48)]
    for cell in cells:
        assert cell["error"] is None and cell["runtime"] and cell["model"] == "tiny-llama"
        runs = cell["runs"]
        assert len(runs) == 2  # the warm-up is not among them
        for run in runs:
            assert run["prompt_tokens"] == cell["prompt_tokens"]  # the whole prompt is prefilled each run
            assert run["generation_tokens"] == 8
            assert run["prefill_tps"] > 0 and run["decode_tps"] > 0 and run["ttft_s"] > 0
        for name in ("prefill_tps", "decode_tps", "ttft_s"):
            assert cell["median"][name] == pytest.approx(statistics.median(r[name] for r in runs))
            assert cell["mean"][name] == pytest.approx(statistics.fmean(r[name] for r in runs))


def test_bench_markdown_prints_a_table(bench_run):
    result, record = bench_run
    lines = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| engine | runtime | model | prompt | gen | runs | prefill tok/s | decode tok/s")
    assert set(lines[1]) <= set("|-:")
    assert len(lines) == 2 + len(record["results"])
    assert "| mlx |" in lines[2] and "| 16 |" in lines[2]


def test_bench_history_lists_earlier_runs(bench_run):
    _, record = bench_run
    result = anechat("bench", "--history", "--markdown")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if f"| {record['id'][:8]} |" in line]
    assert len(rows) == 2  # one per prompt length
    assert all("tiny-llama" in row and "| mlx |" in row for row in rows)


def test_stop_tokens_are_ignored_so_every_run_does_the_same_work(tiny_stop_model_dir):
    # this model answers its stop token first every time; a benchmark still generates gen_tokens
    cells = run_bench(pair_contestants([str(tiny_stop_model_dir)], ["mlx"]), BenchSettings(prompt_tokens=(8,), gen_tokens=6, runs=1))
    assert cells[0].error is None
    assert [r.generation_tokens for r in cells[0].runs] == [6]


def test_every_model_runs_on_every_engine_and_a_pair_that_cannot_run_says_why(tiny_model_dir, tiny_coreml_dir):
    contestants = pair_contestants([str(tiny_model_dir), str(tiny_coreml_dir)], ["mlx", "coreml"])
    cells = run_bench(contestants, BenchSettings(prompt_tokens=(16,), gen_tokens=6, runs=1))
    by_pair = {(c.model_path or c.model, c.engine): c for c in cells}
    assert len(cells) == 4
    mlx = by_pair[(str(tiny_model_dir), "mlx")]
    coreml = by_pair[(str(tiny_coreml_dir), "coreml")]
    for cell in (mlx, coreml):
        assert cell.error is None and cell.runtime
        assert cell.median("decode_tps") > 0 and cell.runs[0].generation_tokens == 6
    wrong = [c for c in cells if c not in (mlx, coreml)]
    assert all(c.error and not c.runs for c in wrong)  # e.g. "convert it first" for the Hugging Face folder on coreml


def test_a_prompt_longer_than_the_context_is_reported_not_raised(tiny_model_dir):
    # the tiny model holds 512 tokens
    cells = run_bench(pair_contestants([str(tiny_model_dir)], ["mlx"]), BenchSettings(prompt_tokens=(8, 600), gen_tokens=4, runs=1, warmup=False))
    assert cells[0].error is None and cells[0].runs
    assert "context of 512" in cells[1].error and not cells[1].runs


def test_a_missing_model_or_engine_is_one_clear_line(tmp_path):
    missing = run_bench(pair_contestants([str(tmp_path / "nothing")], ["mlx"]), BenchSettings(prompt_tokens=(8,), gen_tokens=4, runs=1))
    assert "nothing" in missing[0].error
    result = anechat("bench", "-m", str(tmp_path), "-e", "tpu", "--runs", "1")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1 and "tpu" in lines[0]


def test_random_prompts_are_reproducible_and_inside_the_vocabulary():
    a = random_prompt(384, 128, seed=0)
    assert a == random_prompt(384, 128, seed=0)  # every engine gets the same prompt
    assert a != random_prompt(384, 128, seed=1)
    assert len(a) == 128 and 0 <= min(a) and max(a) < 384
    assert random_prompt(384, 16, seed=0) != a[:16]  # each length draws its own prompt


def test_settings_are_checked():
    assert parse_lengths("128, 512") == (128, 512)
    for bad in ("", "12,abc", ","):
        with pytest.raises(InvalidParameter):
            parse_lengths(bad)
    for bad in (BenchSettings(prompt_tokens=(0,)), BenchSettings(gen_tokens=1), BenchSettings(runs=0)):
        with pytest.raises(InvalidParameter):
            bad.validate()


def test_history_skips_damaged_lines(tmp_path):
    path = tmp_path / "runs.jsonl"
    save_run(new_record({"chip": "x"}, {}, []), path)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    save_run(new_record({"chip": "y"}, {}, []), path)
    runs, skipped = load_runs(path)
    assert [r["machine"]["chip"] for r in runs] == ["x", "y"] and skipped == 1
    assert history_file().name == "runs.jsonl"


def test_markdown_table_escapes_pipes():
    table = markdown_table(["engine", "decode tok/s"], [["a|b", "1.0"]])
    assert table.splitlines() == ["| engine | decode tok/s |", "|---|---:|", "| a\\|b | 1.0 |"]
