"""Keyboard shortcuts in a real browser (issue 14 item 15): Ctrl+Enter runs the forward pass, Ctrl+Z undoes and
Ctrl+Shift+Z redoes, from the page and from inside the board's frame after a drop; a key typed into a field stays
the field's. Run: ``python -m pytest tests/browser/test_shortcuts_browser.py``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from test_builder_browser import BOARD, SEED_STACK, drag, item, open_app, shot, url_design, wait_idle, wait_stack

pytestmark = pytest.mark.browser


def test_undo_redo_and_run_from_the_keyboard(page: Page):
    open_app(page)
    page.get_by_role("button", name="Add", exact=True).click()
    wait_stack(page, [*SEED_STACK, "4 · Linear(10, 10)"])

    page.locator("h1").first.click()  # focus on the page, not in a field
    page.keyboard.press("Control+z")
    wait_stack(page, SEED_STACK)
    assert len(url_design(page).layers) == 3
    page.keyboard.press("Control+Shift+z")
    wait_stack(page, [*SEED_STACK, "4 · Linear(10, 10)"])

    page.keyboard.press("Control+Enter")
    wait_idle(page)
    expect(page.get_by_text("every layer ran")).to_be_visible(timeout=30_000)
    shot(page, "shortcuts-00-run")

    page.get_by_role("button", name="Shortcuts").click()
    expect(page.get_by_text("Ctrl+Shift+Z")).to_be_visible()
    page.keyboard.press("Escape")


def test_undo_from_inside_the_board_after_a_drop_and_not_inside_a_field(page: Page):
    open_app(page)
    drag(page, item(page, "Palette", "Linear"), item(page, "Model stack", "3 · LazyLinear(10)"))
    dropped = ["1 · LazyLinear(256)", "2 · ReLU()", "3 · Linear(256, 10)", "4 · LazyLinear(10)"]
    wait_stack(page, dropped)
    board = page.frame_locator(BOARD).locator("body")
    board.press("Control+z")  # the key goes to the board's own document
    wait_stack(page, SEED_STACK)
    board.press("Control+Shift+z")
    wait_stack(page, dropped)

    search = page.locator("[data-testid='stTextInput']").filter(has_text="Search layers").locator("input")
    search.fill("conv")
    search.press("Control+z")  # the field's own undo: the design keeps the drop
    wait_idle(page)
    page.wait_for_timeout(1000)
    assert len(url_design(page).layers) == 4
