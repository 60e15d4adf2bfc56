"""Collective centres: the site list (imported from the official spreadsheet), site managers'
occupancy reports (one by one, or a KoBo/ODK export), each site's latest state and history,
GBV risk flags, Sphere needs and stock gaps, warehouse stock, and replans with live capacity."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.auth import Caller, ForbiddenError
from api.deps import DEPARTMENTS, PLACES, CallerDep, RunId, ServiceDep, only_declared_query
from api.errors import COMMON_RESPONSES, PayloadTooLargeError
from api.payload import GEOJSON_RESPONSE
from api.store.models import Site
from api.store.runs import succeeded_output_dir
from api.store.sites import (
    add_reports,
    get_site,
    import_sites,
    replace_stock,
    report_json,
    site_history,
    stock_table,
)
from floodwarn.errors import InputError, NotFoundError
from floodwarn.pipeline import replan_evacuation
from floodwarn.sites.profiles import SiteProfileError, read_site_profiles
from floodwarn.sites.reports import read_kobo_reports, validate_report
from floodwarn.sites.stock import read_stock

router = APIRouter(tags=["sites"], responses=COMMON_RESPONSES,
                   dependencies=[Depends(only_declared_query)])

#: Largest spreadsheet or form export accepted (the country's list is well under 1 MB).
MAX_TABLE_MB = 20
SiteId = Annotated[str, PathParam(min_length=1, max_length=64, description="Site id")]


async def _read_upload(upload: UploadFile) -> bytes:
    content = await upload.read(MAX_TABLE_MB * 1024 * 1024 + 1)
    if len(content) > MAX_TABLE_MB * 1024 * 1024:
        raise PayloadTooLargeError(f"{upload.filename}: larger than {MAX_TABLE_MB} MB; a list "
                                   "of collective centres or a form export is far smaller.")
    if not content:
        raise InputError(f"{upload.filename}: the file is empty.")
    return content


def _visible(state: pd.DataFrame, who: Caller) -> pd.DataFrame:
    if who.role == "site_manager":
        return state[state["site_id"].isin(who.site_ids)]
    if who.role == "committee":
        return state[state["municipality_id"] == who.municipality_id]
    return state


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON objects of a table: NA as null (missing stays visible as missing)."""
    return json.loads(table.to_json(orient="records", date_format="iso"))


class SiteImportResult(BaseModel):
    import_id: int
    sites: int
    capacity_source: str


@router.post("/sites/import", status_code=201, response_model=SiteImportResult)
async def import_site_list(who: CallerDep, service: ServiceDep,
                           file: Annotated[UploadFile, File(description=(
                               "The official list of collective centres, CSV or XLSX "
                               "(columns: site_id/codigo, name/nombre, lon, lat, usable/"
                               "habilitado, capacity_people, covered_area_m2, services …)"))]
                           ) -> SiteImportResult:
    """Import the official list of collective centres (analysts, administrators). Every bad
    row is named in ``problems`` and nothing is imported unless every row is good; sites the
    new list leaves out stay with their history but are no longer destinations."""
    who.require("analyst", "admin")
    content = await _read_upload(file)
    name = file.filename or "sites.csv"
    profiles = await run_in_threadpool(read_site_profiles, content, filename=name)
    with service.sessions.begin() as session:
        batch = import_sites(session, profiles, actor=who.name, filename=name,
                             now=service.clock())
        result = SiteImportResult(import_id=batch.id, sites=batch.sites,
                                  capacity_source=batch.capacity_source)
    return result


@router.get("/sites", response_class=Response, responses=GEOJSON_RESPONSE)
def sites(who: CallerDep, service: ServiceDep,
          municipality: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    """Every collective centre with its profile (unknown values null), latest report, GBV risk
    flags, people the latest forecast sends there and its Sphere needs, GeoJSON (a committee:
    its municipality's; a site manager: its own sites)."""
    state = _visible(service.centres.picture().state, who)
    if municipality is not None:
        state = state[state["municipality_id"] == municipality]
    return Response(state.to_json(drop_id=True, na="null"), media_type="application/geo+json")


@router.get("/sites/{site_id}", response_model=dict[str, Any])
def site(who: CallerDep, service: ServiceDep, site_id: SiteId) -> dict[str, Any]:
    """One collective centre: profile, latest state, GBV flags, needs."""
    state = service.centres.picture().state
    row = state[state["site_id"] == site_id]
    if row.empty or not who.may_read_site(site_id, str(row["municipality_id"].iloc[0])):
        with service.sessions() as session:
            get_site(session, site_id)  # 404 when it does not exist at all
        raise NotFoundError(f"no collective centre {site_id!r} among this key's sites.")
    return _records(pd.DataFrame(row.drop(columns="geometry")))[0]


class ReportBody(BaseModel):
    """An occupancy report (the site manager's form). Either the eight sex × age counts (people
    is then their sum) or people alone."""

    model_config = ConfigDict(extra="forbid")
    reported_at: datetime | None = Field(None, description="When counted (default: now).")
    status: Literal["open", "full", "closed"]
    people: int | None = Field(None, ge=0, le=100_000)
    households: int = Field(ge=0, le=100_000)
    female_0_5: int | None = Field(None, ge=0, le=100_000)
    male_0_5: int | None = Field(None, ge=0, le=100_000)
    female_6_17: int | None = Field(None, ge=0, le=100_000)
    male_6_17: int | None = Field(None, ge=0, le=100_000)
    female_18_59: int | None = Field(None, ge=0, le=100_000)
    male_18_59: int | None = Field(None, ge=0, le=100_000)
    female_60_plus: int | None = Field(None, ge=0, le=100_000)
    male_60_plus: int | None = Field(None, ge=0, le=100_000)
    disabled: int | None = Field(None, ge=0, le=100_000)
    needs: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list,
                                                               max_length=20)
    note: str | None = Field(None, max_length=2000)


