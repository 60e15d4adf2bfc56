"""Loaders for the shipped El Salvador layers in ``gis_data/``, each validated on load.

Every loader accepts another file of the same shape (``path=``), so users can swap in newer
data; problems are reported with the file, the feature and the field, and how to fix them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyogrio.errors import DataSourceError
from shapely.geometry import Point

from floodwarn.errors import CRSError, DataFileError, InputError
from floodwarn.logs import get_logger
from floodwarn.parameters import CollectiveCentreRules, load_parameters
from floodwarn.paths import gis_data_dir

log = get_logger(__name__)

#: El Salvador with a small margin, lon/lat degrees (west, south, east, north).
EL_SALVADOR_BBOX = (-90.25, 13.05, -87.55, 14.50)
#: The demo domain: El Salvador plus the upstream Lempa, Paz and Goascorán basins.
DEMO_DOMAIN_BBOX = (-90.30, 13.05, -87.35, 14.80)

#: Metric CRS for distances (UTM 16 N) and how far a feature may be snapped to a polygon, m.
METRIC_CRS = "EPSG:32616"
MAX_SNAP_M = 10_000.0

#: How far a town may lie from the polygon of the municipality of its own name and still be
#: its seat, m: GeoNames rounds many towns to the arc-minute (up to 1.3 km off) and the
#: generalised polygons move boundaries by some hundred metres; a municipality is ~8 km across.
NAMESAKE_MAX_M = 2_000.0
#: How close a town must be to the wrong location recorded in the corrections table for the
#: correction to apply, degrees (~1 km): a source that has fixed the point is left alone.
CORRECTION_TOLERANCE_DEG = 0.01

#: GeoNames ``admin1code`` of El Salvador's towns → ISO 3166-2 department code (GeoNames
#: numbers the 14 departments in alphabetical order; checked against the shipped polygons by
#: ``tests/io/test_gis_data.py``).
GEONAMES_ADMIN1_SV = {
    "01": "SV-AH", "02": "SV-CA", "03": "SV-CH", "04": "SV-CU", "05": "SV-LI", "06": "SV-PA",
    "07": "SV-UN", "08": "SV-MO", "09": "SV-SM", "10": "SV-SS", "11": "SV-SA", "12": "SV-SV",
    "13": "SV-SO", "14": "SV-US",
}

LAYERS = {
    "departments": "admin/El_Salvador_departamentos.json",
    "municipalities": "admin/El_Salvador_municipios.json",
    "official_names": "admin/municipios_oficiales.csv",
    "countries": "admin/Central_America.json",
    "settlements": "settlements/geonames_cities500_SV.geojson",
    "settlement_corrections": "settlements/geonames_corrections_SV.csv",
    "settlements_region": "settlements/geonames_cities500_SV_HN_GT_lempa_bbox.geojson",
    "facilities": "facilities/sv_vaccination_sites_2021.geojson",
    "coarse_dem": "dem/pvlib_altitude_5arcmin_CAM_92W86W_12N16N.tif",
    "srtm_tile": "dem/N44W072.hgt",
}


def layer_path(name: str) -> Path:
    """Path of a shipped layer by name (see :data:`LAYERS`)."""
    if name not in LAYERS:
        raise InputError(f"unknown layer {name!r}; shipped layers: {', '.join(sorted(LAYERS))}.")
    path = gis_data_dir() / LAYERS[name]
    if not path.exists():
        raise DataFileError(f"{path}: shipped layer {name!r} is missing from gis_data/.")
    return path


def _read_vector(
    path: Path,
    *,
    required: Iterable[str],
    geometry_types: set[str],
    bbox: tuple[float, float, float, float] | None = None,
    label: str = "name",
) -> gpd.GeoDataFrame:
    """Read a vector layer in lon/lat and check fields, CRS, geometries and extent."""
    try:
        gdf = gpd.read_file(path, engine="pyogrio")
    except (DataSourceError, OSError, ValueError) as exc:
        raise DataFileError(f"{path}: cannot be read as a vector layer ({exc}).") from exc
    missing = [f for f in required if f not in gdf.columns]
    if missing:
        raise InputError(
            f"{path}: required field(s) {missing} missing; the layer has "
            f"{sorted(c for c in gdf.columns if c != 'geometry')}. Rename or add them."
        )
    if gdf.crs is None:
        raise CRSError(f"{path}: the layer has no CRS; it must be EPSG:4326 (lon/lat).")
    if gdf.crs.to_epsg() != 4326:
        raise CRSError(
            f"{path}: the layer is in {gdf.crs.to_string()}, expected EPSG:4326 (lon/lat). "
            "Reproject it, e.g. `ogr2ogr -t_srs EPSG:4326 OUT IN`."
        )

    def where(i: int) -> str:
        name = gdf[label].iloc[i] if label in gdf.columns else ""
        return f"{path}: feature {i} ({name!r})"

    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.any():
        i = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputError(f"{where(i)} has an empty geometry; remove it or give it a location.")
    wrong_type = ~gdf.geom_type.isin(geometry_types)
    if wrong_type.any():
        i = int(np.flatnonzero(wrong_type.to_numpy())[0])
        raise InputError(
            f"{where(i)} is a {gdf.geom_type.iloc[i]}; this layer needs {sorted(geometry_types)}."
        )
    invalid = ~gdf.is_valid
    if invalid.any():
        i = int(np.flatnonzero(invalid.to_numpy())[0])
        from shapely import is_valid_reason

        raise InputError(
            f"{where(i)} has an invalid geometry ({is_valid_reason(gdf.geometry.iloc[i])}); "
            "repair it, e.g. with shapely.make_valid or QGIS 'Fix geometries'."
        )
    if bbox is not None:
        w, s, e, n = bbox
        b = gdf.geometry.bounds
        outside = (b.minx < w) | (b.maxx > e) | (b.miny < s) | (b.maxy > n)
        if outside.any():
            i = int(np.flatnonzero(outside.to_numpy())[0])
            x, y = gdf.geometry.iloc[i].representative_point().coords[0]
            raise InputError(
                f"{where(i)} lies at lon {x:.4f}, lat {y:.4f}, outside the domain "
                f"{w}…{e} E, {s}…{n} N. Check for swapped lon/lat or remove the feature."
            )
    return gdf


#: Columns of the official-names table (``gis_data/admin/municipios_oficiales.csv``).
OFFICIAL_NAME_FIELDS = ("shapeID", "boundary_name", "code", "name", "department_code",
                        "department")


def load_official_names(path: str | Path | None = None) -> pd.DataFrame:
    """The official name of every shipped municipality polygon, keyed by geoBoundaries shapeID.

    Columns: ``shapeID``, ``boundary_name`` (as the boundary file spells it), ``code``
    (DIGESTYC municipal code, 4 digits), ``name`` (official, with accents), ``department_code``
    (ISO 3166-2), ``department`` (official name) and provenance columns (see
    ``gis_data/README.md``).
    """
    path = Path(path) if path else layer_path("official_names")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataFileError(f"{path}: cannot be read as a UTF-8 CSV table ({exc}).") from exc
    missing = [f for f in OFFICIAL_NAME_FIELDS if f not in table.columns]
    if missing:
        raise InputError(f"{path}: column(s) {missing} missing; the table has "
                         f"{list(table.columns)}. It needs {list(OFFICIAL_NAME_FIELDS)}.")
    for field in OFFICIAL_NAME_FIELDS:
        blank = table[field].str.strip() == ""
        if blank.any():
            i = int(np.flatnonzero(blank.to_numpy())[0])
            raise InputError(f"{path}: row {i + 2} ({table['shapeID'].iloc[i]!r}) has no "
                             f"{field}; fill it in.")
    if table["shapeID"].duplicated().any():
        dup = table.loc[table["shapeID"].duplicated(), "shapeID"].iloc[0]
        raise InputError(f"{path}: shapeID {dup!r} has more than one row; keep one.")
    bad_code = ~table["code"].str.fullmatch(r"\d{4}")
    if bad_code.any():
        i = int(np.flatnonzero(bad_code.to_numpy())[0])
        raise InputError(f"{path}: row {i + 2} has code {table['code'].iloc[i]!r}; a DIGESTYC "
                         "municipal code has 4 digits (department 01–14, municipality), e.g. "
                         "0614 for San Salvador.")
    bad_department = ~table["department_code"].isin(GEONAMES_ADMIN1_SV.values())
    if bad_department.any():
        i = int(np.flatnonzero(bad_department.to_numpy())[0])
        raise InputError(f"{path}: row {i + 2} has department_code "
                         f"{table['department_code'].iloc[i]!r}; use an ISO 3166-2 code of El "
                         f"Salvador: {', '.join(sorted(GEONAMES_ADMIN1_SV.values()))}.")
    return table


def load_departments(path: str | Path | None = None, *,
                     official_names: str | Path | None = None) -> gpd.GeoDataFrame:
    """The 14 departments: ``code`` (ISO 3166-2, e.g. SV-SS), ``name`` (official, from
    ``official_names``), ``boundary_name`` (as the boundary file spells it), polygon."""
    path = Path(path) if path else layer_path("departments")
    gdf = _read_vector(
        path,
        required=["shapeName", "shapeID"],
        geometry_types={"Polygon", "MultiPolygon"},
        label="shapeName",
    )
    table = load_official_names(official_names)
    official = dict(zip(table["department_code"], table["department"], strict=True))
    unknown = sorted(set(gdf["shapeID"]) - set(official))
    if unknown:
        raise InputError(f"{path}: department shapeID(s) {unknown} are not ISO 3166-2 codes of "
                         f"El Salvador ({', '.join(sorted(official))}); the departments layer "
                         "must carry them in shapeID.")
    return gpd.GeoDataFrame(
        {"code": gdf["shapeID"], "name": gdf["shapeID"].map(official),
         "boundary_name": gdf["shapeName"]},
        geometry=gdf.geometry, crs=gdf.crs)


def load_municipalities(path: str | Path | None = None, *,
                        official_names: str | Path | None = None) -> gpd.GeoDataFrame:
    """The 262 pre-2024 municipalities (water bodies dropped) with official names.

    Columns: ``id`` (geoBoundaries shapeID — the id stored everywhere), ``name`` (official,
    with accents), ``boundary_name`` (the boundary file's spelling, for tracing), ``code``
    (DIGESTYC), ``department`` (official name), ``department_code`` (ISO 3166-2), polygon.
    Names repeat across departments (El Rosario ×3, El Carmen, San Isidro, San Fernando, San
    Lorenzo ×2), so refer to a municipality by ``id``.

    Names and departments come from ``official_names`` by shapeID. A polygon missing from that
    table (another boundary file) is named after the official municipality of the same
    normalised name in the department that holds it; one that matches none is an error.
    """
    path = Path(path) if path else layer_path("municipalities")
    gdf = _read_vector(
        path,
        required=["shapeName", "shapeID"],
        geometry_types={"Polygon", "MultiPolygon"},
        label="shapeName",
        bbox=EL_SALVADOR_BBOX,
    )
    gdf = gdf[gdf["shapeName"].str.strip().str.lower() != "null"].reset_index(drop=True)
    if gdf["shapeID"].duplicated().any():
        dup = gdf.loc[gdf["shapeID"].duplicated(), "shapeID"].iloc[0]
        raise InputError(f"{path}: shapeID {dup!r} is used by more than one municipality.")
    table = load_official_names(official_names)
    rows = table.set_index("shapeID").reindex(gdf["shapeID"])
    unnamed = rows["name"].isna().to_numpy()
    if unnamed.any():
        rows.iloc[np.flatnonzero(unnamed)] = _name_by_department(
            gdf[unnamed], table, path=path, official_names=official_names).to_numpy()
    return gpd.GeoDataFrame(
        {
            "id": gdf["shapeID"],
            "name": rows["name"].to_numpy(),
            "boundary_name": gdf["shapeName"],
            "code": rows["code"].to_numpy(),
            "department": rows["department"].to_numpy(),
            "department_code": rows["department_code"].to_numpy(),
        },
        geometry=gdf.geometry,
        crs=gdf.crs,
    )


def _name_by_department(polygons: gpd.GeoDataFrame, table: pd.DataFrame, *, path: Path,
                        official_names: str | Path | None) -> pd.DataFrame:
    """Official-name rows (columns of ``table`` but shapeID) for polygons absent from it: the
    municipality of the same normalised name in the department holding the polygon."""
    points = gpd.GeoDataFrame(geometry=polygons.geometry.representative_point(),
                              crs=polygons.crs).reset_index(drop=True)
    # Islands (Meanguera del Golfo) lie outside the generalised department outlines.
    departments = _join_polygon(
        points, load_departments(official_names=official_names), key="code",
        describe=lambda i: f"{path}: municipality {polygons['shapeName'].iloc[i]!r}",
        what="department")["code"].to_numpy()
    municipalities = table.drop_duplicates("code").assign(key=table["name"].map(place_key))
    out = []
    for name, department in zip(polygons["shapeName"], departments, strict=True):
        same = municipalities[(municipalities["key"] == place_key(name))
                              & (municipalities["department_code"] == department)]
        if len(same) != 1:
            raise InputError(
                f"{path}: municipality {name!r} (in {department}) is not in the official-names "
                f"table {official_names or layer_path('official_names')} and matches "
                f"{len(same)} official names of its department; add a row for its shapeID.")
        out.append(same.iloc[0])
    return pd.DataFrame(out)[[c for c in table.columns if c != "shapeID"]]


def place_key(name: str) -> str:
    """A place name compared loosely: no accents, lower case, single spaces, no leading
    "Ciudad" (Ciudad Delgado = Delgado)."""
    key = " ".join(fold_case_and_accents(str(name)).split())
    return key.removeprefix("ciudad ") if key != "ciudad" else key


def _join_polygon(
    points: gpd.GeoDataFrame,
    polygons: gpd.GeoDataFrame,
    *,
    key: str,
    describe: Callable[[int], str],
    what: str,
) -> gpd.GeoDataFrame:
    """Attributes of the polygon holding each point, in the points' order.

    A point outside every polygon (generalised coastlines, islands) takes the nearest one
    within :data:`MAX_SNAP_M`; farther than that is an error, worded with ``describe(i)``.
    """
    joined = gpd.sjoin(points, polygons, how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    unmatched = joined[key].isna().to_numpy()
    if unmatched.any():
        near = gpd.sjoin_nearest(
            points.loc[unmatched].to_crs(METRIC_CRS),
            polygons.to_crs(METRIC_CRS),
            how="left",
            max_distance=MAX_SNAP_M,
        )
        near = near[~near.index.duplicated(keep="first")]
        if near[key].isna().any():
            i = int(np.flatnonzero(joined.index.isin(near.index[near[key].isna()]))[0])
            raise InputError(
                f"{describe(i)} lies more than {MAX_SNAP_M / 1000:g} km from every {what}."
            )
        columns = [c for c in polygons.columns if c != "geometry"]
        joined.loc[unmatched, columns] = near[columns].to_numpy()
    return joined


def _attach_municipality(
    points: gpd.GeoDataFrame,
    path: Path,
    label: str,
    *,
    namesake_departments: Sequence[str | None] | None = None,
) -> gpd.GeoDataFrame:
    """Add ``municipality_id``, ``municipality``, ``department``, ``department_code``.

    By default the municipality whose polygon holds the point (a polygon feature: a point
    inside it). A point on the generalised coastline may fall just outside every polygon; it
    takes the nearest municipality within :data:`MAX_SNAP_M`, otherwise it is an error.

    With ``namesake_departments`` (one entry per point: the ISO department code it is known to
    lie in, or None) a point named after a municipality of that department (of any department
    for None) takes that municipality instead when its polygon lies within
    :data:`NAMESAKE_MAX_M` — see :func:`load_settlements`.
    """
    municipalities = load_municipalities()
    # A settlement given as a polygon is placed by a point inside it.
    anchors = gpd.GeoDataFrame(geometry=points.geometry.representative_point(), crs=points.crs)
    joined = _join_polygon(
        anchors,
        municipalities,
        key="id",
        describe=lambda i: f"{path}: {points[label].iloc[i]!r}",
        what="municipality of El Salvador (check its coordinates)",
    )
    chosen = joined["id"].to_numpy(dtype=object)
    if namesake_departments is not None:
        chosen = _namesake_municipalities(
            points[label], namesake_departments, anchors=anchors, containing=chosen,
            municipalities=municipalities, path=path)
    rows = municipalities.set_index("id").loc[chosen]
    out = points.copy()
    out["municipality_id"] = chosen
    out["municipality"] = rows["name"].to_numpy()
    out["department"] = rows["department"].to_numpy()
    out["department_code"] = rows["department_code"].to_numpy()
    return out


def _namesake_municipalities(
    names: pd.Series,
    departments: Sequence[str | None],
    *,
    anchors: gpd.GeoDataFrame,
    containing: np.ndarray,
    municipalities: gpd.GeoDataFrame,
    path: Path,
) -> np.ndarray:
    """Municipality ids after the namesake rule: a town named (:func:`place_key`) like a
    municipality of its department whose polygon lies within :data:`NAMESAKE_MAX_M` takes the
    nearest such municipality; any other town keeps its ``containing`` one."""
    keys = municipalities["name"].map(place_key).to_numpy()
    ids = municipalities["id"].to_numpy()
    codes = municipalities["department_code"].to_numpy()
    polygons = municipalities.to_crs(METRIC_CRS).geometry.reset_index(drop=True)
    where = anchors.to_crs(METRIC_CRS).geometry.reset_index(drop=True)
    out = containing.copy()
    for i, (name, department) in enumerate(zip(names, departments, strict=True)):
        same = keys == place_key(name)
        if department is not None:
            same &= codes == department
        if not same.any() or containing[i] in set(ids[same]):
            continue
        distance = polygons[same].distance(where.iloc[i]).to_numpy()
        nearest = int(np.argmin(distance))
        if distance[nearest] <= NAMESAKE_MAX_M:
            out[i] = ids[same][nearest]
            log.info("settlement_tied_to_namesake", extra={
                "path": str(path), "settlement": str(name), "municipality_id": str(out[i]),
                "instead_of": str(containing[i]), "distance_m": round(float(distance[nearest]))})
    return out


def _admin1_departments(gdf: gpd.GeoDataFrame, path: Path) -> list[str | None]:
    """The ISO department of each feature from its GeoNames ``admin1code`` (None if blank)."""
    out: list[str | None] = []
    for i, raw in enumerate(gdf["admin1code"]):
        text = "" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else str(raw)
        text = text.strip().removesuffix(".0")
        if not text:
            out.append(None)
            continue
        code = GEONAMES_ADMIN1_SV.get(text.zfill(2))
        if code is None:
            raise InputError(
                f"{path}: feature {i} ({gdf['name'].iloc[i]!r}) has admin1code {raw!r}, not a "
                f"GeoNames department of El Salvador ({min(GEONAMES_ADMIN1_SV)}–"
                f"{max(GEONAMES_ADMIN1_SV)}); correct it or leave it blank.")
        out.append(code)
    return out


def _apply_corrections(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Move GeoNames towns known to be misplaced (``settlements/geonames_corrections_SV.csv``:
    location and admin1code, with the source of the right ones) when they still sit at the
    recorded wrong location."""
    fixes = pd.read_csv(layer_path("settlement_corrections"), dtype={"wrong_admin1code": str,
                                                                     "admin1code": str})
    gdf = gdf.copy()
    ids = pd.to_numeric(gdf["geonameid"], errors="coerce")
    for fix in fixes.itertuples():
        for i in np.flatnonzero((ids == fix.geonameid).to_numpy()):
            point = gdf.geometry.iloc[i]
            if point.geom_type != "Point" or (
                    abs(point.x - fix.wrong_lon) > CORRECTION_TOLERANCE_DEG
                    or abs(point.y - fix.wrong_lat) > CORRECTION_TOLERANCE_DEG):
                continue
            gdf.loc[gdf.index[i], "geometry"] = Point(fix.lon, fix.lat)
            if "admin1code" in gdf.columns:
                gdf.loc[gdf.index[i], "admin1code"] = fix.admin1code
            log.info("settlement_location_corrected", extra={
                "path": str(path), "geonameid": int(fix.geonameid), "settlement": fix.name,
                "lon": fix.lon, "lat": fix.lat, "source": fix.source})
    return gdf


def load_settlements(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """GeoNames towns of El Salvador with population (points, lon/lat), or a layer of the same
    fields whose settlements are points or polygons (a polygon is used as the footprint).

    Columns: ``id`` (geonameid), ``name``, ``population`` (persons, > 0), municipality and
    department. Towns without population or with a duplicated id are refused.

    **Which municipality (and so which committee) a town belongs to**, by ``municipality_id``:

    1. Towns that GeoNames is known to misplace (``settlements/geonames_corrections_SV.csv``:
       San Martín and Tecoluca, put in Cuscatlán) are first moved to their documented place.
    2. By default, the municipality whose polygon contains the town's point (a point just off
       the generalised coastline: the nearest within :data:`MAX_SNAP_M`).
    3. But a town whose name equals — accents, case and a leading "Ciudad" ignored
       (:func:`place_key`) — the official name of a municipality of its own department
       (GeoNames ``admin1code`` → :data:`GEONAMES_ADMIN1_SV`; any department when the layer
       has no ``admin1code`` or leaves it blank) takes that municipality when its polygon lies
       within :data:`NAMESAKE_MAX_M` (2 km): GeoNames puts a municipal seat (*cabecera*) at a
       point that can fall just across a generalised boundary (Sonsonate under Nahulingo,
       Mejicanos under San Salvador). Of several such namesakes the nearest wins.
    """
    path = Path(path) if path else layer_path("settlements")
    gdf = _read_vector(
        path,
        required=["geonameid", "name", "population"],
        geometry_types={"Point", "Polygon", "MultiPolygon"},
        bbox=EL_SALVADOR_BBOX,
    )
    population = pd.to_numeric(gdf["population"], errors="coerce")
    bad = population.isna() | (population <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(
            f"{path}: feature {i} ({gdf['name'].iloc[i]!r}) has population "
            f"{gdf['population'].iloc[i]!r}; population must be a positive number of persons."
        )
    if gdf["geonameid"].duplicated().any():
        dup = gdf.loc[gdf["geonameid"].duplicated(), "geonameid"].iloc[0]
        raise InputError(f"{path}: geonameid {dup} appears more than once.")
    gdf = _apply_corrections(gdf, path)
    departments = (_admin1_departments(gdf, path) if "admin1code" in gdf.columns
                   else [None] * len(gdf))
    out = gpd.GeoDataFrame(
        {
            "id": gdf["geonameid"].astype(np.int64),
            "name": gdf["name"],
            "population": population.astype(np.int64),
        },
        geometry=gdf.geometry,
        crs=gdf.crs,
    )
    return _attach_municipality(out, path, "name", namesake_departments=departments)


def fold_case_and_accents(text: str) -> str:
    """Lower case without accents: names match however they were typed ("Región" = "region").
    """
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def name_has_keyword(name: str, keywords: list[str]) -> bool:
    """Whether a site's name holds one of ``keywords`` as whole words, ignoring case and
    accents."""
    text = fold_case_and_accents(name)
    return any(re.search(rf"\b{re.escape(fold_case_and_accents(k))}\b", text) for k in keywords)


def classify_site(name: str, category: str, rules: CollectiveCentreRules) -> str:
    """Kind of a public site from its name and category, by the first matching rule."""
    for rule in rules.rules:
        if name_has_keyword(name, rule.keywords):
            return rule.kind
        if category in rule.categories:
            return rule.kind
    raise InputError(f"site {name!r} (category {category!r}) matches no rule; add a rule.")


def load_collective_centres(
    path: str | Path | None = None, *, rules: CollectiveCentreRules | None = None
) -> gpd.GeoDataFrame:
    """Public buildings that could serve as collective centres, with kind and capacity.

    Kind and capacity follow ``models/collective_centres.yaml`` (capacity = usable floor area /
    3.5 m² per person, Sphere 2018); sites that are not buildings (mobile teams, placeholders)
    are dropped. Columns: ``id`` (1…n, stable for a given file), ``name``, ``kind``,
    ``capacity`` (persons), ``shelter`` (may receive evacuees), ``category`` (as in the source),
    ``address``, municipality and department.

    A site-profile file (the official list as CSV/XLSX, or a GeoJSON/GeoPackage with a
    ``site_id`` field, e.g. the live sites the service hands a run) is read instead with
    :func:`floodwarn.sites.profiles.read_site_centres`: ``id`` is then the site_id (str),
    ``capacity`` the remaining capacity (profiled − ``people_present``) and closed or full
    sites are not shelters.
    """
    path = Path(path) if path else layer_path("facilities")
    rules = rules or load_parameters(CollectiveCentreRules)
    # Imported here: floodwarn.sites builds on this module.
    from floodwarn.sites.profiles import is_site_profile_file, read_site_centres

    if is_site_profile_file(path):
        return read_site_centres(path, area_per_person_m2=rules.area_per_person_m2)
    gdf = _read_vector(
        path, required=["name", "category"], geometry_types={"Point"}, bbox=EL_SALVADOR_BBOX
    )
    kinds = [
        classify_site(str(n), str(c), rules)
        for n, c in zip(gdf["name"], gdf["category"], strict=True)
    ]
    gdf = gdf.assign(kind=kinds, id=np.arange(1, len(gdf) + 1))
    excluded = gdf["kind"] == "excluded"
    log.info(
        "collective_centres_loaded",
        extra={"path": str(path), "sites": len(gdf), "excluded": int(excluded.sum())},
    )
    gdf = gdf[~excluded]
    out = gpd.GeoDataFrame(
        {
            "id": gdf["id"].astype(np.int64),
            "name": gdf["name"].str.strip(),
            "kind": gdf["kind"],
            "capacity": [rules.capacity(k) for k in gdf["kind"]],
            "shelter": [rules.kinds[k].shelter for k in gdf["kind"]],
            "category": gdf["category"],
            "address": gdf["address"] if "address" in gdf.columns else "",
        },
        geometry=gdf.geometry,
        crs=gdf.crs,
    ).reset_index(drop=True)
    return _attach_municipality(out, path, "name")


def load_countries(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """Central American country outlines (``name``, ``iso_a2``): coastline and borders."""
    path = Path(path) if path else layer_path("countries")
    return _read_vector(
        path, required=["name", "iso_a2"], geometry_types={"Polygon", "MultiPolygon"}
    )
