"""Invariants of the terrain engine on arbitrary small DEMs (hypothesis).

Integer elevations on few levels force ties, flats and nested depressions; NaN cells play the
sea and voids. Profiles: HYPOTHESIS_PROFILE=ci (default, fast) or dev.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from floodwarn.terrain import build_terrain_model
from tests.conftest import utm_grid

dems = (
    st.tuples(st.integers(3, 24), st.integers(3, 24))
    .flatmap(
        lambda shape: arrays(
            np.float32,
            shape,
            elements=st.one_of(st.integers(0, 6).map(float), st.just(float("nan"))),
        )
    )
    .filter(lambda a: (~np.isnan(a)).any())
)


@given(dem=dems, area_cells=st.integers(1, 6))
def test_terrain_invariants(dem, area_cells):
    grid = utm_grid(dem.shape, cellsize=100.0)
    model = build_terrain_model(
        dem, grid, stream_area_km2=area_cells * grid.cell_area_km2, max_reach_length_m=250.0
    )
    valid = ~np.isnan(dem)
    fd = model.flowdir
    assert np.array_equal(fd == 255, ~valid)
    assert (model.conditioned[valid] >= dem[valid]).all()
    # Every valid cell drains: accumulation finished every cell (else it raises) and the
    # outlets collect all of them.
    assert int(model.accumulation[fd == 0].sum()) == int(valid.sum())
    # Every step goes down or along a flat of the conditioned DEM, never up.
    _nr, _nc = dem.shape
    codes = {
        1: (0, 1),
        2: (1, 1),
        4: (1, 0),
        8: (1, -1),
        16: (0, -1),
        32: (-1, -1),
        64: (-1, 0),
        128: (-1, 1),
    }
    for code, (dr, dc) in codes.items():
        r, c = np.nonzero(fd == code)
        assert (model.conditioned[r + dr, c + dc] <= model.conditioned[r, c]).all()
    hand = model.hand
    assert (hand[~np.isnan(hand)] >= 0).all()
    assert (hand[model.reach_id > 0] == 0).all()
    ds = model.reaches.downstream_id
    assert ((ds >= 0) & (ds <= len(model.reaches))).all()
    assert len(model.reaches.topo_order) == len(model.reaches)
    # Stream cells are exactly the cells above the threshold.
    threshold = model.metadata["parameters"]["stream_threshold_cells"]
    assert np.array_equal(model.reach_id > 0, valid & (model.accumulation >= threshold))
