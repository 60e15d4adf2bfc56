"""Stream network from an upstream-area threshold: reaches, their graph and Strahler order."""

from __future__ import annotations

import numpy as np
from numba import njit

from floodwarn.kernels.d8 import code_offset_table, code_step_length_table


@njit(cache=True)
def extract_reaches(
    flowdir: np.ndarray,
    accumulation: np.ndarray,
    z: np.ndarray,
    threshold_cells: int,
    cellsize: float,
    max_length: float,
) -> tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]:
    """Stream cells, split into reaches at confluences and at a maximum length.

    A cell is a stream cell when ``accumulation >= threshold_cells``; accumulation grows
    downstream, so the cell below a stream cell is a stream cell too and the network is closed
    downstream. A reach starts at every source (no upstream stream cell) and every confluence
    (two or more upstream stream cells), and runs downstream cell by cell until the next
    confluence, an outlet, or until its length reaches ``max_length``, where a new reach starts.

    Reach ids run from 1 in the order reaches are found; 0 means "no reach".

    Parameters
    ----------
    flowdir : uint8 (rows, cols), ESRI D8.
    accumulation : uint32 (rows, cols), upstream cells including the cell itself.
    z : float32 (rows, cols), conditioned elevation in m.
    threshold_cells : minimum upstream cells of a stream cell (≥ 1).
    cellsize : cell size in m.
    max_length : maximum reach length in m (``inf`` for no limit).

    Returns
    -------
    reach_id : int32 (rows, cols), the reach of each stream cell, 0 elsewhere.
    downstream : int32 (n_reaches,), id of the reach each reach flows into, 0 at an outlet.
    head_cell, last_cell : int64 (n_reaches,), flat index of the first and last cell.
    length_m : float64, length along the flow path, the step out of the last cell included
        (one cell size for an outlet cell).
    drop_m : float64, elevation of the head minus elevation of the cell the reach flows into
        (of the last cell at an outlet).
    path_start : int64 (n_reaches + 1,), CSR offsets into ``path_cells``.
    path_cells : int64, the cells of every reach in downstream order.
    downstream_cell : int64 (n_reaches,), the cell the reach flows into, -1 at an outlet.

    References
    ----------
    Tarboton, D.G., Bras, R.L., Rodriguez-Iturbe, I. (1991) On the extraction of channel
    networks from digital elevation data. Hydrological Processes 5(1), 81-100.
    O'Callaghan, J.F. & Mark, D.M. (1984) (D8 network from an accumulation threshold).
    """
    nr, nc = flowdir.shape
    n = nr * nc
    fd = flowdir.reshape(n)
    acc = accumulation.reshape(n)
    zf = z.reshape(n)
    offset = code_offset_table(nc)
    step = code_step_length_table(cellsize)
    thr = np.uint32(max(threshold_cells, 1))

    stream_indeg = np.zeros(n, np.uint8)
    n_stream = 0
    for i in range(n):
        d = fd[i]
        if d != 255 and acc[i] >= thr:
            n_stream += 1
            if d != 0:
                stream_indeg[i + offset[d]] += 1

    reach_id = np.zeros(n, np.int32)
    path_cells = np.empty(n_stream, np.int64)
    # At most one reach per stream cell.
    cap = n_stream + 1
    head_cell = np.empty(cap, np.int64)
    last_cell = np.empty(cap, np.int64)
    length_m = np.empty(cap, np.float64)
    drop_m = np.empty(cap, np.float64)
    path_start = np.empty(cap + 1, np.int64)
    downstream_cell = np.empty(cap, np.int64)

    pos = 0
    n_reach = 0
    for i in range(n):
        if fd[i] == 255 or acc[i] < thr or stream_indeg[i] == 1:
            continue
        # i is a source or a confluence: walk its chain down to the next one.
        rid = n_reach
        n_reach += 1
        head_cell[rid] = i
        path_start[rid] = pos
        length = 0.0
        j = i
        while True:
            reach_id[j] = rid + 1
            path_cells[pos] = j
            pos += 1
            d = fd[j]
            if d == 0:
                length += cellsize
                last_cell[rid] = j
                length_m[rid] = length
                drop_m[rid] = zf[head_cell[rid]] - zf[j]
                downstream_cell[rid] = -1
                break
            k = j + offset[d]
            length += step[d]
            if stream_indeg[k] != 1:
                last_cell[rid] = j
                length_m[rid] = length
                drop_m[rid] = zf[head_cell[rid]] - zf[k]
                downstream_cell[rid] = k
                break
            if length >= max_length:
                last_cell[rid] = j
                length_m[rid] = length
                drop_m[rid] = zf[head_cell[rid]] - zf[k]
                downstream_cell[rid] = k
                rid = n_reach
                n_reach += 1
                head_cell[rid] = k
                path_start[rid] = pos
                length = 0.0
            j = k
    path_start[n_reach] = pos

    downstream = np.zeros(n_reach, np.int32)
    for r in range(n_reach):
        if downstream_cell[r] >= 0:
            downstream[r] = reach_id[downstream_cell[r]]
    return (
        reach_id.reshape(nr, nc),
        downstream,
        head_cell[:n_reach].copy(),
        last_cell[:n_reach].copy(),
        length_m[:n_reach].copy(),
        drop_m[:n_reach].copy(),
        path_start[: n_reach + 1].copy(),
        path_cells[:pos].copy(),
        downstream_cell[:n_reach].copy(),
    )


