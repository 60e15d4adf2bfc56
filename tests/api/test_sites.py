"""Collective centres through the API: the official list imported whole or not at all, site
managers confined to their own sites, KoBo exports imported once, replans with live capacity,
Sphere needs, suppressed exports and the OGC API."""

import io
import json
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Point

from api.app import create_app
from api.settings import Settings
from api.store.models import Run

ADMIN = "fw_sites_admin_0123456789abcdef"
NOW = datetime.now(UTC)

# Three places: in San Salvador, just east of it, and in San Miguel.
SITES_CSV = """\
codigo,nombre,longitud,latitud,capacidad_personas,area_cubierta_m2,agua,inodoros_mujeres,\
inodoros_hombres,iluminacion,puertas_con_llave,espacio_privado,habilitado,estado
CC-A,Centro Escolar Cuscatlán,-89.2030,13.6990,100,350,sí,4,2,sí,sí,sí,sí,bueno
CC-B,Iglesia San Antonio,-89.1500,13.7100,200,,no,0,0,no,,no,sí,regular
CC-C,Casa Comunal El Molino,-88.1780,13.4830,,700,,,,,,,sí,
"""


@pytest.fixture()
def app(tmp_path):
    return create_app(Settings(data_dir=tmp_path / "data", run_worker=False, admin_key=ADMIN))


@pytest.fixture()
def admin(app):
    return TestClient(app, headers={"X-API-Key": ADMIN}, raise_server_exceptions=False)


def _upload(client, path, content, name="albergues.csv", headers=None):
    return client.post(path, files={"file": (name, io.BytesIO(content), "text/csv")},
                       headers=headers)


def _import(admin, text=SITES_CSV):
    answer = _upload(admin, "/sites/import", text.encode())
    assert answer.status_code == 201, answer.text
    return answer.json()


def _key(admin, **body):
    made = admin.post("/keys", json={"name": "prueba", **body})
    assert made.status_code == 201, made.text
    return {"X-API-Key": made.json()["key"]}


def _sites(client, headers=None):
    answer = client.get("/sites", headers=headers)
    assert answer.status_code == 200, answer.text
    return {f["properties"]["site_id"]: f["properties"] for f in answer.json()["features"]}


def _report(people_f=(10, 12, 8, 6), people_m=(9, 11, 7, 5), **extra):
    bands = dict(zip(("female_0_5", "female_6_17", "female_18_59", "female_60_plus"),
                     people_f, strict=True))
    bands |= dict(zip(("male_0_5", "male_6_17", "male_18_59", "male_60_plus"), people_m,
                      strict=True))
    return {"status": "open", "households": 20, **bands, "disabled": 3,
            "needs": ["water", "menstrual_hygiene"], "note": "falta agua", **extra}


def test_the_shipped_sites_are_the_default_profile_marked_as_estimates(admin):
    sites = _sites(admin)
    assert len(sites) > 400
    first = next(iter(sites.values()))
    assert {s["capacity_source"] for s in sites.values()} == {"estimate"}
    assert first["lighting"] is None and first["covered_area_m2"] is None  # unknown, not guessed


def test_a_good_list_replaces_the_estimates_and_a_bad_one_changes_nothing(admin):
    assert _import(admin)["sites"] == 3
    sites = _sites(admin)
    assert set(sites) == {"CC-A", "CC-B", "CC-C"}
    a, b, c = sites["CC-A"], sites["CC-B"], sites["CC-C"]
    assert a["capacity_people"] == 100 and a["water"] is True and a["capacity_source"] == "census"
    assert b["lockable_doors"] is None and b["lighting"] is False  # blank stays unknown
    assert c["capacity_people"] is None and c["covered_area_m2"] == 700
    assert a["municipality"] == "San Salvador" and c["department"] == "San Miguel"
    bad = (SITES_CSV.splitlines()[0] + "\n"
           "CC-D,Escuela uno,-89.2,13.7,cien,,,,,,,,sí,\n"     # row 2: capacity not a number
           "CC-D,Escuela dos,-89.2,13.7,50,,,,,,,,sí,\n"       # row 3: duplicate id
           "CC-E,Escuela tres,-95.0,13.7,50,,,,,,,,sí,\n"      # row 4: outside El Salvador
           "CC-F,Escuela cuatro,-89.2,13.7,50,,quizás,,,,,,sí,\n"  # row 5: unknown yes/no
           "CC-G,Escuela cinco,-89.2,13.7,50,,,,,,,,sí,\n")    # row 6: good
    answer = _upload(admin, "/sites/import", bad.encode())
    assert answer.status_code == 422, answer.text
    rows = {p["loc"].split(".")[0] for p in answer.json()["problems"]}
    assert {"row 2", "row 4", "row 5"} <= rows and ("row 3" in rows)
    assert "row 6" not in rows
    assert set(_sites(admin)) == {"CC-A", "CC-B", "CC-C"}  # nothing half-imported


