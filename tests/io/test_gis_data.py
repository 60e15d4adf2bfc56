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
    # Their interior points fall in a neighbour's generalised outline; the table knows better.
    assert m.loc[m["name"] == "Jerusalén", "department"].item() == "La Paz"
    assert m.loc[m["name"] == "Sacacoyo", "department"].item() == "La Libertad"


#: Departments with their official names and DIGESTYC codes (the first two digits of a
#: municipal code).
DEPARTMENTS = {"SV-AH": ("Ahuachapán", "01"), "SV-SA": ("Santa Ana", "02"),
               "SV-SO": ("Sonsonate", "03"), "SV-CH": ("Chalatenango", "04"),
               "SV-LI": ("La Libertad", "05"), "SV-SS": ("San Salvador", "06"),
               "SV-CU": ("Cuscatlán", "07"), "SV-PA": ("La Paz", "08"),
               "SV-CA": ("Cabañas", "09"), "SV-SV": ("San Vicente", "10"),
               "SV-US": ("Usulután", "11"), "SV-SM": ("San Miguel", "12"),
               "SV-MO": ("Morazán", "13"), "SV-UN": ("La Unión", "14")}


def test_every_named_polygon_has_its_official_name_and_code():
    import geopandas as gpd

    polygons = gpd.read_file(gis_data.layer_path("municipalities"))
    named = set(polygons.loc[polygons["shapeName"] != "Null", "shapeID"])
    table = gis_data.load_official_names()
    assert len(named) == 262 and set(table["shapeID"]) == named
    m = gis_data.load_municipalities().set_index("boundary_name")
    # The boundary file's misspellings and missing accents, and the names it shortens.
    for boundary, official in {
            "Ahuachpan": "Ahuachapán", "Chalatenago": "Chalatenango",
            "San Francsico Chinameca": "San Francisco Chinameca", "San Ingnacio": "San Ignacio",
            "San Antonia Los Ranchos": "San Antonio Los Ranchos", "Metapan": "Metapán",
            "Usulutan": "Usulután", "Berlin": "Berlín", "Teujutepeque": "Tejutepeque",
            "Opico": "San Juan Opico", "Delgado": "Ciudad Delgado",
            "San Francisco": "San Francisco Gotera"}.items():
        assert m.loc[boundary, "name"] == official
    m = m.reset_index()
    # 262 polygons, 261 municipalities: Chilanga has a 793 m² fragment; Sonzacate (0316) has
    # no polygon in geoBoundaries.
    assert m["code"].nunique() == 261
    assert m.loc[m["code"].duplicated(keep=False), "name"].unique().tolist() == ["Chilanga"]
    assert "0316" not in set(m["code"])
    for code, (name, digestyc) in DEPARTMENTS.items():
        rows = m[m["department_code"] == code]
        assert set(rows["department"]) == {name}
        assert set(rows["code"].str[:2]) == {digestyc}
    assert m.loc[m["name"] == "San Salvador", "code"].item() == "0614"
    # Namesakes across departments: a name alone never identifies a municipality.
    shared = m.groupby("name")["department_code"].nunique()
    assert shared[shared > 1].to_dict() == {"El Carmen": 2, "El Rosario": 3, "San Fernando": 2,
                                            "San Isidro": 2, "San Lorenzo": 2}


def test_departments_have_official_names():
    d = gis_data.load_departments().set_index("code")
    assert d["name"].to_dict() == {code: name for code, (name, _) in DEPARTMENTS.items()}
    assert d["boundary_name"].notna().all()


def test_official_names_table_problems_are_named(tmp_path):
    table = gis_data.load_official_names()
    bad = tmp_path / "names.csv"
    table.assign(code=table["code"].where(table.index != 3, "614")).to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"row 5 has code '614'.*4 digits"):
        gis_data.load_official_names(bad)
    table.drop(columns="department").to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"column\(s\) \['department'\] missing"):
        gis_data.load_official_names(bad)
    # A polygon absent from the table (a boundary file with other ids) is named after the
    # official municipality of its name in the department that holds it...
    table.assign(shapeID=table["shapeID"].where(table["boundary_name"] != "Apopa", "OTHER-1")
                 ).to_csv(bad, index=False)
    m = gis_data.load_municipalities(official_names=bad)
    assert m.loc[m["boundary_name"] == "Apopa", ["name", "code"]].values.tolist() == [
        ["Apopa", "0602"]]
    # ... and one without any is refused, naming it.
    table[table["boundary_name"] != "Ahuachpan"].to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"'Ahuachpan' \(in SV-AH\) is not in the official"):
        gis_data.load_municipalities(official_names=bad)


