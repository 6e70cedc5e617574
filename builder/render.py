"""The graph laid out on the server: DOT text to SVG with Graphviz's own ``dot`` program, cached by the DOT text.

Graphviz's ``dot -Tsvg`` lays a 150-layer design out in about 40 ms; a browser running Graphviz compiled to
WebAssembly takes seconds for the same graph, on every draw. The same DOT text always gives the same picture, so
layouts are cached by it (a bounded LRU cache: an edit, an undo or another visitor's design is one entry each) and
a rerun, an undo or a second visitor showing a graph already laid out costs a dictionary look-up.

The SVG is handed on as ``dot`` wrote it, without the XML prologue and comments. Whoever shows it in a page
treats it as untrusted all the same (the app's viewer keeps only the SVG elements and attributes a graph uses).
"""

from __future__ import annotations

import functools
import re

import graphviz

CACHE_SIZE = 64  # layouts kept; design (a)'s SVG is about 200 kB
_PROLOGUE = re.compile(r"\A.*?(?=<svg[\s>])", re.DOTALL)  # <?xml ...?>, <!DOCTYPE ...> and the header comments
_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)


class RenderError(RuntimeError):
    """A graph that could not be laid out; the message says what to do instead."""


class DotNotFound(RenderError):
    """Graphviz's ``dot`` program is not installed where the app runs."""


def layout_svg(dot: str) -> str:
    """Lay ``dot`` (a graph's DOT source) out as SVG with Graphviz's ``dot``; the same text gives the same object.

    Raises:
        DotNotFound: the ``dot`` program is not on PATH (install Graphviz, or draw the DOT in the browser).
        RenderError: ``dot`` refused the text or failed; the message holds its own error.
    """
    return _cached_layout(dot)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_layout(dot: str) -> str:
    try:
        svg = graphviz.pipe_string("dot", "svg", dot, encoding="utf-8", quiet=True)
    except graphviz.ExecutableNotFound:
        raise DotNotFound(
            "Graphviz's 'dot' program is not on PATH, so the graph cannot be laid out on the server; install "
            "graphviz (apt-get install graphviz, brew install graphviz, conda install graphviz)"
        ) from None
    except graphviz.CalledProcessError as error:
        detail = (error.stderr or "").strip() if isinstance(error.stderr, str) else ""
        raise RenderError(f"Graphviz's 'dot' could not lay the graph out: {detail or error}") from None
    return _COMMENT.sub("", _PROLOGUE.sub("", svg, count=1))


def clear_cache() -> None:
    """Forget every layout (tests; a server whose ``dot`` was installed or removed while it ran)."""
    _cached_layout.cache_clear()
