"""Planning the ranks (--hosts / --hostfile / --shard), checking every host has the
model, and refusing a split the model's shape does not allow — each in one line."""

from __future__ import annotations

import json
import os

import pytest

from anechat.engines.errors import InvalidParameter, ModelFormatError
from anechat.engines.mlx.distributed.hosts import plan_from
from anechat.engines.mlx.distributed.probe import host_facts, model_difference, model_manifest


def test_hosts_become_ranks_with_this_machine_first_and_local_ranks_get_free_ports():
    plan = plan_from("127.0.0.1,127.0.0.1,127.0.0.1", None, "tensor")
    assert plan.size == 3 and plan.all_local and plan.label() == "3 ranks (tensor)"
    ring = plan.ring()
    assert len(ring) == 3 and len({address[0] for address in ring}) == 3
    assert all(address[0].startswith("127.0.0.1:") for address in ring)
    assert [h["ssh"] for h in plan.hostfile()["hosts"]] == ["127.0.0.1", "127.0.0.1"]  # mlx.launch starts ranks 1..


def test_a_hostfile_in_mlx_launch_format_gives_ssh_names_ips_and_envs(tmp_path):
    file = tmp_path / "hosts.json"
    file.write_text(json.dumps({"backend": "ring", "envs": ["A=1"], "hosts": [{"ssh": "mini1", "ips": ["10.0.0.1"]}, {"ssh": "mini2", "ips": ["10.0.0.2"]}]}))
    plan = plan_from(None, file)
    assert [(h.ssh, h.ip) for h in plan.hosts] == [("mini1", "10.0.0.1"), ("mini2", "10.0.0.2")]
    assert plan.ring() == [["10.0.0.1:32323"], ["10.0.0.2:32324"]] and plan.envs == ("A=1",)
    assert plan.shard == "pipeline" and not plan.all_local


@pytest.mark.parametrize(
    "hosts, hostfile, shard, says",
    [
        ("127.0.0.1", None, "pipeline", "at least 2 ranks"),
        ("127.0.0.1,,127.0.0.1", None, "pipeline", "empty name"),
        ("127.0.0.1,127.0.0.1", None, "rows", "--shard 'rows' is invalid"),
        ("127.0.0.1,127.0.0.1", "x.json", "pipeline", "not both"),
        (None, "/nonexistent/hosts.json", "pipeline", "doesn't exist"),
    ],
)
def test_bad_host_lists_are_refused_in_one_line(hosts, hostfile, shard, says):
    with pytest.raises(InvalidParameter) as caught:
        plan_from(hosts, hostfile, shard)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_no_hosts_means_one_process():
    assert plan_from(None, None) is None


def test_a_host_without_the_same_model_files_is_told_what_it_lacks(tiny_model_dir, tmp_path):
    mine = model_manifest(tiny_model_dir)
    assert model_difference(mine, model_manifest(tiny_model_dir)) == ""
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in tiny_model_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / "tokenizer.json").unlink()
    assert model_difference(mine, model_manifest(copy)) == "lacks tokenizer.json"
    (copy / "tokenizer.json").write_bytes(b"{}")
    assert model_difference(mine, model_manifest(copy)) == "has different sizes for tokenizer.json"
    (copy / "tokenizer.json").write_bytes((tiny_model_dir / "tokenizer.json").read_bytes())
    config = (copy / "config.json").read_text()
    (copy / "config.json").write_text(config.replace('"rms_norm_eps": 1e-05', '"rms_norm_eps": 2e-05'))
    assert model_difference(mine, model_manifest(copy)) == "has a different config.json"
    assert "no model at" in model_difference(mine, model_manifest(tmp_path / "absent"))


def test_a_probe_says_python_anechat_and_mlx_versions():
    facts = host_facts()
    assert facts["python"].count(".") == 2 and facts["anechat"] and facts["mlx"]


