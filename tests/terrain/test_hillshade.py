"""Hillshade kernel (Horn 1981) against values worked by hand."""

import math

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.terrain.hillshade import hillshade, hillshade_bytes, shade_bytes
from tests.conftest import fractal_dem

CELL = 90.0


def _plane(dz_east: float, dz_south: float, shape=(7, 9)) -> np.ndarray:
    """Elevation rising ``dz_east`` m per m eastward and ``dz_south`` m per m southward
    (rows run south)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    return (1000.0 + dz_east * CELL * cols + dz_south * CELL * rows).astype(np.float32)


def _interior(shade: np.ndarray) -> np.ndarray:
    return shade[1:-1, 1:-1]


def test_flat_ground_is_lit_by_the_sine_of_the_sun_altitude():
    flat = hillshade(np.full((5, 5), 250.0), CELL)
    assert np.allclose(flat, math.sin(math.radians(45)), atol=1e-6)  # 0.7071 everywhere
    assert np.all(shade_bytes(flat) == 181)  # 1 + 254 · 0.7071 (gdaldem's scaling)
    assert np.allclose(255 * flat, 180.3, atol=0.05)
    low_sun = hillshade(np.full((3, 3), 0.0), CELL, altitude_deg=30.0)
    assert np.allclose(low_sun, 0.5, atol=1e-6)


# Sun from the north-west at 45°: s = (sin 315° cos 45°, cos 315° cos 45°, sin 45°)
# = (−0.5, 0.5, 0.7071). A 45° slope (gradient 1) has the unit normal (−∂z/∂x, −∂z/∂y, 1)/√2,
# so its illumination n·s is:
#   facing west  (rises east):  (0.5 + 0.7071) / 1.4142 = 0.8536
#   facing east  (rises west):  (−0.5 + 0.7071) / 1.4142 = 0.1464
#   facing north (rises south): (0.5 + 0.7071) / 1.4142 = 0.8536
#   facing south (rises north): (−0.5 + 0.7071) / 1.4142 = 0.1464
@pytest.mark.parametrize(("dz_east", "dz_south", "expected"), [
    (1.0, 0.0, 0.8536), (-1.0, 0.0, 0.1464), (0.0, 1.0, 0.8536), (0.0, -1.0, 0.1464),
    (1.0, 1.0, (0.5 + 0.5 + 0.7071) / math.sqrt(3)),  # faces north-west, into the sun: 0.9856
])
def test_slopes_facing_the_sun_are_brighter_than_those_facing_away(dz_east, dz_south,
                                                                   expected):
    shade = _interior(hillshade(_plane(dz_east, dz_south), CELL))
    assert np.allclose(shade, expected, atol=1e-3)


def test_a_face_turned_fully_away_from_the_sun_is_black_not_negative():
    cliff = _interior(hillshade(_plane(-5.0, -5.0), CELL))  # steep, facing south-east
    assert np.all(cliff == 0.0)
    assert np.all(shade_bytes(cliff) == 1)  # 1: darkest grey; 0 is left for nodata


def test_rectangular_cells_and_vertical_exaggeration():
    # A 1-in-2 slope eastward on 45 m wide cells, exaggerated ×2, is a 45° slope.
    cols = np.mgrid[0:5, 0:5][1]
    z = (0.5 * 45.0 * cols).astype(np.float64)
    shade = _interior(hillshade(z, 45.0, 90.0, z_factor=2.0))
    assert np.allclose(shade, 0.8536, atol=1e-3)


def test_nodata_stays_nodata_and_its_neighbours_keep_a_value():
    z = _plane(1.0, 0.0)
    z[3, 4] = np.nan
    shade = hillshade(z, CELL)
    assert np.isnan(shade[3, 4])
    assert np.isfinite(np.delete(shade.ravel(), 3 * z.shape[1] + 4)).all()
    grey = shade_bytes(shade)
    assert grey[3, 4] == 0 and (np.delete(grey.ravel(), 3 * z.shape[1] + 4) > 0).all()


def test_edge_cells_are_shaded_too():
    shade = hillshade(_plane(1.0, 0.0), CELL)
    assert np.isfinite(shade).all()
    assert (shade[:, 0] > 0.7071).all()  # one-sided gradient, still lit from the west side


@pytest.mark.parametrize("rows_per_block", [1, 7, 20, 64])
def test_computing_by_blocks_of_rows_gives_the_whole_grid_s_answer(rows_per_block):
    z = fractal_dem(48, seed=3, relief_m=400.0)
    z[10:13, 5:9] = np.nan  # nodata across a block edge
    whole = shade_bytes(hillshade(z, CELL, azimuth_deg=300.0))
    np.testing.assert_array_equal(
        hillshade_bytes(z, CELL, rows_per_block=rows_per_block, azimuth_deg=300.0), whole)


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((np.zeros(5), CELL), {}, "2-D"),
    ((np.zeros((3, 3)), 0.0), {}, "positive cell sizes"),
    ((np.zeros((3, 3)), CELL), {"altitude_deg": 120.0}, "altitude"),
])
def test_bad_inputs_are_refused_with_the_reason(args, kwargs, message):
    with pytest.raises(InputError, match=message):
        hillshade(*args, **kwargs)
