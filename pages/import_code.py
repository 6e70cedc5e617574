"""Import code page: paste PyTorch code, get the design back (issue 5).

``import_code`` reads the code statically (``ast``): nothing pasted runs here. Classes it takes over as custom
layers run later only in the sandbox, and only once the user has read them and clicked to run them
(``ui.review``), like any code that came with a design. The imported design replaces the current one
through ``state.commit``, so Undo brings the old design back.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from builder.design import Design, DesignError, is_block, walk
from builder.edit import parse_shape
from builder.importer import ImportFailed, ImportNote, import_code
from builder.sandbox import custom_code_enabled
from builder.summary import format_shape
from ui import frame, state

CODE, NONCE, NOTES, CANDIDATES = "import.code", "import.nonce", "import.notes", "import.candidates"
DIFFERENCES = "import.differences"  # why the last import was refused: where the design would differ, line by line
SEED_SEQUENTIAL = "net = nn.Sequential(nn.LazyLinear(256), nn.ReLU(), nn.LazyLinear(10))\n"
D2L_MLP = """\
import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.LazyLinear(256)
        self.out = nn.LazyLinear(10)

    def forward(self, X):
        return self.out(F.relu(self.hidden(X)))
"""
D2L_LENET = """\
import torch
from torch import nn

net = nn.Sequential(
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.Sigmoid(),
    nn.Linear(84, 10))
X = torch.rand(size=(1, 1, 28, 28), dtype=torch.float32)
"""
RESIDUAL = """\
import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    def __init__(self, channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1, self.bn2 = nn.LazyBatchNorm2d(), nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)


def stage(blocks, channels):
    layers = [Residual(channels, use_1x1conv=True, strides=2)]
    for _ in range(blocks - 1):
        layers.append(Residual(channels))
    return nn.Sequential(*layers)


net = nn.Sequential(nn.LazyConv2d(32, kernel_size=3, padding=1), stage(2, 64), stage(2, 128),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.LazyLinear(10))
X = torch.randn(1, 3, 32, 32)
net(X).shape
"""
# The seed's snippets, to load into the box.
EXAMPLES: dict[str, str] = {
    "nn.Sequential MLP": SEED_SEQUENTIAL,
    "MLP class (D2L)": D2L_MLP,
    "LeNet (D2L)": D2L_LENET,
    "Residual blocks and a helper function": RESIDUAL,
}


def init_page() -> None:
    """Open the box on the first example, once per session."""
    ss = st.session_state
    if CODE not in ss:
        ss[CODE], ss[NONCE], ss[NOTES], ss[CANDIDATES] = next(iter(EXAMPLES.values())), 0, None, []
        ss[DIFFERENCES] = ()


def load_example(key: str) -> None:
    """Put an example into the box (a fresh text area, so it shows the new text)."""
    ss = st.session_state
    ss[CODE] = EXAMPLES[ss[key]]
    ss[NONCE] += 1


def examples_ui() -> None:
    pick_col, load_col = st.columns([3, 1], vertical_alignment="bottom")
    pick_col.selectbox("Example from the seed", list(EXAMPLES), key="import.example")
    load_col.button(
        "Load example",
        key="import.load",
        icon=":material/description:",
        on_click=load_example,
        args=("import.example",),
        help="Replaces the code in the box",
        width="stretch",
    )


def source_ui() -> str:
    """The code box, the design's name and the optional input shape; returns the code."""
    ss = st.session_state
    code = st.text_area("PyTorch code", ss[CODE], height=300, key=f"import.text.{ss[NONCE]}")
    ss[CODE] = code
    name_col, shape_col = st.columns(2)
    name_col.text_input("Design name", "imported", key="import.name")
    shape_col.text_input(
        "Input shape (optional)",
        key="import.shape",
        placeholder="from the code, e.g. 2, 20",
        help="Batch first. Empty: the code's INPUT_SHAPE or the tensor it runs the model on, else one chosen "
        "from the first layer (a note says which).",
    )
    return code


