"""Edits of a design's tree of blocks. Each returns a new design, like ``builder.edit`` does for a flat stack.

Entries are found by id anywhere in the tree (ids are unique across it); a stack is named by its block's id and
its key (``layers``, ``body``, ``shortcut``, ``branches/1``), the top-level stack by ``None``. ``apply_fix`` applies
any fix a trace offers, to a top-level layer or to one inside a block.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from builder.design import (
    BlockSpec,
    BlockType,
    Design,
    DesignError,
    DType,
    Entry,
    InputSpec,
    LayerSpec,
    Merge,
    ParallelBlock,
    ResidualBlock,
    SequentialBlock,
    find_entry,
    is_block,
    validate_design,
    walk,
)
from builder.diagnose import Fix, FixKind, LayerError

TOP = None  # the design's own stack, as a parent
StackFn = Callable[[str | None, str, tuple[Entry, ...]], Iterable[Entry]]
BLOCK_MODELS: dict[BlockType, type[BlockSpec]] = {
    BlockType.SEQUENTIAL: SequentialBlock,
    BlockType.RESIDUAL: ResidualBlock,
    BlockType.PARALLEL: ParallelBlock,
}


def _rewrite(entries: tuple[Entry, ...], parent: str | None, key: str, fn: StackFn) -> tuple[Entry, ...]:
    """Apply ``fn(parent, key, entries)`` to every stack of the tree, innermost stacks first."""
    done = []
    for entry in entries:
        if is_block(entry):
            entry = entry.with_stacks([_rewrite(s.entries, entry.id, s.key, fn) for s in entry.stacks()])
        done.append(entry)
    return tuple(fn(parent, key, tuple(done)))


def _with_tree(design: Design, fn: StackFn) -> Design:
    return design.model_copy(update={"layers": _rewrite(design.layers, TOP, "layers", fn)})


def _require(design: Design, entry_id: str) -> Entry:
    located = find_entry(design, entry_id)
    if located is None:
        raise KeyError(entry_id)
    return located.entry


def _replace(design: Design, entry_id: str, make: Callable[[Entry], list[Entry]]) -> Design:
    """The design with the entry ``entry_id`` replaced by ``make(entry)`` (none, one or several entries)."""
    _require(design, entry_id)

    def swap(_parent: str | None, _key: str, entries: tuple[Entry, ...]) -> list[Entry]:
        return [new for entry in entries for new in (make(entry) if entry.id == entry_id else [entry])]

    return _with_tree(design, swap)


def _next_ids(design: Design, count: int) -> list[str]:
    """``count`` fresh ids ("layer-N"), after every id the tree holds."""
    taken = {located.entry.id for located in walk(design.layers)}
    numbers = [int(i.split("-")[1]) for i in taken if re.fullmatch(r"layer-\d+", i)]
    counter, ids = max(numbers, default=0), []
    while len(ids) < count:
        counter += 1
        if f"layer-{counter}" not in taken:
            ids.append(f"layer-{counter}")
    return ids


def _fresh(design: Design, entries: list[Entry]) -> list[Entry]:
    """The entries with new ids throughout (copies must not share ids with the tree)."""
    count = sum(1 for _ in walk(tuple(entries)))
    ids = iter(_next_ids(design, count))

    def renamed(entry: Entry) -> Entry:
        entry = entry.model_copy(update={"id": next(ids)})
        if is_block(entry):
            entry = entry.with_stacks([[renamed(e) for e in stack.entries] for stack in entry.stacks()])
        return entry

    return [renamed(entry) for entry in entries]


def _entries_from(data: list[dict[str, Any]]) -> list[Entry]:
    """Entries from plain data (a fix's value), through the design model so they are validated like a file."""
    probe = Design.model_validate({"input": {"shape": [1]}, "layers": data})
    return list(probe.layers)


# ------------------------------------------------------------------------------------------------ stacks


def add_entry(
    design: Design, entry: Entry, parent: str | None = TOP, stack: str = "layers", position: int | None = None
) -> Design:
    """Insert an entry (given fresh ids) into a stack: the top level, or block ``parent``'s ``stack``."""
    if parent is not TOP:
        block = _require(design, parent)
        if not is_block(block) or stack not in {s.key for s in block.stacks()}:
            raise DesignError(f"{parent} has no stack '{stack}'")
    [entry] = _fresh(design, [entry])

    def insert(owner: str | None, key: str, entries: tuple[Entry, ...]) -> list[Entry]:
        if owner != parent or key != stack:
            return list(entries)
        at = len(entries) if position is None else max(0, min(position, len(entries)))
        return [*entries[:at], entry, *entries[at:]]

    return _with_tree(design, insert)


def remove_entry(design: Design, entry_id: str) -> Design:
    """Drop the entry with this id, wherever it stands (a block goes with everything in it)."""
    return _replace(design, entry_id, lambda _entry: [])


def set_entry_params(design: Design, layer_id: str, params: dict[str, Any]) -> Design:
    """Replace a layer's parameters, wherever it stands."""
    return _replace(design, layer_id, lambda entry: [entry.model_copy(update={"params": dict(params)})])


def set_block(design: Design, block_id: str, **fields: Any) -> Design:
    """Change a block's ``label``, ``repeat``, ``merge`` or ``dim`` (a merge other than concat drops the dim).

    Raises:
        DesignError: the entry is not a block, or the field is not one of these; the result is validated.
    """
    block = _require(design, block_id)
    allowed = {"label", "repeat"} | ({"merge", "dim"} if not isinstance(block, SequentialBlock) else set())
    if not is_block(block) or not set(fields) <= allowed:
        raise DesignError(f"{block_id}: a {block.type} has no field {', '.join(sorted(set(fields) - allowed))}")
    if "merge" in allowed and fields.get("merge", block.merge) != Merge.CONCAT:
        fields["dim"] = None
    return validate_design(_replace(design, block_id, lambda entry: [entry.model_copy(update=fields)]))


def add_branch(design: Design, block_id: str) -> Design:
    """A Parallel with one more branch, empty (the identity) at first."""
    block = _require(design, block_id)
    if not isinstance(block, ParallelBlock):
        raise DesignError(f"{block_id}: only a Parallel has branches")
    return _replace(design, block_id, lambda entry: [entry.model_copy(update={"branches": (*entry.branches, ())})])


def remove_branch(design: Design, block_id: str, branch: int) -> Design:
    """A Parallel without its branch ``branch`` (counted from 0); its last branch stays."""
    block = _require(design, block_id)
    if not isinstance(block, ParallelBlock) or len(block.branches) < 2:
        raise DesignError(f"{block_id}: a Parallel keeps at least one branch")
    branches = tuple(b for number, b in enumerate(block.branches) if number != branch)
    return _replace(design, block_id, lambda entry: [entry.model_copy(update={"branches": branches})])


# ------------------------------------------------------------------------------------------------ wrap


def _siblings(design: Design, entry_ids: list[str]) -> tuple[str | None, str, list[int]]:
    """The stack holding all these entries, and their positions in it; they must stand in a row."""
    found: list[tuple[str | None, str, int]] = []

    def note(parent: str | None, key: str, entries: tuple[Entry, ...]) -> tuple[Entry, ...]:
        found.extend((parent, key, i) for i, entry in enumerate(entries) if entry.id in entry_ids)
        return entries

    _rewrite(design.layers, TOP, "layers", note)
    stacks = {(parent, key) for parent, key, _ in found}
    positions = sorted(i for _, _, i in found)
    in_a_row = bool(positions) and positions == list(range(positions[0], positions[-1] + 1))
    if len(found) != len(set(entry_ids)) or len(stacks) != 1 or not in_a_row:
        raise DesignError("wrap a run of entries that stand next to each other in one stack")
    ((parent, key),) = stacks
    return parent, key, positions


def wrap(design: Design, entry_ids: list[str], block_type: BlockType | str, label: str = "") -> Design:
    """Put a run of neighbouring entries into a new block: a Sequential's layers, a Residual's body (identity
    shortcut) or a Parallel's single branch. The Sequential and the one-branch Parallel compute what the entries
    did; a Residual adds its input, as asked.
    """
    parent, key, positions = _siblings(design, entry_ids)
    inner: list[Entry] = []
    kind = BlockType(block_type)
    stacks = {BlockType.SEQUENTIAL: "layers", BlockType.RESIDUAL: "body", BlockType.PARALLEL: "branches"}
    [block_id] = _next_ids(design, 1)

    def fold(owner: str | None, stack_key: str, entries: tuple[Entry, ...]) -> list[Entry]:
        if owner != parent or stack_key != key:
            return list(entries)
        inner.extend(entries[positions[0] : positions[-1] + 1])
        field = tuple(inner) if kind is not BlockType.PARALLEL else (tuple(inner),)
        block = BLOCK_MODELS[kind](id=block_id, label=label, **{stacks[kind]: field})
        return [*entries[: positions[0]], block, *entries[positions[-1] + 1 :]]

    return validate_design(_with_tree(design, fold))


def unwrap(design: Design, block_id: str) -> Design:
    """Replace a block by what it holds: a Sequential's layers (each copy, with new ids), a Residual's body (its
    shortcut and merge are dropped), a Parallel's only branch.

    Raises:
        DesignError: a Parallel with several branches (there is no one stack to put in its place).
    """
    block = _require(design, block_id)
    if not is_block(block):
        raise DesignError(f"{block_id} is a layer, not a block")
    if isinstance(block, ParallelBlock) and len(block.branches) != 1:
        raise DesignError(f"{block_id}: a Parallel with {len(block.branches)} branches cannot be unwrapped; remove "
                          "all branches but one first")  # fmt: skip
    inner = list(block.stacks()[0].entries)
    copies = inner + _fresh(design, inner * (block.repeat - 1)) if block.repeat > 1 else inner
    return _replace(design, block_id, lambda _entry: copies)


# ------------------------------------------------------------------------------------------------ fixes


def _insert_before(design: Design, entry_id: str, entry: Entry) -> Design:
    [entry] = _fresh(design, [entry])
    return _replace(design, entry_id, lambda found: [entry, found])


def apply_fix(design: Design, error: LayerError, fix: Fix) -> Design:
    """Apply a suggested fix to the entry the error names, at the top level or inside a block."""
    entry_id = error.layer_id
    if fix.kind is FixKind.SET_INPUT_DTYPE:
        spec = InputSpec(shape=design.input.shape, dtype=DType(fix.value))
        return design.model_copy(update={"input": spec})
    if fix.kind is FixKind.SET_PARAM:
        return _set_param(design, entry_id, fix.param, fix.value)
    if fix.kind is FixKind.INSERT_FLATTEN:
        design = _insert_before(design, entry_id, LayerSpec(type="Flatten"))
        return _set_param(design, entry_id, fix.param, fix.value) if fix.param else design
    if fix.kind is FixKind.USE_LAZY:
        layer = _require(design, entry_id)
        params = {k: v for k, v in layer.params.items() if k != fix.param}
        return _replace(
            design, entry_id, lambda entry: [entry.model_copy(update={"type": fix.value, "params": params})]
        )
    if fix.kind is FixKind.ADD_PROJECTION:
        shortcut = tuple(_fresh(design, _entries_from(fix.value)))
        return validate_design(
            _replace(design, entry_id, lambda entry: [entry.model_copy(update={"shortcut": shortcut})])
        )
    if fix.kind is FixKind.SET_MERGE:
        return set_block(design, entry_id, merge=Merge(fix.value))
    raise ValueError(f"unknown fix kind {fix.kind}")


def _set_param(design: Design, layer_id: str, name: str, value: Any) -> Design:
    params = dict(_require(design, layer_id).params)
    params[name] = value
    return set_entry_params(design, layer_id, params)
