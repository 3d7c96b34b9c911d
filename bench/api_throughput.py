"""`anechat api` against `mlx_lm.server`: the same model, prompt and client (the official
`openai` package, streaming), both servers started side by side in one run.

- decode tok/s, client clock: (completion tokens - 1) / (last chunk - first chunk);
  ratio anechat ÷ mlx_lm (target >= 0.95);
- time to first token, client clock; ratio anechat ÷ mlx_lm;
- an 8-turn growing conversation on each: TTFT of turn 8 ÷ turn 1 (anechat target <= 1.3;
  both reuse their prompt cache).

Warm-up first, then ``--runs`` alternating pairs (the order flips every pair); medians.

    python bench/api_throughput.py [--model PATH] [--gen-tokens 128] [--runs 3]

Ends with one JSON line.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."
QUESTIONS = [
    "Hi! I'm planning a trip to Lisbon. What should I see first?",
    "How many days would you recommend for the city itself?",
    "What local dishes should I try, and where?",
    "Is it easy to get around by public transport?",
    "What day trips are worth it from Lisbon?",
    "When is the best season to go?",
    "Any tips for staying safe and saving money?",
    "Can you sum up a three-day plan for me?",
]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="MLX model folder (default: the built-in default model)")
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--answer-tokens", type=int, default=48, help="tokens per answer in the 8-turn conversation")
    ap.add_argument("--runs", type=int, default=3)
    return ap.parse_args()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name: str, argv: list[str], port: int, log: Path) -> None:
        self.name, self.port = name, port
        self.log = log.open("w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=os.environ.copy())

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited: see {self.log.name}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/models", timeout=5).read()
                return
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"{self.name} did not start in {timeout} s")

    def client(self):
        import openai

        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key="none", max_retries=0, timeout=600)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def timed(client, model: str, messages: list[dict], max_tokens: int) -> dict:
    """One streamed answer, on this script's clock."""
    started = time.perf_counter()
    first = last = None
    text, usage = [], None
    stream = client.chat.completions.create(
        model=model, messages=messages, max_tokens=max_tokens, temperature=0, stream=True, stream_options={"include_usage": True}
    )
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            now = time.perf_counter()
            first = first or now
            last = now
            text.append(chunk.choices[0].delta.content)
    tokens = usage.completion_tokens if usage else len(text)
    span = (last - first) if first and last else 0.0
    return {
        "ttft_s": (first or time.perf_counter()) - started,
        "decode_tps": (tokens - 1) / span if span > 0 and tokens > 1 else 0.0,
        "tokens": tokens,
        "text": "".join(text),
    }


def conversation_ttfts(client, model: str, answer_tokens: int) -> list[float]:
    messages: list[dict] = [{"role": "system", "content": "You are a helpful travel assistant."}]
    ttfts = []
    for question in QUESTIONS:
        messages.append({"role": "user", "content": question})
        run = timed(client, model, messages, answer_tokens)
        ttfts.append(run["ttft_s"])
        messages.append({"role": "assistant", "content": run["text"]})
    return ttfts


def main() -> None:
    args = parse_args()
    if args.model:
        model_dir = Path(args.model).expanduser().resolve()
    else:
        from anechat.convert.default_model import ensure_default_model

        model_dir = ensure_default_model()
    logs = Path(tempfile.mkdtemp(prefix="api-bench-"))
    ports = {"anechat": free_port(), "mlx_lm": free_port()}
    servers = {
        "anechat": Server("anechat", [str(Path(sys.executable).parent / "anechat"), "api", "-m", str(model_dir), "-e", "mlx", "--port", str(ports["anechat"])], ports["anechat"], logs / "anechat.log"),
        "mlx_lm": Server("mlx_lm", [sys.executable, "-m", "mlx_lm", "server", "--model", str(model_dir), "--port", str(ports["mlx_lm"])], ports["mlx_lm"], logs / "mlx_lm.log"),
    }
    names = {"anechat": re.sub(r"[^a-z0-9.-]+", "-", model_dir.name.lower()).strip("-"), "mlx_lm": str(model_dir)}
    try:
        for server in servers.values():
            server.wait()
        clients = {k: s.client() for k, s in servers.items()}
        prompt = [{"role": "user", "content": PROMPT}]
        for key in servers:  # warm-up
            timed(clients[key], names[key], prompt, 16)
        if names["anechat"] not in {m.id for m in clients["anechat"].models.list().data}:
            names["anechat"] = str(model_dir)
        runs: dict[str, list[dict]] = {k: [] for k in servers}
        for i in range(args.runs):
            order = list(servers) if i % 2 == 0 else list(servers)[::-1]
            for key in order:
                runs[key].append(timed(clients[key], names[key], prompt, args.gen_tokens))
        turns = {k: conversation_ttfts(clients[k], names[k], args.answer_tokens) for k in servers}
    finally:
        for server in servers.values():
            server.stop()

    def med(key: str, field: str) -> float:
        return statistics.median(r[field] for r in runs[key])

    result = {
        "model": str(model_dir),
        "decode_tps_ratio": round(med("anechat", "decode_tps") / max(med("mlx_lm", "decode_tps"), 1e-9), 3),
        "ttft_ratio": round(med("anechat", "ttft_s") / max(med("mlx_lm", "ttft_s"), 1e-9), 3),
        "anechat_turn8_over_turn1": round(turns["anechat"][-1] / turns["anechat"][0], 3),
        "mlx_lm_turn8_over_turn1": round(turns["mlx_lm"][-1] / turns["mlx_lm"][0], 3),
        "anechat_decode_tps": round(med("anechat", "decode_tps"), 1),
        "mlx_lm_decode_tps": round(med("mlx_lm", "decode_tps"), 1),
        "anechat_ttft_s": round(med("anechat", "ttft_s"), 4),
        "mlx_lm_ttft_s": round(med("mlx_lm", "ttft_s"), 4),
        "anechat_turn_ttfts_s": [round(t, 4) for t in turns["anechat"]],
        "mlx_lm_turn_ttfts_s": [round(t, 4) for t in turns["mlx_lm"]],
        "tokens": {k: [r["tokens"] for r in runs[k]] for k in runs},
        "runs": args.runs,
        "logs": str(logs),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
