"""Site reports: how many people one collective centre holds at one time, and what it lacks.

A site manager reports through the API (:func:`validate_report`), or the DTM team's KoBoToolbox
or ODK Central form is exported as CSV and imported (:func:`read_kobo_reports`). Either way a
report is checked the same way and every bad one is named with its field (and, for a file, its
row), so the store can keep all of a file or none of it.

References:
    IOM Displacement Tracking Matrix (DTM): site assessment by sex and age band.
    KoboToolbox Help Center, "Exporting and downloading your data"
    (https://support.kobotoolbox.org/export_download.html): CSV exports use ";" by default,
    "XML values and headers" name columns by the question's XML name with its group path
    (group separator "/", e.g. ``grp_ocupacion/female_0_5``), select_multiple answers are
    exported as one space-separated column and/or one 0/1 column per choice
    (``necesidades/agua``), and metadata columns start with "_" (``_uuid``,
    ``_submission_time`` in UTC without offset, ``_validation_status``).
    ODK Central documentation, "Managing form submissions — downloading submissions as CSV"
    (https://docs.getodk.org/central-submissions/): groups are joined with "-"
    (``ocupacion-female_0_5``, ``meta-instanceID``), with ``SubmissionDate`` (UTC, "Z"),
    ``ReviewState`` (rejected, hasIssues, edited, approved) and ``KEY`` (the instanceID).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from floodwarn.errors import InputError
from floodwarn.logs import get_logger
from floodwarn.sites.profiles import (
    SITE_STATUS_WORDS,
    SITE_STATUSES,
    RowProblem,
    TextTable,
    header_key,
    read_csv_table,
)

log = get_logger(__name__)

#: The eight sex × age-band counts (DTM bands: 0–5, 6–17, 18–59, 60 and over).
AGE_BANDS = ("female_0_5", "male_0_5", "female_6_17", "male_6_17", "female_18_59",
             "male_18_59", "female_60_plus", "male_60_plus")
COUNT_FIELDS = ("people", "households", *AGE_BANDS, "disabled")
NEED_CODES = ("water", "food", "hygiene", "menstrual_hygiene", "nfi", "shelter", "health",
              "protection", "lighting", "sanitation")
#: Need codes as a form writes them (English codes or the Spanish choice names).
NEED_WORDS: dict[str, str] = {
    **{code: code for code in NEED_CODES},
    "agua": "water", "alimentos": "food", "comida": "food", "higiene": "hygiene",
    "higiene_menstrual": "menstrual_hygiene", "articulos_no_alimentarios": "nfi",
    "albergue": "shelter", "refugio": "shelter", "salud": "health",
    "proteccion": "protection", "iluminacion": "lighting", "saneamiento": "sanitation",
}
REPORT_SOURCES = ("api", "kobo", "odk", "form")
MAX_NOTE_CHARS = 2000
#: How far ahead of the service's clock a report may be dated (phones' clocks drift).
MAX_CLOCK_AHEAD = timedelta(minutes=10)
REPORT_FIELDS = ("site_id", "reported_at", "status", *COUNT_FIELDS, "needs", "note", "source",
                 "source_uuid")


@dataclass(frozen=True)
class SiteReport:
    """One occupancy report of one site (the shared *site report* contract). The eight
    sex × age counts are all given (and add up to ``people``) or all None; ``note`` is
    internal and never exported."""

    site_id: str
    reported_at: datetime
    status: str
    people: int
    households: int
    female_0_5: int | None = None
    male_0_5: int | None = None
    female_6_17: int | None = None
    male_6_17: int | None = None
    female_18_59: int | None = None
    male_18_59: int | None = None
    female_60_plus: int | None = None
    male_60_plus: int | None = None
    disabled: int | None = None
    needs: list[str] = field(default_factory=list)
    note: str = ""
    source: str = "api"
    source_uuid: str | None = None


class SiteReportError(InputError):
    """A report that cannot be kept; ``fields`` maps each bad field to what is wrong."""

    def __init__(self, message: str, fields: dict[str, str]) -> None:
        super().__init__(message)
        self.fields = fields


def _count(value: Any) -> tuple[int | None, str | None]:
    """A head count from an int, an integral float or digits; None when blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, bool):
        return None, f"{value!r} is not a count"
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            value = int(text)
        else:
            try:
                value = float(text.replace(",", "."))
            except ValueError:
                return None, f"{text!r} is not a number"
    if isinstance(value, float):
        if not np.isfinite(value) or not value.is_integer():
            return None, f"{value!r} is not a whole number of people"
        value = int(value)
    if not isinstance(value, int | np.integer):
        return None, f"{value!r} is not a count"
    if value < 0:
        return None, f"{value} is negative; a count is 0 or more"
    return int(value), None


