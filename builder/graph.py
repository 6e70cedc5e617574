"""The design as a Graphviz diagram: one node per layer, edges labelled with the tensor shapes between them.

``render_graph`` only formats what a trace recorded: with no trace, shapes are ``?``; with a construct-only trace
(``trace.ran`` is False), parameter shapes are known except the lazy ones; after the forward pass everything is.
Lazy layers are dashed until a run materializes them, custom layers (the design's own code) are amber and say so,
the failing layer is red with its diagnosis, and the layers it kept from running are grey.

A block is a cluster (its type, label and ``x N`` when repeated, drawn once) holding its stacks: a Residual or a
Parallel forks its input to each stack and joins them at a merge node (``+ add``, ``x mul``, ``concat dim=1``);
an empty stack, the identity, is an edge from the fork to the merge. A block can be drawn collapsed to one node
(``collapse`` by id, or every block below ``depth``).

Nothing of the design becomes DOT syntax: node ids are made here from positions (``layer-1`` is the first layer,
as in "layer 1 Linear" in an error; ``layer-5/body/0`` the first entry of its body), so the DOT source is
deterministic, and every text (labels, types, arguments, shapes, messages) is one line of printable characters,
escaped as a quoted DOT string that is never read as HTML.
"""

from __future__ import annotations

import reprlib
import shutil
import textwrap
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import graphviz

from builder.blocks.merge import merge_label
from builder.catalog import catalog
from builder.design import block_dim, block_merge, design_path, is_block, is_shared, shared_targets
from builder.layer_table import key_args
from builder.summary import UNKNOWN, format_shape

if TYPE_CHECKING:
    from builder.design import BlockSpec, Design, Entry, LayerSpec, SharedSpec
    from builder.trace import LayerTrace, Trace

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
CUSTOM_ATTRS: dict[str, str] = {"color": "#b26a00", "fillcolor": "#fff4e0", "penwidth": "1.5"}  # the design's own code
CUSTOM_LINE = "custom layer (the design's code)"
UNREACHED_EDGE: dict[str, str] = {"color": "#bdbdbd", "fontcolor": "#9e9e9e"}
CLUSTER_ATTRS: dict[str, str] = {
    "style": "rounded,dashed", "color": "#7e57c2", "fontname": "Helvetica", "fontsize": "10", "labeljust": "l",
}  # fmt: skip
FAILED_CLUSTER: dict[str, str] = {"color": "#d32f2f", "fontcolor": "#b71c1c"}
FORK_ATTRS: dict[str, str] = {"shape": "point", "width": "0.08", "color": "#555555"}
MERGE_ATTRS: dict[str, str] = {"shape": "ellipse", "style": "filled", "fillcolor": "#ede7f6", "color": "#7e57c2"}
# A shared layer and every entry reusing it get one fill of these (in the order the design first shares them), and
# a dashed edge joins the layer to each reuse.
TIE_FILLS: tuple[str, ...] = ("#fff3c4", "#d7f5e3", "#fde2ef", "#dff4fb", "#efe3ff", "#ffe4d1")
TIE_EDGE: dict[str, str] = {
    "style": "dashed", "color": "#8d6e00", "fontcolor": "#8d6e00", "constraint": "false", "arrowhead": "none",
}  # fmt: skip
COLLAPSED_ATTRS: dict[str, str] = {"color": "#7e57c2", "fillcolor": "#ede7f6", "peripheries": "2"}
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


def _failure_lines(trace: Trace | None, attrs: dict[str, str]) -> list[str]:
    """The diagnosis under a failing node, and its whole message as the node's tooltip."""
    if trace is None or trace.error is None:
        return []
    attrs["tooltip"] = _text(trace.error.message)
    return _wrap(_printable(f"{trace.error.problem}. {trace.error.hint}".strip()))


