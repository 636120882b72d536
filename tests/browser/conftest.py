"""Browser tests (issue #6): Playwright's sync API driving Debian's Chromium (/usr/bin/chromium, `apt-get install
chromium`; `playwright install` is not used) against pytest-django's live_server on the test database.

Chromium missing: the tests skip with the reason, except with CI=true where that is a failure (scripts/test installs
the package when it runs as root). CHROMIUM=/path/to/chromium picks another binary.

Screenshots go to var/test-artifacts/browser/ (ignored by git; a failing test leaves one of its last page there);
with UPDATE_SCREENSHOTS=1 the tests also rewrite the committed docs/screenshots/*.png."""

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from conftest import REPO

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "var" / "test-artifacts" / "browser"
DOCS_SCREENSHOTS = REPO / "docs" / "screenshots"
PASSWORD = "correct horse battery staple"
TIMEOUT_MS = 15_000  # every wait of a step (navigation, a locator, an expect) is explicit and bounded by this


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.iterdir()):
        terminalreporter.write_line(f"browser test screenshots: {ARTIFACTS}")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API, for the module. It keeps an asyncio loop of its own in this thread, which Django's
    async-safety check takes for "called from async code" and refuses ORM calls from the test (SynchronousOnly-
    Operation). Nothing here is async: the test body and the live server's requests are ordinary blocking code
    (the server runs in its own thread, unaffected). So DJANGO_ALLOW_ASYNC_UNSAFE is set while the browser runs,
    and only then: other tests of this process keep the check."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = (
            f"Chromium not found at {CHROMIUM}: `apt-get install -y chromium` as root (scripts/test does that when "
            "it runs as root), or set CHROMIUM"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI: {reason}")
        pytest.skip(reason)
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as engine:
            yield engine
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the module (launching it takes a second or two); each test has its own context."""
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--disable-dev-shm-usage", "--disable-gpu"]
    )
    yield chromium
    chromium.close()


@pytest.fixture
def page(browser: Browser, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the live server; a failing test leaves a screenshot of its page."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    tab = context.new_page()
    yield tab
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"FAILED-{request.node.name}.png"
        tab.screenshot(path=path, full_page=True)
        sys.stderr.write(f"screenshot of the failing page: {path}\n")
    context.close()


@pytest.fixture
def staff_page(page: Page, transactional_db: None) -> Page:
    """A staff user created here, logged in through the admin's login form."""
    get_user_model().objects.create_superuser("operator", "operator@example.com", PASSWORD)
    login(page)
    return page


def login(page: Page, username: str = "operator", password: str = PASSWORD) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text(username.upper(), ignore_case=True)


def screenshot(page: Page, name: str, *, docs: bool = False) -> Path:
    """Save a full-page screenshot as a test artifact; a `docs` one also as docs/screenshots/<name> when
    UPDATE_SCREENSHOTS=1 (the README shows those)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path, full_page=True)
    sys.stderr.write(f"screenshot: {path}\n")
    if docs and os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / name)
        sys.stderr.write(f"screenshot updated: {DOCS_SCREENSHOTS / name}\n")
    return path
