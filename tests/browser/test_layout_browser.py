"""The Build page at the sizes people use (issue 14 items 8 and 17): at 1400x1000 and at 1024x768, after LeNet's
forward pass, no label, metric or control of the page is cut off (an element whose text is wider than its box is
cut, ellipsis or not). Screenshots go to tests/artifacts/; ``BUILDER_UPDATE_SCREENSHOT=1`` also refreshes
docs/build-1400x1000.png and docs/build-1024x768.png (the README's pictures). Run:
``python -m pytest tests/browser/test_layout_browser.py``.
"""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect
from test_builder_browser import ROOT, shot, wait_idle

from builder.examples import load_example
from builder.share import encode_design

pytestmark = pytest.mark.browser
GRAPH_FRAME = "iframe[title='ui.graph_view.graph_view']"

# Streamlit's text that may be cut: button and widget labels, the totals' labels and values, segmented-control options.
TEXT = ", ".join(
    [
        "[data-testid='stMain'] button p",
        "[data-testid='stMain'] [data-testid='stWidgetLabel'] p",
        "[data-testid='stMain'] .bt-stat-label",
        "[data-testid='stMain'] .bt-stat-value",
        "[data-testid='stMain'] [data-testid='stHeading'] h1",
        "[data-testid='stMain'] [data-testid='stSelectbox'] [data-baseweb='select'] div[value]",
    ]
)
# An element is cut when it, or one of the few boxes around it (where Streamlit puts the ellipsis), is narrower
# than its content.
CUT = """(selector) => [...document.querySelectorAll(selector)]
  .filter((e) => {
    if (e.offsetParent === null) return false;
    for (let box = e, up = 0; box && up < 4; box = box.parentElement, up++) {
      if (box.scrollWidth > box.clientWidth + 1) return true;
      if (box.tagName === "BUTTON") break;
    }
    return false;
  })
  .map((e) => e.innerText)"""


@pytest.mark.parametrize(("width", "height"), [(1400, 1000), (1024, 768)])
def test_the_build_page_shows_every_label_whole(page: Page, width: int, height: int):
    page.set_viewport_size({"width": width, "height": height})
    page.goto(page.app_url + "/?design=" + encode_design(load_example("lenet")))  # type: ignore[attr-defined]
    wait_idle(page)
    page.get_by_role("button", name="Run dummy forward pass").click()
    wait_idle(page)
    expect(page.get_by_text("every layer ran")).to_be_visible(timeout=30_000)
    expect(page.locator(".bt-stat-value").first).to_be_visible()
    page.wait_for_timeout(500)
    assert page.evaluate(CUT, TEXT) == [], "text cut off at this size"
    graph = page.frame_locator(GRAPH_FRAME)
    expect(graph.locator("#viewer")).to_have_attribute("data-state", "ready", timeout=30_000)
    status = graph.locator("#status").evaluate("(e) => [e.textContent, e.scrollWidth <= e.clientWidth + 1]")
    assert status[1], f"the graph's status line is whole: {status[0]!r}"
    toolbar = graph.locator(".toolbar")
    widths = toolbar.evaluate("(e) => [e.scrollWidth, e.clientWidth, window.innerWidth]")
    assert widths[0] <= widths[1] + 1, f"the graph's toolbar fits its view (scroll, client, window: {widths})"
    page.mouse.move(0, height - 1)  # no tooltip in the picture
    page.wait_for_timeout(500)
    for option in ("layer by layer", "instant", "Live", "Run dummy forward pass", "Add"):
        expect(page.get_by_text(option, exact=True).first).to_be_visible()
    shot(page, f"layout-{width}x{height}")
    if os.environ.get("BUILDER_UPDATE_SCREENSHOT") == "1":
        page.screenshot(path=str(ROOT / "docs" / f"build-{width}x{height}.png"), full_page=True)
