"""Conversions started from the app run in a child Python process: progress comes back as it
happens, X (the job's cancel event) stops even one long mlx-lm call at once and leaves no
half-written folder, and a failure in the child comes back as one line, never a traceback.
Real tiny model, real mlx-lm conversion, real processes."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psutil
import pytest
from anechat.engines.errors import ModelNotFound
from anechat.engines.registry import availability
from tui_support import models_home

from anechat.convert.jobs import ConvertRequest
from anechat.convert.child import (
    ConversionCancelled,
    ConversionFailed,
    convert_in_child,
)

pytestmark = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")

FOUR_BIT = ConvertRequest(to="mlx", bits=4)


def converter_children() -> list[psutil.Process]:
    """This process's children that run the conversion module."""
    return [p for p in psutil.Process().children() if "anechat.convert.child" in " ".join(p.cmdline())]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_mlx_conversion_runs_in_a_child_process_and_reports_its_progress(tmp_path, monkeypatch, tiny_model_dir):
    home = models_home(tmp_path, monkeypatch, tiny_model_dir)
    events: list[tuple[str, float | None]] = []
    seen_children: list[int] = []

    def progress(step: str, fraction: float | None) -> None:
        events.append((step, fraction))
        seen_children.extend(p.pid for p in converter_children())

    path = convert_in_child("tiny-llama", FOUR_BIT, progress, threading.Event())

    assert path == home / "tiny-llama-mlx-4bit"  # the name the models screen shows
    config = json.loads((path / "config.json").read_text())
    assert config["quantization"]["bits"] == 4
    assert (path / "model.safetensors").is_file() and (path / "tokenizer.json").is_file()
    assert [step for step, _ in events] == ["loading and converting", "saving", "done"]
    assert events[-1][1] == 1.0
    assert seen_children, "the work did not happen in a child process"
    assert not any(psutil.pid_exists(pid) for pid in seen_children)  # ended and reaped
    assert hidden(home) == []


def test_cancelling_stops_the_child_at_once_and_leaves_no_folder(tmp_path, monkeypatch, tiny_model_dir):
    home = models_home(tmp_path, monkeypatch, tiny_model_dir)
    cancel = threading.Event()
    at_cancel: dict = {}

    def progress(step: str, fraction: float | None) -> None:
        if not cancel.is_set():  # X pressed as soon as the job shows its first step
            at_cancel["children"] = [p.pid for p in converter_children()]
            at_cancel["hidden"] = hidden(home)
            cancel.set()

    with pytest.raises(ConversionCancelled):
        convert_in_child("tiny-llama", FOUR_BIT, progress, cancel)

    # the child was mid-way: its temp folder existed, and the converter had not finished
    assert len(at_cancel["children"]) == 1
    assert [name for name in at_cancel["hidden"] if name.startswith(".tiny-llama-mlx-4bit.partial-")]
    assert not psutil.pid_exists(at_cancel["children"][0])  # ended and reaped
    assert not (home / "tiny-llama-mlx-4bit").exists()
    assert hidden(home) == []  # the killed child's temp folder is gone too


def test_failures_in_the_child_come_back_as_one_line(tmp_path, monkeypatch, tiny_model_dir):
    home = models_home(tmp_path, monkeypatch, tiny_model_dir)

    def ignore(step: str, fraction: float | None) -> None:
        pass

    # an unknown model: the child's own error type and message, with its hint
    with pytest.raises(ModelNotFound) as unknown:
        convert_in_child("no-such-model", FOUR_BIT, ignore, threading.Event(), out=home / "out")
    assert str(unknown.value).startswith("no model named 'no-such-model'") and unknown.value.hint

    # a finished folder in the way: refused, and the folder is kept as it was
    existing = home / "tiny-llama-mlx-4bit"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    with pytest.raises(ConversionFailed) as taken:
        convert_in_child("tiny-llama", FOUR_BIT, ignore, threading.Event())
    assert "already exists" in str(taken.value)
    assert (existing / "keep.txt").read_text() == "mine" and hidden(home) == []

    for error in (unknown.value, taken.value):
        assert "\n" not in str(error) and "Traceback" not in str(error)
