"""Forecast runs: submitted (a file in the inbox, or uploaded), listed, and their results."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy.orm import Session

from api.auth import Caller, ForbiddenError
from api.deps import (
    CallerDep,
    DepartmentCode,
    MunicipalityId,
    RunId,
    ServiceDep,
    department_name,
    municipality_id,
)
from api.errors import COMMON_RESPONSES, ErrorBody, PayloadTooLargeError
from api.payload import GEOJSON_RESPONSE
from api.readcache import RunOutputs
from api.store.models import Run
from api.store.runs import get_run, list_runs, succeeded_output_dir
from api.submit import (
    RunOptions,
    SafeName,
    parse_options,
    receive_upload,
    submit_inbox_file,
    submit_staged,
)
from floodwarn.errors import InputError, NotFoundError
from floodwarn.io.forecast_outputs import DEPTH_FILE
from floodwarn.parameters import LEVELS

router = APIRouter(prefix="/runs", tags=["runs"], responses=COMMON_RESPONSES)

#: The warning levels, lowest first (models/levels.yaml).
Level = Literal[LEVELS]  # type: ignore[valid-type]



class RunRequest(BaseModel):
    """A run of a forecast file already in the service's inbox folder, with its options."""

    model_config = ConfigDict(extra="forbid")
    inbox_file: SafeName = Field(description="Name of the file in the inbox folder.")
    options: RunOptions = Field(default_factory=RunOptions)


class RunInfo(BaseModel):
    id: int
    status: str
    rain_file: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    synthetic: bool | None
    attempts: int
    progress: dict[str, Any] | None = Field(
        description="While running: the step, steps done of the total, when; for an "
                    "ensemble also members_done, members_total, elapsed_s and eta_s (seconds "
                    "left, estimated from the members done).")
    options: dict[str, Any] | None
    summary: dict[str, Any] | None = Field(
        description="Whole-run risk figures (analysts and administrators).")


RUN_LIST = TypeAdapter(list[RunInfo])


def run_info(run: Run, who: Caller) -> RunInfo:
    return RunInfo(id=run.id, status=run.status, rain_file=Path(run.rain_path).name,
                   created_at=run.created_at, started_at=run.started_at,
                   finished_at=run.finished_at, error=run.error, synthetic=run.synthetic,
                   attempts=run.attempts, progress=run.progress, options=run.options,
                   summary=run.summary if who.role in ("analyst", "admin") else None)


@router.post("", status_code=202, response_model=RunInfo)
def create_run(who: CallerDep, service: ServiceDep, request: RunRequest) -> RunInfo:
    """Queue a run of a forecast file in the inbox with the caller's options; the file is read
    first, so what the run would refuse is refused now."""
    who.require("analyst", "admin")
    run = submit_inbox_file(service.sessions, service.settings, request.inbox_file,
                            options=request.options, actor=who.name, now=datetime.now(UTC))
    service.read_cache.forget_runs()
    return run_info(run, who)


UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
    "type": "object", "required": ["forecast"],
    "properties": {
        "forecast": {"type": "string", "format": "binary",
                     "description": "The forecast file (NetCDF, GRIB)."},
        "options": {"type": "string", "description": "Run options as JSON (RunOptions)."}}}}}}}


@router.post("/upload", status_code=202, response_model=RunInfo, openapi_extra=UPLOAD_BODY,
             responses={413: {"model": ErrorBody, "description": "Over the upload limit"}})
async def upload_run(who: CallerDep, service: ServiceDep, request: Request) -> RunInfo:
    """Upload a forecast file and queue its run. The upload is streamed into the service's
    data folder and refused as soon as it passes the size limit; the file is then read as a
    run would read it. A refused upload leaves the inbox and the store unchanged."""
    who.require("analyst", "admin")
    settings = service.settings
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and \
            int(declared) > settings.max_upload_mb * 1024 * 1024 + 65536:
        raise PayloadTooLargeError(f"the upload is {int(declared) / 2**20:.0f} MB, over the "
                                   f"{settings.max_upload_mb:g} MB limit.")
    now = datetime.now(UTC)
    staged, name, options_text = await receive_upload(
        request.stream(), request.headers.get("content-type", ""), settings, now)
    try:
        options = parse_options(options_text)
    except InputError:
        staged.unlink(missing_ok=True)
        raise
    run = await run_in_threadpool(submit_staged, service.sessions, settings, staged,
                                  name=name, options=options, actor=who.name, now=now)
    service.read_cache.forget_runs()
    return run_info(run, who)


@router.get("", response_model=list[RunInfo])
async def runs(who: CallerDep, service: ServiceDep,
               limit: Annotated[int, Query(ge=1, le=500)] = 100,
               before: Annotated[int | None, Query(ge=1, le=2**31 - 1,
                                                   description="Only runs older than this id")]
               = None) -> Response:
    """Runs, newest first (every role; a committee's view leaves out whole-run figures).
    Statuses and progress are at most a second old."""
    def build(session: Session) -> bytes:
        return RUN_LIST.dump_json([run_info(r, who) for r in list_runs(
            session, limit=limit, before=before)])

    view = "staff" if who.role in ("analyst", "admin") else "committee"
    return Response(service.read_cache.runs(limit, before, build, view=view),
                    media_type="application/json")


