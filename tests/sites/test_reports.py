"""Site reports: the rules a report obeys, and KoBo / ODK Central exports of the same form."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from floodwarn.errors import InputError
from floodwarn.sites.reports import (
    AGE_BANDS,
    SiteReport,
    SiteReportError,
    read_kobo_reports,
    validate_report,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "sites"
NOW = datetime(2024, 6, 18, 12, 0, tzinfo=UTC)
SITES = {"ALB-001", "ALB-002", "ALB-003", "ALB-004", "ALB-005"}
EL_SALVADOR = timezone(timedelta(hours=-6))
#: 45 people: 5 + 6 + 8 + 7 + 9 + 6 + 2 + 2.
BANDS = dict(zip(AGE_BANDS, (5, 6, 8, 7, 9, 6, 2, 2), strict=True))


def _report(**changes):
    data = {"site_id": "ALB-001", "reported_at": datetime(2024, 6, 18, 5, 30, tzinfo=EL_SALVADOR),
            "status": "open", "people": 45, "households": 12, **BANDS, "disabled": 3,
            "needs": ["water", "menstrual_hygiene"], "note": "Falta agua"}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def test_valid_report_is_kept_as_given():
    report = validate_report(_report(), now=NOW, site_ids=SITES)
    assert report.site_id == "ALB-001" and report.people == 45 and report.households == 12
    assert report.female_18_59 == 9 and report.disabled == 3 and report.status == "open"
    assert report.needs == ["water", "menstrual_hygiene"] and report.source == "api"


def test_people_may_be_left_out_when_the_bands_are_given():
    assert validate_report(_report(people=...), now=NOW).people == 45  # 5+6+8+7+9+6+2+2


def test_bands_may_all_be_left_out():
    report = validate_report(_report(**dict.fromkeys(AGE_BANDS, ...)), now=NOW)
    assert report.people == 45 and report.male_60_plus is None


def test_spanish_words_and_text_counts_are_read():
    report = validate_report(_report(status="lleno", people="45", needs="agua salud"), now=NOW)
    assert report.status == "full" and report.people == 45 and report.needs == ["water",
                                                                                 "health"]


def test_a_report_nine_minutes_ahead_of_the_clock_is_kept():
    assert validate_report(_report(reported_at=NOW + timedelta(minutes=9)), now=NOW)


@pytest.mark.parametrize(("changes", "field", "match"), [
    ({"site_id": "ALB-999"}, "site_id", "not a site"),
    ({"households": -1}, "households", "negative"),
    ({"disabled": 2.5}, "disabled", "whole number"),
    ({"people": "muchos"}, "people", "not a number"),
    ({"female_0_5": ..., "male_60_plus": ...}, "female_0_5", "only in part.*male_60_plus"),
    ({"people": 50}, "people", "add up to 45"),
    ({"households": 46}, "households", "more than the people"),
    ({"households": 0}, "households", "is 0 while 45 people"),
    ({"disabled": 46}, "disabled", "more than the people"),
    ({"needs": ["water", "wifi"]}, "needs", "unknown need.*wifi"),
    ({"status": "medio"}, "status", "not a site status"),
    ({"reported_at": datetime(2024, 6, 18, 5, 30)}, "reported_at", "no UTC offset"),
    ({"reported_at": NOW + timedelta(minutes=11)}, "reported_at", "after now"),
    ({"note": "x" * 2001}, "note", "2001 characters"),
    ({"people": ..., **dict.fromkeys(AGE_BANDS, ...)}, "people", "required"),
])
def test_invalid_report_names_the_field(changes, field, match):
    with pytest.raises(SiteReportError, match=match) as raised:
        validate_report(_report(**changes), now=NOW, site_ids=SITES)
    assert field in raised.value.fields
    assert isinstance(raised.value, InputError)


def test_kobo_and_odk_exports_of_the_same_form_give_the_same_reports():
    kobo, kobo_problems = read_kobo_reports((DATA / "kobo_reportes.csv").read_bytes(), now=NOW,
                                            site_ids=SITES)
    odk, odk_problems = read_kobo_reports((DATA / "odk_reportes.csv").read_bytes(), now=NOW,
                                          site_ids=SITES)
    assert kobo_problems == [] and odk_problems == []
    # ODK's fourth submission was rejected by a reviewer and is skipped.
    assert len(kobo) == len(odk) == 3
    assert {r.source for r in kobo} == {"kobo"} and {r.source for r in odk} == {"odk"}
    assert [dataclasses.replace(r, source="-") for r in kobo] == [
        dataclasses.replace(r, source="-") for r in odk]
    first = kobo[0]
    assert first == SiteReport(
        site_id="ALB-001", reported_at=datetime(2024, 6, 17, 10, 32, 11, tzinfo=EL_SALVADOR),
        status="open", people=45, households=12, **BANDS, disabled=3,
        needs=["water", "menstrual_hygiene"], note="Falta agua potable", source="kobo",
        source_uuid="3f1c2a9e-0d4b-4c55-9b1e-7a0c5d2e8f01")
    assert kobo[1].status == "full" and kobo[1].needs == ["food", "lighting"]
    assert kobo[1].female_0_5 is None and kobo[2].status == "closed" and kobo[2].people == 0


def test_bad_rows_of_a_kobo_export_are_named_and_the_good_ones_returned():
    reports, problems = read_kobo_reports(
        (DATA / "kobo_reportes_con_errores.csv").read_bytes(), now=NOW, site_ids=SITES)
    assert len(reports) == 7
    assert [(p.row, p.site_id, p.column) for p in problems] == [
        (4, "ALB-003", "personas"),  # −4 people
        (6, "ALB-005", "hogares"),  # 0 households for 15 people
        (9, "ALB-999", "codigo_albergue"),  # not in the profile list
    ]
    # Plain (ungrouped) headers, ";" separated; "end" carries the offset.
    assert reports[0].reported_at == datetime(2024, 6, 17, 14, 0, tzinfo=UTC)
    assert reports[-1].needs == ["water", "food"] and reports[-1].source_uuid == "u-10"


def test_submission_time_without_offset_is_utc():
    content = (b"codigo_albergue,estado,personas,hogares,_submission_time,_uuid\n"
               b"ALB-001,abierto,3,1,2024-06-17T16:40:00,abc\n")
    [report], problems = read_kobo_reports(content, now=NOW)
    assert problems == [] and report.reported_at == datetime(2024, 6, 17, 16, 40, tzinfo=UTC)


def test_export_without_a_site_column_is_one_problem_and_no_report():
    content = b"estado;personas;hogares;end\nabierto;3;1;2024-06-17T10:00:00-06:00\n"
    reports, problems = read_kobo_reports(content, now=NOW)
    assert reports == [] and [(p.row, p.column) for p in problems] == [(1, "site_id")]


def test_a_submission_repeated_in_the_file_is_named():
    content = (b"codigo_albergue,estado,personas,hogares,end,_uuid\n"
               b"ALB-001,abierto,3,1,2024-06-17T10:00:00-06:00,abc\n"
               b"ALB-001,abierto,3,1,2024-06-17T10:00:00-06:00,abc\n")
    reports, problems = read_kobo_reports(content, now=NOW)
    assert len(reports) == 1 and [(p.row, p.column) for p in problems] == [(3, "_uuid")]
