"""`anechat api` (issue 17), driven by the official `openai` client against a real
server process on 127.0.0.1 with the tiny model."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

openai = pytest.importorskip("openai")

ANECHAT = str(Path(sys.executable).parent / "anechat")
MODEL = "tiny-llama"


class ApiProcess:
    """A running `anechat api` on a free loopback port, its stderr in a file."""

    def __init__(self, tmp: Path, *args: str, env: dict | None = None) -> None:
        self.log_path = tmp / "server.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen([ANECHAT, "api", "--port", "0", *args], stdout=subprocess.DEVNULL, stderr=self._log, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 180
        while not (match := re.search(r"listening on (http://127\.0\.0\.1:\d+)/v1", self.log())):
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.1)
        self.url = match.group(1)

    def log(self) -> str:
        return self.log_path.read_text()

    def client(self, api_key: str = "none") -> "openai.OpenAI":
        return openai.OpenAI(base_url=self.url + "/v1", api_key=api_key, max_retries=0, timeout=120)

    def raw(self, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
        """(status, JSON body) of a hand-made request."""
        request = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def wait_for_log(self, pattern: str) -> re.Match:
        deadline = time.monotonic() + 60
        while not (match := re.search(pattern, self.log())):
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        return match

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self._log.close()


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    api = ApiProcess(tmp_path_factory.mktemp("api"), "-m", str(tiny_model_dir), "--max-queue", "4")
    yield api
    api.stop()
    assert "Traceback" not in api.log(), api.log()


@pytest.fixture(scope="module")
def client(server):
    return server.client()


def ask(client, text: str = "Hello there", **options):
    options.setdefault("temperature", 0)
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], **options)


# -- answers ------------------------------------------------------------------------


def test_a_chat_answer_comes_back_whole_with_usage_and_engine_figures(client):
    answer = ask(client, max_tokens=6)
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 6
    assert answer.usage.prompt_tokens > 5
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 6
    figures = answer.x_anechat
    assert figures["engine"] == "mlx" and figures["ttft_s"] > 0 and figures["decode_tps"] > 0
    assert figures["prompt_tokens_prefilled"] + figures["cached_tokens"] == answer.usage.prompt_tokens


def test_a_streamed_chat_sends_the_same_text_then_the_finish_reason_and_a_usage_chunk(client):
    whole = ask(client, "Stream this", max_tokens=8).choices[0].message.content
    chunks = list(ask(client, "Stream this", max_tokens=8, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8


def test_max_completion_tokens_is_the_same_limit_as_max_tokens(client):
    assert ask(client, max_completion_tokens=3).usage.completion_tokens == 3


def test_a_plain_prompt_is_completed_without_the_chat_template(client):
    completion = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=4, temperature=0)
    assert completion.object == "text_completion"
    assert completion.usage.completion_tokens == 4
    templated = ask(client, "Once upon a time", max_tokens=1).usage.prompt_tokens
    assert completion.usage.prompt_tokens < templated - 5  # no chat template around it


@pytest.mark.parametrize("stream", [False, True])
def test_an_answer_ends_before_its_stop_string(client, stream):
    full = ask(client, "Count with me", max_tokens=24).choices[0].message.content
    stop = full[len(full) // 2 : len(full) // 2 + 2]
    expected = full[: full.find(stop)]
    if stream:
        chunks = list(ask(client, "Count with me", max_tokens=24, stop=[stop], stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        answer = ask(client, "Count with me", max_tokens=24, stop=stop)
        text, finish = answer.choices[0].message.content, [answer.choices[0].finish_reason]
    assert text == expected
    assert finish == ["stop"]


def test_the_same_seed_gives_the_same_sampled_answer(client):
    def sample(seed: int) -> str:
        return ask(client, "Surprise me", max_tokens=16, temperature=1.0, seed=seed).choices[0].message.content

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


def test_the_models_list_names_the_loaded_model_with_its_engine(client):
    models = {m.id: m for m in client.models.list().data}
    assert models[MODEL].x_anechat["engines"] == ["mlx"]
    assert models[MODEL].x_anechat["loaded"] is True


def test_an_engine_suffix_or_field_picks_the_engine(client, server):
    answer = client.chat.completions.create(model=f"{MODEL}@mlx", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    assert answer.x_anechat["engine"] == "mlx"
    status, body = server.raw("/v1/chat/completions", json.dumps({"model": MODEL, "engine": "coreml", "messages": [{"role": "user", "content": "hi"}]}).encode())
    assert status == 422
    assert "no coreml variant" in body["error"]["message"] and "--to coreml" in body["error"]["message"]


# -- queueing, disconnects, the prompt cache ------------------------------------------


def test_two_concurrent_clients_are_both_answered_in_turn(server):
    answers: list = []

    def one(text: str) -> None:
        answers.append(ask(server.client(), text, max_tokens=120))

    threads = [threading.Thread(target=one, args=(t,)) for t in ("First client", "Second client")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert len(answers) == 2
    assert all(a.usage.completion_tokens == 120 for a in answers)
    assert max(a.x_anechat["queued_s"] for a in answers) > 0  # one waited for the other


def test_a_client_that_disconnects_mid_stream_stops_its_generation(client, server):
    stream = ask(client, "A long story please", max_tokens=400, stream=True)
    received = [chunk for _, chunk in zip(range(4), stream)]
    stream.close()
    assert len(received) == 4
    match = server.wait_for_log(r"finish=client gone .*tokens=\d+\+\d+->(\d+)")
    assert int(match.group(1)) < 400
    assert server.raw("/health")[0] == 200
    assert ask(client, max_tokens=2).usage.completion_tokens == 2


def test_a_growing_conversation_prefills_only_its_new_tokens(client):
    messages = [{"role": "system", "content": "You are a patient listener."}]
    figures = []
    for turn in range(8):
        messages.append({"role": "user", "content": f"This is turn {turn}, tell me more about it."})
        answer = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=8, temperature=0)
        figures.append(answer.x_anechat)
        messages.append({"role": "assistant", "content": answer.choices[0].message.content})
    first, last = figures[0], figures[-1]
    assert last["cached_tokens"] > 8 * first["prompt_tokens_prefilled"] // 2
    assert last["prompt_tokens_prefilled"] < 2 * first["prompt_tokens_prefilled"]
    assert last["prompt_tokens_prefilled"] < last["cached_tokens"] / 4


def alternate(client, turns: int) -> dict[str, list[dict]]:
    """Two conversations growing in turn (A, B, A, B, ...): each answer's x_anechat and usage."""
    talks = {name: [{"role": "system", "content": f"You help with {topic}."}] for name, topic in (("A", "gardening"), ("B", "astronomy"))}
    seen: dict[str, list[dict]] = {"A": [], "B": []}
    for turn in range(turns):
        for name, messages in talks.items():
            messages.append({"role": "user", "content": f"Question {turn} from {name}: what comes next?"})
            answer = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=6, temperature=0)
            seen[name].append({**answer.x_anechat, "usage_cached": answer.usage.prompt_tokens_details.cached_tokens, "prompt": answer.usage.prompt_tokens})
            messages.append({"role": "assistant", "content": answer.choices[0].message.content})
    return seen


