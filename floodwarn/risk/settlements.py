"""Flooding of each settlement (depth, share, people, lead time) and its warning level."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely import contains_xy
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from floodwarn.errors import InputError
from floodwarn.inundation.depth import Inundation
from floodwarn.parameters import LEVELS, Footprint, LevelRules
from floodwarn.terrain.grid import Grid
from floodwarn.terrain.model import TerrainModel
from floodwarn.terrain.sampling import DEFAULT_MAX_SNAP_M


def footprint_radius_m(population: np.ndarray, footprint: Footprint) -> np.ndarray:
    """Radius (m) of the circle a settlement's people occupy at ``people_per_km2``:
    r = √(P / (π·density)), kept within the footprint's bounds."""
    area_m2 = np.asarray(population, np.float64) / footprint.people_per_km2 * 1e6
    return np.clip(np.sqrt(area_m2 / np.pi), footprint.min_radius_m, footprint.max_radius_m)


def footprint_cells(grid: Grid, geom: BaseGeometry, radius_m: float, land: np.ndarray, *,
                    max_snap_m: float = DEFAULT_MAX_SNAP_M
                    ) -> tuple[int, int, int, int, np.ndarray] | None:
    """The land cells of a footprint: a disc of ``radius_m`` around a point (always holding
    the point's own cell), or a polygon's cells; as a window ``(r0, r1, c0, c1)`` of the grid
    and a boolean mask over it. A point whose disc holds no land (a coastal site on the
    generalised shoreline) is moved to the nearest land cell within ``max_snap_m``. None when
    no land cell is found."""
    t = grid.transform
    nr, nc = grid.shape
    cell = grid.cellsize_m
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    col_f = (point.x - t.c) / t.a
    row_f = (point.y - t.f) / t.e
    if geom.geom_type == "Point":
        half = radius_m / cell + 1
    else:
        minx, miny, maxx, maxy = geom.bounds
        half = max(maxx - minx, maxy - miny) / cell + 1
    r0, r1 = int(max(row_f - half, 0)), int(min(row_f + half + 1, nr))
    c0, c1 = int(max(col_f - half, 0)), int(min(col_f + half + 1, nc))
    if r0 >= r1 or c0 >= c1:
        return None
    rr, cc = np.mgrid[r0:r1, c0:c1]
    if geom.geom_type == "Point":
        inside = np.hypot(rr + 0.5 - row_f, cc + 0.5 - col_f) * cell <= radius_m
        inside |= (rr == int(np.floor(row_f))) & (cc == int(np.floor(col_f)))
    else:
        inside = contains_xy(geom, t.c + (cc + 0.5) * t.a, t.f + (rr + 0.5) * t.e)
    inside &= land[r0:r1, c0:c1]
    if not inside.any() and geom.geom_type == "Point" and radius_m < max_snap_m:
        near = footprint_cells(grid, geom, max_snap_m, land, max_snap_m=0.0)
        if near is None:
            return None
        n_r0, _, n_c0, _, n_inside = near
        rows, cols = np.nonzero(n_inside)
        k = int(np.argmin(np.hypot(rows + n_r0 + 0.5 - row_f, cols + n_c0 + 0.5 - col_f)))
        x = t.c + (cols[k] + n_c0 + 0.5) * t.a
        y = t.f + (rows[k] + n_r0 + 0.5) * t.e
        return footprint_cells(grid, Point(x, y), radius_m, land, max_snap_m=0.0)
    return (r0, r1, c0, c1, inside) if inside.any() else None


def within_domain(terrain: TerrainModel, layer: gpd.GeoDataFrame,
                  water: np.ndarray | None = None) -> np.ndarray:
    """Which features of ``layer`` the terrain model can see: a land cell at the feature or
    within the coastal snapping distance of it (see :func:`footprint_cells`); with ``water``
    (channels and lakes), cells under it are not land."""
    land = terrain.flowdir != 255
    if water is not None:
        land = land & ~water
    projected = layer.geometry.to_crs(terrain.grid.crs)
    return np.array([geom is not None and not geom.is_empty and
                     footprint_cells(terrain.grid, geom, terrain.grid.cellsize_m, land)
                     is not None for geom in projected], bool)


