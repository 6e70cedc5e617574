"""The session's design, its undo history, the `design` URL parameter and cached traces.

Every page reads ``current()`` and changes the design only through ``commit()``, so undo/redo and the URL see
every edit. Widgets whose value mirrors the design carry ``generation()`` in their key: an edit made elsewhere
(undo, a drop, a fix, a loaded file) bumps it, so those widgets are re-created from the design.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import streamlit as st

from builder.design import Design, DesignError, design_key
from builder.inference import Trace
from builder.run import analyze
from builder.share import decode_design, encode_design

URL_PARAM = "design"
HISTORY_LIMIT = 200
SEED_EXAMPLE = "d2l-mlp"


def seed_design() -> Design:
    """The design a first visit opens with: the seed's MLP (examples/d2l-mlp.json)."""
    from builder.examples import load_example

    return load_example(SEED_EXAMPLE)


def init_state() -> None:
    """Set up the session once: the design from the URL if it holds one, else the seed."""
    ss = st.session_state
    if "design" in ss:
        return
    ss.undo, ss.redo, ss.generation, ss.notice = [], [], 0, None
    ss.ran_key = None
    ss.url_written = None
    text = st.query_params.get(URL_PARAM)
    ss.design = seed_design()
    if text:
        try:
            ss.design = decode_design(text)
            ss.url_written = text
        except DesignError as error:
            ss.notice = ("error", f"{error}. Opened the example design instead.")


def current() -> Design:
    """The design being edited."""
    return st.session_state.design


def generation() -> int:
    """Bumped whenever the design changes other than through its own inspector field."""
    return st.session_state.generation


def commit(design: Design, *, from_field: bool = False) -> None:
    """Make ``design`` current, remembering the old one for undo."""
    ss = st.session_state
    if design == ss.design:
        return
    ss.undo = [*ss.undo[-HISTORY_LIMIT + 1 :], ss.design]
    ss.redo = []
    ss.design = design
    if not from_field:
        ss.generation += 1


def undo() -> None:
    """Go back one edit."""
    ss = st.session_state
    if ss.undo:
        ss.redo = [*ss.redo, ss.design]
        ss.design = ss.undo[-1]
        ss.undo = ss.undo[:-1]
        ss.generation += 1


def redo() -> None:
    """Redo the edit undone last."""
    ss = st.session_state
    if ss.redo:
        ss.undo = [*ss.undo, ss.design]
        ss.design = ss.redo[-1]
        ss.redo = ss.redo[:-1]
        ss.generation += 1


def notify(kind: str, text: str) -> None:
    """Leave a message for the next run to show ("success", "error", ...)."""
    st.session_state.notice = (kind, text)


def pop_notice() -> tuple[str, str] | None:
    """The pending message, shown once."""
    notice, st.session_state.notice = st.session_state.notice, None
    return notice


def sync_url() -> None:
    """Write the design into the URL when it changed: one update per run, so one history entry per edit."""
    ss = st.session_state
    text = encode_design(ss.design)
    if text != ss.url_written or st.query_params.get(URL_PARAM) != text:
        st.query_params.update({URL_PARAM: text})
        ss.url_written = text


# Traces are immutable, so the cache hands out the same object instead of a pickled copy (st.cache_data would).
@st.cache_resource(max_entries=256, show_spinner=False)
def _trace(key: str, run: bool, _design: Design) -> Trace:
    return analyze(_design, run=run)


def trace_of(design: Design, run: bool) -> Trace:
    """The design's trace (``run``: the dummy forward pass; else the layers as built), cached by design."""
    return _trace(design_key(design), run, design)


def ran(design: Design) -> bool:
    """Whether the forward pass has been run on this very design (or live mode is on)."""
    ss = st.session_state
    return bool(ss.get("live")) or ss.ran_key == design_key(design)


def mark_ran(design: Design) -> None:
    """Remember that the user ran the forward pass on this design."""
    st.session_state.ran_key = design_key(design)


def partial(trace: Trace, count: int) -> Trace:
    """The trace as it stands after ``count`` layers, for the layer-by-layer animation."""
    done = count >= len(trace.layers)
    return replace(trace, layers=trace.layers[:count], error=trace.error if done else None)


@st.cache_resource(show_spinner="Warming up PyTorch's meta device...")
def warm_up() -> bool:
    """Pay the first meta-device forward pass (over a second) once per server, not on a user's first click."""
    from builder import sandbox

    # Start the custom-layer worker (it imports torch: 2-6 s) without waiting for it; a check that needs it
    # before it is ready waits then, and reports the same error if it cannot start.
    with contextlib.suppress(OSError, ValueError):
        sandbox.warm_up()
    analyze(seed_design(), run=True)
    return True
