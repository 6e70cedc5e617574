"""Custom layers page: write an nn.Module subclass, check it in the sandbox, add it to the design (issue 4).

The code never runs in this process: ``check_layer`` reads it statically, then builds it and runs it once in the
sandbox worker (docs/sandbox.md). A checked layer joins ``design.custom_layers`` through ``state.commit`` (so Undo
takes it back) and appears in the Build page's palette under Custom.

The editor (streamlit-code-editor) sends its text only on an event: Ctrl+Enter or its Check button (a check) and
leaving the editor (so a click on any button below sees the code as typed). It shows new code only under a new
key, so loading a template or a layer bumps ``NONCE``; the fields below carry it in their keys too.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from builder.custom import check_source, layer_signature
from builder.design import CustomLayerSpec, Design, DesignError, DType
from builder.edit import parse_shape, renamed_custom_layer, users_of, with_custom_layer, without_custom_layer
from builder.sandbox import CheckReport, SandboxError, check_layer, custom_code_enabled, isolation
from builder.summary import format_shape
from ui import frame, inspector, review, state
from ui.text import plain

try:
    from code_editor import code_editor
except ImportError:  # the plain text area below stands in
    code_editor = None

DRAFT, LOADED, NONCE, SEEN = "custom.draft", "custom.loaded", "custom.nonce", "custom.seen"
TARGET, SEED_ARGS, SEED_SHAPE, CHECK = "custom.target", "custom.seed_args", "custom.seed_shape", "custom.check"
BOUND_NOTE = (
    "`torch`, `nn` and `F` are already bound, as after `import torch`, `from torch import nn` and "
    "`from torch.nn import functional as F`; `math` may be imported. The code runs only in the sandbox, "
    "never in this server."
)
EDITOR_BUTTONS = [
    {
        "name": "Check",
        "feather": "Play",
        "primary": True,
        "hasText": True,
        "showWithIcon": True,
        "commands": ["submit"],
        "style": {"bottom": "0.44rem", "right": "0.4rem"},
    }
]


@dataclass(frozen=True)
class Template:
    """Code to start from, with the constructor arguments and input the seed checks it with."""

    source: str
    args: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] | None = None  # None: the design's input


TEMPLATES: dict[str, Template] = {
    "CenteredLayer": Template(
        "class CenteredLayer(nn.Module):\n    def forward(self, X):\n        return X - X.mean()\n",
    ),
    "MyLinear": Template(
        "class MyLinear(nn.Module):\n"
        "    def __init__(self, in_units, units):\n"
        "        super().__init__()\n"
        "        self.weight = nn.Parameter(torch.randn(in_units, units))\n"
        "        self.bias = nn.Parameter(torch.randn(units,))\n"
        "    def forward(self, X):\n"
        "        linear = torch.matmul(X, self.weight.data) + self.bias.data\n"
        "        return F.relu(linear)\n",
        {"in_units": 5, "units": 3},
        (2, 5),
    ),
    "Blank": Template(
        "class MyLayer(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "\n"
        "    def forward(self, X):\n"
        "        return X\n",
    ),
}


# ---------------------------------------------------------------- design edits


# ---------------------------------------------------------------- actions (button callbacks)


def load_code(source: str, target: str | None, args: dict[str, Any], shape: tuple[int, ...] | None) -> None:
    """Put code into the editor (a fresh one) and seed the check's fields."""
    ss = st.session_state
    ss[DRAFT] = ss[LOADED] = source
    ss[NONCE] = ss.get(NONCE, 0) + 1
    ss[TARGET], ss[SEED_ARGS], ss[SEED_SHAPE] = target, dict(args), shape
    ss[CHECK] = None


def load_template(key: str) -> None:
    name = st.session_state[key]
    template = TEMPLATES[name]
    load_code(template.source, None if name == "Blank" else name, template.args, template.shape)


def edit_clicked(name: str) -> None:
    """Load a custom layer of the design into the editor, with the arguments its first use in the stack has."""
    design = state.current()
    spec = next(c for c in design.custom_layers if c.name == name)
    used = [layer.params for layer in design.layers if layer.type == name]
    load_code(spec.source, name, used[0] if used else {}, None)
    state.notify("info", f"Editing {name}: check it, then update it in the design.")


