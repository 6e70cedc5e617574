"""Layer reference page: every catalog layer, grouped like torch.nn's overview, with a search box.

For each layer: torch's summary, the signature with its defaults, the input and output shape rule from the
docstring, a mini example run on a small input with its output shape, and where its parameter count comes from.
Everything is derived from torch once per server (``builder.reference``). ``?layer=Conv2d`` opens on that layer.
"""

from __future__ import annotations

import streamlit as st

from builder.catalog import Category
from builder.reference import LayerReference, grouped, reference, search
from builder.summary import format_shape
from ui import frame
from ui.text import plain

SEARCH = "reference_search"
GROUP = "reference_group"
LAYER_PARAM = "layer"
ALL_GROUPS = "all groups"
EXPAND_UP_TO = 3  # a search with this few results opens them
LABEL_CHARS = 90


@st.cache_resource(show_spinner="Reading torch.nn's docstrings and running each layer once...")
def layer_references() -> dict[str, LayerReference]:
    """Every layer's reference, derived once per server (about two seconds)."""
    return reference()


def apply_link(references: dict[str, LayerReference]) -> None:
    """Open on the layer a link names (``?layer=Conv2d``): its name goes into the search box, and the parameter
    leaves the URL, so the user's own search stands on the next run and the same link works again later."""
    name = st.query_params.get(LAYER_PARAM)
    if name is None:
        return
    del st.query_params[LAYER_PARAM]
    if name in references:
        st.session_state[SEARCH] = name
        st.session_state[GROUP] = ALL_GROUPS


def filters_ui() -> tuple[str, str]:
    """The search box and the group picker; returns (query, group)."""
    search_col, group_col = st.columns([2, 1])
    query = search_col.text_input(
        "Search layers", key=SEARCH, placeholder="e.g. conv 2d, normalization, rectified, lazy"
    )
    groups = [ALL_GROUPS, *(str(category) for category in Category if category is not Category.CUSTOM)]
    group = group_col.selectbox("Group", groups, key=GROUP, format_func=str.capitalize)
    return query.strip(), group or ALL_GROUPS


def shape_ui(ref: LayerReference) -> None:
    st.markdown("**Input and output shapes**")
    if ref.shape_rule:
        st.code("\n".join(ref.shape_rule), language=None, wrap_lines=True)
        if ref.shape_source:
            st.caption(f"From the docstring of {ref.shape_source}.")
    else:
        st.caption("torch's docstring states no shape rule for this layer; the example below shows one input.")
    if ref.stack_note:
        st.caption(f"In the stack: {ref.stack_note}.")


def arguments_ui(ref: LayerReference) -> None:
    lines = []
    for arg in ref.arguments:
        default = "required" if not arg.default else f"default {arg.default}"
        text = f" {arg.description}" if arg.description else ""
        lines.append(f"- `{arg.name}` ({plain(default)}):{plain(text)}")
    if lines:
        st.markdown("\n".join(lines))


def example_ui(ref: LayerReference) -> None:
    st.markdown("**Example**")
    st.code(ref.example.code, language="python")
    if ref.example.output_shape is not None:
        shapes = format_shape(ref.example.input_shape), format_shape(ref.example.output_shape)
        st.markdown(f"Input {shapes[0]} → output shape **{shapes[1]}**")
    else:
        st.caption(plain(ref.example.problem))


def formula_ui(ref: LayerReference) -> None:
    st.markdown("**Parameters**")
    if ref.formula is not None:
        st.code(ref.formula.text(), language=None, wrap_lines=True)
        st.caption("One term per parameter tensor: the product of its shape, as torch built it for the example.")


def short(summary: str) -> str:
    """The summary's first sentence, cut to fit an expander's label."""
    first = summary.split(". ")[0].rstrip(".")
    return first if len(first) <= LABEL_CHARS else first[: LABEL_CHARS - 1].rstrip() + "…"


def layer_ui(ref: LayerReference, expanded: bool) -> None:
    """One layer's section."""
    with st.expander(f"**{ref.name}** · {plain(short(ref.summary))}", expanded=expanded):
        st.markdown(f"{plain(ref.summary)} [PyTorch docs]({ref.doc_url})")
        st.code(ref.signature, language="python", wrap_lines=True)
        arguments_ui(ref)
        shape_ui(ref)
        example_ui(ref)
        formula_ui(ref)


def main() -> None:
    frame.start()
    st.title("Layer reference")
    st.caption(
        "Every layer of the palette, grouped like torch.nn's own overview: what it does, its arguments, the shapes "
        "it takes and gives, a small example run for real, and where its parameter count comes from."
    )
    references = layer_references()
    apply_link(references)
    query, group = filters_ui()
    found = search(query, references.values()) if query else list(references.values())
    if group != ALL_GROUPS:
        found = [ref for ref in found if ref.category == group]
    st.caption(f"{len(found)} of {len(references)} layers.")
    if not found:
        st.info("No layer matches. Try fewer words, or another group.")
    exact = {ref.name for ref in found if ref.name.lower() == query.lower()}
    for category, refs in grouped(found).items():
        st.subheader(str(category).capitalize())
        for ref in refs:
            layer_ui(ref, expanded=ref.name in exact or len(found) <= EXPAND_UP_TO)
    frame.finish()


main()
