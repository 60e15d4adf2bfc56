"""Ensemble members as independent tasks over one shared, read-only model — in this process or
on Dask — and what they reduce to.

A member is pure: its rain (time, y, x) through catchment means, runoff and routing
(:func:`floodwarn.hydrology.simulation.simulate`), its own flood map
(:func:`floodwarn.inundation.depth.map_flood`) and every settlement's level on it
(:func:`floodwarn.risk.settlements.warning_levels`). What leaves a member is small: its
reach series and peaks (a few MB), the series already compressed as ``hydrographs.nc`` stores
them (so the compression runs where the member ran), one level per settlement, and its
flooded cells folded into a count of members per cell. Members run in chunks; a chunk adds
its members' flooded cells up where it runs, and the chunks' counts are summed on the
workers, so no member's grid ever travels.

Execution (:func:`run_members`): serial in this process (one worker, a single member, tests)
or on ``dask.distributed`` — a ``LocalCluster`` of worker processes started here (kept for
the life of the process, so a service pays its start once) or an existing cluster at a
scheduler address. The :class:`MemberModel` is scattered to every worker once per run, never
once per member.

References
----------
Rocklin, M. (2015) Dask: parallel computation with blocked algorithms and task scheduling.
Proc. 14th Python in Science Conference, 130-136.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from floodwarn import __version__
from floodwarn.errors import FloodwarnError, InputError
from floodwarn.hydrology.catchment_rain import CatchmentWeights
from floodwarn.hydrology.simulation import HydrologyModel, simulate
from floodwarn.hydrology.thresholds import ReturnPeriodThresholds
from floodwarn.inundation.depth import FloodGrid, map_flood
from floodwarn.io.forecast_outputs import encode_discharge_chunks
from floodwarn.kernels.quantiles import member_quantiles
from floodwarn.logs import get_logger
from floodwarn.parameters import LEVELS, LevelRules
from floodwarn.risk.settlements import SettlementFootprints, footprint_flooding, warning_levels

log = get_logger(__name__)

#: Members per task: small enough that progress moves and the workers finish together (the
#: last chunk is the imbalance), large enough that a task's overhead (milliseconds) stays far
#: below its work (~0.5 s a member).
MAX_CHUNK_MEMBERS = 2
#: Chunks' flood counts summed together on a worker as they come (not all at the end).
COUNTS_PER_SUM = 4
#: How long a run waits for a cluster to have a worker (s).
WORKERS_TIMEOUT_S = 60.0
#: Local workers by default: one per core, at most this many (each holds the run's model:
#: 150 MB on the demo domain, several GB on 30 m grids).
MAX_DEFAULT_WORKERS = 8


class EnsembleExecutionError(FloodwarnError, RuntimeError):
    """The Dask cluster could not be reached or could not run the members."""


@dataclass(frozen=True, eq=False)
class MemberModel:
    """Everything a member reads, shared read-only by all of them: the hydrology model, the
    catchment weights of the forecast grid, the run's options, the flood-mapping rasters and
    the settlements' footprints. Built once per run; reaches each Dask worker once."""

    hydro: HydrologyModel
    weights: CatchmentWeights
    dt_s: np.ndarray
    hours_from_start: np.ndarray
    season: str
    amc: int | None
    antecedent_rain_mm: np.ndarray | float | None
    ia_ratio: float
    base_flow_l_s_km2: float
    initial_levels_m: np.ndarray
    flood_grid: FloodGrid
    wet_depth_m: float
    thresholds: ReturnPeriodThresholds
    footprints: SettlementFootprints | None
    rules: LevelRules


@dataclass(frozen=True, eq=False)
class MemberResult:
    """What one member hands back (index = its position in the run's members)."""

    index: int
    discharge_m3s: np.ndarray  # (reach, time) float32 at step ends
    discharge_chunks: list[bytes]  # the same, as stored in hydrographs.nc (encoded here)
    peak_m3s: np.ndarray
    peak_time_s: np.ndarray
    peak_step: np.ndarray
    celerity_m_s: np.ndarray
    regime: np.ndarray
    base_flow_m3s: np.ndarray
    amc: np.ndarray
    rain_total_mm: np.ndarray  # (reach,) over the forecast
    runoff_total_mm: np.ndarray
    water_body_level_m: np.ndarray  # (water body, time)
    water_body_inflow_m3s: np.ndarray
    water_body_outflow_m3s: np.ndarray
    water_body_peak_level_m: np.ndarray
    mass_balance: dict[str, float]
    settlement_level: np.ndarray  # (settlement,) int8, index into LEVELS


