"""Export page: the design as runnable PyTorch code, and every file it can leave as."""

from __future__ import annotations

import shutil

import graphviz
import pandas as pd
import streamlit as st

from builder.design import Design, DesignError, design_key, dump_design, file_stem
from builder.export import ExportStyle, export_code
from builder.graph import render_graph
from builder.summary import summary_rows
from builder.trace import Trace
from ui import frame, review, state
from ui.text import plain

STYLE_NAMES = {ExportStyle.SEQUENTIAL: "nn.Sequential", ExportStyle.MODULE: "nn.Module subclass"}
GRAPH_MIME = {"svg": "image/svg+xml", "png": "image/png"}


@st.cache_data(max_entries=64, show_spinner=False)
def _code(key: str, style: ExportStyle, materialize: bool, _design: Design, _trace: Trace | None) -> str:
    return export_code(_design, _trace, style=style, materialize=materialize)


@st.cache_data(max_entries=16, show_spinner=False)
def _graph_image(key: str, fmt: str, _graph: graphviz.Digraph) -> bytes:
    return _graph.pipe(format=fmt)


def options_ui(trace: Trace | None) -> tuple[ExportStyle, bool]:
    """Export style and whether lazy layers are written with their inferred sizes."""
    style_col, lazy_col = st.columns(2, vertical_alignment="bottom")
    style = style_col.radio(
        "Style", list(ExportStyle), format_func=STYLE_NAMES.__getitem__, key="export_style", horizontal=True
    )
    can_materialize = trace is not None and trace.ok
    materialize = lazy_col.toggle(
        "Materialize lazy layers (LazyLinear(256) -> Linear(20, 256))",
        key="export_materialize",
        disabled=not can_materialize,
        help=None if can_materialize else "Needs a forward pass that runs through: fix the design first.",
    )
    return style, materialize and can_materialize


def graph_download_ui(design: Design, trace: Trace | None) -> None:
    """The graph as SVG and PNG when Graphviz's `dot` is installed, else its DOT source."""
    graph = render_graph(design, trace)
    if shutil.which("dot") is None:
        st.download_button(
            "Graph (.gv)",
            graph.source,
            file_name=f"{file_stem(design)}.gv",
            key="graph_gv",
            help="Install Graphviz to download SVG and PNG; render this with `dot -Tsvg`.",
        )
        return
    key = design_key(design)
    for fmt, column in zip(GRAPH_MIME, st.columns(2), strict=True):
        column.download_button(
            f"Graph (.{fmt})",
            _graph_image(key, fmt, graph),
            file_name=f"{file_stem(design)}.{fmt}",
            mime=GRAPH_MIME[fmt],
            key=f"graph_{fmt}",
            width="stretch",
        )


def downloads_ui(design: Design, trace: Trace | None, code: str) -> None:
    """Every file the design can leave as."""
    code_col, json_col, csv_col, graph_col = st.columns([1, 1, 1, 2])
    code_col.download_button(
        "Code (.py)",
        code,
        file_name=f"{file_stem(design)}.py",
        mime="text/x-python",
        key="code_py",
        type="primary",
        width="stretch",
    )
    json_col.download_button(
        "Design (.json)",
        dump_design(design),
        file_name=f"{file_stem(design)}.json",
        mime="application/json",
        key="design_json",
        width="stretch",
    )
    if trace is not None:
        csv = pd.DataFrame(summary_rows(trace)).to_csv(index=False)
        csv_col.download_button(
            "Summary (.csv)",
            csv,
            file_name=f"{file_stem(design)}-summary.csv",
            mime="text/csv",
            key="summary_csv",
            width="stretch",
        )
    with graph_col:
        graph_download_ui(design, trace)


def forward_trace(design: Design) -> Trace | None:
    """The forward pass, for shape comments and materialized sizes; None if the design cannot be traced.

    Also None while the design's code waits for approval: the code is then exported without shape comments.
    """
    if not design.layers:
        return None
    try:
        return state.trace_of(design, run=True)
    except DesignError:
        return None


def main() -> None:
    frame.start()
    design = state.current()
    st.title("Export")
    st.caption("Runnable PyTorch code that never imports this builder: run it and it prints the output shape.")
    if not review.review_ui(design):
        st.caption("The code below has no shape comments until the design's code has run.")
    trace = forward_trace(design)
    if trace is not None and trace.error is not None:
        stops = "The forward pass stops at a layer, so the code has no shape comments."
        st.warning(f"{stops} {plain(trace.error.message)}")
    style, materialize = options_ui(trace)
    try:
        code = _code(design_key(design), style, materialize, design, trace if trace and trace.ok else None)
    except DesignError as error:
        st.error(f"This design cannot be exported yet: {plain(error)}")
    else:
        downloads_ui(design, trace, code)
        st.code(code, language="python", line_numbers=True)
    frame.finish()


main()
