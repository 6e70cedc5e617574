"""Real-browser fixtures: a streamlit server on a free port, Chromium through playwright, one page per test.

Chromium comes from $BUILDER_CHROMIUM or /usr/bin/chromium, else playwright's own download. When no browser can
start, the tests are skipped, unless BUILDER_REQUIRE_BROWSER=1 (CI), where that is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT = 90.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(proc: subprocess.Popen, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}; see tests/artifacts/server.log")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"streamlit did not answer {url}/_stcore/health within {START_TIMEOUT:.0f} s")


@pytest.fixture(scope="session")
def server() -> Iterator[str]:
    """`streamlit run app.py` on a free port; stopped (our own process only) when the session ends."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app.py"),
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    with open(ARTIFACTS / "server.log", "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(proc, url)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _launch(playwright):
    """Debian's Chromium (or $BUILDER_CHROMIUM); playwright's own browser as a fallback."""
    errors = []
    candidates = [os.environ.get("BUILDER_CHROMIUM"), "/usr/bin/chromium"]
    for path in [p for p in candidates if p]:
        if Path(path).exists():
            try:
                return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
            except Exception as error:
                errors.append(f"{path}: {error}")
    try:
        return playwright.chromium.launch(args=CHROMIUM_ARGS)
    except Exception as error:
        errors.append(f"playwright's chromium: {error}")
    message = "no browser could start:\n" + "\n".join(errors)
    if os.environ.get("BUILDER_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        if os.environ.get("BUILDER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"playwright is not installed: {error}")
        pytest.skip(f"playwright is not installed: {error}")
    with sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.app_url = server  # type: ignore[attr-defined]  # the helpers read the server's address from the page
    try:
        yield page
    finally:
        context.close()
