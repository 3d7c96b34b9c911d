"""The real Gemma 3 270M (``anechat models pull gemma3-270m``), when it is installed here.

Skipped with the command that installs it otherwise. Its tokenizer must encode like
SentencePiece run over the GGUF's own pieces, and the MLX engine must continue a plain
text sensibly (it is the pretrained model, not the instruction-tuned one).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from anechat.catalog.import_marker import read_marker
from anechat.hub.packaged import GEMMA3_270M, imported_model

pytestmark = pytest.mark.slow


FOLDER, WHY = imported_model(GEMMA3_270M)
needs_model = pytest.mark.skipif(FOLDER is None, reason=WHY)


def _sentencepiece(gguf_path: Path):
    """SentencePiece's own BPE encoder over the pieces, scores and types stored in the GGUF."""
    from gguf import GGUFReader
    from sentencepiece import SentencePieceProcessor
    from sentencepiece import sentencepiece_model_pb2 as pb

    fields = GGUFReader(str(gguf_path)).fields
    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.BPE
    proto.trainer_spec.byte_fallback = True
    spec = proto.normalizer_spec
    spec.name, spec.add_dummy_prefix, spec.remove_extra_whitespaces, spec.escape_whitespaces = "identity", False, False, True
    for text, score, kind in zip(*(fields[f"tokenizer.ggml.{k}"].contents() for k in ("tokens", "scores", "token_type"))):
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = text, score, kind
    return SentencePieceProcessor(model_proto=proto.SerializeToString())


@needs_model
def test_the_real_tokenizer_encodes_plain_text_like_sentencepiece():
    pytest.importorskip("sentencepiece")
    from anechat.engines.tokenizer import ChatTokenizer

    sp = _sentencepiece(Path(read_marker(FOLDER)["source"]))
    tok = ChatTokenizer(FOLDER)
    texts = [
        "The capital of France is Paris.",
        "Émoji 🙂🎉 and accents: café, naïve, Zürich, 東京, مرحبا, שלום.",
        "Unseen: zymurgy 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \x01\x7f",
        "Numbers 12345, 3.14159 and 2024-06-01; a=b+c*(d-e)/f",
    ]
    for text in texts:  # runs of spaces and newlines are whole user-defined pieces: not in these texts
        assert tok.encode(text) == sp.encode(text), text
        assert tok.decode(tok.encode(text)) == text


@needs_model
def test_the_real_model_continues_a_sentence_sensibly_on_the_mlx_engine():
    pytest.importorskip("mlx_lm")
    from anechat.engines.base import SamplingParams
    from anechat.engines.mlx.engine import MLXEngine

    config = json.loads((FOLDER / "config.json").read_text())
    assert config["model_type"] == "gemma3_text" and config["sliding_window"] == 512
    import mlx.core as mx
    from mlx_lm.utils import load_model
    from tokenizers import Tokenizer

    model, _ = load_model(FOLDER)
    tok = Tokenizer.from_file(str(FOLDER / "tokenizer.json"))
    logits = np.array(model(mx.array([tok.encode("The capital of France is").ids]))[0, -1].astype(mx.float32))
    top = [tok.id_to_token(int(i)) for i in np.argsort(-logits)[:5]]
    assert "▁Paris" in top, top
    del model

    engine = MLXEngine()
    session = engine.load(FOLDER)
    try:
        *_, stats = session.generate([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=8))
        assert stats.generation_tokens >= 1 and stats.finish_reason in ("stop", "length")
    finally:
        engine.unload()
