"""The ``floodwarn`` command with the service's ``serve`` added (floodwarn itself never
imports the service, so the command is assembled here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from floodwarn.cli import app, console

__all__ = ["app"]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Store and run outputs (default $FLOODWARN_DATA_DIR).")
    ] = None,
    no_demo: Annotated[bool, typer.Option("--no-demo", help="Do not run the demo forecast "
                                          "on first start.")] = False,
    config: Annotated[
        Path | None, typer.Option(help="Settings file of FLOODWARN_… = value lines; the "
                                  "environment overrides it.", exists=True, dir_okay=False)
    ] = None,
) -> None:
    """Start the alert service with the embedded store / iniciar el servicio de alertas.

    On first start with an empty store it builds the demo terrain (SYNTHETIC) and queues the
    Amanda-scale demo storm, so that alerts, map data and the feed appear at once.
    """
    import uvicorn
    from sqlalchemy import func, select

    from api.app import create_app
    from api.settings import Settings
    from api.store.models import Run

    settings = (Settings(_env_file=config) if data_dir is None  # type: ignore[call-arg]
                else Settings(_env_file=config, data_dir=data_dir))  # type: ignore[call-arg]
    application = create_app(settings)
    with application.state.sessions() as session:
        empty = session.scalar(select(func.count()).select_from(Run)) == 0
    _first_admin_key(application.state.sessions, settings)
    if empty and not no_demo:
        from floodwarn.io.rainfall import write_rainfall_netcdf
        from floodwarn.pipeline import demo_terrain
        from floodwarn.rainfall.storm import AMANDA_2020, storm_forecast

        if settings.terrain_dir is None and not (settings.terrain / "terrain.json").exists():
            console.print("first start: building the SYNTHETIC demo terrain / construyendo el "
                          "terreno de demostración (SINTÉTICO)…")
            demo_terrain(settings.data_dir / "demo")
        settings.inbox_dir.mkdir(parents=True, exist_ok=True)
        write_rainfall_netcdf(storm_forecast(AMANDA_2020),
                              settings.inbox_dir / "demo_amanda_2020.nc")
        console.print("demo storm queued / tormenta de demostración en cola")
    console.print(f"floodwarn service on http://{host}:{port} (store {settings.store_url})")
    uvicorn.run(application, host=host, port=port, log_level="warning")


def _first_admin_key(sessions: Any, settings: Any) -> None:
    """With no key in the store and none configured, make an admin key so that the first user
    can get in: printed once and kept in ``data_dir/admin-key.txt`` (owner-only)."""
    from datetime import UTC, datetime

    from sqlalchemy import func, select

    from api.auth import create_api_key
    from api.store.models import ApiKey

    if settings.admin_key:
        return
    with sessions.begin() as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return
        key = create_api_key(session, role="admin", name="first start", now=datetime.now(UTC))
    path = settings.data_dir / "admin-key.txt"
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    console.print(f"admin key (shown once, also in {path}) / clave de administrador: {key}\n"
                  "use it as the X-API-Key header; create analyst and committee keys with "
                  "POST /keys")
