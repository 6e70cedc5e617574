"""Keyboard shortcuts: Ctrl+Z undoes, Ctrl+Shift+Z (or Ctrl+Y) redoes, Ctrl+Enter runs the forward pass.

A shortcut clicks the app's own button (``keys.js``), so it does exactly what that button does and nothing when
the button is disabled or not on the page; keys typed into a field stay the field's (its own undo). The table
below is the one list: the script and the help popover are both made from it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import streamlit as st

SCRIPT = Path(__file__).parent / "shortcuts" / "keys.js"


@dataclass(frozen=True)
class Shortcut:
    key: str  # KeyboardEvent.key, lower case
    shift: bool
    button: str  # the Streamlit key of the button it clicks
    keys: str  # as the help shows it
    does: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("z", False, "undo_button", "Ctrl+Z", "Undo the last edit"),
    Shortcut("z", True, "redo_button", "Ctrl+Shift+Z", "Redo"),
    Shortcut("y", False, "redo_button", "Ctrl+Y", "Redo"),
    Shortcut("enter", False, "run_forward", "Ctrl+Enter", "Run the dummy forward pass (Build page)"),
)


@functools.cache
def script() -> str:
    """The listener, with the shortcut table filled in (read once per process, not on every rerun)."""
    table = json.dumps([asdict(s) for s in SHORTCUTS])
    return "<script>" + SCRIPT.read_text(encoding="utf-8").replace("__SHORTCUTS__", table) + "</script>"


def install() -> None:
    """Listen for the shortcuts on this page (the script is the project's own: no user text goes into it)."""
    st.html(script(), unsafe_allow_javascript=True)


def help_text() -> str:
    """The shortcuts as a Markdown table (Cmd instead of Ctrl on a Mac)."""
    rows = [f"| {s.keys} | {s.does} |" for s in SHORTCUTS]
    return "\n".join(
        [
            "| Keys | |",
            "| --- | --- |",
            *rows,
            "",
            "On a Mac, Cmd works as Ctrl. Keys typed into a field stay the field's.",
        ]
    )


def help_ui() -> None:
    """A small popover listing the shortcuts."""
    with st.popover("Shortcuts", icon=":material/keyboard:", help="Keyboard shortcuts"):
        st.markdown(help_text())
