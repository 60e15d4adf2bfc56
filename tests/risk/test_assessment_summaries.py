"""Risk summaries are keyed by municipality id and department code, never by a shared name."""

import geopandas as gpd
import pytest
from shapely.geometry import Point

from floodwarn.parameters import LevelRules, load_parameters
from floodwarn.risk.assessment import plan_evacuation

#: The three municipalities called El Rosario (geoBoundaries ids).
CUSCATLAN = "SLV-ADM2-79315794B10455427"
LA_PAZ = "SLV-ADM2-79315794B31458507"
MORAZAN = "SLV-ADM2-79315794B15543979"
WHERE = {CUSCATLAN: ("Cuscatlán", "SV-CU", (-88.95, 13.78)),
         LA_PAZ: ("La Paz", "SV-PA", (-88.98, 13.50)),
         MORAZAN: ("Morazán", "SV-MO", (-88.07, 13.93))}


def _towns_and_centres():
    rows = [  # id, municipality, level, people exposed, evacuees
        (1, CUSCATLAN, "roja", 400, 400),
        (2, LA_PAZ, "naranja", 120, 120),
        (3, MORAZAN, "amarilla", 30, 0),
        (4, MORAZAN, "verde", 0, 0),
    ]
    towns = gpd.GeoDataFrame({
        "id": [r[0] for r in rows], "name": [f"Cantón {r[0]}" for r in rows],
        "level": [r[2] for r in rows], "people_exposed": [r[3] for r in rows],
        "evacuees": [r[4] for r in rows], "municipality_id": [r[1] for r in rows],
        "municipality": "El Rosario",
        "department": [WHERE[r[1]][0] for r in rows],
        "department_code": [WHERE[r[1]][1] for r in rows]},
        geometry=[Point(WHERE[r[1]][2]) for r in rows], crs="EPSG:4326")
    centres = gpd.GeoDataFrame({
        "id": [10, 11], "name": ["Escuela del Rosario", "Casa comunal del Rosario"],
        "status": ["unsafe", "at_risk"], "shelter": [True, True], "capacity": [200, 100],
        "municipality_id": [LA_PAZ, MORAZAN], "department_code": ["SV-PA", "SV-MO"]},
        geometry=[Point(WHERE[LA_PAZ][2]), Point(WHERE[MORAZAN][2])], crs="EPSG:4326")
    return towns, centres


@pytest.fixture(scope="module")
def summary():
    towns, centres = _towns_and_centres()
    return plan_evacuation(towns, centres, load_parameters(LevelRules),
                           crs="EPSG:32616").summary


def test_namesake_municipalities_never_share_figures(summary):
    by_muni = summary["by_municipality"]
    assert set(by_muni) == {CUSCATLAN, LA_PAZ, MORAZAN}  # no "El Rosario" key
    zero = {"verde": 0, "amarilla": 0, "naranja": 0, "roja": 0}
    # No centre is safe, so every evacuee is unmet.
    assert by_muni[CUSCATLAN] == {
        "name": "El Rosario", "department": "Cuscatlán", "department_code": "SV-CU",
        "highest_level": "roja", "people_exposed_by_level": {**zero, "roja": 400},
        "settlements_by_level": {**zero, "roja": 1}, "evacuees": 400, "unmet_evacuees": 400,
        "centres_unsafe": 0, "centres_at_risk": 0}
    assert by_muni[LA_PAZ] == {
        "name": "El Rosario", "department": "La Paz", "department_code": "SV-PA",
        "highest_level": "naranja", "people_exposed_by_level": {**zero, "naranja": 120},
        "settlements_by_level": {**zero, "naranja": 1}, "evacuees": 120,
        "unmet_evacuees": 120, "centres_unsafe": 1, "centres_at_risk": 0}
    assert by_muni[MORAZAN] == {
        "name": "El Rosario", "department": "Morazán", "department_code": "SV-MO",
        "highest_level": "amarilla", "people_exposed_by_level": {**zero, "amarilla": 30},
        "settlements_by_level": {**zero, "verde": 1, "amarilla": 1}, "evacuees": 0,
        "unmet_evacuees": 0, "centres_unsafe": 0, "centres_at_risk": 1}


def test_departments_are_keyed_by_iso_code_with_their_name(summary):
    by_dept = summary["by_department"]
    assert {code: d["name"] for code, d in by_dept.items()} == {
        "SV-CU": "Cuscatlán", "SV-MO": "Morazán", "SV-PA": "La Paz"}
    assert by_dept["SV-MO"]["people_exposed_by_level"]["amarilla"] == 30
    assert by_dept["SV-PA"]["centres_unsafe"] == 1
    assert summary["people_exposed"] == 550 and summary["unmet_evacuees"] == 520
