"""Depression filling by Priority-Flood (Barnes et al. 2014) with slope tracing (Zhou et al. 2016).

The filled DEM has no pits: from every valid cell a path that never rises leads to an outlet
(domain edge or nodata). Filled depressions become flats; :mod:`floodwarn.kernels.flats` gives
their cells drainage directions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from floodwarn.kernels.d8 import D8_COL_STEP, D8_ROW_STEP

_LOW32 = np.uint64(0xFFFFFFFF)


@njit(cache=True, inline="always")
def _get(bits: np.ndarray, i: int | np.integer) -> bool:
    return (bits[i >> 6] >> np.uint64(i & 63)) & np.uint64(1) != 0


@njit(cache=True, inline="always")
def _set(bits: np.ndarray, i: int | np.integer) -> None:
    bits[i >> 6] |= np.uint64(1) << np.uint64(i & 63)


@njit(cache=True, inline="always")
def _sortable(bits: np.uint32) -> np.uint64:
    """Map float32 bit patterns to unsigned integers that sort like the floats."""
    if bits & np.uint32(0x80000000):
        return np.uint64(~bits & np.uint32(0xFFFFFFFF))
    return np.uint64(bits | np.uint32(0x80000000))


@njit(cache=True, inline="always")
def _sift_down(heap: np.ndarray, size: int, pos: int, key: np.uint64) -> None:
    """Place ``key`` at ``pos`` of a 4-ary min-heap and move it down to its place.

    A 4-ary heap is half as deep as a binary one and its four children share a cache line.
    """
    while True:
        first = 4 * pos + 1
        if first >= size:
            break
        best = first
        best_key = heap[first]
        last = min(first + 4, size)
        for child in range(first + 1, last):
            if heap[child] < best_key:
                best = child
                best_key = heap[child]
        if best_key >= key:
            break
        heap[pos] = best_key
        pos = best
    heap[pos] = key


@njit(cache=True)
def priority_flood_fill(dem: np.ndarray) -> np.ndarray:
    """Filled copy of ``dem``; see :func:`fill_in_place` for the algorithm."""
    z = dem.copy()
    fill_in_place(z)
    return z


@njit(cache=True)
def fill_in_place(z2d: np.ndarray) -> int:
    """Fill every depression up to its spill elevation.

    Priority-Flood (Barnes, Lehman & Mulla 2014a, Algorithm 2 with the plain-queue improvement
    of Algorithm 3): valid cells on the domain edge and next to nodata are the outlets and seed
    a priority queue ordered by elevation. The lowest cell of the frontier is popped; each
    unvisited neighbour not higher than it lies in a depression, is raised to its level and is
    flooded from a plain FIFO queue, which needs no ordering because all its cells share that
    level.

    Slope tracing (Zhou, Sun & Fu 2016): a neighbour not lower than a cell already closed keeps
    its own elevation, and so does every cell reached uphill from it. Such slope cells are traced
    with a plain queue; only a slope cell that still has a strictly lower unvisited neighbour
    enters the priority queue, which it leaves in elevation order to flood that neighbour. On
    real terrain most cells never touch the priority queue, so the O(N log N) algorithm runs at
    near-linear cost.

    The priority queue is a 4-ary heap of 64-bit keys: the float32 elevation mapped to an order
    preserving unsigned integer in the high half, the flat cell index in the low half (grids up
    to 2³² cells).

    Parameters
    ----------
    z2d : float32 array (rows, cols), elevation in m, NaN marks nodata; filled in place
        (never lowered; NaN stays NaN).

    Returns
    -------
    The number of cells raised.

    References
    ----------
    Barnes, R., Lehman, C., Mulla, D. (2014a) Priority-Flood: An optimal depression-filling and
    watershed-labeling algorithm for digital elevation models. Computers & Geosciences 62,
    117-127.
    Zhou, G., Sun, Z., Fu, S. (2016) An efficient variant of the Priority-Flood algorithm for
    filling depressions in raster digital elevation models. Computers & Geosciences 90, 87-96.
    """
    nr, nc = z2d.shape
    n = nr * nc
    z = z2d.reshape(n)
    n_raised = 0
    zbits = z.view(np.uint32)
    # One bit per cell: the working set of a 36-million-cell grid stays in cache (4.5 MB per
    # bitset instead of 36 MB of flags).
    closed = np.zeros((n + 63) >> 6, np.uint64)
    edge = np.zeros((n + 63) >> 6, np.uint64)
    offs = np.empty(8, np.int64)
    for k in range(8):
        offs[k] = D8_ROW_STEP[k] * nc + D8_COL_STEP[k]

    heap = np.empty(max(4 * (nr + nc), 4096), np.uint64)
    heap_size = 0

    n_nodata = 0
    for i in range(n):
        if np.isnan(z[i]):
            _set(closed, i)
            n_nodata += 1
    for c in range(nc):
        _set(edge, c)
        _set(edge, (nr - 1) * nc + c)
    for r in range(nr):
        _set(edge, r * nc)
        _set(edge, r * nc + nc - 1)

    # Seeds: the valid edge cells and the valid cells next to nodata. They are pushed unordered
    # and heapified once.
    for i in range(n):
        if _get(closed, i):
            continue
        seed = _get(edge, i)
        if not seed and n_nodata > 0:
            for k in range(8):
                if np.isnan(z[i + offs[k]]):
                    seed = True
                    break
        if seed:
            _set(closed, i)
            if heap_size == heap.shape[0]:
                bigger = np.empty(2 * heap_size, np.uint64)
                bigger[:heap_size] = heap
                heap = bigger
            heap[heap_size] = (_sortable(zbits[i]) << np.uint64(32)) | np.uint64(i)
            heap_size += 1
    for start in range((heap_size - 2) // 4, -1, -1):
        _sift_down(heap, heap_size, start, heap[start])

    queue = np.empty(max(n // 16, 4096), np.int64)
    nbr = np.empty(8, np.int64)

    while heap_size > 0:
        cell = np.int64(heap[0] & _LOW32)
        heap_size -= 1
        if heap_size > 0:
            _sift_down(heap, heap_size, 0, heap[heap_size])

        # FIFO of cells to expand; the sign bit of an entry marks a slope cell (not a pit cell).
        q_head = 0
        q_tail = 0
        current = cell
        is_pit = True
        while True:
            zc = z[current]
            n_nbr = 0
            if not _get(edge, current):
                for k in range(8):
                    nbr[k] = current + offs[k]
                n_nbr = 8
            else:
                r = current // nc
                c = current - r * nc
                for k in range(8):
                    rr = r + D8_ROW_STEP[k]
                    cc = c + D8_COL_STEP[k]
                    if 0 <= rr < nr and 0 <= cc < nc:
                        nbr[n_nbr] = rr * nc + cc
                        n_nbr += 1
            needs_heap = False
            for t in range(n_nbr):
                j = nbr[t]
                if _get(closed, j):
                    continue
                zj = z[j]
                if is_pit:
                    _set(closed, j)
                    if zj <= zc:
                        if zj < zc:
                            z[j] = zc
                            n_raised += 1
                        entry = j
                    else:
                        entry = -j - 1
                elif zj >= zc:
                    _set(closed, j)
                    entry = -j - 1
                else:
                    needs_heap = True
                    continue
                if q_tail == queue.shape[0]:
                    if q_head > 0:
                        queue[: q_tail - q_head] = queue[q_head:q_tail]
                        q_tail -= q_head
                        q_head = 0
                    if q_tail == queue.shape[0]:
                        bigger = np.empty(2 * q_tail, np.int64)
                        bigger[:q_tail] = queue[:q_tail]
                        queue = bigger
                queue[q_tail] = entry
                q_tail += 1
            if needs_heap:
                if heap_size == heap.shape[0]:
                    bigger = np.empty(2 * heap_size, np.uint64)
                    bigger[:heap_size] = heap
                    heap = bigger
                key = (_sortable(zbits[current]) << np.uint64(32)) | np.uint64(current)
                pos = heap_size
                heap_size += 1
                while pos > 0:
                    parent = (pos - 1) >> 2
                    if heap[parent] <= key:
                        break
                    heap[pos] = heap[parent]
                    pos = parent
                heap[pos] = key
            if q_head == q_tail:
                break
            entry = queue[q_head]
            q_head += 1
            if entry >= 0:
                current = entry
                is_pit = True
            else:
                current = -entry - 1
                is_pit = False
    return n_raised