def test_a_site_manager_reports_for_its_own_site_only(admin):
    _import(admin)
    manager = _key(admin, role="site_manager", site_ids=["CC-A"])
    answer = admin.post("/sites/CC-A/reports", json=_report(), headers=manager)
    assert answer.status_code == 201, answer.text
    assert admin.post("/sites/CC-B/reports", json=_report(),
                      headers=manager).status_code == 403
    assert admin.get("/sites/CC-B/reports", headers=manager).status_code == 404
    assert admin.get("/sites/CC-B", headers=manager).status_code == 404
    assert set(_sites(admin, manager)) == {"CC-A"}
    for elsewhere in ("/runs", "/runs/1/settlements", "/alerts", "/needs/gaps", "/keys"):
        assert admin.get(elsewhere, headers=manager).status_code == 403, elsewhere
    assert admin.get("/map/me", headers=manager).json()["role"] == "site_manager"
    history = admin.get("/sites/CC-A/reports", headers=manager).json()
    assert len(history) == 1 and history[0]["author"] == "prueba"
    assert history[0]["people"] == 68 and history[0]["needs"] == ["water", "menstrual_hygiene"]
    state = _sites(admin)["CC-A"]
    assert state["people_present"] == 68 and state["site_status"] == "open"
    # The bands must add up to people; households cannot exceed people.
    wrong = admin.post("/sites/CC-A/reports", json=_report(people=70), headers=manager)
    assert wrong.status_code == 422 and "people" in wrong.text
    too_many = admin.post("/sites/CC-A/reports", json=_report(households=500),
                          headers=manager)
    assert too_many.status_code == 422
    # A committee reads its municipality's sites but not the internal notes.
    committee = _key(admin, role="committee", municipality_id=state["municipality_id"])
    seen = admin.get("/sites/CC-A/reports", headers=committee).json()
    assert seen[0]["people"] == 68 and "note" not in seen[0]
    assert _sites(admin)["CC-B"]["municipality"] != "San Salvador"  # Soyapango's side
    assert set(_sites(admin, committee)) == {"CC-A"}


def test_a_report_counted_earlier_but_received_later_does_not_replace_the_state(admin):
    _import(admin)
    manager = _key(admin, role="site_manager", site_ids=["CC-A"])
    assert admin.post("/sites/CC-A/reports", json=_report(), headers=manager).status_code == 201
    # A form filled three days ago reaches the service only now (KoBo synced late).
    old = _report(status="closed", people_f=(0, 0, 0, 0), people_m=(0, 0, 0, 0),
                  households=0, disabled=0,
                  reported_at=(NOW - timedelta(days=3)).isoformat())
    assert admin.post("/sites/CC-A/reports", json=old, headers=manager).status_code == 201
    state = _sites(admin)["CC-A"]
    assert state["people_present"] == 68 and state["site_status"] == "open"
    assert len(admin.get("/sites/CC-A/reports", headers=manager).json()) == 2


def test_a_site_manager_key_names_known_sites(admin):
    _import(admin)
    answer = admin.post("/keys", json={"role": "site_manager", "name": "x",
                                       "site_ids": ["CC-Z"]})
    assert answer.status_code == 422 and "CC-Z" in answer.text
    listed = admin.get("/keys").json()
    assert not any(k["role"] == "site_manager" for k in listed)


