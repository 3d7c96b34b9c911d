"""Text that reaches the terminal is made safe; text read from stdin never fails to decode.

A prompt or a model's answer can carry escape sequences that would clear the
screen, retitle the window, write the clipboard or reorder what the reader sees.
sanitize_for_terminal makes each of them visible and inert; everything a person
writes on purpose (newlines, tabs, emoji, right-to-left scripts) passes untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest

from anechat.safe_text import (
    REPLACEMENT,
    decode_stdin_bytes,
    has_unsafe_characters,
    json_terminal_safe,
    sanitize_for_terminal,
)

ESC = "\x1b"
BIDI_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


# every Unicode control character (category Cc) lies below U+0100
CONTROLS = [chr(c) for c in range(0x100) if unicodedata.category(chr(c)) == "Cc" and chr(c) not in "\n\t"]


def _unsafe_left(text: str) -> list[str]:
    """Characters a terminal would act on that are still present in ``text``."""
    return [ch for ch in CONTROLS + BIDI_CONTROLS if ch in text]


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII, with punctuation: (a+b)*c = 42 ~ `code` [link](x) #tag",
        "line one\nline two\n\tindented with a tab\n",
        "emoji: 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 🏳️‍🌈 1️⃣ 🏴󠁧󠁢󠁳󠁣󠁴󠁿",  # skin tone, ZWJ family, flags, keycap, tag sequence
        "עברית: שלום עולם, ומספרים 123 באמצע",  # Hebrew, right to left, with digits
        "العربية: مرحبا بالعالم\u200f!",  # Arabic, with a right-to-left mark (allowed)
        "mixed: hello שלום world مرحبا 😀",
        "CJK 日本語のテキスト, combining é (e\u0301), ZWSP\u200b, NBSP\u00a0, Ω≈ç√∫",
    ],
)
def test_text_people_write_passes_unchanged(text):
    assert sanitize_for_terminal(text) == text
    assert not has_unsafe_characters(text)


@pytest.mark.parametrize(
    "raw, shown",
    [
        (f"{ESC}[31mred{ESC}[0m", "␛[31mred␛[0m"),  # colour (CSI SGR)
        (f"{ESC}[2J{ESC}[H", "␛[2J␛[H"),  # clear the screen, cursor home
        (f"{ESC}]0;pwned\x07", "␛]0;pwned␇"),  # set the window title (OSC ... BEL)
        (f"{ESC}]52;c;ZXZpbA==\x07", "␛]52;c;ZXZpbA==␇"),  # write the clipboard
        (f"{ESC}]8;;http://evil{ESC}\\click{ESC}]8;;{ESC}\\", "␛]8;;http://evil␛\\click␛]8;;␛\\"),  # hidden link
        ("\x9b31m", "\\x9b31m"),  # C1 CSI: one byte that some terminals read like ESC [
        ("\x9d0;t\x9c", "\\x9d0;t\\x9c"),  # C1 OSC ... ST
        ("nul\x00 bs\x08 del\x7f", "nul␀ bs␈ del␡"),
        ("safe\rEVIL", "safe␍EVIL"),  # a lone carriage return would overwrite the line
        ("windows\r\nline ends\r\n", "windows\nline ends\n"),
    ],
)
def test_escape_sequences_and_controls_become_visible(raw, shown):
    out = sanitize_for_terminal(raw)
    assert out == shown
    assert _unsafe_left(out) == []


def test_bidi_overrides_are_shown_not_obeyed():
    # "Trojan source": an override makes the code read differently from what it is
    raw = 'access = "user\u202e \u2066// admin\u2069 \u2066"'
    out = sanitize_for_terminal(raw)
    assert "\\u202e" in out and "\\u2066" in out and "\\u2069" in out
    assert not any(ch in out for ch in BIDI_CONTROLS)


def test_no_control_character_anywhere_in_unicode_survives():
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    out = sanitize_for_terminal(every)
    assert _unsafe_left(out) == []
    assert "\n" in out and "\t" in out and "😀" in out and "ש" in out


def test_lone_surrogates_become_replacement_characters_and_can_be_printed():
    raw = "bytes that were not UTF-8: \udcff\udc80 and a half pair \ud83d"
    out = sanitize_for_terminal(raw)
    assert out.count(REPLACEMENT) == 3
    out.encode("utf-8")  # would raise UnicodeEncodeError (a traceback) if one were left


def test_sanitizing_twice_changes_nothing_more():
    raw = f"{ESC}[1mbold\x9b\u202e\x00\r😀"
    once = sanitize_for_terminal(raw)
    assert sanitize_for_terminal(once) == once


def test_a_one_megabyte_paste_is_sanitized_whole():
    chunk = f"Paragraph with emoji 😀, שלום, and a colour {ESC}[32mgreen{ESC}[0m.\n"
    text = chunk * (1_000_000 // len(chunk) + 1)
    assert len(text) > 1_000_000
    out = sanitize_for_terminal(text)
    assert out.count("␛") == text.count(ESC)
    assert len(out) == len(text)  # each ESC became one visible character; nothing lost
    assert ESC not in out
    assert out.count("😀") == text.count("😀") and out.count("\n") == text.count("\n")
    big_clean = "a" * 1_000_000
    assert sanitize_for_terminal(big_clean) is big_clean  # clean text is not copied


def test_json_made_terminal_safe_still_decodes_to_the_same_text():
    data = {"answer": f"{ESC}[31m red \x9b C1 \x7f del \u202e rtl-override \u2028 sep 😀 שלום"}
    encoded = json_terminal_safe(json.dumps(data, ensure_ascii=False))
    assert json.loads(encoded) == data
    assert _unsafe_left(encoded) == [] and "\u2028" not in encoded
    assert "😀" in encoded and "שלום" in encoded  # readable, not \\u-escaped


# -- stdin --------------------------------------------------------------------------


def test_valid_utf8_decodes_with_nothing_replaced():
    decoded = decode_stdin_bytes("héllo 😀 שלום\n".encode())
    assert decoded == ("héllo 😀 שלום\n", 0)
    assert decoded.message is None


def test_each_invalid_byte_becomes_one_replacement_character_and_is_counted():
    latin1 = "café crème".encode("latin-1")  # two bytes that are not UTF-8
    text, replaced = decode_stdin_bytes(latin1 + b" \xff\xfe end \xe2\x82")  # two stray bytes, a cut-off character
    assert text == f"caf{REPLACEMENT} cr{REPLACEMENT}me {REPLACEMENT}{REPLACEMENT} end {REPLACEMENT}{REPLACEMENT}"
    assert replaced == 6
    assert decode_stdin_bytes(latin1).message == f"2 bytes of the input were not valid UTF-8 and became {REPLACEMENT}"


def test_one_bad_byte_is_reported_in_the_singular_and_a_bom_is_dropped():
    decoded = decode_stdin_bytes(b"\xef\xbb\xbfok \x80")
    assert decoded.text == f"ok {REPLACEMENT}"
    assert decoded.message == f"1 byte of the input was not valid UTF-8 and became {REPLACEMENT}"


def test_non_utf8_bytes_on_a_real_stdin_do_not_crash_a_process():
    code = (
        "from anechat.cli.run import read_prompt\n"
        "from anechat.safe_text import sanitize_for_terminal\n"
        "print(sanitize_for_terminal(read_prompt('-')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], input=b"bad \xff\xfe \x1b[2J bytes\n", capture_output=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert "2 bytes of the input were not valid UTF-8" in proc.stderr.decode()
    out = proc.stdout.decode("utf-8")
    assert f"bad {REPLACEMENT}{REPLACEMENT} ␛[2J bytes" in out
    assert b"\x1b" not in proc.stdout
