"""The session's design, its undo history, the `design` URL parameter, approved code and cached traces.

Every page reads ``current()`` and changes the design only through ``commit()``, so undo/redo and the URL see
every edit. Widgets whose value mirrors the design carry ``generation()`` in their key: an edit made elsewhere
(undo, a drop, a fix, a loaded file) bumps it, so those widgets are re-created from the design.

Custom layers are code. Code that arrives with a design (a link, a file, an import) runs only once the user has
read it and approved it: ``trace_of`` returns None for a design holding code this session has not approved, so
no page can build its layers before that. Approval is by exact code (each custom layer's name and source), so
undo, redo or another copy of the design cannot carry new code past it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json

import streamlit as st

from builder import run as runner
from builder.design import CustomLayerSpec, Design, DesignError, design_key
from builder.fast_path import meta_only
from builder.share import decode_design, encode_design
from builder.trace import Trace

URL_PARAM = "design"
HISTORY_LIMIT = 200
SEED_EXAMPLE = "d2l-mlp"
BAD_LINK = "design link: the link cannot be read; copy the whole link again"


def seed_design() -> Design:
    """The design a first visit opens with: the seed's MLP (examples/d2l-mlp.json)."""
    from builder.examples import load_example

    return load_example(SEED_EXAMPLE)


def design_from_url() -> tuple[Design, str | None]:
    """The design the URL's link holds, or the seed and the reason the link could not be read."""
    text = st.query_params.get(URL_PARAM)
    if not text:
        return seed_design(), None
    try:
        design = decode_design(text)
        encode_design(design)  # every run writes the design back into the URL: it must survive that too
    except DesignError as error:
        return seed_design(), str(error)
    except Exception:  # a link is anyone's text: whatever it makes the decoder raise, open the seed
        return seed_design(), BAD_LINK
    return design, None


def init_state() -> None:
    """Set up the session once: the design from the URL if it holds one, else the seed.

    A link that cannot be read gives one message and the seed, and the URL is rewritten at once, so no rerun
    (and no reload) meets the bad link again.
    """
    ss = st.session_state
    if "design" in ss:
        return
    design, problem = design_from_url()
    ss.undo, ss.redo, ss.generation = [], [], 0
    ss.notice = ("error", f"{problem}. Opened the example design instead.") if problem else None
    ss.ran_key = None
    ss.approved_code = set(example_code())
    ss.url_written = None
    if problem:
        ss.url_written = encode_design(design)
        st.query_params[URL_PARAM] = ss.url_written
    ss.design = design  # last: a session is set up completely or not at all


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


# ---------------------------------------------------------------- approved code


def code_key(spec: CustomLayerSpec) -> str:
    """A custom layer's code, as approval knows it: a hash of its exact name and source."""
    return hashlib.sha256(json.dumps([spec.name, spec.source]).encode("utf-8")).hexdigest()


@functools.cache
def example_code() -> frozenset[str]:
    """The code of the project's own examples (examples/*.json): approved in every session."""
    from builder.examples import list_examples

    return frozenset(code_key(spec) for design in list_examples().values() for spec in design.custom_layers)


def unapproved(design: Design) -> tuple[CustomLayerSpec, ...]:
    """The design's custom layers whose code this session has not approved."""
    approved = st.session_state.get("approved_code", ())
    return tuple(spec for spec in design.custom_layers if code_key(spec) not in approved)


def code_approved(design: Design) -> bool:
    """Whether every custom layer of the design may run (a design without custom layers always may)."""
    return not unapproved(design)


def approve(*specs: CustomLayerSpec) -> None:
    """Let this code run for the rest of the session: the user read it and asked for it, or typed it."""
    ss = st.session_state
    ss.approved_code = {*ss.get("approved_code", ()), *(code_key(spec) for spec in specs)}


# ---------------------------------------------------------------- traces


# Traces are immutable, so the cache hands out the same object instead of a pickled copy (st.cache_data would).
@st.cache_resource(max_entries=256, show_spinner=False)
def _trace(key: str, run: bool, _design: Design, _session: str | None) -> Trace:
    return runner.analyze(_design, run=run, session=_session)


def trace_of(design: Design, run: bool) -> Trace | None:
    """The design's trace (``run``: the dummy forward pass; else the layers as built), cached by design.

    None while the design holds code the user has not approved: nothing of it is built, not even its layers.
    """
    if not code_approved(design):
        return None
    return _trace(design_key(design), run, design, session_id())


def session_id() -> str | None:
    """This browser session's id, for the sandbox's per-session cancelling and rate limits (None outside a run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return ctx.session_id if ctx is not None else None


def ran(design: Design) -> bool:
    """Whether the forward pass has been run on this very design (or live mode is on)."""
    ss = st.session_state
    return bool(ss.get("live")) or ss.ran_key == design_key(design)


def mark_ran(design: Design) -> None:
    """Remember that the user ran the forward pass on this design."""
    st.session_state.ran_key = design_key(design)


@st.cache_resource(show_spinner="Warming up PyTorch's meta device...")
def warm_up() -> bool:
    """Pay the first meta-device forward pass (over a second) once per server, not on a user's first click."""
    from builder import sandbox

    # Start the custom-layer worker (it imports torch: 2-6 s) without waiting for it; a check that needs it
    # before it is ready waits then, and reports the same error if it cannot start.
    with contextlib.suppress(OSError, ValueError):
        sandbox.warm_up()
    runner.analyze(seed_design(), run=True)  # its small layers run on the CPU (builder.fast_path)...
    with meta_only():  # ...so warm the meta device for big designs and layers without a FLOP formula
        runner.analyze(seed_design(), run=True)
    return True
