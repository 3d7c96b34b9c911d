"""config.json is checked against the safetensors headers before any model is built: a
config that claims absurd sizes is refused in one line, at once, without allocating."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from anechat.engines.coreml.convert.source import read_spec
from anechat.engines.errors import ModelFormatError
from anechat.engines.mlx.loader import load_folder


@pytest.fixture
def folder_with(tiny_model_dir, tmp_path):
    def make(**changes):
        folder = tmp_path / "model"
        shutil.copytree(tiny_model_dir, folder)
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))
        return folder
    return make


@pytest.mark.parametrize("changes, says", [
    ({"num_hidden_layers": 10_000_000}, "num_hidden_layers is 10000000"),
    ({"vocab_size": 10**10}, "vocab_size is 10000000000"),
    ({"num_hidden_layers": 3}, "the weights hold 2 layers"),
    ({"vocab_size": 100_000}, "the embedding table has"),
    ({"hidden_size": 4096}, "hidden_size is 4096"),
    ({"hidden_size": "64"}, "hidden_size is 64"),
])
@pytest.mark.parametrize("reader", [load_folder, read_spec], ids=["mlx", "coreml-converter"])
def test_a_config_the_weights_do_not_back_is_refused_at_once(folder_with, changes, says, reader):
    folder = folder_with(**changes)
    started = time.monotonic()
    with pytest.raises(ModelFormatError) as caught:
        reader(folder)
    assert time.monotonic() - started < 5  # refused from the headers, nothing built
    assert says in str(caught.value) and "config.json" in str(caught.value)


def test_the_real_config_passes(tiny_model_dir):
    assert load_folder(tiny_model_dir).model is not None
