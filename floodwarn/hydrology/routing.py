"""Catchment response time and channel geometry for routing, from terrain and parameters."""

from __future__ import annotations

import numpy as np

from floodwarn.kernels.slope import mean_slope_by_label
from floodwarn.parameters import RoutingParameters

_FT_PER_M = 1.0 / 0.3048
_KM2_PER_MI2 = 2.589988


def channel_width_m(upstream_area_km2: np.ndarray, params: RoutingParameters) -> np.ndarray:
    """Bankfull channel width (m) from upstream drainage area (km²): W = a·A^b.

    References
    ----------
    Bieger, K., Rathjens, H., Allen, P.M. & Arnold, J.G. (2015) Development and evaluation of
    bankfull hydraulic geometry relationships for the physiographic regions of the United
    States. JAWRA 51(3), 842-858.
    """
    area = np.maximum(np.asarray(upstream_area_km2, np.float64), 1e-3)
    return params.width_coefficient_m * area**params.width_exponent


def catchment_land_slope_percent(
    conditioned: np.ndarray, catchment_id: np.ndarray, n_reaches: int, cellsize_m: float
) -> np.ndarray:
    """Mean land slope (%) of each reach catchment from the conditioned DEM (central
    differences, one-sided next to nodata and edges), indexed by reach id − 1; 0 where a
    catchment has no cells. See :func:`floodwarn.kernels.slope.mean_slope_by_label`."""
    return 100.0 * mean_slope_by_label(
        np.ascontiguousarray(conditioned), np.ascontiguousarray(catchment_id), n_reaches,
        float(cellsize_m))


def catchment_lag_hours(
    area_km2: np.ndarray, land_slope_percent: np.ndarray, curve_number: np.ndarray,
    params: RoutingParameters,
) -> np.ndarray:
    """Watershed lag (h) of each reach catchment, used as its linear-reservoir constant.

    L = ℓ^0.8 (S + 1)^0.7 / (1900 Y^0.5), with ℓ the hydraulic length (ft), S = 1000/CN − 10
    (in) and Y the average land slope (%). ℓ is not measured per catchment but taken from its
    area by Hack's law ℓ = 1.4 A^0.6 (mi, mi²). The lag of a linear reservoir equals its
    storage constant (the centroid delay of its response), so K = L. Slope and lag are kept
    within the bounds in ``models/routing.yaml``.

    References
    ----------
    USDA-NRCS (2010) NEH Part 630 Hydrology, ch. 15 Time of Concentration, eq. 15-4.
    Hack, J.T. (1957) Studies of longitudinal stream profiles in Virginia and Maryland. USGS
    Professional Paper 294-B.
    """
    area_mi2 = np.maximum(np.asarray(area_km2, np.float64), 1e-4) / _KM2_PER_MI2
    length_ft = 1.4 * area_mi2**0.6 * 5280.0
    s_in = 1000.0 / np.clip(np.asarray(curve_number, np.float64), 30.0, 99.0) - 10.0
    y = np.maximum(np.asarray(land_slope_percent, np.float64), params.min_land_slope_percent)
    lag = length_ft**0.8 * (s_in + 1.0) ** 0.7 / (1900.0 * np.sqrt(y))
    return np.clip(lag, params.min_lag_hours, params.max_lag_hours)