def _layer_node(
    graph: graphviz.Digraph, node: str, spec: LayerSpec, layer: LayerTrace | None, state: NodeState,
    trace: Trace | None, fill: str | None = None,
) -> None:  # fmt: skip
    custom = catalog().get(spec.type) is None
    lines = _title(spec) + ([CUSTOM_LINE] if custom else []) + _trace_lines(layer)
    attrs = dict(STATE_ATTRS[state])
    lazy = _is_lazy(spec, layer, trace)
    if custom and state is NodeState.BUILT:
        attrs.update(CUSTOM_ATTRS)
    if lazy and state is NodeState.BUILT:
        attrs.update(LAZY_ATTRS)
    if fill is not None and state is NodeState.BUILT:
        attrs["fillcolor"] = fill
    if state is NodeState.FAILED:
        lines += _failure_lines(trace, attrs)
    attrs["style"] = "rounded,dashed,filled" if lazy else "rounded,filled"
    graph.node(node, label=_label(lines), **attrs)


def _shared_lines(entry: SharedSpec, target: LayerSpec | None, layer: LayerTrace | None) -> list[str]:
    """A Shared entry's label: what it reuses, the layer's call, and that its parameters are counted there."""
    lines = [entry.label] if entry.label else []
    lines.append(f"shares {entry.of}")
    if target is not None:
        lines += _title(target.model_copy(update={"label": ""}))
    if layer is not None and layer.output_shape is not None:
        lines.append("same module: parameters counted once")
    return lines


def _tie_fills(design: Design) -> dict[str, str]:
    """The fill of each shared layer and of every entry reusing it, by id."""
    fills = {}
    for position, (layer_id, users) in enumerate(shared_targets(design).items()):
        colour = TIE_FILLS[position % len(TIE_FILLS)]
        fills |= {entry_id: colour for entry_id in (layer_id, *users)}
    return fills


def _tie_edges(graph: graphviz.Digraph, design: Design) -> None:
    """A dashed edge from each shared layer to each entry reusing it (top-level entries: nodes by position)."""
    index = {entry.id: position for position, entry in enumerate(design.layers)}
    for layer_id, users in shared_targets(design).items():
        for user in users:
            if layer_id in index and user in index:
                graph.edge(node_id(index[layer_id]), node_id(index[user]), label=_text("same module"), **TIE_EDGE)


def _shape_of(layer: LayerTrace | None, trace: Trace | None) -> str:
    return format_shape(layer.output_shape) if layer is not None and trace is not None and trace.ran else UNKNOWN


def _block_lines(block: BlockSpec, record: LayerTrace | None) -> list[str]:
    """A block's title: its label, its type with ``x N``, what it merges with, its parameters."""
    kind = f"{block.type} x {block.repeat}" if block.repeat > 1 else str(block.type)
    merge = block_merge(block)
    lines = [block.label] if block.label else []
    lines.append(f"{kind} ({merge_label(merge, block_dim(block)).lstrip('+x ')})" if merge else kind)
    if record is not None and record.params:
        lines.append(f"{record.params:,} params")
    return lines


class _End(NamedTuple):
    """Where a drawn stack ends: the node to draw the next edge from, the shape on it, and whether it ran."""

    node: str
    shape: str
    reached: bool


