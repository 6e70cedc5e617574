"""What AppTest elements show a person: user-made text is escaped for Markdown (ui.text.plain); undo that."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any

from ui.text import WORD_JOINER

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(elements: Iterable[Any]) -> str:
    """The elements' text as the page shows it, one element a line."""
    text = "\n".join(e.value for e in elements).replace(WORD_JOINER, "")
    return _ESCAPE.sub(r"\1", text)


def graph_texts(at: Any) -> list[str]:
    """The texts the Build page's graph shows (node lines and edge labels), from the server-laid-out SVG.

    Falls back to the labels of the DOT handed to ``st.graphviz_chart`` where ``dot`` is missing.
    """
    views = [e for e in at.get("component_instance") if e.proto.component_name.endswith(".graph_view")]
    if views:
        svg = json.loads(views[-1].proto.json_args)["svg"]
        return [html.unescape(text) for text in re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)]
    dot = at.get("graphviz_chart")[-1].proto.spec
    labels = re.findall(r'label="((?:[^"\\]|\\.)*)"', dot)
    return [line for label in labels for line in label.replace("\\\\", "\\").split("\\n")]
