"""What AppTest elements show a person: user-made text is escaped for Markdown (ui.text.plain); undo that."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ui.text import WORD_JOINER

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(elements: Iterable[Any]) -> str:
    """The elements' text as the page shows it, one element a line."""
    text = "\n".join(e.value for e in elements).replace(WORD_JOINER, "")
    return _ESCAPE.sub(r"\1", text)
