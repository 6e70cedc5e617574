"""The model stack's drag-and-drop board, a static Streamlit component (``ui/dnd_component/``) on SortableJS.

The board shows a palette, the stacks on view (the model's own, or an open block's side by side), a breadcrumb
and a trash. Palette items are copied (SortableJS's clone groups), stack items are moved. The browser never
changes the model itself: each drop or click becomes one ``Event`` (the component's value, with a fresh nonce),
which the app applies or refuses before it draws the page; the next render carries the nonce back as ``ack``, and
the board is rebuilt from the app's arguments. The value comes from the browser, so ``parse_event`` takes only the
shapes the board sends.

ui/dnd_component/README.md says why this replaced streamlit-sortables, and what each drop means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import streamlit.components.v1 as components

from ui.component_files import served_dir

KEY = "model_dnd"  # the board's widget key: its value is the last event
ACK = "model_dnd_ack"  # session state: the nonce of the last event the app handled
MAX_TEXT = 200  # characters: longer ids, types or stack keys are not the board's
MIN_HEIGHT, MAX_HEIGHT = 360, 600  # pixels: the board's height, fitted to the stacks between these

_board = components.declare_component("model_dnd", path=str(served_dir(Path(__file__).parent / "dnd_component")))


class Action(StrEnum):
    """What an event asks of the app."""

    ADD = "add"  # a palette item dropped into a stack: type, kind, parent, stack, index
    MOVE = "move"  # a stack item dropped into a stack (or on a breadcrumb): id, parent, stack, index
    REMOVE = "remove"  # a stack item dropped on the trash: id
    SELECT = "select"  # a stack item clicked (shift: extend the selection): id, extend
    OPEN = "open"  # a breadcrumb clicked: id (None: the model)
    ADD_BRANCH = "add_branch"  # the open Parallel's "+ branch": id
    REMOVE_BRANCH = "remove_branch"  # a branch's "x": id, branch


@dataclass(frozen=True)
class Event:
    """One drop or click on the board."""

    nonce: str
    action: Action
    id: str | None = None
    type: str | None = None
    parent: str | None = None
    stack: str = "layers"
    index: int = 0
    extend: bool = False
    branch: int = 0


@dataclass(frozen=True)
class PaletteItem:
    type: str
    kind: str = "layer"  # or "block"
    hint: str = ""


@dataclass(frozen=True)
class PaletteGroup:
    title: str
    items: list[PaletteItem]


@dataclass(frozen=True)
class Item:
    """A stack item: its entry's id and label; ``marked``: in the selected run. A block names its first stack and
    how many entries that holds: an item dropped on the block's middle goes at its end."""

    id: str
    label: str
    block: bool = False
    selected: bool = False
    marked: bool = False
    inner: str = ""
    count: int = 0


@dataclass(frozen=True)
class StackView:
    """A stack on view: the model's (``parent`` None) or one of the open block's."""

    parent: str | None
    stack: str
    title: str
    items: list[Item]
    empty: str = "Drop layers here"
    removable: bool = False  # a Parallel's branch, while it has others: it shows an x
    branch: int | None = None


@dataclass(frozen=True)
class Drop:
    """Where a drop on a breadcrumb puts the item: a stack and a position."""

    parent: str | None
    stack: str
    index: int


@dataclass(frozen=True)
class Crumb:
    """A breadcrumb: its text, the block it opens (None: the model), and where an item dropped on it goes."""

    label: str
    open: str | None
    current: bool = False
    drop: Drop | None = None


@dataclass(frozen=True)
class Board:
    """Everything the board shows."""

    palette: list[PaletteGroup]
    crumbs: list[Crumb]
    stacks: list[StackView]
    add_branch: str | None = None  # the open Parallel's id: a "+ branch" button
    note: str = ""  # beside the breadcrumb: how the open block merges its stacks
    ack: str | None = None  # the nonce of the last event the app handled


def board_ui(board: Board) -> None:
    """Draw the board; its events arrive in ``session_state[KEY]`` with the next run (``parse_event``)."""
    _board(**asdict(board), min_height=MIN_HEIGHT, max_height=MAX_HEIGHT, key=KEY, default=None)


def _text(value: Any, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        raise ValueError(value)
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1_000_000:
        raise ValueError(value)
    return value


def parse_event(value: Any) -> Event | None:
    """The board's event in a component value, or None if the value is not one the board sends."""
    if not isinstance(value, dict) or value.get("action") not in set(Action):
        return None
    action = Action(value["action"])
    try:
        fields: dict[str, Any] = {"nonce": _text(value.get("nonce")), "action": action}
        if action in {Action.ADD, Action.MOVE}:
            fields |= {"parent": _text(value.get("parent"), optional=True), "stack": _text(value.get("stack"))}
            fields["index"] = _int(value.get("index"))
        if action is Action.ADD:
            fields["type"] = _text(value.get("type"))
        elif action is Action.OPEN:
            fields["id"] = _text(value.get("id"), optional=True)
        else:
            fields["id"] = _text(value.get("id"))
        if action is Action.SELECT:
            fields["extend"] = value.get("extend") is True
        if action is Action.REMOVE_BRANCH:
            fields["branch"] = _int(value.get("branch"))
    except ValueError:
        return None
    return Event(**fields)


def pending_event(state: Any) -> Event | None:
    """The board's event waiting in ``state`` (a session state), if the app has not handled it yet."""
    event = parse_event(state.get(KEY))
    return event if event is not None and event.nonce != state.get(ACK) else None