def _validate(settlements: gpd.GeoDataFrame) -> None:
    if settlements.crs is None:
        raise InputError("settlements have no CRS; set one (e.g. EPSG:4326).")
    if len(settlements) == 0:
        raise InputError("no settlements: the layer is empty.")
    for column in ("id", "name", "population"):
        if column not in settlements.columns:
            raise InputError(f"settlements: required field {column!r} is missing.")
    bad_geom = settlements.geometry.isna() | settlements.geometry.is_empty | \
        ~settlements.geometry.is_valid
    if bad_geom.any():
        row = settlements[bad_geom.to_numpy()].iloc[0]
        raise InputError(f"settlement {row['id']} ({row['name']}) has an empty or invalid "
                         "geometry; fix or drop it.")
    population = pd.to_numeric(settlements["population"], errors="coerce")
    bad_pop = ~(population > 0)
    if bad_pop.any():
        row = settlements[bad_pop.to_numpy()].iloc[0]
        raise InputError(f"settlement {row['id']} ({row['name']}) has population "
                         f"{row['population']}; it must be a positive number of people.")


@dataclass(frozen=True, eq=False)
class SettlementFootprints:
    """The land cells each settlement's people occupy, found once per run and reused for every
    member's flood map: footprint ``k`` is ``cells[offsets[k]:offsets[k + 1]]`` (flat grid
    indices, in row-major order), ``population`` and ``radius_m`` per settlement."""

    cells: np.ndarray
    offsets: np.ndarray
    population: np.ndarray
    radius_m: np.ndarray

    @property
    def n_settlements(self) -> int:
        return int(self.offsets.shape[0] - 1)


