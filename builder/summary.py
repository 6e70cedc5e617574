"""The layer table: rows computed from a trace, and a torchinfo-like text rendering of them.

``summary_rows`` is the data (the app turns it into a DataFrame); ``format_summary`` only lays it out. A design
with blocks is shown as a tree, like torchinfo's depth view: ``tree_rows`` walks the design and reads each entry's
record from the trace by its path (``layer-5/body/2``); ``summary_json`` nests the same rows for ``--json``.
This module imports neither torch nor the design model at import time (the CLI reads ``printable`` first).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.design import BlockSpec, Design, Entry
    from builder.trace import LayerTrace, Trace

COLUMNS: tuple[str, ...] = (
    "#", "layer", "type", "input shape", "output shape", "params", "formula", "FLOPs", "notes",
)  # fmt: skip
NUMERIC: frozenset[str] = frozenset({"#", "params", "FLOPs"})  # right-aligned, thousands separators
UNKNOWN = "?"
MAX_WIDTH = 100  # the rules and the wrapped error never grow past this
LAZY_NOTE = "lazy: parameters uninitialized until a forward pass"
SI_PREFIXES: tuple[tuple[float, str], ...] = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))
BRANCH, LAST, PIPE, SPACE = "├─", "└─", "│ ", "  "  # torchinfo's tree drawing


def format_shape(shape: Sequence[int] | None) -> str:
    """A shape as Python writes a tuple (``(2, 20)``, ``(10,)``), or ``?`` when unknown."""
    if shape is None:
        return UNKNOWN
    return str(tuple(shape))


def summary_rows(trace: Trace) -> list[dict[str, Any]]:
    """One row per traced layer, keyed by COLUMNS: shapes as text, params and FLOPs as ints."""
    rows = []
    for layer in trace.layers:
        notes = list(layer.notes)
        if not trace.ran and layer.lazy:
            notes.append(LAZY_NOTE)
        values = (
            layer.index + 1,
            layer.id,
            layer.type,
            format_shape(layer.input_shape),
            format_shape(layer.output_shape),
            layer.params,
            layer.formula,
            layer.flops,
            "; ".join(notes),
        )
        rows.append(dict(zip(COLUMNS, values, strict=True)))
    return rows


# ------------------------------------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class _Node:
    """One line of the tree before it is drawn: its depth (top level 1), its row, and whether it closes a list."""

    depth: int
    row: dict[str, Any]
    children: tuple[_Node, ...] = ()


def _row(number: int | None, name: str, kind: str, record: LayerTrace | None, notes: list[str]) -> dict[str, Any]:
    if record is not None:
        notes = [*notes, *record.notes]
    values = (
        number,
        name,
        kind,
        format_shape(record.input_shape if record else None),
        format_shape(record.output_shape if record else None),
        record.params if record else None,
        record.formula if record else None,
        record.flops if record else None,
        "; ".join(notes),
    )
    return dict(zip(COLUMNS, values, strict=True))


def _entry_name(entry: Entry) -> str:
    return f"{entry.id} {entry.label}" if entry.label else entry.id


def _block_kind(block: BlockSpec) -> str:
    return f"{block.type} x {block.repeat}" if block.repeat > 1 else str(block.type)


def _merge_note(block: BlockSpec) -> list[str]:
    from builder.blocks.merge import merge_label
    from builder.design import block_dim, block_merge

    merge = block_merge(block)
    return [f"merge: {merge_label(merge, block_dim(block)).lstrip('+x ')}"] if merge is not None else []


def _title_row(title: str, start: LayerTrace | None, end: LayerTrace | None) -> dict[str, Any]:
    """A line that titles a stack (``body``, ``branch 2``): what goes in, what comes out, no totals of its own."""
    row = _row(None, title, "", None, [])
    row["input shape"] = format_shape(start.input_shape) if start else ""
    row["output shape"] = format_shape(end.output_shape) if end else ""
    return row


def _stack_nodes(block: BlockSpec, path: str, depth: int, records: dict[str, LayerTrace]) -> Iterator[_Node]:
    """A copy's stacks: a Sequential's entries directly, else a titled line per stack holding its entries."""
    copy = records.get(path)
    for stack in block.stacks():
        nodes = tuple(
            node
            for position, entry in enumerate(stack.entries)
            for node in _entry_nodes(entry, f"{path}/{stack.key}/{position}", depth, None, records)
        )
        if stack.field == "layers":
            yield from nodes
        elif not stack.entries:
            yield _Node(depth, _title_row(f"{stack.title}: identity", copy, copy and _identity(copy)))
        elif nodes:
            start = copy or records.get(f"{path}/{stack.key}/0")
            end = records.get(f"{path}/{stack.key}/{len(stack.entries) - 1}")
            yield _Node(depth, _title_row(stack.title, start, end), nodes)


def _identity(record: LayerTrace) -> LayerTrace:
    """An identity stack's end: what it was given."""
    from dataclasses import replace

    return replace(record, output_shape=record.input_shape)


