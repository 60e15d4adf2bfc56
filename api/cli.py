"""The ``floodwarn`` command with the service's ``serve`` added (floodwarn itself never
imports the service, so the command is assembled here)."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from floodwarn.cli import app, console
from floodwarn.errors import FloodwarnError, InputError

__all__ = ["app"]

runs_app = typer.Typer(help="Forecast runs of the alert service / corridas del servicio.",
                       no_args_is_help=True)
app.add_typer(runs_app, name="runs")

DataDirOption = Annotated[
    Path | None, typer.Option(help="Store and run outputs (default $FLOODWARN_DATA_DIR).")
]
ConfigOption = Annotated[
    Path | None, typer.Option(help="Settings file of FLOODWARN_… = value lines; the "
                              "environment overrides it.", exists=True, dir_okay=False)
]


def _settings(data_dir: Path | None, config: Path | None) -> Any:
    from api.settings import Settings

    if data_dir is None:
        return Settings(_env_file=config)  # type: ignore[call-arg]
    return Settings(_env_file=config, data_dir=data_dir)  # type: ignore[call-arg]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    data_dir: DataDirOption = None,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Do not run the demo forecast "
                                          "on first start.")] = False,
    config: ConfigOption = None,
) -> None:
    """Start the alert service with the embedded store / iniciar el servicio de alertas.

    On first start with an empty store it builds the demo terrain (SYNTHETIC) and queues the
    Amanda-scale demo storm, so that alerts, map data and the feed appear at once.
    """
    import uvicorn

    from api.app import create_app
    from api.store.runs import run_counts

    # Everything the service writes (store, keys, uploads, outputs) is its owner's alone.
    os.umask(0o077)
    settings = _settings(data_dir, config)
    application = create_app(settings)
    with application.state.sessions() as session:
        empty = not run_counts(session)
    _first_admin_key(application.state.sessions, settings)
    if empty and not no_demo:
        import dataclasses
        from datetime import UTC, datetime

        from floodwarn.io.rainfall import write_rainfall_netcdf
        from floodwarn.pipeline import demo_terrain
        from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast

        if settings.terrain_dir is None and not (settings.terrain / "terrain.json").exists():
            console.print("first start: building the SYNTHETIC demo terrain / construyendo el "
                          "terreno de demostración (SINTÉTICO)…")
            demo_terrain(settings.data_dir / "demo")
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)
        # Dated from this hour: the demo is a live exercise whose alerts are in force now.
        this_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
        live = dataclasses.replace(AMANDA_2020, start=this_hour.isoformat(timespec="minutes"))
        write_rainfall_netcdf(storm_forecast(live),
                              settings.inbox_dir / "demo_amanda_2020.nc")
        console.print("demo storm queued / tormenta de demostración en cola")
    console.print(f"floodwarn service on http://{host}:{port} (store {settings.store_url})")
    # The ~250 000 objects made at start (modules, tables, the app) last as long as the
    # process: moved out of the collector's sight (gc.freeze, Python docs, "gc — Garbage
    # Collector interface"), a full collection no longer walks them — 125 ms on this 2-core
    # machine, every request in flight stalled meanwhile (a cached tile's p99 went to 170 ms).
    gc.collect()
    gc.freeze()
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _first_admin_key(sessions: Any, settings: Any) -> None:
    """With no key in the store and none configured, make an admin key so that the first user
    can get in: printed once and kept in ``data_dir/admin-key.txt`` (owner-only)."""
    from datetime import UTC, datetime

    from api.store.access import count_keys, create_api_key

    if settings.admin_key:
        return
    with sessions.begin() as session:
        if count_keys(session):
            return
        _, key = create_api_key(session, role="admin", name="first start",
                                now=datetime.now(UTC))
    path = settings.data_dir / "admin-key.txt"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(key + "\n")
    console.print(f"admin key (shown once, also in {path}) / clave de administrador: {key}\n"
                  "use it as the X-API-Key header; create analyst and committee keys with "
                  "POST /keys")


@runs_app.command("submit")
def runs_submit(
    forecast: Annotated[Path, typer.Argument(help="Forecast file (NetCDF, GRIB).",
                                             exists=True, dir_okay=False)],
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
    now: Annotated[bool, typer.Option("--now", help="Execute it here and now, publish its "
                                      "alerts and send due webhooks, instead of leaving it to "
                                      "the service's worker.")] = False,
    reservoir_level: Annotated[
        list[str] | None, typer.Option(
            help="Initial level of a reservoir or lake, ID=METRES a.s.l. (repeat); default: "
                 "the month's normal level.")
    ] = None,
    amc: Annotated[int | None, typer.Option(help="Antecedent moisture class 1, 2 or 3.")] = None,
    antecedent_rain_mm: Annotated[
        float | None, typer.Option(help="Rain of the 5 days before the forecast, mm (AMC).")
    ] = None,
    member: Annotated[
        list[int] | None, typer.Option(help="Ensemble member number to run (repeat); default: "
                                       "every member.")
    ] = None,
    units: Annotated[str | None, typer.Option(help="Override the file's rain units.")] = None,
) -> None:
    """Queue a forecast run in the service / poner en cola una corrida.

    The file is checked first (what a run would refuse is refused here, with the reason), then
    copied into the service's inbox and queued with its options; a running `floodwarn serve`
    executes it.
    """
    from datetime import UTC, datetime

    import httpx

    from api.store.db import open_store
    from api.store.runs import get_run
    from api.submit import (
        AmcClass,
        AntecedentRain,
        ReservoirLevels,
        RunOptions,
        submit_file,
    )
    from api.webhooks import deliver_due
    from api.worker import execute_next
    from floodwarn.cli import errors_as_messages, parse_reservoir_levels
    from floodwarn.request import describe_validation_error

    settings = _settings(data_dir, config)
    levels = parse_reservoir_levels(reservoir_level or [])
    with errors_as_messages():
        try:
            antecedent = (AmcClass(amc=amc) if amc is not None  # type: ignore[arg-type]
                          else AntecedentRain(antecedent_rain_mm=antecedent_rain_mm)
                          if antecedent_rain_mm is not None else None)
            if amc is not None and antecedent_rain_mm is not None:
                raise InputError("antecedent moisture: give --amc or --antecedent-rain-mm, "
                                 "not both.")
            options = RunOptions(
                antecedent=antecedent, units=units,
                reservoir_levels=ReservoirLevels(**levels) if levels else None,
                members=frozenset(member) if member else None)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc, "options")) from exc
        settings.cap_signer()
        engine, sessions = open_store(settings.store_url)
        run = submit_file(sessions, settings, forecast, options=options, actor="cli",
                          now=datetime.now(UTC))
        console.print(f"run {run.id} queued / corrida en cola: {Path(run.rain_path).name}")
        if now:
            while (ran := execute_next(sessions, settings)) is not None:
                if ran == run.id:
                    break
            with httpx.Client() as client:
                sent = deliver_due(sessions, client, settings.secret_box(),
                                   now=datetime.now(UTC))
            _print_runs(sessions, only=run.id)
            console.print(f"webhooks: {sent}")
            with sessions() as session:
                finished = get_run(session, run.id)
            if finished.status != "succeeded":
                engine.dispose()
                raise FloodwarnError(f"run {run.id} {finished.status}: {finished.error}")
        engine.dispose()


@runs_app.command("list")
def runs_list(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Runs of the service with their status / corridas y su estado."""
    from api.store.db import open_store

    engine, sessions = open_store(_settings(data_dir, config).store_url)
    _print_runs(sessions)
    engine.dispose()


def _print_runs(sessions: Any, only: int | None = None) -> None:
    from rich.table import Table
    from sqlalchemy import func, select

    from api.store.models import AlertVersion, Run

    table = Table("run", "status / estado", "file / archivo", "queued", "finished",
                  "messages / mensajes", "error")
    with sessions() as session:
        query = select(Run).order_by(Run.id.desc())
        if only is not None:
            query = query.where(Run.id == only)
        for run in session.scalars(query):
            messages = session.scalar(select(func.count()).select_from(AlertVersion)
                                      .where(AlertVersion.run_id == run.id))
            table.add_row(str(run.id), run.status, Path(run.rain_path).name,
                          run.created_at.strftime("%Y-%m-%d %H:%M"),
                          run.finished_at.strftime("%Y-%m-%d %H:%M") if run.finished_at else "",
                          str(messages), run.error or "")
    console.print(table)
