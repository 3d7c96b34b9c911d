"""Where anechat keeps things (platformdirs), each overridable by an environment variable.

ANECHAT_CONFIG_DIR  config.toml
ANECHAT_DATA_DIR    history database, bench results
ANECHAT_MODELS_DIR  models anechat converted or pulled (default: <data>/models)
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "anechat"


def config_dir() -> Path:
    env = os.environ.get("ANECHAT_CONFIG_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    env = os.environ.get("ANECHAT_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP, appauthor=False))


def models_dir() -> Path:
    env = os.environ.get("ANECHAT_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return data_dir() / "models"


def config_file() -> Path:
    return config_dir() / "config.toml"
