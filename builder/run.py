"""The entry point for callers that may hold untrusted code (the app, the CLI).

Designs with custom layers are traced in the sandbox worker process; built-in-only designs in this process.
"""

from __future__ import annotations

from builder.design import Design
from builder.inference import Trace, infer_shapes, inspect_design


def analyze(design: Design, run: bool = True) -> Trace:
    """Trace a design: the dummy forward pass when ``run``, else only build the layers (lazy ones uninitialized)."""
    if design.custom_layers:
        from builder import sandbox

        return sandbox.trace_in_worker(design, run=run)
    return infer_shapes(design) if run else inspect_design(design)
