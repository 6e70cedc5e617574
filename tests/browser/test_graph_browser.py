"""The graph view in a real browser: the server-laid-out SVG, pan and zoom, fit, fullscreen, click to select, themes.

The view is a static component (ui/graph_component/) in its own iframe; its root element carries what the tests
read: ``data-state`` (empty, ready, animating), ``data-scale`` and ``data-theme``, and the canvas's transform.
Run: ``python -m pytest tests/browser/test_graph_browser.py``. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Frame, Page, expect

from benchmarks.designs import conv_mlp_design
from builder.design import design_from_dict, dump_design
from builder.examples import load_example
from builder.share import encode_design
from ui.stack import stack_label

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
VIEW = "iframe[title='ui.graph_view.graph_view']"
# The view's SVG as one selector string, as other tests can use it: page.locator(f"{GRAPH} g.node").
GRAPH = f"{VIEW} >> internal:control=enter-frame >> #canvas svg"
TRANSFORM = re.compile(r"translate\(([-\d.e]+)px, ([-\d.e]+)px\) scale\(([-\d.e]+)\)")
BROKEN = {
    "version": 1,
    "name": "broken-mlp",
    "input": {"shape": [2, 20]},
    "layers": [{"type": "Linear", "params": {"in_features": 30, "out_features": 8}}, {"type": "ReLU"}],
}
SEED = load_example("d2l-mlp")
LINEAR_RELU = [{"type": "Linear", "params": {"in_features": 20, "out_features": 20}}, {"type": "ReLU"}]
TWELVE_LAYERS = {  # 12 frames of 150 ms: long enough to watch
    "version": 1,
    "name": "twelve",
    "input": {"shape": [2, 20]},
    "layers": [*LINEAR_RELU * 5, {"type": "Linear", "params": {"in_features": 20, "out_features": 10}}, LINEAR_RELU[1]],
}


# ---------------------------------------------------------------- helpers


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_idle(page: Page) -> None:
    page.wait_for_selector(IDLE, timeout=60_000)


def view(page: Page) -> Frame:
    """The graph view's frame, once it shows a graph."""
    page.locator(f"{GRAPH} g.node").first.wait_for(timeout=60_000)
    frame = page.locator(VIEW).element_handle().content_frame()
    assert frame is not None
    return frame


def open_app(page: Page, query: str = "") -> Frame:
    page.goto(page.app_url + "/" + query)  # type: ignore[attr-defined]
    wait_idle(page)
    return view(page)


def transform(frame: Frame) -> tuple[float, float, float]:
    """The canvas's (x, y, scale)."""
    match = TRANSFORM.fullmatch(frame.locator("#canvas").evaluate("e => e.style.transform"))
    assert match, "the canvas has a translate-and-scale transform"
    return float(match[1]), float(match[2]), float(match[3])


def shown_texts(frame: Frame, what: str = "edge") -> list[str]:
    """The texts of the graph's nodes or edges that are shown (not waiting for their turn in the animation)."""
    return frame.locator(f"#canvas svg g.{what}:not(.pending) text").all_text_contents()


def wait_view(frame: Frame, state: str = "ready") -> None:
    expect(frame.locator("#viewer")).to_have_attribute("data-state", state, timeout=20_000)


def node(frame: Frame, name: str):
    return frame.locator("#canvas svg g.node").filter(has=frame.locator("title", has_text=re.compile(f"^{name}$")))


def layer_button(page: Page, design, index: int):
    """The layer picker's button for the design's entry at ``index`` (the stack's own label for it)."""
    label = stack_label(index, design.layers[index])
    return page.locator("[data-testid^='stBaseButton']").filter(has=page.get_by_text(label, exact=True))


def expect_selected(page: Page, design, index: int) -> None:
    expect(layer_button(page, design, index)).to_have_attribute("data-testid", "stBaseButton-primary")


def click_run(page: Page, mode: str) -> None:
    page.get_by_role("radio", name=mode, exact=True).click()
    wait_idle(page)
    page.get_by_role("button", name="Run dummy forward pass").click()


