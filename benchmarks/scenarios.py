"""Flood scenarios benchmark: six return periods (2…100 years) on the demo domain, prepared
terrain, every IDF storm duration (each reach's critical one).

    python benchmarks/scenarios.py --work DIR            # DIR from `floodwarn demo --out DIR`
    python benchmarks/scenarios.py --work DIR --workers 1 2

Prints, for each execution (1: one process, the area runs on threads and each scenario
written while the next runs; 2: a local Dask cluster of two processes), the seconds of the
whole job (terrain loaded from disk to every output written, a cluster's start included), the
job's steps, the scenarios' own seconds and the peak memory of all its processes (summed PSS).
Target (issue 14): under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from ensemble import MemorySampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True,
                        help="folder of `floodwarn demo --out` (terrain/ and cache/)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from floodwarn.ensemble import Execution, close_dask_clients
    from floodwarn.pipeline import run_flood_scenarios
    from floodwarn.request import ScenarioRequest

    request = ScenarioRequest.build(terrain_dir=args.work / "terrain",
                                    return_periods=(2, 5, 10, 25, 50, 100))
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp, MemorySampler() as memory:
            start = time.perf_counter()
            result = run_flood_scenarios(request, Path(tmp) / "scenarios",
                                         cache_dir=args.work / "cache",
                                         execution=Execution(workers=workers))
            seconds = time.perf_counter() - start
            close_dask_clients()
        record = result.record
        print(f"workers {workers}: {seconds:.1f} s for 6 return periods "
              f"(target < 60 s); peak PSS {memory.peak_mb:,.0f} MB")
        print("  steps:", json.dumps(record["timings_s"]))
        print("  scenario seconds:", {k: v["seconds"] for k, v in record["scenarios"].items()})
        print("  expected annual:", record["expected_annual"])


if __name__ == "__main__":
    main()
