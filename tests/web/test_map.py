"""The analysts' map in a real browser on the live demo: every layer draws features (asked of
the map's renderer, not the DOM), clicks give the facts and the hydrograph, the language
switches, roles see what they may, nothing leaves the machine and no key enters a URL."""

from __future__ import annotations

import httpx
import pytest

from tests.live_service import ADMIN_KEY

pytestmark = pytest.mark.timeout(900)

RENDERED = """(layer) => window.floodwarn.map.getLayer(layer)
    ? window.floodwarn.map.queryRenderedFeatures({layers: [layer]}).length : -1"""


@pytest.fixture(scope="module")
def keys(demo_service):
    """An analyst key, and a committee key for the municipality of the run's worst-hit town."""
    service, run = demo_service
    towns = httpx.get(f"{service.base}/runs/{run['id']}/settlements", params={"level": "roja"},
                      headers=service.admin, timeout=10).json()["features"]
    worst = max(towns, key=lambda f: f["properties"]["people_exposed"])
    municipality = worst["properties"]["municipality_id"]
    return {"analyst": service.new_key("analyst", "analista de pruebas"),
            "committee": service.new_key("committee", "comité de pruebas", municipality),
            "committee_municipality": municipality, "worst": worst}


def _click_at(opened, lon: float, lat: float, zoom: float) -> None:
    """Centre the map on (lon, lat) at ``zoom``, wait until it has drawn, click the centre."""
    page = opened.page
    opened.evaluate("""([lon, lat, zoom]) => new Promise((resolve) => {
        const map = window.floodwarn.map;
        map.jumpTo({center: [lon, lat], zoom});
        map.once('idle', resolve);
    })""", [lon, lat, zoom])
    box = page.locator("#map").bounding_box()
    point = opened.evaluate("([lon, lat]) => window.floodwarn.map.project([lon, lat])",
                            [lon, lat])
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])


def test_every_layer_draws_offline(open_map, demo_service, keys, screenshots):
    service, run = demo_service
    opened = open_map(keys["analyst"])
    page = opened.page
    # Rivers arrive after the page is usable (they are the largest layer).
    page.wait_for_function(f"({RENDERED})('reaches') > 0")
    counts = {layer: opened.evaluate(RENDERED, layer) for layer in (
        "countries-fill", "departments-line", "municipalities-line", "settlements", "centres",
        "flows", "reaches")}
    assert all(n > 0 for n in counts.values()), counts
    # Municipalities with an alert in force are filled with their level's colour, the rest not.
    alerts = httpx.get(f"{service.base}/map/alerts", timeout=10).json()["alerts"]
    coloured = opened.evaluate("""() => {
        const seen = {};
        const map = window.floodwarn.map;
        for (const f of map.queryRenderedFeatures({layers: ['municipalities-fill']})) {
            const c = f.layer.paint['fill-color'];
            if (f.state.level) seen[f.properties.id] = [f.state.level, c.a > 0
                ? [c.r, c.g, c.b].map(v => Math.round(v * 255)) : null];
        }
        return seen;
    }""")
    level_rgb = {"amarilla": [242, 196, 0], "naranja": [239, 108, 0], "roja": [198, 40, 40]}
    assert {m: level for m, (level, _) in coloured.items()} == {
        a["municipality_id"]: a["level"] for a in alerts}
    # The colour drawn is the level's (when the renderer reports it with the feature state).
    assert all(rgb in (None, level_rgb[level]) for level, rgb in coloured.values())
    # Every settlement drawn carries its level's symbol (shape, colour and letter).
    levels = opened.evaluate("""() => window.floodwarn.map
        .queryRenderedFeatures({layers: ['settlements']})
        .map(f => [f.properties.level, f.layer.layout['icon-image'].name
                   ?? f.layer.layout['icon-image']])""")
    assert levels and all(image == f"level-{level}" for level, image in levels)
    # Raster layers: PNG tiles answered for depth and relief.
    page.wait_for_function("window.floodwarn.map.isSourceLoaded('depth')")
    tiles = [u for u in opened.requested if "/tiles/" in u]
    assert any(f"/runs/{run['id']}/tiles/depth/" in u for u in tiles)
    assert any("/terrain/tiles/hillshade/" in u for u in tiles)
    # Time of first flooding: switched on, the slider shows and asks for the hour it shows.
    assert not page.locator("#time-control").is_visible()
    page.check("input[data-layer=first_flooding]")
    page.locator("#hour-slider").fill("24")
    page.wait_for_function("window.floodwarn.map.isSourceLoaded('first_flooding')")
    assert any("/tiles/first_flooding/" in u and "hour=24" in u for u in opened.requested)
    assert page.locator("#time-control").is_visible()
    # The run is synthetic: the banner says so before anything else.
    banner = page.locator("#synthetic-banner")
    assert banner.is_visible() and "SINTÉTICOS" in banner.inner_text()
    assert opened.refused == [], opened.refused  # nothing asked of the internet
    assert opened.errors == [], opened.errors
    page.screenshot(path=str(screenshots / "map_demo_analyst.png"))