def poll(condition, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def luminance(css_colour: str) -> float:
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+", css_colour)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


# ---------------------------------------------------------------- the graph and its animation


def test_a_run_fills_the_server_laid_out_graph(page: Page):
    frame = open_app(page)
    assert page.locator("[data-testid='stGraphVizChart']").count() == 0, "no graph is laid out in the browser"
    assert page.locator(f"{GRAPH} g.node").count() == 5, "input, three layers, output"
    assert "weight: <UninitializedParameter>" in shown_texts(frame, "node")
    assert set(shown_texts(frame)) == {"(2, 20)", "?"}
    shot(page, "graph-view-00-before-run")

    click_run(page, "instant")
    wait_idle(page)
    expect(frame.locator("#canvas svg g.edge text").filter(has_text="(2, 10)")).to_have_count(1)
    assert {"(2, 20)", "(2, 256)", "(2, 10)"} <= set(shown_texts(frame))
    assert "?" not in shown_texts(frame)
    assert "weight: (256, 20)" in shown_texts(frame, "node")
    assert frame.locator("#viewer").get_attribute("data-state") == "ready", "instant: no animation"
    shot(page, "graph-view-01-after-run")


def test_layer_by_layer_the_layers_appear_in_order(page: Page):
    frame = open_app(page, "?design=" + encode_design(design_from_dict(TWELVE_LAYERS)))
    click_run(page, "layer by layer")
    wait_view(frame, "animating")
    expect(frame.locator("#status")).to_have_text(re.compile(r"Layer \d+ of 12"))
    pending = frame.locator("#canvas svg g.node.pending title").all_text_contents()
    assert pending and pending[-1] == "_output", "layers still to come are faint, the output last"
    shown = frame.locator("#canvas svg g.node:not(.pending) title").all_text_contents()
    assert shown == ["_input", *[f"layer-{n}" for n in range(1, len(shown))]], "layers appear in stack order"
    shot(page, "graph-view-02-animating")
    wait_view(frame, "ready")
    assert frame.locator("#canvas svg g.pending").count() == 0
    assert "(2, 10)" in shown_texts(frame)
    expect(frame.locator("#status")).to_have_text("")


def test_the_failing_layer_is_red_and_shows_its_diagnosis_as_a_tooltip(page: Page):
    frame = open_app(page, "?design=" + encode_design(design_from_dict(BROKEN)))
    click_run(page, "instant")
    expect(page.locator("[data-testid='stAlert']").filter(has_text="expected in_features=30")).to_be_visible()
    wait_idle(page)
    failed = node(frame, "layer-1")
    expect(failed.locator("[stroke='#d32f2f']").first).to_be_attached()
    tooltip = failed.locator("g > title").first.text_content() or ""
    assert "in_features=30" in tooltip, "Graphviz's tooltip link is kept as a plain <title>"
    assert frame.locator("#canvas svg a").count() == 0, "no link survives the sanitizer"


# ---------------------------------------------------------------- pan, zoom, fit, fullscreen


def test_zoom_pan_and_fit_change_the_view(page: Page):
    frame = open_app(page)
    for label in ("Zoom in", "Zoom out", "Actual size", "Fit width", "Whole graph", "Fullscreen"):
        expect(frame.get_by_role("button", name=label)).to_be_visible()
    x0, y0, scale0 = transform(frame)
    assert scale0 == pytest.approx(1.0), "a small graph is shown at its natural size"

    for _ in range(3):
        frame.get_by_role("button", name="Zoom in").click()
    x1, y1, scale1 = transform(frame)
    assert scale1 == pytest.approx(scale0 * 1.25**3, rel=1e-3)
    expect(frame.get_by_role("button", name="Actual size")).to_have_text("195%")

    box = frame.locator("#viewport").bounding_box()
    assert box
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.move(*centre)
    page.mouse.down()
    page.mouse.move(centre[0] - 30, centre[1] + 60, steps=5)
    page.mouse.up()
    x2, y2, scale2 = transform(frame)
    assert (x2, y2) == (pytest.approx(x1 - 30, abs=1), pytest.approx(y1 + 60, abs=1)), "a drag pans"
    assert scale2 == scale1

    page.mouse.move(*centre)
    page.keyboard.down("Control")
    page.mouse.wheel(0, 200)
    page.keyboard.up("Control")
    poll(lambda: transform(frame)[2] < scale2, "Ctrl + wheel zooms out")

    frame.get_by_role("button", name="Fit width").click()
    assert transform(frame) == (pytest.approx(x0, abs=1), pytest.approx(y0, abs=1), pytest.approx(scale0))
    frame.get_by_role("button", name="Zoom out").click()
    assert transform(frame)[2] == pytest.approx(scale0 / 1.25, rel=1e-3)
    frame.get_by_role("button", name="Actual size").click()
    assert transform(frame)[2] == pytest.approx(1.0)
    shot(page, "graph-view-03-zoomed")


def test_a_long_graph_pans_inside_a_bounded_view_and_the_wheel_scrolls_it(page: Page):
    design = conv_mlp_design()
    frame = open_app(page, "?design=" + encode_design(design))
    assert page.locator(f"{GRAPH} g.node").count() == len(design.layers) + 2
    height = page.locator(VIEW).bounding_box()["height"]  # type: ignore[index]
    assert 300 < height < 720, f"the view is bounded ({height} px), not as tall as 150 layers"
    _, y0, scale0 = transform(frame)
    assert "(8, 3, 224, 224)" in shown_texts(frame), "the view starts at the input"

    box = frame.locator("#viewport").bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, 500)
    poll(lambda: transform(frame)[1] < y0 - 400, "the plain wheel pans down the graph")
    assert transform(frame)[2] == scale0

    frame.get_by_role("button", name="Whole graph").click()
    assert transform(frame)[2] < scale0 / 5, "the whole 150-layer graph fits the view"
    shot(page, "graph-view-04-whole-big-graph")


