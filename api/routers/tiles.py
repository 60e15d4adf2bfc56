"""Map tiles for the analysts' web map: a run's flood depth and time of first flooding, the
terrain's hillshade (Web Mercator XYZ, 256 px PNG), and the legend of their colour maps.

Tiles are rendered on first request (rio-tiler, on a pool of render threads: GDAL blocks)
and kept in memory; a run's rasters never change once it has succeeded, so a cached tile
never goes stale. Answers carry an ETag and Cache-Control so browsers reuse them; a request whose
If-None-Match holds the tile's ETag is answered 304 Not Modified without a body.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import RunId, ServiceDep, get_caller
from api.errors import COMMON_RESPONSES
from api.store.runs import succeeded_output_dir
from api.tiles import (
    HILLSHADE_MAX_AGE_S,
    MAX_ZOOM,
    RUN_TILE_MAX_AGE_S,
    RenderedTile,
    RunLayer,
    hillshade_tile_key,
    in_render_pool,
    legend,
    run_tile_key,
)
from floodwarn.errors import InputError

router = APIRouter(tags=["map tiles"])

Zoom = Annotated[int, PathParam(ge=0, le=MAX_ZOOM, description="Zoom level")]
TileX = Annotated[int, PathParam(ge=0, le=2**MAX_ZOOM - 1,
                                 description="Tile column, 0 … 2^z − 1 from west to east")]
TileY = Annotated[int, PathParam(ge=0, le=2**MAX_ZOOM - 1,
                                 description="Tile row, 0 … 2^z − 1 from north to south")]
#: Longest forecast horizon a slider can ask for (h): 60 days.
MAX_HOUR = 1440.0

PNG: dict[int | str, dict[str, Any]] = {200: {
    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    "description": "256 × 256 PNG with transparency"}}
PUBLIC_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: COMMON_RESPONSES[status] for status in (404, 422, 500)}


def _tile_exists(z: int, x: int, y: int) -> None:
    """x and y within the zoom's tile matrix (the schema alone cannot tie them to z)."""
    if x >= 2**z or y >= 2**z:
        raise InputError(f"tile {z}/{x}/{y} does not exist: at zoom {z}, x and y run from 0 "
                         f"to {2**z - 1}.")


def _png(tile: RenderedTile, request: Request, cache_control: str) -> Response:
    headers = {"ETag": tile.etag, "Cache-Control": cache_control}
    if tile.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(tile.png, media_type="image/png", headers=headers)


# Any valid key may read a run's map (every role): the dependency only authenticates.
@router.get("/runs/{run_id}/tiles/{layer}/{z}/{x}/{y}.png", response_class=Response,
            responses={**COMMON_RESPONSES, **PNG}, dependencies=[Depends(get_caller)])
async def run_tile(
        service: ServiceDep, request: Request, run_id: RunId,
        layer: Annotated[RunLayer, PathParam(
            description="depth: peak flood depth (m); first_flooding: hours from the "
                        "forecast start until a cell first floods")],
        z: Zoom, x: TileX, y: TileY,
        hour: Annotated[float | None, Query(
            ge=0, le=MAX_HOUR, description="first_flooding only (ignored for depth): draw "
            "only cells first flooded at or before this forecast hour")] = None) -> Response:
    """A map tile of a succeeded run's flood layer in the colour map of
    ``GET /tiles/legend.json`` (every role). A tile outside the run's rasters is 404."""
    _tile_exists(z, x, y)
    tile = service.tiles.cache.get(run_tile_key(run_id, layer, z, x, y, hour))
    if tile is None:
        def output_dir() -> Path:
            with service.sessions() as session:
                return succeeded_output_dir(session, run_id)

        tile = await in_render_pool(service.tiles.render_run_tile, run_id, layer, z, x, y,
                                    hour, output_dir)
    return _png(tile, request, f"private, max-age={RUN_TILE_MAX_AGE_S}")


@router.get("/terrain/tiles/hillshade/{z}/{x}/{y}.png", response_class=Response,
            responses={**PUBLIC_RESPONSES, **PNG})
async def hillshade_tile(service: ServiceDep, request: Request, z: Zoom, x: TileX,
                         y: TileY) -> Response:
    """A grey hillshade tile of the service's terrain model, the map's base layer (public).
    The hillshade is computed on the first request (a few seconds for a country); 404 while
    the service has no terrain model."""
    _tile_exists(z, x, y)
    tile = service.tiles.cache.get(hillshade_tile_key(z, x, y))
    if tile is None:
        # Made once, off the render threads: a first hillshade request must not hold up
        # the run tiles the map asks for at the same time.
        path = await run_in_threadpool(service.tiles.hillshade, service.settings.terrain,
                                       service.settings.data_dir / "tiles")
        tile = await in_render_pool(service.tiles.render_hillshade_tile, path, z, x, y)
    return _png(tile, request, f"public, max-age={HILLSHADE_MAX_AGE_S}")


class Label(BaseModel):
    es: str
    en: str


class LegendStop(BaseModel):
    value: float = Field(description="Lower edge of the class, in the layer's units; the "
                                     "class runs up to the next stop's value")
    color: str = Field(description="#rrggbbaa", pattern=r"^#[0-9a-f]{8}$")
    label: Label


class LayerLegend(BaseModel):
    title: Label
    units: str
    tiles: str = Field(description="URL template of the layer's tiles")
    not_drawn: Label = Field(description="What the layer leaves transparent")
    stops: list[LegendStop]


class Legend(BaseModel):
    depth: LayerLegend
    first_flooding: LayerLegend
    hillshade: LayerLegend


_LEGEND = Legend.model_validate(legend()).model_dump_json().encode()


@router.get("/tiles/legend.json", response_model=Legend,
            responses={500: COMMON_RESPONSES[500]})
async def tile_legend() -> Response:
    """The colour maps of the tile layers, for the map's legend (public): per layer its
    title, units, URL template, what is left transparent and its stops (class lower edge,
    #rrggbbaa colour, Spanish and English label)."""
    return Response(_LEGEND, media_type="application/json",
                    headers={"Cache-Control": f"public, max-age={RUN_TILE_MAX_AGE_S}"})
