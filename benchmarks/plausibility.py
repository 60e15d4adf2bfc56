"""Plausibility benchmark: the figures a Salvadoran hydrologist checks on the demo storm.

    python benchmarks/plausibility.py --work demo-output            # runs `floodwarn demo`
    python benchmarks/plausibility.py --work demo-output --before REF  # and at a git ref

Prints, for the SYNTHETIC Amanda-scale storm on the demo terrain (and, with ``--before``, the
same run of an earlier commit, checked out in a temporary git worktree, side by side): depths
of the towns the review named; reaches past their DEM rating curve (all, rivers over
1,000 km², and those whose 2-year flood already is); settlements with water on their land,
people in it, evacuees, levels, alerts without water or people; the Lempa's peak, its
Francou-Rodier K and the share of its basin's runoff out of the mouth within the forecast;
flood-wave celerity on large rivers; zero-slope reaches; towns tied to another municipality
than their namesake; the water bodies; and the routing of a flood pulse against the analytic
diffusion wave (peak loss of a 1-hour and a 4-hour pulse on a steep and a lowland channel).
Reference figures: Amanda and Cristóbal (2020) put 12,154 people in 210 shelters; the Lempa
released 9,000-9,500 m³/s at 15 de Septiembre in 12-E (2011), about 6,000 in Agatha (2010)
(see models/plausibility.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

NAMED_TOWNS = ("Aguilares", "Santa Ana", "Guazapa", "Metapán")
REPO = Path(__file__).resolve().parents[1]


def run_demo(work: Path, source: Path) -> float:
    """`floodwarn demo` of the source tree ``source`` into ``work``; returns seconds."""
    env = {**os.environ, "PYTHONPATH": str(source), "COLUMNS": "200"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from api.cli import app; app()", "demo", "--out",
                    str(work)], cwd=source, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", str(text).lower())
                   if not unicodedata.combining(c)).removeprefix("ciudad ").strip()


def figures(work: Path) -> dict[str, Any]:
    """The figures of one demo run, from its files (any floodwarn version's outputs)."""
    import geopandas as gpd
    import xarray as xr

    run = work / "forecast"
    record = json.loads((run / "run.json").read_text())
    reaches = gpd.read_file(run / "reaches.gpkg")
    towns = gpd.read_file(run / "settlements.gpkg")
    out: dict[str, Any] = {}
    named = towns.set_index("name")["max_depth_m"]
    for town in NAMED_TOWNS:
        out[f"depth {town}, m"] = round(float(named.get(town, np.nan)), 1)
    deepest = towns.sort_values("max_depth_m", ascending=False).iloc[0]
    out["deepest settlement"] = f"{deepest['name']} {deepest['max_depth_m']:.1f} m"

    area = reaches["upstream_area_km2"].to_numpy()
    large = area >= 1000
    past = (reaches["rating_curve_extended"] if "rating_curve_extended" in reaches
            else reaches["stage_beyond_rating_curve"]).astype(bool).to_numpy()
    out["reaches past their DEM rating curve"] = int(past.sum())
    out["... of rivers ≥ 1,000 km²"] = f"{int((past & large).sum())} of {int(large.sum())}"
    if "q_dem_curve_top_m3s" in reaches:
        q2_past = reaches["q2_m3s"].to_numpy() > reaches["q_dem_curve_top_m3s"].to_numpy()
        out["... whose 2-year flood is past it"] = int((q2_past & large).sum())
    else:
        out["... whose 2-year flood is past it"] = "n/a (not in this version's outputs)"

    wet = (towns["max_depth_m"] >= 0.15) & (towns["people_exposed"] > 0)
    out[f"settlements with water (of {len(towns)})"] = int(wet.sum())
    out["people in flooded cells"] = int(towns["people_exposed"].sum())
    out["evacuees (naranja/roja)"] = int(towns["evacuees"].sum())
    out["levels"] = {lv: int((towns["level"] == lv).sum())
                     for lv in ("verde", "amarilla", "naranja", "roja")}
    empty_alerts = (towns["level"] != "verde") & ((towns["max_depth_m"] < 0.15) |
                                                   (towns["people_exposed"] == 0))
    out["alerts with no water or nobody exposed"] = int(empty_alerts.sum())

    downstream = reaches["downstream_id"].to_numpy()
    outlets = np.flatnonzero(downstream == 0)
    mouth = int(outlets[np.argmax(area[outlets])])
    peak = float(reaches["peak_m3s"].iloc[mouth])
    out["Lempa (largest basin) area, km²"] = round(float(area[mouth]))
    out["Lempa peak at the mouth, m³/s"] = round(peak)
    out["Lempa Francou-Rodier K"] = round(10 * (1 - np.log10(peak / 1e6)
                                                / np.log10(area[mouth] / 1e8)), 2)
    basin = _basin(mouth, downstream)
    runoff = float(reaches["catchment_runoff_m3"].to_numpy()[basin].sum())
    with xr.open_dataset(run / "hydrographs.nc") as nc:
        q = nc["discharge"].isel(member=0).sel(reach=mouth + 1).to_numpy().astype(float)
        bounds = nc["time_bnds"].to_numpy()
    dt = (bounds[:, 1] - bounds[:, 0]).astype("timedelta64[s]").astype(float)
    base = float(reaches["base_flow_m3s"].iloc[mouth]) if "base_flow_m3s" in reaches else 0.0
    volume = float(np.sum(0.5 * (np.concatenate([[base], q[:-1]]) + q) * dt)) - base * dt.sum()
    out["share of the Lempa's runoff out within the forecast"] = f"{volume / runoff:.0%}"
    if "celerity_m_s" in reaches:
        c = reaches["celerity_m_s"].to_numpy()[large]
        c = c[c > 0]
        out["celerity on rivers ≥ 1,000 km², m/s (median, 95th)"] = (
            f"{np.median(c):.1f}, {np.percentile(c, 95):.1f}")
    else:
        out["celerity on rivers ≥ 1,000 km², m/s (median, 95th)"] = "n/a (not output)"
    terrain = gpd.read_file(work / "terrain" / "reaches.gpkg")
    out["reaches with zero drop on the filled DEM"] = int((terrain["slope"] == 0).sum())
    if "channel_slope" in reaches:
        floor = float(reaches["channel_slope"].min())
        out[f"reaches at the shared slope floor ({floor:g})"] = int(
            (reaches["channel_slope"] <= floor * (1 + 1e-9)).sum())
    out["towns tied elsewhere than their namesake municipality"] = _namesake_mismatches(towns)
    k = 10 * (1 - np.log10(np.maximum(reaches["peak_m3s"], 1e-9) / 1e6)
              / np.log10(np.maximum(area, 1e-9) / 1e8))
    judged = area >= 100
    out["max Francou-Rodier K (basins ≥ 100 km²)"] = round(float(k[judged].max()), 2)
    out["mass balance relative error"] = f"{record['mass_balance']['relative_error']:.1e}"
    for body in record.get("water_bodies", []):
        out[f"{body['name']}: level, m (start → peak); inflow → outflow, m³/s"] = (
            f"{body['initial_level_m']:.1f} → {body['peak_level_m']:.1f}; "
            f"{body['peak_inflow_m3s']:,.0f} → {body['peak_outflow_m3s']:,.0f}")
    warnings = record.get("plausibility", {}).get("warnings")
    out["plausibility warnings"] = ([w["en"] for w in warnings] if warnings is not None
                                    else "n/a (no report in this version)")
    return out


def _basin(outlet: int, downstream: np.ndarray) -> np.ndarray:
    """Reaches (0-based) draining to ``outlet``; ``downstream`` holds 1-based ids, 0 out."""
    upstream: dict[int, list[int]] = {}
    for r, d in enumerate(downstream):
        if d > 0:
            upstream.setdefault(int(d) - 1, []).append(r)
    found, stack = [], [outlet]
    while stack:
        r = stack.pop()
        found.append(r)
        stack.extend(upstream.get(r, []))
    return np.array(found)


def _namesake_mismatches(towns: Any) -> int:
    """Towns whose name is a municipality of their department but tied to another one."""
    from floodwarn.io.gis_data import load_municipalities

    munis = load_municipalities()
    by_department = {}
    for row in munis.itertuples():
        by_department.setdefault(_plain(row.department), set()).add(_plain(row.name))
    count = 0
    for row in towns.itertuples():
        names = by_department.get(_plain(row.department), set())
        if _plain(row.name) in names and _plain(row.name) != _plain(row.municipality):
            count += 1
    return count


def routing_against_analytic() -> dict[str, str]:
    """Peak loss of a Gaussian pulse over 100 km (fifty 2 km reaches) routed at 10-minute
    steps, against the analytic diffusion wave (tests/hydrology/test_routing_accuracy.py)."""
    sys.path.insert(0, str(REPO))
    from tests.hydrology.test_routing_accuracy import BASE_M3S, N_REACHES, routed_and_analytic

    out = {}
    for slope, name in ((0.01, "steep"), (0.0005, "lowland")):
        for sigma in (1.0, 4.0):
            routed, t, analytic = routed_and_analytic(slope, sigma, 600.0)
            rise = 200.0
            loss = 1 - (routed["peak"][N_REACHES - 1] - BASE_M3S) / rise
            physics = 1 - (analytic.max() - BASE_M3S) / rise
            shift = (routed["peak_time_s"][N_REACHES - 1] - t[analytic.argmax()]) / 60
            out[f"{name} S0={slope:g}, {sigma:g}-h pulse"] = (
                f"peak loss {loss:.1%} (physics {physics:.1%}), timing {shift:+.0f} min")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--before", default=None, help="git ref to compare with")
    parser.add_argument("--reuse", action="store_true",
                        help="read an existing run in --work instead of running the demo")
    args = parser.parse_args()
    columns: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    if args.before:
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree),
                            args.before], check=True, stdout=subprocess.DEVNULL)
            try:
                seconds["before"] = run_demo(Path(tmp) / "demo", tree)
                columns[f"before ({args.before})"] = figures(Path(tmp) / "demo")
            finally:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                str(tree)], check=True)
    if not args.reuse:
        seconds["now"] = run_demo(args.work, REPO)
    columns["now"] = figures(args.work)
    print("SYNTHETIC Amanda-scale storm (72 h) on the SYNTHETIC demo terrain")
    names = list(dict.fromkeys(k for col in columns.values() for k in col))
    for name in names:
        print(f"\n{name}")
        for label, col in columns.items():
            print(f"  {label:>24}: {col.get(name, 'n/a')}")
    print("\nrouting against the analytic diffusion wave (10-minute steps, 100 km)")
    for name, value in routing_against_analytic().items():
        print(f"  {name:>32}: {value}")
    if seconds:
        print("\n`floodwarn demo` wall time: " + ", ".join(f"{k} {v:.0f} s"
                                                        for k, v in seconds.items()))


if __name__ == "__main__":
    main()
