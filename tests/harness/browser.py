"""A real headless Chromium (Debian's `chromium` package) driven by Playwright, for the incident
board's browser tests. No browser download: Playwright only drives the system's Chromium
(``executable_path``); .ci/run installs the package when it is missing.

Every request the page makes is recorded (to prove it never leaves its origin), every dialog
(an ``alert()`` from an injected script would be one) and every script error."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

# Chromium resolves no name but loopback, and skips its own background traffic: the board
# must work with the cable to the outside world unplugged, so the test browser has none either.
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-domain-reliability",
    "--disable-sync",
    "--no-pings",
    "--no-first-run",
]


# Every load the Content-Security-Policy refuses, recorded inside each page.
CSP_WATCH = """
window.__cspRefused = [];
document.addEventListener("securitypolicyviolation", (e) => window.__cspRefused.push(e.blockedURI));
"""


def chromium_executable() -> str:
    """Debian's Chromium (``LIFELINE_CHROMIUM`` overrides); a missing browser fails loudly."""
    found = os.environ.get("LIFELINE_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None
    )
    if not found:
        pytest.fail("no Chromium: `apt-get install -y chromium` (.ci/run does this)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Tab:
    """One browser context (its own cookies: one logged-in person) and its page."""

    base: str
    context: BrowserContext
    page: Page
    requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}"

    async def outside_origin(self) -> list[str]:
        """Every request the page made, or tried and the CSP refused, that was not to the
        board's own origin (a refused one never reaches the network, so the page reports it)."""
        refused: list[str] = await self.page.evaluate("window.__cspRefused ?? []")
        return [u for u in self.requests + refused if not u.startswith(self.origin + "/")]

    async def login(self, user: str, password: str) -> None:
        await self.page.goto(self.base + "login")
        await self.page.fill("input[name=user]", user)
        await self.page.fill("input[name=password]", password)
        async with self.page.expect_navigation():
            await self.page.click("button[type=submit]")

    async def open_board(self, user: str, password: str) -> None:
        """Log in and wait until the board has loaded its first list."""
        await self.login(user, password)
        await self.page.wait_for_selector("body.ready", timeout=20_000)

    async def api(self, method: str, path: str, body: object = None, csrf: str = "") -> int:
        """A request from inside the page (its cookie, its origin): the status code."""
        status: int = await self.page.evaluate(
            """async ([method, path, body, csrf]) => {
                const r = await fetch(path, {method, credentials: "same-origin",
                  headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                  body: body === null ? undefined : JSON.stringify(body)});
                return r.status;
            }""",
            [method, path, body, csrf],
        )
        return status

    async def csrf(self) -> str:
        token: str = await self.page.evaluate(
            "async () => (await (await fetch('/api/me')).json()).csrf"
        )
        return token


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_executable(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


async def new_tab(browser: Browser, base: str, *, width: int = 1280, height: int = 800) -> Tab:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    tab = Tab(base, context, page)
    context.on("request", lambda r: tab.requests.append(r.url))
    await context.add_init_script(CSP_WATCH)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))

    async def dismiss(dialog: object) -> None:
        tab.dialogs.append(getattr(dialog, "message", "?"))
        await dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", dismiss)
    return tab
