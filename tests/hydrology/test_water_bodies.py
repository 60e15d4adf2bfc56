"""Reservoirs and lakes on a terrain: found as flat water on the DEM, reaches passed through,
the outlet routed as a level pool from a run-input level; base flow before the storm."""

import numpy as np
import pytest

from floodwarn.errors import InputError
from floodwarn.hydrology.simulation import build_hydrology_model, simulate
from floodwarn.hydrology.water_bodies import check_reservoir_levels, locate_water_bodies
from floodwarn.inundation.rating_curves import reach_rating_curves
from floodwarn.kernels.routing import REGIME_LEVEL_POOL, REGIME_PASS_THROUGH
from floodwarn.parameters import RoutingParameters, WaterBodies, load_parameters
from floodwarn.terrain.model import build_terrain_model
from tests.conftest import utm_grid

CELL = 90.0


def _valley_with_a_lake():
    """A valley falling south 2 m per cell row with a lake of 20 × 11 cells at 141 m, a
    metre above the valley floor where it spills out (row 80): the lake is flat water, like
    SRTM shows lakes."""
    rows, cols = 160, 41
    across = np.abs(np.arange(cols) - cols // 2) * 2.0
    z = 300.0 - np.arange(rows)[:, None] * 2.0 + across[None, :]
    lake = (np.arange(rows)[:, None] >= 60) & (np.arange(rows)[:, None] < 80) & \
           (np.abs(np.arange(cols) - cols // 2) <= 5)[None, :]
    z[lake] = 141.0
    return z.astype(np.float32), lake


@pytest.fixture(scope="module")
def lake_terrain():
    dem, lake = _valley_with_a_lake()
    grid = utm_grid(dem.shape, cellsize=CELL)
    model = build_terrain_model(dem, grid, stream_area_km2=0.5, max_reach_length_m=900.0)
    # The lake's position in lon/lat, as a DEM's tags would record it.
    from pyproj import Transformer

    x, y = model.grid.cell_centres(np.array([70 * dem.shape[1] + dem.shape[1] // 2]))
    lon, lat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True).transform(x[0], y[0])
    body = {
        "id": "laguna", "name": "Laguna de Prueba", "kind": "lake",
        "point_lonlat": [lon, lat], "outlet_lonlat": None,
        "surface_area_km2": float(lake.sum() * CELL * CELL / 1e6), "surface_level_m": 141.0,
        "normal_level_m": {m: 141.0 for m in ("jan", "feb", "mar", "apr", "may", "jun", "jul",
                                              "aug", "sep", "oct", "nov", "dec")},
        "table": [{"level_m": 140.0, "storage_hm3": 10.0, "outflow_m3s": 0.0},
                  {"level_m": 141.0, "storage_hm3": 11.78, "outflow_m3s": 5.0},
                  {"level_m": 144.0, "storage_hm3": 17.12, "outflow_m3s": 300.0}],
        "source": "test lake of 20 × 11 cells", "approximation": False}
    bodies = WaterBodies.model_validate({"version": "t", "source": "test lake only",
                                         "water_bodies": [body]})
    return model, lake, bodies


def test_the_lake_is_found_as_its_flat_surface_and_drains_through_one_reach(lake_terrain):
    model, lake, bodies = lake_terrain
    network = locate_water_bodies(model, bodies)
    assert network.ids == ("laguna",)
    np.testing.assert_array_equal(network.surface, lake)
    outlet = int(network.outlet_reach[0])
    # The outlet reach carries the lake's whole basin out below the dam (row 80).
    inside = np.flatnonzero(network.pass_through)
    assert inside.size >= 1 and outlet not in inside
    assert model.reaches.upstream_area_km2[outlet] >= model.reaches.upstream_area_km2[inside].max()
    assert network.body_of_reach[outlet] == 0 and (network.body_of_reach[inside] == 0).all()
    assert network.placement[0]["found_by"] == "flat water surface on the DEM"


def test_the_lake_stores_the_storm_and_releases_it_slowly(lake_terrain):
    model, _, bodies = lake_terrain
    network = locate_water_bodies(model, bodies)
    routing = load_parameters(RoutingParameters)
    curves = reach_rating_curves(model, routing)
    hydro = build_hydrology_model(model, routing, np.full(len(model.reaches), 85.0), curves,
                                  network)
    rain = np.zeros((48, len(model.reaches)))
    rain[:6] = 30.0
    sim = simulate(hydro, rain, np.full(48, 3600.0), base_flow_l_s_km2=5.0,
                   initial_levels_m=network.initial_levels(6))
    outlet = int(network.outlet_reach[0])
    assert sim.regime[outlet] == REGIME_LEVEL_POOL
    assert (sim.regime[network.pass_through] == REGIME_PASS_THROUGH).all()
    assert sim.water_body_peak_level_m[0] > 141.0
    assert sim.water_body_outflow_m3s[0].max() < sim.water_body_inflow_m3s[0].max()
    # The level peaks when outflow equals inflow: after the inflow has peaked.
    assert np.argmax(sim.water_body_level_m[0]) > np.argmax(sim.water_body_inflow_m3s[0])
    # The channels and the lake close to 1e-4 (hydrographs re-sampled where they meet and
    # where the lake takes them); the whole balance, with the catchments' reservoirs sampled
    # every 10 minutes, to 1e-3 (the plausibility bound).
    assert abs(sim.mass_balance["routing_relative_error"]) < 1e-4
    assert abs(sim.mass_balance["relative_error"]) < 1e-3


def test_initial_levels_are_checked(lake_terrain):
    model, _, bodies = lake_terrain
    network = locate_water_bodies(model, bodies)
    assert network.initial_levels(5, {"laguna": 142.0}).tolist() == [142.0]
    # A body off this terrain (DGPC sends every reservoir's level) is left aside.
    assert network.initial_levels(5, {"cerron": 240.0}).tolist() == [141.0]
    with pytest.raises(InputError, match=r"outside its storage table \(140…144 m"):
        network.initial_levels(5, {"laguna": 200.0})


def test_run_levels_are_checked_before_anything_is_loaded():
    shipped = load_parameters(WaterBodies)
    check_reservoir_levels({"cerron_grande": 236.4}, shipped)
    with pytest.raises(InputError, match=r"unknown water body 'nope'.*cerron_grande"):
        check_reservoir_levels({"nope": 1.0}, shipped)
    with pytest.raises(InputError, match=r"nan for Embalse Cerrón Grande .* is not a number"):
        check_reservoir_levels({"cerron_grande": float("nan")}, shipped)
    with pytest.raises(InputError, match=r"500.0 m for Embalse Cerrón Grande .* \(210…247 m"):
        check_reservoir_levels({"cerron_grande": 500.0}, shipped)


def test_a_body_outside_the_terrain_is_left_out(lake_terrain):
    model, _, _ = lake_terrain
    shipped = load_parameters(WaterBodies)  # El Salvador's, far from this test grid
    assert locate_water_bodies(model, shipped).n_bodies == 0


def test_base_flow_is_the_steady_state_before_the_storm(lake_terrain):
    model, _, _ = lake_terrain
    routing = load_parameters(RoutingParameters)
    curves = reach_rating_curves(model, routing)
    network = locate_water_bodies(model, load_parameters(WaterBodies))  # none here
    hydro = build_hydrology_model(model, routing, np.full(len(model.reaches), 79.0), curves,
                                  network)
    dry = np.zeros((12, len(model.reaches)))
    sim = simulate(hydro, dry, np.full(12, 3600.0), base_flow_l_s_km2=8.0)
    expected = 8.0 / 1000.0 * model.reaches.upstream_area_km2
    np.testing.assert_allclose(sim.base_flow_m3s, expected, rtol=1e-9)
    np.testing.assert_allclose(sim.discharge_m3s, np.repeat(expected[:, None], 12, 1),
                               rtol=1e-5)
    assert (sim.peak_step == -1).all()  # nothing rises above the base flow
    with pytest.raises(InputError, match="base flow"):
        simulate(hydro, dry, np.full(12, 3600.0), base_flow_l_s_km2=-1.0)
