"""The buttons that do what the board does, from the keyboard: Layer to add and Add, the layer picker, Up, Down,
Duplicate, Remove, and Wrap/Unwrap (``ui.stack`` is the board and the selection they share).

Each button acts on the entry ids it was drawn for, through ``ui.stack.act``, so a refused edit leaves its reason
beside the board; rows of buttons are horizontal containers that wrap at narrow widths rather than cut a label.
"""

from __future__ import annotations

import streamlit as st

from builder.blocks import edit as tree
from builder.design import BlockType, Design, Entry, ParallelBlock, ResidualBlock, find_entry, is_block
from builder.edit import TOP, TOP_STACK, Place, duplicate_entry, move_by, place_of, remove_layer, stack_of
from ui import dnd, state
from ui.stack import (
    OPEN,
    RUN,
    SELECTED,
    STACK,
    act,
    add_entry,
    block_name,
    commit_checked,
    crumbs,
    current_run,
    open_block,
    open_view,
    palette_groups,
    select_entry,
    selected_layer,
    stack_label,
)
from ui.text import plain

ADD_DEFAULT = "Linear"  # what Add offers first
PICKER_HEIGHT = 240  # pixels: the layer buttons of a long stack scroll inside a box this tall...
PICKER_SCROLL_AFTER = 16  # ...from this many entries on
WRAP_THROUGH_WIDTH = 260  # pixels: the Wrap through box, so the wrap buttons beside it keep their whole labels


def add_target(design: Design) -> Place:
    """Where Add puts a new entry: after the selected entry in an open block, else at the stack's end."""
    block = open_block(design)
    if block is None:
        return Place(TOP, TOP_STACK, len(design.layers))
    selected = st.session_state.get(SELECTED)
    place = place_of(design, selected) if selected else None
    if place is not None and place.parent == block.id:
        return Place(place.parent, place.stack, place.index + 1)
    first = block.stacks()[0]
    return Place(block.id, first.key, len(first.entries))


def add_clicked(layer_type: str) -> None:
    def add(design: Design) -> None:
        at = add_target(design)
        add_entry(
            design, dnd.Event("", dnd.Action.ADD, type=layer_type, parent=at.parent, stack=at.stack, index=at.index)
        )

    act(add)


def layer_choices(design: Design) -> dict[str, str]:
    """Every entry type the palette holds, across all groups, with its group's name: Add's one list."""
    return {t: group for group, types in palette_groups(design).items() for t in types}


def add_ui(design: Design) -> None:
    """Click-to-add: pick any layer or block type (one list, searchable by typing) and add it to the stack on view."""
    choices = layer_choices(design)
    names = list(choices)
    row = st.container(horizontal=True, vertical_alignment="bottom")
    layer_type = row.selectbox(
        "Layer to add",
        names,
        index=names.index(ADD_DEFAULT) if ADD_DEFAULT in names else 0,
        key="add_type",
        format_func=lambda t: f"{t} · {choices[t]}",
        help="Every layer of every group: type to search",
    )
    row.button(
        "Add",
        key="add_layer",
        icon=":material/add:",
        on_click=add_clicked,
        args=(layer_type,),
        help="Add it to the stack on view (inside an open block: after the selected entry)",
    )


def select_clicked(entry_id: str) -> None:
    act(lambda design: select_entry(design, entry_id))


def open_clicked(block_id: str | None) -> None:
    act(lambda design: open_view(design, block_id))


def move_clicked(entry_id: str, offset: int) -> None:
    """Move the entry the button was drawn for ``offset`` places from where it is now, in its own stack."""
    act(lambda design: commit_checked(move_by(design, entry_id, offset)))


def duplicate_clicked(entry_id: str) -> None:
    """Insert a copy after the entry (a block with all it holds) and select the copy."""

    def duplicate(design: Design) -> None:
        new, copy = duplicate_entry(design, entry_id)
        commit_checked(new)
        st.session_state[SELECTED], st.session_state[RUN] = copy, [copy]

    act(duplicate)


def remove_clicked(entry_id: str) -> None:
    """Remove the entry; the selection moves to the entry that takes its place (``selected_layer``)."""
    act(lambda design: commit_checked(remove_layer(design, entry_id)))


def wrap_clicked(entry_ids: list[str], block_type: BlockType) -> None:
    """Wrap the run in a new block standing where it stood; the block is selected (its stack stays on view)."""

    def wrap(design: Design) -> None:
        place = place_of(design, entry_ids[0])
        new = tree.wrap(design, entry_ids, block_type)
        commit_checked(new)
        block = stack_of(new, place.parent, place.stack)[place.index]
        st.session_state[SELECTED], st.session_state[RUN] = block.id, [block.id]

    act(wrap)


def unwrap_clicked(block_id: str) -> None:
    """Put the block's entries in its place; the first of them is selected (an empty block's neighbour, if it held
    none)."""

    def unwrap(design: Design) -> None:
        place = place_of(design, block_id)
        new = tree.unwrap(design, block_id)
        commit_checked(new)
        entries = stack_of(new, place.parent, place.stack)
        first = entries[place.index].id if place.index < len(entries) else None
        st.session_state[SELECTED], st.session_state[RUN], st.session_state[OPEN] = first, [first], place.parent

    act(unwrap)


