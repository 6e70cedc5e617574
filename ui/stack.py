"""The model stack: the palette, the drag-and-drop stack and the buttons that do the same from the keyboard.

The drag-and-drop is one streamlit-sortables component with three containers (Palette, Model stack, Trash).
It moves items, so after each drop ``consume_drop`` turns the component's result into design edits and the
component is re-mounted under a new key: the palette is full again (layers are copied out of it, not moved)
and the trash is empty. Item labels are unique and never equal a header, as the component requires.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import streamlit as st
from streamlit_sortables import sort_items

from builder.catalog import Category, by_category
from builder.design import Design, LayerSpec
from builder.edit import add_layer, duplicate_layer, move_layer, remove_layer, reorder_layers
from builder.graph import key_args
from ui import state

PALETTE, STACK, TRASH = "Palette", "Model stack", "Trash"
ALL_GROUPS = "all groups"
DEFAULT_GROUP = Category.LINEAR
SEP = " · "  # stack item labels: "1 · LazyLinear(256)"; unique, and never equal to a palette item or header
SELECTED = "selected_layer"  # the selected layer's id (the key of its select box)
SORTABLES_STYLE = """
.sortable-component { font-size: 0.85rem; }
.sortable-container-header { font-weight: 600; padding: 2px 4px; }
.sortable-container-body { min-height: 90px; padding-bottom: 36px; }
.sortable-item, .sortable-item:hover { padding: 3px 8px; margin: 3px 0; }
.sortable-container { min-width: 100px !important; }
.sortable-container:last-child { flex-grow: 0 !important; }
.sortable-container:last-child .sortable-container-body { min-height: 140px; }
"""


# ---------------------------------------------------------------- palette


def palette_groups(design: Design) -> dict[str, list[str]]:
    """Palette groups in display order: the catalog's categories, then the design's custom layers."""
    groups = {str(category): [entry.name for entry in entries] for category, entries in by_category().items()}
    if design.custom_layers:
        groups[str(Category.CUSTOM)] = design.custom_names()
    return groups


def palette_ui(design: Design) -> list[str]:
    """Search box and group picker; returns the layer types the palette offers."""
    groups = palette_groups(design)
    search_col, group_col = st.columns(2)
    search = search_col.text_input("Search layers", key="palette_search", placeholder="e.g. conv, norm, lazy")
    names = [ALL_GROUPS, *groups]
    group = group_col.selectbox(
        "Group", names, index=names.index(DEFAULT_GROUP), key="palette_group", format_func=str.capitalize
    )
    offered = [t for g, types in groups.items() if group in (ALL_GROUPS, g) or search for t in types]
    query = search.strip().lower()
    if query:
        offered = [t for t in offered if query in t.lower()]
        st.caption(f"{len(offered)} layers match '{search.strip()}' in all groups.")
    return offered


# ---------------------------------------------------------------- the drag-and-drop stack


def stack_label(index: int, spec: LayerSpec) -> str:
    """A stack item's text: its position, type and key arguments."""
    args = ", ".join(json.dumps(v) if isinstance(v, str) else str(v) for v in key_args(spec).values())
    return f"{index + 1}{SEP}{spec.type}({args})"


