"""Collective centres in the store: the site list (imported whole or not at all), occupancy
reports (kept as received, idempotent by their form's uuid), the latest state of every site,
and warehouse stock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from api.store.models import AuditEntry, Site, SiteImport, SiteReport, WarehouseStock
from floodwarn.errors import NotFoundError
from floodwarn.sites.profiles import PROFILE_COLUMNS, profile_frame
from floodwarn.sites.reports import SiteReport as Report

#: The eight sex × age bands of a report (DTM bands: 0–5, 6–17, 18–59, 60+).
BANDS = ("female_0_5", "male_0_5", "female_6_17", "male_6_17", "female_18_59", "male_18_59",
         "female_60_plus", "male_60_plus")


def json_value(value: Any) -> Any:
    """A table cell as a JSON value: missing (None, NA, NaN) is null, numpy scalars Python."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def profile_records(profiles: gpd.GeoDataFrame) -> list[dict[str, Any]]:
    """Each site's profile as a JSON object (geometry left out: lon/lat are columns)."""
    table = pd.DataFrame(profiles.drop(columns=profiles.geometry.name))
    return [{k: json_value(v) for k, v in row.items()} for row in table.to_dict("records")]


def profiles_frame(records: Sequence[dict[str, Any]]) -> gpd.GeoDataFrame:
    """The site profile frame from stored JSON objects, with the contract's nullable types
    (unknown stays NA) and, when given, each site's ``active`` flag."""
    table = pd.DataFrame(list(records), columns=[*PROFILE_COLUMNS, "active"])
    frame = profile_frame(table)
    frame["active"] = table["active"].to_numpy()
    return frame


def site_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Site)) or 0)


def import_sites(session: Session, profiles: gpd.GeoDataFrame, *, actor: str, filename: str,
                 now: datetime) -> SiteImport:
    """Make ``profiles`` (already validated as a whole) the site list: new sites added, known
    ones updated, sites the list no longer names kept inactive (their reports stay; they are
    never destinations). One transaction: a failure leaves the previous list."""
    sources = sorted(set(profiles["capacity_source"].astype(str)))
    batch = SiteImport(at=now, actor=actor, filename=filename, sites=len(profiles),
                       capacity_source=",".join(sources))
    session.add(batch)
    session.flush()
    records = profile_records(profiles)
    existing = {s.site_id: s for s in session.scalars(select(Site))}
    for record in records:
        values = {"name": record["name"], "municipality_id": record["municipality_id"],
                  "department_code": record["department_code"], "lon": record["lon"],
                  "lat": record["lat"], "capacity_source": record["capacity_source"],
                  "active": True, "profile": record, "import_id": batch.id, "updated_at": now}
        site = existing.pop(record["site_id"], None)
        if site is None:
            session.add(Site(site_id=record["site_id"], **values))
        else:
            for name, value in values.items():
                setattr(site, name, value)
    for site in existing.values():
        if site.active:
            site.active, site.updated_at = False, now
    session.add(AuditEntry(at=now, actor=actor, action="import_sites",
                           detail={"import_id": batch.id, "filename": filename,
                                   "sites": len(records), "retired": len(existing)}))
    return batch