def _entry_nodes(
    entry: Entry, path: str, depth: int, number: int | None, records: dict[str, LayerTrace]
) -> Iterator[_Node]:
    """The entry's line, with its children when a block; nothing for a layer the run did not reach."""
    from builder.design import is_block

    record = records.get(path)
    if not is_block(entry):
        if record is not None:
            yield _Node(depth, _row(number, _entry_name(entry), entry.type, record, []))
        return
    if entry.repeat == 1:
        children = tuple(_stack_nodes(entry, path, depth + 1, records))
    else:
        children = tuple(
            _Node(depth + 1, _row(None, f"copy {copy}", "", records.get(f"{path}#{copy}"), []), nodes)
            for copy in range(1, entry.repeat + 1)
            if (nodes := tuple(_stack_nodes(entry, f"{path}#{copy}", depth + 1, records)))
        )
    if record is not None or children:
        yield _Node(depth, _row(number, _entry_name(entry), _block_kind(entry), record, _merge_note(entry)), children)


def _drawn(nodes: Sequence[_Node], prefix: str, depth: int | None) -> Iterator[dict[str, Any]]:
    """The rows of a list of sibling nodes, names drawn into the tree (``├─``, ``└─``), down to ``depth``."""
    for position, node in enumerate(nodes):
        last = position == len(nodes) - 1
        lead = "" if node.depth == 1 else prefix + (LAST if last else BRANCH)
        yield node.row | {"layer": lead + node.row["layer"]}
        inner = "" if node.depth == 1 else prefix + (SPACE if last else PIPE)
        yield from _drawn([c for c in node.children if depth is None or c.depth <= depth], inner, depth)


def tree_rows(design: Design, trace: Trace, depth: int | None = None) -> list[dict[str, Any]]:
    """Rows of the tree, keyed by COLUMNS: top-level entries numbered, the entries inside blocks drawn below them.

    Args:
        design: the traced design; its blocks give the tree.
        trace: its trace; an entry the run did not reach has no row, a block it entered shows what ran.
        depth: levels to show (1: the top-level entries only, as torchinfo's ``depth``); None shows all.

    Returns:
        Row dicts; "#" and the numbers are None on lines that only title a stack (``body``, ``copy 2``).
    """
    records = trace.records()
    nodes = [
        node
        for index, entry in enumerate(design.layers)
        for node in _entry_nodes(entry, entry.id, 1, index + 1, records)
    ]
    return list(_drawn(nodes, "", depth))


def _json_rows(entries: tuple[Entry, ...], path: str, key: str, records: dict[str, LayerTrace]) -> list[dict]:
    rows = []
    for position, entry in enumerate(entries):
        row = _json_entry(entry, f"{path}/{key}/{position}", records)
        if row is not None:
            rows.append(row)
    return rows


def _json_stacks(block: BlockSpec, path: str, records: dict[str, LayerTrace]) -> dict[str, Any]:
    from builder.design import ParallelBlock

    stacks = {stack.key: _json_rows(stack.entries, path, stack.key, records) for stack in block.stacks()}
    if isinstance(block, ParallelBlock):
        return {"branches": list(stacks.values())}
    return stacks


def _json_entry(entry: Entry, path: str, records: dict[str, LayerTrace]) -> dict[str, Any] | None:
    """A row of --json: the record's data; a block's holds its stacks' rows (its first copy's) and ``copies``."""
    from builder.design import block_dim, block_merge, is_block

    record = records.get(path)
    if not is_block(entry):
        return record.to_dict() if record is not None else None
    first = _json_stacks(entry, path if entry.repeat == 1 else f"{path}#1", records)
    if record is None and not any(first.values()):
        return None  # the run did not reach it
    row = record.to_dict() if record is not None else {"id": entry.id, "type": entry.type}
    merge = block_merge(entry)
    row |= {"label": entry.label, "repeat": entry.repeat}
    if merge is not None:
        row |= {"merge": str(merge)} | ({"dim": block_dim(entry)} if merge == "concat" else {})
    row |= first
    if entry.repeat > 1:
        row["copies"] = [_json_copy(entry, f"{path}#{copy}", copy, records) for copy in range(1, entry.repeat + 1)]
    return row


