"""Depression filling: tiled, parallel Priority-Flood (Barnes 2016) with slope tracing (Zhou 2016).

The filled DEM has no pits: from every valid cell a path that never rises leads to an outlet
(domain edge or nodata). Filled depressions become flats; :mod:`floodwarn.kernels.flats` gives
their cells drainage directions.

Why tiles: a priority flood over a whole 36-million-cell grid wanders across memory in
elevation order and runs at cache-miss speed (about 250 ns per cell here). Filled tile by tile,
each flood stays in cache, both cores work, and a small graph of spill elevations between tile
watersheds joins the tiles exactly (Barnes 2016). The result is identical to a flood of the
whole grid.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from floodwarn.kernels.heap import heap_push, heap_sift_down, sortable_key

#: Tile side in cells: a tile's elevations, labels and queue (about 4 MB) stay in cache.
DEFAULT_TILE = 512
#: Largest tile side: a tile's watershed labels (one per perimeter cell at most) fit 15 bits.
MAX_TILE = 8000

_LOW31 = np.uint64(0x7FFFFFFF)
_LOW32 = np.uint64(0xFFFFFFFF)
# Heap entries: sortable elevation in the high 32 bits, tile-cell index in the low 31 bits,
# bit 31 set for a tile-perimeter seed (labelled lazily when popped, see _fill_tile).
_SEED_FLAG = np.uint64(0x80000000)
# Tile labels are uint16: 0 unvisited, 1 the outside (domain edge and nodata), 2… tile
# watersheds; 0x7FFF marks cells outside the tile or nodata; bit 15 marks a raised cell.
_UNVISITED = np.uint16(0)
_OUTSIDE = np.uint16(1)
_BLOCKED = np.uint16(0x7FFF)
_RAISED = np.uint16(0x8000)
_LABEL = np.uint16(0x7FFF)
_FIRST_WATERSHED = 2


@njit(cache=True, inline="always")
def _keep_lowest_spill(keys: np.ndarray, vals: np.ndarray, a: int, b: int, w: float) -> int:
    """Keep the lowest spill elevation per label pair in an open-addressing table.

    Returns 1 when the pair is new, 0 when it was already there.
    """
    if a > b:
        a, b = b, a
    key = (np.int64(a) << 16) | np.int64(b)
    mask = keys.shape[0] - 1
    slot = (key * 0x9E3779B1) & mask
    while True:
        k = keys[slot]
        if k == key:
            if w < vals[slot]:
                vals[slot] = w
            return 0
        if k == -1:
            keys[slot] = key
            vals[slot] = w
            return 1
        slot = (slot + 1) & mask


@njit(cache=True)
def _fill_tile(
    zt: np.ndarray, lab: np.ndarray, keys: np.ndarray, vals: np.ndarray, queue: np.ndarray
) -> tuple[int, int]:
    """Fill one tile as if its perimeter drained freely, labelling the watershed of each cell.

    Priority-Flood (Barnes, Lehman & Mulla 2014a, Algorithm 2 with the plain-queue improvement
    of Algorithm 3): outlets seed a priority queue ordered by elevation; the lowest frontier
    cell is popped; each unvisited neighbour not higher than it lies in a depression, is raised
    to its level and flooded from a plain FIFO queue.

    Slope tracing (Zhou, Sun & Fu 2016): a neighbour not lower than a closed cell keeps its
    elevation, and so does every cell reached uphill from it; such slope cells are traced with
    the plain queue, and only one that still has a strictly lower unvisited neighbour enters the
    priority queue. On real terrain most cells never touch the priority queue.

    Tile labels (Barnes 2016): cells next to nodata or the domain edge are true outlets,
    labelled 1. The other perimeter cells are seeds labelled lazily: a seed popped still
    unvisited starts a new watershed label; one already reached by a flood keeps that flood's
    label and is skipped. Whenever two watersheds touch, the lowest elevation at which they
    connect (the higher of the two filled cells) is kept per label pair: the spill edges of the
    tile.

    Parameters
    ----------
    zt : float32 (H, W), the tile with a one-cell halo of its neighbours (NaN outside the
        domain). The interior is filled in place.
    lab : uint16 (H, W), out: label of each cell (bit 15: raised), 0x7FFF on halo and nodata.
    keys, vals : int64 / float32 open-addressing table (size a power of two, keys -1), out: the
        spill edges, key ``a << 16 | b`` with a < b, value the spill elevation.
    queue : int64 scratch of at least H·W entries.

    Returns
    -------
    (number of labels used including 0 and 1, number of label pairs), the latter -1 when the
    table is more than a quarter full (the caller then falls back to an untiled fill).
    """
    nh, nw = zt.shape
    n = nh * nw
    z = zt.reshape(n)
    lb = lab.reshape(n)
    zbits = z.view(np.uint32)
    offs = np.array([1, nw + 1, nw, nw - 1, -1, -nw - 1, -nw, -nw + 1], np.int64)
    for c in range(nw):
        lb[c] = _BLOCKED
        lb[(nh - 1) * nw + c] = _BLOCKED
    for r in range(1, nh - 1):
        lb[r * nw] = _BLOCKED
        lb[r * nw + nw - 1] = _BLOCKED
        for c in range(1, nw - 1):
            i = r * nw + c
            lb[i] = _BLOCKED if np.isnan(z[i]) else _UNVISITED

    heap = np.empty(4 * (nh + nw) + 64, np.uint64)
    size = 0
    for r in range(1, nh - 1):
        on_perimeter_row = r == 1 or r == nh - 2
        for c in range(1, nw - 1):
            i = r * nw + c
            if lb[i] == _BLOCKED:
                continue
            key = (sortable_key(zbits[i]) << np.uint64(32)) | np.uint64(i)
            outlet = False
            for k in range(8):
                if np.isnan(z[i + offs[k]]):
                    outlet = True
                    break
            if outlet:
                lb[i] = _OUTSIDE
            elif on_perimeter_row or c == 1 or c == nw - 2:
                key |= _SEED_FLAG
            else:
                continue
            if size == heap.shape[0]:
                bigger = np.empty(2 * size, np.uint64)
                bigger[:size] = heap
                heap = bigger
            heap[size] = key
            size += 1
    # Seeds are pushed unordered and heapified once.
    for start in range((size - 2) // 4, -1, -1):
        heap_sift_down(heap, size, start, heap[start])

    next_label = _FIRST_WATERSHED
    n_pairs = 0
    while size > 0:
        top = heap[0]
        size -= 1
        if size > 0:
            heap_sift_down(heap, size, 0, heap[size])
        cell = np.int64(top & _LOW31)
        if top & _SEED_FLAG:
            if lb[cell] != _UNVISITED:
                continue
            lb[cell] = np.uint16(next_label)
            next_label += 1

        # FIFO of cells to expand; a negative entry marks a slope cell (not a pit cell).
        q_head = 0
        q_tail = 0
        current = cell
        is_pit = True
        while True:
            zc = z[current]
            lc = lb[current] & _LABEL
            needs_heap = False
            for k in range(8):
                j = current + offs[k]
                lj = lb[j]
                if lj != _UNVISITED:
                    lj &= _LABEL
                    if lj != lc and lj != _BLOCKED:
                        n_pairs += _keep_lowest_spill(keys, vals, lc, lj, max(zc, z[j]))
                        if 4 * n_pairs > keys.shape[0]:
                            return next_label, -1
                    continue
                zj = z[j]
                if is_pit:
                    if zj < zc:
                        z[j] = zc
                        lb[j] = lc | _RAISED
                        queue[q_tail] = j
                    elif zj == zc:
                        lb[j] = lc
                        queue[q_tail] = j
                    else:
                        lb[j] = lc
                        queue[q_tail] = -j - 1
                elif zj >= zc:
                    lb[j] = lc
                    queue[q_tail] = -j - 1
                else:
                    needs_heap = True
                    continue
                q_tail += 1
            if needs_heap:
                key = (sortable_key(zbits[current]) << np.uint64(32)) | np.uint64(current)
                heap = heap_push(heap, size, key)
                size += 1
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
    return next_label, n_pairs


@njit(parallel=True, cache=True)
def fill_tiles(
    z: np.ndarray, labels: np.ndarray, tile: int, max_pairs: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fill every tile on its own, in parallel; labels and spill edges per tile."""
    nr, nc = z.shape
    n_tile_rows = (nr + tile - 1) // tile
    n_tile_cols = (nc + tile - 1) // tile
    n_tiles = n_tile_rows * n_tile_cols
    n_labels = np.zeros(n_tiles, np.int64)
    n_pairs = np.zeros(n_tiles, np.int64)
    pair_a = np.zeros((n_tiles, max_pairs), np.int32)
    pair_b = np.zeros((n_tiles, max_pairs), np.int32)
    pair_spill = np.zeros((n_tiles, max_pairs), np.float32)
    for t in prange(n_tiles):
        r0 = (t // n_tile_cols) * tile
        c0 = (t % n_tile_cols) * tile
        h = min(tile, nr - r0)
        w = min(tile, nc - c0)
        zt = np.full((h + 2, w + 2), np.nan, np.float32)
        ra = max(r0 - 1, 0)
        rb = min(r0 + h + 1, nr)
        ca = max(c0 - 1, 0)
        cb = min(c0 + w + 1, nc)
        zt[ra - r0 + 1 : rb - r0 + 1, ca - c0 + 1 : cb - c0 + 1] = z[ra:rb, ca:cb]
        lab = np.empty((h + 2, w + 2), np.uint16)
        keys = np.full(4 * max_pairs, -1, np.int64)
        vals = np.empty(4 * max_pairs, np.float32)
        queue = np.empty((h + 2) * (w + 2), np.int64)
        used, pairs = _fill_tile(zt, lab, keys, vals, queue)
        n_labels[t] = used
        n_pairs[t] = pairs
        if pairs > 0:
            m = 0
            for s in range(keys.shape[0]):
                if keys[s] != -1:
                    pair_a[t, m] = keys[s] >> 16
                    pair_b[t, m] = keys[s] & 0xFFFF
                    pair_spill[t, m] = vals[s]
                    m += 1
        z[r0 : r0 + h, c0 : c0 + w] = zt[1 : h + 1, 1 : w + 1]
        for r in range(h):
            for c in range(w):
                v = lab[r + 1, c + 1]
                labels[r0 + r, c0 + c] = _UNVISITED if v == _BLOCKED else v
    return n_labels, n_pairs, pair_a, pair_b, pair_spill


@njit(cache=True, inline="always")
def _global_label(labels, offset, tile, n_tile_cols, r, c):
    """Global watershed id of cell (r, c): 0 nodata, 1 the outside, else offset by tile."""
    local = labels[r, c] & _LABEL
    if local <= _OUTSIDE:
        return np.int64(local)
    return offset[(r // tile) * n_tile_cols + c // tile] + local - _FIRST_WATERSHED


@njit(cache=True, inline="always")
def _link_across(z, labels, offset, tile, n_tile_cols, ri, ci, rj, cj, edge_a, edge_b, edge_w,
                 m):
    """Append the edge between the watersheds of adjacent cells (ri, ci) and (rj, cj) in two
    tiles, weighted by the higher cell; returns the new edge count."""
    gi = _global_label(labels, offset, tile, n_tile_cols, ri, ci)
    gj = _global_label(labels, offset, tile, n_tile_cols, rj, cj)
    if gi != 0 and gj != 0 and gi != gj:
        edge_a[m] = gi
        edge_b[m] = gj
        edge_w[m] = max(z[ri, ci], z[rj, cj])
        m += 1
    return m


@njit(cache=True)
def spill_elevations(
    z: np.ndarray,
    labels: np.ndarray,
    tile: int,
    n_labels: np.ndarray,
    n_pairs: np.ndarray,
    pair_a: np.ndarray,
    pair_b: np.ndarray,
    pair_spill: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Spill elevation of every tile watershed from the graph of watersheds (Barnes 2016).

    Nodes are the tile watersheds plus the outside (node 1); edges join watersheds that touch,
    inside a tile (from :func:`_fill_tile`) or across a tile boundary (cells adjacent across
    it, weighted by the higher of the two), with the lowest elevation at which they connect.
    A watershed's spill elevation is the lowest, over all paths to the outside, of the highest
    edge on the path (a minimax path), found by a Dijkstra-like priority flood on the graph.

    Returns the label offset of each tile (global id = offset + local − 2) and the spill
    elevation per global id (−inf for the outside).
    """
    nr, nc = z.shape
    n_tile_rows = (nr + tile - 1) // tile
    n_tile_cols = (nc + tile - 1) // tile
    n_tiles = n_tile_rows * n_tile_cols
    offset = np.empty(n_tiles + 1, np.int64)
    offset[0] = _FIRST_WATERSHED
    for t in range(n_tiles):
        offset[t + 1] = offset[t] + n_labels[t] - _FIRST_WATERSHED
    n_nodes = offset[n_tiles]

    capacity = n_pairs.sum() + 3 * (n_tile_rows * nc + n_tile_cols * nr) + 16
    edge_a = np.empty(capacity, np.int64)
    edge_b = np.empty(capacity, np.int64)
    edge_w = np.empty(capacity, np.float32)
    m = 0
    for t in range(n_tiles):
        for s in range(n_pairs[t]):
            a = pair_a[t, s]
            b = pair_b[t, s]
            edge_a[m] = a if a == _OUTSIDE else offset[t] + a - _FIRST_WATERSHED
            edge_b[m] = b if b == _OUTSIDE else offset[t] + b - _FIRST_WATERSHED
            edge_w[m] = pair_spill[t, s]
            m += 1
    # Across horizontal tile boundaries (row r-1 | row r), then vertical ones (col c-1 | col c):
    # each cell on one side touches up to three on the other.
    for tr in range(1, n_tile_rows):
        r = tr * tile
        for c in range(nc):
            for cc in range(max(c - 1, 0), min(c + 2, nc)):
                m = _link_across(z, labels, offset, tile, n_tile_cols, r - 1, c, r, cc,
                                 edge_a, edge_b, edge_w, m)
    for tc in range(1, n_tile_cols):
        c = tc * tile
        for r in range(nr):
            for rr in range(max(r - 1, 0), min(r + 2, nr)):
                m = _link_across(z, labels, offset, tile, n_tile_cols, r, c - 1, rr, c,
                                 edge_a, edge_b, edge_w, m)

    start = np.zeros(n_nodes + 1, np.int64)
    for e in range(m):
        start[edge_a[e] + 1] += 1
        start[edge_b[e] + 1] += 1
    for v in range(n_nodes):
        start[v + 1] += start[v]
    nbr = np.empty(2 * m, np.int64)
    nbr_w = np.empty(2 * m, np.float32)
    cursor = start[:-1].copy()
    for e in range(m):
        a = edge_a[e]
        b = edge_b[e]
        nbr[cursor[a]] = b
        nbr_w[cursor[a]] = edge_w[e]
        cursor[a] += 1
        nbr[cursor[b]] = a
        nbr_w[cursor[b]] = edge_w[e]
        cursor[b] += 1

    spill = np.full(n_nodes, np.inf, np.float32)
    spill_bits = spill.view(np.uint32)
    done = np.zeros(n_nodes, np.bool_)
    spill[_OUTSIDE] = -np.inf
    # The same 4-ary heap of (sortable elevation, index) keys as the tile floods, with lazy
    # deletion: a node's first pop carries its final spill elevation.
    heap = np.empty(64, np.uint64)
    heap[0] = (sortable_key(spill_bits[_OUTSIDE]) << np.uint64(32)) | np.uint64(_OUTSIDE)
    size = 1
    while size > 0:
        node = np.int64(heap[0] & _LOW32)
        size -= 1
        if size > 0:
            heap_sift_down(heap, size, 0, heap[size])
        if done[node]:
            continue
        done[node] = True
        for p in range(start[node], start[node + 1]):
            u = nbr[p]
            candidate = max(spill[node], nbr_w[p])
            if candidate < spill[u]:
                spill[u] = candidate
                key = (sortable_key(spill_bits[u]) << np.uint64(32)) | np.uint64(u)
                heap = heap_push(heap, size, key)
                size += 1
    return offset, spill


@njit(parallel=True, cache=True)
def raise_to_spill(
    z: np.ndarray, labels: np.ndarray, tile: int, offset: np.ndarray, spill: np.ndarray
) -> int:
    """Raise each cell to its watershed's spill elevation; count the cells raised in all."""
    nr, nc = z.shape
    n_tile_cols = (nc + tile - 1) // tile
    raised = np.zeros(nr, np.int64)
    for r in prange(nr):
        count = 0
        for c in range(nc):
            local = labels[r, c]
            if local == _UNVISITED:
                continue
            was_raised = (local & _RAISED) != 0
            gid = _global_label(labels, offset, tile, n_tile_cols, r, c)
            if gid != _OUTSIDE and spill[gid] > z[r, c]:
                z[r, c] = spill[gid]
                was_raised = True
            if was_raised:
                count += 1
        raised[r] = count
    return raised.sum()


def fill_tiled(z2d: np.ndarray, tile: int, max_pairs: int) -> int:
    """:func:`fill_in_place` with a chosen tile side and spill-edge capacity per tile."""
    if z2d.ndim != 2 or z2d.dtype != np.float32 or not z2d.flags.c_contiguous:
        raise ValueError("fill: expected a C-contiguous 2-D float32 elevation array")
    if not 3 <= tile <= MAX_TILE:
        # Watershed labels are 15-bit: a tile's perimeter must stay below 2¹⁵ cells.
        raise ValueError(f"fill: tile side {tile} outside 3…{MAX_TILE}")
    nr, nc = z2d.shape
    labels = np.empty((nr, nc), np.uint16)
    n_labels, n_pairs, pair_a, pair_b, pair_spill = fill_tiles(z2d, labels, tile, max_pairs)
    if (n_pairs < 0).any():
        # A tile had more touching watersheds than the table holds (never seen on real or
        # synthetic terrain). The tiles are filled partway, which never overshoots the final
        # fill, so one flood over the whole grid as a single tile finishes the job exactly.
        raised_before = (labels & _RAISED) != 0
        fill_tiles(z2d, labels, max(nr, nc), 1)
        return int(np.count_nonzero(raised_before | ((labels & _RAISED) != 0)))
    offset, spill = spill_elevations(
        z2d, labels, tile, n_labels, n_pairs, pair_a, pair_b, pair_spill
    )
    return int(raise_to_spill(z2d, labels, tile, offset, spill))


def fill_in_place(z2d: np.ndarray) -> int:
    """Fill every depression up to its spill elevation, in place; returns the cells raised.

    Parallel Priority-Flood (Barnes 2016): the grid is cut into tiles of
    :data:`DEFAULT_TILE` cells a side; each tile is filled on its own, in parallel, as if its
    perimeter drained freely, labelling which perimeter watershed every cell belongs to
    (:func:`_fill_tile`, Priority-Flood with Zhou et al. 2016 slope tracing). A graph of the
    watersheds, joined where they touch inside or across tiles at the lowest elevation at
    which they connect, gives each watershed its spill elevation towards the true outlets (the
    domain edge and nodata); every cell is then raised to at least that elevation. The result
    equals a Priority-Flood of the whole grid, cell for cell (tested), at a fraction of the
    memory traffic.

    Parameters
    ----------
    z2d : float32 array (rows, cols), C-contiguous, elevation in m, NaN marks nodata; filled in
        place (never lowered; NaN stays NaN).

    Returns
    -------
    The number of cells raised.

    References
    ----------
    Barnes, R. (2016) Parallel Priority-Flood depression filling for trillion cell digital
    elevation models on desktops or clusters. Computers & Geosciences 96, 56-68.
    Barnes, R., Lehman, C., Mulla, D. (2014a) Priority-Flood: An optimal depression-filling and
    watershed-labeling algorithm for digital elevation models. Computers & Geosciences 62,
    117-127.
    Zhou, G., Sun, Z., Fu, S. (2016) An efficient variant of the Priority-Flood algorithm for
    filling depressions in raster digital elevation models. Computers & Geosciences 90, 87-96.
    """
    # Watersheds per tile are at most its perimeter cells plus the outside; the touching pairs
    # of such a near-planar partition stay within a few per watershed.
    max_pairs = 1 << int(8 * (4 * DEFAULT_TILE + 2) - 1).bit_length()
    return fill_tiled(z2d, DEFAULT_TILE, max_pairs)


def priority_flood_fill(dem: np.ndarray) -> np.ndarray:
    """Filled copy of ``dem``; see :func:`fill_in_place` for the algorithm."""
    z = np.array(dem, dtype=np.float32, order="C")
    fill_in_place(z)
    return z
