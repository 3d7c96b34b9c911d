"""Each family's chat format and stop token come from the model's own files, on the MLX engine:
Qwen 2.5 / Qwen 3 (ChatML, ``<|im_end|>``) and Gemma 3 (``<start_of_turn>``, ``<end_of_turn>``).

The tiny models answer their family's end-of-turn token first (every layer adds nothing and
only that token's LM-head row points along the hidden state), so a turn must end at once with
``stop`` and no text. The Qwen folders are the tiny llama re-labelled with Qwen's config,
biases / q-k norms and template; the Gemma one is imported from its GGUF (tests/tinygemma3.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from tinymodel import build_tiny_llama

from anechat.engines.base import GenerationStats, SamplingParams
from anechat.engines.registry import availability
from anechat.engines.tokenizer import ChatTokenizer

pytestmark = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")

QWEN25_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
QWEN3_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
)
HELLO = [{"role": "user", "content": "Hello! What is the capital of France?"}]


def _qwen(folder, family: str):
    """The tiny llama that always answers <|im_end|>, as a Qwen 2.5 or Qwen 3 checkpoint."""
    from safetensors.numpy import load_file, save_file

    build_tiny_llama(folder, always_text="<|im_end|>")
    config = json.loads((folder / "config.json").read_text())
    tensors = load_file(str(folder / "model.safetensors"))
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}.self_attn."
        if family == "qwen2":  # q/k/v biases
            for proj in ("q_proj", "k_proj", "v_proj"):
                tensors[p + proj + ".bias"] = np.zeros(tensors[p + proj + ".weight"].shape[0], np.float32)
        else:  # per-head q/k RMSNorm
            tensors[p + "q_norm.weight"] = np.ones(config["head_dim"], np.float32)
            tensors[p + "k_norm.weight"] = np.ones(config["head_dim"], np.float32)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config.update(model_type=family, architectures=["Qwen2ForCausalLM" if family == "qwen2" else "Qwen3ForCausalLM"])
    (folder / "config.json").write_text(json.dumps(config))
    tok = json.loads((folder / "tokenizer.json").read_text())
    ids = {t["content"]: t["id"] for t in tok["added_tokens"]}
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    tok_config.update(eos_token="<|endoftext|>", chat_template=QWEN25_TEMPLATE if family == "qwen2" else QWEN3_TEMPLATE)
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_config))
    # Qwen's own files name <|im_end|> as a stop token in generation_config only
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]]}))
    return folder


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    from tinygemma3 import build_tiny_gemma3

    from anechat.convert.gguf import import_gguf

    root = tmp_path_factory.mktemp("families")
    _, gguf = build_tiny_gemma3(root / "gemma3-src", always_token="<end_of_turn>", k_quants=False)
    return {
        "qwen2": _qwen(root / "qwen2", "qwen2"),
        "qwen3": _qwen(root / "qwen3", "qwen3"),
        "gemma3": import_gguf(gguf, root / "gemma3"),
    }


def _answer(folder, messages=HELLO):
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    session = engine.load(folder)
    try:
        *deltas, stats = session.generate(messages, SamplingParams(max_tokens=8))
        assert isinstance(stats, GenerationStats)
        return stats
    finally:
        engine.unload()


@pytest.mark.parametrize("family, stop", [("qwen2", "<|im_end|>"), ("qwen3", "<|im_end|>"), ("gemma3", "<end_of_turn>")])
def test_the_familys_end_of_turn_token_stops_the_answer(families, family, stop):
    tok = ChatTokenizer(families[family])
    assert tok.token_id(stop) in tok.stop_ids
    stats = _answer(families[family])
    assert (stats.finish_reason, stats.generation_tokens, stats.text) == ("stop", 1, "")


def test_qwen_25_prompts_use_its_own_template_with_its_default_system_prompt(families):
    prompt = ChatTokenizer(families["qwen2"]).render(HELLO)
    assert prompt == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHello! What is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )


def test_gemma_prompts_use_its_turn_format_with_the_model_role(families):
    prompt = ChatTokenizer(families["gemma3"]).render(HELLO + [{"role": "assistant", "content": "Paris."}, {"role": "user", "content": "Thanks"}])
    assert prompt == (
        "<bos><start_of_turn>user\nHello! What is the capital of France?<end_of_turn>\n"
        "<start_of_turn>model\nParis.<end_of_turn>\n<start_of_turn>user\nThanks<end_of_turn>\n<start_of_turn>model\n"
    )
