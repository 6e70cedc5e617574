"""Designs from elsewhere in a real browser: a link's code waits for a click, its text is never Markdown, and a
bad link gives one message and the example design.

Run: ``python -m pytest tests/browser/test_untrusted_browser.py``. Screenshots go to tests/artifacts/untrusted-*.png.
"""

from __future__ import annotations

import base64
import contextlib
import time
import zlib

import pytest
from playwright.sync_api import Page, expect
from test_builder_browser import SEED_STACK, graph_texts, items, open_app, shot, url_design, wait_idle

from builder.design import design_from_dict
from builder.examples import load_example
from builder.share import encode_design
from ui.text import WORD_JOINER

pytestmark = pytest.mark.browser

HOST = "127.0.0.1:9"  # nothing listens on the discard port: a request there would only show up in the log below
MESSAGE = f"![x](http://{HOST}/x.png) [Sign in again](http://{HOST}/login)"
PHISH = f"""\
class Phish(nn.Module):
    def __init__(self):
        super().__init__()
        raise ValueError({MESSAGE!r})

    def forward(self, X):
        return X
"""
ALERT = "[data-testid='stAlert']"
ERROR = "[data-testid='stAlertContentError']"
EXCEPTION = "[data-testid='stException']"


def phishing_link() -> str:
    design = design_from_dict(
        {
            "name": "shared",
            "input": {"shape": [2, 20]},
            "layers": [{"type": "LazyLinear", "params": {"out_features": 8}}, {"type": "Phish"}],
            "custom_layers": [{"name": "Phish", "source": PHISH}],
        }
    )
    return "?design=" + encode_design(design)


def packed(text: str) -> str:
    return base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode().rstrip("=")


def requests_to(page: Page, host: str) -> list[str]:
    """Every URL the page asks for on ``host`` from now on (images, links prefetched, anything)."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url) if host in request.url else None)
    return seen


def assert_no_markup_from(page: Page, host: str) -> None:
    """No image pulled from the host and no link to it, anywhere in the page."""
    assert page.locator(f"img[src*='{host}']").count() == 0
    assert page.locator(f"a[href*='{host}']").count() == 0


def test_a_links_code_waits_for_a_click_and_its_message_is_text(page: Page):
    requests = requests_to(page, HOST)
    open_app(page, phishing_link())
    expect(page.get_by_text("This design contains code: run it?")).to_be_visible()
    code = page.locator("[data-testid='stCode']").filter(has_text="class Phish(nn.Module):")
    expect(code).to_be_visible()
    expect(code).to_contain_text("raise ValueError(")
    assert page.locator(ALERT).filter(has_text="Sign in again").count() == 0, "nothing ran, so nothing failed"
    assert set(graph_texts(page)) == {"(2, 20)", "?"}, "the layers are not built: shapes show as ?"
    expect(page.get_by_role("button", name="Run dummy forward pass")).to_be_disabled()
    shot(page, "untrusted-00-asks")

    page.get_by_role("button", name="Run this code").click()
    alert = page.locator(ALERT).filter(has_text="__init__ raised ValueError")
    expect(alert).to_be_visible(timeout=30_000)  # the first job may wait for a sandbox worker to start
    wait_idle(page)
    shown = alert.inner_text().replace(WORD_JOINER, "")  # the invisible joiner that keeps URLs from linking
    assert f"__init__ raised ValueError: {MESSAGE}" in shown, "the text itself, as the layer raised it"
    expect(page.get_by_text("This design contains code: run it?")).to_have_count(0)
    assert_no_markup_from(page, HOST)
    assert requests == [], requests
    shot(page, "untrusted-01-ran")


def test_an_example_link_runs_without_asking(page: Page):
    open_app(page, "?design=" + encode_design(load_example("centered-layer")))
    expect(page.get_by_role("button", name="Run dummy forward pass")).to_be_enabled()
    assert page.get_by_text("This design contains code: run it?").count() == 0


@pytest.mark.parametrize(
    "link",
    [packed("[" * 100_000), packed("{" + '"a":{' * 50_000), "%00garbage!!"],
    ids=["nested-list", "nested-object", "garbage"],
)
def test_a_bad_link_gives_one_message_and_the_example(page: Page, link: str):
    open_app(page, "?design=" + link)
    errors = page.locator(ERROR)
    expect(errors).to_have_count(1)
    expect(errors).to_contain_text("Opened the example design instead.")
    assert items(page, "Model stack") == SEED_STACK
    text = page.locator("body").inner_text()
    assert "Traceback" not in text and 'File "/' not in text
    assert page.locator(EXCEPTION).count() == 0
    assert url_design(page) == load_example("d2l-mlp"), "the bad link is gone from the URL"
    shot(page, f"untrusted-02-bad-link-{len(link)}")

    page.get_by_role("button", name="Add", exact=True).click()  # a rerun
    wait_stack_length(page, len(SEED_STACK) + 1)
    assert page.locator(EXCEPTION).count() == 0
    assert "Traceback" not in page.locator("body").inner_text()
    expect(errors).to_have_count(0)


def wait_stack_length(page: Page, length: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the iframe is being replaced
            if len(items(page, "Model stack")) == length:
                wait_idle(page)
                return
        time.sleep(0.1)
    raise AssertionError(f"the stack did not reach {length} layers: {items(page, 'Model stack')!r}")
