"""Flow accumulation over a D8 network in O(N), in topological order, on all cores."""

from __future__ import annotations

import numpy as np
from numba import get_num_threads, njit, prange

from floodwarn.kernels.d8 import code_offset_table

_FINISHED = 255  # state of a finished cell (int literals: numba caches int globals)
_FINISHED_CROSSING = 254  # finished, and its flow crosses into another band


@njit(parallel=True, cache=True)
def accumulate_into(fd: np.ndarray, nc: int, acc: np.ndarray, n_threads: int) -> int:
    """Add to every cell of ``acc`` the values of all cells upstream of it; return unfinished.

    ``acc`` holds each cell's own value on entry (1 for a cell count, a weight otherwise) and
    its accumulated value on return. The grid is cut into ``n_threads`` horizontal bands.

    Phase 1, bands in parallel: Kahn's topological walk inside each band. Every cell with no
    upstream neighbour in its band starts a walk downstream that adds its total to the next
    cell and stops where that cell still waits for other upstream branches, or where the flow
    leaves the band. Each cell is finished exactly once, so the cost is O(N).

    Phase 2, serial: a cell whose flow crosses into another band carries its band-local total;
    that total is added to every cell downstream of the crossing, down to the outlet. Summing
    these over all crossings gives the exact total, because every cell upstream of a cell X lies
    in exactly one band-local subtree that either ends at X's own band-local subtree or exits
    through one crossing above X. Crossings are few (one band edge per thread), so phase 2 costs
    a small fraction of phase 1.

    Cells on a flow cycle never finish; walks stop at them (no infinite loop on invalid D8).
    Returns the number of valid cells left unfinished, or -1 when a cycle runs through two
    bands (``acc`` is then partly accumulated: start again with ``n_threads=1``).

    References
    ----------
    Kahn, A.B. (1962) Topological sorting of large networks. Comm. ACM 5(11), 558-562.
    Barnes, R. (2017) Parallel non-divergent flow accumulation for trillion cell digital
    elevation models on desktops or clusters. Environmental Modelling & Software 92, 202-212
    (the band-local accumulation with a correction along crossing paths is a two-band-edge
    simplification of its tile/perimeter scheme).
    """
    n = fd.shape[0]
    nr = n // nc if nc > 0 else 0
    offset = code_offset_table(nc)
    n_bands = max(1, min(n_threads, nr // 64))
    band_first_row = np.empty(n_bands + 1, np.int64)
    for b in range(n_bands + 1):
        band_first_row[b] = (b * nr) // n_bands
    state = np.zeros(n, np.uint8)  # in-band in-degree while waiting; _FINISHED when done
    n_done = np.zeros(n_bands, np.int64)
    n_valid = np.zeros(n_bands, np.int64)
    for b in prange(n_bands):
        lo = band_first_row[b] * nc
        hi = band_first_row[b + 1] * nc
        valid = 0
        for i in range(lo, hi):
            d = fd[i]
            if d != 255:
                valid += 1
                if d != 0:
                    k = i + offset[d]
                    if lo <= k < hi:
                        state[k] += 1
        n_valid[b] = valid
        done = 0
        for i in range(lo, hi):
            if state[i] != 0 or fd[i] == 255:
                continue
            j = i
            while True:
                state[j] = _FINISHED
                done += 1
                d = fd[j]
                if d == 0:
                    break
                k = j + offset[d]
                if k < lo or k >= hi:
                    break
                acc[k] += acc[j]
                state[k] -= 1
                if state[k] != 0:
                    break
                j = k
        n_done[b] = done
    if n_bands > 1:
        # Cells in the last row of a band that drain into the next band, and cells in the first
        # row of a band that drain into the previous one, in increasing flat index. Their
        # band-local totals are read before any correction changes them.
        crossing_cells = np.empty(2 * (n_bands - 1) * nc, np.int64)
        count = 0
        for b in range(1, n_bands):
            edge = band_first_row[b] * nc
            for i in range(edge - nc, edge + nc):
                d = fd[i]
                crosses = d != 0 and d != 255 and (i < edge) != (i + offset[d] < edge)
                if crosses and state[i] == _FINISHED:
                    crossing_cells[count] = i
                    state[i] = _FINISHED_CROSSING
                    count += 1
        crossing_cells = crossing_cells[:count]
        carried = np.empty(count, acc.dtype)
        for c in range(count):
            carried[c] = acc[crossing_cells[c]]
        # A flow cycle through two bands looks finished to both; a walk meets one of its
        # crossings twice. Report it so the caller can redo the work in one band, where the
        # cycle stays unfinished and is counted.
        last_walk = np.full(count, -1, np.int64)
        for c in range(count):
            j = crossing_cells[c] + offset[fd[crossing_cells[c]]]
            while True:
                st = state[j]
                if st == _FINISHED_CROSSING:
                    at = np.searchsorted(crossing_cells, j)
                    if last_walk[at] == c:
                        return -1
                    last_walk[at] = c
                acc[j] += carried[c]
                if st < _FINISHED_CROSSING:
                    break  # a cell on a cycle: it gets the inflow, as in phase 1, and stops it
                d = fd[j]
                if d == 0:
                    break
                j += offset[d]
    return int(n_valid.sum() - n_done.sum())


def accumulate_cells(flowdir: np.ndarray) -> tuple[np.ndarray, int]:
    """Number of cells draining through each cell, the cell itself included.

    Parameters
    ----------
    flowdir : C-contiguous uint8 array (rows, cols), D8 in ESRI encoding (0 outlet, 255 nodata).

    Returns
    -------
    (accumulation, n_unfinished): uint32 array (0 on nodata), and the number of valid cells
    that could not be finished because they lie on a flow cycle (0 for a valid D8).

    References
    ----------
    Jenson, S.K. & Domingue, J.O. (1988) Extracting topographic structure from digital
    elevation data for geographic information system analysis. PE&RS 54(11), 1593-1600.
    Algorithm: see ``accumulate_into`` (Kahn 1962; Barnes 2017).
    """
    nr, nc = flowdir.shape
    fd = np.ascontiguousarray(flowdir).reshape(nr * nc)
    acc = np.ones(nr * nc, np.uint32)
    n_unfinished = accumulate_into(fd, nc, acc, get_num_threads())
    if n_unfinished < 0:
        acc[:] = 1
        n_unfinished = accumulate_into(fd, nc, acc, 1)
    acc[fd == 255] = 0
    return acc.reshape(nr, nc), n_unfinished


def accumulate_weights(flowdir: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, int]:
    """Sum of ``weights`` over each cell and everything upstream of it (float64, NaN on nodata).

    ``weights`` may be any per-cell quantity (rainfall depth, runoff volume, area), in its own
    units. Algorithm and references: see ``accumulate_into`` (Kahn 1962; Barnes 2017).
    """
    nr, nc = flowdir.shape
    fd = np.ascontiguousarray(flowdir).reshape(nr * nc)
    nodata = fd == 255
    own = np.where(nodata, 0.0, np.asarray(weights, np.float64).reshape(nr * nc))
    acc = own.copy()
    n_unfinished = accumulate_into(fd, nc, acc, get_num_threads())
    if n_unfinished < 0:
        acc = own
        n_unfinished = accumulate_into(fd, nc, acc, 1)
    acc[nodata] = np.nan
    return acc.reshape(nr, nc), n_unfinished
