"""Edits of a design. Each returns a new design, so callers keep an undo history for free.

Most edits name an entry by its id, wherever it stands in the tree of blocks; a stack is named by its block's id
(None for the model's own stack) and its key (``layers``, ``body``, ``shortcut``, ``branches/1``), as in
``builder.blocks.edit``, whose tree edits (wrap, unwrap, branches, block fields, fixes) these build on.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from builder.blocks import edit as tree
from builder.catalog import catalog
from builder.design import (
    BlockSpec,
    BlockType,
    CustomLayerSpec,
    Design,
    DesignError,
    DType,
    Entry,
    InputSpec,
    LayerSpec,
    ParallelBlock,
    ResidualBlock,
    SequentialBlock,
    find_entry,
    is_block,
    validate_design,
    walk,
)
from builder.diagnose import Fix, LayerError
from builder.inference import infer_shapes
from builder.samples import Shape, fitted_params, incoming_shape
from builder.trace import Trace

TOP = None  # the model's own stack, as a parent
TOP_STACK = "layers"

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
    taken = {located.entry.id for located in walk(design.layers)}
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
    pass of the built-in layers before it (``incoming_at``); when it cannot be known, the layer starts with the
    catalog's sample values.
    """
    index = len(design.layers) if index is None else index
    return add_layer(design, layer_type, index, incoming=incoming_at(design, TOP, TOP_STACK, index, trace))


def remove_layer(design: Design, layer_id: str) -> Design:
    """Drop the entry with this id, wherever it stands (a block goes with everything in it)."""
    return tree.remove_entry(design, layer_id)


def set_params(design: Design, layer_id: str, params: dict[str, Any]) -> Design:
    """Replace a layer's parameters, wherever it stands."""
    return tree.set_entry_params(design, layer_id, params)


def set_param(design: Design, layer_id: str, name: str, value: Any) -> Design:
    """Set one parameter; ``None`` removes it (back to torch's default)."""
    located = find_entry(design, layer_id)
    if located is None:
        raise KeyError(layer_id)
    params = dict(located.entry.params)
    if value is None:
        params.pop(name, None)
    else:
        params[name] = value
    return set_params(design, layer_id, params)


def set_input(design: Design, shape: tuple[int, ...], dtype: DType | str | None = None) -> Design:
    """Change the dummy input."""
    spec = InputSpec(shape=shape, dtype=DType(dtype) if dtype else design.input.dtype)
    return design.model_copy(update={"input": spec})


def set_name(design: Design, name: str) -> Design:
    """Rename the design (its export's file and class names come from it); blank text keeps "untitled"."""
    return validate_design(design.model_copy(update={"name": name.strip() or "untitled"}))


def apply_fix(design: Design, error: LayerError, fix: Fix) -> Design:
    """Apply a suggested fix to the entry the error names, at the top level or inside a block (a projection
    shortcut, another merge, Flatten inserted, an argument set, the Lazy variant, the input's dtype)."""
    return tree.apply_fix(design, error, fix)


# ---------------------------------------------------------------- the tree: stacks inside blocks

# What a block dropped from the palette holds: a Residual needs a body (Identity until layers replace it), a
# Parallel starts with two branches to fill (each empty one is the identity).
BLOCK_TEMPLATES: dict[BlockType, BlockSpec] = {
    BlockType.SEQUENTIAL: SequentialBlock(),
    BlockType.RESIDUAL: ResidualBlock(body=(LayerSpec(type="Identity"),)),
    BlockType.PARALLEL: ParallelBlock(branches=((), ())),
}


@dataclass(frozen=True)
class Place:
    """Where an entry stands: its block's id (``TOP``, None, for the model's own stack), the stack, the position."""

    parent: str | None
    stack: str
    index: int


def _places(entries: tuple[Entry, ...]) -> Iterator[tuple[Entry, Place]]:
    """Every entry of the tree with its place, depth first in stack order."""
    todo: list[tuple[Entry, Place]] = [(e, Place(TOP, TOP_STACK, i)) for i, e in enumerate(entries)][::-1]
    while todo:
        entry, place = todo.pop()
        yield entry, place
        if is_block(entry):
            inner = [(e, Place(entry.id, s.key, i)) for s in entry.stacks() for i, e in enumerate(s.entries)]
            todo += reversed(inner)


