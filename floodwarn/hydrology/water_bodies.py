"""Reservoirs and lakes on a terrain model: where they are, which reaches they swallow, and
the level-pool tables the routing needs (``models/reservoirs.yaml``).

A lake on a DEM is a flat water surface; depression filling keeps it flat and D8 drains it
through one exit. The reaches that cross that surface are not channels (their "slope" is the
filling's), so they pass their water on at once, and the reach leaving the lake becomes a
level pool: its outflow follows the lake's storage and outlet (modified Puls), from an
initial level that is a run input (DGPC asks CEL for the reservoirs' levels before a storm),
by default the seasonal normal level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import Transformer
from scipy import ndimage

from floodwarn.errors import InputError
from floodwarn.logs import get_logger
from floodwarn.parameters import WaterBodies
from floodwarn.terrain.model import TerrainModel

log = get_logger(__name__)

#: A cell belongs to a lake's surface when it lies within this height of the surface, m: on a
#: real DEM (SRTM-class noise over water), and on a synthetic DEM that burned its lakes flat.
SURFACE_TOLERANCE_M = 0.5
BURNED_TOLERANCE_M = 0.01
#: How far a published dam or outlet position may be from the modelled river, m.
MAX_OUTLET_SNAP_M = 10_000.0


@dataclass(frozen=True, eq=False)
class WaterBodyNetwork:
    """The water bodies found on one terrain model (P of them).

    ``outlet_reach`` (P,) 0-based reach whose outflow is the lake's; ``pass_through`` (n,)
    reaches inside a lake; ``body_of_reach`` (n,) the water body a reach lies in or leaves
    (−1 for none); ``surface`` (rows, cols) bool, the lakes' water surfaces (water,
    not land: never counted as flooded); ``dem_level_m`` (P,) the DEM's elevation of each
    surface; ``levels_m``, ``storage_m3``, ``outflow_m3s`` (P, L) the level-pool tables (rows
    extended along their last segment to a common length); ``table_top_m`` (P,) the last
    published level; ``surface_level_m`` (P,) the level the DEM's shore stands for;
    ``normal_level_m`` (P, 12) the normal level of every calendar month.
    """

    ids: tuple[str, ...]
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    outlet_reach: np.ndarray
    pass_through: np.ndarray
    body_of_reach: np.ndarray
    surface: np.ndarray
    dem_level_m: np.ndarray
    levels_m: np.ndarray
    storage_m3: np.ndarray
    outflow_m3s: np.ndarray
    table_top_m: np.ndarray
    surface_level_m: np.ndarray
    normal_level_m: np.ndarray
    placement: tuple[dict[str, Any], ...]

    @property
    def n_bodies(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, n_reaches: int, grid_shape: tuple[int, int]) -> WaterBodyNetwork:
        """No water body, on a network of ``n_reaches`` over a grid of ``grid_shape``."""
        n = n_reaches
        return cls((), (), (), np.zeros(0, np.int64), np.zeros(n, bool),
                   np.full(n, -1, np.int64), np.zeros(grid_shape, bool), np.zeros(0),
                   np.zeros((0, 2)), np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0),
                   np.zeros(0), np.zeros((0, 12)), ())

    def initial_levels(self, month: int, given: dict[str, float] | None = None) -> np.ndarray:
        """Initial level of every water body (m): ``given`` by id, else the normal level of
        calendar ``month``. Levels of bodies off this terrain are left aside; a level outside
        a body's table is refused."""
        if not 1 <= month <= 12:
            raise InputError(f"month {month} is not 1…12.")
        levels = self.normal_level_m[:, month - 1].astype(np.float64).copy()
        for body_id, level in (given or {}).items():
            if body_id not in self.ids:
                # A known body off this terrain (ids are checked against the parameter file
                # before a run: check_reservoir_levels): nothing to set.
                log.info("initial level for a water body off the terrain",
                         extra={"water_body": body_id})
                continue
            k = self.ids.index(body_id)
            low, high = float(self.levels_m[k, 0]), float(self.table_top_m[k])
            if not (np.isfinite(level) and low <= level <= high):
                raise InputError(
                    f"initial level {level} m for {self.names[k]} ({body_id}) lies outside "
                    f"its storage table ({low:g}…{high:g} m a.s.l.); give a level in metres "
                    "above sea level within it.")
            levels[k] = float(level)
        return levels


def check_reservoir_levels(levels: dict[str, float], bodies: WaterBodies) -> None:
    """Refuse initial levels of unknown water bodies, that are not numbers, or that lie
    outside a body's storage table — before a run loads anything."""
    known = {b.id: b for b in bodies.water_bodies}
    for body_id, level in levels.items():
        if body_id not in known:
            raise InputError(f"initial level for unknown water body {body_id!r}; the water "
                             f"bodies are {', '.join(sorted(known))} (models/reservoirs.yaml).")
        body = known[body_id]
        if not isinstance(level, int | float) or not np.isfinite(level):
            raise InputError(f"initial level {level!r} for {body.name} ({body_id}) is not a "
                             "number of metres above sea level.")
        low, high = body.table[0].level_m, body.table[-1].level_m
        if not low <= level <= high:
            raise InputError(
                f"initial level {level} m for {body.name} ({body_id}) lies outside its storage "
                f"table ({low:g}…{high:g} m a.s.l.); give a level in metres above sea level "
                "within it.")


