"""`anechat --theme NAME` saves the theme as the new default, but only a theme that exists."""

from __future__ import annotations

import os
import subprocess
import sys

from anechat.tui.entry import _check_theme


def test_an_unknown_theme_is_refused_in_one_line_and_never_saved(tmp_path):
    env = {**os.environ, "ANECHAT_CONFIG_DIR": str(tmp_path / "config"), "ANECHAT_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "anechat.tui.entry", "--theme", "nosuch"], capture_output=True,
                            text=True, env=env, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("anechat: unknown theme 'nosuch': use one of ") and "anechat-dark" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "config" / "config.toml").exists()


def test_theme_files_and_textual_themes_are_both_accepted():
    _check_theme("anechat-light")  # a theme file of anechat's
    _check_theme("nord")  # one of Textual's own
