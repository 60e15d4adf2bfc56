"""The shipped layers load and validate; bad layers get errors naming file, feature and fix."""

from __future__ import annotations

import json

import pytest

from floodwarn.errors import CRSError, InputError
from floodwarn.io import gis_data
from floodwarn.parameters import PARAMETER_FILES, CollectiveCentreRules, load_parameters
from floodwarn.paths import models_dir


def test_municipalities_are_the_262_named_ones_with_departments():
    m = gis_data.load_municipalities()
    assert len(m) == 262
    assert "Null" not in set(m["name"])
    assert m["department"].nunique() == 14
    assert m["id"].is_unique
    # Meanguera del Golfo is an island outside the generalised department outline.
    assert m.loc[m["name"] == "Meanguera del Golfo", "department"].item() == "La Unión"
    assert m.loc[m["name"] == "San Salvador", "department_code"].item() == "SV-SS"


def test_settlements_have_population_and_municipality():
    s = gis_data.load_settlements()
    assert len(s) == 102
    assert s["population"].sum() == 2_964_182
    ss = s.set_index("name").loc["San Salvador"]
    assert ss["population"] == 525_990 and ss["department"] == "San Salvador"
    assert s["municipality_id"].notna().all()


def test_collective_centres_get_kind_and_capacity_by_the_documented_rule():
    rules = load_parameters(CollectiveCentreRules)
    c = gis_data.load_collective_centres()
    assert set(c["kind"]) <= set(rules.kinds) - {"excluded"}
    assert not c["name"].str.contains("Movil").any()  # mobile teams are not buildings
    school = c[c["kind"] == "school"].iloc[0]
    assert school["capacity"] == 700 // 3.5 == 200
    assert (c.loc[c["kind"] == "hospital", "capacity"] == 0).all()
    assert not c.loc[c["kind"] == "hospital", "shelter"].any()
    assert c["id"].is_unique


def test_classification_is_accent_and_case_insensitive():
    rules = load_parameters(CollectiveCentreRules)
    assert gis_data.classify_site("IGLESIA SAN JOSÉ", "other", rules) == "church"
    assert gis_data.classify_site("Salón Comunal El Tránsito", "other", rules) == "hall"
    assert gis_data.classify_site("Metro Movil 3", "other", rules) == "excluded"
    assert gis_data.classify_site("Farmacia", "other", rules) == "other"


def _write(path, features, crs="urn:ogc:def:crs:OGC:1.3:CRS84"):
    doc = {"type": "FeatureCollection", "features": features}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc))
    return path


def _town(name="Town", lon=-89.2, lat=13.7, population=1000, geonameid=1):
    return {
        "type": "Feature",
        "properties": {"geonameid": geonameid, "name": name, "population": population},
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


def test_settlement_missing_field(tmp_path):
    f = _town()
    del f["properties"]["population"]
    with pytest.raises(InputError, match=r"required field\(s\) \['population'\] missing"):
        gis_data.load_settlements(_write(tmp_path / "s.geojson", [f]))


def test_settlement_out_of_domain_names_the_feature(tmp_path):
    path = _write(
        tmp_path / "s.geojson", [_town(), _town("Swapped", lon=13.7, lat=-89.2, geonameid=2)]
    )
    with pytest.raises(InputError, match=r"feature 1 \('Swapped'\).*outside the domain.*swapped"):
        gis_data.load_settlements(path)


def test_settlement_zero_population(tmp_path):
    path = _write(tmp_path / "s.geojson", [_town(population=0)])
    with pytest.raises(InputError, match="population must be a positive number"):
        gis_data.load_settlements(path)


def test_settlement_empty_geometry(tmp_path):
    f = _town()
    f["geometry"] = None
    with pytest.raises(InputError, match="empty geometry"):
        gis_data.load_settlements(_write(tmp_path / "s.geojson", [f]))


def test_settlement_wrong_crs(tmp_path):
    path = _write(
        tmp_path / "s.geojson",
        [_town(lon=280_000, lat=1_520_000)],
        crs="urn:ogc:def:crs:EPSG::32616",
    )
    with pytest.raises(CRSError, match="expected EPSG:4326"):
        gis_data.load_settlements(path)


def test_invalid_polygon_is_reported(tmp_path):
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[-89.3, 13.6], [-89.1, 13.8], [-89.1, 13.6], [-89.3, 13.8], [-89.3, 13.6]]
        ],
    }
    f = {
        "type": "Feature",
        "properties": {"shapeName": "Torcido", "shapeID": "X-1"},
        "geometry": bowtie,
    }
    with pytest.raises(InputError, match=r"'Torcido'.*invalid geometry.*Self-intersection"):
        gis_data.load_municipalities(_write(tmp_path / "m.geojson", [f]))


def test_unreadable_layer(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [')
    from floodwarn.errors import DataFileError

    with pytest.raises(DataFileError, match="cannot be read as a vector layer"):
        gis_data.load_settlements(bad)


def test_every_shipped_parameter_file_validates():
    shipped = {p.name for p in models_dir().glob("*.yaml")}
    assert shipped == set(PARAMETER_FILES)
    for name, model in PARAMETER_FILES.items():
        params = load_parameters(model, models_dir() / name)
        assert params.version and params.source


def test_bad_parameter_file_names_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        (models_dir() / "collective_centres.yaml")
        .read_text()
        .replace("area_per_person_m2: 3.5", "area_per_person_m2: -1")
    )
    with pytest.raises(InputError, match="area_per_person_m2: Input should be greater than 0"):
        load_parameters(CollectiveCentreRules, path)
    path.write_text("version: '1'\nsource: 'somewhere long enough'\nextra_key: 1\n")
    with pytest.raises(InputError, match="extra_key: Extra inputs are not permitted"):
        load_parameters(CollectiveCentreRules, path)


def test_settlement_far_out_at_sea_is_refused_but_coastal_ones_snap(tmp_path):
    coastal = _town("La Libertad", lon=-89.3222, lat=13.4883)  # on the generalised shoreline
    at_sea = _town("Mar adentro", lon=-89.3, lat=13.1, geonameid=2)  # ~30 km offshore
    s = gis_data.load_settlements(_write(tmp_path / "ok.geojson", [coastal]))
    assert s["department"].item() == "La Libertad"
    with pytest.raises(InputError, match=r"'Mar adentro' lies more than 10 km from every"):
        gis_data.load_settlements(_write(tmp_path / "sea.geojson", [coastal, at_sea]))


def test_settlements_may_be_polygons(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    path = tmp_path / "barrios.geojson"
    gpd.GeoDataFrame({"geonameid": [1], "name": ["Barrio"], "population": [2500]},
                     geometry=[box(-89.20, 13.68, -89.18, 13.70)], crs="EPSG:4326").to_file(
        path, driver="GeoJSON")
    towns = gis_data.load_settlements(path)
    assert towns.geometry.iloc[0].geom_type == "Polygon"
    assert towns["municipality"].iloc[0] == "San Salvador"