def locate_water_bodies(terrain: TerrainModel, bodies: WaterBodies) -> WaterBodyNetwork:
    """Find each water body of ``bodies`` on ``terrain`` (see the module docstring).

    A synthetic DEM records where it burned each lake (``water_bodies`` in its metadata);
    otherwise the published ``point_lonlat`` must fall on the lake's surface. The surface is
    the connected region within :data:`SURFACE_TOLERANCE_M` of the point's elevation; the
    outlet is the reach through which D8 drains it. Where the DEM shows no lake (a surface of
    a few cells), the outlet is the largest river within :data:`MAX_OUTLET_SNAP_M` of the
    published outlet, and no reach passes through. Bodies outside the terrain are left out.
    """
    grid = terrain.grid
    to_grid = Transformer.from_crs("EPSG:4326", grid.crs, always_xy=True)
    burned = terrain.metadata.get("dem", {}).get("water_bodies", {}) or {}
    n = len(terrain.reaches)
    kept: list[tuple[Any, int, np.ndarray, float, dict[str, Any]]] = []
    surface_all = np.zeros(grid.shape, bool)
    pass_through = np.zeros(n, bool)
    body_of_reach = np.full(n, -1, np.int64)
    for body in bodies.water_bodies:
        placed = burned.get(body.id, {})
        lon, lat = placed.get("surface_lonlat") or body.point_lonlat
        outlet_lonlat = placed.get("outlet_lonlat", body.outlet_lonlat)
        x, y = to_grid.transform(lon, lat)
        rows, cols = grid.cells_at(np.array([x]), np.array([y]))
        row, col = int(rows[0]), int(cols[0])
        if row < 0 or terrain.flowdir[row, col] == 255:
            log.info("water body outside the terrain", extra={"water_body": body.id})
            continue
        # A synthetic DEM burns exactly flat lakes (depression filling may raise a closed one
        # to its rim, flat still); a real DEM's lake surface is flat within its noise.
        tolerance = BURNED_TOLERANCE_M if placed else SURFACE_TOLERANCE_M
        surface = _lake_surface(terrain, row, col, body.surface_area_km2, tolerance)
        area_km2 = float(surface.sum() * grid.cell_area_km2)
        placement: dict[str, Any] = {"id": body.id, "approximation": body.approximation,
                                     "surface_cells": int(surface.sum()),
                                     "surface_km2": round(area_km2, 2),
                                     "published_km2": body.surface_area_km2}
        if area_km2 >= 0.1 * body.surface_area_km2:
            outlet = _surface_outlet_reach(terrain, surface)
            placement["found_by"] = "flat water surface on the DEM"
        else:
            surface[:] = False
            outlet = _reach_near(terrain, outlet_lonlat or (lon, lat), to_grid)
            placement["found_by"] = "largest river near the published outlet (no lake on DEM)"
        if outlet < 0:
            log.warning("water body has no outlet reach on the terrain; left out",
                        extra={"water_body": body.id})
            continue
        inside = _reaches_inside(terrain, surface)
        inside[outlet] = False
        if pass_through[outlet] or body_of_reach[outlet] >= 0:
            log.warning("two water bodies share an outlet reach; the second is left out",
                        extra={"water_body": body.id, "outlet_reach_id": outlet + 1})
            continue
        body_of_reach[inside] = len(kept)
        body_of_reach[outlet] = len(kept)
        pass_through |= inside
        surface_all |= surface
        placement["outlet_reach_id"] = outlet + 1
        placement["pass_through_reaches"] = int(inside.sum())
        level = float(np.median(terrain.conditioned[surface])) if surface.any() else float(
            terrain.conditioned[row, col])
        kept.append((body, outlet, surface, level, placement))
        log.info("water body located", extra=placement)
    if not kept:
        return WaterBodyNetwork.empty(n, grid.shape)
    width = max(len(b.table) for b, *_ in kept)
    tables = [_extended_table(b, width) for b, *_ in kept]
    levels = np.array([t[0] for t in tables])
    storage = np.array([t[1] for t in tables])
    outflow = np.array([t[2] for t in tables])
    return WaterBodyNetwork(
        ids=tuple(b.id for b, *_ in kept),
        names=tuple(b.name for b, *_ in kept),
        kinds=tuple(b.kind for b, *_ in kept),
        outlet_reach=np.array([o for _, o, *_ in kept], np.int64),
        pass_through=pass_through,
        body_of_reach=body_of_reach,
        surface=surface_all,
        dem_level_m=np.array([lv for *_, lv, _ in kept]),
        levels_m=levels,
        storage_m3=storage,
        outflow_m3s=outflow,
        table_top_m=np.array([b.table[-1].level_m for b, *_ in kept]),
        surface_level_m=np.array([b.surface_level_m for b, *_ in kept]),
        normal_level_m=np.array([[b.normal_level(m) for m in range(1, 13)]
                                 for b, *_ in kept]),
        placement=tuple(p for *_, p in kept),
    )


