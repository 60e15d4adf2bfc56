"""OGC API – Features (OGC 17-069r4, Part 1: Core) over the shared data: collections
``sites`` (collective centres, suppressed counts), ``settlements-at-risk`` (the latest run's
settlements above verde) and ``municipalities`` (centre occupancy per municipality). Conformance
classes Core, GeoJSON and OpenAPI 3.0; coordinates in CRS84 (lon, lat). Public, read-only.

References: OGC (2022) OGC API – Features – Part 1: Core, OGC 17-069r4, requirements classes
/req/core, /req/geojson and /req/oas30; IETF RFC 7946 (GeoJSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from sqlalchemy import select

from api.centres import shared_municipalities, shared_sites, sharing_rules
from api.deps import ServiceDep, unknown_query_parameters
from api.errors import BAD_REQUEST, COMMON_RESPONSES, BadRequestError
from api.store.models import Run
from api.store.sites import json_value
from floodwarn.errors import NotFoundError
from floodwarn.io.forecast_outputs import SETTLEMENTS_FILE


async def _only_declared_query(request: Request) -> None:
    """/req/core/query-param-unknown: an undeclared query parameter is answered 400."""
    if unknown := unknown_query_parameters(request):
        raise BadRequestError(f"unknown query parameter(s) {unknown[:5]}; this route takes "
                              "limit, offset and bbox at most.")


router = APIRouter(prefix="/ogc", tags=["OGC API - Features"],
                   responses={**COMMON_RESPONSES, **BAD_REQUEST},
                   dependencies=[Depends(_only_declared_query)])

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON_TYPE = "application/geo+json"
JSON_TYPE = "application/json"
#: /req/core/fc-limit-default-minimum-maximum: default 10, maximum 10,000.
DEFAULT_LIMIT, MAX_LIMIT = 10, 10_000

COLLECTIONS = {
    "sites": ("Sitios de albergue (centros colectivos) / Collective centres",
              "Collective centres with their status and occupancy; counts under the "
              "small-number threshold are suppressed (null)."),
    "settlements-at-risk": ("Asentamientos en riesgo / Settlements at risk",
                            "Settlements of the latest forecast run above verde: level, people "
                            "exposed, hours to flooding."),
    "municipalities": ("Municipios / Municipalities",
                       "Occupancy of collective centres per municipality (suppressed)."),
}
CollectionId = Annotated[str, PathParam(max_length=64, description="Collection id")]


def _json(body: dict[str, Any], media_type: str = JSON_TYPE) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=str), media_type=media_type)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("", response_class=Response)
def landing_page(request: Request) -> Response:
    """The landing page: links to the API definition, the conformance declaration and the
    collections (/req/core/root-success)."""
    base = _base(request)
    return _json({
        "title": "floodwarn — datos compartidos / shared data",
        "description": "Collective centres, settlements at risk and municipalities of "
                       "floodwarn (El Salvador), as OGC API - Features.",
        "links": [
            {"href": f"{base}/ogc", "rel": "self", "type": JSON_TYPE, "title": "this page"},
            {"href": f"{base}/openapi.json", "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "API definition"},
            {"href": f"{base}/docs", "rel": "service-doc", "type": "text/html",
             "title": "API documentation"},
            {"href": f"{base}/ogc/conformance", "rel": "conformance", "type": JSON_TYPE,
             "title": "conformance classes"},
            {"href": f"{base}/ogc/collections", "rel": "data", "type": JSON_TYPE,
             "title": "collections"},
        ]})


@router.get("/conformance", response_class=Response)
def conformance() -> Response:
    """The conformance classes implemented (/req/core/conformance-success)."""
    return _json({"conformsTo": CONFORMANCE})


def _collection(base: str, cid: str, frame: gpd.GeoDataFrame | None) -> dict[str, Any]:
    title, description = COLLECTIONS[cid]
    out: dict[str, Any] = {
        "id": cid, "title": title, "description": description, "itemType": "feature",
        "crs": [CRS84],
        "links": [
            {"href": f"{base}/ogc/collections/{cid}", "rel": "self", "type": JSON_TYPE},
            {"href": f"{base}/ogc/collections/{cid}/items", "rel": "items",
             "type": GEOJSON_TYPE, "title": title},
        ]}
    if frame is not None and len(frame):
        bounds = frame.total_bounds
        out["extent"] = {"spatial": {"bbox": [[float(v) for v in bounds]], "crs": CRS84}}
    return out


@router.get("/collections", response_class=Response)
def collections(request: Request, service: ServiceDep) -> Response:
    """The feature collections (/req/core/fc-md-success)."""
    base = _base(request)
    return _json({
        "links": [{"href": f"{base}/ogc/collections", "rel": "self", "type": JSON_TYPE}],
        "collections": [_collection(base, cid, _features(service, cid))
                        for cid in COLLECTIONS]})


@router.get("/collections/{collection_id}", response_class=Response)
def collection(request: Request, service: ServiceDep, collection_id: CollectionId) -> Response:
    """One collection's description (/req/core/sfc-md-success)."""
    _known(collection_id)
    return _json(_collection(_base(request), collection_id, _features(service, collection_id)))