def add_clicked() -> None:
    """Add the code as last checked (not as typed since: only checked code enters the design)."""
    check = st.session_state[CHECK]
    name, source = check["name"], check["source"]
    design = state.current()
    verb = "Updated" if name in design.custom_names() else "Added"
    try:
        new = with_custom_layer(design, name, source, check["kwargs"])
    except (DesignError, ValueError) as error:
        state.notify("error", f"Could not add {name}: {error}. Your design is unchanged.")
        return
    state.commit(new)
    state.approve(*(spec for spec in new.custom_layers if spec.name == name))  # checked here: the user's own code
    state.notify(
        "success",
        f"{verb} {name}: it is in the palette under Custom on the Build page; drag it into the stack. "
        "Undo (in the sidebar) takes this back.",
    )


def rename_clicked(old: str, key: str) -> None:
    """Rename a custom layer; approved code stays approved under its new name (the user's own edit)."""
    new = st.session_state.get(key, "").strip()
    before = state.current()
    try:
        design = renamed_custom_layer(before, old, new)
    except (DesignError, ValueError) as error:
        state.notify("error", f"Could not rename {old}: {error}.")
        return
    if not any(spec.name == old for spec in state.unapproved(before)):
        state.approve(*(spec for spec in design.custom_layers if spec.name == new))
    state.commit(design)
    state.notify("success", f"Renamed {old} to {new}, in its code and in the stack. Undo takes it back.")


def delete_clicked(name: str) -> None:
    try:
        design = without_custom_layer(state.current(), name)
    except DesignError as error:
        state.notify("error", f"Not deleted: {error}.")
        return
    state.commit(design)
    state.notify("success", f"Deleted {name} from the design. Undo brings it back.")


# ---------------------------------------------------------------- the editor and the check


def init_page() -> None:
    """Open the editor on the first template, once per session."""
    if DRAFT not in st.session_state:
        first = next(iter(TEMPLATES))
        load_code(TEMPLATES[first].source, first, TEMPLATES[first].args, TEMPLATES[first].shape)


def template_ui() -> None:
    """Pick a template and load it into the editor."""
    pick_col, load_col = st.columns([3, 1], vertical_alignment="bottom")
    pick_col.selectbox("Start from a template", list(TEMPLATES), key="custom.template")
    load_col.button(
        "Load template",
        key="custom.load",
        icon=":material/description:",
        on_click=load_template,
        args=("custom.template",),
        help="Replaces the code in the editor",
        width="stretch",
    )


def editor_ui() -> bool:
    """The code; returns True when the editor asked for a check (Ctrl+Enter or its Check button)."""
    ss = st.session_state
    key = f"custom.editor.{ss[NONCE]}"
    if code_editor is None:
        ss[DRAFT] = st.text_area("Layer code", ss[LOADED], height=320, key=key)
        return False
    response = code_editor(
        ss[LOADED], lang="python", height=[12, 28], response_mode=["blur"], buttons=EDITOR_BUTTONS, key=key
    )
    event = response.get("id") if response else None
    if not event or event == ss.get(SEEN):
        return False
    ss[SEEN] = event
    ss[DRAFT] = response.get("text", ss[DRAFT])
    return response.get("type") == "submit"


def layer_classes(source: str) -> list[str]:
    """The classes the code defines at its top level, in order (read, not run)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


def target_ui(source: str) -> str | None:
    """The class to check: the only one, or a choice; None (with the reason) when the code defines none."""
    classes = layer_classes(source)
    if not classes:
        problems = check_source(source, "your layer") if source.strip() else ()
        hint = "Write a class: `class MyLayer(nn.Module):` with a forward."
        st.warning(plain(f"{problems[0]}.") if problems else hint)
        return None
    ss = st.session_state
    preferred = ss[TARGET] if ss[TARGET] in classes else classes[-1]
    if len(classes) == 1:
        return classes[0]
    return st.selectbox("Class to check", classes, index=classes.index(preferred), key=f"custom.class.{ss[NONCE]}")


def args_ui(source: str, name: str) -> dict[str, Any] | None:
    """A form read from the class's ``__init__``; returns the arguments, or None while a field is unreadable."""
    try:
        params = layer_signature(source, name)
    except DesignError as error:
        st.error(plain(f"{error}."))
        return None
    if not params:
        st.caption(plain(f"{name}'s constructor takes no arguments."))
        return {}
    ss = st.session_state
    seed = ss[SEED_ARGS] if ss[TARGET] == name else {}
    kwargs: dict[str, Any] | None = {}
    columns = st.columns(min(3, len(params)))
    for position, param in enumerate(params):
        key = f"custom.arg.{ss[NONCE]}.{name}.{param.name}"
        with columns[position % 3]:
            inspector.custom_param_ui(param, seed.get(param.name, param.default), key)
            try:
                value = inspector.custom_value(param, ss[key])
            except DesignError as error:
                st.caption(f":red[{plain(error)}]")
                kwargs = None
                continue
        if kwargs is not None and value is not None:
            kwargs[param.name] = value
    return kwargs


