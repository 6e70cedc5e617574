"""builder.render: a graph's DOT laid out as SVG by Graphviz's own dot, cached by the DOT text, and a missing dot
reported as such (the app then draws the graph in the browser instead)."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

from builder import render
from builder.design import design_from_dict
from builder.examples import load_example
from builder.graph import render_graph
from builder.run import analyze

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"
GRAPHVIZ_ELEMENTS = {"svg", "g", "title", "polygon", "polyline", "path", "ellipse", "text"}


@pytest.fixture(autouse=True)
def fresh_cache():
    render.clear_cache()
    yield
    render.clear_cache()


def seed_dot(run: bool = True) -> str:
    design = load_example("d2l-mlp")
    return render_graph(design, analyze(design, run=run)).source


def node_titles(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "node"]


@needs_dot
def test_the_svg_holds_every_node_and_the_shapes_text():
    svg = render.layout_svg(seed_dot())
    assert svg.startswith("<svg"), "no XML prologue, doctype or comment before the image"
    assert "<!--" not in svg
    assert node_titles(svg) == ["_input", "layer-1", "layer-2", "layer-3", "_output"]
    for text in ("LazyLinear(out_features=256)", "(2, 20)", "(2, 256)", "(2, 10)", "weight: (256, 20)"):
        assert f">{text}</text>" in svg, text


@needs_dot
def test_the_same_dot_gives_the_same_object_and_another_dot_another_picture():
    run, built = seed_dot(run=True), seed_dot(run=False)
    first = render.layout_svg(run)
    assert render.layout_svg(run) is first
    assert render.layout_svg(str(run)) is first, "cached by the text, not the string object"
    other = render.layout_svg(built)
    assert other != first and "&lt;UninitializedParameter&gt;" in other


@needs_dot
def test_the_cache_is_bounded():
    dots = [f'digraph {{ a -> b [label="{n}"] }}' for n in range(render.CACHE_SIZE + 1)]
    first = render.layout_svg(dots[0])
    for dot in dots[1:]:
        render.layout_svg(dot)
    assert render.layout_svg(dots[0]) is not first, "the oldest layout was dropped"
    assert render.layout_svg(dots[-1]) is render.layout_svg(dots[-1])


@needs_dot
def test_text_from_the_design_stays_text_in_the_svg():
    design = design_from_dict(
        {
            "version": 1,
            "name": "<svg onload=alert(1)>",
            "input": {"shape": [2, 4]},
            "layers": [{"type": "ReLU", "label": '<script>alert("x")</script><a href="javascript:x">'}],
        }
    )
    root = ET.fromstring(render.layout_svg(render_graph(design).source))
    elements = list(root.iter())
    assert {element.tag.removeprefix(SVG) for element in elements} <= GRAPHVIZ_ELEMENTS
    attributes = {name.rsplit("}", 1)[-1] for element in elements for name in element.attrib}
    assert not {name for name in attributes if name.startswith("on") or name == "href"}
    texts = [element.text for element in elements]
    assert "<svg onload=alert(1)>" in texts, "the name is the graph's title, as text"
    assert '<script>alert("x")</script><a href="javascript:x">' in texts, "the label is a node's text"


def test_a_missing_dot_raises_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no dot on PATH
    with pytest.raises(render.DotNotFound, match="install graphviz"):
        render.layout_svg("digraph { a -> b }")


@needs_dot
def test_a_dot_failure_names_dots_own_error():
    with pytest.raises(render.RenderError, match="syntax error") as raised:
        render.layout_svg("digraph { a -> }")
    assert not isinstance(raised.value, render.DotNotFound)
