"""The step between code that came with a design and running it: show the code, ask, run it only on a click.

A design from a link, an uploaded file or an import may carry custom layers, and a custom layer is code that
runs (in the sandbox) as soon as its layers are built. Until the user approves it, ``state.trace_of`` builds
nothing, the pages show the design with ``?`` shapes, and this panel shows the code with one button to run it
and two ways to decline: remove those custom layers, or open the example design instead.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

from builder.design import CustomLayerSpec, Design
from builder.edit import remove_layer, without_custom_layer
from builder.sandbox import custom_code_enabled
from ui import state
from ui.text import plain

TALL_CODE_LINES = 20  # a longer layer scrolls inside a box of CODE_HEIGHT pixels, so the buttons stay in view
CODE_HEIGHT = 420


def without_code(design: Design, names: Iterable[str]) -> Design:
    """The design without these custom layers and without the stack's layers that use them."""
    names = set(names)
    for layer in [layer for layer in design.layers if layer.type in names]:
        design = remove_layer(design, layer.id)
    for name in sorted(names):
        design = without_custom_layer(design, name)
    return design


def approve_clicked() -> None:
    state.approve(*state.unapproved(state.current()))


def remove_clicked() -> None:
    design = state.current()
    names = [spec.name for spec in state.unapproved(design)]
    kept = without_code(design, names)
    removed = len(design.layers) - len(kept.layers)
    state.commit(kept)
    code = "them" if len(names) > 1 else "it"
    users = f" and the {removed} layer{'s' if removed > 1 else ''} of the stack using {code}" if removed else ""
    back = "them" if removed or len(names) > 1 else "it"
    state.notify("success", f"Removed {', '.join(names)}{users}. Undo brings {back} back.")


def example_clicked() -> None:
    state.commit(state.seed_design())
    state.notify("success", "Opened the example design. Undo brings the design with the code back.")


def code_ui(spec: CustomLayerSpec) -> None:
    """One layer's code, exactly as it would run."""
    st.markdown(f"**{plain(spec.name)}**")
    tall = len(spec.source.splitlines()) > TALL_CODE_LINES
    st.code(spec.source, language="python", line_numbers=True, height=CODE_HEIGHT if tall else "content")


def buttons_ui(can_run: bool) -> None:
    run_col, remove_col, example_col = st.columns(3)
    run_col.button(
        "Run this code",
        key="review.approve",
        type="primary",
        icon=":material/play_arrow:",
        on_click=approve_clicked,
        disabled=not can_run,
        help="Builds the design's layers in the sandbox, for this session; code changed later is asked about again",
        width="stretch",
    )
    remove_col.button(
        "Remove these custom layers",
        key="review.remove",
        icon=":material/delete:",
        on_click=remove_clicked,
        help="Also removes the stack's layers that use them (Undo brings them back)",
        width="stretch",
    )
    example_col.button(
        "Open the example instead",
        key="review.example",
        icon=":material/collections_bookmark:",
        on_click=example_clicked,
        width="stretch",
    )


def review_ui(design: Design) -> bool:
    """Ask before the design's code runs; returns True when it may run (approved, or no custom layers)."""
    specs = state.unapproved(design)
    if not specs:
        return True
    enabled = custom_code_enabled()
    with st.container(border=True, key="review"):
        st.warning(
            "**This design contains code: run it?** "
            + (
                "It came with the design (a link, a file or an import), not from you. Read it first: it runs in "
                "the sandbox, but run only code you trust. Until then the layers are not built and shapes show as ?."
                if enabled
                else "Custom code is turned off on this server, so it cannot run here: remove these layers, or "
                "open the design on your own machine."
            ),
            icon=":material/policy:",
        )
        for spec in specs:
            code_ui(spec)
        buttons_ui(can_run=enabled)
    return False
