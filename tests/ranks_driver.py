"""Rank 0 of a real distributed MLX session, run as its own process by the tests in
tests/engines/test_mlx_distributed.py (``mx.distributed`` joins one ring per
process, so every scenario is a fresh process). Prints one JSON object: what it saw.

    python tests/ranks_driver.py SCENARIO MODEL_DIR HOSTS
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

from anechat.engines.base import CancelToken, GenerationStats, SamplingParams
from anechat.engines.mlx.distributed.engine import DistributedMLXEngine
from anechat.engines.mlx.distributed.hosts import plan_from
from anechat.engines.mlx.engine import MLXEngine

GREEDY = SamplingParams(max_tokens=24)
FIRST = [{"role": "user", "content": "hello there"}]


def answer(session, messages, params=GREEDY, cancel=None, after=None):
    """(token ids, final stats); ``after(n)`` is called at every token."""
    ids, stats = [], None
    for event in session.generate(messages, params, cancel):
        if isinstance(event, GenerationStats):
            stats = event
        else:
            ids.extend(event.token_ids)
            if after is not None:
                after(len(ids))
    return ids, stats


def conversation(session) -> dict:
    """Turn 1, turn 2 on top of it (prefix reuse), a cancelled turn, and a turn after it."""
    first, _ = answer(session, FIRST)
    second_msgs = FIRST + [{"role": "assistant", "content": session.last_stats.text}, {"role": "user", "content": "and then?"}]
    second, second_stats = answer(session, second_msgs)
    cancel = CancelToken()
    cut, cut_stats = answer(session, [{"role": "user", "content": "tell me a long story"}], SamplingParams(max_tokens=200), cancel, lambda n: n >= 3 and cancel.cancel())
    after, _ = answer(session, FIRST)
    return {
        "first": first, "second": second, "second_cached": second_stats.cached_tokens,
        "cut": len(cut), "cut_finish": cut_stats.finish_reason, "after_cancel": after,
    }  # fmt: skip


def follower_pids(engine) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(engine.followers.process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(pids) -> list[int]:
    import psutil

    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def main() -> None:
    scenario, model, hosts = sys.argv[1:4]
    out: dict = {}
    if scenario in ("equal", "conversation"):
        single = MLXEngine()
        out["single"] = conversation(single.load(model)) if scenario == "conversation" else {"first": answer(single.load(model), FIRST)[0]}
        out["single_weights"] = single.load(model).info.extra["weights_bytes"]
        single.unload()
    plan = plan_from(hosts, None, "pipeline")
    engine = DistributedMLXEngine(plan)
    for shard in ("pipeline", "tensor"):
        engine.plan = replace(plan, shard=shard)
        try:
            session = engine.load(model)
        except Exception as exc:  # a refusal is part of what the test reads
            out[shard] = {"error": str(exc)}
            continue
        if scenario == "kill":
            pids = follower_pids(engine)
            killed = {}

            def kill(n):
                if n == 5 and not killed:
                    import os, signal

                    os.kill(pids[-1], signal.SIGKILL)
                    killed["at"] = time.monotonic()

            _, stats = answer(session, FIRST, SamplingParams(max_tokens=400), after=kill)
            out["kill"] = {"finish": stats.finish_reason, "error": stats.error, "seconds": time.monotonic() - killed["at"]}
            time.sleep(1.0)
            out["kill"]["orphans"] = alive(pids)
            fallback = engine.load(model)  # the ranks are gone: this process alone
            out["kill"]["fallback"] = answer(fallback, FIRST)[0]
            out["kill"]["runtime"] = engine.available().runtime
            break
        whole = scenario == "conversation" and shard == "pipeline"
        run = conversation(session) if whole else {"first": answer(session, FIRST)[0]}
        report = engine.memory()
        run["ranks"] = report.details.get("ranks")
        run["runtime"] = engine.available().runtime
        out[shard] = run
    pids = follower_pids(engine)
    engine.shutdown()
    time.sleep(0.5)
    out["left_after_shutdown"] = alive(pids)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
