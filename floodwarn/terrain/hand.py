"""Height Above the Nearest Drainage (HAND) and reach catchments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from floodwarn.errors import InputError
from floodwarn.kernels.hand import height_above_nearest_drainage


@dataclass(frozen=True, eq=False)
class HandResult:
    """HAND (m, float32, NaN where a cell drains to no stream), each cell's drainage cell (flat
    index, -1 where none) and reach catchment (int32 reach id, 0 where none)."""

    hand_m: np.ndarray
    drain_cell: np.ndarray
    catchment_id: np.ndarray


def compute_hand(conditioned: np.ndarray, flowdir: np.ndarray, reach_id: np.ndarray) -> HandResult:
    """HAND after Nobre et al. (2011): elevation above the stream cell each cell drains to.

    ``conditioned`` is the filled DEM in m (so HAND ≥ 0), ``flowdir`` ESRI D8, ``reach_id`` the
    reach of each stream cell (0 elsewhere). The catchment of a cell is the reach it first drains
    into.

    References
    ----------
    Nobre, A.D. et al. (2011) Height Above the Nearest Drainage - a hydrologically relevant new
    terrain model. Journal of Hydrology 404, 13-29.
    """
    if not (conditioned.shape == flowdir.shape == reach_id.shape):
        raise InputError(
            f"HAND: elevation {conditioned.shape}, flow directions {flowdir.shape} and reach ids "
            f"{reach_id.shape} must have the same shape."
        )
    n = flowdir.size
    drain = np.empty(n, np.int32 if n < 2**31 - 1 else np.int64)
    hand, catchment = height_above_nearest_drainage(
        np.ascontiguousarray(conditioned, dtype=np.float32),
        np.ascontiguousarray(flowdir, dtype=np.uint8),
        np.ascontiguousarray(reach_id, dtype=np.int32),
        drain,
    )
    return HandResult(hand_m=hand, drain_cell=drain.reshape(flowdir.shape), catchment_id=catchment)
