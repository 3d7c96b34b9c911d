"""The settings: a typed object read from the config file; a bad file or a bad value
is one warning and the default, never a crash."""

from __future__ import annotations

import os
import subprocess
import sys

from anechat.config import Settings, load_config, save_config


def write(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_gives_the_documented_defaults(tmp_path):
    settings = load_config(tmp_path / "none.toml")
    assert settings == Settings()
    assert (settings.model, settings.engine, settings.theme, settings.low_motion) == ("smollm2-135m-instruct", "mlx", "anechat-dark", False)
    assert settings.model_folders == () and settings.warnings == () and settings.warning is None


def test_every_setting_is_read_with_its_type(tmp_path):
    path = write(tmp_path, 'model = "tiny"\nengine = "coreml"\ntheme = "anechat-light"\nlow_motion = true\n[models]\nfolders = ["~/m", "/x"]\n')
    settings = load_config(path)
    assert (settings.model, settings.engine, settings.theme, settings.low_motion) == ("tiny", "coreml", "anechat-light", True)
    assert settings.model_folders == ("~/m", "/x") and settings.warnings == ()


def test_bad_values_are_ignored_with_one_warning_each(tmp_path):
    path = write(tmp_path, 'engine = "cuda"\ntheme = 3\nlow_motion = "yes"\ncolour = "red"\n[models]\nfolders = [1, "/ok"]\n')
    settings = load_config(path)
    assert (settings.engine, settings.theme, settings.low_motion) == ("mlx", "anechat-dark", False)
    assert settings.model_folders == ("/ok",)
    assert len(settings.warnings) == 5
    assert all(str(path) in w and "\n" not in w for w in settings.warnings)
    joined = " | ".join(settings.warnings)
    for words in ("engine 'cuda' is unknown", "theme = 3", "low_motion = 'yes' is not true or false", "unknown setting 'colour'", "1 is not a path"):
        assert words in joined


def test_a_file_that_does_not_parse_gives_the_defaults_and_names_the_line(tmp_path):
    path = write(tmp_path, 'engine = "mlx"\ntheme = \n')
    settings = load_config(path)
    assert settings == Settings()
    assert len(settings.warnings) == 1 and "line 2" in settings.warning and "using defaults" in settings.warning


def test_saving_a_setting_keeps_the_rest_of_the_file(tmp_path):
    path = write(tmp_path, 'engine = "coreml"\n[models]\nfolders = ["/x"]\n')
    assert save_config({"theme": "anechat-16"}, path) is None
    settings = load_config(path)
    assert (settings.theme, settings.engine, settings.model_folders) == ("anechat-16", "coreml", ("/x",))


def test_an_unknown_theme_and_a_bad_engine_in_the_file_do_not_stop_a_command(tmp_path):
    (tmp_path / "config.toml").write_text('theme = "no-such-theme"\nengine = "cuda"\nlow_motion = 2\n')
    out = subprocess.run([sys.executable, "-c", "from anechat.cli.main import build_cli; build_cli()()", "doctor"],
                         capture_output=True, text=True, timeout=120, env={**os.environ, "ANECHAT_CONFIG_DIR": str(tmp_path), "COLUMNS": "400"})
    assert out.returncode == 0, out.stderr
    assert "is unknown" in out.stdout and "Traceback" not in out.stderr
