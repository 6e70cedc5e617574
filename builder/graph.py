"""The design as a Graphviz diagram: one node per layer, edges labelled with the tensor shapes between them.

``render_graph`` only formats what a trace recorded: with no trace, shapes are ``?``; with a construct-only trace
(``trace.ran`` is False), parameter shapes are known except the lazy ones; after the forward pass everything is.
Lazy layers are dashed until a run materializes them, the failing layer is red with its diagnosis, and the layers
it kept from running are grey.

Nothing of the design becomes DOT syntax: node ids are made here from the layer's position (``layer-1`` is the
first layer, as in "layer 1 Linear" in an error), so the DOT source is deterministic, and every text (labels,
types, arguments, shapes, messages) is one line of printable characters, escaped as a quoted DOT string that is
never read as HTML.
"""

from __future__ import annotations

import reprlib
import shutil
import textwrap
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import graphviz

from builder.catalog import catalog
from builder.summary import UNKNOWN, format_shape

if TYPE_CHECKING:
    from builder.design import Design, LayerSpec
    from builder.inference import LayerTrace, Trace

INPUT_ID = "_input"  # layer nodes are "layer-N"; the underscore keeps these apart
OUTPUT_ID = "_output"
WRAP = 44  # characters per label line
MAX_PARAM_LINES = 4  # a TransformerEncoder has dozens of parameters; list the first few
SOURCE_SUFFIXES: frozenset[str] = frozenset({".gv", ".dot"})
IMAGE_SUFFIXES: frozenset[str] = frozenset({".svg", ".png"})


class GraphError(RuntimeError):
    """A graph that cannot be written; the message says what to do instead."""


class NodeState(StrEnum):
    """How far a layer got, which decides its colours."""

    BUILT = "built"
    FAILED = "failed"
    UNREACHED = "unreached"


GRAPH_ATTRS: dict[str, str] = {"rankdir": "TB", "nodesep": "0.3", "ranksep": "0.35"}
NODE_ATTRS: dict[str, str] = {"shape": "box", "fontname": "Helvetica", "fontsize": "11"}
EDGE_ATTRS: dict[str, str] = {"fontname": "Helvetica", "fontsize": "10"}
IO_ATTRS: dict[str, str] = {"shape": "oval", "style": "filled", "fillcolor": "#f0f0f0", "color": "#555555"}
STATE_ATTRS: dict[NodeState, dict[str, str]] = {
    NodeState.BUILT: {"color": "#333333", "fillcolor": "#ffffff"},
    NodeState.FAILED: {"color": "#d32f2f", "fillcolor": "#fde8e8", "fontcolor": "#b71c1c", "penwidth": "2"},
    NodeState.UNREACHED: {"color": "#bdbdbd", "fillcolor": "#f5f5f5", "fontcolor": "#9e9e9e"},
}
LAZY_ATTRS: dict[str, str] = {"color": "#3367d6", "fillcolor": "#e8f0fe"}  # until a run materializes it
UNREACHED_EDGE: dict[str, str] = {"color": "#bdbdbd", "fontcolor": "#9e9e9e"}
MAX_TEXT = 300  # characters of any one text shown in a node

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxtuple = 3, 60, 60, 8, 8


def node_id(index: int) -> str:
    """The DOT node of the layer at ``index``: made from its position, never from the design's text."""
    return f"layer-{int(index) + 1}"


def _printable(text: object) -> str:
    """One line of printable text: control, line-breaking and invisible characters become spaces; bounded."""
    text = str(text)[:MAX_TEXT]
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _text(text: object) -> str:
    """A DOT string for any text: backslashes kept literal, never read as an HTML-like ``<...>`` label."""
    return graphviz.nohtml(graphviz.escape(_printable(text)))


def _label(lines: list[str]) -> str:
    """Label text: every line escaped for DOT, joined by DOT's centred line break, never read as HTML."""
    return graphviz.nohtml(r"\n".join(graphviz.escape(_printable(line)) for line in lines))


def _value(value: object) -> str:
    """An argument as the graph shows it: a short repr (huge or odd values cannot break the drawing)."""
    try:
        return _REPR.repr(value)
    except (ValueError, RecursionError):
        return "…"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=WRAP, break_long_words=False, break_on_hyphens=False) or [text]


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


def _title(spec: LayerSpec) -> list[str]:
    args = ", ".join(f"{name}={_value(value)}" for name, value in key_args(spec).items())
    lines = [spec.label] if spec.label else []
    return lines + _wrap(f"{spec.type}({args})")


def _param_lines(layer: LayerTrace) -> list[str]:
    lines = [f"{p.name}: {p.describe() if p.shape is None else format_shape(p.shape)}" for p in layer.params_after]
    if len(lines) > MAX_PARAM_LINES:
        lines = [*lines[:MAX_PARAM_LINES], f"… and {len(lines) - MAX_PARAM_LINES} more parameters"]
    if layer.params and all(p.shape is not None for p in layer.params_after):
        lines.append(f"{layer.params:,} params")
    return lines


