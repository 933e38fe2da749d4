"""Real headless Chromium for end-to-end tests: Debian's /usr/bin/chromium driven by Playwright.

Never `playwright install`: Playwright is pointed at the system browser. Chromium's caches go to
a temporary XDG_CACHE_HOME, not the home directory. Without Chromium the test fails under CI=true
and is skipped elsewhere (tests.servers.server_missing).

Use in a test module:

    from tests.e2e.browser import browser, page, save_artifact   # noqa: F401  (fixtures)

    async def test_something(page):
        await page.goto(url)
        ...
        assert page.errors == []          # uncaught exceptions in the page, console errors

`browser` is a launched playwright Browser; `page` a fresh page in its own context (zh-CN,
1280x800) with `page.errors` collecting page errors and console errors. `new_page(browser, ...)`
makes more pages (other viewports, a second tab in the same context). Screenshots and other
artifacts go under artifacts/ at the repository root (git-ignored).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, AsyncIterator

import pytest_asyncio

from tests.servers import server_missing

CHROMIUM = os.environ.get("KESU_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
DEFAULT_VIEWPORT = {"width": 1280, "height": 800}


def chromium_executable() -> str:
    """The system Chromium, or fail (CI) / skip (elsewhere) saying what is missing."""
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        server_missing(f"Chromium at {CHROMIUM}", "install it with `apt-get install chromium fonts-wqy-microhei` "
                                                  "or set KESU_CHROMIUM")
    return path


def artifact_path(name: str) -> Path:
    """Where to keep a screenshot or trace: artifacts/<name> at the repository root."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


async def save_artifact(page, name: str, **screenshot_options: Any) -> Path:
    path = artifact_path(name)
    await page.screenshot(path=str(path), **screenshot_options)
    return path


async def launch(playwright, cache_dir: Path):
    """Launch the system Chromium headless with the flags that work as root in a container."""
    try:
        return await playwright.chromium.launch(
            executable_path=chromium_executable(), headless=True, args=LAUNCH_ARGS,
            env={**os.environ, "XDG_CACHE_HOME": str(cache_dir), "XDG_CONFIG_HOME": str(cache_dir / "config")})
    except Exception as exc:   # the binary exists but does not start: say so instead of a driver trace
        if "Executable doesn't exist" in str(exc):
            server_missing(f"Chromium at {CHROMIUM}", str(exc).splitlines()[0])
        raise


async def new_page(browser, *, viewport: dict[str, int] | None = None, context=None, **context_options: Any):
    """A page (in a new context unless one is given) whose `errors` list collects uncaught page
    exceptions and console errors, so a test can assert the page ran cleanly."""
    if context is None:
        context = await browser.new_context(viewport=viewport or DEFAULT_VIEWPORT, locale="zh-CN",
                                            **context_options)
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(f"pageerror: {exc}"))

    def on_console(msg) -> None:
        if msg.type == "error" and "favicon.ico" not in (msg.location or {}).get("url", ""):
            page.errors.append(f"console.error: {msg.text}")

    page.on("console", on_console)
    return page


@pytest_asyncio.fixture
async def browser(tmp_path_factory) -> AsyncIterator[Any]:
    chromium_executable()
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:
        server_missing("Playwright (pip install playwright)", str(exc))
    cache = tmp_path_factory.mktemp("chromium-cache")
    async with async_playwright() as pw:
        b = await launch(pw, cache)
        try:
            yield b
        finally:
            await b.close()


@pytest_asyncio.fixture
async def page(browser):
    p = await new_page(browser)
    try:
        yield p
    finally:
        await p.context.close()


__all__ = ["browser", "page", "new_page", "launch", "chromium_executable", "artifact_path", "save_artifact",
           "LAUNCH_ARGS", "ARTIFACTS", "CHROMIUM"]
