"""The jobs floodwarn runs, one readable function each. Start reading here.

Terrain (once per DEM):  DEM file → read & reproject → fill → D8 → accumulation → streams and
reaches → HAND and catchments → COGs, reaches.gpkg, terrain.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from floodwarn.io.dem import DEFAULT_CRS, read_dem
from floodwarn.logs import get_logger, timed_step
from floodwarn.terrain.model import BUILD_STEPS, TerrainModel, build_terrain_model
from floodwarn.terrain.network import DEFAULT_MAX_REACH_LENGTH_M, DEFAULT_STREAM_AREA_KM2

log = get_logger(__name__)

#: Every step the terrain job reports to a progress display, in order.
TERRAIN_JOB_STEPS = ("read_dem", *BUILD_STEPS, "write")


@dataclass(frozen=True)
class TerrainJobResult:
    model: TerrainModel
    out_dir: Path
    seconds: float


def build_terrain(
    dem_path: str | Path,
    out_dir: str | Path,
    *,
    stream_area_km2: float = DEFAULT_STREAM_AREA_KM2,
    max_reach_length_m: float = DEFAULT_MAX_REACH_LENGTH_M,
    target_crs: str = DEFAULT_CRS,
    cellsize_m: float | None = None,
    nodata: float | None = None,
    fill_voids: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> TerrainJobResult:
    """Build the terrain model of a DEM file and write it to ``out_dir``."""
    start = time.perf_counter()
    notify = on_step or (lambda _step: None)
    timings: dict[str, float] = {}
    notify("read_dem")
    with timed_step(log, "read_dem", timings, path=str(dem_path)):
        dem = read_dem(
            dem_path,
            target_crs=target_crs,
            cellsize_m=cellsize_m,
            nodata=nodata,
            fill_voids=fill_voids,
        )
    model = build_terrain_model(
        dem.elevation,
        dem.grid,
        stream_area_km2=stream_area_km2,
        max_reach_length_m=max_reach_length_m,
        dem_metadata=dem.metadata,
        on_step=notify,
        overwrite_dem=True,  # the DEM array was read for this build only
    )
    del dem
    model.metadata["timings_s"] = {**timings, **model.metadata["timings_s"]}
    notify("write")
    model.save(out_dir)
    return TerrainJobResult(model=model, out_dir=Path(out_dir), seconds=time.perf_counter() - start)


def demo_terrain(
    out_dir: str | Path, *, on_step: Callable[[str], None] | None = None
) -> TerrainJobResult:
    """The demo's terrain: the SYNTHETIC stand-in DEM of the El Salvador domain, built once.

    The stand-in DEM is generated reproducibly into ``out_dir/standin_dem_90m.tif`` (reused
    while the generator version is unchanged) and its terrain model goes to
    ``out_dir/terrain``.
    """
    from floodwarn.standin_dem import standin_is_current, write_standin_dem

    out_dir = Path(out_dir)
    dem_path = out_dir / "standin_dem_90m.tif"
    if not standin_is_current(dem_path):
        with timed_step(log, "standin_dem", path=str(dem_path)):
            write_standin_dem(dem_path)
    return build_terrain(dem_path, out_dir / "terrain", on_step=on_step)
