"""Fixtures of the core tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A private anechat home for one test: models, config and data folders, and a Hugging
    Face cache, with no hub settings from the machine (pulls, the catalog, removals)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("ANECHAT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "models").mkdir()
    return tmp_path