KOBO = ("start;end;codigo_albergue;estado;hogares;grp/mujeres_0_5;grp/hombres_0_5;"
        "grp/mujeres_6_17;grp/hombres_6_17;grp/mujeres_18_59;grp/hombres_18_59;"
        "grp/mujeres_60_mas;grp/hombres_60_mas;discapacidad;necesidades;_uuid;"
        "_submission_time\n"
        "{t};{t};CC-A;abierto;5;2;3;1;1;4;3;1;0;1;agua higiene;uuid-1;{s}\n"
        "{t};{t};CC-A;lleno;6;3;3;1;1;4;3;1;1;0;agua;uuid-2;{s}\n")


def _kobo():
    t = (NOW - timedelta(hours=1)).isoformat(timespec="seconds")
    s = (NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    return KOBO.format(t=t, s=s).encode()


def test_a_kobo_export_is_imported_once_and_only_for_the_managers_sites(admin):
    _import(admin)
    manager = _key(admin, role="site_manager", site_ids=["CC-A"])
    answer = _upload(admin, "/sites/reports/import", _kobo(), "kobo.csv", manager)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"added": 2, "already_stored": 0}
    again = _upload(admin, "/sites/reports/import", _kobo(), "kobo.csv", manager)
    assert again.json() == {"added": 0, "already_stored": 2}
    assert len(admin.get("/sites/CC-A/reports").json()) == 2
    assert _sites(admin)["CC-A"]["site_status"] == "full"  # the last received
    other = _key(admin, role="site_manager", site_ids=["CC-B"])
    refused = _upload(admin, "/sites/reports/import",
                      _kobo().replace(b"uuid-", b"otro-"), "kobo.csv", other)
    assert refused.status_code == 403
    assert len(admin.get("/sites/CC-A/reports").json()) == 2


def _succeeded_run(app, tmp_path):
    """A run folder as the forecast writes it: two settlements near CC-A and CC-B needing
    evacuation, the three sites as its centres, all safe."""
    from floodwarn.io.forecast_outputs import write_risk_outputs
    from floodwarn.parameters import LevelRules, load_parameters
    from floodwarn.risk.assessment import plan_evacuation

    towns = gpd.GeoDataFrame({
        "id": [1, 2], "name": ["Colonia Uno", "Colonia Dos"],
        "municipality_id": ["m1", "m1"], "municipality": ["San Salvador"] * 2,
        "department": ["San Salvador"] * 2, "department_code": ["SV-SS"] * 2,
        "level": ["roja", "roja"], "people_exposed": [150, 60], "evacuees": [150, 60],
        "hours_to_flooding": [6.0, 8.0]},
        geometry=[Point(-89.205, 13.700), Point(-89.152, 13.711)], crs="EPSG:4326")
    centres = gpd.GeoDataFrame({
        "id": ["CC-A", "CC-B", "CC-C"], "name": ["a", "b", "c"], "kind": ["school"] * 3,
        "capacity": [100, 200, 200], "shelter": [True] * 3, "status": ["safe"] * 3,
        "municipality_id": ["m1", "m1", "m2"], "department_code": ["SV-SS", "SV-SS", "SV-SM"]},
        geometry=[Point(-89.2030, 13.6990), Point(-89.1500, 13.7100), Point(-88.178, 13.483)],
        crs="EPSG:4326")
    result = plan_evacuation(towns, centres, load_parameters(LevelRules), crs="EPSG:32616")
    out = tmp_path / "run1"
    out.mkdir()
    write_risk_outputs(out, result, metadata={})
    (out / "run.json").write_text(json.dumps({"terrain": {"crs": "EPSG:32616"}}))
    with app.state.sessions.begin() as session:
        run = Run(status="succeeded", rain_path="x.nc", created_at=NOW, out_dir=str(out),
                  synthetic=True, summary={})
        session.add(run)
        session.flush()
        return run.id, result


