"""The service's picture of the collective centres: every site's latest state joined with the
latest forecast (people the evacuation plan sends there), its GBV risk flags, Sphere needs per
site, municipality and department, and the stock gaps with the moves that close them.

Recomputed only when something it depends on changes (a report, the site list, the stock, a new
run): one query tells (:func:`api.store.sites.state_token`), so reading the picture is cheap
and a new report is in the needs the next time anyone asks (benchmarks/site_reports.py measures
how long after).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.deps import municipalities_table
from api.store.models import Run
from api.store.sites import latest_state, site_profiles, state_token, stock_table
from floodwarn.io.forecast_outputs import CENTRES_FILE, SETTLEMENTS_FILE
from floodwarn.logs import get_logger
from floodwarn.parameters import DataSharingRules, SphereStandards, load_parameters
from floodwarn.sites.gbv import gbv_by_municipality, gbv_flags
from floodwarn.sites.needs import area_needs, site_needs
from floodwarn.sites.profiles import centres_from_profiles
from floodwarn.sites.sharing import aggregate_sites, suppress_small_counts
from floodwarn.sites.stock import stock_gaps

log = get_logger(__name__)

#: Projected CRS for distances between warehouses and municipalities (UTM 16N covers the
#: country; errors of a few parts per thousand at its edges do not change an allocation).
DISTANCE_CRS = "EPSG:32616"


@dataclass(frozen=True)
class ForecastArrivals:
    """What the latest succeeded run says about the centres: people it sends to each site, and
    per municipality the evacuees without a place and the earliest hours to flooding."""

    run_id: int | None
    people_arriving: pd.Series  # by site_id
    unplaced_people: pd.Series  # by municipality_id
    hours_to_impact: pd.Series  # by municipality_id

    @classmethod
    def none(cls) -> ForecastArrivals:
        empty = pd.Series(dtype="float64")
        return cls(None, empty, empty, empty)


def forecast_arrivals(session: Session) -> ForecastArrivals:
    """The latest succeeded run's arrivals (none when no run has succeeded or it had no risk
    outputs)."""
    row = session.execute(select(Run.id, Run.out_dir).where(Run.status == "succeeded")
                          .order_by(Run.id.desc()).limit(1)).first()
    if row is None or row.out_dir is None:
        return ForecastArrivals.none()
    out = Path(row.out_dir)
    if not (out / CENTRES_FILE).exists() or not (out / SETTLEMENTS_FILE).exists():
        none = ForecastArrivals.none()
        return ForecastArrivals(row.id, none.people_arriving, none.unplaced_people,
                                none.hours_to_impact)
    centres = gpd.read_file(out / CENTRES_FILE, columns=["id", "occupancy"],
                            ignore_geometry=True)
    towns = gpd.read_file(out / SETTLEMENTS_FILE, ignore_geometry=True)
    arriving = pd.Series(centres["occupancy"].to_numpy(np.float64),
                         index=centres["id"].astype(str))
    unplaced = towns.groupby("municipality_id")["unmet_evacuees"].sum().astype(float)
    at_risk = towns[towns["evacuees"] > 0]
    hours = at_risk.groupby("municipality_id")["hours_to_flooding"].min()
    return ForecastArrivals(row.id, arriving, unplaced, hours)


@dataclass(frozen=True)
class CentresPicture:
    """Everything the site screens, needs, exports and OGC collections show, at one state."""

    token: tuple[Any, ...]
    run_id: int | None
    state: gpd.GeoDataFrame  # per active site: profile, latest report, flags, arrivals, needs
    needs_by_municipality: pd.DataFrame
    needs_by_department: pd.DataFrame
    gbv_by_municipality: pd.DataFrame
    gaps: pd.DataFrame
    moves: pd.DataFrame
    computed_s: float


def build_picture(session: Session, token: tuple[Any, ...], standards: SphereStandards,
                  profiles: gpd.GeoDataFrame | None = None,
                  arrivals: ForecastArrivals | None = None) -> CentresPicture:
    """Compute the whole picture from the store (see the module's docstring); ``profiles``
    and ``arrivals``: the active sites' profiles and the latest run's arrivals when the caller
    holds them already (they change only on an import or a run, reports far more often)."""
    started = time.perf_counter()
    if arrivals is None:
        arrivals = forecast_arrivals(session)
    state = latest_state(session, profiles=profiles)
    state["people_arriving"] = state["site_id"].map(arrivals.people_arriving).fillna(0.0)
    live = centres_from_profiles(
        state, people_present=state.set_index("site_id")["people_present"],
        site_status=state.set_index("site_id")["site_status"],
        area_per_person_m2=standards.covered_area_m2_per_person)
    # What a replan may still send there: profiled capacity − latest occupancy, and whether
    # the site may receive people at all (usable, not closed or full, capacity known).
    state["capacity_basis"] = live["capacity_basis"].to_numpy()
    state["capacity_remaining"] = live["capacity"].to_numpy()
    state["destination"] = live["shelter"].to_numpy() & (live["capacity"].to_numpy() > 0)
    flags = gbv_flags(state, min_area_per_person_m2=standards.covered_area_m2_per_person)
    state = state.join(flags)
    needs = site_needs(state, standards)
    state = state.join(needs)
    unplaced = arrivals.unplaced_people
    by_municipality = area_needs(needs.assign(municipality_id=state["municipality_id"]),
                                 "municipality_id", unplaced_people=unplaced,
                                 standards=standards)
    dept_of = dict(zip(state["municipality_id"], state["department_code"], strict=False))
    by_department = area_needs(needs.assign(department_code=state["department_code"]),
                               "department_code",
                               unplaced_people=unplaced.groupby(
                                   unplaced.index.map(dept_of)).sum() if len(unplaced) else None,
                               standards=standards)
    stock = stock_table(session)
    if len(stock) and len(by_municipality):
        gaps, moves = _gaps(by_municipality, stock, arrivals.hours_to_impact)
    else:
        gaps, moves = pd.DataFrame(), pd.DataFrame()
    elapsed = time.perf_counter() - started
    log.info("centres picture computed", extra={"sites": len(state), "run_id": arrivals.run_id,
                                                "seconds": round(elapsed, 3)})
    return CentresPicture(token=token, run_id=arrivals.run_id, state=state,
                          needs_by_municipality=by_municipality,
                          needs_by_department=by_department,
                          gbv_by_municipality=gbv_by_municipality(state), gaps=gaps,
                          moves=moves, computed_s=elapsed)


def _gaps(by_municipality: pd.DataFrame, stock: pd.DataFrame,
          hours: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    polygons = municipalities_table().set_index("id")
    centres = polygons.geometry.to_crs(DISTANCE_CRS).representative_point()
    municipality_xy = pd.DataFrame({"x": centres.x, "y": centres.y}, index=polygons.index)
    points = gpd.GeoSeries(gpd.points_from_xy(stock["lon"], stock["lat"]), crs="EPSG:4326"
                           ).to_crs(DISTANCE_CRS)
    located = stock.assign(x=points.x.to_numpy(), y=points.y.to_numpy())
    return stock_gaps(by_municipality, municipality_xy, located,
                      hours_to_impact=hours if len(hours) else None)


class CentresView:
    """The current picture, rebuilt when the store's state token or the latest run changes."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._picture: CentresPicture | None = None
        self._standards = load_parameters(SphereStandards)
        self._profiles: tuple[tuple[Any, ...], gpd.GeoDataFrame] | None = None
        self._arrivals: ForecastArrivals | None = None

    def picture(self) -> CentresPicture:
        with self._sessions() as session:
            latest_run = session.scalar(select(Run.id).where(Run.status == "succeeded")
                                        .order_by(Run.id.desc()).limit(1))
            token = (*state_token(session), latest_run)
            current = self._picture
            if current is not None and current.token == token:
                return current
            with self._lock:
                if self._picture is not None and self._picture.token == token:
                    return self._picture
                list_token = token[1:3]  # the site list's last change and size
                if self._profiles is None or self._profiles[0] != list_token:
                    self._profiles = (list_token, site_profiles(session))
                # A finished run's files never change: read them once per run, not per report.
                if self._arrivals is None or self._arrivals.run_id != latest_run:
                    self._arrivals = forecast_arrivals(session)
                self._picture = build_picture(session, token, self._standards,
                                              self._profiles[1], self._arrivals)
                return self._picture


# --------------------------------------------------------------------------- shared data

#: What the per-site export shows besides the counts (no free text, no author).
SHARED_SITE_COLUMNS = ["site_id", "name", "municipality_id", "municipality", "department_code",
                       "department", "lat", "lon", "site_status", "last_report_at",
                       "capacity_people", "capacity_source"]


def sharing_rules() -> DataSharingRules:
    """The small-number rule and the HXL tags (``models/data_sharing.yaml``)."""
    return load_parameters(DataSharingRules)


def shared_sites(picture: CentresPicture, rules: DataSharingRules) -> gpd.GeoDataFrame:
    """Per active site: where it is, its state and its suppressed counts (no free text)."""
    state = picture.state
    counts = aggregate_sites(state, None)
    table = state[[c for c in SHARED_SITE_COLUMNS if c in state.columns]].join(
        counts.drop(columns=[c for c in counts.columns if c in SHARED_SITE_COLUMNS]))
    # Suppressed within each municipality too: a site's hidden count must not be recoverable
    # from the municipality's published total minus its other sites.
    table = suppress_small_counts(table, rules, within="municipality_id")
    return gpd.GeoDataFrame(table, geometry=state.geometry, crs=state.crs)


def shared_municipalities(picture: CentresPicture, rules: DataSharingRules
                          ) -> gpd.GeoDataFrame:
    """Per municipality with sites: the sum of its sites' counts, suppressed, on its polygon."""
    counts = aggregate_sites(picture.state, "municipality_id")
    polygons = municipalities_table().set_index("id")
    names = polygons.loc[counts.index]
    table = pd.DataFrame({"municipality_id": counts.index,
                          "municipality": names["name"].to_numpy(),
                          "department_code": names["department_code"].to_numpy(),
                          "department": names["department"].to_numpy()}, index=counts.index
                         ).join(counts)
    table = suppress_small_counts(table, rules)
    return gpd.GeoDataFrame(table.reset_index(drop=True),
                            geometry=names.geometry.simplify(0.001).to_numpy(),
                            crs=polygons.crs)