def test_the_fullscreen_button_shows_the_graph_on_the_whole_screen(page: Page):
    frame = open_app(page)
    frame.get_by_role("button", name="Fullscreen").click()
    expect(frame.locator("#viewer")).to_have_attribute("data-fullscreen", "true")
    assert frame.evaluate("document.fullscreenElement && document.fullscreenElement.id") == "viewer"
    size = frame.locator("#viewer").bounding_box()
    assert size and size["height"] > 900, "the view fills the screen"
    shot(page, "graph-view-05-fullscreen")
    frame.get_by_role("button", name="Leave fullscreen").click()
    expect(frame.locator("#viewer")).to_have_attribute("data-fullscreen", "false")


# ---------------------------------------------------------------- click to select, themes, untrusted SVG


def test_clicking_a_layer_in_the_graph_selects_it(page: Page):
    frame = open_app(page)
    expect_selected(page, SEED, 0)
    node(frame, "layer-3").locator("text").first.click()
    expect_selected(page, SEED, 2)
    wait_idle(page)
    expect(node(frame, "layer-3")).to_have_class(re.compile(r"\bselected\b"))
    expect(node(frame, "layer-1")).not_to_have_class(re.compile(r"\bselected\b"))
    field = page.locator("[data-testid='stNumberInput']").filter(has_text="out_features").locator("input")
    expect(field).to_have_value("10")

    layer_button(page, SEED, 1).click()  # the stack's selection shows in the graph too
    expect(node(frame, "layer-2")).to_have_class(re.compile(r"\bselected\b"))
    node(frame, "_input").locator("text").first.click()  # not a layer: nothing changes
    time.sleep(0.5)
    wait_idle(page)
    expect_selected(page, SEED, 1)
    shot(page, "graph-view-06-selected")


def test_blocks_collapse_and_a_click_inside_a_block_selects_the_block(page: Page):
    design = load_example("resnet18")
    frame = open_app(page, "?design=" + encode_design(design))
    assert frame.locator("#canvas svg g.cluster").count() == 0, "a big design's blocks start collapsed"
    node(frame, "layer-6").locator("text").first.click()
    expect_selected(page, design, 5)
    wait_idle(page)

    page.get_by_text("Collapse blocks", exact=True).click()
    wait_idle(page)
    expect(frame.locator("#canvas svg g.cluster").first).to_be_attached()
    block = frame.locator("#canvas svg g.cluster").filter(
        has=frame.locator("title", has_text=re.compile("^cluster_layer-6$"))
    )
    expect(block).to_have_class(re.compile(r"\bselected\b"))
    node(frame, "layer-7/layers/0/body/0").locator("text").first.click()  # a layer inside block 7
    expect_selected(page, design, 6)
    shot(page, "graph-view-08-blocks")


