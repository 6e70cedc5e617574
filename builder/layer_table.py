"""The Build page's layer table and lazy panel as data: one row per top-level entry of the design, however far the
forward pass got.

A run that fails stops at a layer, so its trace holds only the layers before it. The table still lists every entry:
the ones the run reached with what it measured, the failing one marked, the ones after it "not reached" with what
building them told (their parameters, unless lazy). Entries are named as a person writes them
(``entry_text``: ``Conv2d(1, 6, 5, padding=2)``), never by their internal ids.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from builder.catalog import catalog
from builder.design import Entry, LayerSpec, is_block, is_shared, walk
from builder.summary import LAZY_NOTE, format_shape

if TYPE_CHECKING:
    from builder.design import Design
    from builder.trace import LayerTrace, ParamInfo, Trace

COLUMNS: tuple[str, ...] = (
    "#", "layer", "input shape", "output shape", "params", "formula", "FLOPs", "status", "notes",
)  # fmt: skip


class Status(StrEnum):
    """How far the forward pass got with an entry."""

    RAN = "ran"
    BUILT = "built"  # the forward pass has not been run: shapes are known after it
    FAILED = "failed"
    NOT_REACHED = "not reached"


def _value(value: object) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


def key_args(spec: LayerSpec) -> dict[str, object]:
    """The arguments worth showing: torch's required ones and those set away from their default."""
    entry = catalog().get(spec.type)
    if entry is None:  # a custom layer: every argument is the user's own
        return dict(spec.params)
    shown = {}
    for name, value in spec.params.items():
        param = entry.param(name)
        default = param.default if param else None
        if param is None or param.required or _normalise(value) != _normalise(default):
            shown[name] = value
    return shown


def _normalise(value: object) -> object:
    """Compare JSON lists with torch's tuple defaults (``stride=[1, 1]`` vs ``(1, 1)``)."""
    return tuple(value) if isinstance(value, list) else value


def split_call(layer_type: str, shown: Mapping[str, Any]) -> tuple[list[Any], list[tuple[str, Any]]]:
    """A call's arguments as a person writes it: the leading ones (torch's required, positional-capable
    parameters, in signature order, up to the first one left unset) by position, the rest by keyword, in signature
    order. A custom layer's arguments are all by keyword (its signature is its author's)."""
    entry = catalog().get(layer_type)
    if entry is None:
        return [], list(shown.items())
    rest = dict(shown)
    positional: list[Any] = []
    leading = True
    for param in entry.params:
        leading = leading and param.required and not param.keyword_only and param.name in rest
        if leading:
            positional.append(rest.pop(param.name))
    ordered = [p.name for p in entry.params if p.name in rest] + [n for n in rest if entry.param(n) is None]
    return positional, [(name, rest[name]) for name in ordered]


def call_args(spec: LayerSpec) -> str:
    """A layer's arguments as the stack shows them: ``1, 6, 5, padding=2``."""
    positional, named = split_call(spec.type, key_args(spec))
    return ", ".join([*map(_value, positional), *(f"{name}={_value(value)}" for name, value in named)])


def entry_text(entry: Entry) -> str:
    """An entry as the stack and the table name it: ``Conv2d(1, 6, 5, padding=2)``, ``Residual block "res1" x2
    (3 entries)``."""
    if is_shared(entry):
        return f"shares {entry.of}"
    if is_block(entry):
        inside = sum(1 for _ in walk((entry,))) - 1
        label = f' "{entry.label}"' if entry.label else ""
        repeat = f" x{entry.repeat}" if entry.repeat > 1 else ""
        return f"{entry.type} block{label}{repeat} ({inside} {'entry' if inside == 1 else 'entries'})"
    text = f"{entry.type}({call_args(entry)})"
    return f"{entry.label}: {text}" if entry.label else text


def layer_rows(design: Design, trace: Trace, built: Trace | None = None) -> list[dict[str, Any]]:
    """One row per top-level entry, keyed by COLUMNS.

    Args:
        design: the design the trace is of.
        trace: its trace, run or only built; possibly stopped by an error.
        built: the design built without running (``run=False``), for the entries a failed run did not reach;
            None when ``trace`` reached every entry.

    Returns:
        Rows with shapes as text and params/FLOPs as ints (None where unknown).
    """
    ran = {record.id: record for record in trace.layers}
    before = {record.id: record for record in built.layers} if built is not None else {}
    rows = []
    for index, entry in enumerate(design.layers):
        record = ran.get(entry.id)
        status = _status(trace, index, record is not None)
        rows.append(_row(index, entry, record or before.get(entry.id), status, trace))
    return rows


def _status(trace: Trace, index: int, reached: bool) -> Status:
    if reached:
        return Status.RAN if trace.ran else Status.BUILT
    return Status.FAILED if trace.error is not None and trace.error.index == index else Status.NOT_REACHED


def _row(index: int, entry: Entry, record: LayerTrace | None, status: Status, trace: Trace) -> dict[str, Any]:
    reached = status in (Status.RAN, Status.BUILT)
    lazy = record is not None and record.lazy
    notes = list(record.notes) if record is not None and reached else []
    if status is Status.FAILED:
        notes.insert(0, trace.error.problem)
    if lazy and status is not Status.RAN:
        notes.append(LAZY_NOTE)
    known = record is not None and (reached or not lazy)
    values = (
        index + 1,
        entry_text(entry),
        format_shape(record.input_shape if record is not None and reached else None),
        format_shape(record.output_shape if record is not None and reached else None),
        record.params if known else None,
        record.formula if known else None,
        record.flops if record is not None and status is Status.RAN else None,
        str(status),
        "; ".join(notes),
    )
    return dict(zip(COLUMNS, values, strict=True))


def lazy_rows(trace: Trace, built: Trace | None = None) -> list[dict[str, str]]:
    """Each lazy parameter of every top-level entry, before and after the forward pass (or why it has no after)."""
    ran = {record.id: record for record in trace.layers}
    records = built.layers if built is not None else trace.layers
    rows = []
    for record in records:
        after = ran.get(record.id)
        for position, before in enumerate(record.params_before if record.lazy else ()):
            rows.append(
                {
                    "parameter": f"{record.index + 1} {record.type}.{before.name}",
                    "before": _shown(before),
                    "after": _after(trace, after, position),
                }
            )
    return rows


def _after(trace: Trace, record: LayerTrace | None, position: int) -> str:
    if not trace.ran:
        return "run the forward pass"
    if record is None:
        return "not reached: the run stopped before this layer"
    return _shown(record.params_after[position])


def _shown(param: ParamInfo) -> str:
    """A parameter's shape as a tuple, ``(256, 20)``; an uninitialized one as torch names it."""
    return param.describe() if param.shape is None else format_shape(param.shape)
