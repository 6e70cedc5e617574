"""AppTest for the Build page's graph view: the server-laid-out SVG, the layer-by-layer frames, click to select, and
the browser-drawn fallback where Graphviz's dot is missing.

The view is a static component: AppTest sees the arguments the page hands it (``json_args``), and a click is
simulated by giving the component the value the browser would send, ``{"node": ..., "at": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import graphviz
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.designs import conv_mlp_design
from builder import render
from builder.examples import load_example
from builder.graph import OUTPUT_ID, node_id
from builder.share import encode_design
from ui import graph_view

TIMEOUT = 30
APP = str(Path(__file__).resolve().parent.parent / "app.py")
SEED_NODES = ["layer-1", "layer-2", "layer-3"]


def open_app(query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    run(at)
    return at


def run(at: AppTest) -> None:
    at.run()
    assert not at.exception, at.exception


def view(at: AppTest) -> dict:
    """The arguments the page gave the graph view in its last run."""
    views = [e for e in at.get("component_instance") if e.proto.component_name.endswith(".graph_view")]
    assert len(views) == 1, "one graph view on the page"
    return json.loads(views[0].proto.json_args)


def run_forward(at: AppTest, mode: str) -> None:
    at.session_state["animation"] = mode
    at.button(key="run_forward").click()
    run(at)


def click_node(at: AppTest, node: str, at_ms: int) -> None:
    """What the view sends when the user clicks the node ``node``."""
    at.session_state[graph_view.KEY] = {"node": node, "at": at_ms}
    run(at)


def selected(at: AppTest) -> str:
    return at.session_state["selected_layer"]


@pytest.fixture
def at() -> AppTest:
    return open_app()


# ---------------------------------------------------------------- the picture


def test_the_graph_is_laid_out_on_the_server_and_shown_in_the_view(at):
    args = view(at)
    assert args["svg"].startswith("<svg"), "an SVG laid out by dot, not DOT for the browser to lay out"
    assert not at.get("graphviz_chart"), "the browser lays nothing out"
    assert "&lt;UninitializedParameter&gt;" in args["svg"] and ">?</text>" in args["svg"]
    assert "(2, 256)" not in args["svg"]
    assert args["layers"] == SEED_NODES
    assert args["selected"] == "layer-1", "the selected layer is highlighted in the graph"
    assert args["animation"] is None
    assert 160 < args["height"] <= graph_view.MAX_VIEW_HEIGHT + graph_view.TOOLBAR_HEIGHT


def test_an_instant_run_shows_every_shape_at_once(at):
    run_forward(at, "instant")
    args = view(at)
    assert ">(2, 256)</text>" in args["svg"] and ">(2, 10)</text>" in args["svg"]
    assert "UninitializedParameter" not in args["svg"]
    assert args["animation"] is None


def test_a_layer_by_layer_run_hands_the_view_its_frames_once(at):
    run_forward(at, "layer by layer")
    args = view(at)
    assert ">(2, 10)</text>" in args["svg"], "the frames play on the final picture"
    animation = args["animation"]
    assert animation["frames"] == [["layer-1"], ["layer-2"], ["layer-3", OUTPUT_ID]]
    assert animation["step_ms"] == round(graph_view.STEP_SECONDS * 1000)

    run(at)
    assert view(at)["animation"] is None, "a rerun does not play it again"
    run_forward(at, "layer by layer")
    assert view(at)["animation"]["id"] != animation["id"], "running again plays again"


def test_a_long_stack_animates_a_few_layers_per_frame_within_the_time_cap():
    design = conv_mlp_design()
    at = open_app({"design": encode_design(design)})
    run_forward(at, "layer by layer")
    animation = view(at)["animation"]
    frames = animation["frames"]
    assert len(frames) <= graph_view.MAX_FRAMES
    assert [node for frame in frames for node in frame] == [*map(node_id, range(len(design.layers))), OUTPUT_ID]
    assert len(frames) * animation["step_ms"] <= graph_view.MAX_ANIMATION_SECONDS * 1000
    assert ">(8, 1000)</text>" in view(at)["svg"]


@pytest.mark.parametrize(
    ("count", "expected"),
    [(1, [1]), (3, [1, 1, 1]), (40, [1] * 40), (41, [2] * 20 + [1]), (150, [4] * 37 + [2])],
)
def test_animation_frames_keep_the_order_and_split_evenly(count, expected):
    nodes = [f"n{i}" for i in range(count)]
    frames = graph_view.animation_frames(nodes)
    assert [len(frame) for frame in frames[:-1]] + [len(frames[-1]) - 1] == expected
    assert [node for frame in frames for node in frame] == [*nodes, OUTPUT_ID]


# ---------------------------------------------------------------- click to select


def test_clicking_a_node_selects_its_layer_once(at):
    click_node(at, "layer-3", 1)
    assert selected(at) == "layer-3"
    assert view(at)["selected"] == "layer-3"
    assert at.button(key="select.layer-3").proto.type == "primary"

    at.button(key="select.layer-1").click()
    run(at)
    assert selected(at) == "layer-1", "the stack's own selection wins over the click already applied"
    run(at)
    assert selected(at) == "layer-1"
    click_node(at, "layer-2", 2)
    assert selected(at) == "layer-2"


def test_a_node_is_its_position_in_the_stack(at):
    at.button(key="select.layer-3").click()
    run(at)
    at.button(key="move_up").click()
    run(at)
    assert [layer.id for layer in at.session_state["design"].layers] == ["layer-1", "layer-3", "layer-2"]
    assert view(at)["selected"] == "layer-2", "layer-3 is drawn second now"
    click_node(at, "layer-3", 1)
    assert selected(at) == "layer-2", "the third node is the layer drawn third"


@pytest.mark.parametrize("node", ["_input", OUTPUT_ID, "layer-9", None])
def test_a_click_outside_the_layers_changes_nothing(at, node):
    click_node(at, node, 1)
    assert selected(at) == "layer-1"


# ---------------------------------------------------------------- blocks


def node_count(svg: str) -> int:
    return svg.count('class="node"')


def test_a_big_design_with_blocks_opens_collapsed_and_a_click_inside_a_block_selects_it():
    design = load_example("resnet18")  # 11 entries, four of them blocks; 61 layers run
    at = open_app({"design": encode_design(design)})
    toggle = at.toggle(key=graph_view.COLLAPSE)
    assert toggle.value, f"more than {graph_view.COLLAPSE_ABOVE} layers: blocks start collapsed"
    collapsed = view(at)["svg"]
    assert 'class="cluster"' not in collapsed and node_count(collapsed) == len(design.layers) + 2
    assert "Sequential" in collapsed, "a collapsed block is one node named after its type"

    toggle.set_value(False)
    run(at)
    expanded = view(at)["svg"]
    assert 'class="cluster"' in expanded and node_count(expanded) > 3 * node_count(collapsed)
    assert view(at)["layers"] == [node_id(i) for i in range(len(design.layers))], "top-level entries only"

    click_node(at, "layer-6", 1)  # the view sends a click inside block 6 as a click on block 6
    assert selected(at) == design.layers[5].id
    run_forward(at, "layer by layer")
    frames = view(at)["animation"]["frames"]
    assert len(frames) == len(design.layers), "a block appears in one frame, whole"


def test_a_small_design_without_blocks_has_no_collapse_toggle(at):
    assert not [t for t in at.toggle if t.key == graph_view.COLLAPSE]


# ---------------------------------------------------------------- without dot


@pytest.fixture
def no_dot(monkeypatch):
    """A server without Graphviz's dot: laying out raises as graphviz does when it cannot find the program."""

    def missing(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    render.clear_cache()
    monkeypatch.setattr(graphviz, "pipe_string", missing)
    yield
    render.clear_cache()


def test_without_dot_the_browser_draws_the_graph_and_the_page_says_so(no_dot):
    at = open_app()
    assert not [e for e in at.get("component_instance") if e.proto.component_name.endswith(".graph_view")]
    chart = at.get("graphviz_chart")
    assert len(chart) == 1 and 'label="?"' in chart[0].proto.spec
    captions = [c.value for c in at.caption if "dot" in c.value]
    assert len(captions) == 1 and "not installed" in captions[0]

    run_forward(at, "layer by layer")
    assert "(2, 10)" in at.get("graphviz_chart")[0].proto.spec
