"""A real headless Chromium (Debian's package, driven by Playwright for Python) on the live
demo service. The browser reaches nothing but 127.0.0.1: host resolution maps every other name
to nowhere and every request to another host is aborted and recorded."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

#: Flags for root in a container with no GPU: WebGL on SwiftShader, no Google services.
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--ignore-gpu-blocklist", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


#: The page is usable in a few seconds here (software WebGL on 2 cores); a minute means broken.
USABLE_TIMEOUT_MS = 60_000


def chromium_path() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package.")
        pytest.skip("no Chromium here (apt-get install chromium); the map tests need one")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class MapPage:
    """A page of the map with every request it made and every one refused for leaving the
    machine."""

    page: object
    requested: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def evaluate(self, script: str, arg: object = None) -> object:
        return self.page.evaluate(script, arg)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $FLOODWARN_SCREENSHOTS, or a session folder."""
    chosen = os.environ.get("FLOODWARN_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def open_map(browser, demo_service):
    """``open_map(key=None, path="/")`` → a loaded :class:`MapPage` (the map's ``usable``
    promise resolved), the key given as the page keeps it: in this tab's sessionStorage."""
    service, _ = demo_service
    contexts = []

    def opener(key: str | None = None, *, width: int = 1400, height: int = 900,
               path: str = "/") -> MapPage:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        opened = MapPage(page)

        def route(route_, request):
            opened.requested.append(request.url)
            if urlsplit(request.url).hostname in ("127.0.0.1", None) or \
                    request.url.startswith(("data:", "blob:")):
                route_.continue_()
            else:
                opened.refused.append(request.url)
                route_.abort()

        context.route("**/*", route)
        page.on("pageerror", lambda error: opened.errors.append(str(error)))
        if key is not None:
            page.add_init_script(f"sessionStorage.setItem('floodwarn.key', {key!r})")
        page.goto(service.base + path)
        if path == "/":
            page.wait_for_function("window.floodwarn !== undefined")
            usable = "performance.getEntriesByName('floodwarn-usable').length > 0"
            page.wait_for_function(usable, timeout=USABLE_TIMEOUT_MS)
        return opened

    yield opener
    for context in contexts:
        context.close()
