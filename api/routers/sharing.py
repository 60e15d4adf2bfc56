"""Data sharing, DTM style: aggregated occupancy per site and per municipality as CSV with HXL
hashtags and as GeoJSON, for government, UN agencies and NGOs. Public like the CAP feed: the
small-number rule (``models/data_sharing.yaml``) is applied to every count, and nothing
personal (authors, notes, keys) is in the tables these are built from."""

from __future__ import annotations

from typing import Any, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Depends, Response

from api.centres import shared_municipalities, shared_sites, sharing_rules
from api.deps import ServiceDep, only_declared_query
from api.errors import COMMON_RESPONSES
from api.payload import GEOJSON_RESPONSE
from floodwarn.parameters import DataSharingRules
from floodwarn.sites.sharing import to_geojson, to_hxl_csv

router = APIRouter(prefix="/sharing", tags=["data sharing"], responses=COMMON_RESPONSES,
                   dependencies=[Depends(only_declared_query)])


def _table(service: ServiceDep, scope: Literal["sites", "municipalities"]
           ) -> tuple[gpd.GeoDataFrame, DataSharingRules]:
    rules = sharing_rules()
    picture = service.centres.picture()
    table = shared_sites(picture, rules) if scope == "sites" else \
        shared_municipalities(picture, rules)
    return table, rules


CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}},
                                              "description": "CSV with an HXL hashtag row"}}


@router.get("/sites.csv", response_class=Response, responses=CSV)
def sites_csv(service: ServiceDep) -> Response:
    """Occupancy per collective centre (people, households, by sex and age band, people with
    disabilities), small counts suppressed, CSV with HXL hashtags."""
    return _csv(service, "sites", "floodwarn_sitios_sites.csv")


@router.get("/municipalities.csv", response_class=Response, responses=CSV)
def municipalities_csv(service: ServiceDep) -> Response:
    """Occupancy of collective centres per municipality, small counts suppressed, HXL CSV."""
    return _csv(service, "municipalities", "floodwarn_municipios_municipalities.csv")


def _csv(service: ServiceDep, scope: Literal["sites", "municipalities"],
         filename: str) -> Response:
    table, rules = _table(service, scope)
    columns = [c for c in table.columns if c != "geometry"]
    body = to_hxl_csv(pd.DataFrame(table[columns]), rules, columns)
    return Response(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/sites.geojson", response_class=Response, responses=GEOJSON_RESPONSE)
def sites_geojson(service: ServiceDep) -> Response:
    """The per-site table as GeoJSON points (suppressed counts null)."""
    table, _ = _table(service, "sites")
    return _geojson(table)


@router.get("/municipalities.geojson", response_class=Response, responses=GEOJSON_RESPONSE)
def municipalities_geojson(service: ServiceDep) -> Response:
    """The per-municipality table as GeoJSON polygons (suppressed counts null)."""
    table, _ = _table(service, "municipalities")
    return _geojson(table)


def _geojson(table: gpd.GeoDataFrame) -> Response:
    import json

    body = to_geojson(table, [c for c in table.columns if c != "geometry"],
                      rules=sharing_rules())
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/geo+json")
