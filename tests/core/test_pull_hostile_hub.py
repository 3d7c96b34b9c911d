"""``pull`` against a hostile or broken hub on 127.0.0.1: nothing lands outside the cache,
no file is bigger or other than announced, and a failed pull never looks like a model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from fake_hub import ENDLESS_CAP, FakeHub, FakeHubServer, FakeRepo, model_folder_files

from anechat.catalog import lookup_model
from anechat.engines.errors import ModelNotFound
from anechat.hub.pull import CacheEscape, DownloadMismatch, UnsafeHubValue, pull


@pytest.fixture(scope="module")
def tiny_files(tiny_model_dir) -> dict[str, bytes]:
    return model_folder_files(tiny_model_dir)


def serve(repo: FakeRepo):
    hub = FakeHub({"acme/tiny": repo})
    return hub, FakeHubServer(hub)


def storage(home: Path) -> Path:
    return home / "hf" / "hub" / "models--acme--tiny"


def outside_the_cache(home: Path) -> set[str]:
    """Every path under the test's home that is not inside the hub cache."""
    cache = home / "hf" / "hub"
    return {str(p.relative_to(home)) for p in home.rglob("*") if cache not in (p, *p.parents)}


def resolve_gets(hub: FakeHub) -> list[str]:
    return [path for method, path, _ in hub.log if method == "GET" and "/resolve/" in path]


def looks_complete(home: Path) -> bool:
    try:
        return lookup_model("tiny").format == "hf"
    except ModelNotFound:
        return False


def test_a_commit_that_is_not_40_hex_refuses_the_pull_before_any_request_for_a_file(home, tiny_files):
    hub, server = serve(FakeRepo(dict(tiny_files), api_sha="../../../escaped-snapshot"))
    before = outside_the_cache(home)
    with server, pytest.raises(UnsafeHubValue) as err:
        pull("acme/tiny", endpoint=hub.url)
    assert str(err.value).startswith("the hub sent an unsafe commit (not 40 hex characters) for acme/tiny: '../../../escaped-snapshot'")
    assert [path for _, path, _ in hub.log if "/resolve/" in path] == []
    assert outside_the_cache(home) == before and not looks_complete(home)


def test_a_file_answer_from_another_commit_is_refused(home, tiny_files):
    hub, server = serve(FakeRepo(dict(tiny_files), head_commit="../../../escaped"))
    with server, pytest.raises(UnsafeHubValue, match=r"unsafe commit .*'\.\./\.\./\.\./escaped'"):
        pull("acme/tiny", endpoint=hub.url)
    assert resolve_gets(hub) == [] and not looks_complete(home)


@pytest.mark.parametrize("etag", ['"../../../../escaped"', 'W/"../../../../escaped"', '"abc"'])
def test_an_etag_that_is_not_a_hex_hash_refuses_the_whole_pull_before_any_download(home, tiny_files, etag):
    hub, server = serve(FakeRepo(dict(tiny_files), etags={"tokenizer_config.json": etag}))
    before = outside_the_cache(home)
    with server, pytest.raises(UnsafeHubValue) as err:
        pull("acme/tiny", endpoint=hub.url)
    assert "ETag for 'tokenizer_config.json' (not 40 or 64 hex characters)" in str(err.value)
    assert "\n" not in str(err.value)
    assert resolve_gets(hub) == []  # not one file was downloaded
    assert outside_the_cache(home) == before and not looks_complete(home)


def test_a_weak_quoted_hex_etag_is_accepted(home, tiny_files):
    repo = FakeRepo(dict(tiny_files))
    repo.etags["tokenizer_config.json"] = f'W/"{repo.etag("tokenizer_config.json")}"'
    hub, server = serve(repo)
    with server:
        result = pull("acme/tiny", endpoint=hub.url)
    assert (result.path / "tokenizer_config.json").read_bytes() == tiny_files["tokenizer_config.json"]


