"""Command line: thin commands that parse, call :mod:`floodwarn.pipeline`, and print."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from floodwarn import __version__
from floodwarn.ensemble import MemberProgress
from floodwarn.errors import FloodwarnError
from floodwarn.io.dem import DEFAULT_CRS
from floodwarn.logs import configure_logging
from floodwarn.terrain.network import DEFAULT_MAX_REACH_LENGTH_M, DEFAULT_STREAM_AREA_KM2

app = typer.Typer(
    help="floodwarn — flood early warning for El Salvador / alerta temprana de inundaciones.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
terrain_app = typer.Typer(help="Terrain models / modelos de terreno.", no_args_is_help=True)
data_app = typer.Typer(help="Data: DEMs and shipped layers / datos.", no_args_is_help=True)
app.add_typer(terrain_app, name="terrain")
app.add_typer(data_app, name="data")
forecast_app = typer.Typer(help="Forecast runs and storms / pronósticos.", no_args_is_help=True)
app.add_typer(forecast_app, name="forecast")
scenarios_app = typer.Typer(help="Flood scenarios by return period / escenarios de crecida.",
                            no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")
plan_app = typer.Typer(help="Planning: shelter upgrades, evacuation plans, report / "
                            "planificación.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help="Log level (JSON lines on stderr).")] = "WARNING",
) -> None:
    configure_logging(log_level)


@app.command()
def version() -> None:
    """Print the floodwarn version."""
    out.print(__version__)


@contextmanager
def errors_as_messages() -> Iterator[None]:
    """Show floodwarn's own errors as one clear message and exit 2, never a traceback."""
    try:
        yield
    except FloodwarnError as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=2) from exc


class StepProgress:
    """The job's steps on one bar and, while members run, the members on a second with the
    time left (:class:`floodwarn.ensemble.MemberProgress`)."""

    def __init__(self, progress: Progress, steps: tuple[str, ...]) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=len(steps))
        self._members: TaskID | None = None
        self._seen: list[str] = []

    def __call__(self, step: str) -> None:
        if self._seen:
            self._progress.advance(self._task)
        self._seen.append(step)
        self._progress.update(self._task, description=step.replace("_", " "))

    def scenarios(self, done: int, total: int) -> None:
        if self._members is None:
            self._members = self._progress.add_task("escenarios / scenarios", total=total)
        self._progress.update(self._members, completed=done)

    def members(self, done: MemberProgress) -> None:
        if self._members is None:
            self._members = self._progress.add_task("members / miembros", total=done.total)
        self._progress.update(self._members, completed=done.done)


@contextmanager
def _step_progress(steps: tuple[str, ...]) -> Iterator[StepProgress]:
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    display = StepProgress(progress, steps)
    with progress:
        yield display
        progress.update(display._task, completed=len(steps), description="done")


def _parse_nodata(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"nodata must be a number or 'nan', got {value!r}") from None


@terrain_app.command("build")
def terrain_build(
    dem: Annotated[Path, typer.Option(help="DEM file: GeoTIFF/COG, SRTM .hgt, ESRI .asc.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory of the model.")],
    stream_area_km2: Annotated[
        float, typer.Option(help="Upstream area that starts a stream, km².")
    ] = DEFAULT_STREAM_AREA_KM2,
    max_reach_length_m: Annotated[
        float, typer.Option(help="Maximum reach length, m.")
    ] = DEFAULT_MAX_REACH_LENGTH_M,
    crs: Annotated[
        str, typer.Option(help="Target CRS for geographic DEMs, or 'auto' (UTM zone).")
    ] = DEFAULT_CRS,
    cellsize_m: Annotated[
        float | None, typer.Option(help="Cell size after reprojection, m.")
    ] = None,
    nodata: Annotated[
        str | None, typer.Option(help="Nodata value if the DEM declares none (or 'nan').")
    ] = None,
    fill_voids: Annotated[bool, typer.Option(help="Interpolate enclosed nodata voids.")] = False,
) -> None:
    """Build a terrain model: filled DEM, D8, accumulation, reaches, catchments, HAND."""
    from floodwarn.pipeline import TERRAIN_JOB_STEPS, build_terrain

    with errors_as_messages(), _step_progress(TERRAIN_JOB_STEPS) as on_step:
        result = build_terrain(
            dem,
            out_dir,
            stream_area_km2=stream_area_km2,
            max_reach_length_m=max_reach_length_m,
            target_crs=crs,
            cellsize_m=cellsize_m,
            nodata=_parse_nodata(nodata),
            fill_voids=fill_voids,
            on_step=on_step,
        )
    _print_terrain_summary(result.model.metadata, result.out_dir)


