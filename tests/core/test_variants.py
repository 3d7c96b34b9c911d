"""A model is one thing with variants per engine: conversions record their source, and
``-m NAME -e ENGINE`` finds the variant through that record, wherever the folder is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anechat.catalog import ModelEntry, scan_catalog
from anechat.catalog.provenance import ORIGIN_FILE, Origin, read_origin
from anechat.catalog.registered import registry_file
from anechat.catalog.variants import ModelGroup, group_models, resolve_variant
from anechat.cli.models import app as models_app
from anechat.engines.errors import ModelFormatError

ENV_VARS = ("ANECHAT_MODELS_DIR", "ANECHAT_DATA_DIR", "ANECHAT_CONFIG_DIR", "HF_HOME")


@pytest.fixture(scope="module")
def home(tmp_path_factory, tiny_model_dir):
    """A models folder with ``tiny`` and ``other`` (two copies of the tiny llama), and three
    conversions of ``tiny`` written with -o into folders whose names say nothing."""
    pytest.importorskip("coremltools")
    from anechat.catalog import resolve_model
    from anechat.convert.jobs import ConvertRequest, convert_model

    root = tmp_path_factory.mktemp("variants")
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in zip(ENV_VARS, ("models", "data", "config", "hf")):
            mp.setenv(var, str(root / sub))
        mp.delenv("HF_HUB_CACHE", raising=False)
        (root / "models").mkdir()
        shutil.copytree(tiny_model_dir, root / "models" / "tiny")
        shutil.copytree(tiny_model_dir, root / "models" / "other")
        tiny = resolve_model("tiny")
        convert_model(tiny, ConvertRequest(to="mlx", bits=4), root / "odd" / "alpha")
        convert_model(tiny, ConvertRequest(to="mlx", bits=8), root / "odd" / "beta")
        convert_model(tiny, ConvertRequest(to="coreml", context=64, batch=16, chunks=1), root / "odd" / "gamma")
        yield root


def test_every_conversion_records_its_source_and_options(home):
    origin = read_origin(home / "odd" / "gamma")
    assert origin is not None
    assert (origin.source_name, origin.source_path, origin.engine) == ("tiny", str((home / "models" / "tiny").resolve()), "coreml")
    assert origin.options["context"] == 64 and origin.options["batch"] == 16 and "bits" not in origin.options
    assert origin.source_config_sha256 and origin.converter.startswith("anechat ")
    assert read_origin(home / "odd" / "alpha").options == {"bits": 4}
    info = CliRunner().invoke(models_app, ["info", "gamma"], env={"COLUMNS": "200"}).stdout.splitlines()
    assert any(line.split() == ["made", "from", "tiny", f"({origin.source_path})"] for line in info)


def test_convert_with_o_registers_the_folder_so_the_catalog_lists_it(home):
    registered = json.loads(registry_file().read_text())["paths"]
    assert {Path(p).name for p in registered} == {"alpha", "beta", "gamma"}
    names = {e.name for e in scan_catalog().entries}
    assert {"tiny", "other", "alpha", "beta", "gamma"} <= names


def test_m_name_e_coreml_finds_the_core_ml_variant_through_the_recorded_link(home):
    choice = resolve_variant("tiny", "coreml")
    assert choice.entry.path == home / "odd" / "gamma"
    assert choice.note == "using gamma (coreml, float16, ctx 64), the coreml variant of tiny"


def test_the_named_folder_is_used_as_it_is_when_the_engine_runs_it(home):
    assert resolve_variant("tiny", "mlx").entry.name == "tiny" and resolve_variant("tiny", "mlx").note == ""
    assert resolve_variant("alpha", "mlx").entry.name == "alpha"


def test_when_several_variants_match_the_recommended_one_is_taken_and_said(home):
    choice = resolve_variant("gamma", "mlx")  # from the Core ML variant back to MLX: tiny, alpha, beta
    assert choice.entry.name == "tiny"  # the source itself comes first
    assert choice.note == "using tiny (mlx, float32) — 3 mlx variants of tiny; pick one with -m PATH"


def test_no_variant_for_the_engine_says_how_to_make_one(home):
    with pytest.raises(ModelFormatError) as caught:
        resolve_variant("other", "coreml")
    assert str(caught.value) == "no coreml variant of other here (it runs on mlx) — make one: anechat convert other --to coreml"


def test_models_list_shows_one_model_with_its_variants(home):
    result = CliRunner().invoke(models_app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["MODEL", "PARAMS", "ENGINE", "FORMAT", "QUANT", "CTX", "SIZE", "SOURCE", "VARIANT"]
    at = next(i for i, line in enumerate(lines) if line.startswith("tiny "))
    assert lines[at].split()[-1] == "source"
    variants = [line.split() for line in lines[at + 1 : at + 4]]
    assert [(v[0], v[-1]) for v in variants] == [("coreml", "gamma"), ("mlx", "alpha"), ("mlx", "beta")]
    assert lines[-1] == "3 models, 6 variants"  # the built-in one, tiny (4 folders), other


def test_a_single_model_and_variant_are_counted_in_the_singular(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("anechat.catalog.resolve.builtin_entry", lambda: (None, None))
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    assert CliRunner().invoke(models_app, ["list"]).stdout.splitlines()[-1] == "1 model, 1 variant"


def test_legacy_path_folders_converted_before_origins_were_recorded_group_by_their_names(home, tmp_path):
    """The legacy fallback: no anechat-source.json, so the naming convention NAME-coreml-… links them."""
    legacy = shutil.copytree(home / "odd" / "gamma", home / "models" / "tiny-coreml-ctx64-fp16")
    (legacy / ORIGIN_FILE).unlink()
    try:
        groups = {g.name: g for g in group_models(scan_catalog().entries)}
        assert "tiny-coreml-ctx64-fp16" in [v.name for v in groups["tiny"].variants]
        assert "tiny-coreml-ctx64-fp16" not in groups
        assert resolve_variant("tiny", "coreml").entry.name == "gamma"  # a recorded variant before a legacy one
        assert resolve_variant("tiny-coreml-ctx64-fp16", "mlx").entry.name == "tiny"
    finally:
        shutil.rmtree(legacy)


def _entry(name: str, engine: str, quantization: str, context: int, *, source: str | None = "base") -> ModelEntry:
    origin = Origin(source_name="base", source_path="/models/base", engine=engine) if source else None
    return ModelEntry(name=name, path=Path("/models") / name, source="anechat", format=engine, engines=(engine,),
                      quantization=quantization, context_length=context, origin=origin)


def test_the_recommended_variant_is_the_most_faithful_then_the_longest_context():
    group = ModelGroup("base", None, (
        _entry("a", "coreml", "LUT4", 2048), _entry("b", "coreml", "LUT6", 512),
        _entry("c", "coreml", "LUT6", 1024), _entry("d", "coreml", "float16", 256),
    ))
    assert [e.name for e in group.for_engine("coreml")] == ["d", "c", "b", "a"]


def test_a_variant_whose_source_is_gone_still_belongs_to_its_model_by_the_recorded_name():
    groups = group_models([_entry("x-anything", "coreml", "LUT6", 512), _entry("y", "mlx", "4-bit g64", 512)])
    assert [(g.name, g.source, [v.name for v in g.variants]) for g in groups] == [("base", None, ["x-anything", "y"])]


def test_a_moved_source_is_found_again_by_its_name_and_config_digest(home):
    """The source was moved (its recorded path is stale): its name and config.json digest still match."""
    gamma = next(e for e in scan_catalog().entries if e.name == "gamma")
    stale = gamma.with_(origin=Origin(**{**gamma.origin.__dict__, "source_path": "/nowhere/tiny"}))
    entries = [stale if e.name == "gamma" else e for e in scan_catalog().entries]
    assert "gamma" in [v.name for v in next(g for g in group_models(entries) if g.name == "tiny").variants]


def _anechat(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from anechat.cli.main import build_cli; sys.exit(build_cli()())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=dict(os.environ), timeout=600)


@pytest.mark.slow
def test_compare_runs_the_model_on_both_engines_through_its_variants_greedily(home):
    result = _anechat("compare", "Say hi", "-m", "tiny", "-e", "coreml", "-e", "mlx", "--json", "--max-tokens", "6")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["greedy"] is True and report["params"]["temperature"] == 0.0
    assert [Path(c["model_path"]).name for c in report["contestants"]] == ["gamma", "tiny"]
    assert "compare: greedy decoding (temperature 0)" in result.stderr
    assert "compare: tiny · coreml: using gamma (coreml, float16, ctx 64), the coreml variant of tiny" in result.stderr


@pytest.mark.slow
def test_compare_exits_non_zero_when_one_contestant_cannot_load(home):
    result = _anechat("compare", "Say hi", "-m", "other", "-e", "coreml", "-e", "mlx", "--json", "--max-tokens", "4")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    failed, answered = report["contestants"]
    assert failed["error"].startswith("no coreml variant of other here") and answered["stats"]["generation_tokens"] > 0
    assert result.stderr.splitlines()[-1].startswith("anechat: 1 of 2 contestants failed: other · coreml: no coreml variant")