@dataclass
class _Drawer:
    """Draws entries into a graph; edges that leave a cluster wait in ``edges`` until it is closed."""

    trace: Trace | None
    depth: int | None
    collapse: frozenset[str]
    records: dict[str, LayerTrace] = field(default_factory=dict)
    edges: list[tuple[str, str, str, bool]] = field(default_factory=list)
    fills: dict[str, str] = field(default_factory=dict)  # tied layers' fills by id
    layers: dict[str, LayerSpec] = field(default_factory=dict)  # the top-level layers by id (what Shared names)

    def state(self, entry: Entry, path: str, record: LayerTrace | None) -> NodeState:
        """How far an entry inside a block got (a repeated block is drawn once: any copy's failure counts)."""
        error = self.trace.error if self.trace else None
        if error is None:
            return NodeState.BUILT
        failed_inside = is_block(entry) and design_path(error.path).startswith(design_path(path) + "/")
        if error.layer_id == entry.id or failed_inside:
            return NodeState.FAILED
        return NodeState.BUILT if record is not None else NodeState.UNREACHED

    def edge(self, start: _End, head: str) -> None:
        self.edges.append((start.node, head, start.shape, start.reached))

    def flush(self, graph: graphviz.Digraph) -> None:
        for tail, head, shape, reached in self.edges:
            graph.edge(tail, head, label=_text(shape), **({} if reached else UNREACHED_EDGE))
        self.edges.clear()

    def stack(self, graph: graphviz.Digraph, entries: tuple[Entry, ...], node: str, path: str, index: int,
              start: _End, level: int) -> _End:  # fmt: skip
        """Draw a stack inside a block: ``node`` and ``path`` are its prefixes (``layer-5/body``)."""
        for position, entry in enumerate(entries):
            start = self.entry(graph, entry, f"{node}/{position}", f"{path}/{position}", index, start, level)
        return start

    def entry(self, graph: graphviz.Digraph, entry: Entry, node: str, path: str, index: int, start: _End,
              level: int, state: NodeState | None = None) -> _End:  # fmt: skip
        """Draw one entry after ``start``; top-level entries get their state from their position."""
        record = self.records.get(path)
        state = state or self.state(entry, path, record)
        if is_block(entry) and not self.collapsed(entry, level):
            return self.block(graph, entry, node, path, index, start, level, state)
        if is_block(entry):
            self.collapsed_node(graph, node, entry, record, state)
        elif is_shared(entry):
            self.shared_node(graph, node, entry, record, state)
        else:
            _layer_node(graph, node, entry, record, state, self.trace, self.fills.get(entry.id))
        self.edge(start, node)
        return _End(node, _shape_of(record, self.trace), state is NodeState.BUILT)

    def shared_node(
        self, graph: graphviz.Digraph, node: str, entry: SharedSpec, record: LayerTrace | None, state: NodeState
    ) -> None:
        """A Shared entry: the layer it reuses, in that layer's fill."""
        lines = _shared_lines(entry, self.layers.get(entry.of), record)
        attrs = dict(STATE_ATTRS[state])
        if state is NodeState.BUILT and entry.id in self.fills:
            attrs["fillcolor"] = self.fills[entry.id]
        if state is NodeState.FAILED:
            lines += _failure_lines(self.trace, attrs)
        graph.node(node, label=_label(lines), style="rounded,filled", **attrs)

    def collapsed(self, block: BlockSpec, level: int) -> bool:
        return block.id in self.collapse or (self.depth is not None and level >= self.depth)

    def collapsed_node(
        self, graph: graphviz.Digraph, node: str, block: BlockSpec, record: LayerTrace | None, state: NodeState
    ) -> None:
        lines = _block_lines(block, record)
        attrs = dict(STATE_ATTRS[state]) | (COLLAPSED_ATTRS if state is NodeState.BUILT else {})
        if state is NodeState.FAILED:
            lines += _failure_lines(self.trace, attrs)
        graph.node(node, label=_label(lines), style="rounded,filled", **attrs)

    def block(self, graph: graphviz.Digraph, block: BlockSpec, node: str, path: str, index: int, start: _End,
              level: int, state: NodeState) -> _End:  # fmt: skip
        """A cluster holding the block's stacks (its first copy's shapes); a merge joins them, a fork splits x."""
        record = self.records.get(path)
        copy = path if block.repeat == 1 else f"{path}#1"
        attrs = dict(CLUSTER_ATTRS) | (FAILED_CLUSTER if state is NodeState.FAILED else {})
        with graph.subgraph(name=f"cluster_{node}") as cluster:
            cluster.attr(label=_label(_block_lines(block, record)), **attrs)
            merge = block_merge(block)
            if merge is None:
                end = self.stack(cluster, block.layers, f"{node}/layers", f"{copy}/layers", index, start, level + 1)
                if not block.layers:
                    cluster.node(f"{node}/identity", label=_text("identity"), **FORK_ATTRS)
                    self.edge(start, f"{node}/identity")
                    end = _End(f"{node}/identity", start.shape, start.reached)
            else:
                end = self.fork_and_merge(cluster, block, node, copy, index, start, level)
        return _End(end.node, _shape_of(record, self.trace), end.reached and state is NodeState.BUILT)

    def fork_and_merge(self, cluster: graphviz.Digraph, block: BlockSpec, node: str, copy: str, index: int,
                       start: _End, level: int) -> _End:  # fmt: skip
        fork, join = f"{node}/fork", f"{node}/merge"
        cluster.node(fork, label="", **FORK_ATTRS)
        self.edge(start, fork)
        forked = _End(fork, start.shape, start.reached)
        ends = [
            self.stack(cluster, s.entries, f"{node}/{s.key}", f"{copy}/{s.key}", index, forked, level + 1)
            for s in block.stacks()
        ]
        error = self.trace.error if self.trace else None
        merged = self.records.get(copy)
        state = NodeState.BUILT if error is None or merged is not None else NodeState.UNREACHED
        state = NodeState.FAILED if error is not None and error.layer_id == block.id else state
        attrs = dict(MERGE_ATTRS) | (STATE_ATTRS[state] if state is not NodeState.BUILT else {})
        lines = [merge_label(block_merge(block), block_dim(block))]
        if state is NodeState.FAILED:
            lines += _failure_lines(self.trace, attrs)
            attrs |= {"shape": "box", "style": "rounded,filled"}  # the diagnosis reads better in a box
        cluster.node(join, label=_label(lines), **attrs)
        for end in ends:
            self.edge(end, join)
        return _End(join, UNKNOWN, state is NodeState.BUILT)