def import_clicked() -> None:
    """Import the code in the box and make it the design; on failure the design stays as it was."""
    ss = st.session_state
    code = ss.get(f"import.text.{ss[NONCE]}", ss[CODE])
    name = ss.get("import.name", "").strip() or "imported"
    shape_text = ss.get("import.shape", "").strip()
    model = ss.get("import.model") if ss[CANDIDATES] else None
    try:
        shape = parse_shape(shape_text) if shape_text else None
        result = import_code(code, name=name, input_shape=shape, model=model)
    except ImportFailed as error:
        ss[NOTES], ss[CANDIDATES] = None, list(error.candidates)
        ss[DIFFERENCES] = error.differences
        pick = " Pick the model below and import again." if error.candidates else ""
        why = (
            f"the design would differ from the model this code builds at the {len(error.differences)} place(s) "
            "listed below"
            if error.differences
            else str(error)
        )
        state.notify("error", f"Nothing was imported: {why}. Your design is unchanged.{pick}")
        return
    except DesignError as error:
        ss[NOTES] = None
        state.notify("error", f"Nothing was imported: {error}. Your design is unchanged.")
        return
    ss[CANDIDATES], ss[DIFFERENCES] = [], ()
    state.commit(result.design)
    ss[NOTES] = result.notes
    state.notify("success", imported_message(result.design))


def imported_message(design: Design) -> str:
    custom = f" and {len(design.custom_layers)} custom layer(s) ({', '.join(design.custom_names())})"
    blocks = sum(1 for located in walk(design.layers) if is_block(located.entry))
    what = f"{len(design.layers)} layers" + (f" ({blocks} blocks)" if blocks else "")
    text = (
        f"Imported {what}{custom if design.custom_layers else ''} on input "
        f"{format_shape(design.input.shape)}: they replace the stack. Undo (in the sidebar) brings your previous "
        "design back."
    )
    if design.custom_layers and not custom_code_enabled():
        text += " Custom code is turned off on this server, so the custom layers cannot be traced here."
    elif not state.code_approved(design):
        text += " The custom layers' code runs only once you have read it and approved it (on the Build page)."
    return text


def candidates_ui() -> None:
    """When the code defines several models and builds none: which one to import."""
    candidates = st.session_state[CANDIDATES]
    if candidates:
        st.selectbox(
            "Model to import",
            candidates,
            key="import.model",
            help="The code defines these and builds none of them at the top level",
        )


def notes_ui(notes: tuple[ImportNote, ...] | None) -> None:
    """What the last import translated, replaced or skipped, line by line."""
    if notes is None:
        return
    st.subheader("Import notes")
    if not notes:
        st.caption("Everything was taken over as written.")
        return
    notes_table(notes)


def differences_ui(differences: tuple[ImportNote, ...]) -> None:
    """Why the last import was refused: each place where the design would differ from the code."""
    if differences:
        st.subheader("Why nothing was imported")
        notes_table(differences)


def notes_table(notes: tuple[ImportNote, ...]) -> None:
    rows = [{"line": n.line, "kind": str(n.severity), "construct": n.construct, "why": n.message} for n in notes]
    narrow = {"line": st.column_config.NumberColumn(width=50), "kind": st.column_config.TextColumn(width=80)}
    widths = narrow | {"why": st.column_config.TextColumn(width="large")}  # the reasons get the room
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config=widths)


def main() -> None:
    frame.start()
    init_page()
    st.title("Import PyTorch code")
    st.caption(
        "Paste a model: an `nn.Sequential(...)`, `nn.Module` classes with skip connections and branches, helper "
        "functions and loops, or the book's `d2l.Classifier` style, and continue visually. The code is only read, "
        "never run; what cannot be imported is named below with its line."
    )
    examples_ui()
    code = source_ui()
    candidates_ui()
    st.button(
        "Import",
        key="import.run",
        type="primary",
        icon=":material/input:",
        on_click=import_clicked,
        disabled=not code.strip(),
        help="Replaces the stack with the imported model (Undo brings it back)",
    )
    st.caption("The imported model replaces the whole design; Undo (in the sidebar) brings the previous one back.")
    differences_ui(st.session_state.get(DIFFERENCES, ()))
    notes_ui(st.session_state[NOTES])
    if st.session_state[NOTES] is not None:
        st.page_link(frame.BUILD_PAGE, label="Open it on the Build page", icon=":material/stacks:")
    frame.finish()


main()