class _Group:
    """A stand-in for an mx.distributed group of ``n`` ranks: split only asks its size and rank."""

    def __init__(self, n: int, rank: int = 0) -> None:
        self.n = n
        self.r = rank

    def size(self) -> int:
        return self.n

    def rank(self) -> int:
        return self.r


def test_a_split_the_model_shape_does_not_allow_is_refused_naming_the_other_split(tiny_model_dir):
    pytest.importorskip("mlx_lm")
    from mlx_lm.utils import load_model

    from anechat.engines.mlx.distributed.shard import split

    model, _ = load_model(tiny_model_dir, lazy=True)  # 2 layers, 4 heads, 2 KV heads
    with pytest.raises(ModelFormatError, match="num_attention_heads \\(4\\) does not divide into 3 ranks — try --shard pipeline"):
        split(model, _Group(3), "tensor")
    with pytest.raises(ModelFormatError, match="it has 2 layers for 3 ranks — try --shard tensor"):
        split(model, _Group(3), "pipeline")


def test_layers_go_to_the_ranks_by_bytes_with_rank_0_holding_the_embedding_table_too():
    from anechat.engines.mlx.distributed.shard import balanced_split

    # SmolLM2-135M's shape: 30 layers of ~14 MB, a 113 MB tied table on rank 0
    assert balanced_split([14] * 30, 2, rank_0_extra=113) == [11, 19]
    assert balanced_split([14] * 30, 3, rank_0_extra=113) == [4, 13, 13]
    assert balanced_split([14] * 30, 2) == [15, 15]
    assert balanced_split([5, 1, 1, 1, 1, 1], 2) == [5, 1]  # the last rank runs the first layers
    assert balanced_split([1] * 4, 2, rank_0_extra=100) == [1, 3]  # every rank runs a layer


def test_a_pipeline_rank_other_than_0_drops_the_embedding_table_norm_and_head_before_reading_them(tmp_path):
    pytest.importorskip("mlx_lm")
    from mlx_lm.utils import load_model

    from anechat.engines.mlx.distributed.shard import _nbytes, scores_tokens, split
    from tinymodel import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "tied", num_layers=4, intermediate_size=16, tie_word_embeddings=True)
    whole, _ = load_model(folder, lazy=True)
    parts = []
    for rank in (0, 1):
        model, _ = load_model(folder, lazy=True)
        split(model, _Group(2, rank), "pipeline")
        parts.append(model)
    first, other = parts
    assert "embed_tokens" in first.model and "norm" in first.model and scores_tokens(first)
    assert "embed_tokens" not in other.model and "norm" not in other.model and not scores_tokens(other)
    assert (len(first.layers), len(other.layers)) == (1, 3)  # the table outweighs a layer here
    assert _nbytes(first) + _nbytes(other) == _nbytes(whole)


def test_a_killed_rank_0s_folder_is_removed_by_the_next_start_and_a_living_ones_is_kept(tmp_path):
    import subprocess
    import sys

    from anechat.engines.mlx.distributed.launch import remove_stale_folders

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"anechat-ranks-{int(ended.stdout)}-abc"
    living = tmp_path / f"anechat-ranks-{os.getpid()}-def"
    other = tmp_path / "anechat-ranks-notes"
    for folder in (stale, living, other):
        folder.mkdir()
        (folder / "ranks.log").write_text("...")
    assert remove_stale_folders(tmp_path) == [stale]
    assert not stale.exists() and living.exists() and other.exists()


def test_with_real_hosts_the_ring_uses_mlx_launch_ports_and_never_gives_them_loopback_for_this_machine():
    plan = plan_from("127.0.0.1,192.0.2.7", None)
    ring = plan.ring()
    assert ring[1] == ["192.0.2.7:32324"] and ring[0][0].endswith(":32323")
    route = ring[0][0].rsplit(":", 1)[0]
    assert route != "192.0.2.7" and (route != "127.0.0.1" or not _has_route())


def _has_route() -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.7", 9))
            return True
        except OSError:
            return False
