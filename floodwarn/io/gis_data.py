"""Loaders for the shipped El Salvador layers in ``gis_data/``, each validated on load.

Every loader accepts another file of the same shape (``path=``), so users can swap in newer
data; problems are reported with the file, the feature and the field, and how to fix them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyogrio.errors import DataSourceError

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

LAYERS = {
    "departments": "admin/El_Salvador_departamentos.json",
    "municipalities": "admin/El_Salvador_municipios.json",
    "countries": "admin/Central_America.json",
    "settlements": "settlements/geonames_cities500_SV.geojson",
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


def load_departments(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """The 14 departments: ``code`` (ISO 3166-2, e.g. SV-SS), ``name``, polygon."""
    path = Path(path) if path else layer_path("departments")
    gdf = _read_vector(
        path,
        required=["shapeName", "shapeID"],
        geometry_types={"Polygon", "MultiPolygon"},
        label="shapeName",
    )
    return gpd.GeoDataFrame(
        {"code": gdf["shapeID"], "name": gdf["shapeName"]}, geometry=gdf.geometry, crs=gdf.crs
    )


def load_municipalities(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """The 262 pre-2024 municipalities (water bodies dropped) with their department.

    Columns: ``id`` (geoBoundaries shapeID), ``name``, ``department``, ``department_code``,
    polygon. Names repeat across departments (8 do), so use ``id`` to refer to one.
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
    departments = load_departments()
    points = gpd.GeoDataFrame(geometry=gdf.geometry.representative_point(), crs=gdf.crs)
    # Islands (Meanguera del Golfo) lie outside the generalised department outlines.
    joined = _join_polygon(
        points,
        departments,
        key="code",
        describe=lambda i: f"{path}: municipality {gdf['shapeName'].iloc[i]!r}",
        what="department",
    )
    return gpd.GeoDataFrame(
        {
            "id": gdf["shapeID"],
            "name": gdf["shapeName"],
            "department": joined["name"].to_numpy(),
            "department_code": joined["code"].to_numpy(),
        },
        geometry=gdf.geometry,
        crs=gdf.crs,
    )


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


def _attach_municipality(points: gpd.GeoDataFrame, path: Path, label: str) -> gpd.GeoDataFrame:
    """Add ``municipality_id``, ``municipality``, ``department``, ``department_code``.

    A point on the generalised coastline may fall just outside every polygon; it takes the
    nearest municipality within :data:`MAX_SNAP_M`, otherwise it is an error.
    """
    joined = _join_polygon(
        # A settlement given as a polygon is placed by a point inside it.
        gpd.GeoDataFrame(geometry=points.geometry.representative_point(), crs=points.crs),
        load_municipalities(),
        key="id",
        describe=lambda i: f"{path}: {points[label].iloc[i]!r}",
        what="municipality of El Salvador (check its coordinates)",
    )
    out = points.copy()
    out["municipality_id"] = joined["id"].to_numpy()
    out["municipality"] = joined["name"].to_numpy()
    out["department"] = joined["department"].to_numpy()
    out["department_code"] = joined["department_code"].to_numpy()
    return out


def load_settlements(path: str | Path | None = None) -> gpd.GeoDataFrame:
    """GeoNames towns of El Salvador with population (points, lon/lat), or a layer of the same
    fields whose settlements are points or polygons (a polygon is used as the footprint).

    Columns: ``id`` (geonameid), ``name``, ``population`` (persons, > 0), municipality and
    department. Towns without population or with a duplicated id are refused.
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
    out = gpd.GeoDataFrame(
        {
            "id": gdf["geonameid"].astype(np.int64),
            "name": gdf["name"],
            "population": population.astype(np.int64),
        },
        geometry=gdf.geometry,
        crs=gdf.crs,
    )
    return _attach_municipality(out, path, "name")


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def classify_site(name: str, category: str, rules: CollectiveCentreRules) -> str:
    """Kind of a public site from its name and category, by the first matching rule."""
    text = _normalise(name)
    for rule in rules.rules:
        if any(re.search(rf"\b{re.escape(_normalise(k))}\b", text) for k in rule.keywords):
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
    """
    path = Path(path) if path else layer_path("facilities")
    rules = rules or load_parameters(CollectiveCentreRules)
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
