"""The visual model builder (``streamlit run app.py``), opening on its Build page.

Build: drag layers into a stack, set their parameters and the input, run the dummy forward pass. The other pages
are in ``pages/``; every page sets itself up and writes the design back into the URL through ``ui.frame``.
"""

from __future__ import annotations

import streamlit as st

from builder.design import Design, DesignError, file_stem, find_entry
from builder.diagnose import Fix, LayerError
from builder.edit import apply_fix, set_name
from builder.export import class_name
from builder.summary import format_shape
from builder.trace import Trace
from ui import (
    block_inspector,
    frame,
    graph_view,
    inspector,
    results,
    review,
    second_input,
    shortcuts,
    stack,
    stack_buttons,
    state,
    tables,
    values,
)
from ui.text import plain

# ---------------------------------------------------------------- forward pass, graph, errors


def run_controls_ui(can_run: bool) -> tuple[bool, bool]:
    """The run button, its modes and the shortcuts' help, in rows that wrap rather than cut a label; returns (run
    clicked, animate layer by layer)."""
    buttons = st.container(horizontal=True, vertical_alignment="center")
    with buttons:
        clicked = st.button(
            "Run dummy forward pass",
            key="run_forward",
            type="primary",
            icon=":material/play_arrow:",
            disabled=not can_run,
            help="Ctrl+Enter" if can_run else "The design contains code: read it above and run it first.",
        )
        shortcuts.help_ui()
    modes = st.container(horizontal=True, vertical_alignment="center")
    with modes:
        mode = st.segmented_control(
            "Show the run",
            ["layer by layer", "instant"],
            default="layer by layer",
            key="animation",
            label_visibility="collapsed",
            width="content",
        )
        st.toggle("Live", key="live", help="Re-run the forward pass after every edit")
    return clicked, mode != "instant"


def view_trace(design: Design) -> Trace | None:
    """The forward pass if it was run on this design (or live mode is on), else the layers as built.

    None for an empty stack, and for a design whose code is waiting for approval (nothing of it is built).
    """
    if not design.layers:
        return None
    try:
        return state.trace_of(design, run=state.ran(design))
    except DesignError as error:
        st.error(plain(error), icon=":material/error:")
        return None


def graph_ui(design: Design, trace: Trace | None, animate: bool) -> None:
    """The graph, laid out on the server; when animating, it fills in one layer (or a few) at a time."""
    graph_view.graph_view_ui(design, trace, animate)


def fix_clicked(error: LayerError, fix: Fix) -> None:
    """Apply a suggested fix; the fixed design counts as run if the broken one was, so the graph updates."""
    design = state.current()
    was_run = state.ran(design)
    fixed = apply_fix(design, error, fix)
    state.commit(fixed)
    st.session_state[stack.SELECTED] = error.layer_id if find_entry(fixed, error.layer_id) else None
    if was_run:
        state.mark_ran(fixed)


def error_ui(trace: Trace | None) -> None:
    """The failing layer's explanation, with one button per fix (the certain ones first-class)."""
    error = trace.error if trace else None
    if error is None:
        return
    st.error(plain(error.message), icon=":material/error:")
    for position, fix in enumerate(error.fixes):
        label, kind = (f"Fix: {fix.description}", "primary") if fix.certain else (f"Or: {fix.description}", "secondary")
        st.button(
            label,
            key=f"fix.{error.layer_id}.{position}",
            type=kind,
            icon=":material/build:",
            on_click=fix_clicked,
            args=(error, fix),
        )


def status_ui(design: Design, trace: Trace | None) -> None:
    """One line saying what the graph shows and what to do next."""
    if trace is None or trace.error is not None:
        return
    if trace.ran:
        st.success(f"Output shape {format_shape(trace.output_shape)}: every layer ran.", icon=":material/check:")
    else:
        st.info("Shapes show as ? and lazy weights as <UninitializedParameter> until you run the forward pass.")


def name_changed(key: str) -> None:
    """Rename the design from its field (a resend of an older generation's field changes nothing)."""
    if key != name_key():
        return
    errors = st.session_state.setdefault("field_errors", {})
    try:
        state.commit(set_name(state.current(), st.session_state[key]), from_field=True)
    except DesignError as error:
        errors[key] = str(error)
        return
    errors.pop(key, None)


def name_key() -> str:
    return f"design_name.{state.generation()}"


def name_ui(design: Design) -> None:
    """The design's name, which the export's file and class are named after."""
    key = name_key()
    st.text_input(
        "Design name",
        value=design.name,
        key=key,
        on_change=name_changed,
        args=(key,),
        help=f"Names what you export: {file_stem(design)}.py, class {class_name(design)}",
    )
    error = st.session_state.get("field_errors", {}).get(key)
    if error:
        st.caption(f":red[{plain(error)}]")


def main() -> None:
    frame.start()
    tables.style_ui()  # once a run, for the page's HTML tables and totals
    stack.consume_drop()
    graph_view.consume_click(state.current())
    design = state.current()
    title_col, name_col = st.columns([3, 1], vertical_alignment="bottom")
    title_col.title("Build a model")
    with name_col:
        name_ui(design)
    st.caption("Drag layers into the stack, choose the input, then run a dummy forward pass to see every shape.")
    can_run = review.review_ui(design)
    inspector.input_ui(design)
    build_col, graph_col = st.columns([5, 4], gap="large")
    with build_col:
        offered = stack.palette_ui(design)
        stack.stack_ui(design, offered)
        stack_buttons.add_ui(design)
        st.subheader("Layer")
        selected = stack_buttons.layer_actions_ui(design)
        if selected:
            block_inspector.entry_inspector_ui(design, selected)
    with graph_col:
        clicked, animate = run_controls_ui(can_run)
        if clicked:
            state.mark_ran(design)
        trace = view_trace(design)
        status = st.container()
        graph_ui(design, trace, animate=clicked and animate)
        with status:
            status_ui(design, trace)
            error_ui(trace)
    results.results_ui(design, trace)
    second_input.second_input_ui(design, trace)
    values.values_ui(design, trace, selected)
    frame.finish()


main()
