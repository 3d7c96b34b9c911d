"""`-e coreai` everywhere an engine is chosen, `convert --to coreai`, the catalog and doctor."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("coreai_torch")

from test_cli import anechat, one_clear_line  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def own_data_folder(tmp_path_factory):
    """`convert -o` registers the folder in anechat's data folder: this module keeps its own,
    so the other tests' catalogs do not see its conversion."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANECHAT_DATA_DIR", str(tmp_path_factory.mktemp("coreai-data")))
        yield


@pytest.fixture(scope="module")
def converted(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-coreai") / "tiny-coreai"
    done = anechat("convert", str(tiny_model_dir), "--to", "coreai", "--context", "128", "--batch", "16", "-o", str(out), timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    assert f"wrote {out}" in done.stdout.decode()
    return out


def test_the_catalog_recognises_a_coreai_folder(converted):
    from anechat.catalog.formats import detect

    det = detect(converted)
    assert (det.format, det.engines, det.quantization, det.context_length) == ("coreai", ("coreai",), "fp32", 128)
    assert det.details["asset_bytes"] > 0 and det.details["entrypoints"] == ["prefill", "infer"]


def test_a_float_llama_can_be_converted_to_coreai(tiny_model_dir):
    from anechat.catalog.formats import detect

    assert "coreai" in detect(tiny_model_dir).details["convert_to"]


def test_run_on_coreai_answers_and_names_the_runtime(converted):
    done = anechat("run", "Hello", "-m", str(converted), "-e", "coreai", "--max-tokens", "6", "--json")
    assert done.returncode == 0, done.stderr.decode()
    record = json.loads(done.stdout)
    assert record["engine"] == "coreai" and record["generation_tokens"] >= 1
    assert record["runtime"] == "Apple Core AI runtime on CPU"
    assert "Loading function" not in done.stderr.decode()


def test_compare_mlx_and_coreai_side_by_side(converted, tiny_model_dir):
    done = anechat("compare", "Hello", "-m", str(tiny_model_dir), "-e", "mlx", "-m", str(converted), "-e", "coreai", "--max-tokens", "6", "--json", timeout=300)
    assert done.returncode == 0, (done.stdout.decode(), done.stderr.decode())
    assert "coreai" in done.stdout.decode() + done.stderr.decode()


def test_a_model_on_the_coreai_engine_runs_its_coreai_variant_and_says_which(converted, tiny_model_dir):
    done = anechat("run", "Hi", "-m", str(tiny_model_dir), "-e", "coreai", "--max-tokens", "4")
    assert done.returncode == 0, done.stderr.decode()
    assert f"using {converted.name}" in done.stderr.decode()


def test_a_model_with_no_coreai_variant_says_how_to_make_one(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))  # nothing registered here
    line = one_clear_line(anechat("run", "Hi", "-m", str(tiny_model_dir), "-e", "coreai"))
    assert "no coreai variant" in line and "anechat convert" in line and "--to coreai" in line


def test_convert_refuses_a_bad_compression_in_one_line(tiny_model_dir, tmp_path):
    line = one_clear_line(anechat("convert", str(tiny_model_dir), "--to", "coreai", "--compress", "lut5", "-o", str(tmp_path / "x")))
    assert "--compress" in line


def test_doctor_has_a_core_ai_line():
    done = anechat("doctor")
    assert done.returncode == 0
    out = done.stdout.decode()
    assert "engine coreai" in out and "Apple Core AI runtime on CPU" in out
    assert "coreai-core 1.0.0b3" in out and "untested" in out