#: Options shared by the forecast commands.
IaRatioOption = Annotated[float, typer.Option(help="Initial abstraction ratio: 0.2 or 0.05.")]
LandcoverOption = Annotated[Path | None, typer.Option(help="Land-cover raster (WorldCover).")]
SoilOption = Annotated[Path | None, typer.Option(help="Hydrologic soil group raster.")]
CacheDirOption = Annotated[
    Path | None, typer.Option(help="Cache of weights, thresholds and rating curves "
                                   "(default $FLOODWARN_CACHE_DIR or ~/.cache/floodwarn).")]


SettlementsOption = Annotated[
    Path | None, typer.Option(help="Settlements layer (default: the shipped towns).")]
CentresOption = Annotated[
    Path | None, typer.Option(help="Collective centres layer (default: shipped sites).")]


def _default_cache_dir() -> Path:
    """Where weights and thresholds are cached: $FLOODWARN_CACHE_DIR or ~/.cache/floodwarn."""
    import os

    env = os.environ.get("FLOODWARN_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "floodwarn"


WorkersOption = Annotated[
    int | None, typer.Option(min=0, envvar="FLOODWARN_ENSEMBLE_WORKERS",
                             help="Independent runs (ensemble members, scenarios) go to a local "
                                  "Dask cluster of this many processes (0 or unset: one per "
                                  "core, at most 8); 1 runs them one after another here.")]
SchedulerOption = Annotated[
    str | None, typer.Option(envvar="FLOODWARN_DASK_SCHEDULER",
                             help="Run them on the Dask cluster of this scheduler (e.g. "
                                  "tcp://10.0.0.5:8786; it wins over a workers count from the "
                                  "environment); its workers need this floodwarn installed.")]


def _execution(ctx: typer.Context, workers: int | None, scheduler: str | None) -> Any:
    """The execution the --workers and --scheduler options ask for (not both on the command
    line; a scheduler from the environment yields to --workers given on the command line)."""
    from floodwarn.ensemble import Execution, default_workers

    # By name: typer's click and the installed click may be two copies of the enum.
    given = {name for name in ("workers", "scheduler")
             if getattr(ctx.get_parameter_source(name), "name", "") == "COMMANDLINE"}
    if given == {"workers", "scheduler"}:
        raise typer.BadParameter("give --workers (a local cluster) or --scheduler (an existing "
                                 "cluster), not both.")
    with errors_as_messages():
        if scheduler and "workers" not in given:
            return Execution(scheduler=scheduler)
        return Execution(workers=workers or default_workers())


@forecast_app.command("run")
def forecast_run(
    ctx: typer.Context,
    terrain: Annotated[Path, typer.Option(help="Terrain model directory (terrain build).")],
    rain: Annotated[
        list[Path], typer.Option(
            help="Rain forecast: a NetCDF (also WRF wrfout), GRIB1/2 or GeoTIFF file, a folder "
                 "or glob of them ('gefs/ge*.pgrb2*'), or --rain repeated for a list; files "
                 "are assembled by member and valid time.")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory of the run.")],
    variable: Annotated[str | None, typer.Option(help="Rain variable / GRIB shortName.")] = None,
    units: Annotated[str | None, typer.Option(help="Override the file's rain units.")] = None,
    accumulation: Annotated[
        str | None, typer.Option(help="Override: 'step', 'since_start' or 'rate'.")
    ] = None,
    antecedent_rain_mm: Annotated[
        float | None, typer.Option(help="Rain of the 5 days before the forecast, mm (AMC).")
    ] = None,
    antecedent_rain: Annotated[
        Path | None, typer.Option(help="Observed rain of the days before (any rain format).")
    ] = None,
    amc: Annotated[int | None, typer.Option(help="Antecedent moisture class 1, 2 or 3.")] = None,
    ia_ratio: IaRatioOption = 0.2,
    landcover: LandcoverOption = None,
    soil: SoilOption = None,
    cache_dir: CacheDirOption = None,
    settlements: SettlementsOption = None,
    centres: CentresOption = None,
    reservoir_level: Annotated[
        list[str] | None, typer.Option(
            help="Initial level of a reservoir or lake, ID=METRES a.s.l. (repeat), e.g. "
                 "cerron_grande=236.4; ids in models/reservoirs.yaml; default: the month's "
                 "normal level.")
    ] = None,
    member: Annotated[
        list[int] | None, typer.Option(help="Ensemble member number to run (repeat); default: "
                                       "every member of the file.")
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Run a forecast: rain → runoff → hydrographs → flood depth → settlement levels,
    shelter safety and evacuation plan; prints the run's plausibility warnings. Ensemble
    members run in parallel (--workers, --scheduler) and give probabilities."""
    from floodwarn.pipeline import FORECAST_JOB_STEPS, run_forecast
    from floodwarn.request import ForecastRequest

    execution = _execution(ctx, workers, scheduler)
    levels = parse_reservoir_levels(reservoir_level or [])
    with errors_as_messages():
        request = ForecastRequest.build(
            terrain_dir=terrain, rain_path=rain[0],
            rain_files=tuple(rain) if len(rain) > 1 else None, variable=variable, units=units,
            accumulation=accumulation, antecedent_rain_mm=antecedent_rain_mm,
            antecedent_rain_path=antecedent_rain, amc=amc, ia_ratio=ia_ratio,
            landcover_path=landcover, soil_path=soil, settlements_path=settlements,
            centres_path=centres, reservoir_levels=levels or None,
            members=tuple(member) if member else None)
    with errors_as_messages(), _step_progress(FORECAST_JOB_STEPS) as on_step:
        result = run_forecast(request, out_dir, cache_dir=cache_dir or _default_cache_dir(),
                              on_step=on_step, execution=execution, on_members=on_step.members)
    _print_forecast_summary(result.record, result.out_dir)
    if result.risk is not None:
        _print_worst_hit(result.risk, synthetic=result.record["synthetic"])
    _print_plausibility(result.record)


def parse_reservoir_levels(values: list[str]) -> dict[str, float]:
    """``ID=LEVEL`` pairs of --reservoir-level as a dict (ids and ranges are checked by
    :func:`floodwarn.hydrology.water_bodies.check_reservoir_levels`)."""
    levels: dict[str, float] = {}
    for value in values:
        body, sep, level = value.partition("=")
        body = body.strip()
        try:
            number = float(level)
        except ValueError:
            sep = ""
        if not sep or not body:
            raise typer.BadParameter(
                f"--reservoir-level {value!r}: write ID=METRES, e.g. cerron_grande=236.4")
        if body in levels:
            raise typer.BadParameter(f"--reservoir-level {body!r} given twice; give one level "
                                     "per water body.")
        levels[body] = number
    return levels


@forecast_app.command("prepare")
def forecast_prepare(
    terrain: Annotated[Path, typer.Option(help="Terrain model directory (terrain build).")],
    step_hours: Annotated[
        list[int] | None, typer.Option(help="Forecast time steps to prepare for, h (repeat).")
    ] = None,
    ia_ratio: IaRatioOption = 0.2,
    landcover: LandcoverOption = None,
    soil: SoilOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Once per terrain: return-period thresholds and rating curves for later forecasts."""
    from floodwarn.pipeline import prepare_forecasting

    with errors_as_messages():
        timings = prepare_forecasting(
            terrain, cache_dir=cache_dir or _default_cache_dir(),
            step_hours=tuple(step_hours or [1]), ia_ratio=ia_ratio, landcover_path=landcover,
            soil_path=soil)
    out.print("prepared / preparado: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


@forecast_app.command("evacuate")
def forecast_evacuate(
    run: Annotated[Path, typer.Option(help="Folder of a forecast run (forecast run --out).")],
    capacities: Annotated[
        Path | None, typer.Option(help="CSV of centre_id,capacity to change (persons).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default RUN/replan).")
    ] = None,
) -> None:
    """Rerun a run's evacuation plan with changed shelter capacities / replanificar."""
    from floodwarn.pipeline import replan_evacuation

    with errors_as_messages():
        result = replan_evacuation(run, capacities_csv=capacities, out_dir=out_dir)
    s = result.summary
    out.print(f"evacuees {s['evacuees']:,}; placed {s['evacuees'] - s['unmet_evacuees']:,}; "
              f"without a place / sin lugar {s['unmet_evacuees']:,} → "
              f"{out_dir or run / 'replan'}")


@forecast_app.command("storm")
def forecast_storm(
    out_file: Annotated[Path, typer.Option("--out", help="NetCDF file to write.")],
    preset: Annotated[str, typer.Option(help="Storm preset.")] = "amanda-2020",
    hours: Annotated[int | None, typer.Option(help="Override the duration, h.")] = None,
    core_rate_mm_h: Annotated[float | None, typer.Option(help="Override core rain rate.")] = None,
    core_radius_km: Annotated[float | None, typer.Option(help="Override core radius.")] = None,
    start: Annotated[str | None, typer.Option(help="Override the start time (UTC, ISO).")] = None,
    members: Annotated[int, typer.Option(
        min=1, max=1000, help="Ensemble members: 1 is the storm itself; more add perturbed "
                              "tracks and rates (an ensemble for drills).")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the members' perturbations.")] = 0,
) -> None:
    """Write a SYNTHETIC moving tropical-storm rain forecast (CF NetCDF) for demos and drills,
    deterministic or an ensemble."""
    from dataclasses import replace

    from floodwarn.io.rainfall import write_rainfall_netcdf
    from floodwarn.rainfall.storm import PRESETS, storm_ensemble

    with errors_as_messages():
        if preset not in PRESETS:
            raise typer.BadParameter(f"unknown preset {preset!r}; presets: {sorted(PRESETS)}")
        changes = {k: v for k, v in {"hours": hours, "core_rate_mm_h": core_rate_mm_h,
                                     "core_radius_km": core_radius_km, "start": start}.items()
                   if v is not None}
        params = replace(PRESETS[preset], **changes)  # type: ignore[arg-type]
        forecast = storm_ensemble(params, members, seed=seed)
        write_rainfall_netcdf(forecast, out_file)
    total = forecast.rain_mm.sum(axis=1)  # (member, y, x)
    spread = (f"; {members} members, wettest cell {total.max(axis=(1, 2)).min():.0f}–"
              f"{total.max():.0f} mm across them" if members > 1 else "")
    out.print(
        f"{out_file}: SYNTHETIC storm {preset}, {forecast.n_steps} steps from "
        f"{forecast.step_start[0]} UTC; storm total max {total[0].max():.0f} mm, grid mean "
        f"{total[0].mean():.0f} mm{spread} / tormenta SINTÉTICA"
    )


def _print_plausibility(record: dict[str, Any]) -> None:
    """The run's plausibility report: warnings first, then the figures behind them."""
    report = record.get("plausibility")
    if not report:
        return
    warnings = report["warnings"]
    title = ("plausibility / verosimilitud: " + (f"{len(warnings)} warning(s) / aviso(s)"
                                                 if warnings else "no warnings / sin avisos"))
    table = Table(title=title, show_header=False)
    table.add_column("")
    table.add_column("")
    for warning in warnings:
        table.add_row("[bold yellow]⚠", f"{warning['es']}\n{warning['en']}")
    fr = report["francou_rodier"]
    if "max_k" in fr:
        rivers = "; ".join(f"{r['area_km2']:,.0f} km²: {r['peak_m3s']:,.0f} m³/s, K {r['k']:.2f}"
                           for r in fr["largest_rivers"][:3])
        table.add_row("Francou-Rodier", f"max K {fr['max_k']:.2f} (reach {fr['max_k_reach_id']},"
                      f" {fr['max_k_area_km2']:,.0f} km², {fr['max_k_peak_m3s']:,.0f} m³/s); "
                      f"largest rivers / ríos mayores: {rivers}")
    curves = report["rating_curves"]
    table.add_row("curvas de gasto / rating curves",
                  f"{curves['reaches_on_extended_curve']} tramos extendidos más allá del MDE "
                  f"({curves['large_rivers_on_extended_curve']} de {curves['large_rivers']} "
                  f"ríos grandes) / {curves['reaches_on_extended_curve']} reaches extended "
                  f"beyond the DEM ({curves['large_rivers_on_extended_curve']} of "
                  f"{curves['large_rivers']} large rivers); {curves['reaches_beyond_curve']} "
                  "más allá de la extensión / beyond the extension")
    for town in report["deepest_settlements"][:3]:
        table.add_row(f"{town['name']} {town['max_depth_m']:.1f} m",
                      f"{town['why_es']}\n{town['why_en']}")
    out.print(table)


def _print_forecast_summary(record: dict[str, Any], out_dir: Path) -> None:
    mb = record["mass_balance"]
    flag = " — SYNTHETIC inputs / datos SINTÉTICOS" if record["synthetic"] else ""
    out.print(f"corrida escrita en / forecast run written to {out_dir}{flag}")
    members = record["inputs"].get("members_run", [])
    if len(members) > 1:
        # The numbers read, so that a member missing at either end is seen (a gap inside is
        # an error of the readers).
        ran = record["execution"]
        control = "" if 0 in members else (" — sin el miembro de control 0 / without control "
                                           "member 0")
        out.print(f"miembros / members: {len(members)} ({min(members)}–{max(members)}){control}; "
                  f"{ran['mode']}, {ran['seconds']:.0f} s")
    classes = ", ".join(f"≥ {years} a/yr: {count:,}" for years, count in
                        record["reaches_at_or_above_return_period"].items())
    median = " (mediana del conjunto / ensemble median)" if len(members) > 1 else ""
    out.print(
        f"lluvia / rain (domain mean) {record['rain_total_mm_mean']:.1f} mm, escorrentía / "
        f"runoff {record['runoff_total_mm_mean']:.1f} mm; balance de masa / mass balance "
        f"{mb['relative_error']:.1e}; tramos por período de retorno / reaches by return "
        f"period{median}: {classes}"
    )


@scenarios_app.command("run", context_settings={"allow_extra_args": True,
                                                "ignore_unknown_options": True})
def scenarios_run(
    ctx: typer.Context,
    terrain: Annotated[Path, typer.Option(help="Terrain model directory (terrain build).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Output directory (one folder per "
                                                        "return period: rp2/, rp10/, …).")],
    return_periods: Annotated[
        list[str] | None, typer.Option(
            "--return-periods", help="Return periods in years, several after the option "
                                     "(--return-periods 2 5 10 25 50 100, the default) or "
                                     "comma-separated.")
    ] = None,
    duration_h: Annotated[
        list[int] | None, typer.Option(
            "--duration-h", help="Design storm duration, h (repeat for several). Default: "
                                 "every duration of models/idf_el_salvador.yaml (1…72 h), "
                                 "each reach taking its critical one, as the thresholds do; "
                                 "one fixed duration (e.g. 24) under-states the floods of "
                                 "catchments whose critical storm is shorter.")
    ] = None,
    rain_factor: Annotated[
        float, typer.Option(help="Scale every design rain depth: a climate-change "
                                 "sensitivity (1.1–1.3 ≈ +1.5…+4 °C at ~7 %/°C), not a "
                                 "projection.")
    ] = 1.0,
    ia_ratio: IaRatioOption = 0.2,
    landcover: LandcoverOption = None,
    soil: SoilOption = None,
    cache_dir: CacheDirOption = None,
    settlements: SettlementsOption = None,
    centres: CentresOption = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Flood scenarios for planning: each return period's design storm through the whole
    chain (rp2/, rp10/, … as forecast runs), then expected annual exposure per settlement,
    municipality, department and reach, and each centre's return period of unsafety."""
    from floodwarn.ensemble import default_workers
    from floodwarn.pipeline import SCENARIO_JOB_STEPS, run_flood_scenarios
    from floodwarn.request import ScenarioRequest

    periods = _whole_numbers([*(return_periods or []), *ctx.args], "--return-periods")
    if ctx.args and not return_periods:
        raise typer.BadParameter(f"unexpected {' '.join(ctx.args)!r}; return periods follow "
                                 "--return-periods.")
    # A scenario already runs its storm's area runs on threads over every core: locally, one
    # worker process per two cores (one on a laptop, where a cluster only adds copies).
    execution = _execution(ctx, workers if workers else max(1, default_workers() // 2),
                           scheduler)
    with errors_as_messages():
        request = ScenarioRequest.build(
            terrain_dir=terrain, return_periods=periods or (2, 5, 10, 25, 50, 100),
            durations_h=tuple(duration_h) if duration_h else None, rain_factor=rain_factor,
            ia_ratio=ia_ratio, landcover_path=landcover, soil_path=soil,
            settlements_path=settlements, centres_path=centres)
    with errors_as_messages(), _step_progress(SCENARIO_JOB_STEPS) as on_step:
        result = run_flood_scenarios(request, out_dir,
                                     cache_dir=cache_dir or _default_cache_dir(),
                                     execution=execution, on_step=on_step,
                                     on_scenario=on_step.scenarios)
    _print_scenarios_summary(result)


ScenariosDirOption = Annotated[
    Path, typer.Option("--scenarios", help="Folder of `floodwarn scenarios run --out`.")]


@plan_app.command("shelters")
def plan_shelters(
    scenarios: ScenariosDirOption,
    upgrades: Annotated[
        int | None, typer.Option(min=1, help="Choose at most this many actions (the national "
                                             "programme aims at 40 or more).")
    ] = None,
    budget: Annotated[
        float | None, typer.Option(min=0, help="Spend at most this much (the candidates' "
                                               "currency; default file: USD, assumed costs).")
    ] = None,
    candidates: Annotated[
        Path | None, typer.Option(help="CSV of candidate actions: action_id, kind (capacity, "
                                       "flood_safe, new_site), site_id, places, cost; name, "
                                       "lon, lat for new sites. Default: every eligible site "
                                       "enlarged to the Sphere standard and every flooding "
                                       "site flood-proofed (models/shelter_upgrades.yaml).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write (default SCENARIOS/plan).")
    ] = None,
    time_limit_s: Annotated[
        float, typer.Option(min=1, help="Stop the optimiser after this many seconds with "
                                        "the best plan found (said so in the output).")
    ] = 120.0,
    gap: Annotated[
        float, typer.Option(min=0, max=0.5, help="Stop once the plan is proven within this "
                                                 "share of the best possible (0.005: 0.5 %).")
    ] = 0.005,
) -> None:
    """Choose shelter upgrades that most reduce the expected evacuees left without a place
    each year, by optimisation over the scenarios / elegir mejoras de albergues."""
    from floodwarn.pipeline import plan_shelter_upgrades

    if upgrades is None and budget is None:
        raise typer.BadParameter("give --upgrades N, --budget AMOUNT, or both.")
    with errors_as_messages():
        result = plan_shelter_upgrades(scenarios, upgrades=upgrades, budget=budget,
                                       candidates_path=candidates, out_dir=out_dir,
                                       time_limit_s=time_limit_s, mip_rel_gap=gap)
    record = result.record
    table = Table(title="Mejoras elegidas / chosen upgrades" + (
        " — SINTÉTICO / SYNTHETIC" if record["synthetic"] else ""))
    for column in ("sitio / site", "municipio / municipality", "acción / action",
                   "evita por año / avoids per year", "motivo / reason"):
        table.add_column(column)
    for row in result.chosen.itertuples():
        table.add_row(str(row.site_name), str(row.municipality), str(row.kind),
                      f"{row.expected_unplaced_avoided_per_year:,.1f}", str(row.reason_es))
    out.print(table)
    out.print(f"evacuados sin lugar por año (esperado) / expected unplaced evacuees per year: "
              f"{record['expected_unplaced_before']:,.0f} → "
              f"{record['expected_unplaced_after']:,.0f}; "
              f"coste / cost {record['total_cost']:,.0f} {record['currency']}"
              + (" (costes supuestos / assumed costs)" if record["costs_are_assumptions"]
                 else ""))
    if not record["optimal"]:
        out.print(f"[yellow]límite de tiempo: el mejor plan hallado, brecha / time limit: "
                  f"best plan found, gap {record['mip_gap']:.1%}[/]")
    out.print(f"→ {result.out_dir}")


@plan_app.command("report")
def plan_report(
    scenarios: ScenariosDirOption,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file to write (default "
                                                "SCENARIOS/informe_planificacion.html).")
    ] = None,
    upgrades: Annotated[
        Path | None, typer.Option(help="upgrades.csv of `floodwarn plan shelters` (default: "
                                       "SCENARIOS/plan/upgrades.csv when it exists).")
    ] = None,
) -> None:
    """The planner's report: maps, exposure tables and the chosen upgrades, in Spanish, one
    self-contained HTML page / informe de planificación."""
    from floodwarn.pipeline import UPGRADES_FILE
    from floodwarn.planning.report import write_planner_report

    default_upgrades = scenarios / "plan" / UPGRADES_FILE
    if upgrades is None and default_upgrades.exists():
        upgrades = default_upgrades
    with errors_as_messages():
        path = write_planner_report(scenarios,
                                    out_file or scenarios / "informe_planificacion.html",
                                    upgrades_csv=upgrades)
    out.print(f"informe / report → {path}")


@plan_app.command("evacuation-plans", context_settings={"allow_extra_args": True,
                                                       "ignore_unknown_options": True})
def plan_evacuation_plans(
    ctx: typer.Context,
    scenarios: ScenariosDirOption,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder to write (default "
                                                "SCENARIOS/planes_evacuacion).")
    ] = None,
    return_periods: Annotated[
        list[str] | None, typer.Option(
            "--return-periods", help="Floods each plan covers (default 10 25 100; the 10-year "
                                     "flood picks the settlements).")
    ] = None,
) -> None:
    """Community evacuation plans per municipality (CSV and a printable page each): for every
    settlement at risk from the 10-year flood, its centres, distances and capacity used /
    planes comunitarios de evacuación."""
    from floodwarn.planning.evacuation_plans import write_evacuation_plans

    periods = _whole_numbers([*(return_periods or []), *ctx.args], "--return-periods")
    with errors_as_messages():
        written = write_evacuation_plans(scenarios, out_dir or scenarios / "planes_evacuacion",
                                         return_periods=periods or (10, 25, 100))
    out.print(f"{len(written)} archivos / files → {written[0].parent if written else out_dir}")


def _whole_numbers(values: list[str], option: str) -> tuple[int, ...]:
    """Whole numbers given as separate words or comma-separated, in the order given."""
    numbers = []
    for word in (part for value in values for part in value.split(",") if part.strip()):
        try:
            numbers.append(int(word))
        except ValueError:
            raise typer.BadParameter(f"{option}: {word!r} is not a whole number of years."
                                     ) from None
    return tuple(numbers)


def _print_scenarios_summary(result: Any) -> None:
    record = result.record
    table = Table(title="Escenarios / scenarios" + (" — SINTÉTICO / SYNTHETIC"
                                                    if record["synthetic"] else ""))
    for column in ("periodo de retorno / return period", "personas expuestas / exposed",
                   "evacuados / evacuees", "sin lugar / unplaced", "albergues inseguros / "
                   "unsafe centres", "tierra inundada / flooded km²"):
        table.add_column(column, justify="right")
    for name, s in record["scenarios"].items():
        table.add_row(name.removeprefix("rp") + " a", f"{s.get('people_exposed', 0):,}",
                      f"{s.get('evacuees', 0):,}", f"{s.get('unmet_evacuees', 0):,}",
                      f"{s.get('centres_by_status', {}).get('unsafe', 0):,}",
                      f"{s['inundation']['flooded_land_km2']:,.1f}")
    out.print(table)
    expected = record["expected_annual"]
    if expected:
        out.print(f"personas expuestas por año (esperado) / expected people exposed per year: "
                  f"{expected['people_exposed']:,.0f}; evacuados / evacuees "
                  f"{expected['evacuees']:,.0f}; sin lugar / unplaced "
                  f"{expected['unplaced_evacuees']:,.0f}")
    if record["rain_factor"] != 1.0:
        out.print(f"lluvia de diseño × {record['rain_factor']} (sensibilidad climática / "
                  "climate sensitivity)")
    out.print(f"→ {result.out_dir} ({record['timings_s']['total']:.1f} s)")


@terrain_app.command("info")
def terrain_info(
    model_dir: Annotated[Path, typer.Argument(help="Terrain model directory.")],
) -> None:
    """Show what a terrain model directory holds."""
    from floodwarn.io.terrain_files import load_terrain_model

    with errors_as_messages():
        model = load_terrain_model(model_dir)
    _print_terrain_summary(model.metadata, model_dir)


@data_app.command("fetch-dem")
def data_fetch_dem(
    bbox: Annotated[tuple[float, float, float, float], typer.Option(help="W S E N in degrees.")],
    out_file: Annotated[Path, typer.Option("--out", help="Mosaic GeoTIFF to write.")],
    source: Annotated[str, typer.Option(help="copernicus-glo30 or srtm.")] = "copernicus-glo30",
    base_url: Annotated[str | None, typer.Option(help="Mirror with the same layout.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Where tiles are kept.")] = None,
) -> None:
    """Download public DEM tiles for a box and mosaic them / descargar teselas de elevación."""
    from floodwarn.io.fetch import fetch_dem

    with errors_as_messages():
        report = fetch_dem(bbox, out_file, source=source, base_url=base_url, cache_dir=cache_dir)
    out.print(
        f"wrote {report.out_path}: {len(report.tiles_downloaded)} downloaded, "
        f"{len(report.tiles_cached)} from cache, {len(report.tiles_missing)} missing "
        f"{report.tiles_missing or ''}"
    )


@data_app.command("standin-dem")
def data_standin_dem(
    out_file: Annotated[Path, typer.Option("--out", help="GeoTIFF to write.")],
) -> None:
    """Generate the SYNTHETIC stand-in DEM of the demo domain / MDE sintético de demostración."""
    from floodwarn.standin_dem import write_standin_dem

    with errors_as_messages():
        path = write_standin_dem(out_file)
    out.print(
        f"wrote {path} — SYNTHETIC stand-in, not real terrain / SINTÉTICO, no es terreno real"
    )


@data_app.command("check")
def data_check() -> None:
    """Load and validate every shipped layer / validar las capas incluidas."""
    from floodwarn.io import gis_data
    from floodwarn.io.dem import read_dem

    table = Table(title="gis_data")
    table.add_column("layer")
    table.add_column("features / cells", justify="right")
    table.add_column("notes")
    with errors_as_messages():
        m = gis_data.load_municipalities()
        table.add_row("municipalities", str(len(m)), f"{m['department'].nunique()} departments")
        s = gis_data.load_settlements()
        table.add_row("settlements", str(len(s)), f"population {s['population'].sum():,}")
        c = gis_data.load_collective_centres()
        table.add_row(
            "collective centres",
            str(len(c)),
            f"capacity {c['capacity'].sum():,} persons (estimated)",
        )
        for layer in ("coarse_dem", "srtm_tile"):
            dem = read_dem(gis_data.layer_path(layer), target_crs="auto")
            table.add_row(
                layer,
                f"{dem.grid.n_cells:,}",
                f"{dem.grid.cellsize_m:g} m after reprojection to {dem.metadata['crs']}",
            )
    out.print(table)


@data_app.command("check-sites")
def data_check_sites(
    path: Annotated[Path, typer.Argument(help="The list of collective centres, CSV or XLSX.")],
) -> None:
    """Check a list of collective centres before importing it (every bad row named) /
    revisar una lista de albergues antes de importarla (POST /sites/import)."""
    from floodwarn.parameters import CollectiveCentreRules, load_parameters
    from floodwarn.sites.gbv import gbv_flags
    from floodwarn.sites.profiles import read_site_profiles

    with errors_as_messages():
        sites = read_site_profiles(path)
    rules = load_parameters(CollectiveCentreRules)
    flags = gbv_flags(sites, min_area_per_person_m2=rules.area_per_person_m2)
    known_capacity = sites["capacity_people"].notna()
    from_area = ~known_capacity & sites["covered_area_m2"].notna()
    table = Table(title=f"{path.name}: {len(sites)} sitios / sites — sin errores / no errors")
    table.add_column("")
    table.add_column("sitios / sites", justify="right")
    for label, count in (
            ("habilitados / may be used", int(sites["usable"].fillna(False).sum())),
            ("capacidad declarada / capacity given", int(known_capacity.sum())),
            ("capacidad por área (3,5 m²/persona) / from area", int(from_area.sum())),
            ("capacidad desconocida: no es destino / unknown: no destination",
             int((~known_capacity & ~from_area).sum())),
            ("con riesgo VBG / with a GBV risk flag", int((flags["gbv_risk_count"] > 0).sum())),
            # Overcrowding is unknown until a report counts the people: not a gap of the list.
            ("servicios sin dato / services unknown", int(
                flags[["gbv_no_lighting", "gbv_no_lockable_doors", "gbv_mixed_toilets",
                       "gbv_no_private_space"]].isna().any(axis=1).sum())),
            ("departamentos / departments", int(sites["department_code"].nunique()))):
        table.add_row(label, f"{count:,}")
    out.print(table)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo writes.")] = Path(
        "demo-output"
    ),
) -> None:
    """Run the El Salvador demo on shipped data / demostración con los datos incluidos.

    Builds the SYNTHETIC stand-in terrain, then runs the SYNTHETIC Amanda-scale storm through
    the whole chain and shows the worst-hit places and the run's plausibility report.
    """
    from floodwarn.pipeline import (
        FORECAST_JOB_STEPS,
        TERRAIN_JOB_STEPS,
        demo_forecast,
        demo_terrain,
    )

    with errors_as_messages():
        with _step_progress(("standin_dem", *TERRAIN_JOB_STEPS)) as on_step:
            on_step("standin_dem")
            result = demo_terrain(out_dir, on_step=on_step)
        _print_terrain_summary(result.model.metadata, result.out_dir)
        with _step_progress(FORECAST_JOB_STEPS) as on_step:
            forecast = demo_forecast(out_dir, result.model, on_step=on_step)
        _print_forecast_summary(forecast.record, forecast.out_dir)
        if forecast.risk is not None:
            _print_worst_hit(forecast.risk, synthetic=forecast.record["synthetic"])
        _print_plausibility(forecast.record)


def _print_worst_hit(risk: Any, *, synthetic: bool) -> None:
    """The settlements at the highest levels, with depth, people, time left and destination."""
    from floodwarn.parameters import LEVELS

    towns = risk.settlements.assign(rank=risk.settlements["level"].map(LEVELS.index))
    worst = towns[towns["rank"] > 0].sort_values(["rank", "risk_score"],
                                                 ascending=False).head(10)
    flag = " — SYNTHETIC / SINTÉTICO" if synthetic else ""
    if worst.empty:
        out.print(f"ningún asentamiento en alerta / no settlement under warning{flag}")
        return
    ensemble = "prob_amarilla" in towns and not set(np.unique(towns["prob_amarilla"])) <= {0, 1}
    table = Table(title=f"lugares más afectados / worst-hit places{flag}")
    for col in ("asentamiento / settlement", "departamento / department", "nivel / level",
                "agua máx. / max depth m", "personas / people exposed",
                "inundación en / flooding in h", "albergue / shelter (people)"):
        table.add_column(col, justify="left" if "settlement" in col or "level" in col
                         else "right")
    moves = risk.evacuation
    names = dict(zip(risk.centres["id"].astype(str), risk.centres["name"], strict=True))
    for row in worst.itertuples():
        here = moves[moves["settlement_id"] == row.id]
        placed = here[here["centre_id"] != ""].sort_values("people", ascending=False)
        unmet = int(here.loc[here["centre_id"] == "", "people"].sum())
        dest = f"{names.get(placed['centre_id'].iloc[0], '?')[:28]} ({placed['people'].iloc[0]})" \
            if len(placed) else "—"
        if len(placed) > 1:
            dest += f" +{len(placed) - 1}"
        if unmet:
            dest += f"; sin lugar/unmet {unmet:,}"
        hours = "—" if row.hours_to_flooding != row.hours_to_flooding else \
            f"{row.hours_to_flooding:.0f}"
        # An ensemble's level with its probability: roja at 55 % reads otherwise as certain.
        level = f"{row.level} ({getattr(row, f'prob_{row.level}'):.0%})" if ensemble \
            else row.level
        table.add_row(row.name, str(row.department), level, f"{row.max_depth_m:.1f}",
                      f"{row.people_exposed:,}", hours, dest)
    out.print(table)


def _print_terrain_summary(meta: dict[str, Any], out_dir: Path) -> None:
    stats = meta["statistics"]
    dem = meta["dem"]
    table = Table(title=f"terrain model / modelo de terreno: {out_dir}")
    table.add_column("")
    table.add_column("")
    if dem.get("synthetic"):
        table.add_row(
            "[bold yellow]DEM",
            "[bold yellow]SYNTHETIC stand-in, not real terrain / SINTÉTICO, no es terreno real",
        )
    table.add_row("DEM", str(dem.get("name", "")))
    table.add_row(
        "grid",
        f"{meta['shape'][0]} × {meta['shape'][1]} cells, "
        f"{meta['cellsize_m']:g} m, EPSG:{meta.get('epsg')}",
    )
    table.add_row("valid cells", f"{stats['valid_cells']:,}")
    table.add_row("reaches", f"{stats['reaches']:,} (max Strahler {stats['max_strahler']})")
    table.add_row("stream cells", f"{stats['stream_cells']:,}")
    t = meta["timings_s"]
    table.add_row("compute", f"{t.get('compute_total', math.nan):.2f} s")
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
