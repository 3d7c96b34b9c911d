"""Text that is safe to put on a terminal, and text read safely from stdin.

A prompt or a model's answer may hold control characters and escape sequences
(``ESC [ 2 J`` clears the screen, ``ESC ] 52`` writes the clipboard, ``ESC ] 8``
hides a link behind other text) or bidi overrides that make text read differently
from what it is. :func:`sanitize_for_terminal` turns each of them into something
visible and inert, and leaves everything else alone: newlines and tabs, emoji
(with their joiners and variation selectors), right-to-left scripts.

===========================  =====================================
what                         shown as
===========================  =====================================
C0 controls but ``\\t \\n``   control pictures: ESC ``␛``, NUL ``␀``, BEL ``␇``, CR ``␍``
``\\r\\n``                     ``\\n`` (a Windows line end is just a line end)
DEL                          ``␡``
C1 controls (U+0080–U+009F)  ``\\x9b`` (the letters, not the byte)
bidi embeddings/overrides/   ``\\u202e`` (the letters)
isolates (U+202A–E, 2066–9)
lone surrogates              ``�`` (U+FFFD; they cannot be printed)
===========================  =====================================

Since ESC itself is replaced, a whole sequence such as ``ESC[31m`` shows as
``␛[31m``: nothing after it is interpreted.
"""

from __future__ import annotations

import re
from typing import NamedTuple

REPLACEMENT = "\ufffd"

_UNSAFE = re.compile(r"\r\n|[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


def _visible(ch: str) -> str:
    if ch == "\r\n":
        return "\n"
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # U+2400 block: ␀ ... ␛ ... ␟
    if code == 0x7F:
        return "\u2421"  # ␡
    if code <= 0x9F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return REPLACEMENT
    return f"\\u{code:04x}"


def sanitize_for_terminal(text: str) -> str:
    """``text`` with every control character, escape sequence introducer and bidi
    override made visible (see the module's table); newlines, tabs, emoji and
    right-to-left text pass unchanged. Text with nothing to replace comes back as is."""
    if not isinstance(text, str):
        text = str(text)
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(lambda m: _visible(m.group()), text)


def has_unsafe_characters(text: str) -> bool:
    """Whether :func:`sanitize_for_terminal` would change ``text``."""
    return _UNSAFE.search(text) is not None


def json_terminal_safe(encoded: str) -> str:
    """Escape what ``json.dumps(..., ensure_ascii=False)`` leaves raw but a terminal would
    act on (DEL, C1 controls, bidi overrides, line separators, lone surrogates) as
    ``\\uXXXX``. The JSON stays valid and decodes to the same data (these characters only
    occur inside strings)."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", encoded)


class Decoded(NamedTuple):
    """Text decoded from bytes: ``text, replaced = decode_stdin_bytes(data)``.

    ``replaced`` counts the bytes that were not valid UTF-8 (each became one U+FFFD);
    ``message`` says so in one line, or is None."""

    text: str
    replaced: int = 0

    @property
    def message(self) -> str | None:
        if not self.replaced:
            return None
        n = self.replaced
        return f"{n} byte{'s' if n != 1 else ''} of the input {'were' if n != 1 else 'was'} not valid UTF-8 and became {REPLACEMENT}"


_ESCAPED_BYTE = re.compile(r"[\udc80-\udcff]")


def decode_stdin_bytes(data: bytes) -> Decoded:
    """Decode input bytes as UTF-8 (a leading BOM is dropped). Each byte that is not
    valid UTF-8 becomes U+FFFD and is counted in ``replaced``; nothing raises."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", errors="surrogateescape")
    replaced = len(_ESCAPED_BYTE.findall(text))
    if replaced:
        text = _ESCAPED_BYTE.sub(REPLACEMENT, text)
    return Decoded(text, replaced)
