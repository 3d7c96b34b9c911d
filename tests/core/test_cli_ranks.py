"""`--hosts` / `--hostfile` / `--shard` on the command line, end to end in real
subprocesses with local ranks: the same answer as one process, a rank that does not
start or a host without the model in one line, and `anechat doctor --hosts`."""

from __future__ import annotations

import json

import pytest

from anechat.engines.registry import availability
from test_cli import anechat, one_clear_line

pytestmark = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")

TWO = "127.0.0.1,127.0.0.1"


def test_run_on_two_local_ranks_answers_like_one_process(tiny_model_dir):
    args = ("run", "Hello there", "-m", str(tiny_model_dir), "--max-tokens", "12", "--json")
    alone = anechat(*args)
    ranks = anechat(*args, "--hosts", TWO, timeout=300)
    assert alone.returncode == 0 and ranks.returncode == 0, ranks.stderr.decode()
    one, two = json.loads(alone.stdout), json.loads(ranks.stdout)
    assert two["text"] == one["text"] and two["generation_tokens"] == one["generation_tokens"] == 12
    assert two["runtime"].startswith("2 ranks (pipeline)")


def test_a_rank_that_does_not_start_is_reported_in_one_line(tiny_model_dir, tmp_path):
    hostfile = tmp_path / "hosts.json"
    broken = {"envs": ["PYTHONHOME=/nonexistent"], "hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2}
    hostfile.write_text(json.dumps(broken))
    line = one_clear_line(anechat("run", "Hello", "-m", str(tiny_model_dir), "--hostfile", str(hostfile), timeout=300))
    assert "the other ranks did not start: rank 1 (127.0.0.1) exited with code 1" in line


def test_a_host_that_cannot_be_reached_is_named_before_any_rank_starts(tiny_model_dir, tmp_path):
    hostfile = tmp_path / "hosts.json"
    hostfile.write_text(json.dumps([{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}, {"ssh": "nohost.invalid", "ips": ["192.0.2.1"]}]))
    line = one_clear_line(anechat("run", "Hello", "-m", str(tiny_model_dir), "--hostfile", str(hostfile)))
    assert "not every host has tiny-llama: nohost.invalid:" in line and "copy the model folder" in line


@pytest.mark.parametrize(
    "args, says",
    [
        (("--hosts", "127.0.0.1"), "at least 2 ranks"),
        (("--hosts", TWO, "--shard", "rows"), "--shard 'rows' is invalid"),
        (("--hosts", TWO, "-e", "coreml"), "--hosts runs the mlx engine"),
    ],
)
def test_bad_rank_options_get_one_line(tiny_model_dir, args, says):
    assert says in one_clear_line(anechat("run", "Hello", "-m", str(tiny_model_dir), *args))


def test_doctor_checks_every_host_for_python_anechat_and_the_model(tiny_model_dir):
    result = anechat("doctor", "--hosts", TWO, "-m", str(tiny_model_dir))
    assert result.returncode == 0, result.stderr.decode()
    out = " ".join(result.stdout.decode().split())
    assert "rank 0 127.0.0.1" in out and "rank 1 127.0.0.1" in out
    assert out.count("model tiny-llama: same files") == 2 and "anechat 0.1.0" in out


def test_hosts_given_before_the_command_apply_to_it(tiny_model_dir):
    assert "at least 2 ranks" in one_clear_line(anechat("--hosts", "127.0.0.1", "run", "Hello", "-m", str(tiny_model_dir)))
