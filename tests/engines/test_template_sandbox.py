"""A model's chat template is untrusted code: it renders sandboxed, and a template that
loops forever, builds huge values or breaks ends in one ModelFormatError line, fast."""

from __future__ import annotations

import time

import pytest

from anechat.engines.errors import ModelFormatError
from anechat.engines.template_sandbox import TIME_LIMIT_S, render_chat_template

MESSAGES = [{"role": "user", "content": "Hi"}]


def refused(template: str) -> str:
    started = time.monotonic()
    with pytest.raises(ModelFormatError) as caught:
        render_chat_template(template, messages=MESSAGES)
    assert time.monotonic() - started < TIME_LIMIT_S * 5  # stopped, not run to the end
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_an_ordinary_template_renders():
    template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}"
    assert render_chat_template(template, messages=MESSAGES, add_generation_prompt=True) == "<user>Hi<assistant>"


def test_an_unbounded_range_is_refused():
    assert "range()" in refused("{% for i in range(10**9) %}x{% endfor %}")


NESTED = "{% for i in range(100000) %}{% for j in range(100000) %}BODY{% endfor %}{% endfor %}"


def test_nested_loops_that_write_nothing_stop_at_the_time_limit():
    assert "longer than" in refused(NESTED.replace("BODY", ""))


def test_nested_loops_that_write_stop_at_the_time_or_the_output_limit():
    assert "was stopped" in refused(NESTED.replace("BODY", "x"))  # whichever comes first on this machine


def test_huge_values_and_huge_output_are_refused():
    assert "at most" in refused("{{ 'x' * 10**9 }}")
    assert "too large" in refused("{{ 10 ** 100000000 }}")
    assert "output passed" in refused("{% for i in range(100000) %}{{ 'y' * 1000 }}{% endfor %}")


def test_sandbox_escapes_and_mutations_are_refused():
    refused("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    refused("{% set _ = messages.append(1) %}")


@pytest.mark.parametrize("template", [
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",  # endless recursion
    "{{ 1 / 0 }}",
    "{% for %}",  # not even a template
    "{{ raise_exception('roles must alternate') }}",
])
def test_any_failure_is_one_model_format_error_line(template):
    refused(template)
