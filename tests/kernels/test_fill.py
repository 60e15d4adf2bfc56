import numpy as np

from floodwarn.kernels.fill import priority_flood_fill
from tests.conftest import fractal_dem


def test_pit_fills_to_its_spill_level():
    dem = np.array(
        [
            [9, 9, 9, 9, 9],
            [9, 5, 5, 5, 9],
            [9, 5, 1, 5, 9],
            [9, 5, 5, 5, 9],
            [9, 9, 4, 9, 9],
        ],
        np.float32,
    )
    filled = priority_flood_fill(dem)
    expected = dem.copy()
    expected[2, 2] = 5
    np.testing.assert_array_equal(filled, expected)


def test_chain_of_depressions_worked_by_hand():
    # Row 1 drains east to the edge cell 0; each basin fills to the lowest barrier on its way out.
    dem = np.array(
        [[9] * 7, [9, 3, 7, 2, 6, 1, 0], [9] * 7],
        np.float32,
    )
    filled = priority_flood_fill(dem)
    np.testing.assert_array_equal(filled[1], [9, 7, 7, 6, 6, 1, 0])
    np.testing.assert_array_equal(filled[0], dem[0])


def test_nodata_is_an_outlet_and_stays_nodata():
    dem = np.full((5, 5), 10.0, np.float32)
    dem[2, 2] = np.nan  # a hole in the middle: the sea or a lake mask
    dem[1, 1] = 2.0  # a pit next to the hole drains into it
    filled = priority_flood_fill(dem)
    assert np.isnan(filled[2, 2])
    assert filled[1, 1] == 2.0


def test_filled_is_never_below_original_and_has_no_pits():
    dem = fractal_dem(128, seed=3)
    dem[:10, :10] = np.nan
    filled = priority_flood_fill(dem)
    valid = ~np.isnan(dem)
    assert np.all(filled[valid] >= dem[valid])
    assert np.array_equal(np.isnan(filled), ~valid)
    # No interior cell may be strictly lower than all 8 neighbours after filling.
    z = np.where(valid, filled, np.inf)
    core = z[1:-1, 1:-1]
    neighbours = np.stack(
        [
            z[1 + dr : z.shape[0] - 1 + dr, 1 + dc : z.shape[1] - 1 + dc]
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
            if (dr, dc) != (0, 0)
        ]
    )
    next_to_nodata = np.isinf(neighbours).any(axis=0)
    pits = (core < neighbours.min(axis=0)) & ~next_to_nodata & np.isfinite(core)
    assert not pits.any()


def test_filling_twice_changes_nothing():
    dem = fractal_dem(96, seed=5)
    once = priority_flood_fill(dem)
    np.testing.assert_array_equal(priority_flood_fill(once), once)


def test_fill_in_place_counts_raised_cells():
    from floodwarn.kernels.fill import fill_in_place

    z = np.array([[9] * 7, [9, 3, 7, 2, 6, 1, 0], [9] * 7], np.float32)
    assert fill_in_place(z) == 2  # 3 -> 7 and 2 -> 6
    np.testing.assert_array_equal(z[1], [9, 7, 7, 6, 6, 1, 0])


def test_wrapper_leaves_the_input_alone_unless_told():
    from floodwarn.terrain.conditioning import fill_depressions

    dem = np.array([[9, 9, 9], [9, 1, 9], [9, 9, 9]], np.float32)
    filled, n = fill_depressions(dem)
    assert n == 1 and dem[1, 1] == 1 and filled[1, 1] == 9
    same, _ = fill_depressions(dem, overwrite=True)
    assert same is dem and dem[1, 1] == 9


def _whole_grid_flood(dem: np.ndarray) -> tuple[np.ndarray, int]:
    """The untiled Priority-Flood: the whole grid as one tile."""
    from floodwarn.kernels.fill import fill_tiled

    z = dem.copy()
    n = fill_tiled(z, max(z.shape), 4)
    return z, n


def test_tile_sides_whose_labels_would_overflow_are_refused():
    import pytest

    from floodwarn.kernels.fill import fill_tiled

    z = np.zeros((4, 4), np.float32)
    for tile in (2, 8001):
        with pytest.raises(ValueError, match="tile side"):
            fill_tiled(z, tile, 4)
    with pytest.raises(ValueError, match="float32"):
        fill_tiled(z.astype(np.float64), 4, 4)


def test_tiles_join_exactly_as_one_flood_of_the_whole_grid():
    # Barnes (2016): tiles filled apart and joined through the spill graph give the same DEM,
    # cell for cell, as one flood of the whole grid, whatever the tile size.
    from floodwarn.kernels.fill import fill_tiled

    rng = np.random.default_rng(11)
    dem = fractal_dem(150, seed=7)
    dem[rng.random(dem.shape) < 0.02] = np.nan  # scattered nodata: outlets inside tiles
    dem[60:75, 80:120] = np.nan  # a lake mask across a tile boundary
    expected, expected_raised = _whole_grid_flood(dem)
    assert expected_raised > 100
    for tile in (3, 7, 16, 49, 64, 149):
        z = dem.copy()
        raised = fill_tiled(z, tile, 4096)
        np.testing.assert_array_equal(z, expected, err_msg=f"tile {tile}")
        assert raised == expected_raised


def test_a_depression_spanning_four_tiles_fills_to_its_single_spill_point():
    from floodwarn.kernels.fill import fill_tiled

    dem = np.full((12, 12), 20.0, np.float32)
    dem[2:10, 2:10] = 5.0  # one basin centred on a tile corner (tiles of 6)
    dem[0:3, 9] = 8.0  # its only notch, in the north-east tile, reaches the edge at 8 m
    z = dem.copy()
    raised = fill_tiled(z, 6, 256)
    assert np.all(z[2:10, 2:10] == 8.0)
    assert raised == 63  # the 8×8 basin but the notch cell (2, 9), already at 8 m
    np.testing.assert_array_equal(z, _whole_grid_flood(dem)[0])


def test_overflowing_spill_table_falls_back_to_the_same_result():
    from floodwarn.kernels.fill import fill_tiled

    dem = fractal_dem(80, seed=9)
    expected, expected_raised = _whole_grid_flood(dem)
    z = dem.copy()
    raised = fill_tiled(z, 8, 1)  # a table of one pair cannot hold a tile's watersheds
    np.testing.assert_array_equal(z, expected)
    assert raised == expected_raised