def _extended_table(body: Any, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A body's level, storage (m³) and outflow rows, extended to ``width`` rows along its
    last segment (the routing extrapolates beyond a table along its last segment, so the
    extension changes nothing but the array's shape)."""
    level = np.array([row.level_m for row in body.table], np.float64)
    storage = np.array([row.storage_hm3 * 1e6 for row in body.table], np.float64)
    outflow = np.array([row.outflow_m3s for row in body.table], np.float64)
    extra = np.arange(1, width - level.size + 1)
    if extra.size:
        step = level[-1] - level[-2]
        level = np.concatenate([level, level[-1] + step * extra])
        storage = np.concatenate([storage, storage[-1] + (storage[-1] - storage[-2]) * extra])
        outflow = np.concatenate([outflow, outflow[-1] + (outflow[-1] - outflow[-2]) * extra])
    return level, storage, outflow


def _lake_surface(terrain: TerrainModel, row: int, col: int, area_km2: float,
                  tolerance_m: float) -> np.ndarray:
    """The connected cells within ``tolerance_m`` of the elevation at (row, col), searched in
    a window a few lake radii wide."""
    grid = terrain.grid
    radius = int(4 * np.sqrt(area_km2 / np.pi) * 1000 / grid.cellsize_m) + 5
    r0, c0 = max(row - radius, 0), max(col - radius, 0)
    r1, c1 = min(row + radius + 1, grid.shape[0]), min(col + radius + 1, grid.shape[1])
    z = terrain.conditioned[r0:r1, c0:c1]
    flat = np.abs(z - terrain.conditioned[row, col]) < tolerance_m
    labels, _ = ndimage.label(flat, structure=np.ones((3, 3), bool))
    out = np.zeros(grid.shape, bool)
    out[r0:r1, c0:c1] = labels == labels[row - r0, col - c0]
    return out


def _surface_outlet_reach(terrain: TerrainModel, surface: np.ndarray) -> int:
    """The reach through which D8 drains a lake surface (0-based index, −1 if none): from the
    surface cell of largest upstream area, follow the flow to the first stream cell."""
    from floodwarn.kernels.d8 import code_offset_table

    ncols = terrain.grid.shape[1]
    offsets = code_offset_table(ncols)
    flowdir = terrain.flowdir.reshape(-1)
    reach_id = terrain.reach_id.reshape(-1)
    cells = np.flatnonzero(surface)
    cell = int(cells[np.argmax(terrain.accumulation.reshape(-1)[cells])])
    for _ in range(terrain.grid.n_cells):
        if reach_id[cell] > 0:
            return int(reach_id[cell]) - 1
        code = int(flowdir[cell])
        if code in (0, 255):
            return -1
        cell += int(offsets[code])
    return -1


def _reach_near(terrain: TerrainModel, lonlat: tuple[float, float] | list[float],
                to_grid: Transformer) -> int:
    """The stream cell of largest upstream area within :data:`MAX_OUTLET_SNAP_M` of a
    point: its reach (0-based), −1 if none."""
    grid = terrain.grid
    x, y = to_grid.transform(*lonlat)
    rows, cols = grid.cells_at(np.array([x]), np.array([y]))
    if rows[0] < 0:
        return -1
    radius = int(MAX_OUTLET_SNAP_M / grid.cellsize_m)
    r0, c0 = max(int(rows[0]) - radius, 0), max(int(cols[0]) - radius, 0)
    window = terrain.reach_id[r0:int(rows[0]) + radius + 1, c0:int(cols[0]) + radius + 1]
    if not (window > 0).any():
        return -1
    acc = np.where(window > 0, terrain.accumulation[r0:r0 + window.shape[0],
                                                   c0:c0 + window.shape[1]], 0)
    k = np.unravel_index(int(np.argmax(acc)), acc.shape)
    return int(window[k]) - 1


def _reaches_inside(terrain: TerrainModel, surface: np.ndarray) -> np.ndarray:
    """Reaches with most of their cells on a lake surface."""
    n = len(terrain.reaches)
    ids = terrain.reach_id[surface]
    on = np.bincount(ids[ids > 0], minlength=n + 1)[1:]
    total = np.diff(terrain.reaches.path_start)
    return on > 0.5 * np.maximum(total, 1)
