"""Planning: the planner's report, the exposure tables and the committees' evacuation plans of
the service's flood-scenario folder (``FLOODWARN_SCENARIOS_DIR``, made by ``floodwarn
scenarios run``).

Pages are written on the first request into the service's data folder and written again when
the scenario folder (or its shelter plan, ``plan/``) changes: each is named by the folder's
modification stamp, so a reader never meets a stale or half-written page.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from api.auth import ForbiddenError
from api.deps import PLACES, CallerDep, MunicipalityId, ServiceDep
from api.deps import municipality_id as known_municipality
from api.errors import COMMON_RESPONSES
from floodwarn.errors import InputError, NotFoundError
from floodwarn.io.forecast_outputs import (
    EXPOSURE_FILES,
    PLAN_FOLDER,
    SCENARIOS_FILE,
    UPGRADE_PLAN_FILE,
    UPGRADES_FILE,
)
from floodwarn.logs import get_logger
from floodwarn.planning.evacuation_plans import PLAN_RETURN_PERIODS, write_evacuation_plans
from floodwarn.planning.report import write_planner_report

log = get_logger(__name__)

router = APIRouter(prefix="/planning", tags=["planning"], responses=COMMON_RESPONSES)

#: The exposure tables of a scenario folder, by the name the API gives them.
ExposureTable = Literal["settlements", "municipalities", "departments", "centres", "reaches"]
HOW_TO = ("make them with `floodwarn scenarios run --terrain DATA_DIR/demo/terrain --out "
          "DATA_DIR/scenarios` (and `floodwarn plan shelters --scenarios DATA_DIR/scenarios "
          "--upgrades 40` for the upgrades), or point FLOODWARN_SCENARIOS_DIR at a folder made "
          "so")

HTML_PAGE: dict[int | str, dict[str, Any]] = {200: {
    "content": {"text/html": {"schema": {"type": "string"}}},
    "description": "A printable HTML page (Spanish first), self-contained"}}
TABLE: dict[int | str, dict[str, Any]] = {200: {
    "content": {"text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array",
                                                "items": {"type": "object"}}}},
    "description": "The table: CSV, or JSON records (Accept: application/json or "
                   "?format=json)"}}
PLAN: dict[int | str, dict[str, Any]] = {200: {
    "content": {"text/html": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}}},
    "description": "The municipality's evacuation plan: a page to print, or CSV "
                   "(?format=csv)"}}
HTML = "text/html; charset=utf-8"
CSV = "text/csv; charset=utf-8"


# --------------------------------------------------------------------------- routes


@router.get("/report", response_class=Response, responses=HTML_PAGE)
def planner_report(who: CallerDep, service: ServiceDep) -> FileResponse:
    """The planner's report of the scenarios (analysts and administrators): what they are,
    depth maps, the risk curve, the most exposed municipalities, settlements and reaches,
    the centres unsafe in frequent floods and, when ``floodwarn plan shelters`` wrote its plan
    into the scenario folder, the chosen shelter upgrades. One HTML page with its images
    inside."""
    who.require("analyst", "admin")
    path = PAGES.report(_scenarios(service), service.settings.data_dir)
    return FileResponse(path, media_type=HTML)


@router.get("/exposure/{table}", response_class=Response, responses=TABLE)
def exposure_table(
        who: CallerDep, service: ServiceDep, table: ExposureTable, request: Request,
        output: Annotated[Literal["csv", "json"] | None, Query(
            alias="format", description="csv (default) or json; without it, the Accept "
                                        "header decides")] = None) -> Response:
    """One exposure table of the scenarios (analysts and administrators): people exposed,
    evacuees and unplaced evacuees by return period with their expected annual values per
    settlement, municipality or department; each collective centre's status by return period
    and the one it is unsafe from; river reaches ranked by the people they flood."""
    who.require("analyst", "admin")
    path = _scenarios(service) / EXPOSURE_FILES[table]
    if not path.exists():
        raise NotFoundError(f"the scenarios have no {table} table: their run had no settlement "
                            "or centre in its domain.")
    accept = request.headers.get("accept", "")
    if output == "json" or (output is None and "application/json" in accept
                            and "text/csv" not in accept):
        import pandas as pd

        return Response(pd.read_csv(path).to_json(orient="records", force_ascii=False),
                        media_type="application/json")
    return FileResponse(path, media_type=CSV, filename=f"floodwarn_{path.name}")


@router.get("/evacuation-plans/{municipality_id}", response_class=Response, responses=PLAN)
def evacuation_plan(
        who: CallerDep, service: ServiceDep, municipality_id: MunicipalityId,
        output: Annotated[Literal["html", "csv"], Query(
            alias="format", description="html (a page to print) or csv")] = "html"
) -> FileResponse:
    """A municipality's community evacuation plan for the 10-, 25- and 100-year floods: for
    each settlement at risk in the 10-year flood, its centres, distances, people sent, the
    share of each centre's capacity and the people left without a place. Analysts and
    administrators read every municipality's; a committee only its own."""
    known_municipality(municipality_id)
    if not who.may_see(municipality_id):
        raise ForbiddenError("a committee reads only its own municipality's evacuation plan.")
    plans = PAGES.evacuation_plans(_scenarios(service), service.settings.data_dir)
    path = plans / f"{municipality_id}.{output}"
    if not path.exists():
        name, department = PLACES[municipality_id]
        raise NotFoundError(f"no settlement of {name} ({department}) is at risk in the "
                            f"{PLAN_RETURN_PERIODS[0]}-year flood of these scenarios: it has "
                            "no evacuation plan.")
    if output == "csv":
        return FileResponse(path, media_type=CSV, filename=f"plan_evacuacion_{path.name}")
    return FileResponse(path, media_type=HTML)