def _municipality(name, department_code):
    m = gis_data.load_municipalities()
    return m.loc[(m["name"] == name) & (m["department_code"] == department_code), "id"].item()


def test_geonames_admin1_codes_are_the_departments_of_the_towns_polygons():
    import geopandas as gpd

    towns = gis_data._apply_corrections(gpd.read_file(gis_data.layer_path("settlements")),
                                        gis_data.layer_path("settlements"))
    joined = gpd.sjoin(towns, gis_data.load_municipalities(), predicate="within")
    assert len(joined) == 102  # every town inside one polygon
    assert (joined["admin1code"].map(gis_data.GEONAMES_ADMIN1_SV)
            == joined["department_code"]).all()
    assert set(joined["admin1code"]) == set(gis_data.GEONAMES_ADMIN1_SV)


#: The towns GeoNames ties to the wrong municipality through generalised boundaries (or a
#: misplaced point): (polygon holding GeoNames's point, the municipality it belongs to).
MISMATCHES = {
    "Sonsonate": ("Nahulingo", "Sonsonate", "SV-SO"),
    "San Martín": ("El Rosario", "San Martín", "SV-SS"),  # point moved (corrections table)
    "Tecoluca": ("San Pedro Perulapán", "Tecoluca", "SV-SV"),  # point moved
    "Mejicanos": ("San Salvador", "Mejicanos", "SV-SS"),
    "Cuscatancingo": ("Ciudad Delgado", "Cuscatancingo", "SV-SS"),
    "Ayutuxtepeque": ("Mejicanos", "Ayutuxtepeque", "SV-SS"),
    "Santo Tomás": ("Santiago Texacuangos", "Santo Tomás", "SV-SS"),
    "El Paisnal": ("Aguilares", "El Paisnal", "SV-SS"),
    "Zaragoza": ("San José Villanueva", "Zaragoza", "SV-LI"),
    "Nuevo Cuscatlán": ("Huizúcar", "Nuevo Cuscatlán", "SV-LI"),
    "San Pedro Masahuat": ("El Rosario", "San Pedro Masahuat", "SV-PA"),
    "San Rafael Oriente": ("El Tránsito", "San Rafael Oriente", "SV-SM"),
    "Moncagua": ("Quelepa", "Moncagua", "SV-SM"),
    # No polygon of its own in geoBoundaries: it keeps the one it lies in.
    "Sonzacate": ("Izalco", "Izalco", "SV-SO"),
}


def test_towns_are_tied_to_the_municipality_they_are_the_seat_of():
    import geopandas as gpd

    raw = gpd.read_file(gis_data.layer_path("settlements")).set_index("name")
    m = gis_data.load_municipalities()
    towns = gis_data.load_settlements().set_index("name")
    for town, (wrong, right, department) in MISMATCHES.items():
        holder = m[m.contains(raw.geometry[town])]
        assert holder["name"].tolist() == [wrong], town  # what the review found
        assert towns.loc[town, "municipality_id"] == _municipality(right, department), town
        assert towns.loc[town, "municipality"] == right
        assert towns.loc[town, "department_code"] == department
    # The review's three, by id.
    assert towns.loc["Sonsonate", "municipality_id"] == "SLV-ADM2-79315794B8412420"
    assert towns.loc["San Martín", "municipality_id"] == "SLV-ADM2-79315794B75721452"
    assert towns.loc["Tecoluca", "municipality_id"] == "SLV-ADM2-79315794B64013342"
    # Every other town keeps the polygon that holds it (or its namesake at distance 0).
    others = towns.drop(index=list(MISMATCHES))
    held = gpd.sjoin(raw.drop(index=list(MISMATCHES)), m, predicate="within")
    assert others["municipality_id"].to_dict() == held["id"].to_dict()


