"""The flow a river's channel holds before it spills onto land: its bankfull discharge.

Channels are shaped by their frequent floods: a natural river's bankfull discharge recurs
about every 1.5 years (Leopold, Wolman & Miller 1964; Dunne & Leopold 1978), which is how
NOAA OWP's HAND inundation mapping sets its bankfull stage (the National Water Model's
1.5-year flow). Below a dam, or wherever the steady flow is larger, the channel carries that
flow too: dry-weather flow never floods land. Hydraulic-geometry regressions from other
climates (``models/routing.yaml``) give channels far smaller than the floods the same model
makes here, so the model's own 1.5-year flood sizes each channel (its width kept from the
regression, its depth deepened to hold the flow: ``reach_rating_curves``).
"""

from __future__ import annotations

import math

import numpy as np

from floodwarn.errors import InputError
from floodwarn.hydrology.thresholds import ReturnPeriodThresholds

#: Recurrence interval of bankfull discharge, years.
BANKFULL_RETURN_PERIOD_YEARS = 1.5


def _gumbel_variate(years: float) -> float:
    """Gumbel reduced variate y = −ln(−ln(1 − 1/T))."""
    return -math.log(-math.log(1.0 - 1.0 / years))


def bankfull_discharge(thresholds: ReturnPeriodThresholds, steady_m3s: np.ndarray
                       ) -> np.ndarray:
    """Bankfull discharge of every reach (m³/s): the larger of the 1.5-year flood and the
    steady (base and regulated) flow.

    The 1.5-year flood is read off the 2- and 5-year design peaks along the Gumbel reduced
    variate (annual maxima linear in y = −ln(−ln(1 − 1/T)); Gumbel 1958, Chow 1951) and kept
    at least half the 2-year peak.

    References
    ----------
    Leopold, L.B., Wolman, M.G. & Miller, J.P. (1964) Fluvial Processes in Geomorphology,
    Freeman, ch. 7 (bankfull discharge recurs every ~1.5 years).
    Gumbel, E.J. (1958) Statistics of Extremes, Columbia University Press.
    Aristizabal, F. et al. (2023) Water Resources Research 59 (bankfull from the 1.5-year
    flow in NOAA OWP's HAND-FIM).
    """
    years = [int(y) for y in thresholds.return_periods_years]
    if 2 not in years or 5 not in years:
        raise InputError("bankfull discharge needs the 2- and 5-year thresholds; add them to "
                         "return_periods_years in models/idf_el_salvador.yaml.")
    q2 = thresholds.discharge_m3s[years.index(2)]
    q5 = thresholds.discharge_m3s[years.index(5)]
    y15, y2, y5 = (_gumbel_variate(t) for t in (BANKFULL_RETURN_PERIOD_YEARS, 2.0, 5.0))
    q15 = np.maximum(q2 + (q5 - q2) * (y15 - y2) / (y5 - y2), 0.5 * q2)
    return np.maximum(q15, np.asarray(steady_m3s, np.float64))
