"""The layer inspector and the input form: fields generated from the catalog, applied as soon as they change.

Field keys hold the layer's id and the parameter's name (never a position) and the design's generation, so a field
shows the design's value again after an undo, a drop or a fix, and is never re-created by its own edit (it keeps
the keyboard focus). A field's callback is bound to the layer it was drawn for: an edit lands on that layer, or,
if the layer has gone meanwhile, nowhere; a value the browser merely sends again is no edit (``apply_field``).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import streamlit as st

from builder.catalog import ParamKind, ParamSpec, catalog
from builder.custom import layer_signature
from builder.design import Design, DesignError, DType, LayerSpec, check_value, find_entry, is_block, is_shared
from builder.edit import INPUT_PRESETS, parse_shape, set_input, set_param
from builder.forms import Field, field_for, field_text, parse_field, same_value
from ui import state
from ui.text import plain
from ui.values import formula_ui

MANUAL_PRESET = "custom shape"


# ---------------------------------------------------------------- inspector


def field_key(layer_id: str, name: str) -> str:
    return f"param.{layer_id}.{name}.{state.generation()}"


def find_layer(design: Design, layer_id: str) -> LayerSpec | None:
    """The layer with this id anywhere in the tree (a top-level one or one inside a block); None for a block."""
    located = find_entry(design, layer_id)
    return None if located is None or is_block(located.entry) else located.entry


def builtin_value(spec: ParamSpec, raw: Any) -> Any:
    """A catalog layer's form field as its argument; raise DesignError saying what is wrong."""
    value = parse_field(spec, raw) if field_for(spec) is Field.TEXT else raw
    problem = check_value(spec, value) if value is not None or spec.required else None
    if problem:
        raise DesignError(f"{spec.name} {problem}")
    return value


def apply_field(layer_id: str, spec: ParamSpec, key: str, read: Callable[[ParamSpec, Any], Any]) -> None:
    """Apply a field's new value to the layer it was drawn for, or leave the message beside the field.

    Only an edit counts. With its next rerun the browser may send again the values of fields it no longer shows:
    another layer's (the one selected before), or ones from before an undo. Streamlit has dropped their state but
    kept their callbacks, so it calls them as if they had changed. A field of an older generation, of a layer
    since removed, or holding the value the design already has, is such a resend and changes nothing.
    """
    design = state.current()
    layer = find_layer(design, layer_id)
    if key != field_key(layer_id, spec.name) or layer is None:
        return
    errors = st.session_state.setdefault("field_errors", {})
    try:
        value = read(spec, st.session_state[key])
    except DesignError as error:
        errors[key] = str(error)
        return
    errors.pop(key, None)
    if not same_value(value, layer.params.get(spec.name, spec.default)):
        state.commit(set_param(design, layer_id, spec.name, value), from_field=True)


def param_widget(spec: ParamSpec, value: Any, key: str, on_change: Any) -> None:
    """One form field, chosen from the parameter's kind."""
    field = field_for(spec)
    label = spec.name + (" *" if spec.required else "")
    common = {"key": key, "on_change": on_change, "help": _help(spec)}
    if field is Field.BOOL:
        st.checkbox(label, value=bool(value), **common)
    elif field is Field.CHOICE:
        options = [*([None] if spec.optional else []), *spec.choices]
        index = options.index(value) if value in options else 0
        st.selectbox(label, options, index=index, format_func=lambda v: "default" if v is None else v, **common)
    elif field is Field.INT and (value is None or isinstance(value, int)):
        st.number_input(label, value=value, step=1, **common)
    elif field is Field.FLOAT and (value is None or isinstance(value, int | float)):
        st.number_input(label, value=None if value is None else float(value), format="%g", step=0.1, **common)
    else:
        placeholder = "required" if spec.required else "default"
        st.text_input(label, value=field_text(value), placeholder=placeholder, **common)


def _help(spec: ParamSpec) -> str:
    default = "required" if spec.required else f"default: {field_text(spec.default) or 'None'}"
    return f"{spec.kind}; {default}"


REFERENCE_PAGE = "pages/reference.py"


def inspector_ui(design: Design, layer_id: str) -> None:
    """A form for the selected layer, at any depth: from its catalog entry, or read from its custom class's
    ``__init__`` (statically: nothing runs). Each change applies at once."""
    located = find_entry(design, layer_id)
    spec = located.entry
    from ui import tying  # ui.tying edits through ui.stack

    if is_shared(spec):
        tying.shared_ui(design, spec)
        return
    entry = catalog().get(spec.type)
    st.markdown(f"**{spec.type}**: {entry.summary} [docs]({entry.doc_url})" if entry else f"**{plain(spec.type)}**")
    if located.depth:
        st.caption(f"In {plain(located.where)}")
    if entry is not None:
        st.page_link(REFERENCE_PAGE, label=f"{spec.type} in the layer reference", query_params={"layer": spec.type})
    formula_ui(design, state.trace_of(design, run=state.ran(design)), layer_id)
    tying.reuse_ui(layer_id)
    try:
        params = entry.params if entry else custom_params(design, spec.type)
    except DesignError as error:
        st.error(plain(f"{error}. Fix its code on the Custom layers page."))
        return
    if not params:
        st.caption("This layer has no parameters." if entry else "Its constructor takes no arguments.")
        return
    read = builtin_value if entry else custom_value
    columns = st.columns(3)
    for position, param in enumerate(params):
        key = field_key(layer_id, param.name)
        with columns[position % 3]:
            value = spec.params.get(param.name, param.default)
            layer_field_ui(param, value, key, _on_field(layer_id, param, key, read), literal=entry is None)


