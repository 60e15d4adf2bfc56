"""Community evacuation plans from a scenario folder written by hand: exactly the settlements
at risk in the 10-year flood, their flows and capacity shares worked out here, one CSV and one
page per municipality keyed by id (two El Rosario), and a clear error without the 10-year
scenario.

:func:`write_scenario_folder` is the small scenario folder the planning tests share (report,
API): numbers chosen so that every figure can be checked by hand."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point

from floodwarn.errors import InputError
from floodwarn.planning.evacuation_plans import (
    INDEX_FILE,
    PLAN_COLUMNS,
    evacuation_plan_table,
    write_evacuation_plans,
)
from floodwarn.planning.exposure import (
    annual_probability_weights,
    area_exposure,
    centre_exposure,
    settlement_exposure,
)

METAPAN = "SLV-ADM2-79315794B34056060"  # Santa Ana
ROSARIO_CU = "SLV-ADM2-79315794B10455427"  # El Rosario, Cuscatlán
ROSARIO_PA = "SLV-ADM2-79315794B31458507"  # El Rosario, La Paz
TONACATEPEQUE = "SLV-ADM2-79315794B60430978"  # San Salvador
DAY = date(2026, 11, 30)

# id, name, population, municipality id, municipality, department, code, lon, lat
TOWNS = [
    (101, "San Jerónimo", 1200, METAPAN, "Metapán", "Santa Ana", "SV-SA", -89.45, 14.33),
    (102, "Metapán", 12500, METAPAN, "Metapán", "Santa Ana", "SV-SA", -89.44, 14.33),
    (201, "El Rosario", 800, ROSARIO_CU, "El Rosario", "Cuscatlán", "SV-CU", -89.00, 13.88),
    (202, "El Rosario", 700, ROSARIO_PA, "El Rosario", "La Paz", "SV-PA", -89.03, 13.50),
    (301, "Tonacatepeque", 9000, TONACATEPEQUE, "Tonacatepeque", "San Salvador", "SV-SS",
     -89.12, 13.78),
]
# By return period, per town: people exposed, evacuees, unmet evacuees, level.
STATE = {
    2: {101: (0, 0, 0, "verde"), 102: (0, 0, 0, "verde"), 201: (0, 0, 0, "verde"),
        202: (0, 0, 0, "verde"), 301: (0, 0, 0, "verde")},
    10: {101: (500, 400, 100, "roja"), 102: (60, 0, 0, "amarilla"),
         201: (80, 80, 30, "naranja"), 202: (0, 0, 0, "verde"), 301: (0, 0, 0, "verde")},
    25: {101: (700, 650, 250, "roja"), 102: (200, 200, 0, "naranja"),
         201: (150, 150, 100, "roja"), 202: (0, 0, 0, "verde"), 301: (40, 0, 0, "amarilla")},
    100: {101: (900, 900, 400, "roja"), 102: (300, 300, 0, "naranja"),
          201: (200, 200, 200, "roja"), 202: (100, 0, 0, "amarilla"),
          301: (90, 0, 0, "amarilla")},
}
# id, name, kind, capacity, shelter, municipality id, municipality, department, code
CENTRES = [
    (1, "Centro Escolar Cantón San Jerónimo", "school", 200, True, METAPAN, "Metapán",
     "Santa Ana", "SV-SA"),
    (2, "Casa Comunal Metapán", "hall", 250, True, METAPAN, "Metapán", "Santa Ana", "SV-SA"),
    (3, "Iglesia El Rosario", "church", 100, True, ROSARIO_CU, "El Rosario", "Cuscatlán",
     "SV-CU"),
    (4, "Centro Escolar Metapán", "school", 400, True, METAPAN, "Metapán", "Santa Ana",
     "SV-SA"),
    (5, "Hospital Nacional Metapán", "hospital", 0, False, METAPAN, "Metapán", "Santa Ana",
     "SV-SA"),
]
# By return period: settlement, centre ("" = no place), people, km.
FLOWS = {
    2: [],
    10: [(101, "1", 200, 1.5), (101, "2", 100, 3.2), (101, "", 100, None),
         (201, "3", 50, 0.8), (201, "", 30, None)],
    25: [(101, "1", 200, 1.5), (101, "2", 200, 3.2), (101, "", 250, None),
         (102, "4", 200, 2.0), (201, "3", 50, 0.8), (201, "", 100, None)],
    100: [(101, "1", 200, 1.5), (101, "2", 200, 3.2), (101, "3", 100, 12.0),
          (101, "", 400, None), (102, "4", 300, 2.0), (201, "", 200, None)],
}
# Centre status by return period (the hospital floods from the 2-year flood, the church from
# the 100-year one).
STATUS = {2: {5: "unsafe"}, 10: {5: "unsafe"}, 25: {5: "unsafe", 3: "at_risk"},
          100: {5: "unsafe", 3: "unsafe"}}


def write_scenario_folder(folder: Path, *, periods=(2, 10, 100), synthetic=True,
                          rain_factor=1.0, regional_idf=True) -> Path:
    """A scenario folder as `floodwarn scenarios run` writes it, with the numbers above: the
    return periods' settlements, centres, evacuation flows and small depth rasters, the
    exposure tables (built by floodwarn.planning.exposure from those layers), a ranked reach
    table and scenarios.json."""
    folder.mkdir(parents=True, exist_ok=True)
    periods = tuple(periods)
    towns_by_rp, centres_by_rp = {}, {}
    for years in periods:
        rp = folder / f"rp{years}"
        rp.mkdir(exist_ok=True)
        towns = gpd.GeoDataFrame({
            "id": [t[0] for t in TOWNS], "name": [t[1] for t in TOWNS],
            "population": [t[2] for t in TOWNS], "municipality_id": [t[3] for t in TOWNS],
            "municipality": [t[4] for t in TOWNS], "department": [t[5] for t in TOWNS],
            "department_code": [t[6] for t in TOWNS],
            "people_exposed": [STATE[years][t[0]][0] for t in TOWNS],
            "evacuees": [STATE[years][t[0]][1] for t in TOWNS],
            "unmet_evacuees": [STATE[years][t[0]][2] for t in TOWNS],
            "level": [STATE[years][t[0]][3] for t in TOWNS],
            "max_depth_m": [0.3 * (STATE[years][t[0]][0] > 0) for t in TOWNS],
            "hours_to_flooding": [3.0 if STATE[years][t[0]][0] else np.nan for t in TOWNS]},
            geometry=[Point(t[7], t[8]) for t in TOWNS], crs="EPSG:4326")
        towns.to_file(rp / "settlements.gpkg", driver="GPKG")
        flows = FLOWS[years]
        occupancy = {c[0]: sum(f[2] for f in flows if f[1] == str(c[0])) for c in CENTRES}
        centres = gpd.GeoDataFrame({
            "id": [c[0] for c in CENTRES], "name": [c[1] for c in CENTRES],
            "kind": [c[2] for c in CENTRES], "capacity": [c[3] for c in CENTRES],
            "shelter": [c[4] for c in CENTRES], "municipality_id": [c[5] for c in CENTRES],
            "municipality": [c[6] for c in CENTRES], "department": [c[7] for c in CENTRES],
            "department_code": [c[8] for c in CENTRES],
            "status": [STATUS[years].get(c[0], "safe") for c in CENTRES],
            "occupancy": [occupancy[c[0]] for c in CENTRES]},
            geometry=[Point(-89.44 + 0.01 * c[0], 14.32) for c in CENTRES], crs="EPSG:4326")
        centres.to_file(rp / "centres.gpkg", driver="GPKG")
        pd.DataFrame(flows, columns=["settlement_id", "centre_id", "people", "distance_km"]
                     ).to_csv(rp / "evacuation.csv", index=False)
        _write_depth(rp / "depth.tif", years)
        towns_by_rp[years] = pd.DataFrame(towns.drop(columns="geometry"))
        centres_by_rp[years] = pd.DataFrame(centres.drop(columns="geometry"))
    places = settlement_exposure(towns_by_rp).sort_values(
        ["eae_people_exposed", "id"], ascending=[False, True], ignore_index=True)
    places.to_csv(folder / "exposure_settlements.csv", index=False)
    area_exposure(places, "municipality").to_csv(folder / "exposure_municipalities.csv",
                                                 index=False)
    area_exposure(places, "department").to_csv(folder / "exposure_departments.csv",
                                               index=False)
    centre_exposure(centres_by_rp).to_csv(folder / "centres_by_return_period.csv", index=False)
    reaches = pd.DataFrame({
        "rank": [1, 2], "reach_id": [7001, 7002],
        **{f"people_exposed_rp{t}": [STATE[t][101][0], STATE[t][201][0]] for t in periods},
        "eae_people_exposed": [123.45, 6.7], "exposed_from_rp": [10.0, 10.0],
        "lon": [-89.45123, -89.00456], "lat": [14.33111, 13.88222],
        "upstream_area_km2": [105.7, 12.3], "settlements": ["San Jerónimo", ""]})
    reaches.to_csv(folder / "reaches_ranked.csv", index=False)
    weights = annual_probability_weights(periods)
    record = {
        "synthetic": synthetic, "floodwarn": "0.1.0", "rain_factor": rain_factor,
        "durations_h": [1, 3, 6, 24, 72], "idf_version": "0.1-regional-approximation",
        "idf_is_regional_approximation": regional_idf,
        "return_periods": list(periods),
        "annual_probability_weights": [round(float(w), 6) for w in weights],
        "scenarios": {f"rp{t}": {
            "inundation": {"flooded_land_km2": 10.0 * t},
            "people_exposed": sum(s[0] for s in STATE[t].values()),
            "evacuees": sum(s[1] for s in STATE[t].values()),
            "unmet_evacuees": sum(s[2] for s in STATE[t].values()),
            "settlements_by_level": {"verde": 0, "amarilla": 0, "naranja": 0, "roja": 1},
            "centres_by_status": {"safe": 4, "at_risk": 0, "unsafe": 1}} for t in periods},
        "expected_annual": {"people_exposed": 12345.6, "evacuees": 234.5,
                            "unplaced_evacuees": 98.7},
        "risk": {"levels_version": "2.0"},
    }
    (folder / "scenarios.json").write_text(json.dumps(record, ensure_ascii=False))
    return folder


def _write_depth(path: Path, years: int) -> None:
    """A 40 × 60 depth raster (90 m, UTM 16N) near Metapán: a flooded band, deeper for rarer
    floods, and a NaN channel."""
    depth = np.zeros((40, 60), np.float32)
    depth[15:25, :] = 0.2 * np.log10(years) + np.linspace(0, 2, 60, dtype=np.float32)
    depth[19:21, :] = np.nan
    profile = {"driver": "GTiff", "height": 40, "width": 60, "count": 1, "dtype": "float32",
               "crs": "EPSG:32616", "nodata": np.nan,
               "transform": Affine(90.0, 0, 236_000.0, 0, -90.0, 1_588_000.0)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(depth, 1)


@pytest.fixture
def scenarios(tmp_path):
    return write_scenario_folder(tmp_path / "scenarios")


def _rows(table, settlement_id, years):
    rows = table[(table["settlement_id"] == settlement_id)
                 & (table["return_period_years"] == years)]
    return [(None if pd.isna(r.centre_id) else str(r.centre_id),
             None if pd.isna(r.people_sent) else int(r.people_sent),
             None if pd.isna(r.capacity_share_pct) else float(r.capacity_share_pct),
             None if pd.isna(r.people_without_place) else int(r.people_without_place))
            for r in rows.itertuples()]


def test_plans_take_exactly_the_settlements_at_risk_in_the_10_year_flood(scenarios):
    plans = evacuation_plan_table(scenarios)
    table = plans.table
    assert list(table.columns) == list(PLAN_COLUMNS)
    # 101 and 201 evacuate in rp10, 102 is exposed without evacuating; 202 and 301 are
    # exposed only in rarer floods, so they have no plan.
    assert sorted(table["settlement_id"].unique()) == [101, 102, 201]
    # Folder has 2, 10 and 100: the 25-year flood is asked for but absent.
    assert plans.return_periods == (10, 100) and plans.missing_return_periods == (25,)
    assert set(table["return_period_years"]) == {10, 100}


def test_flows_and_capacity_shares_by_hand(scenarios):
    table = evacuation_plan_table(scenarios).table
    # San Jerónimo, 10-year: 200 of the school's 200 places (100 %), 100 of the hall's 250
    # (40 %), 100 without a place; 400 evacuees in all.
    assert _rows(table, 101, 10) == [("1", 200, 100.0, None), ("2", 100, 40.0, None),
                                     (None, None, None, 100)]
    # 100-year: 200/200, 200/250 = 80 %, 100 of the church's 100 in El Rosario, 400 left.
    assert _rows(table, 101, 100) == [("1", 200, 100.0, None), ("2", 200, 80.0, None),
                                      ("3", 100, 100.0, None), (None, None, None, 400)]
    # Metapán town: no evacuation in the 10-year flood (one row, nobody without a place);
    # in the 100-year one 300 go to the 400-place school: 75 %.
    assert _rows(table, 102, 10) == [(None, None, None, 0)]
    assert _rows(table, 102, 100) == [("4", 300, 75.0, None)]
    # El Rosario (Cuscatlán): 50 of the church's 100 (50 %) and 30 without a place; in the
    # 100-year flood the church is full of San Jerónimo's people: all 200 without a place.
    assert _rows(table, 201, 10) == [("3", 50, 50.0, None), (None, None, None, 30)]
    assert _rows(table, 201, 100) == [(None, None, None, 200)]
    # People sent and without a place add up to the evacuees, for every settlement and flood.
    for (settlement, years), rows in table.groupby(["settlement_id", "return_period_years"]):
        total = (rows["people_sent"].fillna(0).sum()
                 + rows["people_without_place"].fillna(0).sum())
        assert total == rows["evacuees"].iloc[0], (settlement, years)
    church = table[(table["centre_id"] == "3")
                   & (table["return_period_years"] == 100)].iloc[0]
    assert church["centre_municipality"] == "El Rosario" and church["distance_km"] == 12.0
    assert church["centre_municipality_id"] == ROSARIO_CU
    assert church["centre_occupancy"] == 100
    assert church["centre_kind"] == "church" and church["centre_capacity"] == 100
    # Ordered by municipality id, then settlement name (accents aside), flood, people sent.
    assert table["municipality_id"].tolist() == sorted(table["municipality_id"])
    metapan = table[table["municipality_id"] == METAPAN]
    assert metapan["settlement"].drop_duplicates().tolist() == ["Metapán", "San Jerónimo"]
    first = metapan.iloc[0]
    assert first["annual_chance_pct"] == 10.0 and first["level"] == "amarilla"


def test_one_csv_and_one_page_per_municipality_by_id(scenarios, tmp_path):
    out = tmp_path / "plans"
    written = write_evacuation_plans(scenarios, out, today=DAY)
    assert [p.name for p in written] == [f"{ROSARIO_CU}.csv", f"{ROSARIO_CU}.html",
                                         f"{METAPAN}.csv", f"{METAPAN}.html", INDEX_FILE]
    assert not (out / f"{ROSARIO_PA}.csv").exists()  # the namesake in La Paz is not at risk
    assert (out / f"{METAPAN}.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # for Excel
    csv = pd.read_csv(out / f"{METAPAN}.csv", dtype={"centre_id": str})
    assert set(csv["municipality_id"]) == {METAPAN} and set(csv["municipality"]) == {"Metapán"}
    assert csv["people_sent"].sum() == 200 + 100 + 200 + 200 + 100 + 300
    assert csv["people_without_place"].sum() == 100 + 0 + 400
    san_jeronimo = csv[(csv["settlement_id"] == 101) & (csv["return_period_years"] == 10)]
    assert san_jeronimo["capacity_share_pct"].tolist()[:2] == [100.0, 40.0]

    page = (out / f"{METAPAN}.html").read_text(encoding="utf-8")
    assert '<html lang="es">' in page and "@page { size: A4" in page
    assert "Municipio: <strong>Metapán</strong>" in page
    assert "Departamento: <strong>Santa Ana</strong>" in page
    assert "30 de noviembre de 2026" in page
    assert "SINTÉTICO" in page and "SYNTHETIC" in page
    assert "crecida de 10 años = 10\u00a0% de probabilidad cada año" in page
    assert "crecida de 100 años = 1\u00a0% de probabilidad cada año" in page
    assert "Sin escenario en esta carpeta:</strong> crecida de 25 años" in page
    # Spanish number format: 12 500 people (a non-breaking space), shares in percent.
    assert "población 12\u00a0500" in page
    assert ">40\u00a0%<" in page and ">75\u00a0%<" in page
    assert "Iglesia El Rosario" in page and "San Jerónimo" in page
    assert "Tonacatepeque" not in page
    rosario = (out / f"{ROSARIO_CU}.html").read_text(encoding="utf-8")
    assert "Departamento: <strong>Cuscatlán</strong>" in rosario and "La Paz" not in rosario

    index = (out / INDEX_FILE).read_text(encoding="utf-8")
    assert f'href="{METAPAN}.html">Metapán</a>' in index
    assert f'href="{ROSARIO_CU}.html">El Rosario</a>' in index
    assert index.index("Cuscatlán") < index.index("Santa Ana")  # by department


def test_real_scenarios_are_not_labelled_synthetic(tmp_path):
    folder = write_scenario_folder(tmp_path / "real", periods=(10, 25, 100), synthetic=False)
    out = tmp_path / "plans"
    write_evacuation_plans(folder, out, today=DAY)
    page = (out / f"{METAPAN}.html").read_text(encoding="utf-8")
    assert "SINTÉTICO" not in page and "SYNTHETIC" not in page
    assert "Sin escenario en esta carpeta" not in page
    assert "crecida de 25 años = 4\u00a0% de probabilidad cada año" in page
    table = evacuation_plan_table(folder).table
    # 25-year: Metapán town sends 200 to the 400-place school (50 %).
    assert _rows(table, 102, 25) == [("4", 200, 50.0, None)]


def test_without_the_10_year_scenario_the_error_says_what_is_missing(tmp_path):
    folder = write_scenario_folder(tmp_path / "no10", periods=(2, 25, 100))
    with pytest.raises(InputError, match=r"no 10-year scenario \(rp10/\).*has rp2, rp25, "
                                         r"rp100.*--return-periods 2 10 25 100"):
        write_evacuation_plans(folder, tmp_path / "plans")
    with pytest.raises(InputError, match=r"no scenarios\.json"):
        evacuation_plan_table(tmp_path / "nothing")