def _known(cid: str) -> None:
    if cid not in COLLECTIONS:
        raise NotFoundError(f"no collection {cid!r}; collections: {sorted(COLLECTIONS)}.")


def _features(service: ServiceDep, cid: str) -> gpd.GeoDataFrame:
    """The collection's features (CRS84), with ``fid`` the feature id."""
    if cid == "sites":
        frame = shared_sites(service.centres.picture(), sharing_rules())
        return frame.assign(fid=frame["site_id"].astype(str)).to_crs("OGC:CRS84")
    if cid == "municipalities":
        frame = shared_municipalities(service.centres.picture(), sharing_rules())
        return frame.assign(fid=frame["municipality_id"].astype(str)).to_crs("OGC:CRS84")
    return _settlements_at_risk(service)


def _settlements_at_risk(service: ServiceDep) -> gpd.GeoDataFrame:
    with service.sessions() as session:
        row = session.execute(select(Run.id, Run.out_dir, Run.finished_at)
                              .where(Run.status == "succeeded")
                              .order_by(Run.id.desc()).limit(1)).first()
    empty = gpd.GeoDataFrame({"fid": pd.Series(dtype=str)}, geometry=[], crs="OGC:CRS84")
    if row is None or row.out_dir is None:
        return empty
    outputs = service.read_cache.outputs(row.id, Path(row.out_dir))

    def load() -> gpd.GeoDataFrame:
        path = outputs.out_dir / SETTLEMENTS_FILE
        if not path.exists():
            return empty
        towns = gpd.read_file(path)
        keep = ["id", "name", "municipality_id", "municipality", "department_code",
                "department", "level", "people_exposed", "flooded_share", "max_depth_m",
                "hours_to_flooding"]
        towns = towns[towns["level"] != "verde"]
        towns = towns[[c for c in keep if c in towns.columns] + ["geometry"]]
        finished = row.finished_at.isoformat() if row.finished_at is not None else None
        towns = towns.assign(run_id=row.id, run_finished_at=finished,
                             fid=towns["id"].astype(str))
        return towns.to_crs("OGC:CRS84")

    frame: gpd.GeoDataFrame = outputs.attached("ogc-settlements-at-risk", load)
    return frame


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise BadRequestError(f"bbox {text!r}: four numbers minlon,minlat,maxlon,maxlat "
                              "(CRS84) are expected.") from None
    if len(values) != 4 or not all(np.isfinite(values)):
        raise BadRequestError(f"bbox {text!r}: four finite numbers minlon,minlat,maxlon,maxlat "
                              "are expected (6 for 3D is not supported).")
    if values[1] > values[3] or values[0] > values[2]:
        raise BadRequestError(f"bbox {text!r}: the minimum comes first (minlon,minlat,"
                              "maxlon,maxlat).")
    return values[0], values[1], values[2], values[3]


def _properties(row: pd.Series) -> dict[str, Any]:
    return {str(key): json_value(value) for key, value in row.items()
            if key not in ("geometry", "fid")}


def _feature(row: pd.Series, geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "id": row["fid"],
            "geometry": None if geometry is None or geometry.is_empty
            else geometry.__geo_interface__,
            "properties": _properties(row)}