def input_ui(design: Design) -> tuple[tuple[int, ...], str] | None:
    """The test input's shape and dtype; None (with the message) while the shape is unreadable."""
    ss = st.session_state
    shape_col, dtype_col = st.columns([3, 1])
    shown = ss[SEED_SHAPE] or design.input.shape
    text = shape_col.text_input(
        "Test input shape (batch first)",
        ", ".join(map(str, shown)),
        key=f"custom.shape.{ss[NONCE]}",
        help="Sizes separated by commas, such as 2, 20 or 1, 3, 32, 32",
    )
    dtypes = list(DType)
    dtype = dtype_col.selectbox(
        "dtype", dtypes, index=dtypes.index(design.input.dtype), key=f"custom.dtype.{ss[NONCE]}"
    )
    try:
        return parse_shape(text), str(dtype)
    except DesignError as error:
        shape_col.caption(f":red[{plain(error)}]")
        return None


def run_check(source: str, name: str, kwargs: dict[str, Any], test_input: tuple[tuple[int, ...], str]) -> None:
    """Check the layer in the sandbox and keep the report for this code."""
    shape, dtype = test_input
    with st.spinner(f"Checking {name} in the sandbox..."):
        report = check_layer(source, name, kwargs, shape, dtype, session=state.session_id())
    st.session_state[CHECK] = {"source": source, "name": name, "report": report, "kwargs": dict(kwargs)}


def excerpt(source: str, line: int) -> str:
    """The line a problem points at, with one line either side, numbered."""
    lines = source.splitlines()
    start, end = max(1, line - 1), min(len(lines), line + 1)
    return "\n".join(f"{'>' if n == line else ' '} {n:>3} | {lines[n - 1]}" for n in range(start, end + 1))


def success_ui(report: CheckReport) -> None:
    """What a passing check found: shapes, parameters and where it ran."""
    shapes = f"input {format_shape(report.input_shape)} → output {format_shape(report.output_shape)}"
    st.success(plain(f"{report.name} works: {shapes}."), icon=":material/check:")
    shape, params, flops, device = st.columns(4)
    shape.metric("Output shape", format_shape(report.output_shape))
    params.metric("Parameters", f"{report.param_count:,}")
    flops.metric("FLOPs", f"{report.flops:,}")
    device.metric("Ran on", "real values (CPU)" if report.needs_values else "meta device")
    if report.needs_values:
        st.info(
            "It needs real values (a data-dependent `if`, `.item()`...), so it ran on small real tensors: "
            "a design using it is traced the same way, which is slower for large inputs."
        )
    else:
        st.caption("It ran on the meta device: shapes only, no real values were needed.")
    if report.params:
        rows = [{"parameter": p.name, "shape": p.describe()} for p in report.params]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    for note in report.notes:
        st.caption(plain(note))


def report_ui(check: dict[str, Any] | None, source: str, name: str | None) -> bool:
    """The last check's report; returns True when it passed for exactly this code and class."""
    if not check:
        st.caption("Check the layer to see its output shape and parameters; a layer that passes can be added.")
        return False
    if name is not None and check["name"] != name:
        st.caption(plain(f"Check {name} to see its output shape and parameters (the last check was of another class)."))
        return False
    report: CheckReport = check["report"]
    current = check["source"] == source and check["name"] == name
    if not current:
        st.caption("The code changed since the check below: check it again before adding it.")
    if report.ok:
        success_ui(report)
    for problem in report.problems:
        st.error(plain(f"{problem}."), icon=":material/error:")
        if problem.line and problem.line <= len(check["source"].splitlines()):
            st.code(excerpt(check["source"], problem.line), language=None)
    if report.output:
        st.markdown("**What the layer printed**")
        st.code(report.output, language=None)
    return report.ok and current


