"""The browser tests' fixtures: Debian's Chromium under Playwright, a real ``hookline serve
--dev``, and pages on other origins that frame the portal.

The browser is the distribution's (``make browser-tools`` installs it), not one
``playwright install`` downloads: there is no download in CI. Without it every test here
fails with the command to run, never skips, so a missing browser cannot pass unnoticed.
"""

from __future__ import annotations

import html
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserType, Page, Playwright, sync_playwright

from tests.e2e.harness import ADMIN_TOKEN, HooklineProcess, Receiver, free_port, sqlite_url

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
"""Where the tests leave pictures of the main screens (gitignored; CI keeps them)."""
VIEWPORT = {"width": 1024, "height": 720}


def chromium_path() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.fail(
            "Chromium is missing: the browser tests drive Debian's chromium package. "
            "Run `make browser-tools` (apt-get install chromium); these tests are never skipped",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's launch arguments, pointed at the distribution's Chromium."""
    return {**browser_type_launch_args, "executable_path": chromium_path()}


# pytest-playwright keeps one Playwright, and its event loop, running for the whole session;
# while it runs, the tests collected after these could not start an event loop of their own
# (asyncio.run, pytest-asyncio). Scoped to this package instead, it stops when they end.


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as started:
        yield started


@pytest.fixture(scope="package")
def browser_type(playwright: Playwright, browser_name: str) -> BrowserType:
    return getattr(playwright, browser_name)  # type: ignore[no-any-return]


@pytest.fixture(scope="package")
def launch_browser(
    browser_type_launch_args: dict[str, Any], browser_type: BrowserType
) -> Callable[..., Browser]:
    def launch(**kwargs: Any) -> Browser:
        return browser_type.launch(**{**browser_type_launch_args, **kwargs})

    return launch


@pytest.fixture(scope="package")
def browser(launch_browser: Callable[..., Browser]) -> Iterator[Browser]:
    started = launch_browser()
    yield started
    started.close()


@pytest.fixture(scope="package")
def browser_context_args() -> dict[str, Any]:
    """Every page's context: a laptop-sized window (the plugin's own version of this
    fixture would hold the session's Playwright)."""
    return {"viewport": VIEWPORT}


class FramingPage:
    """A page on another origin (``localhost``, where hookline is ``127.0.0.1``) whose
    only content is an iframe of the URL in its ``src`` query parameter."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                src = parse_qs(urlsplit(self.path).query).get("src", [""])[0]
                body = (
                    "<!doctype html><title>Host dashboard</title><h1>Host dashboard</h1>"
                    f'<iframe title="Webhook portal" src="{html.escape(src)}" '
                    'width="1000" height="640"></iframe>'
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test's output is the browser's."""

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"

    def url_framing(self, src: str) -> str:
        return f"{self.origin}/?{httpx.QueryParams({'src': src})}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Hookline:
    """The running server, an admin client of its API, and the two framing pages: one
    whose origin ``HOOKLINE_PORTAL_FRAME_ANCESTORS`` and ``HOOKLINE_CORS_ORIGINS`` list, one
    they do not."""

    process: HooklineProcess
    api: httpx.Client
    allowed_host: FramingPage
    other_host: FramingPage

    @property
    def url(self) -> str:
        return self.process.url

    def application(self, uid: str) -> str:
        r = self.api.post("/api/v1/app", json={"name": uid, "uid": uid})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def portal_link(self, app: str, **body: Any) -> str:
        r = self.api.post(f"/api/v1/auth/app-portal-access/{app}", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["url"])


@pytest.fixture(scope="package")
def hookline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hookline]:
    """One ``hookline serve --dev`` for the session; each test makes its own application."""
    folder = tmp_path_factory.mktemp("browser")
    allowed, other = FramingPage(), FramingPage()
    env = {
        "HOOKLINE_PORTAL_FRAME_ANCESTORS": f"'self' {allowed.origin}",
        "HOOKLINE_CORS_ORIGINS": allowed.origin,
    }
    process = HooklineProcess(sqlite_url(folder), free_port(), env, folder).start("--dev")
    api = httpx.Client(
        base_url=process.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )
    try:
        yield Hookline(process, api, allowed, other)
    finally:
        api.close()
        process.terminate()
        allowed.stop()
        other.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback (``--dev`` lets hookline deliver there)."""
    started = Receiver().start()
    yield started
    started.stop()


def screenshot(page: Page, name: str) -> Path:
    """Save the page as ``artifacts/screenshots/<name>.png``: the pictures a reviewer looks
    at, and the source of docs/images/ (docs/portal.md)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
