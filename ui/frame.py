"""What every page does around its own content: set-up first, then the sidebar and the URL.

Each page calls ``start()`` and ``finish()`` itself (a page is a script that streamlit runs on its own).
``finish()`` comes after the page's content so the sidebar's undo state and the URL see the page's edit (a
drop, a click) in the same run.
"""

from __future__ import annotations

import streamlit as st

from builder.design import DesignError, dump_design, file_stem, load_design
from ui import shortcuts, state
from ui.text import plain

UPLOAD_KEY = "design_upload"
BUILD_PAGE = "app.py"
# The menu, in order: (script, label, icon). Streamlit's own page list is hidden (.streamlit/config.toml) because
# it would name the Build page after its file.
PAGES: tuple[tuple[str, str, str], ...] = (
    (BUILD_PAGE, "Build", ":material/stacks:"),
    ("pages/custom_layers.py", "Custom layers", ":material/code:"),
    ("pages/import_code.py", "Import code", ":material/input:"),
    ("pages/export.py", "Export", ":material/download:"),
    ("pages/examples.py", "Examples", ":material/collections_bookmark:"),
    ("pages/reference.py", "Layer reference", ":material/menu_book:"),
)
# How a notice (``state.notify``) is shown, by its kind.
NOTICES = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


def start() -> None:
    """Page config, the one-off warm-up, the session's design, and any message left by the last action."""
    st.set_page_config(page_title="PyTorch model builder", page_icon=":material/stacks:", layout="wide")
    state.warm_up()
    state.init_state()
    with st.sidebar:
        for path, label, icon in PAGES:
            st.page_link(path, label=label, icon=icon)
        st.divider()
    notice_ui(state.pop_notice())


def notice_ui(notice: tuple[str, str] | None) -> None:
    """The message the last action left, as text: it quotes names, files, values and errors users made."""
    if notice:
        kind, text = notice
        NOTICES[kind](plain(text))


def load_uploaded() -> None:
    """Replace the design by an uploaded file; a broken or foreign file leaves it untouched."""
    upload = st.session_state.get(UPLOAD_KEY)
    if upload is None:
        return
    try:
        design = load_design(upload.getvalue().decode("utf-8"))
    except (DesignError, UnicodeDecodeError) as error:
        reason = "the file is not UTF-8 text" if isinstance(error, UnicodeDecodeError) else str(error)
        state.notify("error", f"Could not load {upload.name}: {reason}. Your design is unchanged.")
        return
    state.commit(design)
    text = f"Loaded {upload.name} ({len(design.layers)} layers). Undo brings the old design back."
    if state.unapproved(design):
        text += " Its custom layers' code runs only once you have read it and approved it."
    state.notify("success", text)


def history_ui() -> None:
    """Undo and redo buttons."""
    ss = st.session_state
    undo_col, redo_col = st.columns(2)
    undo_col.button(
        "Undo",
        key="undo_button",
        icon=":material/undo:",
        on_click=state.undo,
        disabled=not ss.undo,
        width="stretch",
        help="Ctrl+Z",
    )
    redo_col.button(
        "Redo",
        key="redo_button",
        icon=":material/redo:",
        on_click=state.redo,
        disabled=not ss.redo,
        width="stretch",
        help="Ctrl+Shift+Z",
    )


def files_ui() -> None:
    """Save the design as JSON, or load one."""
    design = state.current()
    st.download_button(
        "Save design (JSON)",
        dump_design(design),
        file_name=f"{file_stem(design)}.json",
        mime="application/json",
        icon=":material/save:",
        key="save_design",
        width="stretch",
    )
    st.file_uploader("Load a design (JSON)", type=["json"], key=UPLOAD_KEY, on_change=load_uploaded)


def finish() -> None:
    """The sidebar (history, files), then the design written into the URL."""
    with st.sidebar:
        history_ui()
        files_ui()
        st.caption("The design lives in the page's URL: bookmark or share it to come back to this model.")
        shortcuts.install()
    state.sync_url()
