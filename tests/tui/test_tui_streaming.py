"""How an answer is drawn while it streams, and what that costs.

The engine shares the CPU with the UI, so drawing is paced by its measured cost;
the answer shows new text at once as plain text in rows reserved ahead, and hands
finished lines to the Markdown view (a layout pass) less often. A long chat stays
as cheap to lay out as a short one: answers far from view are parked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App

from anechat.tui.pacing import Pacer
from anechat.tui.widgets.chat_pane import CURSOR, ChatPane, wrapped_rows

pytestmark = pytest.mark.anyio


class Clocks:
    """A wall clock and a CPU clock the test moves by hand."""

    def __init__(self) -> None:
        self.wall = 100.0
        self.cpu = 5.0

    def pacer(self, budget: float, min_gap_s: float, max_gap_s: float) -> Pacer:
        return Pacer(budget, min_gap_s, max_gap_s, clock=lambda: self.wall, cpu_clock=lambda: self.cpu)


def test_a_frame_waits_its_cost_divided_by_its_budget():
    clocks = Clocks()
    pacer = clocks.pacer(budget=0.02, min_gap_s=0.25, max_gap_s=6.0)
    assert pacer.due()  # the first frame comes at once
    pacer.drew()
    clocks.cpu += 0.040  # the frame, its layout and repaint took 40 ms of the UI thread
    pacer.observe()
    assert pacer.last_cost_s == pytest.approx(0.040)
    assert pacer.gap_s == pytest.approx(2.0)  # 40 ms at 2% of a core: one frame every 2 s
    clocks.wall += 1.9
    assert not pacer.due()
    clocks.wall += 0.2
    assert pacer.due()


def test_cheap_frames_come_at_the_highest_rate_and_costly_ones_at_the_lowest():
    clocks = Clocks()
    pacer = clocks.pacer(budget=0.02, min_gap_s=0.25, max_gap_s=6.0)
    pacer.drew()
    clocks.cpu += 0.0001
    pacer.observe()
    assert pacer.gap_s == 0.25
    pacer.drew()
    clocks.cpu += 1.0
    pacer.observe()
    assert pacer.gap_s == 6.0


def test_a_frame_is_measured_once():
    clocks = Clocks()
    pacer = clocks.pacer(budget=0.01, min_gap_s=0.1, max_gap_s=10.0)
    pacer.drew()
    clocks.cpu += 0.01
    pacer.observe()
    clocks.cpu += 5.0  # later work is not this frame's
    pacer.observe()
    assert pacer.gap_s == pytest.approx(1.0) and not pacer.measuring


def test_a_pacer_needs_a_budget_and_ordered_gaps():
    with pytest.raises(ValueError):
        Pacer(0.0, 0.1, 1.0)
    with pytest.raises(ValueError):
        Pacer(0.1, 2.0, 1.0)


def test_rows_are_counted_per_line_at_the_width():
    assert wrapped_rows("", 10) == 1
    assert wrapped_rows("a" * 10, 10) == 1
    assert wrapped_rows("a" * 11, 10) == 2
    assert wrapped_rows("one\ntwo\n", 10) == 3
    assert wrapped_rows("日本語", 4) == 2  # wide characters take two cells


class Chat(App):
    """Just the chat pane, with the app's stylesheet."""

    CSS_PATH = [str(Path(__file__).resolve().parents[2] / "tui" / "styles" / "app.tcss")]

    def compose(self):
        self.pane = ChatPane()
        yield self.pane


async def test_finished_lines_become_markdown_and_the_line_being_written_stays_plain():
    app = Chat()
    async with app.run_test(size=(60, 30)) as pilot:
        answer = await app.pane.add_assistant()
        answer.write("# Bread\n\nMix the flour")
        await answer.flush(reserve_rows=3)
        await pilot.pause()
        assert answer.body.source == "# Bread\n\n"
        assert str(answer.tail.render()) == "Mix the flour" + CURSOR
        reserved = answer.tail.size.height
        assert reserved >= 1 + 3  # the line being written, then rows for what comes next

        assert answer.write(" and the water") is False  # it fits: no layout pass needed
        assert str(answer.tail.render()) == "Mix the flour and the water" + CURSOR
        assert answer.write("." * 60 * reserved) is True  # outgrew its rows: time for more
        answer.reserve(2)
        await pilot.pause()
        assert answer.tail.size.height > reserved

        await answer.finish("# Bread\n\nMix the flour and the water.")
        await pilot.pause()
        assert answer.body.source == "# Bread\n\nMix the flour and the water."
        assert not answer.streaming and not answer.tail.display  # the plain tail is gone


async def test_what_lies_far_from_view_is_parked_at_its_height_and_comes_back_when_scrolled_to():
    app = Chat()
    async with app.run_test(size=(60, 20)) as pilot:
        pane = app.pane
        for n in range(10):
            answer = await pane.add_assistant()
            await answer.finish("\n".join(f"- point {n}.{i}: something worth reading" for i in range(12)))
        await pilot.pause()
        pane.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        height_before = pane.virtual_size.height
        widgets_before = len(laid_out(app))

        assert pane.park_far() >= 5  # of 10 answers, most lie more than a screen above
        await pilot.pause()
        answers = pane.answers()
        assert pane.is_parked(answers[0]) and not pane.is_parked(answers[-1])  # what shows is never parked
        assert pane.virtual_size.height == height_before  # nothing moved: the scrollbar is the same
        assert pane.scroll_y == pane.max_scroll_y
        assert len(laid_out(app)) < widgets_before / 2  # the layout walks far fewer widgets

        pane.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert not pane.is_parked(answers[0])  # scrolled into view: its Markdown is back
        assert answers[0].body.children and answers[0].body.children[0].region.height > 0
        assert pane.virtual_size.height == height_before


async def test_the_blocks_of_a_long_answer_far_above_are_parked_but_never_the_one_being_written():
    app = Chat()
    async with app.run_test(size=(60, 20)) as pilot:
        pane = app.pane
        answer = await pane.add_assistant()
        lists = "\n\n".join("\n".join(f"- item {n}.{i}" for i in range(8)) + f"\n\nParagraph {n}." for n in range(6))
        answer.write(lists + "\n\n- the list being written\n- has two items\n")
        await answer.flush()
        await pilot.pause()
        pane.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        height_before = pane.virtual_size.height

        pane.park_far()
        await pilot.pause()
        blocks = list(answer.body.children)
        assert pane.is_parked(blocks[0]) and not pane.is_parked(answer)  # a block, not the streaming answer
        assert not pane.is_parked(blocks[-1])  # the last block is still being written
        assert pane.virtual_size.height == height_before

        await answer.finish(lists)  # the final render replaces every block
        await pilot.pause()
        pane.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert not any(pane.is_parked(block) for block in answer.body.children)


def laid_out(app) -> list:
    """The widgets a layout pass visits: displayed, under displayed ancestors."""
    return [w for w in app.screen.walk_children() if w.display and all(a.display for a in w.ancestors_with_self if hasattr(a, "display"))]