def test_a_replan_uses_live_capacity_and_never_sends_people_to_closed_sites(app, admin,
                                                                             tmp_path):
    _import(admin)
    run_id, planned = _succeeded_run(app, tmp_path)
    sent = planned.evacuation.groupby("centre_id")["people"].sum()
    assert sent.get("CC-A", 0) == 100  # before any report: the whole profiled capacity
    manager = _key(admin, role="site_manager", site_ids=["CC-A", "CC-B"])
    # 68 people already in CC-A: 100 − 68 = 32 places left; CC-B reports closed.
    assert admin.post("/sites/CC-A/reports", json=_report(), headers=manager).status_code == 201
    closed = _report(status="closed", people_f=(0, 0, 0, 0), people_m=(0, 0, 0, 0),
                     households=0, disabled=0)
    assert admin.post("/sites/CC-B/reports", json=closed, headers=manager).status_code == 201
    sites = _sites(admin)
    assert sites["CC-A"]["capacity_remaining"] == 32 and sites["CC-A"]["destination"] is True
    assert sites["CC-B"]["destination"] is False  # closed
    assert sites["CC-C"]["capacity_basis"] == "area"  # 700 m² / 3.5 m² = 200 places
    assert sites["CC-C"]["capacity_remaining"] == 200
    answer = admin.post(f"/runs/{run_id}/replan")
    assert answer.status_code == 200, answer.text
    flows = pd.DataFrame(answer.json()["evacuation"])
    to = flows.groupby("centre_id")["people"].sum()
    assert to.get("CC-A", 0) == 32
    assert "CC-B" not in to.index
    centres = {c["id"]: c for c in answer.json()["centres"]}
    assert centres["CC-A"]["capacity"] == 32 and centres["CC-B"]["occupancy"] == 0
    assert answer.json()["evacuees"] == 210


def test_needs_follow_sphere_and_include_the_forecast_arrivals(app, admin, tmp_path):
    _import(admin)
    _succeeded_run(app, tmp_path)
    manager = _key(admin, role="site_manager", site_ids=["CC-A"])
    assert admin.post("/sites/CC-A/reports", json=_report(), headers=manager).status_code == 201
    rows = {r["site_id"]: r for r in admin.get("/needs", params={"by": "site"}).json()["rows"]}
    a = rows["CC-A"]
    # 68 present + 100 sent by the run's plan = 168 people; Sphere: 15 l/person/day,
    # 3.5 m² covered space per person, 1 toilet per 20 people.
    assert a["people_arriving"] == 100
    assert a["water_l_per_day"] == pytest.approx(168 * 15)
    assert a["covered_space_needed_m2"] == pytest.approx(168 * 3.5)
    assert a["toilets_needed"] == 9  # ceil(168 / 20)
    by_muni = admin.get("/needs").json()["rows"]
    assert {r["municipality"] for r in by_muni} >= {"San Salvador", "San Miguel"}
    total = sum(r["water_l_per_day"] for r in by_muni)
    assert total >= a["water_l_per_day"]


def test_exports_suppress_small_counts_and_carry_no_personal_data(admin):
    _import(admin)
    manager = _key(admin, role="site_manager", site_ids=["CC-A", "CC-B"])
    small = _report(people_f=(1, 0, 2, 0), people_m=(0, 0, 1, 0), households=2, disabled=1,
                    note="Familia Pérez, teléfono 7123-4567")
    assert admin.post("/sites/CC-B/reports", json=small, headers=manager).status_code == 201
    assert admin.post("/sites/CC-A/reports", json=_report(), headers=manager).status_code == 201
    public = TestClient(admin.app)
    csv = public.get("/sharing/sites.csv")
    assert csv.status_code == 200
    lines = csv.text.splitlines()
    assert lines[1].startswith("#")  # the HXL hashtag row
    assert "Pérez" not in csv.text and "prueba" not in csv.text
    table = pd.read_csv(io.StringIO(csv.text), skiprows=[1])
    for body in (csv.text, public.get("/sharing/sites.geojson").text,
                 public.get("/sharing/municipalities.csv").text,
                 public.get("/sharing/municipalities.geojson").text,
                 public.get("/ogc/collections/sites/items?limit=100").text):
        assert "Pérez" not in body
        assert "7123-4567" not in body
    tags = lines[1].split(",")
    people = [column for column, tag in zip(table.columns, tags, strict=True)
              if tag.startswith("#affected")]
    assert len(people) == 13  # people, households, 8 bands, women, men, disabled
    values = table[people].to_numpy(float).ravel()
    values = values[~pd.isna(values)]
    assert not ((values >= 1) & (values < 5)).any()
    geo = public.get("/sharing/sites.geojson").json()
    b = next(f for f in geo["features"] if f["properties"]["site_id"] == "CC-B")
    assert b["properties"]["people"] is None  # 4 people: suppressed