def custom_params(design: Design, name: str) -> tuple[ParamSpec, ...]:
    """A custom layer's arguments, read from its class's ``__init__``; DesignError if its code cannot be read."""
    source = next((c.source for c in design.custom_layers if c.name == name), "")
    st.caption("A custom layer, defined by code carried in the design (Custom layers page).")
    return tuple(layer_signature(source, name))


def _on_field(layer_id: str, spec: ParamSpec, key: str, read: Callable[[ParamSpec, Any], Any]) -> Any:
    return lambda: apply_field(layer_id, spec, key, read)


# ---------------------------------------------------------------- custom layers

LITERAL_HINT = "type a Python literal such as 3, 0.5, 'relu' (text in quotes), (3, 3), [1, 2], True or None"


def parse_literal(spec: ParamSpec, text: str) -> Any:
    """A free-text argument read with ``ast.literal_eval`` (never run); empty text is None (the default)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise DesignError(f"{spec.name}: cannot read {text!r}; {LITERAL_HINT}") from None
    return _design_value(spec, value)


def _design_value(spec: ParamSpec, value: Any) -> Any:
    """The literal as a design stores it (JSON: tuples become lists); sets, bytes and the like are refused."""
    if isinstance(value, list | tuple):
        return [_design_value(spec, item) for item in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _design_value(spec, v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise DesignError(f"{spec.name}: a {type(value).__name__} cannot be stored in a design; {LITERAL_HINT}")


def literal_text(value: Any) -> str:
    """A value as the literal a user would type back: ``'relu'``, ``[1, 2]``; empty for None."""
    return "" if value is None else repr(value)


def custom_value(spec: ParamSpec, raw: Any) -> Any:
    """A custom layer's form field as its argument; raise DesignError saying what to type instead."""
    if field_for(spec) is not Field.TEXT:
        value = raw
    elif spec.kind is ParamKind.ANY:
        value = parse_literal(spec, raw)
    else:
        value = parse_field(spec, raw)
    problem = check_value(spec, value) if value is not None or spec.required else None
    if problem:
        raise DesignError(f"{spec.name} {problem}")
    return value


def custom_param_ui(param: ParamSpec, value: Any, key: str, on_change: Any = None) -> None:
    """One field of a custom layer's form; free-form arguments are shown as literals (``'relu'``, ``[1, 2]``)."""
    layer_field_ui(param, value, key, on_change, literal=True)


def layer_field_ui(param: ParamSpec, value: Any, key: str, on_change: Any, *, literal: bool) -> None:
    """One field and the reason its last value was refused. ``literal``: a free-form argument is typed as a Python
    literal (custom layers); else as the catalog's text forms read it."""
    shown = literal_text(value) if literal and param.kind is ParamKind.ANY else value
    param_widget(param, shown, key, on_change)
    error = st.session_state.get("field_errors", {}).get(key)
    if error:
        st.caption(f":red[{plain(error)}]")


# ---------------------------------------------------------------- input


def input_key(name: str) -> str:
    return f"input_{name}.{state.generation()}"


def input_changed(key: str) -> None:
    """Read the shape text; apply it or leave the message beside the field (a resend of an older one is ignored)."""
    if key != input_key("shape"):
        return
    errors = st.session_state.setdefault("field_errors", {})
    try:
        shape = parse_shape(st.session_state[key])
    except DesignError as error:
        errors[key] = str(error)
        return
    errors.pop(key, None)
    state.commit(set_input(state.current(), shape), from_field=True)


def dtype_changed(key: str) -> None:
    if key == input_key("dtype"):
        design = state.current()
        state.commit(set_input(design, design.input.shape, st.session_state[key]), from_field=True)


def preset_changed(key: str) -> None:
    name = st.session_state[key]
    if key == input_key("preset") and name in INPUT_PRESETS:
        shape, dtype = INPUT_PRESETS[name]
        state.commit(set_input(state.current(), shape, dtype))


def input_ui(design: Design) -> None:
    """The dummy input: a preset, or a free-text shape and a dtype."""
    current = (design.input.shape, design.input.dtype)
    presets = [MANUAL_PRESET, *INPUT_PRESETS]
    match = next((name for name, value in INPUT_PRESETS.items() if value == current), MANUAL_PRESET)
    preset_col, shape_col, dtype_col = st.columns([2, 2, 1])
    key = input_key("preset")
    preset_col.selectbox(
        "Input preset", presets, index=presets.index(match), key=key, on_change=preset_changed, args=(key,)
    )
    key = input_key("shape")
    shape_col.text_input(
        "Input shape (batch first)",
        value=", ".join(map(str, design.input.shape)),
        key=key,
        on_change=input_changed,
        args=(key,),
        help="Sizes separated by commas: 2, 20 or 1, 3, 224, 224",
    )
    error = st.session_state.get("field_errors", {}).get(key)
    if error:
        shape_col.caption(f":red[{plain(error)}]")
    key = input_key("dtype")
    dtypes = list(DType)
    dtype_col.selectbox(
        "dtype", dtypes, index=dtypes.index(design.input.dtype), key=key, on_change=dtype_changed, args=(key,)
    )
