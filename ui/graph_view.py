"""The Build page's graph: laid out on the server by Graphviz's ``dot``, shown in a viewer that pans and zooms.

The viewer (``ui/graph_component/``) is a static Streamlit component, so the picture lives in its own iframe. It
gets the SVG (``builder.render.layout_svg``, cached by the DOT text), keeps only the elements and attributes a
graph needs, and takes its colours from the app's theme. A click on a layer sends that layer's node back, and
``consume_click`` makes it the selected layer before the stack and the inspector are drawn.

The layer-by-layer animation plays in the viewer, on the final picture: nothing is laid out again per frame.
Layers appear a few at a time, a block as one, in at most MAX_FRAMES frames lasting at most MAX_ANIMATION_SECONDS.
A design with blocks can be drawn with each block collapsed to one node (on by default for big designs). When a
run fails, the view moves to the failing layer, and a "Failing layer" button in its toolbar goes back to it.

Without ``dot`` on the server, the graph falls back to ``st.graphviz_chart`` (Graphviz compiled to WebAssembly,
run in the browser: seconds for a big design), drawn once, with a caption saying so.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
import streamlit.components.v1 as components

from builder.design import has_blocks, run_count
from builder.graph import OUTPUT_ID, node_id, render_graph
from builder.render import DotNotFound, RenderError, layout_svg
from ui.component_files import served_dir
from ui.stack import SELECTED
from ui.text import plain

if TYPE_CHECKING:
    from builder.design import Design
    from builder.trace import Trace

KEY = "graph_view"  # the viewer's value: the last click, {"node": "layer-3", "path": <node clicked>, "at": <ms>}
CLICK_SEEN = "graph_view_click"  # the "at" of the click already applied
ANIMATION = "graph_view_animation"  # counts the runs animated, so that each plays once
COLLAPSE = "graph_collapse"  # the "Collapse blocks" toggle
COLLAPSE_ABOVE = 60  # layers run through: a bigger design with blocks starts with them collapsed
STEP_SECONDS = 0.15  # the graph fills in one frame at a time, at this pace...
MAX_ANIMATION_SECONDS = 4.0  # ...unless the stack is long...
MAX_FRAMES = 40  # ...where each frame reveals several layers
MAX_VIEW_HEIGHT = 640  # pixels: a taller graph pans inside a view this tall
MIN_VIEW_HEIGHT = 160
VIEW_PADDING = 24  # pixels around the graph in the view...
TOOLBAR_HEIGHT = 38  # ...and above it, the toolbar and the borders
PT_TO_PX = 4 / 3  # Graphviz sizes its SVG in points
HINT = "Drag or use the arrow keys to pan; Ctrl + wheel, + or - to zoom; 0 fits the width. Click a layer to select it."
NO_DOT = (
    "Graphviz's `dot` program is not installed on the server, so your browser lays the graph out: slower for big "
    "models, and without the layer-by-layer animation. `apt-get install graphviz` on the server fixes that."
)
_VIEW_BOX = re.compile(r'viewBox="[-\d.]+ [-\d.]+ [\d.]+ ([\d.]+)"')

_viewer = components.declare_component("graph_view", path=str(served_dir(Path(__file__).parent / "graph_component")))


def node_layers(design: Design) -> dict[str, str]:
    """Each top-level entry's graph node (made from its position) and the entry's id, in stack order.

    A block's inner nodes are named below its node (``layer-5/layers/0``); the view sends a click on them as a
    click on the block, the entry the stack can select.
    """
    return {node_id(index): spec.id for index, spec in enumerate(design.layers)}


def consume_click(design: Design) -> None:
    """Select the layer clicked in the graph, if a new click started this run (call before the stack is drawn)."""
    ss = st.session_state
    click = ss.get(KEY)
    if not isinstance(click, dict) or click.get("at") == ss.get(CLICK_SEEN):
        return
    ss[CLICK_SEEN] = click.get("at")
    layer_id = node_layers(design).get(str(click.get("node")))
    if layer_id is not None:
        ss[SELECTED] = layer_id


def animation_frames(nodes: list[str], max_frames: int = MAX_FRAMES) -> list[list[str]]:
    """The nodes split, in order, into at most ``max_frames`` frames of near-equal size; the output comes last."""
    if not nodes:
        return []
    per_frame = math.ceil(len(nodes) / max_frames)
    frames = [nodes[start : start + per_frame] for start in range(0, len(nodes), per_frame)]
    frames[-1] = [*frames[-1], OUTPUT_ID]
    return frames


def animation(design: Design) -> dict[str, Any]:
    """What the viewer needs to play this run layer by layer, under a fresh number so that it plays once."""
    ss = st.session_state
    ss[ANIMATION] = ss.get(ANIMATION, 0) + 1
    frames = animation_frames(list(node_layers(design)))
    step = min(STEP_SECONDS, MAX_ANIMATION_SECONDS / len(frames))
    return {"id": ss[ANIMATION], "frames": frames, "step_ms": round(step * 1000)}


def failing_node(design: Design, trace: Trace | None) -> str | None:
    """The node (a block's node or cluster) of the top-level entry the run failed at; the view goes to it."""
    error = trace.error if trace is not None else None
    if error is None or not 0 <= error.index < len(design.layers):
        return None
    return node_id(error.index)


def frame_height(svg: str) -> int:
    """The viewer's height before it has measured itself: the graph at its natural size, within the bounds."""
    match = _VIEW_BOX.search(svg)
    graph = float(match.group(1)) * PT_TO_PX if match else MAX_VIEW_HEIGHT
    return math.ceil(min(MAX_VIEW_HEIGHT, max(MIN_VIEW_HEIGHT, graph + VIEW_PADDING)) + TOOLBAR_HEIGHT)


def collapse_ui(design: Design) -> bool:
    """Whether blocks are drawn as one node each: a toggle, offered when the design has blocks."""
    if not has_blocks(design):
        return False
    return st.toggle(
        "Collapse blocks",
        value=run_count(design.layers) > COLLAPSE_ABOVE,
        key=COLLAPSE,
        help="Draw each block as one node with its totals; click a block to select it.",
    )


def _laid_out(design: Design, trace: Trace | None, depth: int | None) -> str | None:
    """The graph's SVG laid out on the server; else None, the graph drawn by the browser with a caption why."""
    graph = render_graph(design, trace, depth=depth)
    try:
        return layout_svg(graph.source)
    except RenderError as error:
        st.graphviz_chart(graph)
        st.caption(NO_DOT if isinstance(error, DotNotFound) else plain(f"{error}. Your browser lays the graph out."))
        return None


def graph_picture_ui(design: Design, trace: Trace | None, key: str) -> None:
    """A second graph in the viewer (pan, zoom, fullscreen), without selection or animation: its clicks select
    nothing."""
    svg = _laid_out(design, trace, depth=None)
    if svg is not None:
        _viewer(svg=svg, layers=[], selected=None, animation=None, failing=None, max_height=MAX_VIEW_HEIGHT, hint=HINT,
                height=frame_height(svg), key=key, default=None)  # fmt: skip


def graph_view_ui(design: Design, trace: Trace | None, animate: bool) -> None:
    """The graph in the pan-and-zoom viewer (or the browser-drawn fallback); ``animate`` plays it layer by layer."""
    svg = _laid_out(design, trace, depth=1 if collapse_ui(design) else None)
    if svg is None:
        return
    nodes = node_layers(design)
    selected = st.session_state.get(SELECTED)
    _viewer(
        svg=svg,
        layers=list(nodes),
        selected=next((node for node, layer_id in nodes.items() if layer_id == selected), None),
        animation=animation(design) if animate and design.layers else None,
        failing=failing_node(design, trace),
        max_height=MAX_VIEW_HEIGHT,
        hint=HINT,
        height=frame_height(svg),
        key=KEY,
        default=None,
    )
