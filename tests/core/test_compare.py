"""`anechat compare`: several contestants (a model on an engine) answer the same prompt.

The harness (anechat.compare) streams each contestant's events, then summarises
speed and memory as ratios to the first contestant and measures how far the
answers agree token by token. The split view (anechat.tui.compare) shows it live.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from tui_support import wait_for

from anechat.compare import (
    CompareReport,
    Contestant,
    Phase,
    pair_contestants,
    ratio,
    run_compare,
    token_agreement,
)
from anechat.engines.base import CancelToken, Figures, GenerationStats, SamplingParams, TextDelta
from anechat.engines.errors import InvalidParameter
from tinymodel import build_tiny_llama

GREEDY = SamplingParams(max_tokens=12)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory):
    """A second random tiny llama: same tokenizer, different weights (seed 1)."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama-b", seed=1)


@pytest.fixture(scope="module")
def same_model_twice(tiny_model_dir) -> CompareReport:
    events: list[tuple[int, object]] = []
    report = run_compare(
        [Contestant(str(tiny_model_dir), "mlx")] * 2,
        "Tell me about the sea.",
        params=GREEDY,
        on_event=lambda i, e: events.append((i, e)),
    )
    report.events = events  # type: ignore[attr-defined]
    return report


# -- pairing and definitions ---------------------------------------------------------


def test_every_model_is_paired_with_every_engine_models_first():
    assert pair_contestants(["A"], ["coreml", "mlx"]) == [Contestant("A", "coreml"), Contestant("A", "mlx")]
    assert pair_contestants(["A", "B"], ["mlx"]) == [Contestant("A", "mlx"), Contestant("B", "mlx")]
    assert [c.label for c in pair_contestants(["A", "B"], ["coreml", "mlx"])] == ["A · coreml", "A · mlx", "B · coreml", "B · mlx"]
    assert pair_contestants([], ["mlx"]) == [Contestant(None, "mlx")]  # the default model
    assert Contestant("/models/tiny-llama", "mlx").label == "tiny-llama · mlx"
    with pytest.raises(InvalidParameter):
        pair_contestants(["A"], [])


def test_token_agreement_counts_the_shared_prefix_and_every_matching_position():
    same = token_agreement([1, 2, 3, 4], [1, 2, 3, 4])
    assert (same.prefix, same.overall, same.first_divergence) == (1.0, 1.0, None)
    # one token differs at position 2: half the answer before the divergence, 3 of 4 positions equal
    one_off = token_agreement([1, 2, 3, 4], [1, 2, 9, 4])
    assert (one_off.prefix, one_off.overall, one_off.first_divergence) == (0.5, 0.75, 2)
    # a shorter answer cannot score 100%: missing positions count as disagreements
    short = token_agreement([1, 2, 3, 4], [1, 2])
    assert (short.prefix, short.overall, short.positions) == (0.5, 0.5, 4)
    assert token_agreement([], []).overall == 1.0
    assert token_agreement([5], [6]).prefix == 0.0


def test_ratios_are_against_the_first_and_unknown_when_a_figure_is_missing():
    assert ratio(50.0, 100.0) == 0.5
    assert ratio(0, 100) is None  # 0 means "not measured" (e.g. no memory counter)
    assert ratio(10, None) is None


# -- the harness on real tiny models ---------------------------------------------------


def test_each_contestant_streams_its_answer_then_its_stats(same_model_twice):
    for index in (0, 1):
        mine = [e for i, e in same_model_twice.events if i == index]
        phases = [e.phase for e in mine if isinstance(e, Phase)]
        assert phases[0] == "waiting" and phases[-1] == "done"
        assert phases.index("loading") < phases.index("ready") < phases.index("generating")
        deltas = [e for e in mine if isinstance(e, TextDelta)]
        stats = [e for e in mine if isinstance(e, GenerationStats)]
        assert deltas and len(stats) == 1
        assert "".join(d.text for d in deltas) == stats[0].text
    # sequential: the second contestant starts loading only after the first is done
    order = [(i, e.phase) for i, e in same_model_twice.events if isinstance(e, Phase)]
    assert order.index((0, "done")) < order.index((1, "loading"))


def test_same_engine_and_model_agree_on_every_token_under_greedy_decoding(same_model_twice):
    first, second = same_model_twice.results
    assert first.ok and second.ok
    assert first.token_ids and first.token_ids == second.token_ids
    rows = same_model_twice.summary()
    assert rows[0].agreement is None  # the baseline is not compared with itself
    assert rows[1].agreement.prefix == 1.0 and rows[1].agreement.overall == 1.0
    assert rows[1].agreement.first_divergence is None
    for row in rows:
        assert row.decode_tps > 0 and row.prefill_tps > 0 and row.ttft_s > 0
    assert rows[0].decode_ratio == 1.0
    assert rows[1].decode_ratio > 0 and rows[1].ttft_ratio > 0


