"""Real values and the layer reference in a real browser: the Build page's Run with real values, typed values,
and the Layer reference page reached from the sidebar, searched, with a layer's section open.

Run: ``BUILDER_REQUIRE_BROWSER=1 python -m pytest tests/browser/test_values_browser.py``. Screenshots go to
tests/artifacts/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def wait_idle(page: Page) -> None:
    page.wait_for_selector(IDLE, timeout=60_000)


def open_build(page: Page) -> None:
    page.goto(page.app_url + "/")  # type: ignore[attr-defined]
    wait_idle(page)
    page.get_by_role("heading", name="Real values").wait_for()


def click(page: Page, label: str) -> None:
    page.get_by_role("button", name=label).click()
    page.wait_for_timeout(300)  # the rerun starts
    wait_idle(page)


def test_run_with_real_values_shows_each_layers_values_and_the_formula(page: Page) -> None:
    open_build(page)
    expect(page.get_by_text("meta device: its tensors have shapes but no values")).to_be_visible()
    click(page, "Run with real values")
    expect(page.get_by_text("Parameter count: LazyLinear(256) on 20 features: 256 x 20 + 256 = 5,376")).to_be_visible()
    section = page.locator("[data-testid='stVerticalBlock']").filter(
        has=page.get_by_role("heading", name="Real values")
    )
    expect(section.locator("[data-testid='stDataFrame']:visible").first).to_be_visible()
    page.get_by_text("Typed values").click()
    wait_idle(page)
    expect(page.get_by_text("Shape (5,): the model is built for this input")).to_be_visible()
    click(page, "Run with real values")
    expect(page.get_by_text("on 5 features: 256 x 5 + 256 = 1,536")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "values.png"), full_page=True)


def test_the_layer_reference_is_in_the_menu_and_opens_a_searched_layer(page: Page) -> None:
    open_build(page)
    page.get_by_role("link", name="Layer reference", exact=True).click()
    page.get_by_role("heading", name="Layer reference").wait_for()
    wait_idle(page)
    page.get_by_label("Search layers").fill("conv2d")
    page.get_by_label("Search layers").press("Enter")
    wait_idle(page)
    expect(page.get_by_text("2 of ")).to_be_visible()
    expect(page.get_by_text("Conv2d(3, 8, 3): 8 x 3 x 3 x 3 + 8 = 224")).to_be_visible()
    expect(page.get_by_text("(2, 8, 14, 14)").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "reference.png"), full_page=True)
