"""Committees get their own figures by municipality id, and CAP messages use official names."""

import json
from datetime import UTC, datetime, timedelta

import geopandas as gpd
import pandas as pd
from fastapi.testclient import TestClient
from lxml import etree
from shapely.geometry import Point

from api.app import create_app
from api.publish import publish_run_alerts
from api.settings import Settings
from api.store.access import create_api_key
from api.store.models import Run
from floodwarn.alerts.cap import CAP_NS
from floodwarn.io.forecast_outputs import (
    CENTRES_FILE,
    EVACUATION_FILE,
    RUN_FILE,
    SETTLEMENTS_FILE,
    SUMMARY_FILE,
)
from floodwarn.parameters import LevelRules, load_parameters
from floodwarn.risk.assessment import plan_evacuation
from tests.risk.test_assessment_summaries import CUSCATLAN, LA_PAZ, MORAZAN, _towns_and_centres

NOW = datetime(2020, 6, 1, 6, tzinfo=UTC)
APOPA = "SLV-ADM2-79315794B8480972"
AHUACHAPAN = "SLV-ADM2-79315794B46444198"  # "Ahuachpan" in the boundary file
CHALATENANGO = "SLV-ADM2-79315794B59802183"  # "Chalatenago"
NS = {"cap": CAP_NS}


def _app_with_run(tmp_path, run_dir):
    app = create_app(Settings(data_dir=tmp_path / "data", run_worker=False))
    with app.state.sessions.begin() as session:
        session.add_all([Run(id=i, status="succeeded", rain_path="storm.nc",
                             out_dir=str(run_dir), created_at=NOW) for i in (1, 2)])
    return app


def _client(app, role, municipality_id=None):
    with app.state.sessions.begin() as session:
        _, key = create_api_key(session, role=role, name=role, now=NOW,
                                municipality_id=municipality_id)
    return TestClient(app, headers={"X-API-Key": key})


def test_a_committee_sees_its_own_figures_never_a_namesakes(tmp_path):
    towns, centres = _towns_and_centres()  # three El Rosario: Cuscatlán, La Paz, Morazán
    summary = plan_evacuation(towns, centres, load_parameters(LevelRules),
                              crs="EPSG:32616").summary
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary))
    app = _app_with_run(tmp_path, run_dir)

    analyst = _client(app, "analyst").get("/runs/1/summary").json()
    assert set(analyst["by_municipality"]) == {CUSCATLAN, LA_PAZ, MORAZAN}
    morazan = _client(app, "committee", MORAZAN).get("/runs/1/summary").json()
    assert morazan == {"by_municipality": {MORAZAN: summary["by_municipality"][MORAZAN]}}
    own = morazan["by_municipality"][MORAZAN]
    assert own["department"] == "Morazán" and own["highest_level"] == "amarilla"
    assert own["people_exposed_by_level"]["roja"] == 0  # Cuscatlán's 400 are not here
    # A committee with no settlements in the run sees nothing, not a namesake's figures.
    assert _client(app, "committee", APOPA).get("/runs/1/summary").json() == {
        "by_municipality": {}}
    # A summary keyed by name (written before ids) shows a committee nothing at all (run 2:
    # run 1's outputs are cached, as finished runs never change).
    (run_dir / SUMMARY_FILE).write_text(json.dumps(
        {"by_municipality": {"El Rosario": summary["by_municipality"][CUSCATLAN]}}))
    assert _client(app, "committee", MORAZAN).get("/runs/2/summary").json() == {
        "by_municipality": {}}


def _risk_run(run_dir, level):
    """A run's risk outputs written by hand: one town in Ahuachapán, one in Chalatenango."""
    run_dir.mkdir(exist_ok=True)
    (run_dir / RUN_FILE).write_text(json.dumps({
        "rain": {"start": "2020-06-01T00:00:00", "end": "2020-06-02T00:00:00"},
        "synthetic": False}))
    gpd.GeoDataFrame({
        "id": [1, 2], "name": ["Barrio El Calvario", "Barrio San Antonio"],
        "municipality_id": [AHUACHAPAN, CHALATENANGO], "level": [level, level],
        "max_depth_m": [1.2, 0.9], "people_exposed": [300, 80],
        "hours_to_flooding": [4.0, 9.0], "risk_score": [500.0, 90.0],
        "unmet_evacuees": [0, 0]},
        geometry=[Point(-89.845, 13.921), Point(-88.935, 14.043)], crs="EPSG:4326",
    ).to_file(run_dir / SETTLEMENTS_FILE, driver="GPKG")
    gpd.GeoDataFrame({"id": [10], "name": ["Centro Escolar"]}, geometry=[Point(-89.84, 13.92)],
                     crs="EPSG:4326").to_file(run_dir / CENTRES_FILE, driver="GPKG")
    pd.DataFrame(columns=["settlement_id", "centre_id", "people", "distance_km"]).to_csv(
        run_dir / EVACUATION_FILE, index=False)


def _texts(version):
    es = etree.fromstring(version.cap_xml.encode()).find("cap:info", NS)
    return (es.findtext("cap:headline", namespaces=NS),
            es.findtext("cap:area/cap:areaDesc", namespaces=NS))


def test_published_cap_messages_use_official_names(tmp_path):
    run_dir = tmp_path / "run"
    _risk_run(run_dir, "roja")
    app = _app_with_run(tmp_path, run_dir)
    with app.state.sessions.begin() as session:
        alerts = publish_run_alerts(session, run_id=1, out_dir=run_dir, sender="fw@test",
                                    now=NOW)
    assert [_texts(v) for v in alerts] == [
        ("Alerta ROJA por inundación en Ahuachapán, Ahuachapán", "Ahuachapán, Ahuachapán"),
        ("Alerta ROJA por inundación en Chalatenango, Chalatenango",
         "Chalatenango, Chalatenango")]
    _risk_run(run_dir, "verde")
    with app.state.sessions.begin() as session:
        cancels = publish_run_alerts(session, run_id=2, out_dir=run_dir, sender="fw@test",
                                     now=NOW + timedelta(hours=6))
    assert [v.msg_type for v in cancels] == ["Cancel", "Cancel"]
    assert [_texts(v) for v in cancels] == [
        ("Fin de la alerta por inundación en Ahuachapán", "Ahuachapán, Ahuachapán"),
        ("Fin de la alerta por inundación en Chalatenango", "Chalatenango, Chalatenango")]
    for version in alerts + cancels:
        assert "Ahuachpan" not in version.cap_xml and "Chalatenago" not in version.cap_xml
