"""Rebuilds a SentencePiece BPE vocabulary (llama.cpp's ``llama`` tokenizer model: Gemma,
Llama 2, Mistral) as a Hugging Face ``tokenizer.json``.

The GGUF keeps SentencePiece's pieces, scores and piece types, not BPE merges.
SentencePiece's BPE encoder starts from characters (spaces written as ``▁``) and
repeatedly joins the adjacent pair whose joined piece has the highest score;
pieces of user-defined symbols are matched whole first and never joined; a piece
left that is not in the vocabulary becomes its UTF-8 bytes (``<0xNN>`` pieces,
"byte fallback"). A BPE whose merges are ranked by the score of the piece they
make does the same, which is how Hugging Face converts these tokenizers
(``SentencePieceExtractor``) and what :func:`build_spm_tokenizer` writes:

* merges: every split of a NORMAL piece into two NORMAL pieces, best score first;
* CONTROL / UNKNOWN pieces: special added tokens; USER_DEFINED ones: added tokens
  matched on the normalized text (SentencePiece matches them after ``" " -> "▁"``);
* ``tokenizer.ggml.add_space_prefix``: a ``▁`` before the text (Llama 2), or none (Gemma);
* decoding: ``▁`` back to spaces, byte pieces back to bytes.
"""

from __future__ import annotations

from anechat.engines.errors import ModelFormatError

from anechat.convert.gguf.reader import GGUFFile

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"  # ▁


def spm_merges(tokens: list[str], scores: list[float], types: list[int]) -> list[tuple[str, str]]:
    """BPE merges equivalent to SentencePiece's score-ordered joins, best first."""
    normal: dict[str, int] = {}
    for i, (text, kind) in enumerate(zip(tokens, types)):
        if kind == TOKEN_NORMAL:
            normal.setdefault(text, i)
    ranked = []
    for piece, pid in normal.items():
        if len(piece) < 2:
            continue
        for cut in range(1, len(piece)):
            left, right = piece[:cut], piece[cut:]
            lid, rid = normal.get(left), normal.get(right)
            if lid is not None and rid is not None:
                ranked.append((-scores[pid], pid, lid, rid, left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build_spm_tokenizer(gguf: GGUFFile):
    """The ``tokenizers.Tokenizer`` of this SentencePiece GGUF, token ids identical to the GGUF's."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tokens: list[str] = gguf.require("tokenizer.ggml.tokens")
    scores: list[float] = gguf.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
    types: list[int] = gguf.get("tokenizer.ggml.token_type") or [TOKEN_NORMAL] * len(tokens)
    if not (len(tokens) == len(scores) == len(types)):
        raise ModelFormatError(f"{gguf.path.name}: its token, score and type lists differ in length")
    vocab: dict[str, int] = {}
    for i, text in enumerate(tokens):
        vocab.setdefault(text, i)
    unk_id = gguf.get("tokenizer.ggml.unknown_token_id")
    unk = tokens[int(unk_id)] if unk_id is not None and 0 <= int(unk_id) < len(tokens) else None
    byte_fallback = TOKEN_BYTE in types
    model = models.BPE(
        vocab=vocab, merges=spm_merges(tokens, scores, types), unk_token=unk, fuse_unk=True, byte_fallback=byte_fallback
    )
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Replace(" ", SPACE)
    add_space_prefix = bool(gguf.get("tokenizer.ggml.add_space_prefix", True))
    if add_space_prefix:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="first", split=False)
    steps = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if add_space_prefix:
        steps.append(decoders.Strip(" ", 1, 0))
    tok.decoder = decoders.Sequence(steps)

    special = [
        AddedToken(tokens[i], special=True, normalized=False)
        for i, t in enumerate(types)
        if t in (TOKEN_CONTROL, TOKEN_UNKNOWN) and vocab[tokens[i]] == i
    ]
    plain = [
        AddedToken(tokens[i], special=False, normalized=True)
        for i, t in enumerate(types)
        if t == TOKEN_USER_DEFINED and vocab[tokens[i]] == i
    ]
    tok.add_special_tokens(special)
    tok.add_tokens(plain)
    for token in special + plain:
        if tok.token_to_id(token.content) != vocab[token.content]:
            raise ModelFormatError(f"{gguf.path.name}: added token {token.content!r} did not keep its id")

    bos_id = gguf.get("tokenizer.ggml.bos_token_id")
    if gguf.get("tokenizer.ggml.add_bos_token", True) and bos_id is not None and 0 <= int(bos_id) < len(tokens):
        bos = tokens[int(bos_id)]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, int(bos_id))]
        )
    return tok
