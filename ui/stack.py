"""The model stack: the drag-and-drop board (palette, stacks, breadcrumb, trash) and the selection; the buttons that
do the same from the keyboard are in ``ui.stack_buttons``.

The board (``ui.dnd``) shows the stacks on view: the model's own, or, once a block is open, the block's stacks side
by side (a Residual's body and shortcut, a Parallel's branches), with a breadcrumb back up. Each drop or click on it
arrives as one event, which ``consume_drop`` applies before the page is drawn, or refuses with a message saying
why (``NOTICE``); nothing a browser sends changes the model otherwise.

The selection is the app's own state: ``session_state[SELECTED]`` holds an entry's id (a layer or a block, at any
depth), never a widget's value, so it follows the entry through every edit. Selecting a block opens it
(``session_state[OPEN]``); shift-click on the board selects a run of neighbours (``RUN``) to wrap in a block.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict

import streamlit as st

from builder.blocks import edit as tree
from builder.catalog import Category, by_category, catalog
from builder.design import (
    BlockSpec,
    BlockType,
    Design,
    DesignError,
    Entry,
    Merge,
    ParallelBlock,
    block_dim,
    block_merge,
    find_entry,
    is_block,
    is_shared,
    validate_design,
    walk,
)
from builder.edit import (
    TOP,
    TOP_STACK,
    Place,
    ancestors,
    insert_entry,
    move_entry,
    place_of,
    remove_layer,
    stack_of,
)
from builder.layer_table import entry_text
from builder.trace import Trace
from ui import dnd, state
from ui.text import plain

STACK = "Model stack"  # the model's own stack, as the board titles it
ALL_GROUPS = "all groups"
BLOCKS_GROUP = "blocks"
USED_GROUP = "In this model"
DEFAULT_GROUP = Category.LINEAR
SEP = " · "  # stack item labels: "1 · LazyLinear(256)"
MODEL = "Model"  # the breadcrumb's first step
SELECTED = "selected_layer"  # the selected entry's id (app state: no widget has this key)
SELECTED_AT = "selected_place"  # its place when last shown: a removed entry's place goes to its neighbour
OPEN = "open_block"  # the id of the block whose stacks the board shows (None: the model's stack)
RUN = "selected_run"  # the ids of the selected run (neighbours in one stack), for Wrap
NOTICE = "stack_notice"  # why the last drop or button was refused
BLOCK_HINTS: dict[BlockType, str] = {
    BlockType.SEQUENTIAL: "Layers in order, as one entry (repeat it N times in the inspector)",
    BlockType.RESIDUAL: "merge(shortcut(x), body(x)): a skip connection; add by default",
    BlockType.PARALLEL: "Branches side by side on the same input, merged by concat by default",
}
STACK_EMPTY: dict[str, str] = {
    "layers": "Drop layers here",
    "body": "Drop layers here: a Residual needs a body",
    "shortcut": "Empty: the identity. Drop layers here for a projection",
    "branches": "Empty: the identity. Drop layers here",
}


# ---------------------------------------------------------------- palette


def palette_groups(design: Design) -> dict[str, list[str]]:
    """Palette groups in display order: blocks, the catalog's categories, then the design's custom layers."""
    groups = {BLOCKS_GROUP: list(BlockType)}
    groups |= {str(category): [entry.name for entry in entries] for category, entries in by_category().items()}
    if design.custom_layers:
        groups[str(Category.CUSTOM)] = design.custom_names()
    return groups


def palette_ui(design: Design) -> list[str]:
    """Search box and group picker; returns the layer and block types the palette offers."""
    groups = palette_groups(design)
    search_col, group_col = st.columns(2)
    search = search_col.text_input("Search layers", key="palette_search", placeholder="e.g. conv, norm, lazy")
    names = [ALL_GROUPS, *groups]
    group = group_col.selectbox(
        "Group", names, index=names.index(DEFAULT_GROUP), key="palette_group", format_func=str.capitalize
    )
    # dict.fromkeys: a layer listed in two groups (Flatten: shape and tensor ops) is offered once
    offered = list(dict.fromkeys(t for g, types in groups.items() if group in (ALL_GROUPS, g) or search for t in types))
    query = search.strip().lower()
    if query:
        offered = [t for t in offered if query in t.lower()]
        st.caption(f"{len(offered)} layers match '{search.strip()}' in all groups.")
    return offered


def used_types(design: Design) -> list[str]:
    """The layer types the design uses, in order of first use (the palette's "In this model" group)."""
    entries = (located.entry for located in walk(design.layers))
    return list(dict.fromkeys(entry.type for entry in entries if not is_block(entry) and not is_shared(entry)))


def palette_item(design: Design, entry_type: str) -> dnd.PaletteItem:
    """A palette item with its one-line description as a tooltip."""
    if entry_type in set(BlockType):
        return dnd.PaletteItem(entry_type, "block", BLOCK_HINTS[BlockType(entry_type)])
    entry = catalog().get(entry_type)
    return dnd.PaletteItem(entry_type, "layer", entry.summary if entry else "A custom layer of this design")


def palette_view(design: Design, offered: list[str]) -> list[dnd.PaletteGroup]:
    """The board's palette: the blocks and the design's own layer types always, then the groups on offer."""
    query = str(st.session_state.get("palette_search", "")).strip().lower()
    groups = palette_groups(design)
    chosen = set(offered)
    view = [
        (BLOCKS_GROUP.capitalize(), [t for t in groups[BLOCKS_GROUP] if query in t.lower()]),
        (USED_GROUP, [t for t in used_types(design) if query in t.lower()]),
    ]
    view += [
        (title.capitalize(), [t for t in types if t in chosen])
        for title, types in groups.items()
        if title != BLOCKS_GROUP
    ]
    return [dnd.PaletteGroup(title, [palette_item(design, t) for t in types]) for title, types in view if types]


# ---------------------------------------------------------------- what the board shows


def stack_label(index: int, spec: Entry) -> str:
    """A stack item's text: its position and the entry as a person writes it (``2 · Conv2d(1, 6, 5, padding=2)``;
    a block: its label and how many entries it holds; a shared entry: the layer it reuses)."""
    return f"{index + 1}{SEP}{entry_text(spec)}"


def block_name(block: BlockSpec) -> str:
    """A block as the breadcrumb names it: its label, else its type."""
    return block.label or block.type


def open_block(design: Design) -> BlockSpec | None:
    """The block whose stacks the board shows, or None for the model's stack (an open block since gone: None)."""
    ss = st.session_state
    located = find_entry(design, ss[OPEN]) if ss.get(OPEN) else None
    if located is None or not is_block(located.entry):
        ss[OPEN] = None
        return None
    return located.entry


def sync_view(design: Design, selected: str | None) -> BlockSpec | None:
    """The open block, after making sure the selection is on view: selected elsewhere (the graph, an undo), an
    entry outside the open block shows the stack it stands in."""
    block = open_block(design)
    if selected is None or block is None:
        return block
    if (
        selected != block.id
        and block.id not in ancestors(design, selected)
        and selected not in ancestors(design, block.id)
    ):
        st.session_state[OPEN] = place_of(design, selected).parent
        return open_block(design)
    return block


def item_view(index: int, entry: Entry, selected: str | None, run: list[str]) -> dnd.Item:
    """A stack item; a block's names its first stack, where an item dropped on the block's middle goes."""
    first = entry.stacks()[0] if is_block(entry) and entry.stacks() else None
    inner = {"inner": first.key, "count": len(first.entries)} if first is not None else {}
    label = stack_label(index, entry)
    return dnd.Item(entry.id, label, is_block(entry), entry.id == selected, entry.id in run, **inner)


def item_views(entries: tuple[Entry, ...], selected: str | None, run: list[str]) -> list[dnd.Item]:
    return [item_view(index, entry, selected, run) for index, entry in enumerate(entries)]


def stack_views(design: Design, block: BlockSpec | None, selected: str | None, run: list[str]) -> list[dnd.StackView]:
    """The stacks on view: the model's, or each stack of the open block."""
    if block is None:
        return [
            dnd.StackView(TOP, TOP_STACK, STACK, item_views(design.layers, selected, run), empty=STACK_EMPTY["layers"])
        ]
    stacks = block.stacks()
    return [
        dnd.StackView(
            block.id,
            stack.key,
            stack.title,
            item_views(stack.entries, selected, run),
            empty=STACK_EMPTY[stack.field],
            removable=isinstance(block, ParallelBlock) and len(stacks) > 1,
            branch=stack.branch,
        )
        for stack in stacks
    ]


def merge_note(block: BlockSpec) -> str:
    """How the open block combines its stacks, beside the breadcrumb: "merged by concat dim=1, x3"."""
    merge = block_merge(block)
    parts = (
        [] if merge is None else [f"merged by {merge}" + (f" dim={block_dim(block)}" if merge == Merge.CONCAT else "")]
    )
    return ", ".join([*parts, *([f"x{block.repeat}"] if block.repeat > 1 else [])])


def crumbs(design: Design, block: BlockSpec | None) -> list[dnd.Crumb]:
    """Model > ... > the open block. An item dropped on a step goes into that step's stack, right after the block
    on the way down to the open one."""
    if block is None:
        return [dnd.Crumb(MODEL, None, current=True)]
    owners: list[str | None] = [None, *ancestors(design, block.id), block.id]
    steps = []
    for owner, child in itertools.pairwise(owners):
        place = place_of(design, child)
        name = MODEL if owner is None else block_name(find_entry(design, owner).entry)
        steps.append(dnd.Crumb(name, owner, drop=dnd.Drop(place.parent, place.stack, place.index + 1)))
    here = f"{block.label} ({block.type})" if block.label else block.type
    return [*steps, dnd.Crumb(here, block.id, current=True)]


def current_run(design: Design, selected: str | None) -> list[str]:
    """The selected run: neighbours in one stack that include the selected entry; else the selected entry alone."""
    run = [i for i in st.session_state.get(RUN) or [] if place_of(design, i) is not None]
    if selected is None:
        return []
    places = [place_of(design, i) for i in run]
    same = {(p.parent, p.stack) for p in places}
    positions = sorted(p.index for p in places)
    in_a_row = positions == list(range(positions[0], positions[0] + len(positions))) if positions else False
    if selected not in run or len(same) != 1 or not in_a_row:
        return [selected]
    return sorted(run, key=lambda i: place_of(design, i).index)


def shown_trace(design: Design) -> Trace | None:
    """The forward pass the page shows for this design, if it ran (live mode or the Run button); else None."""
    if not state.ran(design):
        return None
    try:
        return state.trace_of(design, run=True)
    except DesignError:
        return None


# ---------------------------------------------------------------- applying the board's events


def commit_checked(design: Design) -> None:
    """Make ``design`` current if it is valid; raise DesignError saying why not (the model stays as it was)."""
    state.commit(validate_design(design))


def select_entry(design: Design, entry_id: str, extend: bool = False) -> None:
    """Select an entry; a block opens, an entry in a block shows its stack. ``extend``: from the selected entry
    to this one, in the same stack, becomes the selected run (the selected entry stays)."""
    ss = st.session_state
    place = place_of(design, entry_id)
    if place is None:
        raise KeyError(entry_id)
    anchor = place_of(design, ss[SELECTED]) if ss.get(SELECTED) else None
    if extend and anchor is not None and (anchor.parent, anchor.stack) == (place.parent, place.stack):
        low, high = sorted((anchor.index, place.index))
        ss[RUN] = [entry.id for entry in stack_of(design, place.parent, place.stack)[low : high + 1]]
        return
    ss[SELECTED], ss[RUN] = entry_id, [entry_id]
    ss[OPEN] = entry_id if is_block(find_entry(design, entry_id).entry) else place.parent


def open_view(design: Design, block_id: str | None) -> None:
    """Show a block's stacks (None: the model's); going up selects the block just left, so it stays in sight."""
    ss = st.session_state
    if block_id is not None and not is_block(getattr(find_entry(design, block_id), "entry", None)):
        raise KeyError(block_id)
    left = ss.get(OPEN) if open_block(design) is not None else None
    ss[OPEN] = block_id
    if left is None or left == block_id:
        return
    path: list[str | None] = [None, *ancestors(design, left), left]
    if block_id in path:
        child = path[path.index(block_id) + 1]
        ss[SELECTED], ss[RUN] = child, [child]


def add_entry(design: Design, event: dnd.Event) -> None:
    """Insert a palette item where the event says (fitted to the shape it receives) and select it."""
    new, entry_id = insert_entry(design, event.type, event.parent, event.stack, event.index, shown_trace(design))
    commit_checked(new)
    st.session_state[SELECTED], st.session_state[RUN] = entry_id, [entry_id]


def _moved(design: Design, event: dnd.Event) -> None:
    commit_checked(move_entry(design, event.id, event.parent, event.stack, event.index))


def _removed(design: Design, event: dnd.Event) -> None:
    if find_entry(design, event.id) is None:
        raise KeyError(event.id)
    commit_checked(remove_layer(design, event.id))


HANDLERS = {
    dnd.Action.ADD: add_entry,
    dnd.Action.MOVE: _moved,
    dnd.Action.REMOVE: _removed,
    dnd.Action.SELECT: lambda design, event: select_entry(design, event.id, event.extend),
    dnd.Action.OPEN: lambda design, event: open_view(design, event.id),
    dnd.Action.ADD_BRANCH: lambda design, event: commit_checked(tree.add_branch(design, event.id)),
    dnd.Action.REMOVE_BRANCH: lambda design, event: commit_checked(tree.remove_branch(design, event.id, event.branch)),
}


def refused(error: Exception) -> str:
    """What a refused drop or click says: the model is unchanged, and why."""
    if isinstance(error, KeyError):
        return "That item is no longer in the model (the page was behind): nothing changed. Try again."
    return f"Not applied, the model is unchanged: {error}"


def consume_drop() -> None:
    """Apply the board's event that triggered this run, if any (a drop, a click on an item or a breadcrumb)."""
    ss = st.session_state
    event = dnd.pending_event(ss)
    if event is None:
        return
    ss[dnd.ACK], ss[NOTICE] = event.nonce, ""
    try:
        HANDLERS[event.action](state.current(), event)
    except (KeyError, DesignError) as error:
        ss[NOTICE] = refused(error)


def stack_ui(design: Design, offered: list[str]) -> None:
    """The palette, the stacks on view and the trash, as one drag-and-drop board; then why a drop was refused."""
    ss = st.session_state
    selected = selected_layer(design)
    block = sync_view(design, selected)
    run = current_run(design, selected)
    board = dnd.Board(
        palette=palette_view(design, offered),
        crumbs=crumbs(design, block),
        stacks=stack_views(design, block, selected, run),
        add_branch=block.id if isinstance(block, ParallelBlock) else None,
        note=merge_note(block) if block is not None else "",
        ack=ss.get(dnd.ACK),
    )
    dnd.board_ui(board)
    if ss.get(NOTICE):
        st.warning(plain(ss[NOTICE]), icon=":material/block:")


# ---------------------------------------------------------------- the selection and the buttons' edits


def act(edit) -> None:
    """Run a button's edit; a refusal leaves its reason beside the board."""
    st.session_state[NOTICE] = ""
    try:
        edit(state.current())
    except (KeyError, DesignError) as error:
        st.session_state[NOTICE] = refused(error)


def _neighbour(design: Design, at: dict | None) -> str:
    """The entry now at a place (or the nearest before it in that stack); the top level's when that stack is gone."""
    place = Place(**at) if at else Place(TOP, TOP_STACK, 0)
    try:
        entries = stack_of(design, place.parent, place.stack)
    except DesignError:
        entries = ()
    if not entries:
        return place.parent if place.parent and find_entry(design, place.parent) else design.layers[0].id
    return entries[min(place.index, len(entries) - 1)].id


def selected_layer(design: Design) -> str | None:
    """The selected entry's id; when that entry is gone (removed, trashed, undone), the one now in its place."""
    if not design.layers:
        return None
    ss = st.session_state
    place = place_of(design, ss[SELECTED]) if ss.get(SELECTED) else None
    if place is None:
        ss[SELECTED] = _neighbour(design, ss.get(SELECTED_AT))
        ss[RUN] = [ss[SELECTED]]
        place = place_of(design, ss[SELECTED])
    ss[SELECTED_AT] = asdict(place)
    return ss[SELECTED]