@njit(cache=True)
def reach_topology(downstream: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Topological order (upstream first) and Strahler order of a reach graph.

    ``downstream[r]`` is the 1-based id of the reach that reach ``r + 1`` flows into, 0 at an
    outlet. Strahler (1957): a reach with no upstream reach has order 1; otherwise its order is
    the highest order among its upstream reaches, plus one when two or more of them share that
    highest order.

    Returns
    -------
    order : int32 (n,), reach ids (1-based) in topological order, upstream before downstream.
    strahler : uint8 (n,), Strahler order per reach (index = id - 1).
    n_unordered : reaches left out of ``order`` because they lie on a cycle (0 for a valid
        network).

    References
    ----------
    Strahler, A.N. (1957) Quantitative analysis of watershed geomorphology. Transactions of the
    American Geophysical Union 38(6), 913-920.
    Kahn, A.B. (1962) Topological sorting of large networks. Comm. ACM 5(11), 558-562.
    """
    n = downstream.shape[0]
    indeg = np.zeros(n, np.int32)
    for r in range(n):
        if downstream[r] > 0:
            indeg[downstream[r] - 1] += 1
    max_up = np.zeros(n, np.uint8)
    n_max_up = np.zeros(n, np.int32)
    strahler = np.zeros(n, np.uint8)
    order = np.empty(n, np.int32)
    head = 0
    tail = 0
    for r in range(n):
        if indeg[r] == 0:
            order[tail] = r + 1
            tail += 1
    while head < tail:
        r = order[head] - 1
        head += 1
        if max_up[r] == 0:
            s = np.uint8(1)
        elif n_max_up[r] >= 2:
            s = np.uint8(max_up[r] + 1)
        else:
            s = max_up[r]
        strahler[r] = s
        dn = downstream[r] - 1
        if dn >= 0:
            if s > max_up[dn]:
                max_up[dn] = s
                n_max_up[dn] = 1
            elif s == max_up[dn]:
                n_max_up[dn] += 1
            indeg[dn] -= 1
            if indeg[dn] == 0:
                order[tail] = dn + 1
                tail += 1
    return order[:tail].copy(), strahler, n - tail


@njit(cache=True)
def reach_paths(
    flowdir: np.ndarray, reach_id: np.ndarray, head_cell: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cells of each reach in downstream order, followed from its head along D8 (CSR layout).

    Used to rebuild the paths of a stored terrain model from its ``reach_id`` raster.

    Returns ``(path_start, path_cells)``; reach ``r`` (id ``r + 1``) owns
    ``path_cells[path_start[r]:path_start[r + 1]]``.

    References
    ----------
    O'Callaghan, J.F. & Mark, D.M. (1984) (following D8 paths).
    """
    nr, nc = flowdir.shape
    fd = flowdir.reshape(nr * nc)
    rid = reach_id.reshape(nr * nc)
    offset = code_offset_table(nc)
    n_reach = head_cell.shape[0]
    total = 0
    for i in range(nr * nc):
        if rid[i] > 0:
            total += 1
    path_start = np.empty(n_reach + 1, np.int64)
    path_cells = np.empty(total, np.int64)
    pos = 0
    for r in range(n_reach):
        path_start[r] = pos
        j = head_cell[r]
        while pos < total and rid[j] == r + 1:
            path_cells[pos] = j
            pos += 1
            d = fd[j]
            if d == 0 or d == 255:
                break
            j = j + offset[d]
    path_start[n_reach] = pos
    return path_start, path_cells[:pos].copy()
