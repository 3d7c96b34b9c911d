"""The one writer of model folders: a folder appears complete or not at all."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from anechat.engines.files import atomic_folder, pid_alive


def test_a_finished_folder_appears_whole_and_no_scratch_stays(tmp_path):
    target = tmp_path / "model"
    with atomic_folder(target) as tmp:
        (tmp / "config.json").write_text("{}")
        assert not target.exists() and tmp.name.startswith(f".model.partial-{os.getpid()}-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (target / "config.json").read_text() == "{}"


def test_an_error_inside_leaves_nothing_behind(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_folder(tmp_path / "model") as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_content_is_never_overwritten_unless_replacing(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "mine.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        with atomic_folder(target):
            pass
    assert (target / "mine.txt").read_text() == "mine"
    with atomic_folder(target, replace=True) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_leftovers_of_a_writer_that_died_are_removed_by_the_next_one(tmp_path):
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    assert not pid_alive(dead) and pid_alive(os.getpid())
    leftover = tmp_path / f".model.partial-{dead}-deadbeef"
    leftover.mkdir()
    with atomic_folder(tmp_path / "model"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
