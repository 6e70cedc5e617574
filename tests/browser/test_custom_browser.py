"""A custom layer in a real browser: typed into the code editor, checked, dragged from the palette, run.

Run: ``python -m pytest tests/browser/test_custom_browser.py``. Screenshots go to tests/artifacts/custom-*.png.
"""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import Page, expect
from test_builder_browser import SEED_STACK, container, drag, graph_texts, item, items, shot, url_design, wait_idle

pytestmark = pytest.mark.browser

EDITOR = "iframe[title='code_editor.code_editor']"
LAYER = """\
class Doubler(nn.Module):
    def __init__(self, factor=2.0):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), factor))

    def forward(self, X):
        return X * self.scale
"""


def open_custom_page(page: Page) -> None:
    page.goto(page.app_url + "/custom_layers")  # type: ignore[attr-defined]
    wait_idle(page)
    page.frame_locator(EDITOR).locator(".ace_editor").wait_for()


def editor_frame(page: Page):
    return next(f for f in page.frames if "/component/code_editor.code_editor/" in f.url)


def type_code(page: Page, code: str) -> None:
    """Replace the editor's code through Ace's API (typing would meet auto-indent and auto-closed brackets)."""
    editor_frame(page).evaluate(f"ace.edit(document.querySelector('.ace_editor')).setValue({json.dumps(code)}, 1)")
    page.frame_locator(EDITOR).locator(".ace_content").click()  # focus it: leaving it sends the code to the app


def wait_palette(page: Page, expected: list[str], timeout: float = 20.0) -> None:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = items(page, "Palette")
            if last == expected:
                return
        except Exception:  # the iframe is being replaced
            pass
        time.sleep(0.1)
    raise AssertionError(f"palette {last!r}, expected {expected!r}")


def wait_stack_items(page: Page, expected: list[str], timeout: float = 20.0) -> None:
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            last = items(page, "Model stack")
            if last == expected:
                wait_idle(page)
                return
        except Exception:  # the iframe is being replaced
            pass
        time.sleep(0.1)
    raise AssertionError(f"stack {last!r}, expected {expected!r}")


def test_write_check_and_drag_a_custom_layer_into_the_stack(page: Page):
    open_custom_page(page)
    type_code(page, "import os\n\n" + LAYER)
    page.keyboard.press("Control+Enter")  # the editor's own shortcut: send the code and check it
    expect(page.get_by_text("custom layer Doubler, line 1")).to_be_visible()
    wait_idle(page)
    shot(page, "custom-00-refused")

    type_code(page, LAYER)

    page.get_by_role("button", name="Check layer").click()  # the editor loses focus and sends its code first
    # the first check may wait for a sandbox worker to start in its jail (it imports torch)
    expect(page.get_by_text("Doubler works: input (2, 20) → output (2, 20).")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("torch.Size([1])").first).to_be_attached()
    shot(page, "custom-01-checked")

    page.get_by_role("button", name="Add Doubler to the design").click()
    expect(page.get_by_text("Added Doubler: it is in the palette under Custom")).to_be_visible()
    wait_idle(page)
    assert url_design(page).custom_names() == ["Doubler"]

    page.locator("[data-testid='stSidebar']").get_by_role("link", name="Build").click()
    wait_idle(page)
    container(page, "Model stack").wait_for()
    assert items(page, "Model stack") == SEED_STACK
    page.get_by_label("Search layers").fill("doubler")
    page.get_by_label("Search layers").press("Enter")
    wait_palette(page, ["Doubler"])

    drag(page, item(page, "Palette", "Doubler"), item(page, "Model stack", "3 · LazyLinear(10)"))
    # a dropped custom layer starts with the arguments it was checked with
    wait_stack_items(page, ["1 · LazyLinear(256)", "2 · ReLU()", "3 · Doubler(factor=2.0)", "4 · LazyLinear(10)"])
    assert [layer.type for layer in url_design(page).layers] == ["LazyLinear", "ReLU", "Doubler", "LazyLinear"]
    assert url_design(page).layers[2].params == {"factor": 2.0}
    shot(page, "custom-02-dropped")

    page.get_by_role("button", name="Run dummy forward pass").click()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "(2, 10)" not in graph_texts(page):
        time.sleep(0.2)
    wait_idle(page)
    nodes = graph_texts(page, "node")
    assert any("Doubler" in text for text in nodes), nodes
    assert "scale: (1,)" in nodes, "the graph shows the custom layer's parameter shapes"
    assert "(2, 10)" in graph_texts(page)
    shot(page, "custom-03-graph")
