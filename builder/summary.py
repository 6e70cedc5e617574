"""The layer table: rows computed from a trace, and a torchinfo-like text rendering of them.

``summary_rows`` is the data (the app turns it into a DataFrame); ``format_summary`` only lays it out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.inference import Trace

COLUMNS: tuple[str, ...] = ("#", "layer", "type", "input shape", "output shape", "params", "FLOPs", "notes")
NUMERIC: frozenset[str] = frozenset({"#", "params", "FLOPs"})  # right-aligned, thousands separators
UNKNOWN = "?"
MAX_WIDTH = 100  # the rules and the wrapped error never grow past this
LAZY_NOTE = "lazy: parameters uninitialized until a forward pass"
SI_PREFIXES: tuple[tuple[float, str], ...] = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K"))


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
            layer.flops,
            "; ".join(notes),
        )
        rows.append(dict(zip(COLUMNS, values, strict=True)))
    return rows


def _megabytes(nbytes: int) -> str:
    return f"{nbytes / 1e6:.2f}"


def _compact(count: int) -> str:
    """1871596544 -> ``1.87 G`` (an aid for reading long totals)."""
    for scale, prefix in SI_PREFIXES:
        if count >= scale:
            return f"{count / scale:.2f} {prefix}"
    return str(count)


def printable(text: str) -> str:
    """One line for a terminal: control characters (escape sequences, line breaks) and the like become spaces."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _cell(column: str, value: Any) -> str:
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
        flops += f" ({_compact(trace.total_flops)}FLOPs)"
    return [
        f"Output shape: {output}",
        f"Total params: {trace.total_params:,}",
        f"Total FLOPs: {flops}",
        f"Parameter memory (MB): {_megabytes(trace.param_bytes)}",
        f"Activation memory (MB): {_megabytes(trace.activation_bytes)}",
    ]


def format_summary(trace: Trace, show_error: bool = True) -> str:
    """A text table of the trace, torchinfo-style, with totals and the error (if any) at the end.

    Args:
        trace: a full or construct-only trace (``trace.ran``), possibly stopped by an error.
        show_error: append ``trace.error.message``; callers that report the error elsewhere pass False.

    Returns:
        The table as text, ending with a newline.
    """
    table = _table_lines(summary_rows(trace))
    width = min(MAX_WIDTH, max(len(line) for line in table))
    heavy, light = "=" * width, "-" * width
    title = [f"Design: {printable(trace.name)}", f"Input: {format_shape(trace.input_shape)} {trace.input_dtype}"]
    lines = [heavy, *title, heavy, table[0], light, *table[1:], heavy, *_totals(trace), heavy]
    if show_error and trace.error is not None:
        lines += [*textwrap.wrap(printable(f"Error: {trace.error.message}"), width=max(width, 60)), heavy]
    return "\n".join(lines) + "\n"