def site_profiles(session: Session, *, active_only: bool = True,
                  site_ids: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """The profiles of the store's sites (active ones by default), ordered by id."""
    query = select(Site.profile, Site.active).order_by(Site.site_id)
    if active_only:
        query = query.where(Site.active.is_(True))
    if site_ids is not None:
        query = query.where(Site.site_id.in_(list(site_ids)))
    rows = session.execute(query).all()
    return profiles_frame([{**profile, "active": active} for profile, active in rows])


def get_site(session: Session, site_id: str) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFoundError(f"no collective centre {site_id!r} (GET /sites lists them).")
    return site


def add_reports(session: Session, reports: Sequence[Report], *, author_key_id: int | None,
                author: str, now: datetime) -> tuple[list[int], int]:
    """Store ``reports`` as received; a report whose ``source_uuid`` is already stored (the
    same KoBo/ODK submission imported again) is not stored twice. Returns the ids of the new
    reports and how many were already there."""
    uuids = [r.source_uuid for r in reports if r.source_uuid]
    known = set(session.scalars(select(SiteReport.source_uuid).where(
        SiteReport.source_uuid.in_(uuids)))) if uuids else set()
    rows = []
    seen: set[str] = set()
    for report in reports:
        if report.source_uuid and (report.source_uuid in known or report.source_uuid in seen):
            continue
        if report.source_uuid:
            seen.add(report.source_uuid)
        fields = asdict(report)
        rows.append(SiteReport(
            site_id=report.site_id, reported_at=report.reported_at, received_at=now,
            author_key_id=author_key_id, author=author[:200], source=report.source,
            source_uuid=report.source_uuid, status=report.status, people=report.people,
            households=report.households,
            counts={k: fields[k] for k in (*BANDS, "disabled")},
            needs={"codes": list(report.needs)}, note=report.note or None))
    session.add_all(rows)
    session.flush()
    return [r.id for r in rows], len(reports) - len(rows)


def report_json(row: SiteReport, *, with_note: bool = True) -> dict[str, Any]:
    """A stored report as the API shows it."""
    out = {"id": row.id, "site_id": row.site_id, "reported_at": row.reported_at.isoformat(),
           "received_at": row.received_at.isoformat(), "author": row.author,
           "source": row.source, "status": row.status, "people": row.people,
           "households": row.households, **row.counts, "needs": row.needs.get("codes", [])}
    if with_note:
        out["note"] = row.note
    return out


def site_history(session: Session, site_id: str, *, limit: int, before_id: int | None = None
                 ) -> list[SiteReport]:
    """A site's reports, newest first (``before_id`` pages back)."""
    query = select(SiteReport).where(SiteReport.site_id == site_id)
    if before_id is not None:
        query = query.where(SiteReport.id < before_id)
    return list(session.scalars(query.order_by(SiteReport.id.desc()).limit(limit)))


def latest_reports(session: Session) -> pd.DataFrame:
    """Each site's latest report — the last **counted** (``reported_at``; of two counted at
    the same time, the last received) — indexed by site_id, with the columns of the
    latest-state contract (``people_present`` …). A form synced days late never replaces a
    newer count."""
    rank = func.row_number().over(partition_by=SiteReport.site_id,
                                  order_by=(SiteReport.reported_at.desc(),
                                            SiteReport.id.desc())).label("rank")
    ranked = select(SiteReport.id, rank).subquery()
    newest = select(ranked.c.id).where(ranked.c.rank == 1)
    rows = session.execute(select(
        SiteReport.site_id, SiteReport.people, SiteReport.households, SiteReport.counts,
        SiteReport.status, SiteReport.reported_at, SiteReport.needs).where(
        SiteReport.id.in_(newest))).all()
    columns = ["people_present", "households_present", *BANDS, "disabled_present",
               "site_status", "last_report_at", "reported_needs"]
    if not rows:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="site_id"))
    table = pd.DataFrame({
        "site_id": [r.site_id for r in rows],
        "people_present": pd.array([r.people for r in rows], dtype="Int64"),
        "households_present": pd.array([r.households for r in rows], dtype="Int64"),
        **{band: pd.array([r.counts.get(band) for r in rows], dtype="Int64") for band in BANDS},
        "disabled_present": pd.array([r.counts.get("disabled") for r in rows], dtype="Int64"),
        "site_status": [r.status for r in rows],
        "last_report_at": [r.reported_at.isoformat() for r in rows],
        "reported_needs": [" ".join(r.needs.get("codes", [])) for r in rows],
    })
    return table.set_index("site_id")


def latest_state(session: Session, *, site_ids: Sequence[str] | None = None,
                 profiles: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Every active site's profile (``profiles`` when the caller holds them already) joined
    with its latest report (NA where none)."""
    if profiles is None:
        profiles = site_profiles(session, site_ids=site_ids)
    latest = latest_reports(session)
    state = profiles.join(latest, on="site_id")
    for column in ("people_present", "households_present", *BANDS, "disabled_present"):
        state[column] = pd.array(state[column], dtype="Int64")
    return state


def state_token(session: Session) -> tuple[Any, ...]:
    """Changes whenever a report, the site list or the stock changes (a cache's key)."""
    return (session.scalar(select(func.max(SiteReport.id))),
            session.scalar(select(func.max(Site.updated_at))),
            session.scalar(select(func.count()).select_from(Site)),
            session.scalar(select(func.max(WarehouseStock.updated_at))),
            session.scalar(select(func.count()).select_from(WarehouseStock)))


def replace_stock(session: Session, stock: pd.DataFrame, *, actor: str, now: datetime) -> int:
    """Make ``stock`` (validated) the warehouses' stock: the whole table at once."""
    session.execute(delete(WarehouseStock))
    session.add_all(WarehouseStock(
        warehouse_id=str(r.warehouse_id), name=str(r.name), lon=float(r.lon), lat=float(r.lat),
        item=str(r.item), quantity=float(r.quantity), lead_time_h=float(r.lead_time_h),
        updated_at=now) for r in stock.itertuples())
    session.add(AuditEntry(at=now, actor=actor, action="replace_stock",
                           detail={"rows": len(stock)}))
    return len(stock)


def stock_table(session: Session) -> pd.DataFrame:
    rows = session.execute(select(
        WarehouseStock.warehouse_id, WarehouseStock.name, WarehouseStock.lon,
        WarehouseStock.lat, WarehouseStock.item, WarehouseStock.quantity,
        WarehouseStock.lead_time_h, WarehouseStock.updated_at)
        .order_by(WarehouseStock.warehouse_id, WarehouseStock.item)).all()
    return pd.DataFrame(rows, columns=["warehouse_id", "name", "lon", "lat", "item", "quantity",
                                       "lead_time_h", "updated_at"])