def run_changed(key: str, entry_id: str) -> None:
    """The Wrap through box: the run from the selected entry to the chosen one."""
    design = state.current()
    place, end = place_of(design, entry_id), place_of(design, st.session_state[key])
    if place is None or end is None or (place.parent, place.stack) != (end.parent, end.stack):
        return
    low, high = sorted((place.index, end.index))
    st.session_state[RUN] = [entry.id for entry in stack_of(design, place.parent, place.stack)[low : high + 1]]


def picker_buttons(box, entries: tuple[Entry, ...], selected: str) -> None:
    for index, spec in enumerate(entries):
        box.button(
            plain(stack_label(index, spec)),
            key=f"select.{spec.id}",
            type="primary" if spec.id == selected else "secondary",
            on_click=select_clicked,
            args=(spec.id,),
        )


def layer_picker_ui(design: Design, selected: str) -> None:
    """The stacks on view as one button per entry, the selected one highlighted; a click selects (a block opens).
    Inside a block, the breadcrumb's steps are buttons too."""
    block = open_block(design)
    stacks = [(STACK, design.layers)] if block is None else [(s.title, s.entries) for s in block.stacks()]
    count = sum(len(entries) for _, entries in stacks)
    box = st.container(height=PICKER_HEIGHT if count > PICKER_SCROLL_AFTER else "content")
    if block is not None:
        steps = box.container(horizontal=True, gap="small")
        for crumb in crumbs(design, block)[:-1]:
            steps.button(
                f"Back to {crumb.label}",
                key=f"open.{crumb.open or 'model'}",
                icon=":material/arrow_upward:",
                type="tertiary",
                on_click=open_clicked,
                args=(crumb.open,),
            )
    for title, entries in stacks:
        if block is not None:
            box.caption(f"{plain(block_name(block))} › {title}" + ("" if entries else ": empty"))
        picker_buttons(box.container(horizontal=True, gap="small"), entries, selected)


def layer_actions_ui(design: Design) -> str | None:
    """Pick an entry; move, duplicate, remove, wrap or unwrap it with buttons. Returns the selected entry's id."""
    entry_id = selected_layer(design)
    if entry_id is None:
        st.info("The stack is empty: drag a layer from the palette, or pick one in Layer to add and click Add.")
        return None
    layer_picker_ui(design, entry_id)
    place = place_of(design, entry_id)
    siblings = stack_of(design, place.parent, place.stack)
    row = st.container(horizontal=True)  # wraps at narrow widths: no label is cut
    row.button(
        "Up",
        key="move_up",
        icon=":material/arrow_upward:",
        disabled=place.index == 0,
        on_click=move_clicked,
        args=(entry_id, -1),
    )
    row.button(
        "Down",
        key="move_down",
        icon=":material/arrow_downward:",
        disabled=place.index == len(siblings) - 1,
        on_click=move_clicked,
        args=(entry_id, 1),
    )
    row.button(
        "Duplicate",
        key="duplicate",
        icon=":material/content_copy:",
        on_click=duplicate_clicked,
        args=(entry_id,),
    )
    row.button("Remove", key="remove", icon=":material/delete:", on_click=remove_clicked, args=(entry_id,))
    wrap_ui(design, entry_id, place, siblings)
    return entry_id


def wrap_ui(design: Design, entry_id: str, place: Place, siblings: tuple[Entry, ...]) -> None:
    """Wrap the selected run in a Sequential, Residual or Parallel block, or unwrap the selected block; one click
    each, undoable. The run is shift-click on the board, or the Wrap through box."""
    run = current_run(design, entry_id)
    ids = [entry.id for entry in siblings]
    row = st.container(horizontal=True, vertical_alignment="bottom")  # wraps at narrow widths: no label is cut
    key = f"wrap_through.{entry_id}.{state.generation()}"
    end = run[-1] if run[-1] != entry_id else run[0]
    row.selectbox(
        "Wrap through",
        ids,
        index=ids.index(end),
        key=key,
        format_func=lambda i: stack_label(ids.index(i), siblings[ids.index(i)]),
        on_change=run_changed,
        args=(key, entry_id),
        help="The run of neighbours to wrap: from the selected entry through this one (or shift-click on the board)",
        width=WRAP_THROUGH_WIDTH,
    )
    names = f"{len(run)} {'entry' if len(run) == 1 else 'entries'}"
    for block_type in BlockType:
        row.button(
            str(block_type),
            key=f"wrap.{block_type}",
            icon=":material/select_all:",
            on_click=wrap_clicked,
            args=(run, block_type),
            help=f"Wrap the selected {names} in a {block_type} block (Undo takes it back)",
        )
    row.button(
        "Unwrap",
        key="unwrap",
        icon=":material/unfold_more:",
        on_click=unwrap_clicked,
        args=(entry_id,),
        disabled=not can_unwrap(find_entry(design, entry_id).entry),
        help=unwrap_help(find_entry(design, entry_id).entry),
    )


def can_unwrap(entry: Entry) -> bool:
    return is_block(entry) and (not isinstance(entry, ParallelBlock) or len(entry.branches) == 1)


def unwrap_help(entry: Entry) -> str:
    """What Unwrap does to this entry, or why it cannot."""
    if not is_block(entry):
        return "Select a block to unwrap it"
    if isinstance(entry, ParallelBlock) and len(entry.branches) != 1:
        return f"A Parallel with {len(entry.branches)} branches cannot be unwrapped: remove all branches but one"
    if isinstance(entry, ResidualBlock):
        return "Put the body's entries in the block's place (its shortcut and merge go; Undo takes it back)"
    return "Put the block's entries in its place (Undo takes it back)"