class StoredReport(BaseModel):
    id: int
    site_id: str
    received_at: datetime


@router.post("/sites/{site_id}/reports", status_code=201, response_model=StoredReport)
def report(who: CallerDep, service: ServiceDep, site_id: SiteId,
           body: ReportBody) -> StoredReport:
    """Report a site's occupancy and needs (its site manager; analysts for any site). Kept
    with its time and author; the site's latest state, the needs and the replans use it at
    once."""
    who.require_site(site_id)
    now = service.clock()
    data = body.model_dump(exclude_none=True)
    data["site_id"] = site_id
    data.setdefault("reported_at", now)
    with service.sessions.begin() as session:
        site_row = get_site(session, site_id)
        if not site_row.active:
            raise InputError(f"site {site_id!r} is no longer on the list of collective centres "
                             "(retired by the last import); it takes no reports.")
        parsed = validate_report({**data, "source": "api"}, now=now)
        ids, _ = add_reports(session, [parsed], author_key_id=who.key_id, author=who.name,
                             now=now)
    return StoredReport(id=ids[0], site_id=site_id, received_at=now)


class ReportImportResult(BaseModel):
    added: int
    already_stored: int = Field(description="Submissions of this export stored before (same "
                                            "KoBo _uuid / ODK instance id): not added twice.")


@router.post("/sites/reports/import", status_code=201, response_model=ReportImportResult)
async def import_reports(who: CallerDep, service: ServiceDep,
                         file: Annotated[UploadFile, File(description=(
                             "A KoBoToolbox or ODK Central CSV export of the site report "
                             "form."))]) -> ReportImportResult:
    """Import a KoBo/ODK CSV export of site reports: all rows or none (each bad row named in
    ``problems``); a site manager only for its own sites; re-importing adds nothing twice."""
    who.require("analyst", "admin", "site_manager")
    content = await _read_upload(file)
    now = service.clock()
    with service.sessions() as session:
        from sqlalchemy import select

        from api.store.models import Site

        active = set(session.scalars(select(Site.site_id).where(Site.active.is_(True))))
    reports, problems = await run_in_threadpool(read_kobo_reports, content, now=now,
                                                site_ids=active)
    if who.role == "site_manager":
        foreign = sorted({r.site_id for r in reports} - who.site_ids)
        if foreign:
            raise ForbiddenError(f"the export holds reports for sites {foreign[:10]} this key "
                                 f"does not manage ({sorted(who.site_ids)}); nothing imported.")
    if problems:
        raise SiteProfileError(problems, what=f"{file.filename}: form export")
    with service.sessions.begin() as session:
        ids, duplicates = add_reports(session, reports, author_key_id=who.key_id,
                                      author=who.name, now=now)
    return ReportImportResult(added=len(ids), already_stored=duplicates)


@router.get("/sites/{site_id}/reports", response_model=list[dict[str, Any]])
def reports(who: CallerDep, service: ServiceDep, site_id: SiteId,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100,
            before: Annotated[int | None, Query(ge=1, description="Page back: reports with "
                                                "ids below this")] = None
            ) -> list[dict[str, Any]]:
    """A site's report history, newest first, with author and time (its site manager, staff,
    and the committee of its municipality)."""
    with service.sessions() as session:
        site_row = get_site(session, site_id)
        if not who.may_read_site(site_id, site_row.municipality_id):
            raise NotFoundError(f"no collective centre {site_id!r} among this key's sites.")
        rows = site_history(session, site_id, limit=limit, before_id=before)
        return [report_json(r, with_note=who.role != "committee") for r in rows]


ByArea = Literal["site", "municipality", "department"]