def render_graph(
    design: Design, trace: Trace | None = None, depth: int | None = None, collapse: Collection[str] = ()
) -> graphviz.Digraph:
    """Draw the design top to bottom, annotated with whatever the trace recorded.

    Args:
        design: the design to draw; the entry at position i is node ``layer-{i+1}``, an entry inside a block is
            named by its place below it (``layer-5/body/0``).
        trace: None (not built), a construct-only trace (``builder.run.analyze(design, run=False)``) or the
            trace of the dummy forward pass, possibly stopped by an error.
        depth: draw blocks at this level or deeper collapsed to one node (1: every top-level block); None: none.
        collapse: ids of blocks to draw collapsed, wherever they stand.

    Returns:
        A ``graphviz.Digraph``; ``.source`` is the DOT text, ``write_graph`` saves it.
    """
    name = _text(design.name)
    graph = graphviz.Digraph(name=name, graph_attr=GRAPH_ATTRS, node_attr=NODE_ATTRS, edge_attr=EDGE_ATTRS)
    dtype = design.input.dtype
    graph.node(INPUT_ID, label=_label(["input", f"{format_shape(design.input.shape)} {dtype}"]), **IO_ATTRS)
    drawer = _Drawer(trace, depth, frozenset(collapse), trace.records() if trace else {})
    drawer.fills = _tie_fills(design)
    drawer.layers = {entry.id: entry for entry in design.layers if not is_block(entry) and not is_shared(entry)}
    end = _End(INPUT_ID, format_shape(design.input.shape), True)
    for index, spec in enumerate(design.layers):
        end = drawer.entry(graph, spec, node_id(index), spec.id, index, end, 1, _state(index, trace))
        drawer.flush(graph)
    output = end.shape if end.reached and trace is not None and trace.ok else UNKNOWN
    graph.node(OUTPUT_ID, label=_label(["output", output]), **IO_ATTRS)
    graph.edge(end.node, OUTPUT_ID, label=_text(output), **({} if end.reached else UNREACHED_EDGE))
    _tie_edges(graph, design)
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
