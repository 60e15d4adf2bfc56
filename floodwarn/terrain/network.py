"""Stream network: stream cells, reaches split at confluences and a maximum length, the reach
graph with its topological and Strahler order, and per-reach attributes a routing model needs."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from floodwarn.errors import InputError, TerrainModelError
from floodwarn.kernels.streams import extract_reaches, reach_paths, reach_topology
from floodwarn.terrain.grid import Grid

#: Default upstream area that starts a stream, km².
DEFAULT_STREAM_AREA_KM2 = 1.0
#: Default maximum reach length, m: short enough for Muskingum-Cunge sub-reaches at 90 m.
DEFAULT_MAX_REACH_LENGTH_M = 2000.0


@dataclass(frozen=True, eq=False)
class ReachTable:
    """The reaches of a stream network, one row per reach, indexed by ``id - 1``.

    Attributes (all numpy arrays of length ``n``)
    ----------
    id : int32, 1…n; 0 is never a reach (it means "none"/"outlet" elsewhere).
    downstream_id : int32, the reach this one flows into; 0 where it leaves the domain.
    strahler : uint8, Strahler (1957) order.
    length_m : float64, flow-path length (the step out of the last cell included).
    drop_m : float64, conditioned elevation at the head minus at the cell it flows into.
    slope : float64, ``drop_m / length_m`` (m/m, ≥ 0; 0 on filled flats).
    upstream_area_km2 : float64, area draining through the reach's last cell.
    catchment_area_km2 : float64, area of the cells that first drain into this reach.
    head_cell, last_cell : int64, flat (row-major) cell index of the first and last cell.
    topo_order : int32, reach ids upstream-first: routing processes reaches in this order.
    path_start, path_cells : CSR cells of each reach in downstream order (for geometry).
    """

    id: np.ndarray
    downstream_id: np.ndarray
    strahler: np.ndarray
    length_m: np.ndarray
    drop_m: np.ndarray
    slope: np.ndarray
    upstream_area_km2: np.ndarray
    catchment_area_km2: np.ndarray
    head_cell: np.ndarray
    last_cell: np.ndarray
    topo_order: np.ndarray
    path_start: np.ndarray
    path_cells: np.ndarray

    def __len__(self) -> int:
        return int(self.id.shape[0])

    def path(self, reach_id: int) -> np.ndarray:
        """Flat cell indices of one reach, head first."""
        if not 1 <= reach_id <= len(self):
            raise InputError(f"reach id {reach_id} does not exist (valid: 1…{len(self)}).")
        r = reach_id - 1
        return self.path_cells[self.path_start[r] : self.path_start[r + 1]]

    def line_coordinates(self, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """Polyline vertices of every reach, CSR: ``(offsets, xy)``.

        A reach runs through its cell centres and on to the centre of the first cell of the
        reach it flows into, so that lines connect at confluences. A reach that leaves the
        domain ends half a cell beyond its last cell, in the direction of its last step (east
        for a reach of a single cell).
        """
        n = len(self)
        counts = np.diff(self.path_start) + 1
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        xy = np.empty((int(offsets[-1]), 2), np.float64)
        x, y = grid.cell_centres(self.path_cells)
        dest = np.ones(int(offsets[-1]), bool)
        dest[offsets[1:] - 1] = False  # the closing vertex of each line
        xy[dest, 0] = x
        xy[dest, 1] = y
        last = offsets[1:] - 1
        ds = self.downstream_id
        has_ds = ds > 0
        ds_head = self.head_cell[np.maximum(ds - 1, 0)]
        dx, dy = grid.cell_centres(ds_head)
        # Leaving the domain: continue the last step by half a cell.
        px, py = xy[last - 1, 0], xy[last - 1, 1]
        single = counts == 2
        prev_x = np.where(single, px, xy[np.maximum(last - 2, 0), 0])
        prev_y = np.where(single, py, xy[np.maximum(last - 2, 0), 1])
        step_x = np.where(single, grid.cellsize_m, px - prev_x)
        step_y = np.where(single, 0.0, py - prev_y)
        xy[last, 0] = np.where(has_ds, dx, px + 0.5 * step_x)
        xy[last, 1] = np.where(has_ds, dy, py + 0.5 * step_y)
        return offsets, xy


def stream_threshold_cells(stream_area_km2: float, grid: Grid) -> int:
    """Upstream cells equivalent to ``stream_area_km2`` on ``grid`` (at least 1)."""
    if not (stream_area_km2 > 0 and math.isfinite(stream_area_km2)):
        raise InputError(
            f"stream area threshold must be a positive number of km², got {stream_area_km2}."
        )
    return max(1, math.ceil(stream_area_km2 / grid.cell_area_km2 - 1e-9))


def extract_stream_network(
    conditioned: np.ndarray,
    flowdir: np.ndarray,
    accumulation: np.ndarray,
    grid: Grid,
    *,
    stream_area_km2: float = DEFAULT_STREAM_AREA_KM2,
    max_reach_length_m: float = DEFAULT_MAX_REACH_LENGTH_M,
) -> tuple[np.ndarray, ReachTable]:
    """Stream cells (upstream area ≥ ``stream_area_km2``) split into reaches.

    Reaches start at sources and confluences and are cut when their length reaches
    ``max_reach_length_m``. Returns the ``reach_id`` raster (int32, 0 off streams) and the
    :class:`ReachTable` (catchment areas still 0: they come with HAND).

    References
    ----------
    Tarboton, Bras & Rodriguez-Iturbe (1991) Hydrological Processes 5(1) (area threshold);
    Strahler, A.N. (1957) Trans. AGU 38(6) (stream order).
    """
    if not max_reach_length_m > 0:
        raise InputError(f"maximum reach length must be positive (m), got {max_reach_length_m}.")
    threshold = stream_threshold_cells(stream_area_km2, grid)
    (
        reach_id,
        downstream,
        head_cell,
        last_cell,
        length_m,
        drop_m,
        path_start,
        path_cells,
        _downstream_cell,
    ) = extract_reaches(
        flowdir, accumulation, conditioned, threshold, grid.cellsize_m, float(max_reach_length_m)
    )
    order, strahler, n_unordered = reach_topology(downstream)
    if n_unordered:
        raise TerrainModelError(
            f"stream network: {n_unordered} reaches lie on a cycle; the flow directions are "
            "inconsistent."
        )
    n = downstream.shape[0]
    acc_flat = accumulation.reshape(-1)
    table = ReachTable(
        id=np.arange(1, n + 1, dtype=np.int32),
        downstream_id=downstream,
        strahler=strahler,
        length_m=length_m,
        drop_m=drop_m,
        slope=np.divide(drop_m, length_m, out=np.zeros(n), where=length_m > 0),
        upstream_area_km2=acc_flat[last_cell].astype(np.float64) * grid.cell_area_km2,
        catchment_area_km2=np.zeros(n),
        head_cell=head_cell,
        last_cell=last_cell,
        topo_order=order,
        path_start=path_start,
        path_cells=path_cells,
    )
    return reach_id, table


def with_catchment_areas(table: ReachTable, catchment_id: np.ndarray, grid: Grid) -> ReachTable:
    """Copy of ``table`` with ``catchment_area_km2`` counted from the catchment raster."""
    counts = np.bincount(catchment_id.reshape(-1), minlength=len(table) + 1)[1 : len(table) + 1]
    return replace(table, catchment_area_km2=counts.astype(np.float64) * grid.cell_area_km2)


def rebuild_reach_table(
    flowdir: np.ndarray,
    reach_id: np.ndarray,
    *,
    downstream_id: np.ndarray,
    strahler: np.ndarray,
    length_m: np.ndarray,
    drop_m: np.ndarray,
    upstream_area_km2: np.ndarray,
    catchment_area_km2: np.ndarray,
    head_cell: np.ndarray,
    last_cell: np.ndarray,
) -> ReachTable:
    """A :class:`ReachTable` from stored attributes, its paths followed again on ``flowdir``."""
    n = downstream_id.shape[0]
    path_start, path_cells = reach_paths(flowdir, reach_id, head_cell.astype(np.int64))
    order, _strahler, n_unordered = reach_topology(downstream_id.astype(np.int32))
    if n_unordered:
        raise TerrainModelError(f"stored reach graph has {n_unordered} reaches on a cycle.")
    return ReachTable(
        id=np.arange(1, n + 1, dtype=np.int32),
        downstream_id=downstream_id.astype(np.int32),
        strahler=strahler.astype(np.uint8),
        length_m=length_m.astype(np.float64),
        drop_m=drop_m.astype(np.float64),
        slope=np.divide(drop_m, length_m, out=np.zeros(n), where=length_m > 0),
        upstream_area_km2=upstream_area_km2.astype(np.float64),
        catchment_area_km2=catchment_area_km2.astype(np.float64),
        head_cell=head_cell.astype(np.int64),
        last_cell=last_cell.astype(np.int64),
        topo_order=order,
        path_start=path_start,
        path_cells=path_cells,
    )