def place_of(design: Design, entry_id: str) -> Place | None:
    """Where the entry with this id stands, or None if the design has no such entry."""
    return next((place for entry, place in _places(design.layers) if entry.id == entry_id), None)


def stack_of(design: Design, parent: str | None, stack: str) -> tuple[Entry, ...]:
    """The entries of a stack: the model's (``parent`` None) or block ``parent``'s ``stack``.

    Raises:
        DesignError: there is no such block, or it has no such stack.
    """
    if parent is TOP and stack == TOP_STACK:
        return design.layers
    located = find_entry(design, parent) if parent is not TOP else None
    block = located.entry if located is not None else None
    found = next((s.entries for s in block.stacks() if s.key == stack), None) if is_block(block) else None
    if found is None:
        raise DesignError(f"the model has no stack '{stack}' in {parent or 'its top level'}; it may have changed")
    return found


def ancestors(design: Design, entry_id: str) -> list[str]:
    """The ids of the blocks that hold the entry, outermost first (empty for a top-level entry)."""
    parents = {entry.id: place.parent for entry, place in _places(design.layers)}
    chain: list[str] = []
    parent = parents.get(entry_id)
    while parent is not TOP:
        chain.append(parent)
        parent = parents[parent]
    return chain[::-1]


def new_entry(design: Design, entry_type: str, incoming: Shape | None = None) -> Entry:
    """A fresh entry for a palette item: a block (``BLOCK_TEMPLATES``) or a layer whose arguments fit ``incoming``."""
    if entry_type in set(BlockType):
        return BLOCK_TEMPLATES[BlockType(entry_type)]
    return LayerSpec(type=entry_type, params=default_params(entry_type, design, incoming))


def insert_entry(
    design: Design,
    entry_type: str,
    parent: str | None = TOP,
    stack: str = TOP_STACK,
    index: int | None = None,
    trace: Trace | None = None,
) -> tuple[Design, str]:
    """Insert a new layer or block from the palette into a stack, at ``index`` (the end by default).

    A layer's arguments fit the tensor it receives there (``incoming_at``). Returns the design and the new entry's
    id.
    """
    entries = stack_of(design, parent, stack)
    index = len(entries) if index is None else max(0, min(index, len(entries)))
    entry = new_entry(design, entry_type, incoming_at(design, parent, stack, index, trace))
    design = tree.add_entry(design, entry, parent, stack, index)
    return design, stack_of(design, parent, stack)[index].id


