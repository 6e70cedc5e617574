"""Edits of a design. Each returns a new design, so callers keep an undo history for free."""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from typing import Any

from builder.catalog import catalog
from builder.design import CustomLayerSpec, Design, DesignError, DType, InputSpec, LayerSpec, validate_design
from builder.diagnose import Fix, FixKind, LayerError
from builder.inference import Trace
from builder.samples import Shape, fitted_params, incoming_shape

# Input presets offered by the app: name -> (shape, dtype).
INPUT_PRESETS: dict[str, tuple[tuple[int, ...], DType]] = {
    "tabular (2, 20)": ((2, 20), DType.FLOAT32),
    "MNIST (1, 1, 28, 28)": ((1, 1, 28, 28), DType.FLOAT32),
    "CIFAR-10 (1, 3, 32, 32)": ((1, 3, 32, 32), DType.FLOAT32),
    "ImageNet (1, 3, 224, 224)": ((1, 3, 224, 224), DType.FLOAT32),
    "token ids (2, 16)": ((2, 16), DType.INT64),
}


def parse_shape(text: str) -> tuple[int, ...]:
    """Read a shape typed as ``2, 20`` or ``(1, 3, 224, 224)``; raise DesignError saying what is wrong."""
    parts = [p for p in re.split(r"[\s,]+|(?<=\d)[x×](?=\d)", text.strip().strip("()[]")) if p]
    if not parts:
        raise DesignError("input shape: type sizes separated by commas, such as 2, 20")
    if not all(p.isdigit() for p in parts):
        bad = next(p for p in parts if not p.isdigit())
        raise DesignError(f"input shape: '{bad}' is not a whole number; type sizes such as 1, 3, 32, 32")
    shape = tuple(int(p) for p in parts)
    if any(size < 1 for size in shape):
        raise DesignError(f"input shape: every size must be at least 1, got {list(shape)}")
    if len(shape) > 6:
        raise DesignError(f"input shape: at most 6 dimensions, got {len(shape)}")
    return shape


def _next_id(design: Design) -> str:
    taken = {layer.id for layer in design.layers}
    numbers = [int(i.split("-")[1]) for i in taken if re.fullmatch(r"layer-\d+", i)]
    counter = max(numbers, default=0) + 1
    while f"layer-{counter}" in taken:
        counter += 1
    return f"layer-{counter}"


def _with_layers(design: Design, layers: list[LayerSpec]) -> Design:
    return design.model_copy(update={"layers": tuple(layers)})


def default_params(layer_type: str, design: Design | None = None, incoming: Shape | None = None) -> dict[str, Any]:
    """Parameters a freshly added layer starts with: sample values for torch's required arguments, with the sizes
    it asks of its input read from ``incoming`` when known, or the arguments a custom layer was checked with."""
    if layer_type in catalog():
        return fitted_params(layer_type, incoming)
    custom = {c.name: c for c in design.custom_layers} if design else {}
    return dict(custom[layer_type].params) if layer_type in custom else {}


def add_layer(
    design: Design,
    layer_type: str,
    index: int | None = None,
    params: dict | None = None,
    incoming: Shape | None = None,
) -> Design:
    """Insert a layer (at the end by default) with a fresh id; without ``params``, it starts with
    ``default_params`` for the shape ``incoming`` it receives there."""
    if params is None:
        params = default_params(layer_type, design, incoming)
    layer = LayerSpec(type=layer_type, params=params).model_copy(update={"id": _next_id(design)})
    layers = list(design.layers)
    layers.insert(len(layers) if index is None else index, layer)
    return _with_layers(design, layers)


def add_from_palette(design: Design, layer_type: str, index: int | None = None, trace: Trace | None = None) -> Design:
    """Insert a new layer whose arguments fit the tensor it receives at ``index`` (the end by default).

    That shape is read from ``trace`` (a forward pass of ``design`` the caller already has) or from a meta-device
    pass of the built-in layers before it (``samples.incoming_shape``); when it cannot be known, the layer starts
    with the catalog's sample values.
    """
    index = len(design.layers) if index is None else index
    return add_layer(design, layer_type, index, incoming=incoming_shape(design, index, trace))


def remove_layer(design: Design, layer_id: str) -> Design:
    """Drop the layer with this id."""
    return _with_layers(design, [layer for layer in design.layers if layer.id != layer_id])


def duplicate_layer(design: Design, layer_id: str) -> Design:
    """Insert a copy of the layer right after it."""
    index = design.layer_index(layer_id)
    layer = design.layers[index]
    return add_layer(design, layer.type, index + 1, dict(layer.params))


def move_layer(design: Design, layer_id: str, new_index: int) -> Design:
    """Move the layer with this id to position ``new_index``."""
    layers = list(design.layers)
    layer = layers.pop(design.layer_index(layer_id))
    layers.insert(max(0, min(new_index, len(layers))), layer)
    return _with_layers(design, layers)


