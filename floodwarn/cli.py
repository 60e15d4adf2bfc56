"""Command line: thin commands that parse, call :mod:`floodwarn.pipeline`, and print."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from floodwarn import __version__
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

console = Console(stderr=True)
out = Console()


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
def _errors_as_messages() -> Iterator[None]:
    """Show floodwarn's own errors as one clear message and exit 2, never a traceback."""
    try:
        yield
    except FloodwarnError as exc:
        console.print(f"[bold red]error[/]: {exc}")
        raise typer.Exit(code=2) from exc


@contextmanager
def _step_progress(steps: tuple[str, ...]) -> Iterator[callable]:  # type: ignore[valid-type]
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=False,
    )
    task = progress.add_task("starting", total=len(steps))
    seen: list[str] = []

    def on_step(step: str) -> None:
        if seen:
            progress.advance(task)
        seen.append(step)
        progress.update(task, description=step.replace("_", " "))

    with progress:
        yield on_step
        progress.update(task, completed=len(steps), description="done")


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
    stream_area_km2: Annotated[float, typer.Option(help="Upstream area that starts a stream, km².")] = DEFAULT_STREAM_AREA_KM2,
    max_reach_length_m: Annotated[float, typer.Option(help="Maximum reach length, m.")] = DEFAULT_MAX_REACH_LENGTH_M,
    crs: Annotated[str, typer.Option(help="Target CRS for geographic DEMs, or 'auto' (UTM zone).")] = DEFAULT_CRS,
    cellsize_m: Annotated[float | None, typer.Option(help="Cell size after reprojection, m.")] = None,
    nodata: Annotated[str | None, typer.Option(help="Nodata value if the DEM declares none (or 'nan').")] = None,
    fill_voids: Annotated[bool, typer.Option(help="Interpolate enclosed nodata voids.")] = False,
) -> None:
    """Build a terrain model: filled DEM, D8, accumulation, reaches, catchments, HAND."""
    from floodwarn.pipeline import TERRAIN_JOB_STEPS, build_terrain

    with _errors_as_messages(), _step_progress(TERRAIN_JOB_STEPS) as on_step:
        result = build_terrain(
            dem, out_dir, stream_area_km2=stream_area_km2, max_reach_length_m=max_reach_length_m,
            target_crs=crs, cellsize_m=cellsize_m, nodata=_parse_nodata(nodata),
            fill_voids=fill_voids, on_step=on_step,
        )
    _print_terrain_summary(result.model.metadata, result.out_dir)


@terrain_app.command("info")
def terrain_info(
    model_dir: Annotated[Path, typer.Argument(help="Terrain model directory.")],
) -> None:
    """Show what a terrain model directory holds."""
    from floodwarn.terrain.model import TerrainModel

    with _errors_as_messages():
        model = TerrainModel.load(model_dir)
    _print_terrain_summary(model.metadata, model_dir)


def _print_terrain_summary(meta: dict, out_dir: Path) -> None:  # type: ignore[type-arg]
    stats = meta["statistics"]
    dem = meta["dem"]
    table = Table(title=f"terrain model / modelo de terreno: {out_dir}")
    table.add_column("")
    table.add_column("")
    if dem.get("synthetic"):
        table.add_row("[bold yellow]DEM", "[bold yellow]SYNTHETIC stand-in, not real terrain / "
                      "SINTÉTICO, no es terreno real")
    table.add_row("DEM", str(dem.get("name", "")))
    table.add_row("grid", f"{meta['shape'][0]} × {meta['shape'][1]} cells, "
                  f"{meta['cellsize_m']:g} m, EPSG:{meta.get('epsg')}")
    table.add_row("valid cells", f"{stats['valid_cells']:,}")
    table.add_row("reaches", f"{stats['reaches']:,} (max Strahler {stats['max_strahler']})")
    table.add_row("stream cells", f"{stats['stream_cells']:,}")
    t = meta["timings_s"]
    table.add_row("compute", f"{t.get('compute_total', math.nan):.2f} s")
    out.print(table)


if __name__ == "__main__":  # pragma: no cover
    app()
