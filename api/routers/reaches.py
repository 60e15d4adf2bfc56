"""A run's river reaches for the map: lines coloured by the return period of their forecast
peak, and one reach's hydrograph against its 2- to 100-year flood discharges."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from api.deps import CallerDep, RunId, ServiceDep
from api.errors import COMMON_RESPONSES
from api.payload import Payload, display_geojson
from api.store.runs import succeeded_output_dir
from floodwarn.errors import NotFoundError
from floodwarn.io.forecast_outputs import HYDROGRAPHS_FILE, REACHES_FILE

router = APIRouter(prefix="/runs", tags=["runs"], responses=COMMON_RESPONSES)

#: Return periods whose discharges the run's reach table carries (q2_m3s … q100_m3s).
RETURN_PERIODS = (2, 5, 10, 25, 50, 100)
#: Reaches drawn whatever their order: a peak of this return period or more.
DRAWN_RETURN_PERIOD = 5
#: Small rivers are drawn simplified less than boundaries: ≈ 30 m.
REACH_SIMPLIFY_DEG = 0.0003
_COLUMNS = ["reach_id", "strahler", "upstream_area_km2", "peak_m3s", "hours_to_peak",
            "time_of_peak", "return_period_class", "bankfull_q_m3s",
            *[f"q{years}_m3s" for years in RETURN_PERIODS]]


class RunReaches:
    """One succeeded run's reach table and hydrographs, read on first use (a run's files never
    change once it has finished)."""

    def __init__(self, run_id: int, out_dir: Path) -> None:
        self.run_id, self.out_dir = run_id, out_dir
        self._lock = threading.Lock()
        self._table: Any = None
        self._maps: dict[int, Payload] = {}

    def _file(self, name: str) -> Path:
        path = self.out_dir / name
        if not path.exists():
            raise NotFoundError(f"run {self.run_id} has no {name}.")
        return path

    def table(self) -> Any:
        """The reach table's figures (no geometry: the lines are read only for the map
        layer), indexed by reach id."""
        with self._lock:
            if self._table is None:
                import geopandas as gpd

                frame = gpd.read_file(self._file(REACHES_FILE), columns=_COLUMNS,
                                      ignore_geometry=True, engine="pyogrio")
                self._table = frame.set_index("reach_id", drop=False)
            return self._table

    def map_layer(self, min_strahler: int) -> Payload:
        """Reaches of Strahler order ``min_strahler`` and above, and every reach whose peak
        reaches the 5-year flood, as display GeoJSON."""
        with self._lock:
            cached = self._maps.get(min_strahler)
        if cached is not None:
            return cached
        import geopandas as gpd

        drawn = gpd.read_file(
            self._file(REACHES_FILE), columns=_COLUMNS, engine="pyogrio",
            where=f"strahler >= {int(min_strahler)} "
                  f"OR return_period_class >= {DRAWN_RETURN_PERIOD}").to_crs("EPSG:4326")
        drawn = drawn.assign(peak_m3s=drawn["peak_m3s"].round(1),
                             hours_to_peak=drawn["hours_to_peak"].round(1))
        payload = Payload.of(display_geojson(
            drawn, ["reach_id", "strahler", "return_period_class", "peak_m3s", "hours_to_peak"],
            simplify_deg=REACH_SIMPLIFY_DEG), "application/geo+json")
        with self._lock:
            self._maps[min_strahler] = payload
        return payload

    def timeline(self) -> dict[str, Any]:
        """The forecast's start, end and step length (from the hydrographs' time bounds)."""
        import netCDF4

        with netCDF4.Dataset(self._file(HYDROGRAPHS_FILE)) as nc:
            bounds = np.asarray(nc["time_bnds"][:], dtype=np.float64)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        start, end = (epoch + timedelta(hours=float(bounds[0, 0])),
                      epoch + timedelta(hours=float(bounds[-1, 1])))
        return {"run_id": self.run_id, "start": start.isoformat(timespec="minutes"),
                "end": end.isoformat(timespec="minutes"), "steps": len(bounds),
                "step_hours": float(bounds[0, 1] - bounds[0, 0]),
                "hours": (end - start).total_seconds() / 3600.0}

    def hydrograph(self, reach_id: int) -> dict[str, Any]:
        """The reach's discharge at every step end for every member, its flood discharges and
        peak; with several members, their spread (min, 10th, 50th, 90th percentile, max)."""
        table = self.table()
        if reach_id not in table.index:
            raise NotFoundError(f"run {self.run_id} has no reach {reach_id} (reach ids are "
                                f"1…{len(table)}).")
        row = table.loc[reach_id]
        import netCDF4

        with netCDF4.Dataset(self._file(HYDROGRAPHS_FILE)) as nc:
            ids = np.asarray(nc["reach"][:])
            index = int(np.searchsorted(ids, reach_id))
            if index >= len(ids) or ids[index] != reach_id:
                raise NotFoundError(f"run {self.run_id}'s hydrographs lack reach {reach_id}.")
            discharge = np.asarray(nc["discharge"][:, index, :], dtype=np.float64)
            hours = np.asarray(nc["time"][:], dtype=np.float64)
            members = [int(m) for m in np.asarray(nc["member"][:])]
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        times = [(epoch + timedelta(hours=float(h))).isoformat(timespec="minutes")
                 for h in hours]
        spread = None
        if len(members) > 1:
            q = np.percentile(discharge, [0, 10, 50, 90, 100], axis=0)
            spread = {name: np.round(values, 3).tolist()
                      for name, values in zip(("min", "p10", "median", "p90", "max"), q,
                                              strict=True)}
        return {
            "run_id": self.run_id, "reach_id": reach_id, "strahler": int(row["strahler"]),
            "upstream_area_km2": round(float(row["upstream_area_km2"]), 2),
            "peak_m3s": round(float(row["peak_m3s"]), 3),
            "hours_to_peak": _number(row["hours_to_peak"]),
            "return_period_class": int(row["return_period_class"]),
            "bankfull_m3s": _number(row["bankfull_q_m3s"]),
            "thresholds": [{"return_period_years": years,
                            "discharge_m3s": round(float(row[f"q{years}_m3s"]), 3)}
                           for years in RETURN_PERIODS],
            "times": times, "members": members,
            "discharge_m3s": np.round(discharge, 3).tolist(), "spread": spread}


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else round(float(value), 3)


def run_reaches(service: ServiceDep, run_id: int) -> RunReaches:
    """The reaches of succeeded run ``run_id``, kept with its other outputs in the service's
    read cache (the newest runs)."""
    with service.sessions() as session:
        out_dir = succeeded_output_dir(session, run_id)
    return service.read_cache.outputs(run_id, out_dir).attached(
        "reaches", lambda: RunReaches(run_id, out_dir))


@router.get("/{run_id}/reaches", response_class=Response, responses={
    200: {"content": {"application/geo+json": {"schema": {"type": "object"}}},
          "description": "Reach lines with return-period class of their forecast peak"}})
def reaches(request: Request, who: CallerDep, service: ServiceDep, run_id: RunId,
            min_strahler: Annotated[int, Query(ge=1, le=12, description=(
                "Smallest Strahler order drawn (reaches at or over the 5-year flood are "
                "always included)"))] = 4) -> Response:
    """The run's reaches as GeoJSON lines (lon/lat, simplified to ≈ 30 m): id, Strahler
    order, return period class of the forecast peak (0: under the 2-year flood; 2, 5, 10,
    25, 50, 100: at least that flood), peak discharge m³/s and hours to peak (every role)."""
    payload = run_reaches(service, run_id).map_layer(min_strahler)
    return payload.response(request, cache_control="private, max-age=3600")


class Timeline(BaseModel):
    run_id: int
    start: str = Field(description="Forecast start, UTC")
    end: str = Field(description="Forecast end, UTC")
    steps: int
    step_hours: float
    hours: float = Field(description="Forecast horizon, hours")


@router.get("/{run_id}/timeline", response_model=Timeline)
def timeline(who: CallerDep, service: ServiceDep, run_id: RunId) -> dict[str, Any]:
    """The forecast's start, end and steps: the hours the map's time slider runs over."""
    return run_reaches(service, run_id).timeline()


class Threshold(BaseModel):
    return_period_years: int
    discharge_m3s: float


class Hydrograph(BaseModel):
    run_id: int
    reach_id: int
    strahler: int
    upstream_area_km2: float
    peak_m3s: float
    hours_to_peak: float | None
    return_period_class: int
    bankfull_m3s: float | None
    thresholds: list[Threshold]
    times: list[str] = Field(description="Step ends, UTC (ISO 8601)")
    members: list[int]
    discharge_m3s: list[list[float]] = Field(description="Per member, at each step end")
    spread: dict[str, list[float]] | None = Field(
        description="Ensembles: min, p10, median, p90, max across members at each step")


@router.get("/{run_id}/reaches/{reach_id}", response_model=Hydrograph)
def reach_hydrograph(who: CallerDep, service: ServiceDep, run_id: RunId,
                     reach_id: Annotated[int, PathParam(ge=1, le=2**31 - 1,
                                                        description="Reach id")]
                     ) -> dict[str, Any]:
    """One reach's forecast hydrograph (every member) against its 2-, 5-, 10-, 25-, 50- and
    100-year flood discharges (every role)."""
    return run_reaches(service, run_id).hydrograph(reach_id)
