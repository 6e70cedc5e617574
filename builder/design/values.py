"""Checks of single values: arguments against the catalog's parameters, input shapes, names and labels.

Each check returns why a value cannot stand in a design, or None; the caller names the field.
"""

from __future__ import annotations

import math
from typing import Any

from builder.catalog import ParamKind, ParamSpec
from builder.design.limits import (
    MAX_INPUT_ELEMENTS,
    MAX_INT,
    MAX_LIST_ITEMS,
    MAX_NESTING,
    MAX_TEXT_CHARS,
    UNSAFE_TEXT,
)
from builder.design.messages import HugeNumber, _is_int, _show


def _is_float(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def literal_problem(value: Any, depth: int = 0) -> str | None:
    """Why ``value`` cannot be an argument in a design, or None: JSON literals only, finite and bounded.

    An argument is null, true/false, a whole number within +-MAX_INT, a finite number, text of at most
    MAX_TEXT_CHARS characters, or a list of these (at most MAX_LIST_ITEMS items, MAX_NESTING deep).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, HugeNumber) or (_is_int(value) and abs(value) > MAX_INT):
        return f"must be between {-MAX_INT:,} and {MAX_INT:,}, got {_show(value)}"
    if _is_int(value):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number, got {value}"
    if isinstance(value, str):
        return _text_value_problem(value)
    if isinstance(value, list | tuple):
        return _list_problem(value, depth)
    return f"must be a number, text, true/false, null or a list of those; got {_show(value)}"


def _text_value_problem(text: str) -> str | None:
    if len(text) > MAX_TEXT_CHARS:
        return f"is {len(text):,} characters long; text arguments hold at most {MAX_TEXT_CHARS:,}"
    if not _is_utf8(text):
        return f"is not valid text (it holds a lone surrogate): {_show(text)}"
    return None


def _is_utf8(text: str) -> bool:
    """False for text holding a lone surrogate, which no file, terminal or page can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _list_problem(items: list | tuple, depth: int) -> str | None:
    if depth >= MAX_NESTING:
        return f"nests lists more than {MAX_NESTING} deep"
    if len(items) > MAX_LIST_ITEMS:
        return f"is a list of {len(items):,} items; at most {MAX_LIST_ITEMS}"
    return next((p for p in (literal_problem(item, depth + 1) for item in items) if p), None)


def _check_number(spec: ParamSpec, value: Any) -> str | None:
    if spec.minimum is not None and value < spec.minimum:
        return f"must be at least {spec.minimum:g}, got {_show(value)}"
    if spec.maximum is not None and value > spec.maximum:
        return f"must be at most {spec.maximum:g}, got {_show(value)}"
    return None


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """Why ``value`` does not fit parameter ``spec``, or None when it does."""
    if value is None:
        return None if spec.optional else "is required" if spec.required else "cannot be null"
    problem = literal_problem(value)
    if problem:
        return problem
    if isinstance(value, str) and value in spec.choices:
        return None
    kind = spec.kind
    if kind is ParamKind.BOOL:
        return None if isinstance(value, bool) else f"must be true or false, got {_show(value)}"
    if kind is ParamKind.INT:
        return _check_number(spec, value) if _is_int(value) else f"must be a whole number, got {_show(value)}"
    if kind is ParamKind.FLOAT:
        return _check_number(spec, value) if _is_float(value) else f"must be a number, got {_show(value)}"
    if kind is ParamKind.CHOICE:
        return f"must be one of {', '.join(spec.choices)}; got {_show(value)}"
    if kind in (ParamKind.INT_OR_TUPLE, ParamKind.FLOAT_OR_TUPLE, ParamKind.SHAPE):
        return _check_sizes(spec, value)
    if kind is ParamKind.STR:
        return None if isinstance(value, str) else f"must be text, got {_show(value)}"
    return None


def _check_sizes(spec: ParamSpec, value: Any) -> str | None:
    is_item = _is_int if spec.kind is not ParamKind.FLOAT_OR_TUPLE else _is_float
    items = value if isinstance(value, list | tuple) else [value]
    if spec.kind is ParamKind.SHAPE and not isinstance(value, list | tuple) and not _is_int(value):
        return f"must be a size or a list of sizes, got {_show(value)}"
    if not items or not all(is_item(v) or (v is None and spec.name == "output_size") for v in items):
        noun = "numbers" if spec.kind is ParamKind.FLOAT_OR_TUPLE else "whole numbers"
        extra = f" or one of {', '.join(spec.choices)}" if spec.choices else ""
        return f"must be a number or a list of {noun}{extra}, got {_show(value)}"
    if isinstance(value, list | tuple) and spec.arity and len(value) not in (1, spec.arity):
        return f"takes one size or {spec.arity} sizes, got {len(value)}: {_show(list(value))}"
    for item in items:
        problem = _check_number(spec, item) if item is not None else None
        if problem:
            return problem
    return None


def shape_problem(shape: Any) -> str | None:
    """Why ``shape`` cannot be an input shape, or None: 1 to 6 sizes from 1 to MAX_INT, MAX_INPUT_ELEMENTS in all."""
    if not isinstance(shape, list | tuple) or not 1 <= len(shape) <= 6:
        return f"must be 1 to 6 sizes, got {_show(shape)}"
    bad = next((size for size in shape if not _is_int(size) or not 1 <= size <= MAX_INT), None)
    if bad is not None:
        return f"every size must be a whole number from 1 to {MAX_INT:,}, got {_show(bad)}"
    elements = math.prod(shape)
    if elements > MAX_INPUT_ELEMENTS:
        return (
            f"{_show(list(shape))} is {elements:,} elements; an input holds at most 2**40 "
            f"({MAX_INPUT_ELEMENTS:,}); use a smaller batch or size"
        )
    return None


def _text_problem(text: str, limit: int) -> str | None:
    """Why a name or label cannot stand in a design, or None: bounded, one line, no control characters."""
    if len(text) > limit:
        return f"is {len(text):,} characters long; at most {limit:,}"
    bad = UNSAFE_TEXT.search(text)
    if bad is not None:
        found = f"U+{ord(bad.group()):04X}"
        return f"must be one line of plain text, without control or text-direction characters (found {found})"
    if not _is_utf8(text):
        return "is not valid text (it holds a lone surrogate)"
    return None