@dataclass(frozen=True, eq=False)
class MemberChunk:
    """A chunk's members and how many of them flood each cell (uint8: ≤ 255 members)."""

    results: list[MemberResult]
    flood_count: np.ndarray


@dataclass(frozen=True)
class MemberProgress:
    """Members done of the total, seconds since the members started, and the estimate of the
    seconds left (None until a member is done)."""

    done: int
    total: int
    elapsed_s: float
    eta_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {"members_done": self.done, "members_total": self.total,
                "elapsed_s": round(self.elapsed_s, 1),
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1)}


@dataclass(frozen=True, eq=False)
class EnsembleResult:
    """All members, stacked member-first in the run's member order."""

    # (member, reach, time) float32; None once written (a forecast run's is in hydrographs.nc)
    discharge_m3s: np.ndarray | None
    peak_m3s: np.ndarray  # (member, reach)
    peak_time_s: np.ndarray
    peak_step: np.ndarray
    celerity_m_s: np.ndarray
    regime: np.ndarray
    base_flow_m3s: np.ndarray  # (reach,), the same for every member
    amc: np.ndarray  # (reach,) of the first member (AMC does not depend on the forecast)
    rain_total_mm: np.ndarray  # (member, reach)
    runoff_total_mm: np.ndarray
    water_body_level_m: np.ndarray  # (member, water body, time)
    water_body_inflow_m3s: np.ndarray
    water_body_outflow_m3s: np.ndarray
    water_body_peak_level_m: np.ndarray  # (member, water body)
    mass_balance: list[dict[str, float]]
    settlement_level: np.ndarray | None  # (member, settlement) level names
    flood_count: np.ndarray  # (y, x) uint16: members whose flood reaches the wet depth
    execution: dict[str, Any]

    @property
    def n_members(self) -> int:
        return int(self.peak_m3s.shape[0])

    def member_discharge(self) -> np.ndarray:
        """Every member's discharge (member, reach, time), while it is held."""
        if self.discharge_m3s is None:
            raise InputError("the members' discharge has been released; read it from the "
                             "run's hydrographs.nc.")
        return self.discharge_m3s

    @property
    def flood_probability(self) -> np.ndarray:
        """Share of members that flood each cell (float32)."""
        return (self.flood_count / np.float32(self.n_members)).astype(np.float32)


# ------------------------------------------------------------------------------ one member


def run_member(model: MemberModel, rain_mm: np.ndarray, index: int
               ) -> tuple[MemberResult, np.ndarray]:
    """One member: (time, y, x) forecast rain → its result and its flooded cells (bool grid,
    depth ≥ the rules' wet depth). Pure: the same rain always gives the same result."""
    hydro = model.hydro
    catchment_rain = model.weights.catchment_mean(rain_mm)
    sim = simulate(hydro, catchment_rain, model.dt_s,
                   antecedent_rain_mm=model.antecedent_rain_mm, amc=model.amc,
                   season=model.season, ia_ratio=model.ia_ratio,
                   base_flow_l_s_km2=model.base_flow_l_s_km2,
                   initial_levels_m=model.initial_levels_m)
    flood = map_flood(model.flood_grid, hydro.curves, sim.discharge_m3s, model.hours_from_start,
                      water_bodies=hydro.water_bodies,
                      water_body_level_m=sim.water_body_level_m)
    flooded = flood.depth_m >= model.wet_depth_m  # NaN (water, no catchment) is not flooded
    level = np.zeros(0, np.int8)
    if model.footprints is not None:
        classes = model.thresholds.classify(sim.peak_m3s)
        classes[hydro.water_bodies.pass_through] = 0
        metrics = footprint_flooding(model.footprints, flood, model.flood_grid.catchment_id,
                                     classes, model.rules)
        names, _ = warning_levels(metrics, model.rules)
        level = np.array([LEVELS.index(n) for n in names], np.int8)
    result = MemberResult(
        index=index, discharge_m3s=sim.discharge_m3s,
        discharge_chunks=encode_discharge_chunks(sim.discharge_m3s), peak_m3s=sim.peak_m3s,
        peak_time_s=sim.peak_time_s, peak_step=sim.peak_step, celerity_m_s=sim.celerity_m_s,
        regime=sim.regime, base_flow_m3s=sim.base_flow_m3s, amc=sim.amc,
        rain_total_mm=sim.rain_mm.sum(axis=0), runoff_total_mm=sim.runoff_mm.sum(axis=0),
        water_body_level_m=sim.water_body_level_m,
        water_body_inflow_m3s=sim.water_body_inflow_m3s,
        water_body_outflow_m3s=sim.water_body_outflow_m3s,
        water_body_peak_level_m=sim.water_body_peak_level_m,
        mass_balance=sim.mass_balance, settlement_level=level)
    return result, flooded


