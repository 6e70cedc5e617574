"""The inspector for what a tree of blocks adds: a block's fields (label, repeat, merge, dim, branches).

``entry_inspector_ui`` is the Build page's entry point for the selected entry: a block's fields here, a layer's
arguments (at any depth) in ``ui.inspector``. Keys hold the entry's id and the design's generation, as the
inspector's do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from builder.blocks import edit as tree
from builder.design import (
    MAX_REPEAT,
    BlockSpec,
    Design,
    DesignError,
    Merge,
    ParallelBlock,
    block_dim,
    find_entry,
    is_block,
)
from ui import inspector, state
from ui.stack import BLOCK_HINTS, act, commit_checked
from ui.text import plain
from ui.values import formula_ui


def entry_inspector_ui(design: Design, entry_id: str) -> None:
    """The selected entry's form: a block's fields, a top-level layer's arguments, or a nested layer's."""
    located = find_entry(design, entry_id)
    if located is None:
        return
    if is_block(located.entry):
        block_inspector_ui(design, located.entry)
    else:
        inspector.inspector_ui(design, entry_id)


# ---------------------------------------------------------------- blocks


def block_key(block_id: str, name: str) -> str:
    return f"block.{block_id}.{name}.{state.generation()}"


def block_field_changed(block_id: str, name: str, key: str, read: Callable[[Any], Any]) -> None:
    """Apply a block field at once, or leave the reason beside it (a resend of an older field changes nothing)."""
    if key != block_key(block_id, name):
        return
    design = state.current()
    located = find_entry(design, block_id)
    errors = st.session_state.setdefault("field_errors", {})
    if located is None or not is_block(located.entry):
        return
    try:
        value = read(st.session_state[key])
        if getattr(located.entry, name) != value:
            state.commit(tree.set_block(design, block_id, **{name: value}), from_field=True)
    except DesignError as error:
        errors[key] = str(error)
        return
    errors.pop(key, None)


def block_field(
    column: Any, block: BlockSpec, name: str, widget: Callable[..., Any], read: Callable, **options
) -> None:
    key = block_key(block.id, name)
    with column:
        widget(key=key, on_change=block_field_changed, args=(block.id, name, key, read), **options)
        error = st.session_state.get("field_errors", {}).get(key)
        if error:
            st.caption(f":red[{plain(error)}]")


def block_inspector_ui(design: Design, block: BlockSpec) -> None:
    """Label, repeat, merge and dim of the selected block, each applied as it changes; a Parallel's branches."""
    st.markdown(f"**{block.type} block** {plain(block.label)}: {BLOCK_HINTS[block.type]}")
    label_col, repeat_col, merge_col, dim_col = st.columns(4)
    block_field(
        label_col,
        block,
        "label",
        st.text_input,
        str.strip,
        label="label",
        value=block.label,
        placeholder="e.g. stage1",
        help="Names the block in the graph and its class in exported code",
    )
    block_field(
        repeat_col,
        block,
        "repeat",
        st.number_input,
        int,
        label="repeat",
        value=block.repeat,
        min_value=1,
        max_value=MAX_REPEAT,
        step=1,
        help="The block that many times in a row, each copy with its own parameters",
    )
    merge = getattr(block, "merge", None)
    if merge is not None:
        merges = list(Merge)
        block_field(
            merge_col,
            block,
            "merge",
            st.selectbox,
            Merge,
            label="merge",
            options=merges,
            index=merges.index(Merge(merge)),
            help="How the outputs of the block's stacks are combined",
        )
    if merge == Merge.CONCAT:
        block_field(
            dim_col,
            block,
            "dim",
            st.number_input,
            int,
            label="dim",
            value=block_dim(block),
            step=1,
            help="The dimension concat joins along (1: the channels of (N, C, ...))",
        )
    if isinstance(block, ParallelBlock):
        branches_ui(block)
    formula_ui(design, state.trace_of(design, run=state.ran(design)), block.id)
    st.caption("Click it on the board to open it and drop layers into its stacks; the breadcrumb goes back up.")


def branches_ui(block: ParallelBlock) -> None:
    """Add a branch; remove one (a Parallel keeps at least one)."""
    row = st.container(horizontal=True, gap="small")
    row.button(
        "Add branch",
        key=f"add_branch.{block.id}",
        icon=":material/add:",
        on_click=act,
        args=(lambda design: commit_checked(tree.add_branch(design, block.id)),),
    )
    for number in range(len(block.branches)) if len(block.branches) > 1 else ():
        row.button(
            f"Remove branch {number + 1}",
            key=f"remove_branch.{block.id}.{number}",
            icon=":material/close:",
            on_click=act,
            args=(lambda design, n=number: commit_checked(tree.remove_branch(design, block.id, n)),),
        )
