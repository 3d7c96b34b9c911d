"""Tokenizer, chat template and streaming detokenizer shared by every backend.

Reads a model folder's ``tokenizer.json`` (Hugging Face ``tokenizers``),
``tokenizer_config.json`` / ``chat_template.jinja`` (the chat template and special
tokens) and ``generation_config.json`` / ``config.json`` (stop tokens). It does
not import ``transformers``: loading stays fast and identical for both engines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Sequence

from anechat.engines.errors import ModelFormatError

# End-of-turn markers of common chat formats; any that exist in the vocabulary stop generation.
END_OF_TURN_TOKENS = (
    "<|im_end|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<end_of_turn>",
    "<|end|>",
    "</s>",
)

# Used only when a model ships no chat template at all.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"{path} is not valid JSON ({exc})", hint="re-download or re-convert the model") from exc


def _token_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):  # {"content": "<s>", ...} in older configs
        content = value.get("content")
        return content if isinstance(content, str) else None
    return None


def _as_id_list(value: object) -> list[int]:
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value if isinstance(v, int)]
    return []


class ChatTokenizer:
    """Encodes, decodes and renders the chat template of one model folder."""

    def __init__(self, folder: Path | str) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        tok_file = self.folder / "tokenizer.json"
        if not tok_file.is_file():
            raise ModelFormatError(
                f"{self.folder} has no tokenizer.json",
                hint="anechat needs a Hugging Face fast tokenizer next to the weights",
            )
        try:
            self._tok = Tokenizer.from_file(str(tok_file))
        except Exception as exc:  # tokenizers raises a bare Exception on bad files
            raise ModelFormatError(f"{tok_file} could not be read ({exc})", hint="re-download or re-convert the model") from exc
        config = _read_json(self.folder / "tokenizer_config.json")
        self.config = config
        self.bos_token = _token_text(config.get("bos_token"))
        self.eos_token = _token_text(config.get("eos_token"))
        self.chat_template, self.has_chat_template = self._find_template(config)
        self.stop_ids = self._find_stop_ids(config)
        self.eos_token_id = self.token_id(self.eos_token) if self.eos_token else None

    # -- vocabulary ---------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def token_id(self, text: str) -> int | None:
        return self._tok.token_to_id(text)

    def _find_template(self, config: dict) -> tuple[str, bool]:
        jinja = self.folder / "chat_template.jinja"
        if jinja.is_file():
            return jinja.read_text(encoding="utf-8"), True
        template = config.get("chat_template")
        if isinstance(template, list):  # [{"name": "default", "template": ...}, ...]
            named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
            template = named.get("default") or next(iter(named.values()), None)
        if isinstance(template, str) and template.strip():
            return template, True
        return CHATML_TEMPLATE, False

    def _find_stop_ids(self, config: dict) -> frozenset[int]:
        ids: set[int] = set()
        for name in ("generation_config.json", "config.json"):
            ids.update(_as_id_list(_read_json(self.folder / name).get("eos_token_id")))
        eos = _token_text(config.get("eos_token"))
        for text in (eos, *END_OF_TURN_TOKENS):
            if text:
                tid = self._tok.token_to_id(text)
                if tid is not None:
                    ids.add(tid)
        return frozenset(ids)

    # -- text <-> ids -------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` as written: special tokens in it are recognised, none are added."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        return self._tok.decode(list(ids), skip_special_tokens=skip_special)

    def detokenizer(self) -> "StreamingDetokenizer":
        return StreamingDetokenizer(self)

    # -- chat template --------------------------------------------------------------
    def render(self, messages: Iterable[dict], *, add_generation_prompt: bool = True) -> str:
        """The conversation as the model's chat template writes it: sandboxed, and
        bounded in time, output and ``range`` sizes (see anechat.engines.template_sandbox)."""
        from anechat.engines.template_sandbox import render_chat_template

        return render_chat_template(
            self.chat_template,
            messages=list(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=self.bos_token or "",
            eos_token=self.eos_token or "",
        )


class StreamingDetokenizer:
    """Turns a growing list of token ids into text deltas, never splitting a UTF-8 character.

    Keeps a small window of ids: decodes ``ids[prefix:]`` and ``ids[prefix:read]``
    and emits the difference once it no longer ends in U+FFFD (an incomplete byte
    sequence). Cost per token is two decodes of a few ids.
    """

    def __init__(self, tokenizer: ChatTokenizer) -> None:
        self._tok = tokenizer
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0
        self.text = ""

    def add(self, token_id: int) -> str:
        self.ids.append(token_id)
        prefix_text = self._tok.decode(self.ids[self._prefix : self._read])
        new_text = self._tok.decode(self.ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            delta = new_text[len(prefix_text) :]
            self._prefix = self._read
            self._read = len(self.ids)
            self.text += delta
            return delta
        return ""

    def flush(self) -> str:
        """Whatever is still held back at the end of a turn (an incomplete character stays out)."""
        prefix_text = self._tok.decode(self.ids[self._prefix : self._read])
        new_text = self._tok.decode(self.ids[self._prefix :])
        delta = new_text[len(prefix_text) :].rstrip("\ufffd") if len(new_text) > len(prefix_text) else ""
        self._prefix = self._read = len(self.ids)
        self.text += delta
        return delta
