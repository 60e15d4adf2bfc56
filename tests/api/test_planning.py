"""/planning over a hand-made scenario folder: the report written once and again when the
scenarios change, the exposure tables as CSV or JSON, the evacuation plans by municipality id
with a committee limited to its own, and a clear 404 when no scenarios are configured."""

from __future__ import annotations

import os

import pytest
from fastapi.testclient import TestClient

import api.routers.planning
from api.app import create_app
from api.settings import Settings
from tests.planning.test_evacuation_plans import (
    METAPAN,
    ROSARIO_CU,
    ROSARIO_PA,
    write_scenario_folder,
)

ADMIN = "fw_planning_admin_0123456789abcdef"


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    return write_scenario_folder(tmp_path_factory.mktemp("planning") / "scenarios")


@pytest.fixture()
def admin(tmp_path, scenarios):
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False, admin_key=ADMIN,
                              scenarios_dir=scenarios))
    return TestClient(app, headers={"X-API-Key": ADMIN}, raise_server_exceptions=False)


def _key(admin, role, municipality_id=None):
    body = {"role": role, "name": f"{role} de prueba"}
    if municipality_id is not None:
        body["municipality_id"] = municipality_id
    made = admin.post("/keys", json=body)
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["key"]}


def test_without_scenarios_every_route_says_how_to_make_them(tmp_path):
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False, admin_key=ADMIN))
    client = TestClient(app, headers={"X-API-Key": ADMIN}, raise_server_exceptions=False)
    for url in ("/planning/report", "/planning/exposure/settlements",
                f"/planning/evacuation-plans/{METAPAN}"):
        answer = client.get(url)
        assert answer.status_code == 404, url
        body = answer.json()
        assert body["error"] == "NotFoundError"
        assert "floodwarn scenarios run --terrain DATA_DIR/demo/terrain --out " \
            "DATA_DIR/scenarios" in body["detail"]
        assert "FLOODWARN_SCENARIOS_DIR" in body["detail"]
    # A configured folder that is not a scenario folder: the same advice, no server path.
    empty = tmp_path / "empty"
    empty.mkdir()
    app = create_app(Settings(data_dir=tmp_path / "data2", run_worker=False, admin_key=ADMIN,
                              scenarios_dir=empty))
    answer = TestClient(app, headers={"X-API-Key": ADMIN}).get("/planning/report")
    assert answer.status_code == 404 and "has no scenarios.json" in answer.json()["detail"]
    assert str(tmp_path) not in answer.text


def test_the_report_is_written_once_and_again_when_the_scenarios_change(admin, scenarios,
                                                                        monkeypatch):
    calls = []
    real = api.routers.planning.write_planner_report

    def counting(*args, **kwargs):
        calls.append(kwargs.get("upgrades_csv"))
        return real(*args, **kwargs)

    monkeypatch.setattr(api.routers.planning, "write_planner_report", counting)
    first = admin.get("/planning/report")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "text/html; charset=utf-8"
    assert "SINTÉTICO" in first.text and "data:image/png;base64," in first.text
    assert "https://" not in first.text and "http://" not in first.text
    assert admin.get("/planning/report").text == first.text
    assert len(calls) == 1 and calls[0] is None  # no shelter plan in the folder
    index = scenarios / "scenarios.json"
    later = index.stat().st_mtime_ns + 5_000_000_000
    os.utime(index, ns=(later, later))  # the scenarios were run again
    assert admin.get("/planning/report").status_code == 200
    assert len(calls) == 2
    cached = list((admin.app.state.settings.data_dir / "planning").glob("*/report-*.html"))
    assert len(cached) == 1  # the stale page is gone
    # Committees read only their own plan: not the report.
    committee = _key(admin, "committee", METAPAN)
    refused = admin.get("/planning/report", headers=committee)
    assert refused.status_code == 403 and refused.json()["error"] == "ForbiddenError"


def test_exposure_tables_as_csv_or_json(admin):
    csv = admin.get("/planning/exposure/municipalities")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    header, first = csv.text.splitlines()[:2]
    assert header.startswith("municipality_id,municipality,department,")
    assert first.startswith(f"{METAPAN},Metapán,Santa Ana,SV-SA,13700,")
    by_accept = admin.get("/planning/exposure/municipalities",
                          headers={"Accept": "application/json"})
    by_query = admin.get("/planning/exposure/municipalities", params={"format": "json"})
    assert by_accept.headers["content-type"] == "application/json"
    assert by_accept.json() == by_query.json()
    top = by_query.json()[0]
    # Metapán: 500 + 60 people exposed in the 10-year flood, 900 + 300 in the 100-year one.
    assert (top["municipality_id"], top["people_exposed_rp10"],
            top["people_exposed_rp100"]) == (METAPAN, 560, 1200)
    centres = admin.get("/planning/exposure/centres", params={"format": "json"}).json()
    unsafe = {c["name"]: c["unsafe_from_rp"] for c in centres}
    assert unsafe["Hospital Nacional Metapán"] == 2 and unsafe["Iglesia El Rosario"] == 100
    assert unsafe["Casa Comunal Metapán"] is None
    reaches = admin.get("/planning/exposure/reaches", params={"format": "json"}).json()
    assert reaches[0]["reach_id"] == 7001 and reaches[0]["settlements"] == "San Jerónimo"
    assert admin.get("/planning/exposure/people").status_code == 422
    analyst = _key(admin, "analyst")
    assert admin.get("/planning/exposure/settlements", headers=analyst).status_code == 200
    committee = _key(admin, "committee", METAPAN)
    assert admin.get("/planning/exposure/settlements", headers=committee).status_code == 403


def test_a_committee_reads_only_its_own_evacuation_plan(admin):
    committee = _key(admin, "committee", METAPAN)
    page = admin.get(f"/planning/evacuation-plans/{METAPAN}", headers=committee)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "Municipio: <strong>Metapán</strong>" in page.text and "San Jerónimo" in page.text
    csv = admin.get(f"/planning/evacuation-plans/{METAPAN}", headers=committee,
                    params={"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert f"{METAPAN},Metapán,Santa Ana,SV-SA,101,San Jerónimo," in csv.text
    # Another municipality, even a namesake's: 403, whether it has a plan or not.
    for other in (ROSARIO_CU, ROSARIO_PA):
        refused = admin.get(f"/planning/evacuation-plans/{other}", headers=committee)
        assert refused.status_code == 403, other
        assert "its own municipality" in refused.json()["detail"]
    # Analysts and administrators read every plan.
    analyst = _key(admin, "analyst")
    rosario = admin.get(f"/planning/evacuation-plans/{ROSARIO_CU}", headers=analyst)
    assert rosario.status_code == 200 and "<strong>Cuscatlán</strong>" in rosario.text


def test_plans_by_id_only_and_a_clear_404_without_one(admin):
    # El Rosario (La Paz) has nobody at risk in the 10-year flood.
    missing = admin.get(f"/planning/evacuation-plans/{ROSARIO_PA}")
    assert missing.status_code == 404
    assert "no settlement of El Rosario (La Paz) is at risk in the 10-year flood" in \
        missing.json()["detail"]
    by_name = admin.get("/planning/evacuation-plans/El Rosario")
    assert by_name.status_code == 422
    assert by_name.json()["detail"].count("(El Rosario, ") == 3
    assert admin.get(f"/planning/evacuation-plans/{METAPAN}",
                     params={"format": "pdf"}).status_code == 422
