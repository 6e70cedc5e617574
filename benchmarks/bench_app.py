"""Benchmark: how long the Build page takes, server side, to re-render after an edit of a big design.

Measured with streamlit's AppTest (the whole script run: widgets, the sortables stack, the graph's DOT, the
table), in a warm process: imports done, the meta device warmed, the page rendered once. Two designs: (a), the
150-layer VGG-like stack, and (c), ResNet-50 built from residual blocks. Three kinds of edit of the last layer:

1. a parameter edit in the default mode: a new design, so its layers are built afresh (not yet run);
2. undo/redo between designs already seen: the traces come from the cache;
3. a parameter edit in live mode: a new design and its full dummy forward pass.

Target: (1) and (2) under 300 ms. Run: ``python benchmarks/bench_app.py`` (about a minute).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.testing.v1 import AppTest  # noqa: E402

from benchmarks.designs import conv_mlp_design, resnet50_design  # noqa: E402
from builder.design import Design  # noqa: E402
from builder.share import encode_design  # noqa: E402

REPEAT = 7
TARGET_MS = 300


def _timed(action: Callable[[], AppTest]) -> float:
    start = time.perf_counter()
    at = action()
    elapsed = time.perf_counter() - start
    assert not at.exception, at.exception
    return elapsed * 1000


def _field(at: AppTest, layer_id: str, name: str):
    prefix = f"param.{layer_id}.{name}."
    return next(w for w in at.number_input if w.key.startswith(prefix))


def _median(label: str, times: list[float], target: bool) -> None:
    verdict = f" (target < {TARGET_MS} ms: {'ok' if max(times) < TARGET_MS else 'MISSED'})" if target else ""
    print(f"{label}: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms{verdict}")


def bench(name: str, design: Design) -> None:
    """The three edits of the design's last layer (a Linear), each timed REPEAT times."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["design"] = encode_design(design)
    at.run()
    assert at.session_state["design"] == design
    last = design.layers[-1].id
    at.button(key=f"select.{last}").click().run()
    at.run()
    print(f"design {name}: warm render of the unchanged page: {_timed(at.run):.0f} ms")

    edits = [_timed(lambda n=n: _field(at, last, "out_features").set_value(1000 + n).run()) for n in range(REPEAT)]
    _median("1. parameter edit (new design, layers built, not run)", edits, target=True)

    buttons = ["undo_button", "redo_button"] * REPEAT
    cached = [_timed(lambda key=key: at.button(key=key).click().run()) for key in buttons[:REPEAT]]
    _median("2. undo/redo between designs already traced (cache hits)", cached, target=True)

    at.toggle(key="live").set_value(True).run()
    live = [_timed(lambda n=n: _field(at, last, "out_features").set_value(2000 + n).run()) for n in range(REPEAT)]
    _median("3. parameter edit in live mode (new design, full forward pass)", live, target=False)


def main() -> None:
    bench("(a), 150 layers", conv_mlp_design())
    bench("(c), ResNet-50 in residual blocks", resnet50_design())


if __name__ == "__main__":
    main()