# --------------------------------------------------------------------------- the pages


def _scenarios(service: ServiceDep) -> Path:
    """The configured scenario folder; 404 saying how to make one when there is none."""
    folder = service.settings.scenarios
    if not (folder / SCENARIOS_FILE).exists():
        raise NotFoundError(f"no hay escenarios de crecida / no flood scenarios yet: the "
                            f"scenario folder {folder.name}/ (FLOODWARN_SCENARIOS_DIR, default "
                            f"DATA_DIR/scenarios) has no {SCENARIOS_FILE}: {HOW_TO}.")
    return folder


class ScenarioPages:
    """The report and evacuation plans of scenario folders, written under
    ``DATA_DIR/planning/<folder key>/`` and named by the folder's stamp."""

    #: What a page is built from, relative to the scenario folder: a change to any of them
    #: (the run rewrites its files through renames, which also touch the folder) renews it.
    WATCHED = (".", SCENARIOS_FILE, *EXPOSURE_FILES.values(), PLAN_FOLDER,
               f"{PLAN_FOLDER}/{UPGRADES_FILE}", f"{PLAN_FOLDER}/{UPGRADE_PLAN_FILE}")

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def report(self, folder: Path, data_dir: Path) -> Path:
        """The planner's report of ``folder``, written if absent or older than the folder."""
        cache, stamp = self._cache(folder, data_dir)
        path = cache / f"report-{stamp}.html"
        with self._lock:
            if not path.exists():
                upgrades = folder / PLAN_FOLDER / UPGRADES_FILE
                try:
                    write_planner_report(folder, path, upgrades_csv=upgrades
                                         if upgrades.exists() else None)
                except InputError as exc:
                    raise NotFoundError(f"the scenarios cannot make a report: {exc}") from exc
                self._forget_older(cache, "report-", path.name)
        return path

    def evacuation_plans(self, folder: Path, data_dir: Path) -> Path:
        """The folder of every municipality's plan, written if absent or older than the
        scenarios (into a fresh folder, renamed into place when complete)."""
        cache, stamp = self._cache(folder, data_dir)
        target = cache / f"evacuation-plans-{stamp}"
        with self._lock:
            if not target.exists():
                staging = Path(tempfile.mkdtemp(prefix=".plans-", dir=cache))
                try:
                    write_evacuation_plans(folder, staging)
                    staging.rename(target)
                except OSError:
                    if not target.exists():  # else another process wrote the same plans
                        raise
                except InputError as exc:
                    raise NotFoundError(f"the scenarios cannot make evacuation plans: "
                                        f"{exc}") from exc
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
                self._forget_older(cache, "evacuation-plans-", target.name)
        return target

    def _cache(self, folder: Path, data_dir: Path) -> tuple[Path, str]:
        """This folder's cache directory and its current stamp (latest modification, ns)."""
        resolved = folder.resolve()
        key = hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
        cache = data_dir / "planning" / key
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        times = [p.stat().st_mtime_ns for p in (resolved / name for name in self.WATCHED)
                 if p.exists()]
        return cache, f"{max(times):x}"

    @staticmethod
    def _forget_older(cache: Path, prefix: str, keep: str) -> None:
        for old in cache.glob(f"{prefix}*"):
            if old.name != keep:
                if old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    old.unlink(missing_ok=True)


#: The service's pages (one lock: two first requests write a page once).
PAGES = ScenarioPages()