def test_two_clients_alternating_conversations_each_keep_their_prompt_cache(client):
    for figures in alternate(client, 3).values():
        for before, now in zip(figures, figures[1:]):
            assert now["usage_cached"] == now["cached_tokens"] >= before["prompt"]  # all of its last turn was reused
            assert now["prompt_tokens_prefilled"] < now["cached_tokens"]


def test_with_one_session_per_model_alternating_conversations_evict_each_other(tiny_model_dir, tmp_path):
    api = ApiProcess(tmp_path, "-m", str(tiny_model_dir), "--sessions", "1")
    try:
        figures = alternate(api.client(), 2)
    finally:
        api.stop()
    for first, second in (figures["A"], figures["B"]):
        assert second["cached_tokens"] < first["prompt"] // 2  # only the shared template head survived
    assert "Traceback" not in api.log()


# -- bad requests ---------------------------------------------------------------------


def _chat_body(**fields) -> bytes:
    return json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **fields}).encode()


@pytest.mark.parametrize(
    "body, status, says",
    [
        (_chat_body(model="tiny-lama"), 404, "did you mean tiny-llama"),
        (_chat_body(temperature=-1), 400, "temperature"),
        (_chat_body(temperature="hot"), 400, "temperature"),
        (_chat_body(messages=[]), 400, "messages is empty"),
        (_chat_body(n=3), 400, "n=3"),
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (_chat_body(messages=[{"role": "user", "content": "x" * (1 << 20)}]), 413, "more than"),
        (_chat_body(messages=[{"role": "user", "content": "hello " * 800}]), 400, "context holds 512"),
    ],
    ids=["unknown-model", "negative-temperature", "text-temperature", "empty-messages", "several-choices", "malformed-json", "not-an-object", "1MB-body", "context-overflow"],
)
def test_a_bad_request_gets_its_status_and_one_line_in_openais_error_shape(server, body, status, says):
    got, answer = server.raw("/v1/chat/completions", body)
    assert got == status, answer
    error = answer["error"]
    assert says in error["message"] and "\n" not in error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    assert server.raw("/health")[0] == 200
    assert "Traceback" not in server.log()


