"""The site managers' screens of the map (issue 15, item 7) in a real browser on the live demo:
a key bound to one collective centre opens "Mi albergue / My site", sees its profile (unknown
values said to be unknown, the capacity marked as an estimate), reports its occupancy through
the form, finds the report in the history and the state updated, is told why the service
refuses a report, and never sees another site. Analysts get the sites as a layer."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.timeout(900)

SERVICES = ("water", "electricity", "lighting", "lockable_doors", "private_space",
            "accessible_toilet", "kitchen")
GBV_FLAGS = ("gbv_no_lighting", "gbv_no_lockable_doors", "gbv_mixed_toilets",
             "gbv_no_private_space", "gbv_overcrowded")
#: The form's sex × age table, filled in the test: women 2, 3, 4, 1 and men 1, 2, 3, 0 in the
#: bands 0–5, 6–17, 18–59, 60+ → 10 women and girls + 6 men and boys = 16 people.
BANDS = {"female_0_5": 2, "female_6_17": 3, "female_18_59": 4, "female_60_plus": 1,
         "male_0_5": 1, "male_6_17": 2, "male_18_59": 3, "male_60_plus": 0}
#: Sphere 2018, WASH water supply standard 2.1: 15 l per person per day.
WATER_L_PER_PERSON_DAY = 15

RENDERED_SITES = """() => window.floodwarn.map.getLayer('sites')
    ? window.floodwarn.map.queryRenderedFeatures({layers: ['sites']})
        .map(f => [f.properties.site_id, f.layer.paint['circle-color']])
    : null"""


@pytest.fixture(scope="module")
def sites(demo_service):
    """A usable site for the manager (capacity known, estimated as shipped), another it must
    not see, and a site manager key bound to the first only."""
    service, _ = demo_service
    features = httpx.get(f"{service.base}/sites", headers=service.admin,
                         timeout=30).json()["features"]
    assert len(features) >= 2
    usable = [f for f in features if f["properties"]["usable"]
              and (f["properties"]["capacity_people"] or 0) > 0
              and f["properties"]["last_report_at"] is None]
    # The other site stands alone (no site within ~1 km) so that a click on it finds it.
    points = np.array([f["geometry"]["coordinates"] for f in features])

    def alone(feature: dict) -> float:
        gaps = np.hypot(*(points - feature["geometry"]["coordinates"]).T)
        return float(np.sort(gaps)[1])

    own = usable[0]
    other = max(usable[1:], key=alone)
    answer = httpx.post(f"{service.base}/keys", headers=service.admin, timeout=10, json={
        "role": "site_manager", "name": "gestora de pruebas",
        "site_ids": [own["properties"]["site_id"]]})
    assert answer.status_code == 201, answer.text
    return {"own": own, "other": other, "key": answer.json()["key"]}


def _fill_report(page, *, status: str, households: str, bands: dict[str, int] | None = None,
                 people: str | None = None, disabled: str | None = None,
                 needs: tuple[str, ...] = (), note: str = "") -> None:
    page.select_option("#report-status", status)
    page.get_by_label("Hogares / Households", exact=True).fill(households)
    for name, value in (bands or {}).items():
        page.fill(f"#report-{name}", str(value))
    if people is not None:
        page.get_by_label("Total de personas / Total people").fill(people)
    if disabled is not None:
        page.get_by_label("Personas con discapacidad / People with disabilities").fill(disabled)
    for need in needs:
        page.get_by_label(need, exact=True).check()
    if note:
        page.get_by_label("Nota interna (no se comparte) / Internal note (never shared)").fill(note)


def _history_rows(page) -> list[list[str]]:
    return page.locator("#site-history table.history tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.innerText.trim()))")


def test_a_site_manager_sees_its_site_reports_and_finds_it_in_the_history(
        open_map, demo_service, sites, screenshots):
    service, _ = demo_service
    own = sites["own"]["properties"]
    opened = open_map(sites["key"])
    page = opened.page
    page.wait_for_function("document.getElementById('site-title').textContent.length > 0")
    assert page.locator("#site-heading").inner_text() == "Mi albergue / My site"
    assert page.locator("#site-title").inner_text() == own["name"]
    assert page.locator("#site-choice").is_hidden()  # one site: no selector
    assert "gestión de albergue" in page.locator("#who").inner_text()
    body, profile = page.locator("#site-body"), page.locator("#site-profile")
    # Unknown profile values are said to be unknown, known ones given; none left blank.
    for name in SERVICES:
        label = {"water": "Agua / Water", "electricity": "Electricidad / Electricity",
                 "lighting": "Iluminación / Lighting",
                 "lockable_doors": "Puertas con llave / Lockable doors",
                 "private_space": "Espacio privado / Private space",
                 "accessible_toilet": "Sanitario accesible / Accessible toilet",
                 "kitchen": "Cocina / Kitchen"}[name]
        row = profile.locator("tr", has_text=label).locator("td").inner_text()
        assert row == {None: "sin dato / unknown", True: "sí / yes", False: "no"}[own[name]], name
    cells = page.locator(":is(#site-body, #site-profile) :is(table.facts td, tbody td)")
    assert cells.count() > 20 and all(text.strip() for text in cells.all_inner_texts())
    capacity = profile.locator("tr", has_text="Capacidad / Capacity").inner_text()
    assert own["capacity_source"] == "estimate"  # the shipped list, not an official one
    assert "capacidad estimada / estimated capacity" in capacity
    # No report yet: state and history say so.
    assert "sin informe / no report" in body.inner_text()
    page.wait_for_function("document.getElementById('site-history').textContent.length > 0")
    assert "Sin informes todavía" in page.locator("#site-history").inner_text()
    # GBV flags: true in red with its label, null grey "sin dato", as the service computed them.
    for flag in GBV_FLAGS:
        item = body.locator("ul.gbv-flags li").nth(GBV_FLAGS.index(flag))
        expected = {True: "on", False: "off", None: "unknown"}[own[flag]]
        assert expected in item.get_attribute("class").split(), (flag, own[flag])
        if own[flag] is None:
            assert "sin dato / unknown" in item.inner_text()

    # The report: 16 people by sex and age (the total is the table's sum, read-only).
    _fill_report(page, status="open", households="5", bands=BANDS, disabled="2",
                 needs=("agua / water", "higiene menstrual / menstrual hygiene"),
                 note="prueba del formulario")
    people = page.get_by_label("Total de personas / Total people")
    assert people.input_value() == "16" and people.get_attribute("readonly") is not None
    page.get_by_role("button", name="Enviar informe / Submit report").click()
    page.wait_for_function("document.getElementById('report-done').textContent.length > 0")
    assert "Informe guardado / Report saved" in page.locator("#report-done").inner_text()
    page.wait_for_function(
        "document.querySelectorAll('#site-history table.history tbody tr').length === 1")
    # Stored as typed, with its author.
    stored = httpx.get(f"{service.base}/sites/{own['site_id']}/reports",
                       headers={"X-API-Key": sites["key"]}, timeout=10).json()
    assert len(stored) == 1
    report = stored[0]
    assert {k: report[k] for k in BANDS} == BANDS
    assert (report["people"], report["households"], report["disabled"], report["status"]) == \
        (16, 5, 2, "open")
    assert sorted(report["needs"]) == ["menstrual_hygiene", "water"]
    assert report["author"] == "gestora de pruebas"
    # The history row: local time, author, status, people, households, disabled, needs.
    [row] = _history_rows(page)
    reported_at = opened.evaluate("(iso) => when(iso)", report["reported_at"])
    assert row == [reported_at, "gestora de pruebas", "abierto / open", "16", "5", "2",
                   "agua / water, higiene menstrual / menstrual hygiene"]
    assert "(UTC−6)" in row[0]
    # The state shown is the new report's: status, occupancy against capacity, bands.
    page.wait_for_function("!document.getElementById('site-body').innerText"
                           ".includes('sin informe / no report')")
    state = httpx.get(f"{service.base}/sites/{own['site_id']}", headers=service.admin,
                      timeout=10).json()
    assert state["people_present"] == 16 and state["site_status"] == "open"
    text = body.inner_text()
    assert "abierto / open" in text
    capacity_text = opened.evaluate("(v) => number(v)", own["capacity_people"])
    assert f"16 / {capacity_text}" in text
    bands_row = body.locator("table.bands tr", has_text="Mujeres / Women").inner_text()
    assert bands_row.split("\t")[1:] == ["2", "3", "4", "1"]
    # Needs: water for the 16 present and those the forecast sends, 15 l each a day (Sphere
    # 2018 water supply standard 2.1): (16 + arriving) × 15.
    arriving = round(state["people_arriving"])
    assert state["water_l_per_day"] == pytest.approx((16 + arriving) * WATER_L_PER_PERSON_DAY)
    water = body.locator("table.facts tr", has_text="Agua necesaria / Water needed").inner_text()
    assert opened.evaluate("(v) => number(v)", state["water_l_per_day"]) in water
    assert opened.refused == [] and opened.errors == [], (opened.refused, opened.errors)
    page.screenshot(path=str(screenshots / "site_manager_report.png"), full_page=True)


def test_a_refused_report_shows_the_services_problem_and_stores_nothing(open_map, demo_service,
                                                                         sites, screenshots):
    service, _ = demo_service
    own = sites["own"]["properties"]
    opened = open_map(sites["key"])
    page = opened.page
    page.wait_for_function("document.getElementById('site-title').textContent.length > 0")
    page.wait_for_function("document.getElementById('site-history').textContent.length > 0")
    before = len(httpx.get(f"{service.base}/sites/{own['site_id']}/reports",
                           headers=service.admin, timeout=10).json())
    posts = lambda: [u for u in opened.requested  # noqa: E731
                     if u.endswith(f"/sites/{own['site_id']}/reports")]
    # A negative count is refused in the page: nothing is sent.
    _fill_report(page, status="open", households="-1", people="3")
    page.get_by_role("button", name="Enviar informe / Submit report").click()
    problems = page.locator("#report-problems")
    problems.wait_for(state="visible")
    assert "Revise el formulario / Check the form" in problems.inner_text()
    assert "households" in problems.inner_text()
    assert page.locator("#report-households").get_attribute("aria-invalid") == "true"
    assert posts() == []
    # Half the sex × age table is refused too (all eight or none).
    page.get_by_label("Hogares / Households", exact=True).fill("1")
    page.fill("#report-female_0_5", "2")
    page.get_by_role("button", name="Enviar informe / Submit report").click()
    page.wait_for_function("document.getElementById('report-problems').innerText"
                           ".includes('male_60_plus')")
    assert posts() == []
    # More households than people: the service's 422, shown next to the form as it says it.
    page.fill("#report-female_0_5", "")
    _fill_report(page, status="full", households="10", people="3")
    expected = httpx.post(f"{service.base}/sites/{own['site_id']}/reports",
                          headers={"X-API-Key": sites["key"]}, timeout=10,
                          json={"status": "full", "households": 10, "people": 3, "needs": []})
    assert expected.status_code == 422, expected.text
    page.get_by_role("button", name="Enviar informe / Submit report").click()
    page.wait_for_function("document.getElementById('report-problems').innerText"
                           ".includes('El servicio rechazó el informe')")
    assert len(posts()) == 1
    shown = problems.inner_text()
    answer = expected.json()
    for problem in answer.get("problems") or [{"msg": answer["detail"]}]:
        assert problem["msg"] in shown
    assert page.locator("#report-done").inner_text() == ""
    after = httpx.get(f"{service.base}/sites/{own['site_id']}/reports", headers=service.admin,
                      timeout=10).json()
    assert len(after) == before  # nothing stored
    assert opened.errors == [], opened.errors
    page.screenshot(path=str(screenshots / "site_manager_refused.png"), full_page=True)


def test_a_site_manager_sees_no_other_site(open_map, demo_service, sites):
    service, _ = demo_service
    own, other = sites["own"]["properties"], sites["other"]["properties"]
    opened = open_map(sites["key"])
    page = opened.page
    page.wait_for_function("document.getElementById('site-title').textContent.length > 0")
    page.wait_for_function(f"({RENDERED_SITES})()?.length > 0")
    assert opened.evaluate("window.floodwarn.state.sites.features.map(f => f.properties.site_id)"
                           ) == [own["site_id"]]
    assert {site for site, _ in opened.evaluate(RENDERED_SITES)} == {own["site_id"]}
    assert page.locator("#site-select option").count() == 1
    # No run's settlements, centres or rivers are asked for with this key.
    assert not [u for u in opened.requested if "/runs/" in u]
    assert page.locator("input[data-layer=settlements]").count() == 0
    # The other site, asked for from the page with the same key: not found, not writable.
    answers = opened.evaluate("""async (id) => {
        const headers = {'X-API-Key': window.floodwarn.state.key};
        const read = await fetch(`/sites/${id}/reports`, {headers});
        const one = await fetch(`/sites/${id}`, {headers});
        const write = await fetch(`/sites/${id}/reports`, {method: 'POST',
            headers: {...headers, 'Content-Type': 'application/json'},
            body: JSON.stringify({status: 'open', households: 1, people: 1, needs: []})});
        return [read.status, one.status, write.status];
    }""", other["site_id"])
    assert answers == [404, 404, 403]
    reports = httpx.get(f"{service.base}/sites/{other['site_id']}/reports",
                        headers=service.admin, timeout=10).json()
    assert all(r["author"] != "gestora de pruebas" for r in reports)


def test_analysts_see_the_sites_coloured_by_status_with_a_popup(open_map, demo_service, sites,
                                                                 screenshots):
    service, _ = demo_service
    other = sites["other"]
    site_id = other["properties"]["site_id"]
    stored = httpx.post(f"{service.base}/sites/{site_id}/reports", headers=service.admin,
                        timeout=10, json={"status": "full", "households": 9, "people": 30,
                                          "needs": ["water"]})
    assert stored.status_code == 201, stored.text
    analyst = service.new_key("analyst", "analista de albergues")
    opened = open_map(analyst)
    page = opened.page
    assert page.locator("#site-section").is_hidden()  # the manager's panel is not theirs
    page.check("input[data-layer=sites]")
    lon, lat = other["geometry"]["coordinates"]
    # Settlements and the run's centres sit on the same places: hidden, the click finds the site.
    for layer in ("settlements", "centres", "flows"):
        page.uncheck(f"input[data-layer={layer}]")
    opened.evaluate("""([lon, lat]) => new Promise((resolve) => {
        const map = window.floodwarn.map;
        map.jumpTo({center: [lon, lat], zoom: 13});
        map.once('idle', resolve);
    })""", [lon, lat])
    page.wait_for_function(f"({RENDERED_SITES})()?.some(([id]) => id === {site_id!r})")
    colours = dict(opened.evaluate(RENDERED_SITES))
    colour = colours[site_id]
    # "full" is drawn orange (#ef6c00).
    assert [round(colour[c] * 255) for c in "rgb"] == [0xef, 0x6c, 0x00]
    # Every site the analyst may see is in the layer, not only the manager's.
    total = opened.evaluate("window.floodwarn.state.sites.features.length")
    assert total == len(httpx.get(f"{service.base}/sites", headers=service.admin,
                                  timeout=30).json()["features"])
    box = page.locator("#map").bounding_box()
    point = opened.evaluate("([lon, lat]) => window.floodwarn.map.project([lon, lat])",
                            [lon, lat])
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = page.locator(".maplibregl-popup")
    popup.wait_for(state="visible")
    text = popup.inner_text()
    capacity = opened.evaluate("(v) => number(v)", other["properties"]["capacity_people"])
    assert other["properties"]["name"] in text
    assert "lleno / full" in text
    assert f"Ocupación / Occupancy: 30 / {capacity}" in text
    assert "Riesgos VBG / GBV risks" in text
    # The detail panel: the site's facts and its history.
    page.wait_for_function("document.querySelector('#detail-history table.history') !== null")
    assert page.locator("#detail-title").inner_text() == other["properties"]["name"]
    assert page.locator("#detail-history tbody tr").count() >= 1
    assert opened.refused == [] and opened.errors == [], (opened.refused, opened.errors)
    page.screenshot(path=str(screenshots / "map_sites_layer.png"))
