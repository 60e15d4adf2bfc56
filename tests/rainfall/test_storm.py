"""The synthetic storm generator: where it rains, how much, and its parameter checks."""

from dataclasses import replace

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.rainfall.storm import AMANDA_2020, StormParameters, storm_forecast

STILL = StormParameters(name="still", start="2020-05-31T00:00", hours=12,
                        track=((0.0, -89.0, 13.7),), texture_amplitude=0.0,
                        band_amplitude=0.0, background_mm_h=0.0, ramp_hours=1.0,
                        core_rate_mm_h=10.0, core_radius_km=50.0, shield_rate_mm_h=0.0)


def test_a_still_storm_rains_its_core_rate_at_the_centre_and_falls_off_as_a_gaussian():
    fc = storm_forecast(STILL)
    total = fc.rain_mm[0].sum(axis=0)
    j, i = np.unravel_index(total.argmax(), total.shape)
    assert abs(fc.x[i] + 89.0) <= 0.05 and abs(fc.y[j] - 13.7) <= 0.05
    # Envelope 1 for every step with ramp 1 h: 12 h × 10 mm/h at the centre, within a cell.
    assert total.max() == pytest.approx(120.0, rel=0.02)
    # 50 km east of the centre: exp(-1) of the centre rate.
    east = np.argmin(np.abs(fc.x - (-89.0 + 50.0 / (111.32 * np.cos(np.radians(13.7))))))
    row = np.argmin(np.abs(fc.y - 13.7))
    assert total[row, east] / total[row, np.argmin(np.abs(fc.x + 89.0))] == pytest.approx(
        np.exp(-1.0), abs=0.05)
    assert fc.metadata["synthetic"] is True and np.all(fc.rain_mm >= 0)


def test_a_moving_storm_rains_along_its_track():
    moving = replace(STILL, track=((0.0, -90.0, 13.5), (12.0, -88.0, 13.5)))
    fc = storm_forecast(moving)
    first = fc.rain_mm[0, 0].sum(axis=0).argmax()  # column of the heaviest rain, hour 1
    last = fc.rain_mm[0, -1].sum(axis=0).argmax()
    assert fc.x[first] < -89.6 and fc.x[last] > -88.4


def test_amanda_preset_is_of_the_scale_of_the_real_storm():
    fc = storm_forecast(AMANDA_2020)
    total = fc.rain_mm[0].sum(axis=0)
    lon, lat = np.meshgrid(fc.x, fc.y)
    salvador = (lon > -90.1) & (lon < -87.7) & (lat > 13.2) & (lat < 14.4)
    assert fc.n_steps == 72
    assert 200 < total[salvador].mean() < 450  # "several hundred mm in 72 h"
    assert 500 < total.max() < 900


@pytest.mark.parametrize(("change", "match"), [
    ({"hours": 0}, "hours"), ({"track": ()}, "track"),
    ({"track": ((5.0, -89.0, 13.0), (1.0, -89.0, 14.0))}, "time order"),
    ({"core_radius_km": -1.0}, "core_radius_km"), ({"core_rate_mm_h": -1.0}, "core_rate"),
    ({"bbox": (-88.0, 13.0, -89.0, 14.0)}, "bbox"),
])
def test_bad_storm_parameters(change, match):
    with pytest.raises(InputError, match=match):
        storm_forecast(replace(STILL, **change))