def _json_copy(block: BlockSpec, path: str, copy: int, records: dict[str, LayerTrace]) -> dict[str, Any]:
    record = records.get(path)
    return {"copy": copy} | (record.to_dict() if record is not None else {}) | _json_stacks(block, path, records)


def summary_json(design: Design, trace: Trace) -> dict[str, Any]:
    """The trace as JSON-ready data with one row per top-level entry; a block's row holds its children.

    A block row has ``label``, ``repeat``, ``merge`` (and ``dim`` for concat) and its stacks as lists of rows:
    ``layers`` (Sequential), ``body`` and ``shortcut`` (Residual) or ``branches`` (a list of lists), for its
    first copy; a repeated block also lists ``copies``, each with its own rows. Without blocks this is
    ``trace.to_dict()``.
    """
    data = trace.to_dict()
    records = trace.records()
    rows = (_json_entry(entry, entry.id, records) for entry in design.layers)
    data["layers"] = [row for row in rows if row is not None]
    return data


def _has_blocks(design: Design) -> bool:
    from builder.design import has_blocks

    return has_blocks(design)


def _megabytes(nbytes: int) -> str:
    return f"{nbytes / 1e6:.2f}"


def compact(count: int, decimals: int = 2) -> str:
    """1871596544 -> ``1.87 G`` (an aid for reading long totals); below a thousand as it is."""
    for scale, prefix in SI_PREFIXES:
        if count >= scale:
            return f"{count / scale:.{decimals}f} {prefix}"
    return str(count)


def printable(text: str) -> str:
    """One line for a terminal: control characters (escape sequences, line breaks) and the like become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _cell(column: str, value: Any) -> str:
    if value is None:  # a line that only titles a stack
        return ""
    return f"{value:,}" if column in NUMERIC else printable(str(value))


def _pad(column: str, value: str, width: int) -> str:
    return value.rjust(width) if column in NUMERIC else value.ljust(width)


def _table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Header and rows, columns padded to their widest cell; the last column (notes) is left ragged."""
    headers = [c.capitalize() if c != "FLOPs" else c for c in COLUMNS]
    cells = [[_cell(c, row[c]) for c in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in [headers, *cells]) for i in range(len(COLUMNS) - 1)]

    def line(values: list[str]) -> str:
        padded = [
            _pad(column, value, width) for column, value, width in zip(COLUMNS[:-1], values[:-1], widths, strict=True)
        ]
        return "  ".join([*padded, values[-1]]).rstrip()

    return [line(headers), *(line(c) for c in cells)]


def _totals(trace: Trace) -> list[str]:
    output = format_shape(trace.output_shape) if trace.ok else f"{UNKNOWN} (the forward pass did not finish)"
    if not trace.ran and trace.error is None:
        output = f"{UNKNOWN} (not run: shapes and lazy parameters are known after the forward pass)"
    flops = f"{trace.total_flops:,}"
    if trace.total_flops >= 1000:
        flops += f" ({compact(trace.total_flops)}FLOPs)"
    return [
        f"Output shape: {output}",
        f"Total params: {trace.total_params:,}",
        f"Total FLOPs: {flops}",
        f"Parameter memory (MB): {_megabytes(trace.param_bytes)}",
        f"Activation memory (MB): {_megabytes(trace.activation_bytes)}",
    ]


def format_summary(
    trace: Trace, show_error: bool = True, design: Design | None = None, depth: int | None = None
) -> str:
    """A text table of the trace, torchinfo-style, with totals and the error (if any) at the end.

    Args:
        trace: a full or construct-only trace (``trace.ran``), possibly stopped by an error.
        show_error: append ``trace.error.message``; callers that report the error elsewhere pass False.
        design: the traced design; when it has blocks, the table is a tree (``tree_rows``).
        depth: the tree's levels to show (1: top-level entries only); None shows all.

    Returns:
        The table as text, ending with a newline.
    """
    from_tree = design is not None and _has_blocks(design)
    table = _table_lines(tree_rows(design, trace, depth) if from_tree else summary_rows(trace))
    width = min(MAX_WIDTH, max(len(line) for line in table))
    heavy, light = "=" * width, "-" * width
    title = [f"Design: {printable(trace.name)}", f"Input: {format_shape(trace.input_shape)} {trace.input_dtype}"]
    lines = [heavy, *title, heavy, table[0], light, *table[1:], heavy, *_totals(trace), heavy]
    if show_error and trace.error is not None:
        lines += [*textwrap.wrap(printable(f"Error: {trace.error.message}"), width=max(width, 60)), heavy]
    return "\n".join(lines) + "\n"
