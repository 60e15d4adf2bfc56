"""Risk benchmark: depth raster and risk on the demo domain; evacuation matching at scale.

    python benchmarks/risk.py --work demo-output   # reuses demo-output/terrain (floodwarn demo)

Prints: seconds for the flood depth raster (stage from the rating curves, depth and first
flooding time on every cell) plus the risk of every shipped settlement and collective centre
(levels, centre safety, evacuation), on the demo terrain after the Amanda-scale storm's
hydrographs are routed (targets: under 2 s); and seconds to match 5,000 settlements with
2,000 centres (target: under 5 s).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr


def _best(fn, repeat: int = 3):
    best = np.inf
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def depth_and_risk(work: Path) -> None:
    from floodwarn.hydrology.water_bodies import locate_water_bodies
    from floodwarn.inundation.depth import flood_inundation
    from floodwarn.io.cache import ArrayCache
    from floodwarn.io.gis_data import load_collective_centres, load_settlements
    from floodwarn.io.terrain_files import load_terrain_model
    from floodwarn.parameters import LevelRules, RoutingParameters, WaterBodies, load_parameters
    from floodwarn.pipeline import demo_forecast, demo_terrain
    from floodwarn.prepared import prepared_hydrology
    from floodwarn.risk.assessment import assess_risk
    from floodwarn.risk.settlements import within_domain

    if not (work / "terrain" / "terrain.json").exists():
        demo_terrain(work)
    model = load_terrain_model(work / "terrain")
    run = demo_forecast(work, model)
    # Prepared once per terrain (the demo's cache): not part of the timed step.
    bodies = locate_water_bodies(model, load_parameters(WaterBodies))
    prepared = prepared_hydrology(model, load_parameters(RoutingParameters), bodies,
                                  ArrayCache(work / "cache"))
    curves, water = prepared.curves, prepared.water | bodies.surface
    with xr.open_dataset(run.out_dir / "hydrographs.nc") as nc:
        discharge = nc["discharge"].isel(member=0).to_numpy()
    hours = np.arange(1, discharge.shape[1] + 1, dtype=np.float64)
    towns, centres = load_settlements(), load_collective_centres()
    towns = towns[within_domain(model, towns, water)]  # as forecast runs keep them
    centres = centres[within_domain(model, centres, water)]
    rules = load_parameters(LevelRules)
    rp = run.reach_results["return_period_class"]
    t_depth, flood = _best(lambda: flood_inundation(model, curves, discharge, hours,
                                                    water=water))
    t_risk, risk = _best(lambda: assess_risk(model, flood, rp, towns, centres, rules))
    print(f"demo domain {model.grid.shape[0]}×{model.grid.shape[1]} cells at 90 m, "
          f"{len(model.reaches):,} reaches, {len(towns)} settlements, {len(centres)} centres")
    print(f"  depth raster + first flooding: {t_depth:.2f} s; risk (levels, centres, "
          f"evacuation): {t_risk:.2f} s; together {t_depth + t_risk:.2f} s (target 2 s)")
    s = risk.summary
    print(f"  levels {s['settlements_by_level']}, centres {s['centres_by_status']}, "
          f"evacuees {s['evacuees']:,} (unmet {s['unmet_evacuees']:,})")


def evacuation_at_scale() -> None:
    from floodwarn.risk.evacuation import match_evacuation

    rng = np.random.default_rng(0)
    towns = rng.uniform(0, 250_000, (5000, 2))  # a 250 km square, about El Salvador's size
    centres = rng.uniform(0, 250_000, (2000, 2))
    demand = rng.integers(50, 2000, 5000)
    capacity = rng.integers(50, 1000, 2000)
    t, plan = _best(lambda: match_evacuation(towns, demand, centres, capacity,
                                             max_distance_km=30, candidates=25), repeat=2)
    print(f"evacuation matching 5,000 settlements × 2,000 centres (25 candidates within "
          f"30 km): {t:.2f} s (target 5 s); placed {demand.sum() - plan.unmet.sum():,.0f} of "
          f"{demand.sum():,}, capacity {capacity.sum():,}, {plan.total_person_km:,.0f} person-km")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    if args.work is None:
        with tempfile.TemporaryDirectory() as tmp:
            depth_and_risk(Path(tmp))
    else:
        depth_and_risk(args.work)
    evacuation_at_scale()


if __name__ == "__main__":
    main()
