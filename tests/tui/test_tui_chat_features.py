"""What chat users reach for, in the app with a real tiny model on the real MLX engine:
slash commands (the table `anechat chat` uses, Tab completes), regenerate, edit and
resend (the KV cache trims to the edit), search, an engine/model label on every answer,
and `/compare` inline on the other engine."""

from __future__ import annotations

import json

import pytest

from anechat.chat.controller import ChatController
from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.tui.chat.answer_label import AnswerLabel
from anechat.tui.chat.inline_compare import InlineComparison
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.widgets.chat_pane import AssistantMessage, Notice, UserMessage
from tui_support import loaded, models_home, quiet_app, send_and_wait, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here"),
]


def chat_app(model_dir, max_tokens: int = 6, **kwargs):
    controller = ChatController(params=SamplingParams(max_tokens=max_tokens))
    app = quiet_app(model=str(model_dir), engine="mlx", controller=controller, history=False, **kwargs)
    app.ui_budget = 1.0
    return app


async def type_and_enter(pilot, text: str) -> None:
    box = pilot.app.screen.query_one(ChatInput)
    box.focus()
    box.load_text(text)
    await pilot.press("enter")


async def until_answered(pilot, wanted: int) -> None:
    turns = pilot.app.screen.turn_view

    def done() -> bool:
        """the answer to finish"""
        return turns.turns_finished >= wanted

    await wait_for(pilot, done, limit_s=120)


def notices(app) -> list[str]:
    return [n.text for n in app.screen.query(Notice)]


async def test_slash_commands_act_and_an_unknown_one_gets_one_line_with_the_list(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await type_and_enter(pilot, "/frobnicate")
        await wait_for(pilot, lambda: any("unknown command /frobnicate" in t for t in notices(app)))
        line = next(t for t in notices(app) if "unknown command" in t)
        assert "\n" not in line and "/compare" in line and "/engine NAME" in line
        await type_and_enter(pilot, "/system Be brief.")
        await type_and_enter(pilot, "/params max_tokens=3 temperature=0")
        await wait_for(pilot, lambda: app.controller.state.params.max_tokens == 3)
        assert app.controller.state.system_prompt == "Be brief."
        await type_and_enter(pilot, "/engine tpu")
        await wait_for(pilot, lambda: any("unknown engine 'tpu'" in t for t in notices(app)))
        assert not app.screen.query(UserMessage)  # no command went to the model as a message


async def test_tab_completes_a_command_name_and_otherwise_moves_focus(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        box = app.screen.query_one(ChatInput)
        box.focus()
        box.load_text("/rege")
        box.move_cursor(box.document.end)
        await pilot.press("tab")
        assert box.text == "/regen " and app.focused is box
        box.load_text("hello")
        await pilot.press("tab")
        await wait_for(pilot, lambda: app.focused is not box)


async def test_every_answer_is_labelled_with_its_engine_and_model(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "Hello")
        answer = app.screen.pane.last_answer()
        assert [label.text for label in answer.query(AnswerLabel)] == ["mlx · tiny-llama"]


async def test_regenerate_replaces_the_last_answer_and_reuses_the_cache(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "Tell me about foxes")
        await pilot.press("f5")
        await until_answered(pilot, 2)
        assert [m.role for m in app.controller.messages] == ["user", "assistant"]
        assert len(app.screen.query(UserMessage)) == 1 and len(app.screen.query(AssistantMessage)) == 1
        stats = app.controller.last_stats
        assert stats.cached_tokens > 0  # the question was prefilled once, not twice
        await type_and_enter(pilot, "/regen")
        await until_answered(pilot, 3)
        assert len(app.controller.messages) == 2


async def test_an_edited_message_replaces_it_and_the_cache_trims_to_the_edit(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "The first question about foxes")
        await send_and_wait(pilot, "The second question about owls")
        before = app.controller.last_stats
        await pilot.press("f2")  # the last message, to edit
        box = app.screen.query_one(ChatInput)
        assert box.text == "The second question about owls"
        assert "editing message 2 of 2" in str(app.screen.status.render())
        box.load_text("An edited question about bats")
        await pilot.press("enter")
        await until_answered(pilot, 3)
        users = [m.content for m in app.controller.messages if m.role == "user"]
        assert users == ["The first question about foxes", "An edited question about bats"]
        assert [w.text for w in app.screen.query(UserMessage)] == users
        stats = app.controller.last_stats
        # the first exchange came from the cache; only the edit was prefilled
        assert 0 < stats.cached_tokens < before.cached_tokens + before.prompt_tokens
        assert stats.prompt_tokens < stats.cached_tokens


async def test_f2_twice_picks_the_message_before_and_esc_cancels_the_edit(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "one")
        await send_and_wait(pilot, "two")
        box = app.screen.query_one(ChatInput)
        await pilot.press("f2", "f2")
        assert box.text == "one" and app.screen.editing.active
        await pilot.press("escape")
        assert not app.screen.editing.active and box.text == ""
        assert len(app.controller.messages) == 4  # nothing was cut


async def test_search_marks_matches_and_steps_through_them(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(100, 20)) as pilot:
        await loaded(pilot)
        for text in ("apples are red", "pears are green", "red apples again"):
            await send_and_wait(pilot, text)
        await pilot.press("ctrl+f")
        await wait_for(pilot, lambda: app.screen.search.bar is not None and app.focused is app.screen.search.bar.input)
        await pilot.press(*"APPLES")
        search = app.screen.search
        hits = [w for w in app.screen.pane.children if w.has_class("search-hit")]
        assert [w.text for w in hits if isinstance(w, UserMessage)] == ["apples are red", "red apples again"]
        assert search.hits[search.current].has_class("search-current")
        assert str(search.bar.count.render()).startswith(f"{len(search.hits)}/{len(search.hits)}")
        await pilot.press("enter")  # wraps to the first match
        assert search.current == 0 and search.hits[0].text == "apples are red"
        await pilot.press("shift+f3")
        assert search.current == len(search.hits) - 1
        await pilot.press("escape")
        assert search.bar is None and not app.screen.query(".search-hit")
        assert app.focused is app.screen.query_one(ChatInput)


async def test_slash_search_finds_at_once_and_says_when_nothing_matches(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "find the walrus")
        await type_and_enter(pilot, "/search walrus")
        await wait_for(pilot, lambda: app.screen.search.hits)
        assert isinstance(app.screen.search.hits[-1], UserMessage)
        app.screen.search.find("no such thing here")
        assert str(app.screen.search.bar.count.render()) == "no match"


async def test_export_writes_the_conversation_as_it_stands(tiny_model_dir, tmp_path):
    app = chat_app(tiny_model_dir)
    out = tmp_path / "chat.json"
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "Hello")
        await type_and_enter(pilot, f"/export {out}")
        await wait_for(pilot, lambda: any(t == f"wrote {out}" for t in notices(app)))
    messages = json.loads(out.read_text())["session"]["messages"]
    assert [(m["role"], m["engine"]) for m in messages] == [("user", None), ("assistant", "mlx")]


async def test_compare_without_another_engine_version_says_how_to_make_one(tmp_path, monkeypatch, tiny_model_dir):
    home = models_home(tmp_path, monkeypatch, tiny_model_dir)
    app = chat_app(home / "tiny-llama")
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "Hi")
        await type_and_enter(pilot, "/compare")
        await wait_for(pilot, lambda: any("anechat convert tiny-llama --to coreml" in t for t in notices(app)))
        assert not app.screen.query(InlineComparison)