def add_ui(design: Design, name: str, source: str, passed: bool) -> None:
    """Add the checked layer to the design (or update its code there)."""
    exists = name in design.custom_names()
    st.button(
        f"Update {plain(name)} in the design" if exists else f"Add {plain(name)} to the design",
        key="custom.add",
        type="primary",
        icon=":material/add:",
        disabled=not passed,
        on_click=add_clicked,
    )


def workbench_ui(design: Design) -> None:
    """Template, editor, the check's inputs, its report and the Add button."""
    template_ui()
    submitted = editor_ui()
    st.caption(BOUND_NOTE + " Ctrl+Enter (or the editor's Check button) checks the code.")
    source = st.session_state[DRAFT]
    name = target_ui(source)
    kwargs = args_ui(source, name) if name else None
    test_input = input_ui(design)
    ready = name is not None and kwargs is not None and test_input is not None
    clicked = st.button("Check layer", key="custom.check_button", icon=":material/play_arrow:", disabled=not ready)
    if ready and (clicked or submitted):
        run_check(source, name, kwargs, test_input)
    passed = report_ui(st.session_state[CHECK], source, name)
    if name:
        add_ui(design, name, source, passed)


# ---------------------------------------------------------------- the design's custom layers


def custom_layer_ui(design: Design, spec: CustomLayerSpec, editable: bool) -> None:
    """One custom layer: where the stack uses it, and edit, rename and delete.

    Code waiting for approval cannot be loaded into the editor, where a check would run it: approve it first.
    """
    used = users_of(design, spec.name)
    waiting = spec in state.unapproved(design)
    with st.container(border=True):
        st.markdown(f"**{plain(spec.name)}**")
        st.caption(
            f"Used by the stack's layer{'s' if len(used) > 1 else ''} {', '.join(map(str, used))}."
            if used
            else "Not used in the stack yet."
        )
        if waiting:
            st.caption(":orange[Not run yet: its code came with the design and waits for your approval above.]")
        with st.expander("Code", expanded=waiting):
            st.code(spec.source, language="python")
        edit_col, name_col, rename_col, delete_col = st.columns([1, 2, 1, 1], vertical_alignment="bottom")
        gen = state.generation()
        edit_col.button(
            "Edit",
            key=f"custom.edit.{spec.name}.{gen}",
            icon=":material/edit:",
            on_click=edit_clicked,
            args=(spec.name,),
            disabled=not editable or waiting,
            width="stretch",
        )
        key = f"custom.new_name.{spec.name}.{gen}"
        name_col.text_input("New name", value=spec.name, key=key)
        rename_col.button(
            "Rename",
            key=f"custom.rename.{spec.name}.{gen}",
            on_click=rename_clicked,
            args=(spec.name, key),
            width="stretch",
        )
        delete_col.button(
            "Delete",
            key=f"custom.delete.{spec.name}.{gen}",
            icon=":material/delete:",
            on_click=delete_clicked,
            args=(spec.name,),
            width="stretch",
        )


def library_ui(design: Design, editable: bool = True) -> None:
    st.subheader("Custom layers in this design")
    if not design.custom_layers:
        st.caption("None yet: check a layer above, then add it to the design.")
    for spec in design.custom_layers:
        custom_layer_ui(design, spec, editable)


def isolation_ui() -> None:
    """One line saying how strongly this server isolates custom code."""
    try:
        level = isolation()
    except SandboxError as error:
        st.caption(f":material/gpp_bad: :red[{plain(error)}]")
        return
    text = f"Sandbox isolation: {plain(level.describe())}."
    st.caption(f":material/shield: {text}" if level.level == "jail" else f":material/gpp_maybe: :orange[{text}]")


def disabled_ui() -> None:
    st.warning(
        "Custom code is turned off on this server (`BUILDER_DISABLE_CUSTOM=1`): no layer code can be checked or "
        "run here, and designs that use custom layers cannot be traced. Run the builder on your own machine to "
        "write custom layers (see the README's section on the sandbox).",
        icon=":material/block:",
    )


def main() -> None:
    frame.start()
    design = state.current()
    st.title("Custom layers")
    st.caption(
        "Write your own `nn.Module`, check it, and add it to the design: it then joins the palette under Custom "
        "and behaves like a built-in layer in the stack, the graph, the table and the exported code."
    )
    review.review_ui(design)
    if custom_code_enabled():
        isolation_ui()
        init_page()
        workbench_ui(design)
    else:
        disabled_ui()
    st.divider()
    library_ui(design, editable=custom_code_enabled())
    frame.finish()


main()
