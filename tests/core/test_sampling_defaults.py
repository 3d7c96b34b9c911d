"""Each model's sampling defaults: its generation_config.json where it sets them, else a
mild repetition penalty (greedy decoding of a small model repeats itself otherwise)."""

from __future__ import annotations

import json

from anechat.catalog.sampling_defaults import MILD_REPETITION_PENALTY, model_sampling_defaults
from anechat.chat.controller import ChatController
from anechat.engines.base import SamplingParams


def test_a_folder_without_generation_config_gets_a_mild_repetition_penalty(tmp_path):
    params, source = model_sampling_defaults(tmp_path, SamplingParams(max_tokens=64, seed=3))
    assert params == SamplingParams(max_tokens=64, seed=3, repetition_penalty=MILD_REPETITION_PENALTY)
    assert source == "repetition penalty 1.1 (anechat's default)"


def test_the_models_own_values_are_taken_and_bad_ones_skipped(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps(
        {"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 7, "repetition_penalty": 1.05, "eos_token_id": 2}
    ))
    params, source = model_sampling_defaults(tmp_path)
    assert (params.temperature, params.top_p, params.top_k, params.min_p, params.repetition_penalty) == (0.6, 0.95, 20, 0.0, 1.05)
    assert source == "generation_config.json: temperature, top_p, top_k, repetition_penalty"


def test_do_sample_false_means_greedy_and_a_broken_file_is_ignored(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"do_sample": False, "temperature": 0.7}))
    assert model_sampling_defaults(tmp_path)[0].temperature == 0.0
    (tmp_path / "generation_config.json").write_text("{not json")
    assert model_sampling_defaults(tmp_path)[0] == SamplingParams(repetition_penalty=MILD_REPETITION_PENALTY)


def _model_with_sampling(tiny_model_dir, folder, **sampling):
    import shutil

    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**config, "do_sample": True, **sampling}))
    return folder


def test_a_chat_that_takes_models_defaults_gets_each_loaded_models_own_until_the_person_sets_them(tmp_path, tiny_model_dir, home):
    first = _model_with_sampling(tiny_model_dir, tmp_path / "first", temperature=0.6, top_p=0.9)
    second = _model_with_sampling(tiny_model_dir, tmp_path / "second", temperature=0.3)
    controller = ChatController(params=SamplingParams(max_tokens=32), model_sampling=True)
    try:
        controller.load(str(first), "mlx")
        assert (controller.state.params.temperature, controller.state.params.top_p) == (0.6, 0.9)
        assert controller.state.params.max_tokens == 32  # the chat's own length stays
        controller.load(str(second), "mlx")
        assert controller.state.params.temperature == 0.3  # a model's defaults follow the model
        controller.set_params(controller.state.params.with_(temperature=1.2))
        assert controller.sampling_source == "set by you for this chat"
        controller.load(str(first), "mlx")
        assert controller.state.params.temperature == 1.2  # the person's choice stays
    finally:
        controller.unload()


def test_a_chat_that_does_not_take_models_defaults_keeps_the_parameters_it_was_given(tmp_path, tiny_model_dir, home):
    model = _model_with_sampling(tiny_model_dir, tmp_path / "model", temperature=0.6)
    controller = ChatController(params=SamplingParams(max_tokens=32))  # `anechat run`, compare, the API
    try:
        controller.load(str(model), "mlx")
        assert controller.state.params == SamplingParams(max_tokens=32)
    finally:
        controller.unload()