def test_two_different_random_models_disagree(tiny_model_dir, other_tiny_model_dir):
    report = run_compare(
        pair_contestants([str(tiny_model_dir), str(other_tiny_model_dir)], ["mlx"]),
        "Tell me about the sea.",
        params=SamplingParams(max_tokens=16),
    )
    a, b = report.results
    assert a.ok and b.ok and a.token_ids and b.token_ids
    agreement = report.summary()[1].agreement
    assert agreement is not None and agreement.overall < 1.0 and agreement.prefix < 1.0
    assert agreement.first_divergence is not None


def test_the_same_model_on_core_ml_and_mlx_is_compared_token_by_token(tiny_model_dir, tiny_coreml_dir):
    # the Core ML folder is the tiny model converted to fp16 parts; here the MIL executor runs it
    report = run_compare(
        [Contestant(str(tiny_model_dir), "mlx"), Contestant(str(tiny_coreml_dir), "coreml")],
        "Tell me about the sea.",
        params=SamplingParams(max_tokens=16),
    )
    mlx, coreml = report.results
    assert mlx.ok and coreml.ok, coreml.error
    assert coreml.loaded.engine == "coreml" and coreml.loaded.runtime
    row = report.summary()[1]
    assert row.agreement is not None  # one tokenizer, so token ids mean the same on both
    assert row.agreement.prefix > 0  # the converted model picks the same first token
    assert row.decode_ratio > 0 and row.prefill_ratio > 0 and row.ttft_ratio > 0
    assert not row.memory_like_for_like  # each engine measures peak memory its own way


def test_concurrent_contestants_all_answer(tiny_model_dir):
    events: list[tuple[int, object]] = []
    report = run_compare(
        [Contestant(str(tiny_model_dir), "mlx")] * 2,
        "Hello!",
        params=GREEDY,
        concurrent=True,
        on_event=lambda i, e: events.append((i, e)),
    )
    assert report.concurrent
    assert all(r.ok for r in report.results)
    assert report.summary()[1].agreement.overall == 1.0
    # both were ready before either started answering
    phases = [(i, e.phase) for i, e in events if isinstance(e, Phase)]
    last_ready = max(phases.index((i, "ready")) for i in (0, 1))
    assert last_ready < min(phases.index((i, "generating")) for i in (0, 1))


def test_a_contestant_that_cannot_load_fails_alone(tiny_model_dir, tmp_path):
    report = run_compare(
        [Contestant(str(tmp_path / "no-such-model"), "mlx"), Contestant(str(tiny_model_dir), "mlx")],
        "Hello!",
        params=GREEDY,
    )
    broken, good = report.results
    assert broken.error and "no-such-model" in broken.error
    assert good.ok
    rows = report.summary()
    assert rows[0].error and rows[1].decode_ratio is None  # no baseline figures to compare with
    assert rows[1].decode_tps > 0


def test_cancelling_stops_the_current_answer_and_skips_the_rest(tiny_model_dir):
    cancel = CancelToken()

    def on_event(index, event):
        if isinstance(event, TextDelta):
            cancel.cancel()

    report = run_compare(
        [Contestant(str(tiny_model_dir), "mlx")] * 2,
        "Hello!",
        params=SamplingParams(max_tokens=200),
        on_event=on_event,
        cancel=cancel,
    )
    first, second = report.results
    assert first.stats.finish_reason == "cancelled" and first.stats.generation_tokens < 200
    assert second.error == "cancelled" and second.loaded is None


def test_an_empty_prompt_is_refused(tiny_model_dir):
    with pytest.raises(InvalidParameter):
        run_compare([Contestant(str(tiny_model_dir), "mlx")], "   ")


# -- the split view (Textual pilot) ------------------------------------------------------