def test_the_view_follows_the_dark_theme(browser, server):
    context = browser.new_context(viewport={"width": 1500, "height": 1100}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.app_url = server  # type: ignore[attr-defined]
    try:
        frame = open_app(page)
        expect(frame.locator("#viewer")).to_have_attribute("data-theme", "dark")
        background = frame.locator("#viewer").evaluate("e => getComputedStyle(e).backgroundColor")
        assert luminance(background) < 0.2, f"a dark view, not a white panel ({background})"
        label = frame.locator("#canvas svg g.edge text").first.evaluate("e => getComputedStyle(e).fill")
        assert luminance(label) > 0.7, f"edge labels are light on the dark view ({label})"
        box = node(frame, "layer-2").locator("path").first.evaluate("e => getComputedStyle(e).fill")
        assert luminance(box) > 0.9, "layer boxes keep their light fill and dark text"
        shot(page, "graph-view-07-dark")
    finally:
        context.close()


HOSTILE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
  width="100pt" height="60pt" viewBox="0 0 100 60" onload="window.hacked = 'onload'">
<script>window.hacked = 'script'</script>
<g class="graph"><g class="node"><title>_hostile</title>
<a xlink:href="javascript:window.hacked='link'" href="https://example.org">
<text x="5" y="20">kept text</text></a>
<rect x="1" y="1" width="10" height="10" fill="url(https://example.org/x)" onclick="window.hacked='click'"/>
<foreignObject width="50" height="50"><iframe xmlns="http://www.w3.org/1999/xhtml" src="https://example.org"/></foreignObject>
<image href="https://example.org/x.png" width="10" height="10"/>
</g></g></svg>"""


def test_the_view_inserts_the_svg_through_an_allowlist(page: Page):
    """A hostile SVG handed to the view keeps its text and loses everything active.

    The view is opened on its own (its page is then its own parent), so the render message comes from the test and
    no rerun replaces the SVG.
    """
    open_app(page)
    page.goto(page.app_url + "/component/ui.graph_view.graph_view/index.html")  # type: ignore[attr-defined]
    page.evaluate("svg => window.postMessage({type: 'streamlit:render', args: {svg: svg}}, '*')", HOSTILE_SVG)
    expect(page.locator("#canvas svg text")).to_have_text("kept text")
    page.locator("#canvas svg rect").click()
    assert page.evaluate("window.hacked") is None, "no script, handler or link ran"
    assert page.locator("#canvas svg :is(script, a, foreignObject, image, iframe)").count() == 0
    markup = page.locator("#canvas").inner_html()
    for banned in ("onload", "onclick", "href", "url(", "javascript:", "example.org"):
        assert banned not in markup, banned
    page.evaluate("() => window.postMessage({type: 'streamlit:render', args: {svg: '<svg><script>'}}, '*')")
    expect(page.locator("#status")).to_contain_text("could not be shown")
    assert page.locator("#canvas *").count() == 0, "what is not an SVG image is not shown"


def test_a_failure_far_down_a_long_graph_is_brought_into_view_and_its_button_goes_back_to_it(page: Page):
    design = conv_mlp_design()
    data = json.loads(dump_design(design))
    data["layers"][-1]["params"]["in_features"] += 1  # the last Linear no longer fits: layer 150 of 150 fails
    frame = open_app(page, "?design=" + encode_design(design_from_dict(data)))
    button = frame.get_by_role("button", name="Show the failing layer")
    expect(button).to_be_hidden()
    failing = f"layer-{len(design.layers) - 1}"

    def failing_in_view() -> bool:
        box, viewport = node(frame, failing).bounding_box(), frame.locator("#viewport").bounding_box()
        assert box and viewport
        return viewport["y"] <= box["y"] and box["y"] + box["height"] <= viewport["y"] + viewport["height"]

    assert not failing_in_view(), "before the run the view shows the top of the graph"
    click_run(page, "instant")
    expect(page.locator("[data-testid='stAlert']").filter(has_text="in_features")).to_be_visible()
    wait_idle(page)
    expect(button).to_be_visible()
    poll(failing_in_view, "the view went to the failing layer")
    frame.get_by_role("button", name="Fit width").click()
    assert not failing_in_view(), "fit width goes back to the top"
    button.click()
    poll(failing_in_view, "the button goes back to the failing layer")
    shot(page, "graph-view-05-failing-layer")
