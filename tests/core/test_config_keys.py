"""config.toml's [keys] table: action name -> key, read into the typed settings."""

from __future__ import annotations

from anechat.config import load_config


def test_keys_are_read_as_action_to_key_and_bad_entries_are_named(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[keys]\ncopy_code = "f3"\nquit = " "\nmodels = 5\n')
    settings = load_config(path)
    assert settings.keys == {"copy_code": "f3"}
    assert len(settings.warnings) == 2 and all("[keys]" in w for w in settings.warnings)


def test_keys_that_are_not_a_table_are_ignored_with_one_warning(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('keys = "ctrl+y"\n')
    settings = load_config(path)
    assert settings.keys == {} and len(settings.warnings) == 1 and "[keys]" in settings.warnings[0]
