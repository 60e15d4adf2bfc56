"""Bankfull discharge: the 1.5-year flood on the Gumbel variate, never below the steady flow."""

import math

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.hydrology.bankfull import bankfull_discharge
from floodwarn.hydrology.thresholds import ReturnPeriodThresholds


def _thresholds(q2, q5):
    return ReturnPeriodThresholds(return_periods_years=np.array([2, 5, 10]),
                                  discharge_m3s=np.array([q2, q5, np.array(q5) * 1.3]),
                                  idf_version="t", idf_is_approximation=True)


def test_the_one_and_a_half_year_flood_on_the_gumbel_variate():
    # y(T) = −ln(−ln(1 − 1/T)): y(1.5) = −0.0940, y(2) = 0.3665, y(5) = 1.4999. With Q2 = 100
    # and Q5 = 200, Q1.5 = 100 + 100·(−0.0940 − 0.3665)/(1.4999 − 0.3665) = 59.37.
    y = [-math.log(-math.log(1 - 1 / t)) for t in (1.5, 2.0, 5.0)]
    expected = 100 + 100 * (y[0] - y[1]) / (y[2] - y[1])
    assert expected == pytest.approx(59.37, abs=0.01)
    q = bankfull_discharge(_thresholds([100.0], [200.0]), np.array([0.0]))
    assert q[0] == pytest.approx(expected)


def test_bankfull_holds_the_steady_flow_and_half_the_two_year_flood():
    q = bankfull_discharge(_thresholds([100.0, 100.0], [1000.0, 110.0]),
                           np.array([0.0, 400.0]))
    assert q[0] == pytest.approx(50.0)  # a steep frequency curve: at least half of Q2
    assert q[1] == pytest.approx(400.0)  # below a dam: the regulated release stays in bank


def test_the_two_and_five_year_floods_are_needed():
    thresholds = ReturnPeriodThresholds(return_periods_years=np.array([10, 100]),
                                        discharge_m3s=np.ones((2, 1)), idf_version="t",
                                        idf_is_approximation=True)
    with pytest.raises(InputError, match="2- and 5-year"):
        bankfull_discharge(thresholds, np.zeros(1))
