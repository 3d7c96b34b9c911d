"""``anechat models list | info | pull | rm`` as a person uses them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from fake_hub import FakeHub, FakeHubServer, FakeRepo, model_folder_files
from typer.testing import CliRunner

from anechat.cli.models import app

runner = CliRunner()


@pytest.fixture
def with_tiny(home, tiny_model_dir):
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    broken = shutil.copytree(tiny_model_dir, home / "models" / "broken")
    (broken / "model.safetensors").unlink()
    return home


def anechat(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real command line in a fresh process (the main CLI mounts this sub-app)."""
    code = "import sys; from anechat.cli.main import build_cli; sys.exit(build_cli()())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_importing_the_sub_app_stays_light():
    code = (
        "import sys, anechat.cli.models\n"
        "heavy = {'huggingface_hub', 'mlx', 'mlx_lm', 'torch', 'coremltools', 'textual', 'transformers'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_list_shows_a_table_and_why_a_model_cannot_run(with_tiny):
    result = runner.invoke(app, ["list"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "PARAMS", "ENGINE", "FORMAT", "QUANT", "CTX", "SIZE", "SOURCE", "VARIANT"]
    tiny = next(line for line in lines if line.startswith("tiny "))
    assert tiny.split()[:6] == ["tiny", "123K", "mlx", "hf", "float32", "512"] and tiny.split()[-2:] == ["anechat", "source"]
    assert any(line.startswith("smollm2-135m-instruct ") for line in lines)
    assert "  broken: no *.safetensors weights" in lines


def test_list_piped_keeps_every_name_on_one_line_whatever_the_terminal_width(with_tiny):
    long_name = "a-model-with-a-rather-long-name-that-a-narrow-terminal-would-fold"
    shutil.copytree(with_tiny / "models" / "tiny", with_tiny / "models" / long_name)
    result = anechat("models", "list", env={"COLUMNS": "40"})  # stdout is a pipe here
    assert result.returncode == 0, result.stderr
    assert any(line.startswith(long_name + " ") for line in result.stdout.splitlines())
    assert max(len(line) for line in result.stdout.splitlines()) > 40


def test_list_json(with_tiny):
    result = runner.invoke(app, ["list", "--json"])
    data = json.loads(result.stdout)
    models = {m["name"]: m for m in data["models"]}
    assert models["tiny"]["format"] == "hf" and models["tiny"]["engines"] == ["mlx"]
    assert models["tiny"]["parameters"] == 123200 and models["tiny"]["context_length"] == 512
    assert models["broken"]["runnable"] is False and models["broken"]["reason"] == "no *.safetensors weights"
    assert data["warnings"] == []


def test_list_warns_about_a_broken_config_file_on_stderr(with_tiny):
    (with_tiny / "config").mkdir()
    (with_tiny / "config" / "config.toml").write_text("[models\n")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    assert "anechat: warning:" in result.stderr and "config.toml" in result.stderr and "line 1" in result.stderr
    assert "tiny" in result.stdout


def test_info_and_info_json(with_tiny):
    result = runner.invoke(app, ["info", "tiny"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    rows = {line.split(None, 1)[0]: line.split(None, 1)[1].strip() for line in result.stdout.splitlines() if line.strip()}
    assert rows["format"] == "hf" and rows["quantization"] == "float32" and rows["engines"] == "mlx"
    assert rows["parameters"] == "123K (123,200)"
    data = json.loads(runner.invoke(app, ["info", "broken", "--json"]).stdout)
    assert data["format"] == "unsupported" and data["reason"] == "no *.safetensors weights"


def test_an_unknown_name_is_one_line_with_a_suggestion(with_tiny):
    result = runner.invoke(app, ["info", "tinny"])
    assert result.exit_code == 1
    assert result.stderr == "anechat: no model named 'tinny' — did you mean tiny? (anechat models list shows what is here)\n"


def test_rm_asks_first(with_tiny):
    result = runner.invoke(app, ["rm", "tiny"], input="n\n")
    assert result.exit_code == 1 and "not removed" in result.stdout
    assert (with_tiny / "models" / "tiny").is_dir()
    result = runner.invoke(app, ["rm", "tiny"], input="y\n")
    assert result.exit_code == 0 and "removed tiny" in result.stdout
    assert not (with_tiny / "models" / "tiny").exists()


def test_rm_yes_and_broken_models_can_be_removed_too(with_tiny):
    result = runner.invoke(app, ["rm", "broken", "--yes"])
    assert result.exit_code == 0, result.output
    assert not (with_tiny / "models" / "broken").exists()


def test_rm_refuses_the_builtin_model_and_unlisted_paths(with_tiny, tmp_path):
    result = runner.invoke(app, ["rm", "default", "--yes"])
    assert result.exit_code == 1 and "built-in model shipped with anechat" in result.stderr
    other = shutil.copytree(with_tiny / "models" / "tiny", tmp_path / "elsewhere")
    result = runner.invoke(app, ["rm", str(other), "--yes"])
    assert result.exit_code == 1 and "is not in the catalog" in result.stderr
    assert other.exists()


def test_list_marks_and_rm_refuses_a_model_another_anechat_process_has_loaded(with_tiny):
    folder = with_tiny / "models" / "tiny"
    code = (
        "import sys\n"
        "from anechat.catalog.inuse import mark_loaded\n"
        "with mark_loaded(sys.argv[1]):\n"
        "    print('loaded', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=os.environ.copy())
    try:
        assert other.stdout.readline().strip() == "loaded"
        listed = runner.invoke(app, ["list"])
        result = runner.invoke(app, ["rm", "tiny", "--yes"])
    finally:
        other.communicate("\n", timeout=30)
    assert f"(in use: pid {other.pid})" in listed.stdout
    assert result.exit_code == 1
    assert result.stderr == f"anechat: tiny is loaded by another anechat process (pid {other.pid}) — quit that chat or switch it to another model first\n"
    assert folder.exists()


def test_pull_through_the_real_command_line(home, tiny_model_dir):
    hub = FakeHub({"acme/Tiny-Chat": FakeRepo(model_folder_files(tiny_model_dir))})
    env = {"HF_ENDPOINT": "", "HF_HOME": str(home / "hf")}
    with FakeHubServer(hub) as url:
        env["HF_ENDPOINT"] = url
        done = anechat("models", "pull", "acme/Tiny-Chat", env=env)
        assert done.returncode == 0, done.stderr
        assert "pulled acme/Tiny-Chat as 'tiny-chat'" in done.stdout
        assert "anechat chat -m tiny-chat" in done.stdout
        assert "acme/Tiny-Chat @ main" in done.stderr and "5 files" in done.stderr
        missing = anechat("models", "pull", "acme/nope", env=env)
    assert missing.returncode == 1
    assert missing.stderr.startswith("anechat: no model repo 'acme/nope' on the hub") and missing.stderr.count("\n") == 1
    listed = json.loads(anechat("models", "list", "--json", env=env).stdout)
    assert {"name": "tiny-chat", "source": "hf-cache", "repo_id": "acme/Tiny-Chat"}.items() <= next(
        m for m in listed["models"] if m["name"] == "tiny-chat"
    ).items()


def test_pull_offline_is_one_clear_line(home):
    done = anechat("models", "pull", "acme/tiny", env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1
    assert done.stderr == (
        "anechat: offline mode is on (HF_HUB_OFFLINE): cannot download acme/tiny — "
        "unset HF_HUB_OFFLINE to download; anechat models list shows what is here\n"
    )
