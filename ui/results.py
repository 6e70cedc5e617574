"""The Build page's results: the totals, the layer table and the lazy-parameters panel (HTML tables: ui.tables).

Every top-level entry has a row however far the run got (``builder.layer_table``); big counts are shown short
(``833.4 K``) with the full figure in the tooltip, so nothing is cut at the page's narrowest widths.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from builder.design import Design, DesignError, file_stem
from builder.layer_table import layer_rows, lazy_rows
from builder.summary import compact, format_shape
from builder.trace import Trace
from ui import state, tables

FLOPS_HELP = (
    "Floating-point operations of one forward pass, as torch.utils.flop_counter counts them: the matrix "
    "multiplications and convolutions (2 per multiply-add). Bias adds, normalization, pooling and activations are "
    "not counted, so the figure sits about 0.1% under twice torchinfo's mult-adds."
)
COLUMN_HELP = {
    "layer": "The layer as its constructor is called",
    "FLOPs": FLOPS_HELP,
    "status": "ran, failed, or not reached (the run stopped before it)",
}


def totals_ui(trace: Trace, rows: list[dict]) -> None:
    """Output shape, parameters, FLOPs and parameter memory; the full figures in each metric's tooltip."""
    params = sum(row["params"] or 0 for row in rows)
    unknown = sum(row["params"] is None for row in rows)
    untold = f" ({unknown} layers not counted: the run did not reach them)" if unknown else ""
    tables.stats_ui([
        tables.Stat("Output shape", format_shape(trace.output_shape)),
        tables.Stat("Parameters", compact(params, decimals=1), f"{params:,} parameters{untold}"),
        tables.Stat("FLOPs", compact(trace.total_flops, decimals=1), f"{trace.total_flops:,} FLOPs. {FLOPS_HELP}"),
        tables.Stat("Param. memory", f"{trace.param_bytes / 1e6:.2f} MB", "Parameter memory: their bytes"),
    ])  # fmt: skip


def built_trace(design: Design, trace: Trace) -> Trace | None:
    """The design built without running, for the entries a failed run did not reach; None if it reached all."""
    if trace.error is None or not trace.ran:
        return None
    try:
        return state.trace_of(design, run=False)
    except DesignError:
        return None


def table_ui(design: Design, rows: list[dict]) -> None:
    """The per-layer table (every entry, however far the run got) and its CSV."""
    tables.table_ui(rows, help=COLUMN_HELP)
    st.download_button(
        "Download table (CSV)",
        pd.DataFrame(rows).to_csv(index=False),
        file_name=f"{file_stem(design)}-summary.csv",
        mime="text/csv",
        icon=":material/table:",
        key="summary_csv",
    )


def lazy_ui(trace: Trace, built: Trace | None) -> None:
    """Each lazy parameter before and after the forward pass."""
    rows = lazy_rows(trace, built)
    if rows:
        tables.table_ui(rows)
    else:
        st.caption("No lazy layers in this design.")


def results_ui(design: Design, trace: Trace | None) -> None:
    """The totals, the layer table and the lazy-parameters panel."""
    if trace is None:
        return
    built = built_trace(design, trace)
    rows = layer_rows(design, trace, built)
    totals_ui(trace, rows)  # across the page: each figure has room at 1024 px
    table_col, lazy_col = st.columns([5, 4], gap="large")
    with table_col:
        st.subheader("Layers")
        table_ui(design, rows)
    with lazy_col:
        st.subheader("Lazy parameters")
        lazy_ui(trace, built)
