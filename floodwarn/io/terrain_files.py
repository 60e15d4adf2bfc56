"""A terrain model on disk: COG rasters, ``reaches.gpkg`` and ``terrain.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from floodwarn.errors import DataFileError, TerrainModelError
from floodwarn.io.raster import read_band, write_cog
from floodwarn.logs import get_logger, timed_step
from floodwarn.terrain.grid import Grid
from floodwarn.terrain.model import TerrainModel
from floodwarn.terrain.network import ReachTable, rebuild_reach_table

log = get_logger(__name__)

METADATA_FILE = "terrain.json"
REACHES_FILE = "reaches.gpkg"
#: name → (model attribute, nodata, overview kind, description)
RASTERS: dict[str, tuple[str, float | int, str, str]] = {
    "conditioned.tif": (
        "conditioned",
        float("nan"),
        "continuous",
        "conditioned (depression-filled) elevation, m",
    ),
    "flowdir.tif": (
        "flowdir",
        255,
        "categorical",
        "D8 flow direction, ESRI encoding (1 E … 128 NE, 0 outlet)",
    ),
    "accumulation.tif": (
        "accumulation",
        0,
        "continuous",
        "upstream cells including the cell itself",
    ),
    "hand.tif": ("hand", float("nan"), "continuous", "height above nearest drainage, m"),
    "reach_id.tif": ("reach_id", 0, "categorical", "reach id of stream cells"),
    "catchment_id.tif": ("catchment_id", 0, "categorical", "reach each cell first drains into"),
}


def reaches_geodataframe(model: TerrainModel) -> gpd.GeoDataFrame:
    """The reach table as a GeoDataFrame of LineStrings in the model's CRS."""
    reaches = model.reaches
    offsets, xy = reaches.line_coordinates(model.grid)
    lines = shapely.linestrings(xy, indices=np.repeat(np.arange(len(reaches)), np.diff(offsets)))
    ncols = model.grid.shape[1]
    head_row, head_col = np.divmod(reaches.head_cell, ncols)
    last_row, last_col = np.divmod(reaches.last_cell, ncols)
    topo_rank = np.empty(len(reaches), np.int32)
    topo_rank[reaches.topo_order - 1] = np.arange(len(reaches), dtype=np.int32)
    return gpd.GeoDataFrame(
        {
            "reach_id": reaches.id,
            "downstream_id": reaches.downstream_id,
            "strahler": reaches.strahler.astype(np.int16),
            "length_m": reaches.length_m,
            "drop_m": reaches.drop_m,
            "slope": reaches.slope,
            "upstream_area_km2": reaches.upstream_area_km2,
            "catchment_area_km2": reaches.catchment_area_km2,
            "topo_rank": topo_rank,
            "head_row": head_row,
            "head_col": head_col,
            "last_row": last_row,
            "last_col": last_col,
        },
        geometry=lines,
        crs=model.grid.crs,
    )


def save_terrain_model(model: TerrainModel, directory: str | Path) -> dict[str, float]:
    """Write every raster as a COG, the reaches as GeoPackage and the metadata as JSON;
    returns the timings (s) of each file.

    Files are written under temporary names and renamed when complete; ``terrain.json`` goes
    last, so a directory with a ``terrain.json`` holds a complete model.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    (directory / METADATA_FILE).unlink(missing_ok=True)
    tags = {
        "floodwarn_synthetic": str(model.is_synthetic).lower(),
        "floodwarn_source_dem": model.metadata.get("dem", {}).get("name", ""),
    }
    for name, (attribute, nodata, kind, description) in RASTERS.items():
        with timed_step(log, f"write_{attribute}", timings, file=name):
            write_cog(
                directory / name,
                getattr(model, attribute),
                model.grid,
                nodata=nodata,
                kind=kind,
                tags=tags,
                description=description,
            )
    with timed_step(log, "write_reaches", timings, file=REACHES_FILE):
        gdf = reaches_geodataframe(model)
        tmp = directory / (REACHES_FILE + ".partial.gpkg")
        tmp.unlink(missing_ok=True)
        gdf.to_file(tmp, layer="reaches", driver="GPKG", engine="pyogrio")
        tmp.replace(directory / REACHES_FILE)
    metadata = dict(model.metadata)
    metadata["timings_s"] = {**metadata.get("timings_s", {}), **timings}
    metadata["files"] = {
        **{name: description for name, (_, _, _, description) in RASTERS.items()},
        REACHES_FILE: "reach lines with id, downstream id, length, slope, upstream area",
    }
    metadata["written_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tmp_json = directory / (METADATA_FILE + ".partial")
    tmp_json.write_text(json.dumps(metadata, indent=2, default=_json_default))
    tmp_json.replace(directory / METADATA_FILE)
    return timings


def load_terrain_model(directory: str | Path) -> TerrainModel:
    """Read a terrain model directory written by :func:`save_terrain_model` (or
    ``floodwarn terrain build``)."""
    directory = Path(directory)
    meta_path = directory / METADATA_FILE
    if not directory.is_dir():
        raise DataFileError(
            f"{directory}: no such terrain model directory; build one with "
            "`floodwarn terrain build --dem DEM --out DIR`."
        )
    if not meta_path.exists():
        raise TerrainModelError(
            f"{directory}: {METADATA_FILE} is missing, so the model is incomplete (a build that "
            "did not finish?). Run `floodwarn terrain build` again."
        )
    missing = [n for n in (*RASTERS, REACHES_FILE) if not (directory / n).exists()]
    if missing:
        raise TerrainModelError(f"{directory}: missing {', '.join(missing)}; rebuild the model.")
    try:
        metadata = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise TerrainModelError(f"{meta_path}: not valid JSON ({exc}); rebuild the model.") from exc
    arrays: dict[str, np.ndarray] = {}
    grid: Grid | None = None
    for name, (attribute, _, _, _) in RASTERS.items():
        array, g, _, _ = read_band(directory / name)
        if grid is None:
            grid = g
        elif g.shape != grid.shape or g.transform != grid.transform:
            raise TerrainModelError(
                f"{directory / name}: grid {g.shape} {tuple(g.transform)[:6]} differs from "
                f"the model's {grid.shape} {tuple(grid.transform)[:6]}; rebuild the model."
            )
        arrays[attribute] = array
    assert grid is not None
    gdf = gpd.read_file(directory / REACHES_FILE, layer="reaches", engine="pyogrio")
    gdf = gdf.sort_values("reach_id")
    if len(gdf) and not np.array_equal(gdf["reach_id"].to_numpy(), np.arange(1, len(gdf) + 1)):
        raise TerrainModelError(f"{directory / REACHES_FILE}: reach ids are not 1…{len(gdf)}.")
    ncols = grid.shape[1]
    reaches: ReachTable = rebuild_reach_table(
        arrays["flowdir"],
        arrays["reach_id"],
        downstream_id=gdf["downstream_id"].to_numpy(),
        strahler=gdf["strahler"].to_numpy(),
        length_m=gdf["length_m"].to_numpy(),
        drop_m=gdf["drop_m"].to_numpy(),
        upstream_area_km2=gdf["upstream_area_km2"].to_numpy(),
        catchment_area_km2=gdf["catchment_area_km2"].to_numpy(),
        head_cell=(gdf["head_row"].to_numpy() * ncols + gdf["head_col"].to_numpy()),
        last_cell=(gdf["last_row"].to_numpy() * ncols + gdf["last_col"].to_numpy()),
    )
    return TerrainModel(grid=grid, reaches=reaches, metadata=metadata, **arrays)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
