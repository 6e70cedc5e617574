"""The model stack: the palette, the drag-and-drop stack and the buttons that do the same from the keyboard.

The drag-and-drop is one streamlit-sortables component with three containers (Palette, Model stack, Trash).
It moves items, so after each drop ``consume_drop`` turns the component's result into design edits and the
component is re-mounted under a new key: the palette is full again (layers are copied out of it, not moved)
and the trash is empty. Item labels are unique and never equal a header, as the component requires.

The selected layer is the app's own state, ``session_state[SELECTED]``: a layer id, never a widget's value.
A select box would hold its choice as the option's label ("3 · LazyLinear(10)"), which every edit of that layer
changes; Streamlit then finds the label among no options and falls back to the first layer, and the next edit
lands there. So the stack is shown as one button per layer, keyed by the layer's id: a click selects that layer,
and the Up, Down, Duplicate and Remove buttons act on the id they were drawn for.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import streamlit as st
from streamlit_sortables import sort_items

from builder.catalog import Category, by_category
from builder.design import Design, DesignError, Entry, is_block, walk
from builder.edit import add_from_palette, duplicate_layer, move_layer, remove_layer, reorder_layers
from builder.graph import key_args
from builder.inference import Trace
from ui import state
from ui.text import plain

PALETTE, STACK, TRASH = "Palette", "Model stack", "Trash"
ALL_GROUPS = "all groups"
DEFAULT_GROUP = Category.LINEAR
SEP = " · "  # stack item labels: "1 · LazyLinear(256)"; unique, and never equal to a palette item or header
SELECTED = "selected_layer"  # the selected layer's id (app state: no widget has this key)
SELECTED_AT = "selected_position"  # its position when last shown: a removed layer's place goes to its neighbour
PICKER_HEIGHT = 240  # pixels: the layer buttons of a long stack scroll inside a box this tall...
PICKER_SCROLL_AFTER = 16  # ...from this many layers on
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


def stack_label(index: int, spec: Entry) -> str:
    """A stack item's text: its position, type and key arguments (a block: how many entries it holds)."""
    if is_block(spec):
        inside = sum(1 for _ in walk((spec,))) - 1
        return f"{index + 1}{SEP}{spec.type} block ({inside} {'entry' if inside == 1 else 'entries'})"
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


def shown_trace(design: Design) -> Trace | None:
    """The forward pass the page shows for this design, if it ran (live mode or the Run button); else None."""
    if not state.ran(design):
        return None
    try:
        return state.trace_of(design, run=True)
    except DesignError:
        return None


def dropped_design(
    design: Design, rendered: dict[str, Any], result: list[dict[str, Any]], trace: Trace | None = None
) -> Design:
    """The design after a drop: palette items in the stack become new layers, stack items gone are removed.

    A new layer's arguments fit the tensor it receives where it was dropped (``trace``: the design's forward pass,
    if the caller has one).
    """
    ids: dict[str, str] = rendered["ids"]
    palette = set(rendered["containers"][0]["items"])
    stack = [
        label for label in next(c["items"] for c in result if c["header"] == STACK) if label in ids or label in palette
    ]
    design = reorder_layers(design, [ids[label] for label in stack if label in ids])
    for position, label in enumerate(stack):
        if label not in ids:
            design = add_from_palette(design, label, position, trace)
    return design


def consume_drop() -> None:
    """Apply the drop that triggered this run, if any, and have the component re-mounted."""
    ss = st.session_state
    rendered = ss.get("sortables_rendered")
    result = ss.get(rendered["key"]) if rendered else None
    if result is None or result == rendered["containers"]:
        return
    ss.sortables_nonce = ss.get("sortables_nonce", 0) + 1
    design = state.current()
    new = dropped_design(design, rendered, result, shown_trace(design))
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
    design = state.current()
    new = add_from_palette(design, layer_type, trace=shown_trace(design))
    state.commit(new)
    st.session_state[SELECTED] = new.layers[-1].id


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


def selected_layer(design: Design) -> str | None:
    """The selected layer's id; when that layer is gone (removed, trashed, undone), the one now in its place."""
    ids = [layer.id for layer in design.layers]
    if not ids:
        return None
    ss = st.session_state
    if ss.get(SELECTED) not in ids:
        ss[SELECTED] = ids[min(ss.get(SELECTED_AT, 0), len(ids) - 1)]
    ss[SELECTED_AT] = ids.index(ss[SELECTED])
    return ss[SELECTED]


def select_clicked(layer_id: str) -> None:
    st.session_state[SELECTED] = layer_id


def move_clicked(layer_id: str, offset: int) -> None:
    """Move the layer the button was drawn for ``offset`` places from where it is now."""
    design = state.current()
    if layer_id in {layer.id for layer in design.layers}:
        state.commit(move_layer(design, layer_id, design.layer_index(layer_id) + offset))


def duplicate_clicked(layer_id: str) -> None:
    """Insert a copy after the layer and select the copy."""
    design = state.current()
    if layer_id in {layer.id for layer in design.layers}:
        new = duplicate_layer(design, layer_id)
        state.commit(new)
        st.session_state[SELECTED] = new.layers[design.layer_index(layer_id) + 1].id


def remove_clicked(layer_id: str) -> None:
    """Remove the layer; the selection moves to the layer that takes its place (``selected_layer``)."""
    state.commit(remove_layer(state.current(), layer_id))


def layer_picker_ui(design: Design, selected: str) -> None:
    """The stack as one button per layer, the selected one highlighted; clicking a layer selects it."""
    height = PICKER_HEIGHT if len(design.layers) > PICKER_SCROLL_AFTER else "content"
    box = st.container(horizontal=True, gap="small", height=height)
    for index, spec in enumerate(design.layers):
        box.button(
            plain(stack_label(index, spec)),
            key=f"select.{spec.id}",
            type="primary" if spec.id == selected else "secondary",
            on_click=select_clicked,
            args=(spec.id,),
        )


def layer_actions_ui(design: Design) -> str | None:
    """Pick a layer; move it, duplicate it or remove it with buttons. Returns the selected layer's id."""
    layer_id = selected_layer(design)
    if layer_id is None:
        st.info("The stack is empty: drag a layer from the palette, or pick one above and click Add to stack.")
        return None
    layer_picker_ui(design, layer_id)
    index = design.layer_index(layer_id)
    up, down, copy, remove = st.columns(4)
    up.button(
        "Up",
        key="move_up",
        icon=":material/arrow_upward:",
        disabled=index == 0,
        on_click=move_clicked,
        args=(layer_id, -1),
        width="stretch",
    )
    down.button(
        "Down",
        key="move_down",
        icon=":material/arrow_downward:",
        disabled=index == len(design.layers) - 1,
        on_click=move_clicked,
        args=(layer_id, 1),
        width="stretch",
    )
    block = is_block(design.layers[index])
    copy.button(
        "Duplicate",
        key="duplicate",
        icon=":material/content_copy:",
        on_click=duplicate_clicked,
        args=(layer_id,),
        disabled=block,
        help="A block cannot be duplicated here yet" if block else None,
        width="stretch",
    )
    remove.button(
        "Remove", key="remove", icon=":material/delete:", on_click=remove_clicked, args=(layer_id,), width="stretch"
    )
    return layer_id
