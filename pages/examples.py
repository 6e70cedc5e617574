"""Examples page: the example designs, one click to load (undo brings the previous design back)."""

from __future__ import annotations

import streamlit as st

from builder.design import Design
from builder.examples import list_examples
from builder.summary import format_shape
from ui import frame, state
from ui.text import plain

COLUMNS = 3


@st.cache_data(show_spinner=False)
def examples() -> dict[str, Design]:
    """The shipped examples (read once per server)."""
    return list_examples()


def example_card(name: str, design: Design) -> bool:
    """One example: its name, input and layers, and a load button; returns True when clicked."""
    with st.container(border=True):
        st.markdown(f"**{plain(name)}**")
        st.caption(f"input {format_shape(design.input.shape)} {design.input.dtype} · {len(design.layers)} layers")
        types = " → ".join(layer.type for layer in design.layers[:6])
        st.text(types + (" → ..." if len(design.layers) > 6 else ""))
        if design.custom_layers:
            st.caption(plain(f"custom layers: {', '.join(design.custom_names())}"))
        return st.button("Load", key=f"load.{name}", icon=":material/open_in_new:", width="stretch")


def main() -> None:
    frame.start()
    st.title("Examples")
    st.caption("Load an example to explore it on the Build page; Undo (in the sidebar) brings your design back.")
    columns = st.columns(COLUMNS)
    for position, (name, design) in enumerate(examples().items()):
        with columns[position % COLUMNS]:
            if example_card(name, design):
                state.commit(design)
                state.notify("success", f"Loaded the {name} example. Undo brings your previous design back.")
                st.switch_page(frame.BUILD_PAGE)
    frame.finish()


main()
