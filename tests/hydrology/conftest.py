"""A hydrology model of a small reach network given as plain arrays (no terrain)."""

import numpy as np

from floodwarn.hydrology.simulation import HydrologyModel
from floodwarn.hydrology.water_bodies import WaterBodyNetwork
from floodwarn.inundation.rating_curves import RatingCurves
from floodwarn.kernels.routing import routing_schedule
from floodwarn.parameters import RoutingParameters, load_parameters
from tests.kernels.test_routing import rectangular_curves


def network_model(*, downstream, length_m, slope, width_m, catchment_area_km2, lag_hours,
                  curve_number=79.0) -> HydrologyModel:
    """Reaches with rectangular channels (Manning, the shipped channel n) draining as
    ``downstream`` (0-based, −1 at outlets), no water bodies."""
    routing = load_parameters(RoutingParameters)
    downstream = np.asarray(downstream, np.int64)
    n = downstream.size
    q, area, top = rectangular_curves(n, width_m, slope, routing.manning_n)
    depth = np.ascontiguousarray(np.broadcast_to(np.linspace(0.0, 20.0, q.shape[1]), q.shape),
                                 dtype=np.float32)
    curves = RatingCurves(
        slope=np.broadcast_to(np.asarray(slope, np.float64), (n,)).copy(),
        length_m=np.broadcast_to(np.asarray(length_m, np.float64), (n,)).copy(),
        bankfull_width_m=np.broadcast_to(np.asarray(width_m, np.float64), (n,)).copy(),
        bankfull_depth_m=np.full(n, 1.0), depth_m=depth, discharge_m3s=q, area_m2=area,
        top_width_m=top, dem_top=q.shape[1] - 1)
    area_km2 = np.asarray(catchment_area_km2, np.float64)
    upstream = area_km2.copy()
    for r in routing_schedule(downstream)[0]:  # upstream first
        if downstream[r] >= 0:
            upstream[downstream[r]] += upstream[r]
    order, n_buffers = routing_schedule(downstream)
    return HydrologyModel(
        reach_id=np.arange(1, n + 1), downstream=downstream, visit_order=order,
        n_buffers=int(n_buffers), length_m=curves.length_m, catchment_area_km2=area_km2,
        upstream_area_km2=upstream, curve_number_ii=np.full(n, curve_number),
        lag_hours=np.broadcast_to(np.asarray(lag_hours, np.float64), (n,)).copy(),
        curves=curves, water_bodies=WaterBodyNetwork.empty(n, (1, 1)),
        routing_step_s=routing.routing_step_s,
        reference_flow_share=routing.reference_flow_share, metadata={})