def reorder_layers(design: Design, layer_ids: list[str]) -> Design:
    """Put the layers in the order of ``layer_ids``; ids not listed are dropped."""
    by_id = {layer.id: layer for layer in design.layers}
    return _with_layers(design, [by_id[i] for i in layer_ids if i in by_id])


def set_params(design: Design, layer_id: str, params: dict[str, Any]) -> Design:
    """Replace a layer's parameters."""
    layers = list(design.layers)
    index = design.layer_index(layer_id)
    layers[index] = layers[index].model_copy(update={"params": dict(params)})
    return _with_layers(design, layers)


def set_param(design: Design, layer_id: str, name: str, value: Any) -> Design:
    """Set one parameter; ``None`` removes it (back to torch's default)."""
    params = dict(design.layers[design.layer_index(layer_id)].params)
    if value is None:
        params.pop(name, None)
    else:
        params[name] = value
    return set_params(design, layer_id, params)


def set_input(design: Design, shape: tuple[int, ...], dtype: DType | str | None = None) -> Design:
    """Change the dummy input."""
    spec = InputSpec(shape=shape, dtype=DType(dtype) if dtype else design.input.dtype)
    return design.model_copy(update={"input": spec})


def apply_fix(design: Design, error: LayerError, fix: Fix) -> Design:
    """Apply a suggested fix to the layer the error names."""
    layer_id = error.layer_id
    if fix.kind is FixKind.SET_INPUT_DTYPE:
        return set_input(design, design.input.shape, fix.value)
    if fix.kind is FixKind.SET_PARAM:
        return set_param(design, layer_id, fix.param, fix.value)
    if fix.kind is FixKind.INSERT_FLATTEN:
        index = design.layer_index(layer_id)
        design = add_layer(design, "Flatten", index, {})
        return set_param(design, layer_id, fix.param, fix.value) if fix.param else design
    if fix.kind is FixKind.USE_LAZY:
        index = design.layer_index(layer_id)
        params = {k: v for k, v in design.layers[index].params.items() if k != fix.param}
        layers = list(design.layers)
        layers[index] = layers[index].model_copy(update={"type": fix.value, "params": params})
        return _with_layers(design, layers)
    raise ValueError(f"unknown fix kind {fix.kind}")


# ---------------------------------------------------------------- custom layers


def with_custom_layer(design: Design, name: str, source: str, params: dict[str, Any] | None = None) -> Design:
    """The design with this custom layer added, or its code replaced if it has one of that name.

    ``params`` are the arguments the layer was checked with: a copy dropped into the stack starts with them.
    """
    layer = CustomLayerSpec(name=name, source=source, params=dict(params or {}))
    names = design.custom_names()
    customs = list(design.custom_layers)
    if name in names:
        customs[names.index(name)] = layer
    else:
        customs.append(layer)
    return validate_design(design.model_copy(update={"custom_layers": tuple(customs)}))


def rename_class(source: str, old: str, new: str) -> str:
    """The source with every use of the name ``old`` (class statement, ``super(Old, self)``) renamed."""
    lines = source.splitlines(keepends=True)
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise DesignError(f"the code of {old} cannot be read ({error}); fix it before renaming") from None
    for token in reversed(tokens):  # right to left, so a replacement never shifts the ones still to do
        if token.type == tokenize.NAME and token.string == old:
            row, col = token.start
            lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][col + len(old) :]
    return "".join(lines)


def renamed_custom_layer(design: Design, old: str, new: str) -> Design:
    """The design with custom layer ``old`` called ``new``: its class, its code and the stack's layers of it."""
    if not new.isidentifier() or keyword.iskeyword(new) or not new.isascii():
        raise DesignError(f"'{new}' is not a class name; use letters, digits and _, not starting with a digit")
    if new in design.custom_names():
        raise DesignError(f"the design already has a custom layer called {new}")
    customs = tuple(
        c.model_copy(update={"name": new, "source": rename_class(c.source, old, new)}) if c.name == old else c
        for c in design.custom_layers
    )
    layers = tuple(layer.model_copy(update={"type": new}) if layer.type == old else layer for layer in design.layers)
    return validate_design(design.model_copy(update={"custom_layers": customs, "layers": layers}))


def users_of(design: Design, name: str) -> list[int]:
    """Stack positions (1-based) of the layers of type ``name``."""
    return [index + 1 for index, layer in enumerate(design.layers) if layer.type == name]


def without_custom_layer(design: Design, name: str) -> Design:
    """The design without custom layer ``name``; refused while the stack uses it."""
    used = users_of(design, name)
    if used:
        where = f"layer {used[0]}" if len(used) == 1 else "layers " + ", ".join(map(str, used))
        raise DesignError(
            f"{name} is used by the stack's {where}; remove {'it' if len(used) == 1 else 'them'} on the Build page "
            "first, then delete the custom layer"
        )
    customs = tuple(c for c in design.custom_layers if c.name != name)
    return design.model_copy(update={"custom_layers": customs})
