"""Terrain engine: conditioned DEM, D8, accumulation, streams and reaches, catchments, HAND.

Kernels live in :mod:`floodwarn.kernels`; this package gives them units, grids and checks.
"""

from floodwarn.terrain.accumulation import flow_accumulation
from floodwarn.terrain.conditioning import fill_depressions, flow_directions
from floodwarn.terrain.grid import Grid, validate_grid
from floodwarn.terrain.hand import HandResult, compute_hand
from floodwarn.terrain.model import TerrainModel, build_terrain_model
from floodwarn.terrain.network import ReachTable, extract_stream_network

__all__ = [
    "Grid",
    "HandResult",
    "ReachTable",
    "TerrainModel",
    "build_terrain_model",
    "compute_hand",
    "extract_stream_network",
    "fill_depressions",
    "flow_accumulation",
    "flow_directions",
    "validate_grid",
]
