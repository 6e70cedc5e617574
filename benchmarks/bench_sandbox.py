"""Benchmark: what the jail costs a custom-layer check, against the same check at the "process" level.

For each level, in one run: start the workers and time their start-up, then time warm checks of the book's
MyLinear layer (``sandbox.check_layer``) and a warm trace of the seed design with a custom layer; medians of
``REPEAT`` runs, the jail's extra cost beside them. Target: a warm check in the jail under 100 ms over the same
check at the process level. Run: ``python benchmarks/bench_sandbox.py`` (about half a minute).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder import sandbox  # noqa: E402
from builder.examples import load_example  # noqa: E402
from builder.sandbox import jail  # noqa: E402

REPEAT = 15
TARGET_MS = 100


def _median_ms(action) -> float:
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(mode: str) -> dict[str, float]:
    sandbox.shutdown()
    sandbox.configure(mode=mode, workers=1)
    start = time.perf_counter()
    sandbox.warm_up(wait=True)
    startup = time.perf_counter() - start
    design = load_example("my-linear")
    source = design.custom_layers[0].source  # the book's MyLinear
    check = _median_ms(lambda: sandbox.check_layer(source, "MyLinear", {"in_units": 20, "units": 8}))
    trace = _median_ms(lambda: sandbox.trace_in_worker(design))
    sandbox.shutdown()
    return {"start-up (s)": startup, "warm check (ms)": check, "warm trace of my-linear (ms)": trace}


def main() -> None:
    levels = ["process"] + (["jail"] if jail.probe() is None else [])
    figures = {level: measure(level) for level in levels}
    print(f"{'':32}" + "".join(f"{level:>12}" for level in levels) + ("  jail - process" if len(levels) > 1 else ""))
    for name in figures["process"]:
        row = [figures[level][name] for level in levels]
        extra = f"  {row[1] - row[0]:+.1f}" if len(row) > 1 else ""
        print(f"{name:32}" + "".join(f"{value:12.1f}" for value in row) + extra)
    if len(levels) > 1:
        cost = figures["jail"]["warm check (ms)"] - figures["process"]["warm check (ms)"]
        verdict = "meets" if cost < TARGET_MS else "misses"
        print(f"\nThe jail adds {cost:+.1f} ms to a warm check: {verdict} the {TARGET_MS} ms target.")
    else:
        print(f"\nNo jail here: {jail.probe()}")


if __name__ == "__main__":
    main()
