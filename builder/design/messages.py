"""The design's error, and how its messages show a user's values: short, escaped, huge numbers by their size."""

from __future__ import annotations

import difflib
import math
import reprlib
from typing import Any

from builder.design.limits import MAX_NAME_CHARS

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxtuple = 2, 60, 60, 6, 6


class DesignError(ValueError):
    """A design that cannot be read or run; the message says where and what to change."""


class HugeNumber:
    """A JSON integer too long for any size or argument, kept by its length (Python refuses to read the longest)."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"a {self.digits:,}-digit number"


def _show(value: Any) -> str:
    """A user's value for one line of a message: a short repr, control characters escaped, huge numbers by size."""
    if _is_int(value) and value.bit_length() > 80:  # past 24 digits, the count reads better than the digits
        return f"a {_digits(value):,}-digit number"
    try:
        return _REPR.repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"


def _digits(value: int) -> int:
    """How many decimal digits ``value`` has (str() refuses numbers past 4,300 digits)."""
    try:
        return len(str(abs(value)))
    except ValueError:
        return int(abs(value).bit_length() * math.log10(2)) + 1


def _quoted(text: Any) -> str:
    """A name in quotes ('Conv2D'), or its escaped repr when it is not plain printable text."""
    if isinstance(text, str) and text.isprintable() and len(text) <= MAX_NAME_CHARS and "'" not in text:
        return f"'{text}'"
    return _show(text)


def _plain(text: str) -> str:
    """A layer type as a message shows it: unchanged when plain, else its escaped repr."""
    return text if isinstance(text, str) and text.isprintable() and len(text) <= MAX_NAME_CHARS else _show(text)


def _suggest(word: str, options: list[str]) -> str:
    if len(word) > MAX_NAME_CHARS:
        return ""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        lowered = {o.lower(): o for o in options}
        close = [lowered[word.lower()]] if word.lower() in lowered else []
    return f"; did you mean '{close[0]}'?" if close else ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