@router.get("/needs", response_model=dict[str, Any])
def needs(who: CallerDep, service: ServiceDep,
          by: Annotated[ByArea | None, Query(description=(
              "site, municipality or department; default: municipality (a site manager: "
              "site)"))] = None) -> dict[str, Any]:
    """Sphere needs (water, covered space, toilets, hygiene and menstrual hygiene kits, NFI and
    emergency shelter kits) of the people present and those the latest forecast sends, per site,
    municipality or department (a committee: its municipality; a site manager: its sites)."""
    picture = service.centres.picture()
    by = by or ("site" if who.role == "site_manager" else "municipality")
    if by == "site":
        state = _visible(picture.state, who)
        table = pd.DataFrame(state.drop(columns="geometry"))
    elif by == "municipality":
        table = _named(picture.needs_by_municipality.reset_index())
        if who.role == "committee":
            table = table[table["municipality_id"] == who.municipality_id]
        elif who.role == "site_manager":
            raise NotFoundError("site managers see their sites' needs (by=site).")
    else:
        who.require("analyst", "admin")
        table = _named(picture.needs_by_department.reset_index())
    return {"run_id": picture.run_id, "computed_s": round(picture.computed_s, 4),
            "by": by, "rows": _records(table)}


@router.get("/needs/gaps", response_model=dict[str, Any])
def gaps(who: CallerDep, service: ServiceDep) -> dict[str, Any]:
    """The gap between needs and warehouse stock per municipality and item, and the moves that
    close it (from which warehouse, how much, whether it arrives before the forecast impact)."""
    who.require("analyst", "admin")
    picture = service.centres.picture()
    return {"run_id": picture.run_id, "gaps": _records(_named(picture.gaps)),
            "moves": _records(_named(picture.moves))}


def _named(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the official municipality / department name beside its id."""
    if "municipality_id" in table.columns and "municipality" not in table.columns:
        names = {m: name for m, (name, _) in PLACES.items()}
        table = table.assign(municipality=table["municipality_id"].map(names))
    if "department_code" in table.columns and "department" not in table.columns:
        table = table.assign(department=table["department_code"].map(DEPARTMENTS))
    return table


@router.get("/gbv-flags", response_model=list[dict[str, Any]])
def gbv(who: CallerDep, service: ServiceDep) -> list[dict[str, Any]]:
    """GBV risk flags summed per municipality (sites without lighting, lockable doors,
    separate toilets, private space, or overcrowded against Sphere space; unknown counted
    apart)."""
    who.require("analyst", "admin", "committee")
    table = service.centres.picture().gbv_by_municipality.reset_index()
    if who.role == "committee":
        table = table[table["municipality_id"] == who.municipality_id]
    return _records(table)


class StockImportResult(BaseModel):
    rows: int


@router.post("/warehouses/stock", status_code=201, response_model=StockImportResult)
async def import_stock(who: CallerDep, service: ServiceDep,
                       file: Annotated[UploadFile, File(description=(
                           "CSV: warehouse_id, name, lon, lat, item, quantity, lead_time_h"))]
                       ) -> StockImportResult:
    """Replace the pre-positioned stock (analysts, administrators): all rows or none."""
    who.require("analyst", "admin")
    table = read_stock(await _read_upload(file))
    with service.sessions.begin() as session:
        rows = replace_stock(session, table, actor=who.name, now=service.clock())
    return StockImportResult(rows=rows)


@router.get("/warehouses/stock", response_model=list[dict[str, Any]])
def stock(who: CallerDep, service: ServiceDep) -> list[dict[str, Any]]:
    who.require("analyst", "admin")
    with service.sessions() as session:
        return _records(stock_table(session))


@router.post("/runs/{run_id}/replan", response_model=dict[str, Any])
def replan(who: CallerDep, service: ServiceDep, run_id: RunId) -> dict[str, Any]:
    """Rerun a run's evacuation plan with each centre's live capacity: profiled capacity minus
    the latest reported occupancy; closed and full sites are never destinations (analysts).
    Levels, evacuees and centre flood safety stay the run's."""
    who.require("analyst", "admin")
    state = service.centres.picture().state
    with service.sessions() as session:
        out_dir = succeeded_output_dir(session, run_id)
        retired = list(session.scalars(select(Site.site_id).where(Site.active.is_(False))))
    # Sites the last official list dropped are never destinations.
    live = pd.concat([
        pd.DataFrame({"centre_id": state["site_id"].astype(str),
                      "capacity": state["capacity_remaining"].astype("int64"),
                      "shelter": state["destination"].astype(bool)}),
        pd.DataFrame({"centre_id": retired, "capacity": 0, "shelter": False})],
        ignore_index=True)
    stamp = service.clock().strftime("%Y%m%dT%H%M%S")
    result = replan_evacuation(out_dir, centre_updates=live, out_dir=out_dir / f"replan-{stamp}")
    summary = result.summary
    return {"run_id": run_id, "evacuees": summary["evacuees"],
            "unmet_evacuees": summary["unmet_evacuees"],
            "evacuation": _records(result.evacuation),
            "centres": _records(pd.DataFrame(result.centres.drop(columns="geometry"))[
                ["id", "name", "capacity", "occupancy", "status"]])}
