"""Drainage trees, graded river profiles and valley floors for SYNTHETIC terrain.

Kernels of the stand-in DEM (:mod:`floodwarn.standin_dem`). A drainage *tree* is given by two
flat (row-major) index arrays:

- ``receiver``: the cell each cell drains to, -1 at outlets and on nodata;
- ``order``: every valid cell once, each after its receiver (downstream first). Walking it
  backwards visits every cell after all the cells that drain into it (upstream first).

Heights are float64 in m, flat arrays of the grid's size unless said otherwise; NaN = nodata.
Priority queues key cells by their flat index in 32 bits: grids of fewer than 2³² cells.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from floodwarn.kernels.d8 import D8_COL_STEP, D8_ROW_STEP
from floodwarn.kernels.heap import heap_push, heap_sift_down, sortable_key

_LOW32 = np.uint64(0xFFFFFFFF)
_SQRT2 = math.sqrt(2.0)


@njit(cache=True, inline="always")
def _step_m(i: int, j: int, nc: int, cellsize: float) -> float:
    """Length of the D8 step between neighbouring cells ``i`` and ``j`` (flat indices), m."""
    diagonal = (i // nc != j // nc) and (i % nc != j % nc)
    return cellsize * _SQRT2 if diagonal else cellsize


@njit(cache=True, inline="always")
def _pop(heap: np.ndarray, size: int) -> tuple[int, np.uint64]:
    top = heap[0]
    size -= 1
    if size > 0:
        heap_sift_down(heap, size, 0, heap[size])
    return size, top


@njit(cache=True)
def least_cost_drainage(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drainage tree of a DEM that runs through its depressions instead of filling them.

    Priority-Flood from the outlets (valid cells on the grid edge or next to nodata) with the
    cells' own elevations as priorities, never raised: the lowest cell on the flood's front
    is taken next and becomes the receiver of its unvisited neighbours. Every cell therefore
    drains along the path whose highest point is lowest (the least-cost path of Metz et al.
    2011): out of a depression through its lowest pass, and inside it along its lowest cells,
    never across a flat made by filling. Ties (equal elevations) go to the lower flat index.

    Parameters
    ----------
    z : float32 (rows, cols), elevation in m, NaN = nodata.

    Returns
    -------
    (receiver, order): int64 arrays, see the module docstring.

    References
    ----------
    Metz, M., Mitasova, H., Harmon, R.S. (2011) Efficient extraction of drainage networks from
    massive, radar-based elevation models with least cost path search. Hydrology and Earth
    System Sciences 15, 667-678.
    Barnes, R., Lehman, C., Mulla, D. (2014) Priority-Flood: An optimal depression-filling and
    watershed-labeling algorithm for digital elevation models. Computers & Geosciences 62.
    """
    nr, nc = z.shape
    n = nr * nc
    zf = z.reshape(n)
    bits = zf.view(np.uint32)
    receiver = np.full(n, -1, np.int64)
    queued = np.zeros(n, np.bool_)
    order = np.empty(n, np.int64)
    heap = np.empty(max(64, 4 * (nr + nc)), np.uint64)
    size = 0
    for i in range(n):
        if math.isnan(zf[i]):
            queued[i] = True
            continue
        r = i // nc
        c = i - r * nc
        outlet = r == 0 or c == 0 or r == nr - 1 or c == nc - 1
        if not outlet:
            for k in range(8):
                if math.isnan(zf[i + D8_ROW_STEP[k] * nc + D8_COL_STEP[k]]):
                    outlet = True
                    break
        if outlet:
            queued[i] = True
            heap = heap_push(heap, size, (sortable_key(bits[i]) << np.uint64(32)) | np.uint64(i))
            size += 1
    m = 0
    while size > 0:
        size, top = _pop(heap, size)
        cell = np.int64(top & _LOW32)
        order[m] = cell
        m += 1
        r = cell // nc
        c = cell - r * nc
        for k in range(8):
            rr = r + D8_ROW_STEP[k]
            cc = c + D8_COL_STEP[k]
            if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                continue
            j = rr * nc + cc
            if queued[j]:
                continue
            queued[j] = True
            receiver[j] = cell
            heap = heap_push(heap, size, (sortable_key(bits[j]) << np.uint64(32)) | np.uint64(j))
            size += 1
    return receiver, order[:m]


