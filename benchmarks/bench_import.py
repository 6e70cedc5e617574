"""Benchmark: how long importing real model code takes, and how fast hostile input is turned into a note.

Warm, in-process ``import_code`` on each fixture of tests/fixtures/import/ (the book's models in both editions,
torchvision-style ResNets) and on the hostile pastes of tests/test_import_models.py (a power tower, a loop of
10^12 steps, unbounded recursion, a busy double loop, 90 nested parentheses, a list doubled 60 times).
Target: every hostile paste answered within one second. Run: ``python benchmarks/bench_import.py``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from builder.importer import ImportFailed, import_code  # noqa: E402
from tests.test_import_models import CASES, FIXTURES, HOSTILE, STATED  # noqa: E402

REPEAT = 5
TARGET_S = 1.0


def best_of(code: str, shape: tuple[int, ...] | None) -> float:
    """The fastest of REPEAT imports, in seconds (a failed import counts: it is the answer)."""
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        with contextlib.suppress(ImportFailed):  # a refusal is an answer too
            import_code(code, input_shape=shape)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    import_code("net = nn.Sequential(nn.Linear(2, 2))")  # warm: torch, the catalog
    print(f"{'fixture':28} {'import':>9}")
    for name, (_, shape) in CASES.items():
        code = (FIXTURES / f"{name}.py").read_text()
        print(f"{name:28} {best_of(code, None if name in STATED else shape) * 1000:7.0f} ms")
    print(f"\n{'hostile paste':28} {'answer':>9}")
    worst = 0.0
    for name, code in HOSTILE.items():
        elapsed = best_of(code, None)
        worst = max(worst, elapsed)
        print(f"{name:28} {elapsed * 1000:7.0f} ms")
    verdict = "ok" if worst < TARGET_S else "TOO SLOW"
    print(f"\nslowest hostile answer {worst:.2f} s (target < {TARGET_S:.0f} s): {verdict}")
    return 0 if worst < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
