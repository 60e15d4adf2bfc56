"""A small terrain and hand-made floods for the risk tests."""

import numpy as np
import pytest

from floodwarn.inundation.depth import Inundation
from floodwarn.terrain.model import build_terrain_model
from tests.conftest import fractal_dem, utm_grid


@pytest.fixture(scope="module")
def terrain():
    """80 × 80 cells of 90 m in UTM 16N."""
    return build_terrain_model(fractal_dem(80, seed=5, relief_m=100.0, tilt=0.5),
                               utm_grid((80, 80)), stream_area_km2=0.2)


def flood_of(terrain, depth, first=None, water=None):
    """An Inundation with the given depth grid (first flooding at 5 h unless given; no
    water cells unless given)."""
    n = len(terrain.reaches)
    return Inundation(depth_m=depth.astype(np.float32),
                      first_flooding_h=(first if first is not None
                                        else np.where(depth > 0, 5.0, np.nan)).astype(np.float32),
                      water=(np.zeros(terrain.grid.shape, bool) if water is None else water),
                      stage_m=np.zeros((n, 1)),
                      peak_stage_m=np.zeros(n),
                      extended=np.zeros(n, bool),
                      beyond_curve=np.zeros(n, bool))