@njit(cache=True)
def accumulate_tree(receiver: np.ndarray, order: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Sum of ``weight`` over each cell and every cell upstream of it (same unit as ``weight``).

    One pass upstream first (Kahn 1962 order, given by the tree). Nodata cells keep their weight.
    """
    acc = weight.copy()
    for t in range(order.shape[0] - 1, -1, -1):
        i = order[t]
        r = receiver[i]
        if r >= 0:
            acc[r] += acc[i]
    return acc


@njit(cache=True)
def carve_descending(
    z: np.ndarray,
    receiver: np.ndarray,
    order: np.ndarray,
    nc: int,
    cellsize: float,
    min_slope: float,
) -> np.ndarray:
    """Lower cells so that elevation falls by at least ``min_slope`` (m/m) along the tree.

    Breaching by carving (Soille 2004): every cell ends no higher than each cell draining into
    it minus ``min_slope`` times the step length, i.e. at the minimum over its upstream cells;
    a depression's outflow path is cut down through its pass instead of the depression being
    filled. Nothing is raised.

    References
    ----------
    Soille, P. (2004) Optimal removal of spurious pits in grid digital elevation models. Water
    Resources Research 40, W12509.
    Lindsay, J.B. (2016) Efficient hybrid breaching-filling sink removal methods for flow path
    enforcement in digital elevation models. Hydrological Processes 30, 846-857.
    """
    out = z.copy()
    for t in range(order.shape[0] - 1, -1, -1):
        i = order[t]
        r = receiver[i]
        if r >= 0:
            limit = out[i] - min_slope * _step_m(i, r, nc, cellsize)
            if out[r] > limit:
                out[r] = limit
    return out


@njit(cache=True)
def graded_profile(
    z: np.ndarray,
    receiver: np.ndarray,
    order: np.ndarray,
    nc: int,
    cellsize: float,
    area_km2: np.ndarray,
    channel: np.ndarray,
    smooth_coef_m: float,
    smooth_exponent: float,
    smooth_max_m: float,
    slope_min_coef: float,
    slope_max_coef: float,
    concavity: float,
) -> np.ndarray:
    """Bed elevation of every channel cell: ``z`` smoothed along the rivers, then graded.

    1. Zero-phase exponential smoothing along the network (forward-backward filtering,
       Gustafsson 1996): downstream along each cell's main stem (its donor of largest area),
       then back upstream from the outlets, with an e-folding length
       ``min(smooth_coef_m·A^smooth_exponent, smooth_max_m)`` (A in km²), so that large rivers
       are smoother than creeks. A linear profile passes unchanged.
    2. Grading, downstream first: the bed slope to the receiver is kept between
       ``slope_min_coef·A^-concavity`` and ``slope_max_coef·A^-concavity``, the slope–area
       relation of Flint (1974) with bounds on the channel steepness index (Wobus et al. 2006),
       so that beds always fall (no flats, no pits) and large rivers get no waterfalls.

    Outlets keep their own elevation. Off channels the result is NaN. ``channel`` must be
    closed downstream (a channel cell's receiver is a channel cell or an outlet).

    References
    ----------
    Flint, J.J. (1974) Stream gradient as a function of order, magnitude, and discharge. Water
    Resources Research 10(5), 969-973.
    Wobus, C., Whipple, K.X., Kirby, E. et al. (2006) Tectonics from topography: procedures,
    promise, and pitfalls. GSA Special Paper 398, 55-74.
    Gustafsson, F. (1996) Determining the initial states in forward-backward filtering. IEEE
    Transactions on Signal Processing 44(4), 988-992.
    """
    n = z.shape[0]
    main = np.full(n, -1, np.int64)
    best = np.zeros(n)
    for t in range(order.shape[0] - 1, -1, -1):
        i = order[t]
        r = receiver[i]
        if channel[i] and r >= 0 and area_km2[i] > best[r]:
            best[r] = area_km2[i]
            main[r] = i
    forward = best  # reused: the area is no longer needed
    for t in range(order.shape[0] - 1, -1, -1):
        i = order[t]
        if not channel[i]:
            continue
        u = main[i]
        if u < 0:
            forward[i] = z[i]
        else:
            length = min(smooth_coef_m * area_km2[i] ** smooth_exponent, smooth_max_m)
            a = 1.0 - math.exp(-_step_m(u, i, nc, cellsize) / length)
            forward[i] = a * z[i] + (1.0 - a) * forward[u]
    smooth = np.full(n, np.nan)
    bed = np.full(n, np.nan)
    for t in range(order.shape[0]):
        i = order[t]
        if not channel[i]:
            continue
        r = receiver[i]
        if r < 0:
            smooth[i] = z[i]
            bed[i] = z[i]
            continue
        step = _step_m(i, r, nc, cellsize)
        length = min(smooth_coef_m * area_km2[i] ** smooth_exponent, smooth_max_m)
        a = 1.0 - math.exp(-step / length)
        smooth[i] = a * forward[i] + (1.0 - a) * smooth[r]
        scale = area_km2[i] ** -concavity * step
        lowest = bed[r] + slope_min_coef * scale
        bed[i] = min(max(smooth[i], lowest), bed[r] + slope_max_coef * scale)
    return bed


@njit(cache=True)
def settle_channels(
    bed: np.ndarray,
    valley: np.ndarray,
    receiver: np.ndarray,
    order: np.ndarray,
    nc: int,
    cellsize: float,
    area_km2: np.ndarray,
    channel: np.ndarray,
    depth_coef: float,
    depth_exponent: float,
    slope_min_coef: float,
    concavity: float,
) -> np.ndarray:
    """Beds of channels that cross a larger river's valley floor, cut into that floor.

    Where the valley surface (e.g. from :func:`valley_envelope`) lies below a channel's bed,
    the channel crosses the floodplain of a larger river: its bed drops to one bankfull depth
    ``depth_coef·A^depth_exponent`` below that surface, so the tributary keeps a channel across
    the floodplain instead of running over it. Then, downstream first, every bed is kept at
    least ``slope_min_coef·A^-concavity`` (Flint 1974) above its receiver's, as in
    :func:`graded_profile`. Beds never rise above the input except by that minimum slope.
    """
    out = bed.copy()
    for t in range(order.shape[0]):
        i = order[t]
        if not channel[i]:
            continue
        b = bed[i]
        if valley[i] < b:
            b = valley[i] - depth_coef * area_km2[i] ** depth_exponent
        r = receiver[i]
        if r >= 0:
            step = _step_m(i, r, nc, cellsize)
            b = max(b, out[r] + slope_min_coef * area_km2[i] ** -concavity * step)
        out[i] = b
    return out


@njit(cache=True)
def hillslopes_on_beds(
    z: np.ndarray,
    bed: np.ndarray,
    receiver: np.ndarray,
    order: np.ndarray,
    channel: np.ndarray,
    taper_factor: float,
    taper_min_m: float,
) -> np.ndarray:
    """Move the hillslopes with the river beds they drain to, fading out uphill.

    Each cell drains along the tree to a first channel cell ``s`` and stands ``h = z - z[s]``
    above it. Its elevation moves by the bed's change ``Δ = bed[s] - z[s]`` times
    ``max(0, 1 - h/h0)``, with ``h0 = max(taper_factor·|Δ|, taper_min_m)``: the foot of the
    slope follows the river, ridges stay. With ``taper_factor > 1`` elevations still fall along
    the tree (a raised bed never lifts a slope above the cells upstream of it), so the surface
    gains no pits; channel cells take their bed elevation. Cells that reach an outlet without
    meeting a channel keep their elevation. ``z`` must fall strictly along the tree (e.g. from
    :func:`carve_descending`).
    """
    out = z.copy()
    drain = np.full(z.shape[0], -1, np.int64)
    for t in range(order.shape[0]):
        i = order[t]
        if channel[i]:
            drain[i] = i
            out[i] = bed[i]
            continue
        r = receiver[i]
        if r < 0:
            continue
        s = drain[r]
        drain[i] = s
        if s < 0:
            continue
        delta = bed[s] - z[s]
        h = z[i] - z[s]
        h0 = max(taper_factor * abs(delta), taper_min_m)
        if h < h0:
            out[i] = z[i] + delta * (1.0 - h / h0)
    return out


@njit(cache=True)
def valley_envelope(
    z: np.ndarray,
    seeds: np.ndarray,
    bed: np.ndarray,
    depth: np.ndarray,
    channel_half_width_m: np.ndarray,
    floor_half_width_m: np.ndarray,
    floor_rise_m: np.ndarray,
    wall_slope: float,
    cellsize: float,
    max_above_m: float,
) -> np.ndarray:
    """Lower ``z`` to the valley of the nearest river: channel, floodplain, valley walls.

    Each seed ``k`` (a channel cell, flat index ``seeds[k]``) shapes a valley cross-section as a
    function of the distance ``d`` from it: its ``bed`` within ``channel_half_width_m``; beyond,
    the bank top ``bed + depth`` rising by ``floor_rise_m`` over ``floor_half_width_m`` (the
    floodplain); beyond that, walls of slope ``wall_slope``. The valley surface is the lower
    envelope of all the seeds' cross-sections, found by a Dijkstra (1959) propagation of the
    nearest seed over the grid in increasing valley elevation, with Euclidean distances to the
    propagated seed (vector propagation, Danielsson 1980; exact up to the usual label-
    propagation approximation). Returns ``min(z, valley)`` as (rows, cols), NaN kept.

    The propagation stops at cells where the valley surface is more than ``max_above_m``
    above the terrain: the walls have left the ground there (``np.inf``: never stop).

    Parameters
    ----------
    z : float64 (rows, cols), terrain in m, NaN = nodata.
    seeds : int64 (k,), flat cell indices; bed, depth and the widths are float64 (k,) in m.

    References
    ----------
    Dijkstra, E.W. (1959) A note on two problems in connexion with graphs. Numerische
    Mathematik 1, 269-271.
    Danielsson, P.-E. (1980) Euclidean distance mapping. Computer Graphics and Image
    Processing 14, 227-248.
    """
    nr, nc = z.shape
    n = nr * nc
    zf = z.reshape(n)
    best = np.full(n, np.inf)
    source = np.full(n, -1, np.int64)
    done = np.zeros(n, np.bool_)
    key = np.empty(n, np.float32)
    bits = key.view(np.uint32)
    heap = np.empty(max(64, 2 * seeds.shape[0]), np.uint64)
    size = 0
    for k in range(seeds.shape[0]):
        i = seeds[k]
        if bed[k] < best[i]:
            best[i] = bed[k]
            source[i] = k
            key[i] = bed[k]
            heap = heap_push(heap, size, (sortable_key(bits[i]) << np.uint64(32)) | np.uint64(i))
            size += 1
    while size > 0:
        size, top = _pop(heap, size)
        i = np.int64(top & _LOW32)
        if done[i]:
            continue
        done[i] = True
        if best[i] > zf[i] + max_above_m:
            continue
        k = source[i]
        rs = seeds[k] // nc
        cs = seeds[k] - rs * nc
        r = i // nc
        c = i - r * nc
        for m in range(8):
            rr = r + D8_ROW_STEP[m]
            cc = c + D8_COL_STEP[m]
            if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                continue
            j = rr * nc + cc
            if done[j] or math.isnan(zf[j]):
                continue
            d = math.hypot(rr - rs, cc - cs) * cellsize
            if d <= channel_half_width_m[k]:
                v = bed[k]
            else:
                d -= channel_half_width_m[k]
                wf = floor_half_width_m[k]
                v = bed[k] + depth[k]
                if d <= wf:
                    v += floor_rise_m[k] * d / wf
                else:
                    v += floor_rise_m[k] + wall_slope * (d - wf)
            if v < best[j]:
                best[j] = v
                source[j] = k
                key[j] = v
                heap = heap_push(heap, size,
                                 (sortable_key(bits[j]) << np.uint64(32)) | np.uint64(j))
                size += 1
    out = np.empty(n)
    for i in range(n):
        out[i] = min(zf[i], best[i]) if not math.isnan(zf[i]) else np.nan
    return out.reshape(nr, nc)


@njit(cache=True)
def upstream_cells(receiver: np.ndarray, order: np.ndarray, outlet: int) -> np.ndarray:
    """Boolean mask of ``outlet`` and every cell that drains through it along the tree."""
    up = np.zeros(receiver.shape[0], np.bool_)
    up[outlet] = True
    for t in range(order.shape[0]):
        i = order[t]
        r = receiver[i]
        if r >= 0 and up[r]:
            up[i] = True
    return up


@njit(cache=True)
def flood_from(
    z: np.ndarray, seed: int, n_cells: int, allowed: np.ndarray
) -> tuple[np.ndarray, float]:
    """Cells a lake rising from ``seed`` covers once it spans ``n_cells``, and its level.

    Priority-Flood from the seed (Barnes et al. 2014) through the ``allowed`` cells: the lowest
    cell on the shore is flooded next and the level is the highest elevation flooded so far;
    once ``n_cells`` are under water, the cells still on the shore below that level are added
    too, so the lake is every allowed cell connected to the seed below its level.

    Parameters
    ----------
    z : float32 (rows, cols), elevation in m, NaN = nodata (never flooded).
    allowed : bool (rows·cols,), cells the lake may cover.

    Returns
    -------
    (flat indices of the lake cells, level in m).

    References
    ----------
    Barnes, R., Lehman, C., Mulla, D. (2014) Priority-Flood: An optimal depression-filling and
    watershed-labeling algorithm for digital elevation models. Computers & Geosciences 62.
    """
    nr, nc = z.shape
    n = nr * nc
    zf = z.reshape(n)
    bits = zf.view(np.uint32)
    queued = np.zeros(n, np.bool_)
    cells = np.empty(n_cells + 1024, np.int64)
    heap = np.empty(1024, np.uint64)
    heap = heap_push(heap, 0, (sortable_key(bits[seed]) << np.uint64(32)) | np.uint64(seed))
    size = 1
    queued[seed] = True
    m = 0
    level = -np.inf
    while size > 0:
        i = np.int64(heap[0] & _LOW32)
        if m >= n_cells and zf[i] > level:
            break
        size, _top = _pop(heap, size)
        if m == cells.shape[0]:
            bigger = np.empty(2 * m, np.int64)
            bigger[:m] = cells
            cells = bigger
        cells[m] = i
        m += 1
        level = max(level, zf[i])
        r = i // nc
        c = i - r * nc
        for k in range(8):
            rr = r + D8_ROW_STEP[k]
            cc = c + D8_COL_STEP[k]
            if rr < 0 or rr >= nr or cc < 0 or cc >= nc:
                continue
            j = rr * nc + cc
            if queued[j] or not allowed[j] or math.isnan(zf[j]):
                continue
            queued[j] = True
            heap = heap_push(heap, size, (sortable_key(bits[j]) << np.uint64(32)) | np.uint64(j))
            size += 1
    return cells[:m], float(level)


@njit(cache=True)
def carve_outflow(
    z: np.ndarray,
    receiver: np.ndarray,
    start: int,
    level: float,
    min_slope: float,
    cellsize: float,
    channel: np.ndarray,
    avoid: np.ndarray,
    apply: bool,
) -> int:
    """Cut a lake's outflow from ``start`` down the tree until it meets a low enough channel.

    The path follows ``receiver`` from ``start`` (the outlet on the shore, at ``level`` m);
    every cell on it is lowered, if needed, to ``level`` minus ``min_slope`` times the path
    length, until a ``channel`` cell already that low (channels fall to the sea along the tree)
    or an outlet of the grid. Returns the number of cells on the path, or -1 when the path
    runs into an ``avoid`` cell first (then nothing is changed). With ``apply`` False nothing
    is changed either: the path is only checked. Breaching as in :func:`carve_descending`.

    Parameters
    ----------
    z : float32 (rows, cols), elevation in m; lowered in place when ``apply``.
    channel, avoid : bool (rows·cols,).
    """
    nc = z.shape[1]
    zf = z.reshape(z.size)
    length = 0.0
    n = 0
    i = start
    while True:
        r = receiver[i]
        if r < 0:
            return n
        length += _step_m(i, r, nc, cellsize)
        if avoid[r]:
            return -1
        line = level - min_slope * length
        if channel[r] and zf[r] <= line:
            return n
        if apply and zf[r] > line:
            zf[r] = line
        n += 1
        i = r
