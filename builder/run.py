"""The entry point for callers that may hold untrusted code (the app, the CLI).

Designs with custom layers are traced in the sandbox (``builder.sandbox``); built-in-only designs in this process.
"""

from __future__ import annotations

from builder.design import Design
from builder.inference import infer_shapes, infer_then, inspect_design
from builder.trace import Trace


def analyze(design: Design, run: bool = True, session: str | None = None) -> Trace:
    """Trace a design: the dummy forward pass when ``run``, else only build the layers (lazy ones uninitialized).

    ``session`` (the app's session id) lets the sandbox cancel a session's older job and limit its rate.
    """
    if design.custom_layers:
        from builder import sandbox

        return sandbox.trace_in_worker(design, run=run, session=session)
    return infer_shapes(design) if run else inspect_design(design)


def analyze_then(design: Design, then_shape: tuple[int, ...], session: str | None = None) -> Trace:
    """Run the design's input, then a second input of ``then_shape`` through the same, now built model.

    Returns the second trace (``builder.inference.infer_then``): a lazy layer keeps the sizes it inferred from
    the first input, so a second input of another size fails there, with the explanation. Designs with custom
    layers run both passes in one sandbox job.
    """
    if design.custom_layers:
        from builder import sandbox

        return sandbox.trace_in_worker(design, session=session, then=tuple(then_shape))
    return infer_then(design, tuple(then_shape))[1]
