"""Browser tests: Playwright (the Python package from PyPI) driving Debian's Chromium headless
against the live test server. Playwright's own browser download is never used (it does not work
here, and the system browser is what the Makefile installs); the app must be built
(``make ui``; ``make test`` builds it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from steelyard.api.webapp import WEB_DIST

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "bench" / "out" / "ui"
#: axe-core from the front end's dev dependencies (`make ui` installs them). It is the engine
#: `@axe-core/playwright` wraps for Playwright's JavaScript API; from Python it is injected.
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


# Per module, not per session: while Playwright's sync API runs, the main thread has a running
# event loop, and every later test calling asyncio.run() would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("No Chromium: `make test` installs Debian's (apt-get install -y chromium)")
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail("The labeling app is not built: run `make ui` (make test does)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def screenshot(page: Page, name: str) -> None:
    """Kept as a test artifact (bench/out/ui, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def axe_violations(page: Page) -> list[str]:
    """WCAG 2.2 A/AA violations axe-core finds on the page as it is now: rule, impact, where."""
    if not AXE.is_file():
        pytest.fail("axe-core is missing: run `make ui` (npm ci in frontend/)")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => `${v.id} (${v.impact}): ${v.nodes.map(n => n.target).join(' ')}`)",
        WCAG,
    )
    return list(found)
