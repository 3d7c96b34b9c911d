"""LM head variants ANEMLL 0.3.5 writes for Qwen and Gemma, as real Core ML packages run by
the Core ML engine (the MIL executor here):

* the LM head split 16 ways (``logits1..logits16``), as for vocabularies over 8 x 16384;
* ``argmax_in_model: true``: the LM head returns, per vocabulary chunk, the chunk-local index
  of its best logit (``argmax_idx``, int32) and that logit (``argmax_val``, fp16); the reader
  maps the winner back to a token id with ``lm_head_chunk_sizes`` (as ANEMLL's chat.py does).

Both must decode the same greedy tokens as the plain conversion of the same tiny llama.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

pytest.importorskip("coremltools")

from anechat.engines.base import SamplingParams  # noqa: E402
from anechat.engines.coreml.engine import CoreMLEngine  # noqa: E402

pytestmark = pytest.mark.coreml

PROMPTS = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):"]


def greedy_ids(folder, text: str, n: int = 16) -> list[int]:
    engine = CoreMLEngine()
    session = engine.load(folder)
    try:
        events = list(session.generate_ids(session.tokenizer.encode(text), SamplingParams(max_tokens=n), ignore_eos=True))
        return [t for e in events[:-1] for t in e.token_ids]
    finally:
        engine.unload()


@pytest.fixture(scope="module")
def split16(tiny_model_dir, tmp_path_factory):
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml

    options = CoreMLConvertOptions(context_length=64, batch_size=16, num_chunks=1, split_lm_head=16)
    return convert_to_coreml(tiny_model_dir, tmp_path_factory.mktemp("coreml") / "tiny-split16", options)


def _argmax_head(tiny_model_dir, sizes: list[int], destination) -> None:
    """An LM head package with ANEMLL's argmax outputs, from the tiny llama's LM head weights."""
    import coremltools as ct
    import torch
    from safetensors.numpy import load_file

    weight = load_file(str(tiny_model_dir / "model.safetensors"))["lm_head.weight"]
    bounds = np.cumsum([0, *sizes])

    class ArgmaxHead(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.heads = torch.nn.ModuleList()
            for a, b in zip(bounds[:-1], bounds[1:]):
                conv = torch.nn.Conv2d(weight.shape[1], int(b - a), 1, bias=False)
                conv.weight.data = torch.from_numpy(weight[a:b].copy())[:, :, None, None]
                self.heads.append(conv)

        def forward(self, hidden_states):
            x = hidden_states.permute(0, 2, 1).unsqueeze(2)  # (1, H, 1, 1)
            idx, val = [], []
            for conv in self.heads:
                logits = conv(x).reshape(1, -1)
                best = torch.max(logits, dim=-1)
                idx.append(best.indices.to(torch.int32))
                val.append(best.values)
            return torch.cat(idx, dim=-1).reshape(-1), torch.cat(val, dim=-1).reshape(-1)

    with torch.no_grad():
        traced = torch.jit.trace(ArgmaxHead().eval(), (torch.zeros(1, 1, weight.shape[1]),), check_trace=False)
    model = ct.convert(
        traced,
        inputs=[ct.TensorType(name="hidden_states", shape=(1, 1, weight.shape[1]), dtype=np.float16)],
        outputs=[ct.TensorType(name="argmax_idx", dtype=np.int32), ct.TensorType(name="argmax_val", dtype=np.float16)],
        minimum_deployment_target=ct.target.macOS15,
        compute_precision=ct.precision.FLOAT16,
        skip_model_load=True,
    )
    model.save(str(destination))


@pytest.fixture(scope="module")
def argmax_folder(split16, tiny_model_dir, tmp_path_factory):
    folder = shutil.copytree(split16, tmp_path_factory.mktemp("coreml") / "tiny-argmax")
    meta_path = folder / "meta.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    params = meta["model_info"]["parameters"]
    head = folder / params["lm_head"]
    shutil.rmtree(head)
    _argmax_head(tiny_model_dir, list(params["lm_head_chunk_sizes"]), head)
    params["argmax_in_model"] = True
    meta_path.write_text(yaml.safe_dump(meta))
    return folder


def test_a_16_way_split_lm_head_decodes_like_the_8_way_one(split16, tiny_coreml_dir):
    params = yaml.safe_load((split16 / "meta.yaml").read_text())["model_info"]["parameters"]
    assert params["split_lm_head"] == 16 and len(params["lm_head_chunk_sizes"]) == 16
    for text in PROMPTS:
        assert greedy_ids(split16, text) == greedy_ids(tiny_coreml_dir, text), text


def test_an_argmax_in_model_lm_head_picks_the_same_tokens_as_full_logits(argmax_folder, split16):
    for text in PROMPTS:
        assert greedy_ids(argmax_folder, text) == greedy_ids(split16, text), text


def test_argmax_in_model_without_chunk_sizes_or_vocab_size_is_refused_at_load_in_one_line(argmax_folder, tmp_path):
    from anechat.engines.errors import ModelFormatError

    folder = shutil.copytree(argmax_folder, tmp_path / "no-sizes")
    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    for key in ("lm_head_chunk_sizes", "vocab_size"):
        meta["model_info"]["parameters"].pop(key, None)
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelFormatError, match="argmax_in_model needs model_info.parameters.lm_head_chunk_sizes") as err:
        CoreMLEngine().load(folder)
    assert "\n" not in str(err.value)


def test_a_sliding_window_shorter_than_the_context_bounds_the_conversation(split16, tmp_path):
    """Gemma 3 folders name their sliding window; without ANEMLL's rotate functions the reader
    stays inside it (every cached token is still seen), and says so in the context length."""
    folder = shutil.copytree(split16, tmp_path / "windowed")
    meta = yaml.safe_load((folder / "meta.yaml").read_text())
    meta["model_info"]["parameters"]["sliding_window"] = 24
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta))
    engine = CoreMLEngine()
    session = engine.load(folder)
    try:
        assert session.info.context_length == 24
        prompt = session.tokenizer.encode(PROMPTS[0])
        events = list(session.generate_ids(prompt, SamplingParams(max_tokens=64), ignore_eos=True))
        assert events[-1].finish_reason == "length" and len(prompt) + events[-1].generation_tokens == 24
    finally:
        engine.unload()
    assert greedy_ids(folder, PROMPTS[0], n=4) == greedy_ids(split16, PROMPTS[0], n=4)