def run_member_chunk(model: MemberModel, rain_mm: np.ndarray, indices: Sequence[int]
                     ) -> MemberChunk:
    """Members ``indices`` (their rain stacked in ``rain_mm``), their flooded cells summed."""
    if len(indices) > 255:
        raise InputError("a chunk holds at most 255 members (its flood count is uint8).")
    count = np.zeros(model.flood_grid.water.shape, np.uint8)
    results = []
    for k, index in enumerate(indices):
        result, flooded = run_member(model, rain_mm[k], int(index))
        count += flooded
        results.append(result)
    return MemberChunk(results=results, flood_count=count)


def chunk_results(chunk: MemberChunk) -> list[MemberResult]:
    return chunk.results


def chunk_flood_count(chunk: MemberChunk) -> np.ndarray:
    return chunk.flood_count


def sum_flood_counts(*counts: np.ndarray) -> np.ndarray:
    """Members flooding each cell, over chunks (uint16: up to 65,535 members)."""
    total = np.zeros(counts[0].shape, np.uint16)
    for count in counts:
        total += count
    return total


def member_chunks(n_members: int, workers: int) -> list[list[int]]:
    """Member indices in chunks: at least four per worker, at most :data:`MAX_CHUNK_MEMBERS`
    members each, contiguous (so a chunk's rain is one slice)."""
    size = max(1, min(MAX_CHUNK_MEMBERS, math.ceil(n_members / max(1, 4 * workers))))
    return [list(range(i, min(i + size, n_members))) for i in range(0, n_members, size)]


# ---------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class Execution:
    """How members run: ``workers`` processes of a local cluster (1: serially in this
    process) or the Dask cluster at ``scheduler`` (an address such as tcp://host:8786)."""

    workers: int = 1
    scheduler: str | None = None

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise InputError(f"workers: {self.workers}; give 1 (serial) or more.")
        if self.scheduler is not None and not self.scheduler.strip():
            raise InputError("the Dask scheduler address is empty; give e.g. "
                             "tcp://127.0.0.1:8786, or no address for a local cluster.")

    @property
    def distributed(self) -> bool:
        return self.scheduler is not None or self.workers > 1

    def describe(self) -> dict[str, Any]:
        if self.scheduler is not None:
            return {"mode": "dask", "scheduler": self.scheduler}
        if self.workers > 1:
            return {"mode": "dask-local", "workers": self.workers}
        return {"mode": "serial", "workers": 1}


