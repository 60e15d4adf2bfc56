"""SCS curve-number runoff, antecedent moisture and the curve-number table."""

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.hydrology.runoff import (
    antecedent_moisture_class,
    catchment_curve_numbers,
    curve_number_for_amc,
    curve_number_grid,
    incremental_runoff,
    retention_mm,
    scs_runoff_mm,
)
from floodwarn.parameters import CurveNumberTable, load_parameters

IN = 25.4


@pytest.mark.parametrize(
    ("p_in", "cn", "q_in"),
    [
        # TR-55 eq. 2-3 worked by hand; the first row is TR-55 Table 2-1 (5.0 in, CN 80: 2.89).
        (5.0, 80, 2.89),  # S = 2.5, Ia = 0.5: 4.5² / 7.0
        (2.0, 90, 1.09),  # S = 1.111, Ia = 0.222: 1.778² / 2.889
        (3.0, 70, 0.71),  # S = 4.286, Ia = 0.857: 2.143² / 6.429
        (0.4, 70, 0.00),  # below the initial abstraction
        (4.0, 100, 4.00),  # impervious: all rain runs off
    ],
)
def test_runoff_depths_worked_by_hand(p_in, cn, q_in):
    q = scs_runoff_mm(p_in * IN, retention_mm(np.array([cn])))
    assert q[0] / IN == pytest.approx(q_in, abs=0.006)


def test_incremental_runoff_sums_to_the_event_equation_and_conserves_rain():
    rain = np.array([[5.0, 0.0], [30.0, 10.0], [0.0, 50.0], [40.0, 5.0]])
    cn = np.array([79.0, 60.0])
    result = incremental_runoff(rain, cn)
    event = scs_runoff_mm(rain.sum(axis=0), retention_mm(cn))
    np.testing.assert_allclose(result.runoff_mm.sum(axis=0), event, rtol=1e-12)
    np.testing.assert_allclose(result.runoff_mm + result.loss_mm, rain, atol=1e-12)
    assert np.all(result.runoff_mm >= 0)
    assert result.runoff_mm[0, 0] == 0.0  # 5 mm < Ia = 0.2 · 67.5 mm


def test_amc_classes_and_conversions():
    assert antecedent_moisture_class(np.array([10.0, 40.0, 60.0]), "growing").tolist() == [1, 2, 3]
    assert antecedent_moisture_class(np.array([10.0, 20.0, 30.0]), "dormant").tolist() == [1, 2, 3]
    cn = curve_number_for_amc(np.array([79.0, 79.0, 79.0, 100.0]), np.array([1, 2, 3, 1]))
    # Chow et al. (1988) eqs. 5.5.6-7 by hand: 4.2·79/(10 − 4.582) and 23·79/(10 + 10.27).
    np.testing.assert_allclose(cn, [61.24, 79.0, 89.64, 100.0], atol=0.01)
    with pytest.raises(InputError, match="season"):
        antecedent_moisture_class(np.array([1.0]), "monsoon")


def test_hawkins_initial_abstraction_ratio_converts_retention():
    s02 = 1000 / 79 - 10
    assert retention_mm(np.array([79.0]), 0.05)[0] == pytest.approx(1.33 * s02**1.15 * IN)
    # With λ = 0.05 small storms produce runoff that λ = 0.2 does not.
    small = np.array([[12.0]])  # Ia(0.2) = 13.5 mm, Ia(0.05) = 5.2 mm
    assert incremental_runoff(small, np.array([79.0]), ia_ratio=0.2).runoff_mm.sum() == 0
    assert incremental_runoff(small, np.array([79.0]), ia_ratio=0.05).runoff_mm.sum() > 0
    with pytest.raises(InputError, match=r"0\.2 or 0\.05"):
        retention_mm(np.array([79.0]), 0.1)


def test_bad_rain_or_curve_numbers_are_refused():
    with pytest.raises(InputError, match="≥ 0"):
        incremental_runoff(np.array([[-1.0]]), np.array([70.0]))
    with pytest.raises(InputError, match="1…100"):
        retention_mm(np.array([120.0]))


def test_curve_numbers_from_landcover_and_soil_rasters():
    table = load_parameters(CurveNumberTable)
    landcover = np.array([[30, 30, 50], [10, 80, 999]])  # grassland, built-up, trees, water, ?
    soil = np.array([[3, 1, 4], [2, 4, 3]])
    cn = curve_number_grid(landcover, soil, table)
    # pasture fair C = 79, pasture fair A = 49, residential 1/8 acre D = 92, woods fair B = 60.
    np.testing.assert_array_equal(cn[0], [79, 49, 92])
    assert cn[1, 0] == 60 and cn[1, 1] == 100 and np.isnan(cn[1, 2])
    catchments = np.array([[1, 1, 2], [2, 2, 2]])
    per_reach, defaulted = catchment_curve_numbers(cn, catchments, 2, 79.0)
    assert per_reach[0] == pytest.approx(64.0)
    assert per_reach[1] == pytest.approx((92 + 60 + 100 + 79) / 4)
    assert defaulted == pytest.approx(1 / 6)


def test_a_bad_curve_number_file_names_the_problem(tmp_path):
    from floodwarn.parameters import load_parameters

    bad = tmp_path / "cn.yaml"
    bad.write_text(
        "version: '1'\nsource: 'a test file that is long enough'\n"
        "curve_numbers: {pasture_fair: [49, 69, 79, 140]}\n"
        "landcover_codes: {30: pasture_fair, 40: cropland}\nsoil_codes: {1: A}\n"
        "default_cover: pasture_fair\ndefault_soil_group: C\n")
    with pytest.raises(InputError, match=r"cn\.yaml.*curve_numbers\.pasture_fair\.3"):
        load_parameters(CurveNumberTable, bad)