def test_the_openai_client_raises_its_own_errors_for_bad_requests(client):
    with pytest.raises(openai.NotFoundError, match="no model named"):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="temperature"):
        ask(client, temperature=-0.5)


def test_a_request_from_a_web_page_is_refused(server):
    status, answer = server.raw("/v1/models", headers={"Origin": "http://evil.example"})
    assert status == 403 and "web pages" in answer["error"]["message"]


def test_the_served_model_is_marked_in_use_so_it_cannot_be_removed(server, tiny_model_dir):
    from anechat.catalog.inuse import loaded_elsewhere

    assert server.proc.pid in loaded_elsewhere(tiny_model_dir)
    from anechat.catalog import ModelInUse, entry_for_path, remove_model

    with pytest.raises(ModelInUse, match=str(server.proc.pid)):
        remove_model(entry_for_path(tiny_model_dir))
    assert (tiny_model_dir / "config.json").is_file()


# -- API key, queue bound -------------------------------------------------------------


def test_a_non_loopback_address_is_refused_without_an_api_key():
    result = subprocess.run([ANECHAT, "api", "--host", "0.0.0.0"], capture_output=True, text=True, timeout=120, env={**os.environ, "ANECHAT_API_KEY": ""})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--api-key" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_api_key_check():
    from anechat.api.guard import Guard, bind_refusal

    assert bind_refusal("127.0.0.1", None) is None
    assert bind_refusal("0.0.0.0", "k") is None
    assert "api-key" in bind_refusal("192.168.1.5", None)
    guard = Guard(api_key="s3cret", loopback=False)
    assert guard.refusal({"Authorization": "Bearer s3cret"}, 10) is None
    assert guard.refusal({"Authorization": "Bearer wrong"}, 10).kind == "unauthorized"
    assert guard.refusal({}, 10).kind == "unauthorized"


def test_the_config_files_api_key_is_required_when_no_key_is_given(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.toml").write_text('api_key = "from-config"\n')
    api = ApiProcess(tmp_path, env={"ANECHAT_CONFIG_DIR": str(config), "ANECHAT_API_KEY": ""})
    try:
        assert "(API key required)" in api.log()
        with pytest.raises(openai.AuthenticationError):
            api.client().models.list()
        assert api.client("from-config").models.list().data
    finally:
        api.stop()
    assert "Traceback" not in api.log()


def test_with_a_key_every_request_must_carry_it_and_a_full_queue_answers_429(tiny_model_dir, tmp_path):
    api = ApiProcess(tmp_path, "-m", str(tiny_model_dir), "--api-key", "s3cret", "--max-queue", "0")
    try:
        with pytest.raises(openai.AuthenticationError):
            api.client().models.list()
        with pytest.raises(openai.AuthenticationError):
            api.client("wrong").models.list()
        keyed = api.client("s3cret")
        assert keyed.models.list().data
        stream = ask(keyed, "Keep going", max_tokens=400, stream=True)
        next(iter(stream))  # the model is busy with this one, and nobody may wait
        with pytest.raises(openai.RateLimitError) as refused:
            ask(keyed, max_tokens=2)
        assert int(refused.value.response.headers["Retry-After"]) >= 1
        stream.close()
    finally:
        api.stop()
    assert "Traceback" not in api.log()
