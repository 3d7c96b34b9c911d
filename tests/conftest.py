"""Shared fixtures: tiny random-weight llama models made at test time, and an
isolated anechat home (config, data and models folders) per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tinymodel import build_tiny_llama  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random-weight llama (2 layers, hidden 64) with a trained BPE tokenizer and ChatML template."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_stop_model_dir(tmp_path_factory) -> Path:
    """A tiny llama that always answers its stop token first."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-stop", always_stop=True)


@pytest.fixture(autouse=True, scope="session")
def _isolated_anechat_home(tmp_path_factory):
    """Point anechat's config and data folders at a temporary home (models folder kept: see below)."""
    home = tmp_path_factory.mktemp("anechat-home")
    old = {k: os.environ.get(k) for k in ("ANECHAT_CONFIG_DIR", "ANECHAT_DATA_DIR")}
    os.environ["ANECHAT_CONFIG_DIR"] = str(home / "config")
    os.environ["ANECHAT_DATA_DIR"] = str(home / "data")
    yield home
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