def _needs(value: Any) -> tuple[list[str], str | None]:
    """Need codes (in :data:`NEED_CODES` order) from a list or a space/comma separated text."""
    if value is None:
        return [], None
    words = re.split(r"[\s,;]+", value) if isinstance(value, str) else list(value)
    codes = {NEED_WORDS.get(header_key(w)) for w in words if str(w).strip()}
    unknown = [str(w) for w in words if str(w).strip() and header_key(w) not in NEED_WORDS]
    if unknown:
        return [], (f"unknown need(s) {', '.join(map(repr, unknown))}; use: "
                    f"{', '.join(NEED_CODES)} (or agua, alimentos, higiene, higiene_menstrual, "
                    "articulos_no_alimentarios, albergue, salud, proteccion, iluminacion, "
                    "saneamiento)")
    return [c for c in NEED_CODES if c in codes], None


def _time(value: Any, now: datetime) -> tuple[datetime | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return now, None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None, (f"{value!r} is not an ISO 8601 time; write e.g. "
                          "2024-06-17T10:30:00-06:00")
    if not isinstance(value, datetime):
        return None, f"{value!r} is not a time"
    if value.tzinfo is None or value.utcoffset() is None:
        return None, (f"{value.isoformat()} has no UTC offset; give one, e.g. "
                      f"{value.isoformat()}-06:00 (El Salvador)")
    if value > now + MAX_CLOCK_AHEAD:
        return None, (f"{value.isoformat()} is more than {MAX_CLOCK_AHEAD.seconds // 60} "
                      f"minutes after now ({now.isoformat()}); check the device's clock")
    return value, None


def report_problems(data: Mapping[str, Any], *, now: datetime,
                    site_ids: Collection[str] | None = None
                    ) -> tuple[SiteReport | None, dict[str, str]]:
    """The report ``data`` describes and, when it cannot be kept, what is wrong per field
    (see :func:`validate_report`)."""
    if now.tzinfo is None:
        raise InputError("validate_report: `now` must be timezone-aware (e.g. "
                         "datetime.now(UTC)).")
    problems: dict[str, str] = {}
    for key in sorted(set(data) - set(REPORT_FIELDS)):
        problems[key] = f"unknown field; a report has: {', '.join(REPORT_FIELDS)}"

    site_id = str(data.get("site_id") or "").strip()
    if not site_id:
        problems["site_id"] = "is required"
    elif site_ids is not None and site_id not in site_ids:
        problems["site_id"] = f"{site_id!r} is not a site in the profile list"

    raw_status = data.get("status")
    status = SITE_STATUS_WORDS.get(header_key(raw_status)) if raw_status else None
    if status is None:
        problems["status"] = (f"{raw_status!r} is not a site status; use one of "
                              f"{', '.join(SITE_STATUSES)} (abierto, lleno, cerrado)")

    counts: dict[str, int | None] = {}
    for name in COUNT_FIELDS:
        counts[name], problem = _count(data.get(name))
        if problem:
            problems[name] = problem
    given = [b for b in AGE_BANDS if counts[b] is not None or b in problems]
    if 0 < len(given) < len(AGE_BANDS):
        missing = [b for b in AGE_BANDS if b not in given]
        problems.setdefault(missing[0], (
            f"the sex × age counts are given only in part ({', '.join(missing)} missing); "
            "give all eight (0 where none) or none"))
    bands_total = (sum(c for b in AGE_BANDS if (c := counts[b]) is not None)
                   if len(given) == len(AGE_BANDS) and not set(given) & set(problems) else None)
    people = counts["people"]
    if people is None and "people" not in problems:
        if bands_total is not None:
            people = bands_total
        else:
            problems["people"] = "is required (or the eight sex × age counts, which add up to it)"
    elif people is not None and bands_total is not None and bands_total != people:
        problems["people"] = (f"is {people} but the eight sex × age counts add up to "
                              f"{bands_total}; correct one or the other")
    households = counts["households"]
    if households is None and "households" not in problems:
        problems["households"] = "is required (0 when the site is empty)"
    elif households is not None and people is not None:
        if households > people:
            problems["households"] = f"({households}) is more than the people ({people})"
        elif households == 0 and people > 0:
            problems["households"] = (f"is 0 while {people} people are present; every person "
                                      "belongs to a household (a person alone is one)")
    disabled = counts["disabled"]
    if disabled is not None and people is not None and disabled > people:
        problems["disabled"] = f"({disabled}) is more than the people ({people})"

    needs, problem = _needs(data.get("needs"))
    if problem:
        problems["needs"] = problem
    reported_at, problem = _time(data.get("reported_at"), now)
    if problem:
        problems["reported_at"] = problem
    note = str(data.get("note") or "")
    if len(note) > MAX_NOTE_CHARS:
        problems["note"] = f"has {len(note)} characters; keep it under {MAX_NOTE_CHARS}"
    source = str(data.get("source") or "api")
    if source not in REPORT_SOURCES:
        problems["source"] = f"{source!r} is not one of {', '.join(REPORT_SOURCES)}"
    uuid = data.get("source_uuid")

    if problems:
        return None, problems
    assert status is not None and people is not None and households is not None
    assert reported_at is not None
    return SiteReport(
        site_id=site_id, reported_at=reported_at, status=status, people=people,
        households=households, **{b: counts[b] for b in AGE_BANDS}, disabled=disabled,
        needs=needs, note=note, source=source,
        source_uuid=(str(uuid).strip() or None) if uuid is not None else None,
    ), {}


def validate_report(data: Mapping[str, Any], *, now: datetime,
                    site_ids: Collection[str] | None = None) -> SiteReport:
    """A checked :class:`SiteReport` from ``data`` (field names of the contract).

    ``people`` may be left out when the eight sex × age counts are given (it is their sum);
    counts are whole numbers ≥ 0 (ints or digit strings); ``status`` open/full/closed
    (abierto/lleno/cerrado); ``needs`` a list or space-separated text of :data:`NEED_CODES`
    (or their Spanish choice names); ``reported_at`` timezone-aware, at most
    :data:`MAX_CLOCK_AHEAD` after ``now`` (left out: ``now``); ``note`` at most
    :data:`MAX_NOTE_CHARS` characters; ``site_id`` among ``site_ids`` when given.

    Raises :class:`SiteReportError` (an InputError) naming every bad field.
    """
    report, problems = report_problems(data, now=now, site_ids=site_ids)
    if report is None:
        detail = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise SiteReportError(f"site report for {data.get('site_id')!r} cannot be kept — "
                              f"{detail}.", problems)
    return report


# --------------------------------------------------------------------------- KoBo / ODK CSV

#: Form fields by the last segment of their column (see :func:`header_key`).
FORM_FIELDS: dict[str, tuple[str, ...]] = {
    "site_id": ("site_id", "codigo_albergue", "site", "codigo", "id_albergue"),
    "people": ("people", "personas", "total_personas"),
    "households": ("households", "hogares", "familias"),
    "female_0_5": ("female_0_5", "mujeres_0_5"),
    "male_0_5": ("male_0_5", "hombres_0_5"),
    "female_6_17": ("female_6_17", "mujeres_6_17"),
    "male_6_17": ("male_6_17", "hombres_6_17"),
    "female_18_59": ("female_18_59", "mujeres_18_59"),
    "male_18_59": ("male_18_59", "hombres_18_59"),
    "female_60_plus": ("female_60_plus", "mujeres_60_mas", "mujeres_60_plus"),
    "male_60_plus": ("male_60_plus", "hombres_60_mas", "hombres_60_plus"),
    "disabled": ("disabled", "discapacidad", "personas_con_discapacidad"),
    "status": ("status", "estado", "estado_albergue"),
    "needs": ("needs", "necesidades"),
    "note": ("note", "observaciones", "notas"),
    "reported_at": ("reported_at",),
    # metadata (KoBo's start with "_"; ODK Central's are CamelCase)
    "end": ("end",),
    "submitted_at": ("_submission_time", "submissiondate"),
    "uuid": ("_uuid", "instanceid", "key"),
    "review": ("reviewstate", "_validation_status"),
}
#: Times in order of preference: when the form was filled beats when it reached the server.
TIME_FIELDS = ("reported_at", "end", "submitted_at")
#: Review states of a submission a coordinator turned down (ODK Central, KoBo).
REJECTED = frozenset({"rejected", "validation_status_not_approved", "not_approved",
                      "no_aprobado"})
ODK_MARKERS = frozenset({"submissiondate", "key", "reviewstate"})
#: ODK Central's own columns that a form field's alias could otherwise match ("Status" is
#: about encryption, not the site), compared exactly as ODK Central writes them.
ODK_METADATA = frozenset({"Status", "SubmitterID", "SubmitterName", "AttachmentsPresent",
                          "AttachmentsExpected", "DeviceID", "Edits", "FormVersion"})


def _segment_key(segment: str) -> str:
    """A path segment compared loosely; a leading "_" (KoBo metadata) is kept."""
    return ("_" if segment.strip().startswith("_") else "") + header_key(segment)


@dataclass(frozen=True)
class _FormColumns:
    fields: dict[str, int]
    need_options: dict[int, str]  # column → option word (one 0/1 column per choice)
    problems: list[RowProblem]


def _form_columns(headers: Iterable[str]) -> _FormColumns:
    field_of = {alias: f for f, aliases in FORM_FIELDS.items() for alias in aliases}
    needs = set(FORM_FIELDS["needs"])
    fields: dict[str, int] = {}
    options: dict[int, str] = {}
    problems: list[RowProblem] = []
    headers = list(headers)
    for i, header in enumerate(headers):
        path = [s for s in re.split(r"[/-]", header) if s.strip()]
        if not path or header.strip() in ODK_METADATA:
            continue
        last = _segment_key(path[-1])
        if last not in needs and len(path) >= 2 and _segment_key(path[-2]) in needs:
            options[i] = _segment_key(path[-1])
            continue
        name = field_of.get(last)
        if name is None:
            continue
        if name in fields and name != "uuid":
            problems.append(RowProblem(1, None, header, (
                f"this column and {headers[fields[name]]!r} both mean {name}; keep one.")))
        fields.setdefault(name, i)
    return _FormColumns(fields, options, problems)


def _submission_time(text: str, key: str) -> datetime | str:
    """A time cell; KoBo's ``_submission_time`` is UTC written without an offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return text
    if key == "_submission_time" and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def read_kobo_reports(content: bytes, *, now: datetime,
                      site_ids: Collection[str] | None = None
                      ) -> tuple[list[SiteReport], list[RowProblem]]:
    """Site reports from a KoBoToolbox or ODK Central CSV export of the site form.

    Columns are matched by the last segment of their path (KoBo groups ``grp/field``, ODK
    Central ``grp-field``) to the report fields, with Spanish names (:data:`FORM_FIELDS`):
    codigo_albergue, personas, hogares/familias, mujeres_0_5 … hombres_60_mas, discapacidad,
    estado (abierto/lleno/cerrado), necesidades (space-separated, or one 0/1 column per choice
    ``necesidades/agua``), observaciones. The time is ``reported_at``, else ``end`` (when the
    form was finished, with offset), else ``_submission_time`` (KoBo, UTC) or
    ``SubmissionDate`` (ODK). ``source_uuid`` is KoBo's ``_uuid`` or ODK's ``instanceID``/
    ``KEY`` without the "uuid:" prefix, so the store can make re-imports idempotent.
    Submissions a reviewer rejected (ODK ``ReviewState`` rejected, KoBo "not approved") are
    skipped and counted in the log.

    Returns the valid reports and a :class:`RowProblem` for every bad row (row 2 = the first
    submission); the caller decides whether to keep the good ones. A column missing from the
    export is one problem on row 1 and no report is returned; an empty or unreadable file
    raises InputError. Column conventions: see the KoBoToolbox and ODK Central export
    documentation cited in this module.
    """
    table: TextTable = read_csv_table(content, where="KoBo/ODK export")
    columns = _form_columns(table.headers)
    problems = list(columns.problems)
    keys = {_segment_key(h.split("-")[-1].split("/")[-1]) for h in table.headers}
    source = "odk" if keys & ODK_MARKERS else "kobo"
    found = columns.fields
    required = {"site_id": "site_id / codigo_albergue", "status": "status / estado"}
    for name, label in required.items():
        if name not in found:
            problems.append(RowProblem(1, None, name, f"the export has no {label} column."))
    if "people" not in found and not set(AGE_BANDS) <= set(found):
        problems.append(RowProblem(1, None, "people", (
            "the export has no people / personas column nor all eight sex × age columns.")))
    if not set(TIME_FIELDS) & set(found):
        problems.append(RowProblem(1, None, "reported_at", (
            "the export has no time column (reported_at, end, _submission_time or "
            "SubmissionDate); export with the metadata fields.")))
    if problems:
        return [], problems

    cells = table.cells
    headers = table.headers

    def column(name: str) -> list[str]:
        return list(cells[found[name]]) if name in found else [""] * len(cells)

    review = column("review")
    rejected = np.array([header_key(r) in REJECTED for r in review], dtype=bool)
    reports: list[SiteReport] = []
    seen: dict[str, int] = {}
    values = {name: column(name) for name in FORM_FIELDS}
    # One SiteReport per submission, checked by the same rules as a report sent to the API.
    for i in np.flatnonzero(~rejected):
        row = int(table.rows[i])
        data: dict[str, Any] = {name: values[name][i] or None
                                for name in ("site_id", "status", *COUNT_FIELDS, "note")}
        needs = values["needs"][i].split()
        needs += [option for c, option in columns.need_options.items()
                  if header_key(cells[c].iloc[i]) in ("1", "true", "si", "yes")]
        data["needs"] = needs
        uuid = values["uuid"][i].removeprefix("uuid:") or None
        data.update(source=source, source_uuid=uuid)
        site = data["site_id"]
        time_name = next((t for t in TIME_FIELDS if values[t][i]), None)
        if time_name is None:
            problems.append(RowProblem(row, site, headers[found["reported_at"]] if
                                       "reported_at" in found else "reported_at",
                                       "has no time; the export must carry end, "
                                       "_submission_time or SubmissionDate."))
            continue
        data["reported_at"] = _submission_time(
            values[time_name][i], _segment_key(headers[found[time_name]]))
        if table.overflow[i]:
            problems.append(RowProblem(row, site, None, "has more cells than the header; "
                                       "export again without editing the file."))
            continue
        report, bad = report_problems(data, now=now, site_ids=site_ids)
        if uuid is not None and uuid in seen:
            bad = {**bad, "uuid": f"repeats the submission of row {seen[uuid]}"}
        for name, message in bad.items():
            column_name = (headers[found[time_name]] if name == "reported_at"
                           else headers[found[name]] if name in found else name)
            problems.append(RowProblem(row, site, column_name, message + "."))
        if report is not None and not bad:
            reports.append(report)
            if uuid is not None:
                seen[uuid] = row
    if rejected.any():
        log.info("rejected_submissions_skipped", extra={"source": source,
                                                        "skipped": int(rejected.sum())})
    log.info("site_reports_read", extra={"source": source, "reports": len(reports),
                                         "problems": len(problems)})
    return reports, problems