@pytest.mark.parametrize(
    "name",
    [
        "x.mlmodelc/../../../../escaped.bin",  # kept by the Core ML rule, climbs out of the snapshot
        "/etc/escaped.json",
        "README\x1b]0;pwned\x07.md",
        "x.mlmodelc/weights\\..\\..\\escaped.bin",
    ],
)
def test_a_file_name_that_could_leave_the_snapshot_refuses_the_whole_pull(home, tiny_files, name):
    files = dict(tiny_files) | {"meta.yaml": b"model_info: {}\n", name: b"hostile"}
    hub, server = serve(FakeRepo(files))
    before = outside_the_cache(home)
    with server, pytest.raises(UnsafeHubValue) as err:
        pull("acme/tiny", endpoint=hub.url)
    message = str(err.value)
    assert message.startswith("the hub sent an unsafe file name for acme/tiny: '")
    assert not any(ch in message for ch in "\x1b\x07\n")  # shown terminal-safe: ␛ and ␇
    assert [path for _, path, _ in hub.log if "/resolve/" in path] == []
    assert outside_the_cache(home) == before


def test_an_endless_answer_for_a_small_file_is_stopped_at_its_announced_size(home, tiny_files):
    hub, server = serve(FakeRepo(dict(tiny_files), endless={"tokenizer_config.json"}))
    with server, pytest.raises(DownloadMismatch) as err:
        pull("acme/tiny", endpoint=hub.url)
    assert str(err.value).startswith(
        f"acme/tiny: the hub sent more than the {len(tiny_files['tokenizer_config.json'])} bytes it announced for 'tokenizer_config.json'"
    )
    assert hub.sent["acme/tiny/tokenizer_config.json"] < ENDLESS_CAP // 2  # it stopped reading long before the end
    blobs = storage(home) / "blobs"
    assert all(p.stat().st_size <= len(tiny_files["model.safetensors"]) for p in blobs.iterdir())
    assert not list(blobs.glob("*.incomplete")) and not looks_complete(home)


def test_bytes_that_do_not_match_the_announced_sha256_are_deleted(home, tiny_files):
    weights = tiny_files["model.safetensors"]
    tampered = bytes([weights[0] ^ 1]) + weights[1:]
    hub, server = serve(FakeRepo(dict(tiny_files), served={"model.safetensors": tampered}))
    with server, pytest.raises(DownloadMismatch, match=r"acme/tiny: 'model.safetensors' does not match the sha256 the hub announced"):
        pull("acme/tiny", endpoint=hub.url)
    announced = hashlib.sha256(weights).hexdigest()
    blobs = storage(home) / "blobs"
    assert not (blobs / announced).exists() and not list(blobs.glob("*.incomplete"))
    assert not any(p.read_bytes() == tampered for p in blobs.iterdir())
    assert not looks_complete(home)


def test_a_snapshot_entry_pointing_outside_the_blobs_fails_the_pull_and_removes_what_it_made(home, tiny_files):
    """A tokenizer_config.json linked to a file outside the cache (left by an older, unsafe pull)."""
    repo = FakeRepo(dict(tiny_files))
    secret = home / "outside.txt"
    secret.write_text("not the model's")
    snapshot = storage(home) / "snapshots" / repo.commit
    snapshot.mkdir(parents=True)
    os.symlink(secret, snapshot / "tokenizer_config.json")
    hub, server = serve(repo)
    with server, pytest.raises(CacheEscape) as err:
        pull("acme/tiny", endpoint=hub.url)
    assert str(err.value).startswith("acme/tiny: 'tokenizer_config.json' in the pulled snapshot points outside the cache's blobs/")
    assert secret.read_text() == "not the model's"  # the target is never touched
    assert not (snapshot / "tokenizer_config.json").is_symlink()
    assert not (snapshot / "config.json").exists() and not list(snapshot.iterdir())
    assert not looks_complete(home)
    assert not (storage(home) / "refs" / "main").exists()