@router.get("/{run_id}", response_model=RunInfo)
def run(who: CallerDep, service: ServiceDep, run_id: RunId) -> RunInfo:
    """One run: status, progress while it executes, error, options and figures."""
    with service.sessions() as session:
        return run_info(get_run(session, run_id), who)


def _municipality_scope(who: Caller, municipality: str | None) -> str | None:
    """The municipality filter a caller may use: a committee only its own."""
    if municipality is not None:
        municipality_id(municipality)
    if who.role == "committee":
        if municipality not in (None, who.municipality_id):
            raise ForbiddenError("a committee reads only its own municipality.")
        return who.municipality_id
    return municipality


@router.get("/{run_id}/settlements", response_class=Response, responses=GEOJSON_RESPONSE)
async def run_settlements(
        who: CallerDep, service: ServiceDep, run_id: RunId,
        level: Annotated[Level | None, Query()] = None,
        municipality: Annotated[MunicipalityId | None, Query()] = None,
        department: Annotated[DepartmentCode | None, Query()] = None) -> Response:
    """The run's settlements as GeoJSON, filtered by level, municipality id, department code;
    a committee sees only its own municipality. A name given where an id is expected is
    refused with the ids it could mean."""
    municipality = _municipality_scope(who, municipality)
    department = department_name(department) if department is not None else None
    body = service.read_cache.settlements(run_id).geojson(level=level, municipality=municipality,
                                                          department=department)
    return Response(body, media_type="application/geo+json")


def _outputs(service: ServiceDep, run_id: int) -> RunOutputs:
    with service.sessions() as session:
        out_dir = succeeded_output_dir(session, run_id)
    return service.read_cache.outputs(run_id, out_dir)


@router.get("/{run_id}/centres", response_class=Response, responses=GEOJSON_RESPONSE)
def run_centres(who: CallerDep, service: ServiceDep, run_id: RunId) -> Response:
    """Collective centres with status (safe / at_risk / unsafe) and occupancy, GeoJSON (a
    committee: those in its municipality and those its evacuation plan sends people to)."""
    outputs = _outputs(service, run_id)
    centres = outputs.centres()
    if who.role == "committee":  # its own, and those its people are sent to
        assigned = {str(row["centre_id"]) for row in _committee_plan(outputs, who)}
        centres = centres[(centres["municipality_id"] == who.municipality_id)
                          | centres["id"].astype(str).isin(assigned)]
    return Response(centres.to_json(drop_id=True), media_type="application/geo+json")


class EvacuationFlow(BaseModel):
    settlement_id: int
    centre_id: str | None = Field(description="None: demand no safe centre could take.")
    people: int
    distance_km: float | None


@router.get("/{run_id}/evacuation", response_model=list[EvacuationFlow])
def run_evacuation(who: CallerDep, service: ServiceDep, run_id: RunId) -> list[dict[str, Any]]:
    """The evacuation plan: settlement → centre flows; unmet demand has no centre (a
    committee: its own settlements)."""
    outputs = _outputs(service, run_id)
    if who.role != "committee":
        return list(outputs.evacuation())
    return _committee_plan(outputs, who)


def _committee_plan(outputs: RunOutputs, who: Caller) -> list[dict[str, Any]]:
    """The evacuation flows from a committee's own settlements."""
    own = outputs.settlement_municipality()
    return [row for row in outputs.evacuation()
            if own.get(int(str(row["settlement_id"]))) == who.municipality_id]


@router.get("/{run_id}/summary", response_model=dict[str, Any])
async def run_summary(who: CallerDep, service: ServiceDep, run_id: RunId) -> dict[str, Any]:
    """Per municipality (keyed by id) and department (keyed by ISO code): people exposed by
    level, centres unsafe, unmet evacuation demand (a committee: its own municipality by id —
    never a namesake's figures)."""
    summary = _outputs(service, run_id).summary()
    if who.role == "committee":
        own = summary.get("by_municipality", {}).get(who.municipality_id)
        return {"by_municipality": {} if own is None else {who.municipality_id: own}}
    return dict(summary)


DEPTH_TIFF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/tiff": {"schema": {"type": "string", "format": "binary"}}},
          "description": "Cloud Optimized GeoTIFF of peak flood depth, m"}}


@router.get("/{run_id}/depth.tif", response_class=FileResponse, responses=DEPTH_TIFF)
def run_depth(who: CallerDep, service: ServiceDep, run_id: RunId) -> FileResponse:
    """The flood depth raster (Cloud Optimized GeoTIFF; analysts and administrators)."""
    who.require("analyst", "admin")
    with service.sessions() as session:
        path = succeeded_output_dir(session, run_id) / DEPTH_FILE
    if not path.exists():
        raise NotFoundError(f"run {run_id} has no depth raster.")
    return FileResponse(path, media_type="image/tiff",
                        filename=f"floodwarn_run{run_id}_depth.tif")
