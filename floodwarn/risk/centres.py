"""Flood safety of collective centres (shelters): safe, at risk or unsafe."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from floodwarn.errors import InputError
from floodwarn.inundation.depth import Inundation
from floodwarn.parameters import CentreSafety
from floodwarn.risk.settlements import footprint_cells
from floodwarn.terrain.model import TerrainModel

STATUSES = ("safe", "at_risk", "unsafe")


def centre_safety(terrain: TerrainModel, flood: Inundation, centres: gpd.GeoDataFrame,
                  rules: CentreSafety) -> pd.DataFrame:
    """``site_depth_m`` (deepest water within ``site_radius_m``), ``margin_depth_m`` (within
    ``margin_m``), ``hours_to_flooding`` of the margin, and ``status``:

    - unsafe: site depth ≥ ``unsafe_site_depth_m`` or margin depth ≥ ``unsafe_margin_depth_m``
      (people cannot shelter there, or cannot walk in);
    - at_risk: margin depth ≥ ``at_risk_margin_depth_m``;
    - safe: otherwise.

    A centre off the terrain (or in the sea) is an error that names it: it must never be
    proposed as a safe destination unseen.
    """
    if centres.crs is None:
        raise InputError("collective centres have no CRS; set one (e.g. EPSG:4326).")
    bad = centres.geometry.isna() | centres.geometry.is_empty
    if bad.any():
        row = centres[bad.to_numpy()].iloc[0]
        raise InputError(f"collective centre {row['id']} ({row['name']}) has an empty "
                         "geometry; fix or drop it.")
    projected = centres.geometry.to_crs(terrain.grid.crs)
    land = (terrain.flowdir != 255) & ~flood.water  # the river itself is not the site
    depth = np.nan_to_num(flood.depth_m, nan=0.0)
    site = np.zeros(len(centres))
    margin = np.zeros(len(centres))
    hours = np.full(len(centres), np.nan)
    for i, geom in enumerate(projected):
        around = footprint_cells(terrain.grid, geom, rules.margin_m, land)
        at = footprint_cells(terrain.grid, geom, rules.site_radius_m, land)
        if around is None or at is None:
            raise InputError(
                f"collective centre {centres['id'].iloc[i]} ({centres['name'].iloc[i]}) has no "
                "land cell of the terrain model around it (outside the domain, in the sea or "
                "under a lake); check its position.")
        r0, r1, c0, c1, inside = at
        site[i] = depth[r0:r1, c0:c1][inside].max()
        r0, r1, c0, c1, inside = around
        d = depth[r0:r1, c0:c1][inside]
        margin[i] = d.max()
        wet = d >= rules.at_risk_margin_depth_m
        if wet.any():
            hours[i] = float(np.nanmin(flood.first_flooding_h[r0:r1, c0:c1][inside][wet]))
    unsafe = (site >= rules.unsafe_site_depth_m) | (margin >= rules.unsafe_margin_depth_m)
    at_risk = ~unsafe & (margin >= rules.at_risk_margin_depth_m)
    status = np.where(unsafe, "unsafe", np.where(at_risk, "at_risk", "safe"))
    return pd.DataFrame({"site_depth_m": site, "margin_depth_m": margin,
                         "hours_to_flooding": hours, "status": status}, index=centres.index)