@router.get("/collections/{collection_id}/items", response_class=Response)
def items(request: Request, service: ServiceDep, collection_id: CollectionId,
          limit: Annotated[str | None, Query(description=f"1 … {MAX_LIMIT}")] = None,
          offset: Annotated[str | None, Query(description="Features to skip")] = None,
          bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat "
                                                        "(CRS84)")] = None,
          datetime_filter: Annotated[str | None, Query(
              alias="datetime", description="An instant or an interval (RFC 3339; '..' open): "
              "sites and municipalities by their last report, settlements by their run")] = None,
          f: Annotated[str | None, Query(description="json (the only encoding)")] = None,
          ) -> Response:
    """The collection's features, GeoJSON, paged by ``limit``/``offset`` with next/prev links,
    filtered by ``bbox`` and ``datetime`` (/req/core/fc-response, /req/core/fc-time-response,
    /req/geojson/content)."""
    _known(collection_id)
    _json_only(f)
    count = _int(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    start = _int(offset, "offset", 0, 0, 10**9)
    box = _bbox(bbox)
    window = _interval(datetime_filter)
    frame = _features(service, collection_id)
    if window is not None and len(frame):
        column = TIME_PROPERTY[collection_id]
        times = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
        # A feature without a time has no temporal geometry: it never intersects the filter.
        frame = frame[((times >= window[0]) & (times <= window[1])).fillna(False).to_numpy()]
    if box is not None and len(frame):
        frame = frame.iloc[np.sort(frame.sindex.query(shapely.box(*box),
                                                      predicate="intersects"))]
    matched = len(frame)
    page = frame.iloc[start:start + count]
    base = f"{_base(request)}/ogc/collections/{collection_id}/items"
    extra = (f"&bbox={quote(bbox, safe=',')}" if bbox is not None else "") + (
        f"&datetime={quote(datetime_filter, safe=':/.')}" if datetime_filter is not None
        else "")
    links = [{"href": f"{base}?limit={count}&offset={start}{extra}", "rel": "self",
              "type": GEOJSON_TYPE, "title": "this page"}]
    if start + count < matched:
        links.append({"href": f"{base}?limit={count}&offset={start + count}{extra}",
                      "rel": "next", "type": GEOJSON_TYPE, "title": "next page"})
    if start > 0:
        links.append({"href": f"{base}?limit={count}&offset={max(start - count, 0)}{extra}",
                      "rel": "prev", "type": GEOJSON_TYPE, "title": "previous page"})
    links.append({"href": f"{_base(request)}/ogc/collections/{collection_id}",
                  "rel": "collection", "type": JSON_TYPE})
    features = [_feature(row, geom) for (_, row), geom in
                zip(page.iterrows(), page.geometry, strict=True)]
    return _json({"type": "FeatureCollection", "features": features, "links": links,
                  "numberMatched": matched, "numberReturned": len(features),
                  "timeStamp": datetime.now(UTC).isoformat(timespec="seconds")},
                 GEOJSON_TYPE)


#: The property whose time the ``datetime`` filter compares, per collection.
TIME_PROPERTY = {"sites": "last_report_at", "municipalities": "last_report_at",
                 "settlements-at-risk": "run_finished_at"}
_OPEN_START = pd.Timestamp.min.tz_localize("UTC")
_OPEN_END = pd.Timestamp.max.tz_localize("UTC")


def _interval(text: str | None) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """``datetime`` as a closed interval (/req/core/fc-time-definition): an instant, or
    ``start/end`` where either end may be ``..`` or empty (open)."""
    if text is None:
        return None
    parts = text.split("/")
    if len(parts) > 2:
        raise BadRequestError(f"datetime {text!r}: an instant or start/end is expected.")

    def when(part: str, open_value: pd.Timestamp) -> pd.Timestamp:
        if part in ("", "..") and len(parts) == 2:
            return open_value
        try:
            stamp = pd.Timestamp(part)
        except ValueError:
            raise BadRequestError(f"datetime {text!r}: {part!r} is not an RFC 3339 time "
                                  "(e.g. 2026-11-30T12:00:00Z).") from None
        return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")

    start = when(parts[0], _OPEN_START)
    end = when(parts[-1], _OPEN_END)
    if start > end:
        raise BadRequestError(f"datetime {text!r}: the start comes after the end.")
    return start, end


def _json_only(f: str | None) -> None:
    if f is not None and f.lower() not in ("json", "geojson"):
        raise BadRequestError(f"f={f!r}: this service answers GeoJSON/JSON only (f=json).")


def _int(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequestError(f"{name} {text!r}: an integer is expected.") from None
    if not low <= value <= high:
        raise BadRequestError(f"{name} {value}: must lie in {low} … {high}.")
    return value


@router.get("/collections/{collection_id}/items/{feature_id}", response_class=Response)
def item(request: Request, service: ServiceDep, collection_id: CollectionId,
         feature_id: Annotated[str, PathParam(max_length=128)]) -> Response:
    """One feature, GeoJSON (/req/core/f-success); 404 when it does not exist."""
    _known(collection_id)
    frame = _features(service, collection_id)
    found = frame[frame["fid"] == feature_id]
    if found.empty:
        raise NotFoundError(f"no feature {feature_id!r} in collection {collection_id!r}.")
    base = f"{_base(request)}/ogc/collections/{collection_id}"
    feature = _feature(found.iloc[0], found.geometry.iloc[0])
    feature["links"] = [
        {"href": f"{base}/items/{feature_id}", "rel": "self", "type": GEOJSON_TYPE},
        {"href": base, "rel": "collection", "type": JSON_TYPE}]
    return _json(feature, GEOJSON_TYPE)
