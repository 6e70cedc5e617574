"""The Build page's real-values panel, and the parameter formula of a layer.

``values_ui`` lets the user feed a real input (random of the design's shape, or typed values such as the book's
``torch.tensor([1.0, 2, 3, 4, 5])``) through the whole stack on the CPU, and shows per layer a few output values
with their mean and std, then a few values of the chosen layer's parameters. A run happens when the user asks for
it; its result is cached by design and input, and shown while neither changes. Designs whose code the user has not
approved show nothing here (as ``state.trace_of`` builds nothing of them); designs with custom layers say that
real values are for built-in layers only until the sandbox runs them.

``formula_ui`` shows where a layer's parameter count comes from (``builder.formulas``); the inspector can call it.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from builder.design import Design, DType, design_key, find_entry, is_block
from builder.formulas import block_sum, design_formula, formula
from builder.summary import format_shape
from builder.trace import ParamInfo, Trace
from builder.values import (
    EXPLANATION,
    SHOWN,
    InputKind,
    LayerValues,
    TensorSummary,
    ValueInput,
    ValueRun,
    format_value,
    parse_values,
    run_values,
)
from ui import state, tables
from ui.text import plain

BOOK_INPUT = "torch.tensor([1.0, 2, 3, 4, 5])"
TOKEN_INPUT = "torch.tensor([[1, 5, 2, 7]])"  # token ids, for a design whose input is int64
RAN = "values.ran"  # the key (design and input) of the run the user last asked for
MAX_SEED = 2**31 - 1
SEED_HELP = "Seeds the weights and the random input: the same seed gives the same numbers."
TYPED_HELP = "A list of numbers, as torch.tensor takes it: [1.0, 2, 3], [[1, 2], [3, 4]]. Read as a literal, never run."


# ---------------------------------------------------------------- the formula of one layer


def formula_ui(design: Design, trace: Trace | None, layer_id: str) -> None:
    """Where the layer's parameter count comes from, as a sum of its tensors' shapes, with each term's origin."""
    layer = trace.layer(layer_id) if trace is not None else None
    located = find_entry(design, layer_id)
    if layer is None or located is None:
        return
    if is_block(located.entry):
        st.text(f"{located.entry.type}: {block_sum(trace, layer)}")
        st.caption("A block's parameters are its layers' parameters: select one of its layers to see its formula.")
        return
    shown = design_formula(located.entry, layer, design.input.dtype)
    st.text(shown.text())  # not st.code: its highlighter (1.5 MB of JavaScript) would delay a new visitor's page
    if shown.params or shown.buffers:
        with st.expander("Where each term comes from"):
            tables.table_ui(shown.rows())
            st.caption("Each parameter adds the product of its shape; buffers (running statistics) are not trained.")


# ---------------------------------------------------------------- the input


def _kind_label(dtype: DType) -> Any:
    def label(kind: InputKind) -> str:
        if dtype is DType.INT64 and kind is InputKind.RANDN:
            return "Random token ids (torch.randint)"
        return kind.value.capitalize()

    return label


def input_ui(design: Design) -> ValueInput | None:
    """The real input's controls; None while typed values cannot be read (the reason is shown)."""
    dtype = design.input.dtype
    kinds = [InputKind.RANDN, InputKind.TYPED] if dtype is DType.INT64 else list(InputKind)
    kind_col, seed_col = st.columns([3, 1])
    kind = kind_col.segmented_control(  # not st.radio: its code would delay a new visitor's page (ui.tables)
        "Input", kinds, key="values.kind", format_func=_kind_label(dtype), default=kinds[0]
    )
    seed = seed_col.number_input(
        "Seed", min_value=0, max_value=MAX_SEED, value=0, step=1, key="values.seed", help=SEED_HELP
    )
    kind = kind or InputKind.RANDN
    if kind is not InputKind.TYPED:
        st.caption(f"Shape {format_shape(design.input.shape)}, the design's input (set it above).")
        return ValueInput(kind, design.input.shape, dtype, seed=int(seed))
    example = TOKEN_INPUT if dtype is DType.INT64 else BOOK_INPUT
    text = st.text_input("Values", value=example, key=f"values.text.{dtype}", help=TYPED_HELP)
    try:
        typed = parse_values(text, dtype)
    except ValueError as error:
        st.caption(f":red[{plain(error)}]")
        return None
    st.caption(f"Shape {format_shape(tuple(typed.shape))}: the model is built for this input, lazy layers included.")
    return ValueInput(kind, tuple(typed.shape), dtype, text=text, seed=int(seed))


# ---------------------------------------------------------------- the run


def run_key(design: Design, value_input: ValueInput) -> str:
    """What decides a run's result: the design and every choice of the input."""
    spec = [value_input.kind, list(value_input.shape), value_input.dtype, value_input.text, value_input.seed]
    return json.dumps([design_key(design), spec])


