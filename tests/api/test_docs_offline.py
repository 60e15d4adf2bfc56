"""The API documentation (/docs, /redoc) loads nothing from the internet: on an office network
without it, FastAPI's default pages (scripts from a CDN) stay blank."""

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

import api
from api.app import create_app
from api.settings import Settings

STATIC_DIR = Path(api.__file__).parent / "web" / "static"
PAGES = ("/docs", "/redoc")


class _Links(HTMLParser):
    """Every src and href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def _links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.urls


@pytest.fixture()
def client(tmp_path):
    return TestClient(create_app(Settings(data_dir=tmp_path / "data", run_worker=False)))


@pytest.mark.parametrize("page", PAGES)
def test_docs_pages_reference_only_same_origin_assets(client, page):
    answer = client.get(page)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    html = answer.text
    urls = _links(html)
    # A script, and for Swagger UI a stylesheet, plus the icon: all served by the service.
    assert any(url.endswith(".js") for url in urls), urls
    assert any("favicon" in url for url in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
        assert url.startswith("/static/"), url
    assert "cdn" not in html.lower() and "fonts.googleapis" not in html
    assert "validator.swagger.io" not in html


def test_openapi_schema_the_pages_load_is_served(client):
    assert client.get("/openapi.json").json()["info"]["title"] == "floodwarn"


@pytest.mark.parametrize("page", PAGES)
def test_every_referenced_asset_is_shipped_in_the_package(client, page):
    for url in _links(client.get(page).text):
        shipped = STATIC_DIR / url.removeprefix("/static/")
        assert shipped.is_file(), f"{page} references {url}, not in {STATIC_DIR}"
        assert shipped.stat().st_size > 200, f"{shipped} is too small to be the asset"


# Needs the /static route over api/web/static (api/routers/web.py, registered in create_app):
# until then the assets are shipped (above) but not served, and this test is skipped.
@pytest.mark.parametrize("page", PAGES)
def test_every_referenced_asset_is_served_by_the_app(client, page):
    # Probed with a file the docs pages do not use, so a missing docs asset still fails.
    if client.get("/static/vendor/versions.json").status_code == 404:
        pytest.skip("needs the /static route (api/routers/web.py) that serves api/web/static")
    for url in _links(client.get(page).text):
        answer = client.get(url)
        assert answer.status_code == 200, f"{page}: {url} answers {answer.status_code}"
        assert len(answer.content) > 200, f"{page}: {url} is nearly empty"
        shipped = STATIC_DIR / url.removeprefix("/static/")
        assert answer.content == shipped.read_bytes()
