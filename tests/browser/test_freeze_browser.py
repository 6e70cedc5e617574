"""A link that tried to freeze the server: a layer whose parameter's shape is a tuple nested 2**25 deep.

Before replies were checked as bounded data, formatting that shape held the GIL for seconds per level and every
session stalled. Now the reply is refused as "not a result", with a message naming the layer, and the server
answers its health check and other sessions throughout.
"""

from __future__ import annotations

import threading
import time
import urllib.request

import pytest
from playwright.sync_api import Page, expect
from test_builder_browser import open_app, shot, wait_idle

from builder.design import design_from_dict
from builder.share import encode_design
from tests.hostile_layers import nested_shape_layer

pytestmark = pytest.mark.browser

NESTED = nested_shape_layer("Freeze")


def freeze_link() -> str:
    design = design_from_dict(
        {
            "input": {"shape": [2, 20]},
            "layers": [{"type": "Freeze"}],
            "custom_layers": [{"name": "Freeze", "source": NESTED}],
        }
    )
    return "?design=" + encode_design(design)


def _health_latencies(url: str, stop: threading.Event, found: list[float]) -> None:
    while not stop.is_set():
        start = time.monotonic()
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=30) as response:
                response.read()
        except OSError:
            pass
        found.append(time.monotonic() - start)
        time.sleep(0.05)


def test_a_nested_shape_in_a_link_cannot_freeze_the_server(page: Page, browser):
    open_app(page, freeze_link())
    expect(page.get_by_text("This design contains code: run it?")).to_be_visible()
    latencies: list[float] = []
    stop = threading.Event()
    probe = threading.Thread(target=_health_latencies, args=(page.app_url, stop, latencies))  # type: ignore[attr-defined]
    probe.start()
    try:
        page.get_by_role("button", name="Run this code").click()
        alert = page.locator("[data-testid='stAlert']").filter(has_text="not a result")
        expect(alert).to_be_visible(timeout=60_000)
        wait_idle(page)
        other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        other.app_url = page.app_url  # type: ignore[attr-defined]
        open_app(other)  # a second visitor is served as usual
        other.context.close()
    finally:
        stop.set()
        probe.join()
    assert "Freeze" in alert.inner_text()
    assert latencies and max(latencies) < 5.0, max(latencies)  # it never stalled (the old freeze: 13 s and more)
    shot(page, "freeze-refused")