@st.cache_resource(max_entries=32, show_spinner="Running real values on the CPU...")
def _values(key: str, _design: Design, _value_input: ValueInput, _session: str | None) -> ValueRun:
    return run_values(_design, _value_input, session=_session)


def _row(number: str, layer_id: str, layer_type: str, values: TensorSummary) -> dict[str, Any]:
    return {
        "#": number,
        "layer": layer_id,
        "type": layer_type,
        "output shape": format_shape(values.shape),
        "notes": "; ".join(values.notes()),
        "mean": format_value(values.mean),
        "std": "" if values.std is None else format_value(values.std),
        "min": format_value(values.minimum),
        "max": format_value(values.maximum),
        "values": values.preview(),
    }


def value_rows(run: ValueRun) -> list[dict[str, Any]]:
    """The input, then one row per layer that ran: shape, notes, mean, std, min, max, the first values."""
    rows = [_row("", "input", "", run.input)] if run.input is not None else []
    return rows + [_row(str(v.index + 1), v.path or v.id, v.type, v.output) for v in run.layers]


def _param_rows(layer: LayerValues) -> list[dict[str, Any]]:
    return [
        {
            "parameter": p.name,
            "shape": format_shape(p.values.shape),
            "values": p.values.preview(),
            "mean": format_value(p.values.mean),
            "std": "" if p.values.std is None else format_value(p.values.std),
        }
        for p in layer.params
    ]


def _label(layer: LayerValues) -> str:
    return f"{layer.index + 1} · {layer.type} ({layer.path or layer.id})"


def params_ui(design: Design, run: ValueRun, selected: str | None) -> None:
    """A few values of the chosen layer's parameters, with the formula of its count."""
    with_params = {layer.path or layer.id: layer for layer in run.layers if layer.params}  # paths are unique
    if not with_params:
        st.caption("No layer that ran has parameters.")
        return
    keys = list(with_params)
    index = next((i for i, layer in enumerate(with_params.values()) if layer.id == selected), 0)
    # Keyed by the Build page's selection, so picking a layer in the stack shows its parameters here.
    labels = {key: _label(layer) for key, layer in with_params.items()}
    chosen = st.selectbox(
        "Parameters of", keys, index=index, key=f"values.layer.{selected}", format_func=labels.__getitem__
    )
    layer = with_params.get(chosen) or with_params[keys[0]]
    st.dataframe(pd.DataFrame(_param_rows(layer)), hide_index=True, width="stretch")
    if layer.more_params:
        st.caption(f"... and {layer.more_params} more parameter tensors.")
        return
    located = find_entry(design, layer.id)
    params = located.entry.params if located is not None and not is_block(located.entry) else {}
    tensors = [ParamInfo(p.name, p.values.shape) for p in layer.params]
    count = formula(layer.type, params, tensors, inferred=dict(layer.inferred))
    st.caption(f"Parameter count: {count.text()}")


def results_ui(design: Design, run: ValueRun, selected: str | None) -> None:
    """The run's values per layer, what stopped it, and the chosen layer's parameters."""
    if run.problem:
        st.warning(plain(f"Real values: {run.problem}."), icon=":material/block:")
    if run.input is None or (run.problem and not run.layers):
        return
    st.dataframe(pd.DataFrame(value_rows(run)), hide_index=True, width="stretch")
    st.caption(
        f"Up to {SHOWN} values of each output (the first ones, row by row) and statistics of all of them; std as "
        f"tensor.std() computes it. The weights are freshly initialized with seed {run.seed}."
    )
    if run.layers:
        params_ui(design, run, selected)


def values_ui(design: Design, trace: Trace | None, selected: str | None = None) -> None:
    """The real-values panel: explanation, input, the Run with real values button, the results.

    Args:
        design: the current design.
        trace: its trace as the page shows it (None while its code waits for approval, or for an empty stack).
        selected: the Build page's selected layer id, whose parameters are shown first.
    """
    if trace is None or not design.layers or not state.code_approved(design):
        return
    st.subheader("Real values")
    st.caption(EXPLANATION)
    value_input = input_ui(design)
    clicked = st.button(
        "Run with real values",
        key="values.run",
        icon=":material/calculate:",
        disabled=value_input is None,
        help="Runs real numbers through every layer on the CPU (the meta device shows shapes only).",
    )
    if value_input is None:
        return
    key = run_key(design, value_input)
    if clicked:
        st.session_state[RAN] = key
    if st.session_state.get(RAN) == key:
        results_ui(design, _values(key, design, value_input, state.session_id()), selected)
    elif st.session_state.get(RAN):
        st.caption("The design or the input changed since the last run: run again to see its values.")
