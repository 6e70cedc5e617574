"""The app in a real browser: drag-and-drop, the rendered graph, the URL, an error fixed in one click.

Run: ``python -m pytest tests/browser`` (about a minute). Each test saves screenshots under tests/artifacts/.
``BUILDER_UPDATE_SCREENSHOT=1`` also refreshes docs/screenshot.png (the README's picture).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from builder.design import design_from_dict
from builder.graph import STATE_ATTRS, NodeState
from builder.share import decode_design, encode_design

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
BOARD = "iframe[title='ui.dnd.model_dnd']"  # the drag-and-drop board (ui/dnd_component)
GRAPH = "iframe[title='ui.graph_view.graph_view'] >> internal:control=enter-frame >> #canvas svg"
SEED_STACK = ["1 · LazyLinear(256)", "2 · ReLU()", "3 · LazyLinear(10)"]
BROKEN = {
    "version": 1,
    "name": "broken-mlp",
    "input": {"shape": [2, 20]},
    "layers": [{"type": "Linear", "params": {"in_features": 30, "out_features": 8}}, {"type": "ReLU"}],
}


# ---------------------------------------------------------------- helpers


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_idle(page: Page) -> None:
    page.wait_for_selector(IDLE, timeout=60_000)


def open_app(page: Page, query: str = "") -> None:
    page.goto(page.app_url + "/" + query)  # type: ignore[attr-defined]
    wait_idle(page)
    container(page, "Model stack").wait_for()
    page.locator(f"{GRAPH} g.node").first.wait_for()  # graphviz draws the SVG in the browser, after the run ends


def board(page: Page):
    return page.frame_locator(BOARD)


def container(page: Page, header: str):
    """A drop target of the board: "Palette", "Trash", or a stack by its title ("Model stack", "body", "branch 2")."""
    frame = board(page)
    if header == "Palette":
        return frame.locator("#palette")
    if header == "Trash":
        return frame.locator("#trash")
    return frame.locator(f".stack[data-title='{header}']")


def items(page: Page, header: str) -> list[str]:
    """The items' texts in a container, in order (the trash holds none)."""
    if header == "Trash":
        return []
    return container(page, header).locator(".item .label").all_inner_texts()


def item(page: Page, header: str, text: str):
    """An item by its exact text (the palette's first, where its group and "In this model" both show it)."""
    return container(page, header).locator(".item .label").get_by_text(text, exact=True).first


def drag(page: Page, source, target, steps: int = 25, target_y: float | None = None) -> None:
    """A real mouse drag: press, a few small moves (SortableJS starts after 4 px), ``steps`` moves to just above the
    middle of ``target`` (or to ``target_y`` pixels below its top), release. Dropped on an item, the dragged item
    goes before it (after it from the item's middle down)."""
    page.locator(BOARD).scroll_into_view_if_needed()  # the page, so the whole board is in the window
    source.scroll_into_view_if_needed()  # the palette's own scroll
    a, b = source.bounding_box(), target.bounding_box()
    assert a and b
    sx, sy = a["x"] + a["width"] / 2, a["y"] + a["height"] / 2
    tx = b["x"] + b["width"] / 2
    ty = b["y"] + (b["height"] / 2 - 2 if target_y is None else target_y)
    page.mouse.move(sx, sy)
    page.mouse.down()
    page.mouse.move(sx + 6, sy + 6, steps=3)
    page.mouse.move(tx, ty + 1, steps=steps)
    page.mouse.move(tx, ty)
    page.mouse.up()


def board_settled(page: Page) -> bool:
    """Whether the board shows the app's answer: no drop waiting, no item drawn as pending."""
    frame = board(page)
    return frame.locator("#board.busy").count() == 0 and frame.locator(".item.pending").count() == 0