def test_a_settlement_click_gives_its_facts_and_shelters(open_map, keys, screenshots):
    opened = open_map(keys["analyst"])
    worst = keys["worst"]
    lon, lat = worst["geometry"]["coordinates"]
    _click_at(opened, lon, lat, 11)
    detail = opened.page.locator("#detail-section")
    detail.wait_for(state="visible")
    text = detail.inner_text()
    p = worst["properties"]
    assert worst["properties"]["name"] in opened.page.locator("#detail-title").inner_text()
    assert "R · ROJA" in text.upper()  # letter and word as well as colour
    for label in ("Profundidad máxima", "Personas expuestas", "Horas hasta la inundación",
                  "Periodo de retorno", "Motivo del nivel", "Destinos de evacuación"):
        assert label in text
    assert f"{p['max_depth_m']:.2f}".replace(".", ",") in text or \
        f"{p['max_depth_m']:.2f}" in text
    # The reason in Spanish: "regla 2 de roja: profundidad máxima (m) ≥ 1 y personas …".
    rule = p["level_reason"].split(" condition ")[1].split(":")[0]
    assert f"regla {rule} de roja: profundidad máxima (m) ≥" in text
    assert " km" in text  # destinations with their distances
    # Hours to flooding come with their clock time (El Salvador), not only "25 h".
    hours_row = opened.page.locator("table.facts tr", has_text="Horas hasta la inundación")
    assert "(UTC−6)" in hours_row.inner_text()
    # In English the facts are redrawn, and the map keeps one popup, not one per language.
    opened.page.click("#lang-button")
    assert "Hours to flooding" in detail.inner_text()
    assert opened.page.locator(".maplibregl-popup").count() == 1
    assert "people exposed" in opened.page.locator(".maplibregl-popup").inner_text()
    opened.page.click("#lang-button")
    opened.page.screenshot(path=str(screenshots / "map_settlement_popup.png"))


def test_a_reach_click_draws_its_hydrograph_against_flood_thresholds(open_map, demo_service,
                                                                       keys, screenshots):
    service, run = demo_service
    opened = open_map(keys["analyst"])
    # A big river whose peak passes the 10-year flood, clicked in the middle of its line.
    reach = opened.evaluate("""() => {
        const lines = window.floodwarn.state.reaches.features
            .filter(f => f.properties.return_period_class >= 10 && f.properties.strahler >= 5
                         && f.geometry.coordinates.length >= 2);
        lines.sort((a, b) => b.properties.strahler - a.properties.strahler);
        const f = lines[0];
        const c = f.geometry.coordinates;
        const i = Math.floor((c.length - 1) / 2);
        return {id: f.properties.reach_id,
                lon: (c[i][0] + c[i + 1][0]) / 2, lat: (c[i][1] + c[i + 1][1]) / 2};
    }""")
    # Centres and settlements sit above rivers: hide them so the click lands on the reach.
    for layer in ("settlements", "centres", "flows"):
        opened.page.uncheck(f"input[data-layer={layer}]")
    _click_at(opened, reach["lon"], reach["lat"], 13)
    opened.page.wait_for_function(
        f"window.floodwarn.state.chart && window.floodwarn.state.selected.id === {reach['id']}")
    chart = opened.evaluate("""() => window.floodwarn.state.chart.data.datasets
        .map(d => ({label: d.label, n: d.data.length, first: d.data[0],
                    max: Math.max(...d.data)}))""")
    labels = [d["label"] for d in chart]
    assert labels[0] == "Caudal (m³/s)"
    assert labels[1:] == ["Q2", "Q5", "Q10", "Q25", "Q50", "Q100"]
    hydrograph = httpx.get(f"{service.base}/runs/{run['id']}/reaches/{reach['id']}",
                           headers=service.admin, timeout=10).json()
    assert chart[0]["n"] == len(hydrograph["times"])
    assert chart[0]["max"] == pytest.approx(hydrograph["peak_m3s"], rel=1e-3)
    for drawn, threshold in zip(chart[1:], hydrograph["thresholds"], strict=True):
        assert drawn["first"] == pytest.approx(threshold["discharge_m3s"])
    # The peak passes the 10-year flood the layer coloured it by.
    assert chart[0]["max"] >= hydrograph["thresholds"][2]["discharge_m3s"]
    opened.page.screenshot(path=str(screenshots / "map_reach_hydrograph.png"))


def test_the_language_switches_to_english_and_back(open_map, keys, screenshots):
    opened = open_map(keys["analyst"])
    page = opened.page
    assert page.locator("html").get_attribute("lang") == "es"
    assert page.locator("#layers-section h2").inner_text() == "Capas"
    page.click("#lang-button")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#layers-section h2").inner_text() == "Layers"
    assert "Settlements by level" in page.locator("#layer-list").inner_text()
    assert "R · RED" in page.locator("#layer-list").inner_text().upper()
    assert "SYNTHETIC" in page.locator("#synthetic-banner").inner_text()
    page.screenshot(path=str(screenshots / "map_english.png"))
    page.click("#lang-button")
    assert page.locator("#layers-section h2").inner_text() == "Capas"