def test_the_ogc_api_answers_as_the_standard_says(admin):
    ogc = pytest.importorskip("pydantic_ogcapi")
    _import(admin)
    public = TestClient(admin.app, raise_server_exceptions=False)
    landing = public.get("/ogc").json()
    ogc.LandingPage.model_validate(landing)
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conformance = public.get("/ogc/conformance").json()
    ogc.ConformanceDeclaration.model_validate(conformance)
    assert ("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
            in conformance["conformsTo"])
    collections = public.get("/ogc/collections").json()
    ids = {c["id"] for c in collections["collections"]}
    assert ids == {"sites", "settlements-at-risk", "municipalities"}
    for c in collections["collections"]:
        ogc.Collection.model_validate(c)
    page = public.get("/ogc/collections/sites/items?limit=2")
    assert page.headers["content-type"].startswith("application/geo+json")
    body = page.json()
    ogc.FeatureCollection.model_validate(body)
    assert body["numberReturned"] == 2 == len(body["features"]) and body["numberMatched"] == 3
    nxt = next(link["href"] for link in body["links"] if link["rel"] == "next")
    rest = public.get(nxt.replace("http://testserver", "")).json()
    assert rest["numberReturned"] == 1 and not any(lk["rel"] == "next" for lk in rest["links"])
    boxed = public.get("/ogc/collections/sites/items?bbox=-88.5,13.3,-88.0,13.6").json()
    assert [f["id"] for f in boxed["features"]] == ["CC-C"]
    one = public.get("/ogc/collections/sites/items/CC-A").json()
    ogc.Feature.model_validate(one)
    assert public.get("/ogc/collections/sites/items/nada").status_code == 404
    assert public.get("/ogc/collections/nada").status_code == 404
    assert public.get("/ogc/collections/sites/items?limit=0").status_code == 400
    # datetime: sites by their last report (none yet: no temporal geometry, no match).
    window = "2020-01-01T00:00:00Z/.."
    assert public.get("/ogc/collections/sites/items", params={"datetime": window}
                      ).json()["numberMatched"] == 0
    manager = _key(admin, role="site_manager", site_ids=["CC-A"])
    assert admin.post("/sites/CC-A/reports", json=_report(), headers=manager).status_code == 201
    timed = public.get("/ogc/collections/sites/items", params={"datetime": window, "f": "json"})
    assert [f["id"] for f in timed.json()["features"]] == ["CC-A"]
    assert public.get("/ogc/collections/sites/items",
                      params={"datetime": "../2020-01-01T00:00:00Z"}).json()["numberMatched"] == 0
    assert public.get("/ogc/collections/sites/items?datetime=ayer").status_code == 400
    assert public.get("/ogc/collections/sites/items?f=html").status_code == 400
    assert public.get("/ogc/collections/sites/items?color=red").status_code == 400
    assert public.get("/ogc/collections/sites/items?bbox=1,2,3").status_code == 400


def test_sites_and_reports_on_postgresql(tmp_path):
    from tests.api.test_store import _postgres_database

    with _postgres_database() as url:
        app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False,
                                  admin_key=ADMIN, database_url=url))
        with TestClient(app, headers={"X-API-Key": ADMIN}) as admin:
            _import(admin)
            manager = _key(admin, role="site_manager", site_ids=["CC-C"])
            for _ in range(3):
                assert admin.post("/sites/CC-C/reports", json=_report(),
                                  headers=manager).status_code == 201
            assert len(admin.get("/sites/CC-C/reports", headers=manager).json()) == 3
            assert _sites(admin)["CC-C"]["people_present"] == 68
        app.state.engine.dispose()