def sortable_containers(design: Design, offered: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The component's three containers, and the stack labels' layer ids."""
    ids = {stack_label(i, spec): spec.id for i, spec in enumerate(design.layers)}
    containers = [
        {"header": PALETTE, "items": list(offered)},
        {"header": STACK, "items": list(ids)},
        {"header": TRASH, "items": []},
    ]
    return containers, ids


def dropped_design(design: Design, rendered: dict[str, Any], result: list[dict[str, Any]]) -> Design:
    """The design after a drop: palette items in the stack become new layers, stack items gone are removed."""
    ids: dict[str, str] = rendered["ids"]
    palette = set(rendered["containers"][0]["items"])
    stack = next(c["items"] for c in result if c["header"] == STACK)
    order = []
    for label in stack:
        if label in ids:
            order.append(ids[label])
        elif label in palette:
            design = add_layer(design, label)
            order.append(design.layers[-1].id)
    return reorder_layers(design, order)


def consume_drop() -> None:
    """Apply the drop that triggered this run, if any, and have the component re-mounted."""
    ss = st.session_state
    rendered = ss.get("sortables_rendered")
    result = ss.get(rendered["key"]) if rendered else None
    if result is None or result == rendered["containers"]:
        return
    ss.sortables_nonce = ss.get("sortables_nonce", 0) + 1
    design = state.current()
    new = dropped_design(design, rendered, result)
    added = [layer.id for layer in new.layers if layer.id not in {old.id for old in design.layers}]
    state.commit(new)
    if added:
        ss[SELECTED] = added[0]


def stack_ui(design: Design, offered: list[str]) -> None:
    """The palette, the stack and the trash, as one drag-and-drop component."""
    ss = st.session_state
    containers, ids = sortable_containers(design, offered)
    content = json.dumps([containers, ss.get("sortables_nonce", 0)]).encode()
    key = "sortables-" + hashlib.sha1(content, usedforsecurity=False).hexdigest()[:12]
    ss.sortables_rendered = {"key": key, "containers": containers, "ids": ids}
    sort_items(containers, multi_containers=True, direction="vertical", custom_style=SORTABLES_STYLE, key=key)
    st.caption("Drag from the palette into the stack, drag within the stack to reorder, drag to the trash to remove.")


# ---------------------------------------------------------------- keyboard-friendly editing


def add_clicked(layer_type: str) -> None:
    design = add_layer(state.current(), layer_type)
    state.commit(design)
    st.session_state[SELECTED] = design.layers[-1].id


def add_ui(offered: list[str]) -> None:
    """Click-to-add: pick a layer type and append it."""
    type_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    layer_type = type_col.selectbox("Layer to add", offered, key="add_type", disabled=not offered)
    button_col.button(
        "Add to stack",
        key="add_layer",
        icon=":material/add:",
        disabled=not layer_type,
        on_click=add_clicked,
        args=(layer_type,),
        width="stretch",
    )


def edit_selected(edit: Any, *args: Any) -> None:
    """Apply ``edit(design, selected_id, *args)``; the selection follows a duplicate to the copy."""
    ss = st.session_state
    design = state.current()
    new = edit(design, ss[SELECTED], *args)
    state.commit(new)
    if edit is duplicate_layer:
        ss[SELECTED] = new.layers[design.layer_index(ss[SELECTED]) + 1].id


def layer_actions_ui(design: Design) -> str | None:
    """Pick a layer; move it, duplicate it or remove it with buttons. Returns the selected layer's id."""
    ids = [layer.id for layer in design.layers]
    if not ids:
        st.info("The stack is empty: drag a layer from the palette, or pick one above and click Add to stack.")
        return None
    ss = st.session_state
    if ss.get(SELECTED) not in ids:
        ss[SELECTED] = ids[0]
    labels = {spec.id: stack_label(i, spec) for i, spec in enumerate(design.layers)}
    layer_id = st.selectbox("Selected layer", ids, key=SELECTED, format_func=labels.__getitem__)
    index = ids.index(layer_id)
    up, down, copy, remove = st.columns(4)
    up.button(
        "Up",
        key="move_up",
        icon=":material/arrow_upward:",
        disabled=index == 0,
        on_click=edit_selected,
        args=(move_layer, index - 1),
        width="stretch",
    )
    down.button(
        "Down",
        key="move_down",
        icon=":material/arrow_downward:",
        disabled=index == len(ids) - 1,
        on_click=edit_selected,
        args=(move_layer, index + 1),
        width="stretch",
    )
    copy.button(
        "Duplicate",
        key="duplicate",
        icon=":material/content_copy:",
        on_click=edit_selected,
        args=(duplicate_layer,),
        width="stretch",
    )
    remove.button(
        "Remove", key="remove", icon=":material/delete:", on_click=edit_selected, args=(remove_layer,), width="stretch"
    )
    return layer_id