def default_workers() -> int:
    """The cores this process may use, at most :data:`MAX_DEFAULT_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_DEFAULT_WORKERS))


def run_members(model: MemberModel, rain_mm: np.ndarray, execution: Execution, *,
                on_progress: Callable[[MemberProgress], None] | None = None,
                on_member: Callable[[MemberResult], None] | None = None) -> EnsembleResult:
    """Every member of ``rain_mm`` (member, time, y, x) through ``model``, gathered in member
    order. A single member, or ``execution.workers == 1`` without a scheduler, runs here.
    ``on_member`` sees each member's result as it arrives (in no set order), e.g. to write
    it while the others still run."""
    n = int(rain_mm.shape[0])
    notify = on_progress or (lambda _p: None)
    start = time.perf_counter()
    notify(MemberProgress(0, n, 0.0, None))
    collected = _Collector(n)

    def record(results: list[MemberResult]) -> None:
        for r in results:
            collected.add(r)
            if on_member is not None:
                on_member(r)
        elapsed = time.perf_counter() - start
        done = collected.done
        notify(MemberProgress(done, n, elapsed, elapsed / done * (n - done)))

    if not execution.distributed or n == 1:
        count = np.zeros(model.flood_grid.water.shape, np.uint16)
        for indices in member_chunks(n, 1):
            chunk = run_member_chunk(model, rain_mm[indices[0]:indices[-1] + 1], indices)
            count += chunk.flood_count
            record(chunk.results)
        details = Execution().describe()
    else:
        count, details = _run_on_dask(model, rain_mm, execution, record)
    details["seconds"] = round(time.perf_counter() - start, 3)
    return collected.result(count, details)


def _run_on_dask(model: MemberModel, rain_mm: np.ndarray, execution: Execution,
                 record: Callable[[list[MemberResult]], None]
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    from distributed import as_completed

    started = time.perf_counter()
    client = dask_client(execution)
    try:  # a remote cluster may have lost its workers since the last run
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError as exc:
        raise EnsembleExecutionError(
            f"the Dask cluster {execution.describe()} has no worker (waited "
            f"{WORKERS_TIMEOUT_S:.0f} s); start some (`dask worker ADDRESS`), or run with "
            "--workers 1.") from exc
    # Threads, not processes: a remote `dask worker --nthreads 8` runs eight members at once.
    n_workers = max(1, sum(client.nthreads().values()))
    ready = time.perf_counter()
    # Once per worker, not once per member; hash=False: a new run's model is a new object.
    shared = client.scatter(model, broadcast=True, hash=False)
    log.info("member model on the workers", extra={
        "worker_threads": n_workers, "waited_for_cluster_s": round(ready - started, 2),
        "scatter_s": round(time.perf_counter() - ready, 2)})
    chunks = member_chunks(int(rain_mm.shape[0]), n_workers)
    counts, parts = [], []
    for c in chunks:
        # Submitted chunk by chunk: Dask runs tasks in the order given, so a chunk's two parts
        # are taken from it as soon as it is done, before the next chunks run.
        future = client.submit(run_member_chunk, shared,
                               np.ascontiguousarray(rain_mm[c[0]:c[-1] + 1]), c, pure=False)
        counts.append(client.submit(chunk_flood_count, future, pure=False))
        parts.append(client.submit(chunk_results, future, pure=False))
    results = as_completed(parts, loop=client.loop)
    partial = [client.submit(sum_flood_counts, *counts[i:i + COUNTS_PER_SUM], pure=False)
               for i in range(0, len(counts), COUNTS_PER_SUM)]
    total = client.submit(sum_flood_counts, *partial, pure=False)
    # Only the two parts are held: a chunk is released once both are taken from it, and a
    # chunk's results once gathered (as_completed lets go of what it yields).
    del future, counts, parts, partial
    finished = False
    try:
        for future in results:
            record(task_result(future))  # errors of record (writing) are this process's own
            del future
        count = task_result(total)
        finished = True
    finally:
        if not finished:  # the chunks still queued would run for nothing on a shared cluster
            client.cancel([*results.futures, total])
    # The model and the counts are released when their futures go (cancelling a broadcast
    # scatter trips the scheduler).
    return count, {**execution.describe(), "dask_workers": n_workers, "chunks": len(chunks)}


def task_result(future: Any) -> Any:
    """A task's result; a task's failure (a worker lost, an exception on a remote machine) as
    an :class:`EnsembleExecutionError`."""
    try:
        return future.result()
    except FloodwarnError:
        raise
    except Exception as exc:
        raise EnsembleExecutionError(
            f"the ensemble failed on the Dask cluster ({type(exc).__name__}: {exc}); "
            "check the workers' logs, or run with --workers 1.") from exc


class _Collector:
    """Members' results copied into member-first arrays as they arrive (allocated at the
    first), so no member's series is held twice (the first member's per-reach arrays are
    kept for what every member shares: base flow and AMC)."""

    def __init__(self, n_members: int) -> None:
        self.n = n_members
        self.arrays: dict[str, np.ndarray] = {}
        self.mass_balance: list[dict[str, float]] = [{} for _ in range(n_members)]
        self.seen = np.zeros(n_members, bool)
        self.first: MemberResult | None = None

    @property
    def done(self) -> int:
        return int(self.seen.sum())

    def add(self, result: MemberResult) -> None:
        if self.first is None:
            self.first = result
            for name in _STACKED:
                value = np.asarray(getattr(result, name))
                self.arrays[name] = np.empty((self.n, *value.shape), value.dtype)
        for name in _STACKED:
            self.arrays[name][result.index] = getattr(result, name)
        self.mass_balance[result.index] = result.mass_balance
        self.seen[result.index] = True

    def result(self, count: np.ndarray, execution: dict[str, Any]) -> EnsembleResult:
        if self.first is None or not self.seen.all():
            raise EnsembleExecutionError(f"{self.n - self.done} of {self.n} members returned "
                                         "no result.")
        a = self.arrays
        levels = None
        if self.first.settlement_level.size:
            levels = np.array(LEVELS, dtype=object)[a["settlement_level"].astype(np.int64)]
        return EnsembleResult(
            discharge_m3s=a["discharge_m3s"], peak_m3s=a["peak_m3s"],
            peak_time_s=a["peak_time_s"], peak_step=a["peak_step"],
            celerity_m_s=a["celerity_m_s"], regime=a["regime"],
            base_flow_m3s=self.first.base_flow_m3s, amc=self.first.amc,
            rain_total_mm=a["rain_total_mm"], runoff_total_mm=a["runoff_total_mm"],
            water_body_level_m=a["water_body_level_m"],
            water_body_inflow_m3s=a["water_body_inflow_m3s"],
            water_body_outflow_m3s=a["water_body_outflow_m3s"],
            water_body_peak_level_m=a["water_body_peak_level_m"],
            mass_balance=self.mass_balance, settlement_level=levels, flood_count=count,
            execution=execution)


#: The member results stacked member-first.
_STACKED = ("discharge_m3s", "peak_m3s", "peak_time_s", "peak_step", "celerity_m_s", "regime",
            "rain_total_mm", "runoff_total_mm", "water_body_level_m", "water_body_inflow_m3s",
            "water_body_outflow_m3s", "water_body_peak_level_m", "settlement_level")


#: glibc's allocator in local workers: large arrays reused from the heap. Dask's default
#: (MALLOC_TRIM_THRESHOLD_=65536) fixes the mmap threshold at 128 kB, so every member's
#: grid-sized temporaries were fresh mappings, page-faulted in and unmapped again: half the
#: workers' CPU went to the kernel and a member took 1.8× its serial time.
WORKER_MALLOC = {
    # glibc's own ceiling for its dynamic mmap threshold: a terrain-sized float32 grid of the
    # demo domain (25 MB) is reused from the heap, and freed memory beyond 64 MB goes back.
    "distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": str(32 * 2**20),
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": str(64 * 2**20),
    # One core per worker process: numba's parallel kernels would otherwise start a thread per
    # core in every worker, and the workers' threads would fight over the cores. Set in the
    # worker only (pre-spawn settings also land in this process's environment).
    "distributed.nanny.environ.NUMBA_NUM_THREADS": "1",
}

_clients: dict[Execution, Any] = {}
_clients_lock = threading.Lock()


def dask_client(execution: Execution) -> Any:
    """The Dask client of ``execution``, made once per process: a ``LocalCluster`` of
    ``workers`` single-threaded processes (numba and numpy work without the interpreter lock,
    but a process per core keeps the Python between kernels parallel too), or a connection to
    the scheduler. Remote workers need only the same floodwarn version (checked): the run's
    model is sent to them."""
    with _clients_lock:
        client = _clients.pop(execution, None)
        if client is not None:
            if client.status == "running":
                _clients[execution] = client
                return client
            _close(client)  # a cluster that stopped: its processes go with it
        client = _local_client(execution) if execution.scheduler is None \
            else _remote_client(execution.scheduler)
        log.info("dask cluster ready", extra={**execution.describe(),
                                              "worker_threads": sum(client.nthreads().values())})
        _clients[execution] = client
        return client


def _local_client(execution: Execution) -> Any:
    import dask
    from distributed import Client, LocalCluster

    try:
        with dask.config.set(WORKER_MALLOC):
            cluster = LocalCluster(n_workers=execution.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None, host="127.0.0.1",
                                   silence_logs=40)
    except (RuntimeError, OSError) as exc:  # the workers' processes could not start
        raise EnsembleExecutionError(
            f"the local Dask cluster of {execution.workers} workers did not start ({exc}). "
            "A script that runs ensembles on local workers must guard its entry point with "
            "`if __name__ == \"__main__\":` (worker processes import it); or run with "
            "--workers 1.") from exc
    # Not the process's default scheduler: xarray and others keep their own.
    return Client(cluster, set_as_default=False)


def _remote_client(address: str) -> Any:
    from distributed import Client

    try:
        client = Client(address, timeout="5s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise EnsembleExecutionError(
            f"cannot reach the Dask scheduler {address!r} ({exc}); start one (`dask "
            "scheduler`) and its workers (`dask worker ADDRESS`), or run without --scheduler "
            "for a local cluster.") from exc
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
        versions = set(client.run(_floodwarn_version).values())
    except Exception as exc:  # no worker came, or one failed to answer
        _close(client)
        raise EnsembleExecutionError(
            f"the Dask cluster at {address} has no worker that answers ({type(exc).__name__}: "
            f"{exc}); start workers (`dask worker {address}`), or run with --workers 1."
        ) from exc
    if versions != {__version__}:
        _close(client)
        raise EnsembleExecutionError(
            f"the Dask workers at {address} run floodwarn {sorted(versions)}, this process "
            f"{__version__}; install the same version on every worker.")
    return client


def _close(client: Any) -> None:
    cluster = getattr(client, "cluster", None)
    with contextlib.suppress(Exception):  # closing what may already be gone: nothing to tell
        client.close()
        if cluster is not None:
            cluster.close()


def start_dask_client(execution: Execution) -> None:
    """Start :func:`dask_client` on a thread of its own, so that a local cluster's worker
    processes start (import numpy, numba, floodwarn) while this process still prepares the
    run; a failure is raised when the members ask for the client."""
    if not execution.distributed:
        return

    def start() -> None:
        try:
            dask_client(execution)
        except Exception as exc:  # run_members asks again, and raises it there
            log.warning("dask cluster did not start ahead of the members",
                        extra={"error": f"{type(exc).__name__}: {exc}"})

    threading.Thread(target=start, name="floodwarn-dask-start", daemon=True).start()


def _floodwarn_version() -> str:
    return __version__


@atexit.register
def close_dask_clients() -> None:
    """Close every client (and local cluster) this process started."""
    with _clients_lock:
        for client in _clients.values():
            _close(client)
        _clients.clear()


#: The hydrograph bands a run writes, and their quantiles.
BAND_NAMES = ("discharge_p10", "discharge_p50", "discharge_p90")
BAND_QUANTILES = (0.1, 0.5, 0.9)


def hydrograph_bands(discharge_m3s: np.ndarray, quantiles: Sequence[float] = BAND_QUANTILES
                     ) -> np.ndarray:
    """Quantiles across members of every reach's discharge at every step (Hyndman & Fan 1996
    type 7, numpy's default): (quantile, reach, time) float32 from (member, reach, time),
    by :func:`floodwarn.kernels.quantiles.member_quantiles`."""
    n_members = discharge_m3s.shape[0]
    positions = np.asarray(quantiles, np.float64) * (n_members - 1)
    return member_quantiles(np.ascontiguousarray(discharge_m3s, np.float32), positions)
