"""Shared fixtures: paths to the shipped data and small synthetic terrains."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from hypothesis import settings

from floodwarn.terrain.grid import Grid

REPO = Path(__file__).resolve().parents[1]
GIS_DATA = REPO / "gis_data"
SRTM_TILE = GIS_DATA / "dem" / "N44W072.hgt"

# CI runs a fixed set of examples so that a result can be reproduced; "dev" explores anew.
settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=150, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _serial_ensembles(monkeypatch):
    """Command-line runs execute members in the test's process unless a test asks for Dask
    (tests/test_ensemble.py): a local cluster per CLI test would only cost seconds."""
    monkeypatch.setenv("FLOODWARN_ENSEMBLE_WORKERS", "1")


def utm_grid(shape: tuple[int, int], cellsize: float = 90.0, crs: str = "EPSG:32616") -> Grid:
    """A north-up grid in UTM 16N over El Salvador's latitudes."""
    return Grid(
        shape=shape, transform=Affine(cellsize, 0, 200_000, 0, -cellsize, 1_600_000), crs=crs
    )


def fractal_dem(n: int, *, seed: int = 0, relief_m: float = 500.0, tilt: float = 0.0) -> np.ndarray:
    """Spectral fractal surface (power ∝ k^-3.2), float32, with an optional south-east tilt."""
    rng = np.random.default_rng(seed)
    kx = np.fft.fftfreq(n)[:, None]
    ky = np.fft.rfftfreq(n)[None, :]
    k = np.hypot(kx, ky)
    k[0, 0] = 1.0
    spectrum = (rng.normal(size=k.shape) + 1j * rng.normal(size=k.shape)) * k ** (-1.6)
    spectrum[0, 0] = 0.0
    z = np.fft.irfft2(spectrum, s=(n, n))
    z = (z - z.min()) / (z.max() - z.min()) * relief_m
    r, c = np.mgrid[0:n, 0:n]
    return (z + tilt * (2 * n - r - c)).astype(np.float32)


@pytest.fixture(scope="session")
def srtm_tile() -> Path:
    if not SRTM_TILE.exists():
        pytest.fail(f"shipped SRTM tile missing: {SRTM_TILE}")
    return SRTM_TILE


@pytest.fixture(scope="session")
def demo_service(tmp_path_factory: pytest.TempPathFactory, demo_output):
    """The README's main job, once per test session: `floodwarn serve` on an empty store with
    settings from a file builds the SYNTHETIC demo terrain and runs the demo storm through to
    alerts. Yields the live service and its finished demo run.

    The service builds its terrain itself; it finds the stand-in DEM and the prepared products
    (channel geometry, design-storm thresholds) the CLI demo made already — the same DEM
    builds the same terrain, whose digest keys that cache — so a session pays for them once."""
    from tests.live_service import start_service, wait_for_demo_run

    workdir = tmp_path_factory.mktemp("demo-service")
    made = demo_output.out_dir
    if (made / "cache").is_dir() and (made / "standin_dem_90m.tif").exists():
        (workdir / "data" / "demo").mkdir(parents=True)
        shutil.copy2(made / "standin_dem_90m.tif", workdir / "data" / "demo")
        shutil.copytree(made / "cache", workdir / "data" / "cache")
    service = start_service(workdir)
    try:
        yield service, wait_for_demo_run(service)
    finally:
        service.stop()


@dataclass(frozen=True)
class DemoOutput:
    """What `floodwarn demo --out DIR` left: the folder (terrain/, forecast/, cache/) and what
    the command printed."""

    out_dir: Path
    exit_code: int
    output: str


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> DemoOutput:
    """`floodwarn demo` through the CLI, once per test run: tests/test_cli.py checks what it
    wrote and printed, the notebooks (tests/test_notebooks.py) read it. Tests must not write
    into it. Under pytest-xdist every worker has a session of its own: the first worker to
    get here runs the demo into the run's shared temporary folder, under a file lock, and the
    others reuse it."""
    from typer.testing import CliRunner

    from floodwarn.cli import app

    shared = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        shared = shared.parent  # the run's folder, above each worker's own
    out_dir = shared / "demo-output"
    done = shared / "demo-output.json"
    with _file_lock(shared / "demo-output.lock"):
        if not done.exists():
            result = CliRunner().invoke(app, ["demo", "--out", str(out_dir)])
            printed = result.output
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                printed += "".join(traceback.format_exception(result.exception))
            done.write_text(json.dumps({"exit_code": result.exit_code, "output": printed}))
        ran = json.loads(done.read_text())
    return DemoOutput(out_dir=out_dir, exit_code=ran["exit_code"], output=ran["output"])
