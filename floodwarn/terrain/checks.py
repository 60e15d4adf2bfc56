"""Independent checks of a terrain model, in plain numpy (used by tests and benchmarks)."""

from __future__ import annotations

import numpy as np

from floodwarn.kernels.d8 import D8_CODES, D8_COL_STEP, D8_ROW_STEP


def steepest_descent_agreement(
    conditioned: np.ndarray, original: np.ndarray, flowdir: np.ndarray
) -> tuple[float, int]:
    """Share of eligible cells whose D8 code is the steepest descent of the conditioned DEM.

    Steepest descent after O'Callaghan & Mark (1984): the largest drop divided by the distance
    (1 or √2 cells), recomputed here with numpy independently of the kernels. Eligible cells are
    those that filling left unchanged and whose steepest drop is positive and unique (no flat,
    no tie). Returns ``(share, n_eligible)``.

    References
    ----------
    O'Callaghan, J.F. & Mark, D.M. (1984) Computer Vision, Graphics, and Image Processing 28.
    """
    z = np.asarray(conditioned, dtype=np.float64)
    nr, nc = z.shape
    pad = np.pad(z, 1, constant_values=np.nan)
    best = np.full(z.shape, -np.inf)
    best_code = np.zeros(z.shape, np.uint8)
    n_best = np.zeros(z.shape, np.uint8)
    for k in range(8):
        dr, dc = int(D8_ROW_STEP[k]), int(D8_COL_STEP[k])
        drop = z - pad[1 + dr : nr + 1 + dr, 1 + dc : nc + 1 + dc]
        if dr and dc:
            drop /= np.sqrt(2.0)
        drop = np.where(np.isnan(drop), -np.inf, drop)
        better = drop > best
        tie = drop == best
        n_best = np.where(better, 1, np.where(tie, n_best + 1, n_best)).astype(np.uint8)
        best_code = np.where(better, D8_CODES[k], best_code)
        best = np.maximum(best, drop)
    eligible = (z == original) & (best > 0) & (n_best == 1)
    n = int(eligible.sum())
    share = float((flowdir == best_code)[eligible].mean()) if n else float("nan")
    return share, n
