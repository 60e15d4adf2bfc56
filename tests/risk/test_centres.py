"""Collective-centre safety: water at the site, around it, or none."""

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point

from floodwarn.errors import InputError
from floodwarn.parameters import LevelRules, load_parameters
from floodwarn.risk.centres import centre_safety
from tests.risk.conftest import flood_of

RULES = load_parameters(LevelRules).centres


def _centres(terrain, cells):
    x, y = terrain.grid.cell_centres(np.array([r * 80 + c for r, c in cells]))
    return gpd.GeoDataFrame({"id": list(range(len(cells))), "name": [f"c{i}" for i in
                                                                       range(len(cells))]},
                            geometry=[Point(a, b) for a, b in zip(x, y, strict=True)],
                            crs=terrain.grid.crs)


def test_status_from_site_and_margin_depth(terrain):
    depth = np.zeros((80, 80))
    depth[10, 10] = 0.2   # at the site of centre 0
    depth[30, 32] = 0.3   # 180 m from centre 1 (within the 300 m margin, outside the site)
    depth[50, 52] = 0.6   # 180 m from centre 2: too deep to walk through
    first = np.where(depth > 0, 4.0, np.nan)
    centres = _centres(terrain, [(10, 10), (30, 30), (50, 50), (70, 70)])
    result = centre_safety(terrain, flood_of(terrain, depth, first), centres, RULES)
    assert result["status"].tolist() == ["unsafe", "at_risk", "unsafe", "safe"]
    assert result["site_depth_m"].iloc[0] == pytest.approx(0.2)
    assert result["margin_depth_m"].iloc[1] == pytest.approx(0.3)
    assert result["hours_to_flooding"].iloc[1] == 4.0
    assert np.isnan(result["hours_to_flooding"].iloc[3])


def test_centre_off_the_terrain_is_named(terrain):
    centres = _centres(terrain, [(5, 5)])
    centres.geometry = [Point(900_000, 100_000)]
    with pytest.raises(InputError, match="c0"):
        centre_safety(terrain, flood_of(terrain, np.zeros((80, 80))), centres, RULES)
