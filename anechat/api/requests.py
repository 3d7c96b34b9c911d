"""Request bodies -> typed requests. Every field is checked here, once, with a one-line
error naming the field (400); fields OpenAI defines that anechat does not do are refused,
unknown extra fields are ignored (clients send their own)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from anechat.api.errors import bad_param
from anechat.engines.base import Message, SamplingParams
from anechat.engines.errors import InvalidParameter

#: without max_tokens a turn runs until the model stops or its context is full
UNLIMITED_TOKENS = 1 << 30
MAX_STOPS = 4
ENGINE_SUFFIX = "@"


@dataclass(frozen=True)
class GenerationRequest:
    model: str  # the model asked for, without an @engine suffix
    engine: str | None  # the engine asked for (suffix or the `engine` field), or None
    params: SamplingParams
    stop: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    messages: tuple[Message, ...] = ()  # chat
    prompt: str | None = None  # completions: plain text ...
    prompt_ids: tuple[int, ...] = ()  # ... or token ids
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def is_chat(self) -> bool:
        return self.prompt is None and not self.prompt_ids


def _number(body: dict, name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_param(name, f"{name}={value!r} is invalid: use a number")
    return float(value)


def _integer(body: dict, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_param(name, f"{name}={value!r} is invalid: use an integer")
    return value


def _model(body: dict) -> tuple[str, str | None]:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_param("model", "model is missing: name a local model (GET /v1/models lists them)")
    name, sep, engine = model.strip().rpartition(ENGINE_SUFFIX)
    if not sep:
        name, engine = engine, ""
    field_engine = body.get("engine")
    if field_engine is not None and not isinstance(field_engine, str):
        raise bad_param("engine", f"engine={field_engine!r} is invalid: use an engine name")
    return name, (field_engine or engine or None)


def _params(body: dict) -> SamplingParams:
    temperature = _number(body, "temperature", 1.0)
    if temperature > 2:
        raise bad_param("temperature", f"temperature={temperature} is invalid: use a number in [0, 2] (0 = greedy)")
    max_tokens = _integer(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens")
    try:
        return SamplingParams(
            temperature=temperature,
            top_p=_number(body, "top_p", 1.0),
            top_k=_integer(body, "top_k") or 0,
            min_p=_number(body, "min_p", 0.0),
            repetition_penalty=_number(body, "repetition_penalty", 1.0),
            seed=_integer(body, "seed"),
            max_tokens=UNLIMITED_TOKENS if max_tokens is None else max_tokens,
        ).validate()
    except InvalidParameter as exc:
        param = str(exc).split("=", 1)[0]
        raise bad_param(param, str(exc)) from None


def _stop(body: dict) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS:
        raise bad_param("stop", f"stop is invalid: use a non-empty string or a list of up to {MAX_STOPS}")
    return tuple(stops)


def _refuse_unsupported(body: dict) -> None:
    n = body.get("n", 1)
    if n != 1:
        raise bad_param("n", f"n={n!r} is not supported: anechat answers with one choice (n=1)")
    for name in ("tools", "functions", "logprobs", "echo", "suffix"):
        if body.get(name) not in (None, False, [], ""):
            raise bad_param(name, f"{name} is not supported by anechat api")


def _content(index: int, content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: text only
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_param(f"messages[{index}].content", f"messages[{index}].content: only text parts are supported")
            texts.append(part["text"])
        return "".join(texts)
    raise bad_param(f"messages[{index}].content", f"messages[{index}].content is missing or not text")


def _messages(body: dict) -> tuple[Message, ...]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_param("messages", "messages is empty: send at least one message")
    out = []
    for i, item in enumerate(messages):
        if not isinstance(item, dict):
            raise bad_param(f"messages[{i}]", f"messages[{i}] is not an object with role and content")
        role = item.get("role")
        role = "system" if role == "developer" else role
        if role not in ("system", "user", "assistant"):
            raise bad_param(f"messages[{i}].role", f"messages[{i}].role={role!r} is invalid: use system, user or assistant")
        out.append(Message(role, _content(i, item.get("content"))))
    return tuple(out)


def _prompt(body: dict) -> tuple[str | None, tuple[int, ...]]:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str) and prompt:
        return prompt, ()
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in prompt):
        return None, tuple(prompt)
    raise bad_param("prompt", "prompt is empty or invalid: send one non-empty string (or a list of token ids)")


def parse_request(body: object, *, chat: bool) -> GenerationRequest:
    """A chat (``/v1/chat/completions``) or plain (``/v1/completions``) request."""
    if not isinstance(body, dict):
        raise bad_param("body", "the request body must be a JSON object")
    _refuse_unsupported(body)
    model, engine = _model(body)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_param("stream", f"stream={stream!r} is invalid: use true or false")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_param("stream_options", "stream_options must be an object")
    common = dict(
        model=model,
        engine=engine,
        params=_params(body),
        stop=_stop(body),
        stream=stream,
        include_usage=bool(options.get("include_usage")) and stream,
    )
    if chat:
        return GenerationRequest(**common, messages=_messages(body))
    prompt, ids = _prompt(body)
    return GenerationRequest(**common, prompt=prompt, prompt_ids=ids)