def test_the_view_takes_tokens_in_batches_not_one_update_per_token():
    from anechat.tui.compare.feed import CompareFeed

    feed = CompareFeed(2)
    feed(0, Phase("generating"))
    for n in range(1, 101):  # a hundred tokens arrive from the worker thread between two frames
        feed(0, TextDelta(text="ab", token_ids=(n,), figures=Figures(generation_tokens=n, ttft_s=0.25, decode_tps=50.0 + n)))
    first, second = feed.drain()
    assert first.stream.text == "ab" * 100
    assert first.stream.figures == Figures(generation_tokens=100, ttft_s=0.25, decode_tps=150.0)  # the engine's latest, as sent
    assert second is not None and second.phase.phase == "waiting"  # first drain shows every pane
    assert feed.drain() == [None, None]  # nothing new: nothing to redraw
    feed(1, TextDelta(text="\x1b[2J", token_ids=(1,)))
    assert feed.drain()[1].stream.text == "␛[2J"  # escape sequences arrive inert


def test_compare_view_streams_both_panes_and_shows_the_summary(tiny_model_dir, other_tiny_model_dir):
    from textual.widgets import Markdown

    from anechat.tui.compare.app import CompareApp
    from anechat.tui.compare.pane import ContestantPane
    from anechat.safe_text import sanitize_for_terminal
    from anechat.tui.compare.summary import CompareSummary

    contestants = pair_contestants([str(tiny_model_dir), str(other_tiny_model_dir)], ["mlx"])
    app = CompareApp(contestants, "Tell me about the sea.", params=SamplingParams(max_tokens=24))

    async def scenario():
        async with app.run_test(size=(140, 40)) as pilot:
            screen = app.compare_screen
            await wait_for(pilot, lambda: screen.report is not None, limit_s=30)
            await pilot.pause()
            report = screen.report
            assert report is not None, "the comparison did not finish"
            panes = list(screen.query(ContestantPane))
            assert [p.contestant for p in panes] == contestants
            for pane, result in zip(panes, report.results):
                assert result.ok and result.text
                shown = sanitize_for_terminal(result.text)  # control characters made visible and inert
                assert pane.answer == shown  # everything streamed arrived
                assert pane.query_one(Markdown).source == shown  # and was rendered once at the end
                figures = str(pane.query_one(".pane-figures").render())
                final = result.stats  # the pane shows the engine's final figures, not its own
                assert pane.state.stream.figures == final.figures
                assert f"TTFT {final.ttft_s * 1000:.0f} ms · decode {final.decode_tps:.1f} tok/s · {final.generation_tokens} tok" in figures
                assert f"prefill {final.prefill_tps:.1f} tok/s" in figures
            summary = screen.query_one(CompareSummary)
            assert summary.display and summary.row_count == 2
            cells = [str(c) for c in summary.get_row_at(1)]
            assert cells[0] == contestants[1].label
            assert "×" in cells[1]  # decode tok/s as a ratio to the first contestant
            assert "prefix" in cells[-1] and "overall" in cells[-1]
            await pilot.press("escape")  # closes the finished comparison
            await pilot.pause()
        return app.return_value

    assert isinstance(asyncio.run(scenario()), CompareReport)


def test_compare_view_without_a_prompt_waits_for_one(tiny_model_dir):
    from textual.widgets import Input

    from anechat.tui.compare.app import CompareApp

    app = CompareApp([Contestant(str(tiny_model_dir), "mlx")], None, params=GREEDY, warmup=False)

    async def scenario():
        async with app.run_test() as pilot:
            screen = app.compare_screen
            await pilot.pause()
            assert screen.report is None and not screen.running
            assert isinstance(app.focused, Input)
            await pilot.press(*"Hi", "enter")
            await wait_for(pilot, lambda: screen.report is not None, limit_s=30)
            assert screen.report.prompt == "Hi"
            assert screen.report.results[0].ok

    asyncio.run(scenario())


# -- the command ---------------------------------------------------------------------------


def test_compare_command_json_reports_figures_ratios_and_agreement(tiny_model_dir):
    cmd = [sys.executable, "-c", "from anechat.tui.entry import main; main()"]
    args = ["compare", "Hello there", "-m", str(tiny_model_dir), "-e", "mlx", "-e", "mlx", "--max-tokens", "8", "--json"]
    out = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=180, env={**os.environ, "NO_COLOR": "1"})
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["mode"] == "sequential" and report["greedy"] is True
    assert [c["engine"] for c in report["contestants"]] == ["mlx", "mlx"]
    second = report["contestants"][1]
    assert second["stats"]["decode_tps"] > 0
    assert second["summary"]["agreement"]["overall"] == 1.0
    assert second["summary"]["decode_ratio"] > 0


def test_compare_command_refuses_an_unknown_engine_in_one_line():
    cmd = [sys.executable, "-c", "from anechat.tui.entry import main; main()"]
    out = subprocess.run([*cmd, "compare", "Hi", "-e", "cuda"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cuda" in lines[0] and "Traceback" not in out.stderr