def wait_stack(page: Page, expected: list[str], timeout: float = 20.0, header: str = "Model stack") -> None:
    """Wait for the board to show ``expected`` in a stack once the app has answered (the rerun may not have
    started)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = items(page, header)
            if last == expected and board_settled(page):
                wait_idle(page)
                if items(page, header) == expected and board_settled(page):
                    return
        except Exception:  # the frame is being drawn
            pass
        time.sleep(0.1)
    shot(page, "failed-wait-stack")
    note = board(page).locator("#status").inner_text()
    raise AssertionError(f"{header} {last!r}, expected {expected!r}; the board says {note!r}")


def graph_texts(page: Page, what: str = "edge") -> list[str]:
    return page.locator(f"{GRAPH} g.{what} text").all_text_contents()


def wait_graph_edges(page: Page, wanted: set[str], timeout: float = 20.0) -> list[str]:
    deadline, texts = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        texts = graph_texts(page)
        if wanted <= set(texts):
            wait_idle(page)
            return graph_texts(page)
        time.sleep(0.1)
    raise AssertionError(f"graph edges {texts!r} lack {wanted!r}")


def url_design(page: Page):
    """The design in the address bar (read from the page: playwright's page.url can miss Streamlit's updates)."""
    url = page.evaluate("window.location.href")
    values = parse_qs(urlparse(url).query).get("design")
    assert values, f"no design in {url}"
    return decode_design(values[0])


# ---------------------------------------------------------------- tests


def test_drag_from_palette_reorder_and_trash(page: Page):
    open_app(page)
    shot(page, "drag-00-first-open")
    linear_group = container(page, "Palette").locator(".group[data-group='Linear'] .label")
    palette = linear_group.all_inner_texts()
    assert "Linear" in palette
    assert items(page, "Model stack") == SEED_STACK

    drag(page, item(page, "Palette", "Linear"), item(page, "Model stack", "3 · LazyLinear(10)"))
    wait_stack(page, ["1 · LazyLinear(256)", "2 · ReLU()", "3 · Linear(256, 10)", "4 · LazyLinear(10)"])
    assert linear_group.all_inner_texts() == palette, "the palette keeps its items (copy, not move)"
    assert "Linear" in container(page, "Palette").locator(".group[data-group='In this model'] .label").all_inner_texts()
    assert items(page, "Trash") == []
    shot(page, "drag-01-after-drop")

    below = container(page, "Model stack").bounding_box()["height"] - 20  # the room under the last item
    drag(page, item(page, "Model stack", "2 · ReLU()"), container(page, "Model stack"), target_y=below)
    wait_stack(page, ["1 · LazyLinear(256)", "2 · Linear(256, 10)", "3 · LazyLinear(10)", "4 · ReLU()"])
    nodes = [t for t in graph_texts(page, "node") if t.endswith(")") and "(" in t and ":" not in t]
    assert nodes.index("ReLU()") > nodes.index("LazyLinear(out_features=10)"), nodes
    shot(page, "drag-02-after-reorder")

    drag(page, item(page, "Model stack", "2 · Linear(256, 10)"), container(page, "Trash"))
    wait_stack(page, ["1 · LazyLinear(256)", "2 · LazyLinear(10)", "3 · ReLU()"])
    assert items(page, "Trash") == []
    assert [layer.type for layer in url_design(page).layers] == ["LazyLinear", "LazyLinear", "ReLU"]
    shot(page, "drag-03-after-trash")


def test_forward_pass_fills_the_rendered_graph(page: Page):
    open_app(page)
    before = graph_texts(page, "node")
    assert "weight: <UninitializedParameter>" in before
    assert "?" in graph_texts(page)
    assert "(2, 256)" not in graph_texts(page)
    shot(page, "graph-00-before-run")

    page.get_by_role("button", name="Run dummy forward pass").click()
    edges = wait_graph_edges(page, {"(2, 256)", "(2, 10)"})
    assert "?" not in edges
    assert "weight: <UninitializedParameter>" not in graph_texts(page, "node")
    expect(page.get_by_text("(256, 20)").first).to_be_attached()  # the lazy panel: weight's shape after the run
    table = page.locator("table.bt", has_text="output shape")  # the layer table, plain HTML: text in the page
    expect(table.locator("td", has_text="(2, 256)").first).to_be_visible()
    expect(table.locator("th[title]", has_text="FLOPs")).to_have_count(1)
    shot(page, "graph-01-after-run")
    if os.environ.get("BUILDER_UPDATE_SCREENSHOT") == "1":
        page.set_viewport_size({"width": 1500, "height": 1300})  # tall enough for the table and lazy panel
        page.mouse.move(0, 1299)  # no tooltip in the picture
        wait_idle(page)
        page.wait_for_timeout(500)
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))


def test_url_round_trip(page: Page):
    open_app(page)
    page.get_by_role("button", name="Add", exact=True).click()
    wait_stack(page, [*SEED_STACK, "4 · Linear(10, 10)"])
    design = url_design(page)
    assert [layer.type for layer in design.layers] == ["LazyLinear", "ReLU", "LazyLinear", "Linear"]
    shared = page.url

    page.reload()
    wait_idle(page)
    wait_stack(page, [*SEED_STACK, "4 · Linear(10, 10)"])

    other = page.context.new_page()
    other.app_url = page.app_url  # type: ignore[attr-defined]
    other.goto(shared)
    wait_idle(other)
    wait_stack(other, [*SEED_STACK, "4 · Linear(10, 10)"])
    assert url_design(other) == design
    shot(other, "url-01-shared-link")


def test_an_error_is_red_in_the_graph_and_fixed_in_one_click(page: Page):
    open_app(page, "?design=" + encode_design(design_from_dict(BROKEN)))
    page.get_by_role("button", name="Run dummy forward pass").click()
    alert = page.locator("[data-testid='stAlert']").filter(has_text="expected in_features=30")
    expect(alert).to_be_visible()
    wait_idle(page)
    failed = page.locator(f"{GRAPH} g.node").filter(has=page.locator("title", has_text="layer-1"))
    red = STATE_ATTRS[NodeState.FAILED]["color"]
    assert failed.locator(f"[stroke='{red}']").count() >= 1, "the failing layer is drawn red"
    assert "(2, 20)" in graph_texts(page), "the input edge keeps its shape"
    shot(page, "error-00-explained")

    page.get_by_role("button", name="Fix: set in_features=20").click()
    wait_graph_edges(page, {"(2, 8)"})
    expect(alert).to_have_count(0)
    assert url_design(page).layers[0].params["in_features"] == 20
    shot(page, "error-01-fixed")


def test_a_broken_design_file_leaves_the_design_untouched(page: Page, tmp_path: Path):
    open_app(page)
    broken = tmp_path / "broken.json"
    broken.write_text('{"version": 1, "input": {"shape": [2, 20]}, "layers": [{"type": "Linar"}]}')
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(broken))
    expect(page.get_by_text("Could not load broken.json")).to_be_visible()
    expect(page.get_by_text("did you mean 'Linear'")).to_be_visible()
    wait_idle(page)
    assert items(page, "Model stack") == SEED_STACK
    shot(page, "file-00-broken")
