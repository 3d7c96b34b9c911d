"""Rebuilds a Hugging Face fast tokenizer (tokenizer.json) from a GGUF file's vocabulary.

llama.cpp stores a byte-level BPE tokenizer ("gpt2" model) as three arrays —
``tokenizer.ggml.tokens`` (token text by id), ``tokenizer.ggml.merges`` and
``tokenizer.ggml.token_type`` — plus ``tokenizer.ggml.pre``, the name of the
pre-tokenizer regex set llama.cpp uses. Each supported name maps to the
``tokenizers`` pre-tokenizer that the original tokenizer.json had:

* ``smollm`` (and starcoder-like models): every digit on its own, then GPT-2's regex;
* ``gpt-2``: GPT-2's regex alone (runs of digits stay together);
* ``llama-bpe`` (llama 3): digits in groups of up to three, llama 3's regex;
* ``qwen2``: like llama 3, but every digit on its own.

CONTROL tokens become special added tokens, USER_DEFINED tokens plain added tokens.
A GGUF that embeds the original ``tokenizer.huggingface.json`` is used as-is; a
SentencePiece vocabulary (``llama`` model: Gemma, Llama 2) is rebuilt by
:mod:`anechat.convert.gguf.vocab_spm`.
"""

from __future__ import annotations

from typing import Any

from anechat.engines.errors import ModelFormatError
from anechat.engines.tokenizer import END_OF_TURN_TOKENS

from anechat.convert.gguf.reader import GGUFFile
from anechat.convert.gguf.vocab_spm import build_spm_tokenizer

#: llama.cpp tokenizer models anechat rebuilds: byte-level BPE and SentencePiece BPE
TOKENIZER_MODELS = ("gpt2", "llama")

TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED = 1, 3, 4

_LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: llama.cpp pre-tokenizer name -> the family of HF pre-tokenizers it stands for
PRE_TOKENIZERS = {
    "smollm": "digits+gpt2",
    "starcoder": "digits+gpt2",
    "refact": "digits+gpt2",
    "codeshell": "digits+gpt2",
    "gpt-2": "gpt2",
    "mpt": "gpt2",
    "olmo": "gpt2",
    "llama-bpe": "llama3",
    "llama3": "llama3",
    "smaug-bpe": "llama3",
    "qwen2": "qwen2",
    "stablelm2": "qwen2",
}


def _pre_tokenizer(pre: str, file_name: str):
    from tokenizers import Regex, pre_tokenizers

    family = PRE_TOKENIZERS.get(pre)
    if family is None:
        raise ModelFormatError(
            f"{file_name} uses the '{pre}' pre-tokenizer, which anechat cannot rebuild",
            hint=f"supported: {', '.join(sorted(PRE_TOKENIZERS))}",
        )
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=family in ("gpt2", "digits+gpt2"))
    if family == "gpt2":
        return byte_level, False
    if family == "digits+gpt2":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]), False
    regex = _LLAMA3_REGEX if family == "llama3" else _QWEN2_REGEX
    split = pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False)
    return pre_tokenizers.Sequence([split, byte_level]), family == "llama3"  # llama 3 ignores merges for whole words


def _special_text(tokens: list[str], gguf: GGUFFile, key: str) -> str | None:
    value = gguf.get(f"tokenizer.ggml.{key}_token_id")
    if value is None or not 0 <= int(value) < len(tokens):
        return None
    return tokens[int(value)]