def settlement_footprints(terrain: TerrainModel, settlements: gpd.GeoDataFrame,
                          rules: LevelRules, water: np.ndarray) -> SettlementFootprints:
    """Each settlement's footprint: points become circles of :func:`footprint_radius_m`
    (polygons keep their shape), over land cells only (river channels and lakes, ``water``,
    are not land).

    Raises InputError naming the settlement for empty or invalid geometry, missing or
    non-positive population, or a footprint outside the terrain (a settlement the model
    cannot see must never read as safe).
    """
    _validate(settlements)
    grid = terrain.grid
    projected = settlements.geometry.to_crs(grid.crs)
    population = settlements["population"].to_numpy(np.float64)
    radius = footprint_radius_m(population, rules.footprint)
    land = (terrain.flowdir != 255) & ~water
    parts = []
    for i, geom in enumerate(projected):  # per settlement; the cells are handled as arrays
        window = footprint_cells(grid, geom, radius[i], land)
        if window is None:
            raise InputError(
                f"settlement {settlements['id'].iloc[i]} ({settlements['name'].iloc[i]}) has no "
                "land cell of the terrain model within its footprint (outside the terrain "
                "domain, off the coast, under a lake or off the grid); check its position or "
                "build the terrain over it.")
        r0, _, c0, _, inside = window
        rows, cols = np.nonzero(inside)
        parts.append((rows + r0) * grid.shape[1] + cols + c0)
    offsets = np.zeros(len(parts) + 1, np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    return SettlementFootprints(cells=np.concatenate(parts).astype(np.int64), offsets=offsets,
                                population=population, radius_m=radius)


def footprint_flooding(footprints: SettlementFootprints, flood: Inundation,
                       catchment_id: np.ndarray, reach_return_period: np.ndarray,
                       rules: LevelRules, *, index: pd.Index | None = None) -> pd.DataFrame:
    """Flooding metrics of every settlement over its footprint's land cells, for all
    settlements at once (segment reductions over the concatenated footprints):
    ``max_depth_m`` and ``mean_depth_m`` (dry and undrained cells count as 0),
    ``flooded_share`` (cells at least ``wet_depth_m`` deep), ``people_exposed`` =
    population × flooded share, ``hours_to_flooding`` (earliest flooding of a flooded cell,
    hours after the forecast start; NaN if none), ``flooding_reach_id`` and
    ``return_period_years`` of the reach that floods the deepest cell (the first such cell in
    row-major order), and ``risk_score`` = people exposed × mean depth of the flooded cells
    (person-metres, for ranking)."""
    starts = footprints.offsets[:-1]
    counts = np.diff(footprints.offsets)
    segment = np.repeat(np.arange(footprints.n_settlements), counts)
    depth = np.nan_to_num(flood.depth_m.reshape(-1)[footprints.cells], nan=0.0)
    wet = depth >= rules.wet_depth_m
    n_wet = np.add.reduceat(wet.astype(np.int64), starts)
    share = n_wet / counts
    people = np.round(footprints.population * share)
    wet_depth_sum = np.add.reduceat(np.where(wet, depth, 0.0), starts)
    first_h = np.where(wet, flood.first_flooding_h.reshape(-1)[footprints.cells], np.inf)
    hours = np.fmin.reduceat(first_h, starts)
    # The deepest cell of each footprint; lexsort is stable, so ties keep row-major order.
    deepest = np.lexsort((-depth, segment))[starts]
    reach = catchment_id.reshape(-1)[footprints.cells[deepest]].astype(np.int64)
    rp = np.asarray(reach_return_period, np.float64)
    frame = pd.DataFrame({
        "max_depth_m": np.maximum.reduceat(depth, starts),
        "mean_depth_m": np.add.reduceat(depth, starts) / counts,
        "flooded_share": share,
        "people_exposed": people.astype(np.int64),
        "hours_to_flooding": np.where(np.isfinite(hours), hours, np.nan),
        "return_period_years": np.where(reach > 0, rp[np.maximum(reach, 1) - 1], 0.0),
        "flooding_reach_id": reach,
        "risk_score": np.where(n_wet > 0, people * wet_depth_sum / np.maximum(n_wet, 1), 0.0),
        "footprint_radius_m": footprints.radius_m,
    }, index=index)
    return frame


def settlement_flooding(
    terrain: TerrainModel,
    flood: Inundation,
    reach_return_period: np.ndarray,
    settlements: gpd.GeoDataFrame,
    rules: LevelRules,
) -> pd.DataFrame:
    """Flooding metrics of every settlement (:func:`footprint_flooding`) on footprints found
    for this flood map's water cells (:func:`settlement_footprints`)."""
    footprints = settlement_footprints(terrain, settlements, rules, flood.water)
    return footprint_flooding(footprints, flood, terrain.catchment_id, reach_return_period,
                              rules, index=settlements.index)


def warning_levels(metrics: pd.DataFrame, rules: LevelRules) -> tuple[np.ndarray, np.ndarray]:
    """Level of every settlement (``verde`` … ``roja``) and the rule that set it.

    Rules are tried from the most severe level down; a level applies when every bound of any
    one of its conditions holds (a missing metric, e.g. no flooding time, fails its bound).
    """
    n = len(metrics)
    level = np.full(n, LEVELS[0], dtype=object)
    reason = np.full(n, "no rule met", dtype=object)
    decided = np.zeros(n, bool)
    for rule in rules.levels:
        for k, condition in enumerate(rule.any):
            holds = np.ones(n, bool)
            for metric, bound in condition.items():
                values = metrics[metric].to_numpy(np.float64)
                if bound.min is not None:
                    holds &= values >= bound.min
                if bound.max is not None:
                    holds &= values <= bound.max
            new = holds & ~decided
            level[new] = rule.level
            reason[new] = f"{rule.level} condition {k + 1}: " + ", ".join(
                f"{m} {'≥ ' + format(b.min, 'g') if b.min is not None else ''}"
                f"{' ' if b.min is not None and b.max is not None else ''}"
                f"{'≤ ' + format(b.max, 'g') if b.max is not None else ''}"
                for m, b in condition.items())
            decided |= holds
    return level, reason


def ensemble_levels(member_levels: np.ndarray, rules: LevelRules
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Level of every settlement from its members' levels (n_members, n_settlements).

    P(≥ L) is the share of members at level L or above; the level is the most severe L with
    P(≥ L) ≥ ``rules.ensemble_min_probability.L``, else verde. Returns the levels, the reason
    and the probabilities ``prob_amarilla``, ``prob_naranja``, ``prob_roja`` (each P(≥ L)).
    """
    rank = np.vectorize(LEVELS.index, otypes=[np.int64])(np.asarray(member_levels, object))
    probs = {f"prob_{lv}": (rank >= k).mean(axis=0) for k, lv in enumerate(LEVELS) if k > 0}
    n = rank.shape[1]
    level = np.full(n, LEVELS[0], dtype=object)
    reason = np.full(n, "ensemble: no level likely enough", dtype=object)
    thresholds = rules.ensemble_min_probability
    for lv in reversed(LEVELS[1:]):
        p = probs[f"prob_{lv}"]
        need = getattr(thresholds, lv)
        new = (p >= need) & (level == LEVELS[0])
        level[new] = lv
        reason[new] = [f"ensemble: P(≥ {lv}) = {v:.2f} ≥ {need:g}" for v in p[new]]
    return level, reason, probs
