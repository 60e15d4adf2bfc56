"""The front-end the package ships: pinned npm versions, their licences, nothing fetched from
the internet, small enough to load fast (no browser needed here)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import api.web

WEB = Path(api.web.__file__).parent
STATIC = WEB / "static"
LICENCES = {"maplibre-gl": "maplibre-gl/LICENSE.txt", "chart.js": "chart.js/LICENSE.md",
            "swagger-ui-dist": "swagger-ui/LICENSE", "redoc": "redoc/LICENSE"}


def test_vendored_libraries_are_the_pinned_npm_releases_with_their_licences():
    pinned = json.loads((WEB / "package.json").read_text())["dependencies"]
    locked = json.loads((WEB / "package-lock.json").read_text())["packages"]
    vendored = json.loads((STATIC / "vendor" / "versions.json").read_text())
    assert set(pinned) == set(vendored) == set(LICENCES)
    for name, version in pinned.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
        assert vendored[name]["version"] == version == locked[f"node_modules/{name}"]["version"]
        assert vendored[name]["integrity"] == locked[f"node_modules/{name}"]["integrity"]
        licence = (STATIC / "vendor" / LICENCES[name]).read_text()
        assert vendored[name]["license"].split("-")[0] in licence or "License" in licence
    # The bundles say which release they are.
    maplibre = (STATIC / "vendor/maplibre-gl/maplibre-gl.js").read_text()[:300]
    assert f"v{pinned['maplibre-gl']}" in maplibre
    assert pinned["chart.js"] in (STATIC / "vendor/chart.js/chart.umd.min.js").read_text()[:300]


def test_the_api_documentation_bundles_load_nothing_from_a_cdn():
    # vendor.sh points ReDoc's badge logo at the package's favicon.
    assert "cdn.redoc.ly" not in (STATIC / "vendor/redoc/redoc.standalone.js").read_text()


def test_the_page_asks_nothing_of_another_host():
    for name in ("index.html", "map.js", "sites.js", "map.css"):
        text = (STATIC / name).read_text()
        assert not re.search(r"https?://(?!127\.0\.0\.1)", text), name
        assert "cdn" not in text.lower(), name


def test_shipped_front_end_is_under_two_megabytes_compressed():
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    compressed = sum(len(gzip.compress(p.read_bytes(), compresslevel=6)) for p in files)
    assert compressed < 2_000_000, f"{compressed / 1e6:.2f} MB"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from api.app import create_app
    from api.settings import Settings

    data = tmp_path_factory.mktemp("web-data")
    app = create_app(Settings(data_dir=data, run_worker=False,  # type: ignore[call-arg]
                              admin_key="fw_test_admin_0123456789"))
    with TestClient(app) as test_client:
        yield test_client


def test_assets_are_served_compressed_and_revalidated(client):
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-encoding"] == "gzip"
    assert "/static/vendor/maplibre-gl/maplibre-gl.js" in page.text
    again = client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304
    library = client.get("/static/vendor/maplibre-gl/maplibre-gl.js",
                         headers={"Accept-Encoding": "gzip"})
    assert library.status_code == 200 and library.headers["content-encoding"] == "gzip"
    assert "max-age=86400" in library.headers["cache-control"]
    assert library.content == (STATIC / "vendor/maplibre-gl/maplibre-gl.js").read_bytes()


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/settings.py",
                                  "/static/vendor/../../__init__.py", "/static/nothing.js"])
def test_nothing_outside_the_assets_is_served(client, path):
    assert client.get(path).status_code == 404


def test_public_boundaries_carry_official_names(client):
    municipalities = client.get("/map/boundaries/municipalities.geojson").json()["features"]
    assert len(municipalities) == 262  # the named polygons (gis_data/README.md)
    names = {f["properties"]["name"] for f in municipalities}
    assert {"Metapán", "Usulután", "Ahuachapán", "Ciudad Delgado"} <= names
    departments = client.get("/map/boundaries/departments.geojson").json()["features"]
    assert {f["properties"]["code"] for f in departments} >= {"SV-SS", "SV-LI", "SV-SA"}
    assert len(departments) == 14
    countries = client.get("/map/boundaries/country.geojson").json()["features"]
    assert [f["properties"]["name"] for f in countries if f["properties"]["el_salvador"]]
    assert client.get("/map/boundaries/planet.geojson").status_code == 422


def test_the_page_learns_the_role_of_its_key(client):
    assert client.get("/map/me").status_code == 401
    me = client.get("/map/me", headers={"X-API-Key": "fw_test_admin_0123456789"}).json()
    assert me["role"] == "admin" and me["municipality_id"] is None
    alerts = client.get("/map/alerts").json()  # public, no key
    assert alerts == {"version": 0, "exercise": False, "alerts": []}