def build_tokenizer(gguf: GGUFFile):
    """The ``tokenizers.Tokenizer`` of this GGUF, token ids identical to the GGUF's."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    embedded = gguf.get("tokenizer.huggingface.json")
    if embedded:
        return Tokenizer.from_str(embedded)
    kind = gguf.get("tokenizer.ggml.model")
    if kind == "llama":
        return build_spm_tokenizer(gguf)
    if kind != "gpt2":
        raise ModelFormatError(
            f"{gguf.path.name} has a '{kind}' tokenizer; anechat rebuilds these tokenizer models: {', '.join(TOKENIZER_MODELS)}",
            hint="use an MLX or Hugging Face copy of this model instead",
        )
    tokens: list[str] = gguf.require("tokenizer.ggml.tokens")
    types: list[int] = gguf.get("tokenizer.ggml.token_type") or [TOKEN_NORMAL] * len(tokens)
    merges = [tuple(m.split(" ", 1)) for m in gguf.require("tokenizer.ggml.merges")]
    if any(len(m) != 2 for m in merges):
        raise ModelFormatError(f"{gguf.path.name} has malformed BPE merges")
    pre_tokenizer, ignore_merges = _pre_tokenizer(str(gguf.get("tokenizer.ggml.pre") or "gpt-2"), gguf.path.name)

    vocab: dict[str, int] = {}
    for i, text in enumerate(tokens):
        vocab.setdefault(text, i)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False, ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    special = [AddedToken(tokens[i], special=True, normalized=False) for i, t in enumerate(types) if t == TOKEN_CONTROL]
    plain = [AddedToken(tokens[i], special=False, normalized=False) for i, t in enumerate(types) if t == TOKEN_USER_DEFINED]
    tok.add_special_tokens(special)
    tok.add_tokens(plain)
    for token in special + plain:
        if tok.token_to_id(token.content) != vocab[token.content]:
            raise ModelFormatError(f"{gguf.path.name}: added token {token.content!r} did not keep its id")

    bos = _special_text(tokens, gguf, "bos")
    if gguf.get("tokenizer.ggml.add_bos_token") and bos is not None:
        bos_id = vocab[bos]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def tokenizer_config(gguf: GGUFFile, tokenizer, context_length: int, fallback_template: str | None = None) -> dict[str, Any]:
    """tokenizer_config.json: special tokens and the chat template (read by ChatTokenizer and mlx-lm).

    The template is the GGUF's own; ``fallback_template`` (the family's) only when it has none.
    """
    tokens: list[str] = gguf.require("tokenizer.ggml.tokens")
    added = {
        str(tokenizer.token_to_id(t.content)): {
            "content": t.content,
            "lstrip": t.lstrip,
            "normalized": t.normalized,
            "rstrip": t.rstrip,
            "single_word": t.single_word,
            "special": t.special,
        }
        for t in tokenizer.get_added_tokens_decoder().values()
    }
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "bos_token": _special_text(tokens, gguf, "bos"),
        "eos_token": _special_text(tokens, gguf, "eos"),
        "unk_token": _special_text(tokens, gguf, "unknown"),
        "pad_token": _special_text(tokens, gguf, "padding"),
        "add_bos_token": bool(gguf.get("tokenizer.ggml.add_bos_token", gguf.get("tokenizer.ggml.model") == "llama")),
        "add_eos_token": bool(gguf.get("tokenizer.ggml.add_eos_token", False)),
        "clean_up_tokenization_spaces": False,
        "model_max_length": context_length,
    }
    template = gguf.get("tokenizer.chat_template")
    if isinstance(template, str) and template.strip():
        config["chat_template"] = template
    elif fallback_template:
        config["chat_template"] = fallback_template
    return config


def generation_config(gguf: GGUFFile) -> dict[str, Any]:
    """generation_config.json: bos and the ids that end an answer: eos, eot / eom when the GGUF
    names them, and the chat format's end-of-turn control tokens (Gemma's ``<end_of_turn>``),
    which llama.cpp also recognises by their text."""
    stops = []
    for key in ("eos", "eot", "eom"):
        value = gguf.get(f"tokenizer.ggml.{key}_token_id")
        if value is not None and int(value) not in stops:
            stops.append(int(value))
    tokens = gguf.get("tokenizer.ggml.tokens") or []
    types = gguf.get("tokenizer.ggml.token_type") or []
    ends = set(END_OF_TURN_TOKENS)
    for i, kind in enumerate(types):
        if kind == TOKEN_CONTROL and tokens[i] in ends and i not in stops:
            stops.append(i)
    config: dict[str, Any] = {}
    bos = gguf.get("tokenizer.ggml.bos_token_id")
    if bos is not None:
        config["bos_token_id"] = int(bos)
    if stops:
        config["eos_token_id"] = stops[0] if len(stops) == 1 else stops
    return config
