"""Flow accumulation: upstream cell counts and upstream sums of any per-cell quantity."""

from __future__ import annotations

import numpy as np

from floodwarn.errors import InputError
from floodwarn.kernels.accumulation import accumulate_cells, accumulate_weights
from floodwarn.terrain.conditioning import validate_flowdir


def flow_accumulation(flowdir: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Upstream cells (uint32, the cell itself included) or upstream sum of ``weights`` (float64).

    ``flowdir`` is ESRI D8 (0 outlet, 255 nodata). ``weights`` has the grid's shape, in any unit
    (the result is in that unit); it must be finite on valid cells. The result is 0 (counts) or
    NaN (weights) on nodata. Cost is O(N) (topological order, Kahn 1962).

    Raises InputError when the directions contain a cycle or point off the grid.

    References
    ----------
    Kahn, A.B. (1962) Topological sorting of large networks. Comm. ACM 5(11), 558-562.
    """
    fd = validate_flowdir(flowdir)
    if weights is None:
        acc, n_unfinished = accumulate_cells(fd)
    else:
        w = np.ascontiguousarray(weights, dtype=np.float64)
        if w.shape != fd.shape:
            raise InputError(
                f"flow accumulation: weights have shape {w.shape}, flow directions {fd.shape}; "
                "they must match cell for cell."
            )
        bad = (fd != 255) & ~np.isfinite(w)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise InputError(
                f"flow accumulation: weight at row {r}, col {c} is {w[r, c]}; weights must be "
                "finite on every valid cell (use 0 where there is nothing to add)."
            )
        acc, n_unfinished = accumulate_weights(fd, w)
    if n_unfinished:
        raise InputError(
            f"flow accumulation: {n_unfinished} cells lie on or drain into a cycle of flow "
            "directions; D8 from floodwarn.terrain.conditioning.flow_directions has none."
        )
    return acc
