"""What the app costs while it streams: decode tok/s with the app streaming the answer
into its chat pane (headless Textual, real rendering) ÷ the engine alone on the same
model, prompt and engine thread, measured side by side in one run. Target: ratio >= 0.95.

Single decode runs on a shared 2-core VM differ by ±5% with no UI at all, so the
script runs ``--repeat`` pairs (default 5), alternating which half goes first,
and reports the median of the pair ratios (``--repeat 1``: one pair).

Also prints the time from process start to the first painted screen, and the
share of one core the UI thread used while the answers streamed.

    python bench/tui_overhead.py [--model PATH] [--engine mlx] [--max-tokens 256] [--repeat 5]

Ends with one JSON line: {"ratio": ..., "first_paint_s": ..., ...}.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import psutil  # noqa: E402

PROCESS_START = psutil.Process().create_time()  # includes the BLAS re-exec, as a person would see it

PROMPT = (
    "Write a detailed guide to making bread at home: ingredients, kneading, proofing, "
    "shaping and baking, with a short Python snippet that converts grams to cups."
)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder or catalog name (default: the built-in default model)")
    ap.add_argument("--engine", default="mlx")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--repeat", type=int, default=5, help="pairs of runs (engine alone, app); the ratio is their median")
    return ap.parse_args()


def model_path(arg: str | None) -> str:
    if arg:
        return arg
    from anechat.convert.default_model import ensure_default_model

    return str(ensure_default_model())


def engine_alone(controller, prompt: str):
    """The same turn the app runs, straight on the session (no UI): the final stats."""
    from anechat.engines.base import GenerationStats

    controller.session.reset()
    stats = None
    for event in controller.session.generate([{"role": "user", "content": prompt}], controller.state.params):
        if isinstance(event, GenerationStats):
            stats = event
    return stats


async def wait_until(predicate, limit_s: float) -> None:
    """Poll without touching the app (pilot.pause would force extra screen updates)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {limit_s:.0f} s waiting for {predicate.__doc__}")
        await asyncio.sleep(0.05)


async def measure(args: argparse.Namespace) -> dict:
    from anechat.chat.controller import ChatController
    from anechat.engines.base import SamplingParams
    from anechat.tui.app import AnechatApp
    from anechat.safe_text import sanitize_for_terminal
    from anechat.tui.widgets.chat_input import ChatInput

    path = model_path(args.model)
    controller = ChatController(params=SamplingParams(temperature=0.0, max_tokens=args.max_tokens))
    app = AnechatApp(model=path, engine=args.engine, controller=controller, save_settings=False, history=False)  # a bench records no chats
    async with app.run_test(size=(120, 40)):

        def painted() -> bool:
            """the first paint"""
            return app.first_paint_at is not None

        def loaded() -> bool:
            """the model to load"""
            return controller.session is not None and not app.screen.loading

        await wait_until(painted, 60)
        first_paint_s = app.first_paint_at - PROCESS_START
        await wait_until(loaded, 600)
        if controller.session is None:
            raise SystemExit(f"could not load {path} on {args.engine}")

        # warm-up of both paths (first-call costs), then pairs: the engine alone on the
        # app's engine thread with the UI idle, and the same turn sent through the input box
        box = app.screen.query_one(ChatInput)

        def answered() -> bool:
            """the app's answer"""
            return controller.last_stats is not None and not app.screen.turn_view.streaming

        async def through_the_app(prompt: str):
            controller.session.reset()
            controller.new_chat()
            controller.last_stats = None
            box.load_text(prompt)
            box.submit()  # what Enter does
            await wait_until(answered, 600)
            return controller.last_stats

        controller.state.params = controller.state.params.with_(max_tokens=8)
        await app.engine_thread.run(engine_alone, controller, "Hello")
        await through_the_app("Hello")
        controller.state.params = controller.state.params.with_(max_tokens=args.max_tokens)
        pairs = []
        ui_cpu_s = ui_wall_s = 0.0
        for i in range(args.repeat):
            if i % 2:  # every other pair the app goes first: slow drift cancels out
                cpu, wall = time.thread_time(), time.perf_counter()
                in_app = await through_the_app(args.prompt)
                ui_cpu_s, ui_wall_s = ui_cpu_s + time.thread_time() - cpu, ui_wall_s + time.perf_counter() - wall
                alone = await app.engine_thread.run(engine_alone, controller, args.prompt)
            else:
                alone = await app.engine_thread.run(engine_alone, controller, args.prompt)
                cpu, wall = time.thread_time(), time.perf_counter()
                in_app = await through_the_app(args.prompt)
                ui_cpu_s, ui_wall_s = ui_cpu_s + time.thread_time() - cpu, ui_wall_s + time.perf_counter() - wall
            pairs.append((alone, in_app, app.screen.turn_view.last_turn))
        ratios = sorted(app_.decode_tps / alone_.decode_tps for alone_, app_, _ in pairs if alone_.decode_tps)
        alone, in_app, turn = pairs[len(pairs) // 2] if len(pairs) > 1 else pairs[0]
        shown = app.screen.pane.last_answer().text
        seconds = max(turn.finished_at - turn.started_at, 1e-9)
        frames_per_s, markdown_per_s = turn.frames / seconds, turn.markdown_frames / seconds
    return {
        "ratio": round(statistics.median(ratios), 4) if ratios else None,
        "ratios": [round(r, 4) for r in ratios],
        "first_paint_s": round(first_paint_s, 3),
        "decode_tps_app": round(in_app.decode_tps, 2),
        "decode_tps_engine": round(alone.decode_tps, 2),
        "tokens_app": in_app.generation_tokens,
        "tokens_engine": alone.generation_tokens,
        "frames_per_s": round(frames_per_s, 1),
        "ui_thread_core_share": round(ui_cpu_s / max(ui_wall_s, 1e-9), 3),
        "markdown_frame_cost_ms": round((turn.markdown_pacer.last_cost_s or 0.0) * 1000, 1),
        "markdown_gap_s": round(turn.markdown_pacer.gap_s, 2),
        "text_frame_cost_ms": round((turn.text_pacer.last_cost_s or 0.0) * 1000, 1),
        "markdown_renders_per_s": round(markdown_per_s, 1),
        "same_answer": in_app.text == alone.text,
        "answer_shown_whole": shown == sanitize_for_terminal(pairs[-1][1].text),
        "model": path,
        "engine": args.engine,
    }


def main() -> None:
    args = parse_args()
    result = asyncio.run(measure(args))
    print(f"first paint: {result['first_paint_s']:.2f} s after process start")
    print(
        f"decode: engine alone {result['decode_tps_engine']:.1f} tok/s ({result['tokens_engine']} tokens), "
        f"in the app {result['decode_tps_app']:.1f} tok/s ({result['tokens_app']} tokens)"
    )
    print(
        f"while the answer streamed the chat pane drew {result['frames_per_s']} frames/s, "
        f"{result['markdown_renders_per_s']} of them re-rendering Markdown"
    )
    print(
        f"the last Markdown frame cost {result['markdown_frame_cost_ms']} ms of UI CPU (next one after "
        f"{result['markdown_gap_s']} s); a text frame {result['text_frame_cost_ms']} ms"
    )
    print(f"the UI thread used {result['ui_thread_core_share']:.1%} of one core while the app answered (final renders included)")
    runs = f" (median of {len(result['ratios'])} pairs: {result['ratios']})" if len(result["ratios"]) > 1 else ""
    print(f"ratio {result['ratio']}{runs} (target >= 0.95)")
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