def _trace_lines(layer: LayerTrace | None) -> list[str]:
    """What the trace knows about a layer: parameter shapes, inferred sizes, where it ran."""
    if layer is None:
        return []
    lines = _param_lines(layer)
    lines += [f"{name} = {value}" for name, value in layer.inferred.items()]
    if layer.device != "meta":
        lines.append("ran on small real tensors (needs values)")
    return lines


def _state(index: int, trace: Trace | None) -> NodeState:
    error = trace.error if trace else None
    if error is None or index < error.index:
        return NodeState.BUILT
    return NodeState.FAILED if index == error.index else NodeState.UNREACHED


def _is_lazy(spec: LayerSpec, layer: LayerTrace | None, trace: Trace | None) -> bool:
    """Lazy and not yet materialized: the trace says so, or (before any trace) the catalog does."""
    if layer is not None:
        return layer.lazy and not (trace is not None and trace.ran)
    entry = catalog().get(spec.type)
    return entry is not None and entry.lazy


def _layer_node(graph: graphviz.Digraph, index: int, spec: LayerSpec, trace: Trace | None) -> NodeState:
    layer = trace.layer(spec.id) if trace else None
    state = _state(index, trace)
    lines = _title(spec) + _trace_lines(layer)
    attrs = dict(STATE_ATTRS[state])
    lazy = _is_lazy(spec, layer, trace)
    if lazy and state is NodeState.BUILT:
        attrs.update(LAZY_ATTRS)
    if state is NodeState.FAILED and trace is not None and trace.error is not None:
        lines += _wrap(_printable(f"{trace.error.problem}. {trace.error.hint}".strip()))
        attrs["tooltip"] = _text(trace.error.message)
    attrs["style"] = "rounded,dashed,filled" if lazy else "rounded,filled"
    graph.node(node_id(index), label=_label(lines), **attrs)
    return state


def _edge_shape(spec: LayerSpec, trace: Trace | None) -> str:
    layer = trace.layer(spec.id) if trace and trace.ran else None
    return format_shape(layer.output_shape) if layer else UNKNOWN


def render_graph(design: Design, trace: Trace | None = None) -> graphviz.Digraph:
    """Draw the design top to bottom, annotated with whatever the trace recorded.

    Args:
        design: the design to draw; the layer at position i is node ``layer-{i+1}``.
        trace: None (not built), a construct-only trace (``builder.run.analyze(design, run=False)``) or the
            trace of the dummy forward pass, possibly stopped by an error.

    Returns:
        A ``graphviz.Digraph``; ``.source`` is the DOT text, ``write_graph`` saves it.
    """
    name = _text(design.name)
    graph = graphviz.Digraph(name=name, graph_attr=GRAPH_ATTRS, node_attr=NODE_ATTRS, edge_attr=EDGE_ATTRS)
    dtype = design.input.dtype
    graph.node(INPUT_ID, label=_label(["input", f"{format_shape(design.input.shape)} {dtype}"]), **IO_ATTRS)
    previous, shape, reached = INPUT_ID, format_shape(design.input.shape), True
    for index, spec in enumerate(design.layers):
        state = _layer_node(graph, index, spec, trace)
        graph.edge(previous, node_id(index), label=_text(shape), **({} if reached else UNREACHED_EDGE))
        reached = state is NodeState.BUILT
        previous, shape = node_id(index), _edge_shape(spec, trace)
    output = shape if reached and trace is not None and trace.ok else UNKNOWN
    graph.node(OUTPUT_ID, label=_label(["output", output]), **IO_ATTRS)
    graph.edge(previous, OUTPUT_ID, label=_text(output), **({} if reached else UNREACHED_EDGE))
    return graph


def write_graph(graph: graphviz.Digraph, path: str | Path) -> Path:
    """Save the graph: DOT source for .gv/.dot, an image for .svg/.png (which needs Graphviz's ``dot``).

    Raises:
        GraphError: the suffix is not one of these, or an image was asked for and ``dot`` is not installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in SOURCE_SUFFIXES:
        path.write_text(graph.source, encoding="utf-8")
        return path
    if suffix not in IMAGE_SUFFIXES:
        known = ", ".join(sorted(SOURCE_SUFFIXES | IMAGE_SUFFIXES))
        raise GraphError(f"{path}: cannot write a graph as '{suffix or path.name}'; use one of {known}")
    if shutil.which("dot") is None:
        raise GraphError(
            f"{path}: writing {suffix} needs Graphviz's 'dot' program, which is not on PATH; install graphviz "
            f"(apt install graphviz, brew install graphviz, conda install graphviz) or write the DOT source "
            f"to a .gv file instead"
        )
    try:
        path.write_bytes(graph.pipe(format=suffix.lstrip(".")))
    except graphviz.ExecutableNotFound as error:
        raise GraphError(f"{path}: Graphviz's 'dot' could not be run ({error}); install graphviz") from None
    except graphviz.CalledProcessError as error:
        raise GraphError(f"{path}: Graphviz's 'dot' failed: {error}") from None
    return path