def _with_stack(design: Design, parent: str | None, stack: str, change: Callable[[tuple], tuple]) -> Design:
    """The design with one stack's entries replaced by ``change(entries)``; every id is kept."""
    stack_of(design, parent, stack)  # raises for a stack that is not there
    if parent is TOP:
        return design.model_copy(update={"layers": tuple(change(design.layers))})

    def visit(entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
        return tuple(
            entry.with_stacks(
                [
                    tuple(change(s.entries)) if entry.id == parent and s.key == stack else visit(s.entries)
                    for s in entry.stacks()
                ]
            )
            if is_block(entry)
            else entry
            for entry in entries
        )

    return design.model_copy(update={"layers": visit(design.layers)})


def move_entry(design: Design, entry_id: str, parent: str | None, stack: str, index: int) -> Design:
    """Move an entry (with everything in it) to position ``index`` of a stack, counted without the entry itself.

    Raises:
        KeyError: no entry has this id.
        DesignError: a block would go inside itself.
    """
    located = find_entry(design, entry_id)
    if located is None:
        raise KeyError(entry_id)
    if parent is not TOP and (parent == entry_id or entry_id in ancestors(design, parent)):
        raise DesignError(f"a block cannot go inside itself: {located.entry.type} {entry_id} holds that stack")
    stack_of(design, parent, stack)
    design = tree.remove_entry(design, entry_id)
    return _with_stack(design, parent, stack, lambda entries: _inserted(entries, index, located.entry))


def _inserted(entries: tuple[Entry, ...], index: int, entry: Entry) -> tuple[Entry, ...]:
    at = max(0, min(index, len(entries)))
    return (*entries[:at], entry, *entries[at:])


def move_by(design: Design, entry_id: str, offset: int) -> Design:
    """Move an entry ``offset`` places up (negative) or down its own stack."""
    place = place_of(design, entry_id)
    if place is None:
        raise KeyError(entry_id)
    return move_entry(design, entry_id, place.parent, place.stack, place.index + offset)


def duplicate_entry(design: Design, entry_id: str) -> tuple[Design, str]:
    """Insert a copy of an entry right after it (a block with all it holds, under new ids); returns the copy's id."""
    located, place = find_entry(design, entry_id), place_of(design, entry_id)
    if located is None or place is None:
        raise KeyError(entry_id)
    design = tree.add_entry(design, located.entry, place.parent, place.stack, place.index + 1)
    return design, stack_of(design, place.parent, place.stack)[place.index + 1].id


def _chain_before(design: Design, parent: str | None, stack: str, index: int) -> tuple[Entry, ...]:
    """The entries a tensor runs through before position ``index`` of a stack: those before each enclosing block
    in its own stack, outermost first, then the stack's first ``index`` entries (every stack of a block gets the
    block's input)."""
    chain: list[Entry] = []
    if parent is not TOP:
        for block in [*ancestors(design, parent), parent]:
            place = place_of(design, block)
            chain += stack_of(design, place.parent, place.stack)[: place.index]
    return (*chain, *stack_of(design, parent, stack)[:index])


def incoming_at(design: Design, parent: str | None, stack: str, index: int, trace: Trace | None = None) -> Shape | None:
    """The shape an entry inserted at position ``index`` of a stack would receive, if it can be known safely.

    Read from ``trace`` (a forward pass of ``design``) where it got there; else from a meta-device pass of the
    entries before it. None when that pass fails, or when a custom layer stands before it and the trace does not
    cover it: custom code is never run for this.
    """
    chain = _chain_before(design, parent, stack, index)
    if not any(is_block(entry) for entry in chain) and parent is TOP:
        return incoming_shape(design, index, trace)
    known = _traced_incoming(design, parent, stack, index, trace) if trace is not None else None
    if known is not None:
        return known
    if any(not is_block(e.entry) and e.entry.type not in catalog() for e in walk(chain)):
        return None
    try:
        return infer_shapes(design.model_copy(update={"layers": chain, "custom_layers": ()})).output_shape
    except DesignError:
        return None


def _traced_incoming(design: Design, parent: str | None, stack: str, index: int, trace: Trace) -> Shape | None:
    """The incoming shape from a run of this very design: the output of the entry before, or the block's input."""
    if not trace.ran or (trace.input_shape, trace.input_dtype) != (design.input.shape, design.input.dtype):
        return None
    entries = stack_of(design, parent, stack)
    if index > 0:
        record = trace.layer(entries[index - 1].id)
        return record.output_shape if record is not None else None
    if parent is TOP:
        return design.input.shape
    record = trace.layer(parent)
    return record.input_shape if record is not None else None


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
    layers = _map_layers(
        design.layers, lambda layer: layer.model_copy(update={"type": new}) if layer.type == old else layer
    )
    return validate_design(design.model_copy(update={"custom_layers": customs, "layers": layers}))


def _map_layers(entries: tuple[Entry, ...], change: Callable[[LayerSpec], LayerSpec]) -> tuple[Entry, ...]:
    """The entries with ``change`` applied to every layer of the tree."""
    return tuple(
        entry.with_stacks([_map_layers(stack.entries, change) for stack in entry.stacks()])
        if is_block(entry)
        else change(entry)
        for entry in entries
    )


def users_of(design: Design, name: str) -> list[int]:
    """Stack positions (1-based) of the top-level entries that are, or hold, layers of type ``name``."""
    return sorted({located.index + 1 for located in walk(design.layers) if located.entry.type == name})


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
