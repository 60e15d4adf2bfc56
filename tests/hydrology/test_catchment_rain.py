"""Catchment rain weights: area shares, exact means, caching keys, coverage errors."""

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.hydrology.catchment_rain import (
    antecedent_rain_mm,
    build_catchment_weights,
    catchment_weights_key,
)
from floodwarn.rainfall.forecast import RainfallForecast
from floodwarn.terrain.model import build_terrain_model
from tests.conftest import fractal_dem, utm_grid


@pytest.fixture(scope="module")
def terrain():
    return build_terrain_model(fractal_dem(120, seed=2, relief_m=200.0, tilt=0.5),
                               utm_grid((120, 120)), stream_area_km2=0.3)


def _projected_forecast(model, rain_by_column, *, cols=4, rows=3, hours=2):
    """A forecast on the terrain's own CRS: ``cols`` × ``rows`` cells over its extent."""
    west, south, east, north = model.grid.bounds
    dx = (east - west) / cols
    dy = (north - south) / rows
    x = west + dx * (np.arange(cols) + 0.5)
    y = north - dy * (np.arange(rows) + 0.5)
    rain = np.broadcast_to(np.asarray(rain_by_column, np.float32)[None, None, None, :],
                           (1, hours, rows, cols)).copy()
    end = np.datetime64("2020-05-31T01:00", "s") + np.arange(hours) * np.timedelta64(3600, "s")
    return RainfallForecast(rain_mm=rain, step_start=end - np.timedelta64(3600, "s"),
                            step_end=end, x=x, y=y, crs=model.grid.crs,
                            members=np.array([0]), metadata={"source": "test"})


def test_catchment_means_are_area_weighted_cell_by_cell(terrain):
    forecast = _projected_forecast(terrain, [1.0, 10.0, 100.0, 1000.0])
    weights = build_catchment_weights(terrain, forecast)
    rows_sum = np.asarray(weights.matrix.sum(axis=1)).ravel()
    has_cells = terrain.reaches.catchment_area_km2 > 0
    np.testing.assert_allclose(rows_sum[has_cells], 1.0)
    means = weights.catchment_mean(forecast.rain_mm[0])
    # Expected: each terrain cell takes its forecast column's rain (4 columns of 30 cells).
    col_rain = np.array([1.0, 10.0, 100.0, 1000.0])[np.arange(120) // 30]
    cell_rain = np.broadcast_to(col_rain, (120, 120))
    cid = terrain.catchment_id
    for reach in (1, len(terrain.reaches) // 2, len(terrain.reaches)):
        inside = cid == reach
        if inside.any():
            assert means[0, reach - 1] == pytest.approx(cell_rain[inside].mean(), rel=1e-9)
    # Volume: area-weighted catchment means reproduce the mean over all catchment cells.
    area = terrain.reaches.catchment_area_km2
    assert (means[0] * area).sum() / area.sum() == pytest.approx(cell_rain[cid > 0].mean())


def test_key_changes_with_the_grid_and_coverage_is_checked(terrain):
    a = _projected_forecast(terrain, [1.0, 1.0, 1.0, 1.0])
    b = _projected_forecast(terrain, [1.0, 1.0, 1.0], cols=3)
    assert catchment_weights_key(terrain, a) != catchment_weights_key(terrain, b)
    assert catchment_weights_key(terrain, a) == catchment_weights_key(
        terrain, _projected_forecast(terrain, [5.0, 5.0, 5.0, 5.0]))
    shifted = _projected_forecast(terrain, [1.0, 1.0, 1.0, 1.0])
    object.__setattr__(shifted, "x", shifted.x + 3000.0)  # misses the western 3 km
    with pytest.raises(InputError, match="does not cover the terrain domain"):
        build_catchment_weights(terrain, shifted)


def test_antecedent_rain_window(terrain):
    observed = _projected_forecast(terrain, [2.0, 2.0, 2.0, 2.0], hours=130)
    weights = build_catchment_weights(terrain, observed)
    before = observed.step_end[-1]
    total = antecedent_rain_mm(observed, weights, before)
    has_cells = terrain.reaches.catchment_area_km2 > 0
    np.testing.assert_allclose(total[has_cells], 2.0 * 120)  # 5 days of hourly 2 mm
    with pytest.raises(InputError, match="must cover the 5 days"):
        antecedent_rain_mm(observed, weights, before + np.timedelta64(20, "h"))
