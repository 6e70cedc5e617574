"""Feed another input: after a run, a second shape through the same, now built model (the book's exercise).

A lazy layer infers its sizes at its first forward pass and keeps them, so a second input of another size fails
there with the explanation, and **Run a fresh pass** makes that shape the design's input, where the layers infer
again. The second trace comes from ``builder.run.analyze_then`` (designs with custom layers: in the sandbox).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from builder import run as runner
from builder.design import Design, DesignError, design_key
from builder.edit import parse_shape, set_input
from builder.summary import format_shape, summary_rows
from builder.trace import Trace
from ui import state
from ui.graph_view import graph_picture_ui
from ui.text import plain

SHAPE_KEY = "then_shape"  # the second input's shape field
ASKED = "then_asked"  # (design key, shape) of the last Feed another input, shown until the design changes
LEAD = (
    "Runs a second input through the same model the run above built. Its lazy layers keep the sizes they "
    "inferred from the first input {first}: another batch size passes, another feature size fails where a lazy "
    "layer inferred it. A fresh pass infers again."
)


# Traces are immutable: the cache hands out the same object, as ui.state's does.
@st.cache_resource(max_entries=64, show_spinner=False)
def _second(key: str, shape: tuple[int, ...], _design: Design, _session: str | None) -> Trace:
    return runner.analyze_then(_design, shape, session=_session)


def feed_clicked(design: Design) -> None:
    """Remember the shape asked for (a bad one is reported beside the field)."""
    try:
        shape = parse_shape(st.session_state.get(SHAPE_KEY, ""))
    except DesignError as error:
        st.session_state[ASKED] = (design_key(design), str(error))
        return
    st.session_state[ASKED] = (design_key(design), shape)


def fresh_clicked(design: Design, shape: tuple[int, ...]) -> None:
    """Make the second shape the design's input and run a fresh pass on it (undoable like any edit)."""
    fresh = set_input(design, shape)
    state.commit(fresh)
    state.mark_ran(fresh)
    st.session_state.pop(ASKED, None)


def feed_ui(design: Design) -> None:
    """The shape field and the button."""
    if SHAPE_KEY not in st.session_state:
        st.session_state[SHAPE_KEY] = ", ".join(map(str, design.input.shape))
    row = st.container(horizontal=True, vertical_alignment="bottom")  # wraps at 1024 px: the label stays whole
    row.text_input("Second input shape", key=SHAPE_KEY, help="Sizes separated by commas, batch first")
    row.button("Feed another input", key="then_feed", icon=":material/input:", on_click=feed_clicked, args=(design,))


def result_ui(design: Design, shape: tuple[int, ...]) -> None:
    """The second trace: its status, its table and its graph, labelled as the second input's."""
    try:
        second = _second(design_key(design), shape, design, state.session_id())
    except DesignError as error:
        st.error(plain(error), icon=":material/error:")
        return
    st.markdown(f"**Second input {format_shape(shape)}**, through the model the first input "
                f"{format_shape(design.input.shape)} built")  # fmt: skip
    if second.error is not None:
        st.error(plain(second.error.message), icon=":material/error:")
        st.button(
            f"Run a fresh pass on {format_shape(shape)}",
            key="then_fresh",
            icon=":material/refresh:",
            on_click=fresh_clicked,
            args=(design, shape),
            help="Makes this shape the design's input: a fresh model, whose lazy layers infer their sizes again.",
        )
    else:
        st.success(f"Second input: output shape {format_shape(second.output_shape)}.", icon=":material/check:")
    st.dataframe(pd.DataFrame(summary_rows(second)), hide_index=True, width="stretch", key="then_table")
    graph_picture_ui(set_input(design, shape), second, key="then_graph")  # drawn with its own input


def second_input_ui(design: Design, trace: Trace | None) -> None:
    """After a successful run: Feed another input, and the second input's results when asked for."""
    if trace is None or not trace.ran or trace.error is not None:
        return
    st.subheader("Feed another input")
    st.caption(LEAD.format(first=format_shape(design.input.shape)))
    feed_ui(design)
    asked = st.session_state.get(ASKED)
    if asked is None or asked[0] != design_key(design):
        return
    if isinstance(asked[1], str):
        st.error(plain(asked[1]), icon=":material/error:")
        return
    result_ui(design, asked[1])
