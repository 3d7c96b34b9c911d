"""How long the default model takes to convert to Core ML and to load back.

Converts SmolLM2-135M-Instruct (fp16, then LUT6 on FFN + LM head) into fresh folders under
a temp dir, timing each step from the converter's progress reports, then loads each
folder three times in fresh processes: the first load compiles and writes the load cache,
the later ones are served from it. Also times a whole cold ``anechat run -e coreml`` (a new
process, cache warm). Reports medians and the machine's load average; ends with one JSON line.

    python bench/coreml_convert.py [--model PATH] [--variants fp16,lut6] [--keep DIR | --keep-in-models] [--convert-only]

``--convert-only`` times the conversions alone (no loads, no runs): run it a few times, in
fresh processes (the first conversion in a process pays the coremltools and torch imports),
and compare medians.
``--keep-in-models`` converts into the models dir, where bench/coreml_fidelity.py then
finds the folders instead of converting them again.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from coreml_models import VARIANTS, record_conversion, source_model, variant_folder  # noqa: E402

LOAD_SNIPPET = """
import json, sys, time
start = time.perf_counter()
from anechat.engines.coreml.engine import CoreMLEngine
session = CoreMLEngine().load(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - start, "cache": sorted(set(session.info.extra["load_cache"].values())),
                  "coremltools_imported": "coremltools" in sys.modules}))
"""


def convert(source: Path, out: Path, variant: str) -> dict:
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml

    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    convert_to_coreml(source, out, CoreMLConvertOptions(**VARIANTS[variant]), lambda m, f: marks.append((m, time.perf_counter())))
    total = time.perf_counter() - start
    steps: dict[str, float] = {}
    for (message, t0), (_, t1) in zip(marks, marks[1:]):
        kind = message.split(": ", 1)[-1].split(" ")[0]  # building / tracing / converting / palettizing / saving / ...
        steps[kind] = steps.get(kind, 0.0) + (t1 - t0)
    return {"seconds": round(total, 1), "steps": {k: round(v, 1) for k, v in steps.items()}}


def load_once(folder: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", LOAD_SNIPPET, str(folder)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_run(folder: Path) -> float:
    anechat = Path(sys.executable).parent / "anechat"
    start = time.perf_counter()
    subprocess.run([str(anechat), "run", "-e", "coreml", "-m", str(folder), "--max-tokens", "1", "Hi"], capture_output=True, check=True,
                   env={**os.environ, "NO_COLOR": "1"})
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    ap.add_argument("--variants", default="fp16,lut6")
    ap.add_argument("--keep", help="convert into this folder (kept) instead of a temp dir")
    ap.add_argument("--keep-in-models", action="store_true", help="convert into the models dir, for bench/coreml_fidelity.py")
    ap.add_argument("--convert-only", action="store_true", help="time the conversions only: no loads, no runs")
    args = ap.parse_args()
    source = source_model(args.model)
    scratch = None if args.keep or args.keep_in_models else tempfile.TemporaryDirectory(prefix="coreml-bench-")
    root = Path(args.keep) if args.keep else Path(scratch.name) if scratch is not None else None
    report: dict = {"model": source.name, "load_average_start": os.getloadavg()[0]}
    try:
        for variant in args.variants.split(","):
            out = variant_folder(source, variant) if args.keep_in_models else root / f"{source.name}-coreml-{variant}"
            conversion = convert(source, out, variant)
            if args.keep_in_models:
                record_conversion(out, variant, conversion["seconds"])
            load_average = round(os.getloadavg()[0], 2)
            print(f"{variant}: converted in {conversion['seconds']} s {conversion['steps']} (load average {load_average})", flush=True)
            if args.convert_only:
                report[variant] = {"conversion_s": conversion["seconds"], "conversion_steps_s": conversion["steps"], "load_average": load_average}
                continue
            loads = [load_once(out) for _ in range(3)]
            later = [x["seconds"] for x in loads[1:]]
            runs = [cold_run(out) for _ in range(3)]
            report[variant] = {
                "conversion_s": conversion["seconds"],
                "conversion_steps_s": conversion["steps"],
                "first_load_s": round(loads[0]["seconds"], 2),
                "cached_load_s_median": round(statistics.median(later), 2),
                "cached_load_served_from_cache": all(x["cache"] == ["hit"] for x in loads[1:]),
                "coremltools_imported_on_cached_load": any(x["coremltools_imported"] for x in loads[1:]),
                "cold_run_s_median": round(statistics.median(runs), 2),
            }
            print(f"{variant}: {report[variant]}", flush=True)
    finally:
        if scratch is not None:  # the converted folders are only kept with --keep / --keep-in-models
            scratch.cleanup()
    report["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
