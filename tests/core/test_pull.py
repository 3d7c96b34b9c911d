"""``pull``: real downloads through huggingface_hub from a fake hub on 127.0.0.1 (tests/fake_hub.py)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import threading
import zipfile
from pathlib import Path

import pytest
from fake_hub import FakeHub, FakeHubServer, FakeRepo, model_folder_files
from model_folders import build_coreml_layout

from anechat.catalog import lookup_model, scan_catalog
from anechat.engines.errors import ModelNotFound
from anechat.hub.pull import HubOffline, HubUnauthorized, NotEnoughSpace, PullCancelled, PullError, RepoGated, plan_pull, pull

BIG = 24 * 1024 * 1024  # over huggingface_hub's 10 MB read chunk, so a cut leaves a partial file to resume


@pytest.fixture(scope="module")
def tiny_files(tiny_model_dir) -> dict[str, bytes]:
    """The tiny model as a hub repo, plus files a pull must leave out."""
    files = model_folder_files(tiny_model_dir)
    files.update({
        "pytorch_model.bin": b"torch duplicate" * 10,
        "model.onnx": b"onnx duplicate",
        "tiny.Q4_0.gguf": b"GGUF duplicate",
        "original/consolidated.pth": b"meta checkpoint",
        ".gitattributes": b"*.safetensors filter=lfs\n",
        "README.md": b"# tiny\n",
    })
    return files


@pytest.fixture
def hub(tiny_files):
    fake = FakeHub({"acme/tiny": FakeRepo(dict(tiny_files))})
    with FakeHubServer(fake):
        yield fake


def cache(home: Path) -> Path:
    return home / "hf" / "hub"


def snapshot_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def resolve_gets(hub: FakeHub) -> list[str]:
    return [path.rsplit("/", 1)[-1] for method, path, _ in hub.log if method == "GET" and "/resolve/" in path]


def test_a_full_pull_downloads_only_what_the_model_needs(home, hub, tiny_files):
    seen = []
    result = pull("acme/tiny", endpoint=hub.url, progress=seen.append)
    needed = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md"}
    assert snapshot_files(result.path) == needed
    for name in needed:
        assert (result.path / name).read_bytes() == tiny_files[name]
    assert set(result.skipped) == {"pytorch_model.bin", "model.onnx", "tiny.Q4_0.gguf", "original/consolidated.pth", ".gitattributes"}
    assert result.downloaded_bytes == result.total_bytes == sum(len(tiny_files[n]) for n in needed)
    # the progress reports only grow and end at the total, every file counted
    done = [p.done_bytes for p in seen]
    assert done == sorted(done) and done[-1] == result.total_bytes
    assert seen[-1].files_done == seen[-1].files_total == len(needed)
    # config.json comes last: until then the snapshot does not look like a model
    assert resolve_gets(hub)[-1] == "config.json"
    assert (cache(home) / "models--acme--tiny" / "refs" / "main").read_text() == result.commit
    entry = lookup_model("tiny")
    assert (entry.source, entry.format, entry.engines, entry.repo_id) == ("hf-cache", "hf", ("mlx",), "acme/tiny")
    assert scan_catalog().warnings == []  # the hub's own scan of its cache finds nothing odd


def test_pulling_again_downloads_nothing(home, hub):
    pull("acme/tiny", endpoint=hub.url)
    before = len(resolve_gets(hub))
    plan = plan_pull("acme/tiny", endpoint=hub.url)
    assert plan.download_bytes == 0 and plan.cached == set(plan.files)
    again = pull("acme/tiny", endpoint=hub.url, plan=plan)
    assert again.downloaded_bytes == 0 and len(resolve_gets(hub)) == before


def test_a_new_revision_reuses_unchanged_files_and_is_complete(home, hub, tiny_files):
    first = pull("acme/tiny", endpoint=hub.url)
    hub.repos["acme/tiny"] = FakeRepo(dict(tiny_files) | {"model.safetensors": tiny_files["model.safetensors"][:-4] + b"\0\0\0\0"})
    second = pull("acme/tiny", endpoint=hub.url)
    assert second.commit != first.commit
    # only the changed weights travel; config.json and the tokenizer come from the cached blobs
    assert second.downloaded_bytes == len(tiny_files["model.safetensors"])
    assert (second.path / "config.json").read_bytes() == tiny_files["config.json"]
    entry = lookup_model("tiny")
    assert entry.path == second.path and entry.format == "hf"


def test_a_connection_cut_mid_file_resumes_with_a_range_request(home, tiny_model_dir):
    big = (b"0123456789abcdef" * (BIG // 16))
    files = model_folder_files(tiny_model_dir) | {"model-extra.safetensors": big}
    fake = FakeHub({"acme/big": FakeRepo(files)}, cut_once={"acme/big/model-extra.safetensors"})
    with FakeHubServer(fake):
        result = pull("acme/big", endpoint=fake.url)
    ranges = fake.requests_for("model-extra.safetensors")
    assert ranges[0] is None and ranges[1].startswith("bytes=") and int(ranges[1][6:].split("-")[0]) > 0
    assert hashlib.sha256((result.path / "model-extra.safetensors").read_bytes()).digest() == hashlib.sha256(big).digest()
    assert result.downloaded_bytes == result.total_bytes


def test_a_pull_that_fails_part_way_leaves_no_complete_looking_model_and_resumes(home, hub):
    hub.fail_once["acme/tiny/model.safetensors"] = 500
    with pytest.raises(PullError, match="HTTP 500"):
        pull("acme/tiny", endpoint=hub.url, max_workers=1)
    entry = lookup_model("tiny")
    assert entry.format == "unsupported" and "incomplete download" in entry.reason
    plan = plan_pull("acme/tiny", endpoint=hub.url)
    finished = set(plan.cached)
    assert "config.json" not in finished
    gets_before = resolve_gets(hub)
    pull("acme/tiny", endpoint=hub.url, plan=plan)
    fetched_now = resolve_gets(hub)[len(gets_before):]
    assert not finished & set(fetched_now)  # what was finished is not downloaded again
    assert lookup_model("tiny").format == "hf"


def test_cancel_stops_the_pull_and_keeps_finished_files(home, hub):
    cancel = threading.Event()

    def progress(p):
        if p.files_done >= 1:
            cancel.set()

    with pytest.raises(PullCancelled):
        pull("acme/tiny", endpoint=hub.url, progress=progress, cancel=cancel, max_workers=1)
    assert lookup_model("tiny").format == "unsupported"
    assert len(plan_pull("acme/tiny", endpoint=hub.url).cached) >= 1
    pull("acme/tiny", endpoint=hub.url)
    assert lookup_model("tiny").format == "hf"


def test_a_repo_that_does_not_exist(home, hub):
    with pytest.raises(ModelNotFound, match=r"no model repo 'acme/nope' on the hub \(http://127\.0\.0\.1:\d+\) — check the name"):
        pull("acme/nope", endpoint=hub.url)
    assert not (cache(home) / "models--acme--nope").exists()


def test_an_unknown_revision(home, hub):
    with pytest.raises(ModelNotFound, match="acme/tiny has no revision 'v9'"):
        pull("acme/tiny@v9", endpoint=hub.url)


def test_a_gated_repo_without_a_login(home, hub, tiny_files):
    hub.repos["acme/gated"] = FakeRepo(dict(tiny_files), gated=True)
    with pytest.raises(RepoGated) as err:
        pull("acme/gated", endpoint=hub.url)
    assert str(err.value) == (
        f"acme/gated is gated: accept its conditions at {hub.url}/acme/gated"
        " — then log in with `hf auth login` or set HF_TOKEN"
    )
    snapshots = cache(home) / "models--acme--gated" / "snapshots"
    assert not any(snapshots.rglob("config.json")) if snapshots.exists() else True


def test_a_gated_repo_whose_conditions_were_not_accepted(home, hub, tiny_files):
    hub.repos["acme/gated"] = FakeRepo(dict(tiny_files), gated=True)
    with pytest.raises(RepoGated, match="acme/gated is gated"):
        pull("acme/gated", endpoint=hub.url, token=hub.valid_token)
    assert ("GET", "/api/models/acme/gated", None) in hub.log


def test_a_wrong_token_is_unauthorised(home, hub):
    with pytest.raises(HubUnauthorized) as err:
        pull("acme/tiny", endpoint=hub.url, token="hf_wrong")
    assert str(err.value) == "not authorised to download acme/tiny (HTTP 401) — log in with `hf auth login` or set HF_TOKEN"


def test_offline_mode_is_refused_before_any_request(home, hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubOffline, match=r"offline mode is on \(HF_HUB_OFFLINE\): cannot download acme/tiny"):
        pull("acme/tiny", endpoint=hub.url)
    assert hub.log == []


def test_no_network(home):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HubOffline, match=rf"cannot reach the Hugging Face hub \(http://127.0.0.1:{port}\) to download acme/tiny: no network\?"):
        pull("acme/tiny", endpoint=f"http://127.0.0.1:{port}")


def test_free_disk_space_is_checked_before_downloading(home, hub):
    free = shutil.disk_usage(home).free
    with pytest.raises(NotEnoughSpace, match=r"not enough free disk space for acme/tiny: it needs .* free in "):
        pull("acme/tiny", endpoint=hub.url, keep_free_bytes=free)
    assert resolve_gets(hub) == []


def test_a_repo_with_nothing_anechat_can_run(home, hub):
    hub.repos["acme/gguf-only"] = FakeRepo({"model.Q4_K_M.gguf": b"GGUF", "README.md": b"hi"})
    with pytest.raises(PullError, match=r"acme/gguf-only has no safetensors weights or Core ML model \(it holds: README.md, model.Q4_K_M.gguf\)"):
        pull("acme/gguf-only", endpoint=hub.url)


def test_not_a_repo_id(home):
    with pytest.raises(ModelNotFound, match="'just-a-name' is not a hub repo id — use owner/name"):
        pull("just-a-name")


def test_an_anemll_repo_with_zipped_core_ml_parts_is_unpacked(home, tiny_model_dir, tmp_path):
    layout = build_coreml_layout(tiny_model_dir, tmp_path / "ane", context=128)
    files = {}
    for item in sorted(layout.iterdir()):
        if item.suffix == ".mlpackage":  # published ANEMLL repos ship compiled parts as zips
            archive = tmp_path / f"{item.stem}.mlmodelc.zip"
            with zipfile.ZipFile(archive, "w") as zf:
                for f in item.rglob("*"):
                    zf.write(f, f"{item.stem}.mlmodelc/{f.relative_to(item)}")
            files[archive.name] = archive.read_bytes()
        else:
            files[item.name] = item.read_bytes()
    files["chat.py"] = b"print('ANEMLL chat script')"
    fake = FakeHub({"anemll/tiny-ane": FakeRepo(files)})
    with FakeHubServer(fake):
        result = pull("anemll/tiny-ane", endpoint=fake.url)
    assert (result.path / "llama_embeddings.mlmodelc" / "Manifest.json").is_file()
    assert "chat.py" in result.skipped
    assert resolve_gets(fake)[-1] == "meta.yaml"
    entry = lookup_model("tiny-ane")
    assert (entry.format, entry.engines, entry.quantization, entry.context_length) == ("coreml", ("coreml",), "LUT6 (embeddings fp16)", 128)
    assert scan_catalog().warnings == []  # unpacked parts inside the snapshot do not upset the hub's cache scan