async def test_a_fault_inside_a_slash_command_is_one_line_in_the_chat_and_the_app_goes_on(tmp_path, monkeypatch, tiny_model_dir):
    home = models_home(tmp_path, monkeypatch, tiny_model_dir)
    app = chat_app(home / "tiny-llama", list_models=lambda: None)  # a catalog that breaks unexpectedly
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "Hi")
        await type_and_enter(pilot, "/compare")
        await wait_for(pilot, lambda: any(t.startswith("/compare failed: unexpected TypeError") for t in notices(app)))
        await type_and_enter(pilot, "/help")  # the chat still takes commands
        await wait_for(pilot, lambda: any(t.startswith("commands") for t in notices(app)))


@pytest.mark.coreml
async def test_compare_answers_the_last_message_on_the_other_engine_inline(tmp_path, monkeypatch, tiny_model_dir, tiny_coreml_dir):
    home = models_home(tmp_path, monkeypatch, tiny_model_dir)
    (home / "tiny-llama-coreml-ctx64-fp16").symlink_to(tiny_coreml_dir, target_is_directory=True)
    app = chat_app(home / "tiny-llama", max_tokens=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "Name a colour")
        box = app.screen.query_one(ChatInput)
        box.load_text("/compare")
        box.submit()  # what Enter does, without the pilot's waits for an idle app: they can outlast the comparison
        await wait_for(pilot, lambda: app.screen.query(InlineComparison))
        comparison = app.screen.query_one(InlineComparison)
        assert app.screen.busy_reason() == "a comparison is running: Esc stops it"
        await wait_for(pilot, lambda: not comparison.running, limit_s=240)
        report = comparison.report
        assert report is not None, comparison.error
        assert [(r.contestant.engine, r.ok) for r in report.results] == [("mlx", True), ("coreml", True)]
        assert report.prompt == "Name a colour" and report.greedy
        assert comparison.summary.display and comparison.summary.row_count == 2
        assert all(column.answer for column in comparison.columns)
        assert app.screen.busy_reason() is None
        assert len(app.controller.messages) == 2  # the chat itself is untouched
