"""Tying and a second input in a real browser: Reuse this layer (tie weights) on the seed's last layer, its reuse
drawn in the graph and explained when its input does not fit, then Feed another input after a run.

Run: ``BUILDER_REQUIRE_BROWSER=1 python -m pytest tests/browser/test_reuse_browser.py``. Screenshots go to
tests/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Frame, Page, expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
VIEW = "iframe[title='ui.graph_view.graph_view']"
GRAPH = f"{VIEW} >> internal:control=enter-frame >> #canvas svg"


def wait_idle(page: Page) -> None:
    page.wait_for_selector(IDLE, timeout=60_000)


def click(page: Page, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()
    page.wait_for_timeout(300)  # the rerun starts
    wait_idle(page)


def graph(page: Page) -> Frame:
    page.locator(f"{GRAPH} g.node").first.wait_for(timeout=60_000)
    frame = page.locator(VIEW).element_handle().content_frame()
    assert frame is not None
    return frame


def test_tie_a_layer_then_feed_another_input(page: Page) -> None:
    page.goto(page.app_url + "/")  # type: ignore[attr-defined]
    wait_idle(page)
    click(page, "3 · LazyLinear(10)")
    click(page, "Reuse this layer (tie weights)")
    expect(page.get_by_role("button", name="4 · shares layer-3", exact=True)).to_be_visible()
    expect(page.get_by_text("Shared: shares layer-3 (LazyLinear)")).to_be_visible()
    frame = graph(page)
    expect(frame.locator("#canvas svg g.node text").filter(has_text="shares layer-3")).to_have_count(1)
    expect(frame.locator("#canvas svg g.edge text").filter(has_text="same module")).to_have_count(1)
    page.get_by_role("radio", name="instant", exact=True).click()
    wait_idle(page)
    click(page, "Run dummy forward pass")
    # layer-3 first ran on (2, 256); its reuse gets (2, 10): tying needs equal shapes
    error = page.locator("[data-testid='stAlert']").filter(has_text=re.compile(r"tying reuses the very same weights"))
    expect(error).to_be_visible()
    expect(page.locator("table.bt td").filter(has_text="tying reuses the very same weights")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "tying.png"), full_page=True)
    click(page, "Undo")
    expect(page.get_by_role("button", name="4 · shares layer-3", exact=True)).to_have_count(0)
    click(page, "Run dummy forward pass")
    field = page.get_by_role("textbox", name="Second input shape")
    field.fill("2, 40")
    field.press("Enter")
    wait_idle(page)
    click(page, "Feed another input")
    expect(
        page.get_by_text(re.compile(r"LazyLinear inferred in_features=20 from the first input \(2, 20\)"))
    ).to_be_visible()
    expect(page.get_by_text("Second input (2, 40)")).to_be_visible()
    expect(page.locator(VIEW)).to_have_count(2)  # the second input's graph, laid out on the server too
    second = page.frame_locator(VIEW).nth(1)
    expect(second.locator("#canvas svg g.node text").filter(has_text="(2, 40) float32")).to_have_count(1)
    click(page, "Run a fresh pass on (2, 40)")
    expect(page.get_by_text("Output shape (2, 10): every layer ran.")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "second-input.png"), full_page=True)