def test_no_town_named_after_a_municipality_of_its_department_is_tied_elsewhere():
    import geopandas as gpd

    raw = gpd.read_file(gis_data.layer_path("settlements")).set_index("geonameid")
    m = gis_data.load_municipalities()
    keys = m.assign(key=m["name"].map(gis_data.place_key))
    towns = gis_data.load_settlements().set_index("id")
    checked = 0
    for gid, town in towns.iterrows():
        # San Martín and Tecoluca: 04 in GeoNames, 10 and 12 in the corrections table.
        admin1 = {3583471: "10", 3583009: "12"}.get(gid, raw.loc[gid, "admin1code"])
        namesakes = keys[(keys["key"] == gis_data.place_key(town["name"]))
                         & (keys["department_code"] == gis_data.GEONAMES_ADMIN1_SV[admin1])]
        if len(namesakes):
            assert town["municipality_id"] in set(namesakes["id"]), town["name"]
            checked += 1
    # All but San Francisco (its municipality is San Francisco Gotera) and Sonzacate (none).
    assert checked == 100


def test_namesake_rule_for_a_file_without_admin1code(tmp_path):
    """Without admin1code the rule matches by name alone, within 2 km; farther, or with no
    namesake, a town keeps the polygon that holds it."""
    import geopandas as gpd
    from shapely.geometry import Point

    m = gis_data.load_municipalities()
    sonsonate, nahulingo = _municipality("Sonsonate", "SV-SO"), _municipality("Nahulingo",
                                                                              "SV-SO")
    far = (-89.725, 13.700)  # in Nahulingo, 2.08 km from the Sonsonate polygon
    polygon = m.set_index("id").to_crs(gis_data.METRIC_CRS).geometry[sonsonate]
    distance = gpd.GeoSeries([Point(far)], crs="EPSG:4326").to_crs(
        gis_data.METRIC_CRS).distance(polygon).item()
    assert 2_000 < distance < 2_200
    path = _write(tmp_path / "s.geojson", [
        _town("SONSONATE", lon=-89.72304, lat=13.71726, geonameid=1),  # 0.83 km off
        _town("Ciudad Sonsonate", lon=far[0], lat=far[1], geonameid=2),
        _town("Caserío El Bajo", lon=-89.72304, lat=13.71726, geonameid=3)])
    towns = gis_data.load_settlements(path).set_index("id")
    assert towns["municipality_id"].to_dict() == {1: sonsonate, 2: nahulingo, 3: nahulingo}
    assert towns.loc[1, "municipality"] == "Sonsonate"


def test_admin1code_keeps_the_namesake_rule_within_the_department(tmp_path):
    """A town called El Rosario of Morazán (08) next to El Rosario of La Paz stays in the
    polygon that holds it; one of La Paz (06) at the same point is El Rosario, La Paz."""
    raw = json.loads(gis_data.layer_path("settlements").read_text())
    san_pedro = next(f for f in raw["features"] if f["properties"]["name"] == "San Pedro Masahuat")
    lon, lat = san_pedro["geometry"]["coordinates"]  # in El Rosario (La Paz), 70 m from SPM
    towns = []
    for gid, (name, admin1) in enumerate((("San Pedro Masahuat", "06"),
                                          ("San Pedro Masahuat", "08"), ("El Rosario", "08"),
                                          ("El Rosario", "06"), ("San Pedro Masahuat", None)),
                                         start=1):
        town = _town(name, lon=lon, lat=lat, geonameid=gid)
        town["properties"]["admin1code"] = admin1
        towns.append(town)
    got = gis_data.load_settlements(_write(tmp_path / "s.geojson", towns)).set_index("id")
    spm, er_paz = _municipality("San Pedro Masahuat", "SV-PA"), _municipality("El Rosario",
                                                                              "SV-PA")
    assert got["municipality_id"].to_dict() == {1: spm, 2: er_paz, 3: er_paz, 4: er_paz,
                                                5: spm}
    bad = _town()
    bad["properties"]["admin1code"] = "99"
    with pytest.raises(InputError, match=r"admin1code '99', not a GeoNames department of El "
                                         r"Salvador \(01–14\)"):
        gis_data.load_settlements(_write(tmp_path / "bad.geojson", [bad]))


def test_known_misplaced_geonames_towns_are_moved_only_where_still_wrong(tmp_path):
    wrong = _town("San Martín", lon=-88.91667, lat=13.78333, geonameid=3583471)
    wrong["properties"]["admin1code"] = "04"
    fixed = _town("San Martín", lon=-89.05, lat=13.74, geonameid=3583471)
    for feature, lonlat in ((wrong, (-89.056389, 13.741667)), (fixed, (-89.05, 13.74))):
        town = gis_data.load_settlements(_write(tmp_path / "s.geojson", [feature])).iloc[0]
        assert (town.geometry.x, town.geometry.y) == lonlat
        assert town["municipality_id"] == "SLV-ADM2-79315794B75721452"


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