def test_without_a_key_only_the_public_alerts_show(open_map, demo_service, keys):
    service, _ = demo_service
    opened = open_map(None)
    page = opened.page
    alerts = httpx.get(f"{service.base}/map/alerts", timeout=10).json()["alerts"]
    assert page.locator("#alert-list li").count() == len(alerts) > 0
    first = page.locator("#alert-list li").first.inner_text()
    assert any(a["municipality"] in first for a in alerts)  # place names, not ids
    assert "SLV-ADM2" not in page.locator("#alert-list").inner_text()
    # What to do and from when, as the CAP message says.
    assert "Qué hacer:" in first and "Inicio esperado:" in first
    assert page.locator("#run-choice").is_hidden()  # no run selector without a key
    assert page.locator("input[data-layer=settlements]").count() == 0
    assert opened.evaluate(RENDERED, "settlements") == 0
    assert "Vista pública" in page.locator("#alerts-note").inner_text()
    assert page.locator("#synthetic-banner").is_visible()  # the alerts are an exercise
    assert not any("/runs" in u for u in opened.requested)
    assert opened.refused == []
    # The key is asked for once: a wrong one is refused on the spot, a right one opens the
    # analyst's view (kept in this tab across the reload).
    page.click("#key-button")
    page.fill("#key-input", "fw_not_a_key_0000000000")
    page.click("#key-form button[type=submit]")
    page.wait_for_function("document.getElementById('key-error').textContent.length > 0")
    assert page.locator("#key-error").inner_text() == "Clave no válida."
    page.fill("#key-input", keys["analyst"])
    with page.expect_navigation():
        page.click("#key-form button[type=submit]")
    page.wait_for_function("window.floodwarn && window.floodwarn.state.me"
                           " && window.floodwarn.state.me.role === 'analyst'")
    page.wait_for_function("performance.getEntriesByName('floodwarn-usable').length > 0",
                           timeout=60_000)
    assert opened.evaluate(RENDERED, "settlements") > 0
    assert page.locator("#key-button").inner_text() == "Salir"


def test_a_committee_sees_its_own_municipality(open_map, keys):
    opened = open_map(keys["committee"])
    own = keys["committee_municipality"]
    municipalities = opened.evaluate("""() => window.floodwarn.state.settlements.features
        .map(f => f.properties.municipality_id)""")
    assert municipalities and set(municipalities) == {own}
    alerts = opened.page.locator("#alert-list li")
    assert alerts.count() == 1
    assert alerts.first.get_attribute("data-municipality") == own
    assert "comité" in opened.page.locator("#who").inner_text()


def test_no_key_ever_enters_a_url_or_the_log(open_map, demo_service, keys):
    service, _ = demo_service
    opened = open_map(keys["analyst"])
    committee = open_map(keys["committee"])
    for key, page in ((keys["analyst"], opened), (keys["committee"], committee)):
        assert page.requested
        assert not [u for u in page.requested if key in u]
    log = service.log()
    for key in (keys["analyst"], keys["committee"], ADMIN_KEY):
        assert key not in log


@pytest.mark.parametrize(("path", "rendered"), [
    ("/docs", ".swagger-ui .info .title"), ("/redoc", ".menu-content >> text=runs")])
def test_the_api_documentation_renders_offline(open_map, path, rendered, screenshots):
    opened = open_map(path=path)
    opened.page.wait_for_selector(rendered, timeout=60_000)
    assert "floodwarn" in opened.page.title()
    assert opened.errors == [] and opened.refused == [], (opened.errors, opened.refused)
    opened.page.screenshot(path=str(screenshots / f"api{path.replace('/', '_')}.png"))


def test_the_page_moves_to_a_newly_published_run(open_map, demo_service, keys):
    """Last in this module: it publishes a second run (wetter ground, AMC III), which the
    open page must find by itself (it polls) and show, with the alerts it updated."""
    service, run = demo_service
    opened = open_map(keys["analyst"])
    assert opened.evaluate("window.floodwarn.state.runId") == run["id"]
    version = opened.evaluate("window.floodwarn.state.alerts.version")
    queued = httpx.post(f"{service.base}/runs", headers=service.admin, timeout=30, json={
        "inbox_file": run["rain_file"], "options": {"antecedent": {"amc": 3}}})
    assert queued.status_code == 202, queued.text
    new_id = queued.json()["id"]
    opened.page.wait_for_function(f"window.floodwarn.state.runId === {new_id}", timeout=600_000)
    assert opened.page.locator("#run-select").input_value() == str(new_id)
    opened.page.wait_for_function(f"window.floodwarn.state.alerts.version > {version}")
    assert opened.evaluate("window.floodwarn.state.settlements.features.length") > 0
