"""Parameter tying in the inspector: reuse the selected layer (a ``Shared`` entry), and what a Shared entry is.

The edit is ``builder.tying.share_layer``, committed like every other (so it is undone like every other); the
new entry is selected, and its stack item reads ``shares layer-3``.
"""

from __future__ import annotations

import streamlit as st

from builder.design import Design, SharedSpec
from builder.tying import share_layer
from ui.stack import RUN, SELECTED, act, commit_checked
from ui.text import plain

REUSE_HELP = (
    "Adds a Shared entry at the end of the stack: the same module object runs there again, with the same weights "
    "(the book's `shared = nn.LazyLinear(8)` used twice). Its parameters are counted once, and every use needs an "
    "input of the same size."
)


def reuse_clicked(layer_id: str) -> None:
    """Append a Shared entry of the layer and select it."""

    def reuse(design: Design) -> None:
        new, entry_id = share_layer(design, layer_id)
        commit_checked(new)
        st.session_state[SELECTED], st.session_state[RUN] = entry_id, [entry_id]

    act(reuse)


def reuse_ui(layer_id: str) -> None:
    """The button that ties a top-level layer's weights to a new entry at the end of the stack."""
    st.button(
        "Reuse this layer (tie weights)",
        key=f"reuse.{layer_id}",
        icon=":material/link:",
        help=REUSE_HELP,
        on_click=reuse_clicked,
        args=(layer_id,),
    )


def shared_ui(design: Design, entry: SharedSpec) -> None:
    """A Shared entry's inspector: which layer it reuses, what that means, and a way to that layer."""
    target = next((spec for spec in design.layers if spec.id == entry.of), None)
    kind = f" ({plain(target.type)})" if target is not None else ""
    st.markdown(f"**Shared**: shares {plain(entry.of)}{kind}")
    st.caption(
        "The same module object as that layer runs here again, with the same weights: the table counts its "
        "parameters once, at the layer, and the export writes one object used twice. Edit its arguments on the "
        "layer itself."
    )
    st.button(
        f"Select {plain(entry.of)}",
        key=f"shared.select.{entry.id}",
        icon=":material/arrow_upward:",
        on_click=_select,
        args=(entry.of,),
    )


def _select(entry_id: str) -> None:
    st.session_state[SELECTED], st.session_state[RUN] = entry_id, [entry_id]
