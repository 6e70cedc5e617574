"""Form fields for a layer's parameters: which widget a ParamSpec needs, and how its text becomes a value.

Pure functions, so the app's inspector only draws widgets; ``builder.design.check_value`` says what is wrong.
"""

from __future__ import annotations

import ast
import re
from enum import StrEnum
from typing import Any

from builder.catalog import ParamKind, ParamSpec
from builder.design import DesignError


class Field(StrEnum):
    """The widget a parameter is edited with."""

    INT = "int"  # a whole-number input
    FLOAT = "float"  # a number input
    BOOL = "bool"  # a checkbox
    CHOICE = "choice"  # a select box
    TEXT = "text"  # free text: tuples, shapes, strings, anything else


SIZE_KINDS = (ParamKind.INT_OR_TUPLE, ParamKind.FLOAT_OR_TUPLE, ParamKind.SHAPE)


def field_for(spec: ParamSpec) -> Field:
    """The widget for ``spec``; sizes that may also be a word (Conv padding 'same', PrependToken dim 'auto') are
    text."""
    if spec.kind is ParamKind.BOOL:
        return Field.BOOL
    if spec.kind is ParamKind.CHOICE:
        return Field.CHOICE
    if spec.choices:
        return Field.TEXT
    if spec.kind is ParamKind.INT:
        return Field.INT
    if spec.kind is ParamKind.FLOAT:
        return Field.FLOAT
    return Field.TEXT


def field_text(value: Any) -> str:
    """A value as the text a user would type: ``3``, ``3, 3``, ``same``; empty for None."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(field_text(v) for v in value)
    return str(value)


def same_value(a: Any, b: Any) -> bool:
    """Whether two parameter values mean the same to torch: a JSON list equals a tuple default, True is not 1."""
    return _comparable(a) == _comparable(b)


def _comparable(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_comparable(v) for v in value]
    return (bool, value) if isinstance(value, bool) else value


def _number(token: str, spec: ParamSpec) -> int | float | None:
    if token == "None" and spec.name == "output_size":
        return None
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        raise DesignError(f"'{token}' is not a number; type sizes such as 3 or 3, 3") from None


def _sizes(spec: ParamSpec, text: str) -> Any:
    if text in spec.choices:
        return text
    tokens = [t for t in re.split(r"[\s,]+", text.strip("()[] ")) if t]
    if not tokens:
        raise DesignError("type a size such as 3, or several such as 3, 3")
    values = [_number(t, spec) for t in tokens]
    if spec.kind is ParamKind.SHAPE or len(values) > 1 or "," in text:
        return values
    return values[0]


def parse_field(spec: ParamSpec, text: str) -> Any:
    """The value typed in a text field; empty text is None (torch's default). Raise DesignError if unreadable."""
    text = text.strip()
    if not text:
        return None
    if spec.kind in SIZE_KINDS:
        return _sizes(spec, text)
    if spec.kind is ParamKind.STR:
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
