"""Site profiles: official lists import with their values, bad lists name every bad row, the
shipped sites are the estimated default, and live occupancy gives the remaining capacity."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from floodwarn.errors import InputError
from floodwarn.io import gis_data
from floodwarn.sites.profiles import (
    BOOLEAN_COLUMNS,
    PROFILE_COLUMNS,
    RowProblem,
    SiteProfileError,
    centres_from_profiles,
    default_site_profiles,
    read_site_profiles,
    write_site_profiles,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "sites"
GOOD_CSV = DATA / "albergues.csv"
BAD_CSV = DATA / "albergues_con_errores.csv"
#: geoBoundaries ids of municipalities used below (gis_data/admin/El_Salvador_municipios.json).
SAN_SALVADOR = "SLV-ADM2-79315794B80658633"
MEJICANOS = "SLV-ADM2-79315794B45961285"
SAN_MIGUEL = "SLV-ADM2-79315794B86636587"
EL_ROSARIO_LA_PAZ = "SLV-ADM2-79315794B31458507"


@pytest.fixture(scope="module")
def good() -> pd.DataFrame:
    return read_site_profiles(GOOD_CSV).set_index("site_id", drop=False)


def test_spanish_list_with_accents_imports_with_hand_checked_values(good):
    assert list(good.columns) == [*PROFILE_COLUMNS, "geometry"]
    assert list(good["site_id"]) == ["ALB-001", "ALB-002", "ALB-003", "ALB-004", "ALB-005"]
    assert good.crs.to_epsg() == 4326
    school = good.loc["ALB-001"]
    assert school["name"] == "Centro Escolar República de Chile"
    assert school["kind"] == "school"  # "Centro escolar"
    assert school["capacity_people"] == 120
    assert (school["toilets_female"], school["toilets_male"]) == (4, 3)
    # "Sí" / "no" / "sí" → True / False / True
    assert school[["water", "accessible_toilet", "kitchen", "private_space", "usable"]
                  ].tolist() == [True, False, True, False, True]
    assert school["condition"] == "good"
    assert school["notes"] == "Aulas del primer piso"
    assert (school["municipality_id"], school["municipality"], school["department_code"]) == (
        SAN_SALVADOR, "San Salvador", "SV-SS")


def test_blank_cells_stay_unknown_never_guessed(good):
    hall = good.loc["ALB-002"]
    assert pd.isna(hall["capacity_people"]) and hall["covered_area_m2"] == 700
    assert not hall["lighting"] and pd.isna(hall["kitchen"]) and pd.isna(hall["showers_male"])
    church = good.loc["ALB-003"]
    services = [c for c in BOOLEAN_COLUMNS if c != "usable"]
    assert church[services].isna().all() and pd.isna(church["condition"])
    assert not church["usable"] and church["notes"] == "Techo dañado"
    assert pd.isna(good.loc["ALB-005", "water"])  # "s/d" (sin dato) is unknown
    assert good.loc["ALB-002", "notes"] == ""
    assert good["capacity_people"].dtype == "Int64" and good["water"].dtype == "boolean"
    assert good["covered_area_m2"].dtype == "Float64"
    assert (good["capacity_source"] == "census").all()


def test_municipality_by_id_code_or_name_and_department_from_the_point(good):
    gym = good.loc["ALB-004"]
    # municipio given as the geoBoundaries id, departamento as ISO code; area "1200,5".
    assert (gym["municipality"], gym["department"]) == ("San Miguel", "San Miguel")
    assert gym["covered_area_m2"] == 1200.5 and gym["condition"] == "poor"
    # "zacatecoluca" (lower case) is written back with the official spelling.
    assert good.loc["ALB-003", "municipality"] == "Zacatecoluca"
    # El Rosario exists in three departments; the one holding the point is La Paz's.
    assert good.loc["ALB-005", "municipality_id"] == EL_ROSARIO_LA_PAZ
    assert good.loc["ALB-005", "department"] == "La Paz"
    # Mejicanos with the department left blank: derived from the point.
    assert good.loc["ALB-002", "department"] == "San Salvador"


def test_latin1_comma_separated_english_headers():
    text = ("site_id,name,lon,lat,capacity_people,lighting,usable,Observaciones\n"
            "7,Iglesia San José,-89.2389,13.7444,35,No,YES,Ñandú\n")
    profiles = read_site_profiles(text.encode("latin-1"), filename="sites.csv")
    row = profiles.iloc[0]
    assert row["site_id"] == "7" and row["name"] == "Iglesia San José"
    assert row["municipality_id"] == MEJICANOS and row["notes"] == "Ñandú"
    assert row[["lighting", "usable"]].tolist() == [False, True] and row["capacity_people"] == 35


def _xlsx(rows: list[list[object]], *, sheet: str = "Albergues") -> bytes:
    book = openpyxl.Workbook()
    book.active.title = "Instrucciones"
    book.active.append(["Llene la hoja Albergues"])
    albergues = book.create_sheet(sheet)
    for row in rows:
        albergues.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_list_reads_the_albergues_sheet_with_typed_cells():
    content = _xlsx([
        ["Código", "Nombre", "Longitud", "Latitud", "Capacidad", "Área cubierta m2",
         "Habilitado", "Iluminación", "Inodoros mujeres", "Inodoros hombres"],
        [101, "Escuela Uno", -89.2109, 13.6963, 120, None, True, "Sí", 4, 0],
        ["B-2", "Salón Dos", -88.1916, 13.4666, None, 700, "no", None, None, None],
    ])
    profiles = read_site_profiles(content, filename="albergues.xlsx").set_index("site_id")
    # The number 101 is the id "101", not "101.0"; bool cell TRUE → True.
    assert list(profiles.index) == ["101", "B-2"]
    assert profiles.loc["101", "capacity_people"] == 120 and profiles.loc["101", "usable"]
    assert profiles.loc["101", "lighting"] and profiles.loc["101", "toilets_male"] == 0
    assert pd.isna(profiles.loc["B-2", "capacity_people"])
    assert profiles.loc["B-2", "covered_area_m2"] == 700
    assert profiles.loc["B-2", "municipality_id"] == SAN_MIGUEL
    assert not profiles.loc["B-2", "usable"] and pd.isna(profiles.loc["B-2", "lighting"])


def test_bad_list_names_every_bad_row_and_column_and_imports_nothing():
    with pytest.raises(SiteProfileError) as raised:
        read_site_profiles(BAD_CSV)
    found = {(p.row, p.column) for p in raised.value.problems}
    # Worked out from tests/data/sites/albergues_con_errores.csv, one line per mistake:
    assert found == {
        (2, "codigo"), (10, "codigo"),  # ALB-001 twice
        (3, "capacidad"),  # "abc"
        (4, "inodoros_mujeres"),  # "12.5" toilets
        (5, "agua"),  # "quizás"
        (6, "estado"),  # "excelente"
        (7, "latitud"),  # blank
        (8, "longitud"),  # lon/lat swapped
        (9, "municipio"),  # Santa Ana, but the point is in San Salvador
        (11, "longitud"),  # in the Pacific, 30 km off the coast
        (12, "capacidad"),  # -5
        (12, "habilitado"),  # blank
    }
    by_row = {p.row: p for p in raised.value.problems}
    assert "San Salvador" in by_row[9].message and by_row[9].site_id == "ALB-008"
    assert "swapped" in by_row[8].message
    assert "rows 2, 10" in by_row[2].message
    message = str(raised.value)
    assert "12 problem(s)" in message and "nothing was imported" in message
    assert "row 12 (site 'ALB-011'), column 'habilitado'" in message


def test_a_number_with_thousands_groups_is_refused_as_ambiguous_never_guessed():
    # "2.400" m² is 2,400 m² to a Salvadoran clerk and 2.4 m² to a parser: ask, do not guess.
    text = ("codigo;nombre;longitud;latitud;habilitado;area_cubierta_m2;capacidad\n"
            "A;Gimnasio;-89.2109;13.6963;sí;2.400;600\n"
            "B;Escuela;-89.2109;13.6963;sí;350,5;1,200\n")
    with pytest.raises(SiteProfileError) as raised:
        read_site_profiles(text.encode(), filename="a.csv")
    problems = {(p.row, p.column) for p in raised.value.problems}
    assert problems == {(2, "area_cubierta_m2"), (3, "capacidad")}  # 350,5 is a fraction
    assert all("ambiguous" in p.message for p in raised.value.problems)


def test_missing_required_column_is_one_problem_naming_accepted_headers():
    text = "codigo;nombre;longitud;latitud\nA;Escuela;-89.2109;13.6963\n"
    with pytest.raises(SiteProfileError) as raised:
        read_site_profiles(text.encode(), filename="a.csv")
    assert raised.value.problems == [RowProblem(1, None, "usable", (
        "required column usable is missing; head it with one of: usable, habilitado, "
        "puede_usarse."))]


def test_department_that_contradicts_the_point_is_named():
    text = ("codigo,nombre,longitud,latitud,municipio,departamento,habilitado\n"
            "A,Escuela,-89.2109,13.6963,0614,Santa Ana,si\n")
    with pytest.raises(SiteProfileError) as raised:
        read_site_profiles(text.encode(), filename="a.csv")
    # DIGESTYC 0614 is San Salvador (accepted); the department is not Santa Ana.
    [problem] = raised.value.problems
    assert (problem.row, problem.column) == (2, "departamento")


@pytest.mark.parametrize(("content", "match"), [
    (b"", "empty"),
    (b"\n;;\n", "empty"),
    (b"codigo;nombre;longitud;latitud;habilitado\n", "no sites"),
])
def test_empty_file_or_header_only_is_refused(content, match):
    with pytest.raises(InputError, match=match):
        read_site_profiles(content, filename="a.csv")


def test_truncated_xlsx_is_a_clear_input_error():
    content = _xlsx([["codigo", "nombre", "lon", "lat", "habilitado"],
                     ["A", "Escuela", -89.2109, 13.6963, "si"]])
    with pytest.raises(InputError, match=r"cannot be read as an XLSX workbook.*truncated"):
        read_site_profiles(content[: len(content) // 2], filename="albergues.xlsx")


def test_remaining_capacity_is_profiled_minus_present(good):
    present = pd.Series({"ALB-001": 45, "ALB-004": 350})
    status = pd.Series({"ALB-005": "closed", "ALB-002": "full"})
    centres = centres_from_profiles(good, people_present=present, site_status=status,
                                    area_per_person_m2=3.5).set_index("id")
    # 120 − 45 = 75; 700 m² / 3.5 m² = 200 places by area; 300 − 350 → 0, never negative.
    assert centres.loc["ALB-001", "capacity"] == 75
    assert centres.loc["ALB-001", "capacity_profiled"] == 120
    assert centres.loc["ALB-002", "capacity_profiled"] == 200
    assert centres.loc["ALB-002", "capacity_basis"] == "area"
    assert centres.loc["ALB-004", "capacity"] == 0
    # ALB-003: no capacity and no area: 0 places, basis unknown.
    assert centres.loc["ALB-003", ["capacity", "capacity_basis"]].tolist() == [0, "unknown"]
    # Closed (ALB-005), full (ALB-002) and unusable (ALB-003) sites are never shelters.
    assert centres["shelter"].to_dict() == {"ALB-001": True, "ALB-002": False,
                                            "ALB-003": False, "ALB-004": True,
                                            "ALB-005": False}
    assert centres.loc["ALB-001", "people_present"] == 45
    assert pd.isna(centres.loc["ALB-003", "people_present"])
    assert centres["shelter"].dtype == bool and centres["capacity"].dtype == "int64"


def test_unknown_usable_is_never_a_shelter(good):
    profiles = good.copy()
    profiles["usable"] = pd.array([pd.NA, True, pd.NA, True, True], dtype="boolean")
    centres = centres_from_profiles(profiles, area_per_person_m2=3.5)
    assert centres["shelter"].tolist() == [False, True, False, True, True]


def test_default_profiles_are_the_shipped_sites_marked_as_estimates():
    centres = gis_data.load_collective_centres()
    profiles = default_site_profiles()
    assert len(profiles) == len(centres) == 429
    assert (profiles["capacity_source"] == "estimate").all()
    assert profiles["site_id"].tolist() == centres["id"].astype(str).tolist()
    shelter = centres["shelter"].to_numpy()
    assert profiles["capacity_people"][shelter].tolist() == centres["capacity"][shelter].tolist()
    # Hospitals and health units keep treating patients: never destinations, no capacity
    # stated (unknown, not "0 places").
    assert profiles["capacity_people"][~shelter].isna().all()
    assert set(centres.loc[~shelter, "kind"]) == {"hospital", "health_unit"}
    services = ["covered_area_m2", "toilets_female", "showers_male", "condition",
                *[c for c in BOOLEAN_COLUMNS if c != "usable"]]
    assert profiles[services].isna().all().all()
    assert profiles["usable"].tolist() == centres["shelter"].tolist()
    assert profiles["notes"].str.contains("capacidad estimada").all()


def test_forecast_chain_reads_a_profile_list_with_string_ids():
    centres = gis_data.load_collective_centres(GOOD_CSV).set_index("id")
    assert list(centres.index) == ["ALB-001", "ALB-002", "ALB-003", "ALB-004", "ALB-005"]
    assert centres.loc["ALB-002", "capacity"] == 200  # by area, nobody present
    assert centres.loc["ALB-001", "municipality_id"] == SAN_SALVADOR
    # The shipped layer keeps its integer ids.
    assert gis_data.load_collective_centres()["id"].dtype == "int64"


@pytest.mark.parametrize("name", ["sites.geojson", "sites.gpkg"])
def test_live_sites_file_round_trips_into_the_forecast_chain(good, tmp_path, name):
    live = good.reset_index(drop=True)
    live["people_present"] = pd.array([45, None, None, 10, None], dtype="Int64")
    live["site_status"] = ["open", None, None, "full", None]
    path = write_site_profiles(live, tmp_path / name)
    again = read_site_profiles(path)
    pd.testing.assert_frame_equal(pd.DataFrame(again.drop(columns="geometry")),
                                  pd.DataFrame(good.reset_index(drop=True)
                                               .drop(columns="geometry")))
    centres = gis_data.load_collective_centres(path).set_index("id")
    # 120 − 45 = 75 places left; 300 − 10 = 290 but the site is full: not a shelter.
    assert centres.loc["ALB-001", "capacity"] == 75
    assert centres.loc["ALB-004", "capacity"] == 290
    assert not centres.loc["ALB-004", "shelter"]


def test_default_profiles_round_trip_through_a_live_sites_file(tmp_path):
    defaults = default_site_profiles()
    path = write_site_profiles(defaults, tmp_path / "live_sites.geojson")
    again = read_site_profiles(path)
    # Still marked as estimates (not "census") and nothing surveyed appears from nowhere.
    pd.testing.assert_frame_equal(pd.DataFrame(again.drop(columns="geometry")),
                                  pd.DataFrame(defaults.drop(columns="geometry")))
    shipped = gis_data.load_collective_centres()
    centres = gis_data.load_collective_centres(path)
    assert centres["id"].tolist() == shipped["id"].astype(str).tolist()
    assert centres["capacity"].tolist() == shipped["capacity"].tolist()
    assert centres["shelter"].tolist() == shipped["shelter"].tolist()
