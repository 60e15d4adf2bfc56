"""Settlement flooding metrics on a small grid, level rules at their boundaries, bad input."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, Polygon

from floodwarn.errors import InputError
from floodwarn.parameters import LevelRules, load_parameters
from floodwarn.risk.settlements import footprint_radius_m, settlement_flooding
from tests.risk.conftest import flood_of

RULES = load_parameters(LevelRules)


def _metrics(**values):
    base = {"max_depth_m": 0.0, "mean_depth_m": 0.0, "flooded_share": 0.0, "people_exposed": 0,
            "hours_to_flooding": np.nan, "return_period_years": 0.0}
    return pd.DataFrame([{**base, **values}])


def test_footprint_radius_from_population():
    # 50,265 people at 4,000 per km² cover 12.566 km²: a circle of 2,000 m.
    assert footprint_radius_m(np.array([50_265.0]), RULES.footprint)[0] == pytest.approx(
        2000.0, rel=1e-4)
    assert footprint_radius_m(np.array([10.0]), RULES.footprint)[0] == 250.0


def _at(terrain, row, col, **fields):
    x, y = terrain.grid.cell_centres(np.array([row * 80 + col]))
    frame = gpd.GeoDataFrame({"id": [1], "name": ["Prueba"], "population": [1000], **fields},
                             geometry=[Point(x[0], y[0])], crs=terrain.grid.crs)
    return frame


def test_metrics_worked_by_hand(terrain):
    # A polygon of exactly 4 × 4 cells around rows 40-43, cols 40-43; 4 of them flooded.
    t = terrain.grid.transform
    x0, y0 = t.c + 40 * t.a, t.f + 40 * t.e
    square = Polygon([(x0, y0), (x0 + 4 * t.a, y0), (x0 + 4 * t.a, y0 + 4 * t.e),
                      (x0, y0 + 4 * t.e)])
    settlements = gpd.GeoDataFrame({"id": [7], "name": ["Cuadro"], "population": [1600]},
                                   geometry=[square], crs=terrain.grid.crs)
    depth = np.zeros((80, 80))
    depth[40, 40:44] = [2.0, 1.0, 0.5, 0.1]  # the last is below wet_depth_m (0.15)
    depth[41, 40] = 0.3
    first = np.where(depth > 0, 9.0, np.nan)
    first[40, 41] = 3.0
    rp = np.full(len(terrain.reaches), 5)
    m = settlement_flooding(terrain, flood_of(terrain, depth, first), rp, settlements, RULES)
    row = m.iloc[0]
    assert row.max_depth_m == pytest.approx(2.0)
    assert row.mean_depth_m == pytest.approx(3.9 / 16)
    assert row.flooded_share == pytest.approx(4 / 16)
    assert row.people_exposed == 400
    assert row.hours_to_flooding == pytest.approx(3.0)
    assert row.flooding_reach_id == terrain.catchment_id[40, 40]
    assert row.risk_score == pytest.approx(400 * (2.0 + 1.0 + 0.5 + 0.3) / 4)


def test_river_channels_and_lakes_are_not_the_settlements_land(terrain):
    # The same square with its first row's cells marked as water (a river through town): they
    # are neither flooded land nor people's exposure; the share is of the 12 land cells.
    t = terrain.grid.transform
    x0, y0 = t.c + 40 * t.a, t.f + 40 * t.e
    square = Polygon([(x0, y0), (x0 + 4 * t.a, y0), (x0 + 4 * t.a, y0 + 4 * t.e),
                      (x0, y0 + 4 * t.e)])
    settlements = gpd.GeoDataFrame({"id": [7], "name": ["Cuadro"], "population": [1200]},
                                   geometry=[square], crs=terrain.grid.crs)
    depth = np.zeros((80, 80))
    depth[40, 40:44] = np.nan  # the channel carries no flood depth
    depth[41, 40:42] = [0.4, 0.2]
    water = np.zeros((80, 80), bool)
    water[40, 40:44] = True
    rp = np.full(len(terrain.reaches), 5)
    m = settlement_flooding(terrain, flood_of(terrain, depth, water=water), rp, settlements,
                            RULES).iloc[0]
    assert m.max_depth_m == pytest.approx(0.4)
    assert m.flooded_share == pytest.approx(2 / 12)
    assert m.people_exposed == 200


def test_bad_settlements_are_named(terrain):
    dry = flood_of(terrain, np.zeros((80, 80)))
    rp = np.zeros(len(terrain.reaches))
    with pytest.raises(InputError, match=r"Prueba.*population 0"):
        settlement_flooding(terrain, dry, rp, _at(terrain, 10, 10).assign(population=[0]), RULES)
    far = _at(terrain, 10, 10)
    far.geometry = [Point(900_000, 100_000)]
    with pytest.raises(InputError, match=r"Prueba.*outside the terrain domain"):
        settlement_flooding(terrain, dry, rp, far, RULES)
    bowtie = _at(terrain, 10, 10)
    bowtie.geometry = [Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])]
    with pytest.raises(InputError, match="invalid geometry"):
        settlement_flooding(terrain, dry, rp, bowtie, RULES)
    with pytest.raises(InputError, match="no CRS"):
        settlement_flooding(terrain, dry, rp, _at(terrain, 10, 10).set_crs(None,
                                                                           allow_override=True),
                            RULES)


@pytest.mark.parametrize(("members", "level"), [
    (["verde"] * 10, "verde"),
    (["amarilla"] * 4 + ["verde"] * 6, "verde"),           # P(≥ amarilla) 0.4 < 0.5
    (["amarilla"] * 5 + ["verde"] * 5, "amarilla"),        # 0.5
    (["naranja"] * 7 + ["verde"] * 3, "amarilla"),         # P(≥ naranja) 0.7 < 0.75
    (["naranja"] * 8 + ["verde"] * 2, "naranja"),          # 0.8 > 0.75
    (["roja"] * 5 + ["verde"] * 5, "roja"),                # severe impact as likely as not
    (["roja"] * 4 + ["naranja"] * 4 + ["verde"] * 2, "naranja"),  # P(≥ naranja) 0.8
])
def test_ensemble_levels_by_probability(members, level):
    from floodwarn.risk.settlements import ensemble_levels

    levels, reason, probs = ensemble_levels(np.array(members, dtype=object)[:, None], RULES)
    assert levels[0] == level
    assert reason[0].startswith(f"ensemble: P(≥ {level})" if level != "verde" else "ensemble")
    share = {lv: sum(m in ("amarilla", "naranja", "roja")[k:] for m in members) / len(members)
             for k, lv in enumerate(("amarilla", "naranja", "roja"))}
    for lv, p in share.items():
        assert probs[f"prob_{lv}"][0] == pytest.approx(p)
