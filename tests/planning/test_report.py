"""The planner's report of a hand-made scenario folder: SINTÉTICO when (and only when) the
scenarios are synthetic, the tables' top rows, the maps and risk curve embedded as PNG data,
nothing fetched from a network, the chosen shelter upgrades; Spanish number formats; the
file names shared with the pipeline."""

from __future__ import annotations

import base64
import json
import re
from datetime import date

import pandas as pd
import pytest

from floodwarn import pipeline
from floodwarn.errors import InputError
from floodwarn.planning.report import (
    annual_chance,
    format_number,
    format_percent,
    spanish_date,
    write_planner_report,
)
from tests.planning.test_evacuation_plans import write_scenario_folder

DAY = date(2026, 11, 30)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory):
    folder = write_scenario_folder(tmp_path_factory.mktemp("synthetic") / "scenarios")
    upgrades = folder / "plan"
    upgrades.mkdir()
    pd.DataFrame([
        {"action_id": "ampliar-4", "site_id": "4", "site_name": "Centro Escolar Metapán",
         "kind": "capacity", "places": 100, "cost": 157500.0, "municipality": "Metapán",
         "department": "Santa Ana", "expected_unplaced_avoided_per_year": 32.74,
         "reason_es": "Amplía en 100 plazas: evita 33 personas sin plaza por año.",
         "reason_en": "Adds 100 places: avoids 33 people without a place per year."},
        {"action_id": "proteger-3", "site_id": "3", "site_name": "Iglesia El Rosario",
         "kind": "flood_safe", "places": 0, "cost": 40000.0, "municipality": "El Rosario",
         "department": "Cuscatlán", "expected_unplaced_avoided_per_year": 1.5,
         "reason_es": "Protege el sitio de la crecida de 100 años.",
         "reason_en": "Keeps the site dry in the 100-year flood."},
    ]).to_csv(upgrades / "upgrades.csv", index=False)
    (upgrades / "upgrade_plan.json").write_text(json.dumps({
        "expected_unplaced_before": 3644.92, "expected_unplaced_after": 3006.29,
        "total_cost": 197500.0, "upgrades": 2, "budget": None, "optimal": True,
        "currency": "USD", "costs_are_assumptions": True}))
    out = write_planner_report(folder, folder.parent / "informe.html",
                               upgrades_csv=upgrades / "upgrades.csv", today=DAY)
    return out.read_text(encoding="utf-8")


def _text(page: str) -> str:
    """The page without its embedded images (easier to search and to read in a failure)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:…", page)


def test_synthetic_scenarios_are_labelled_prominently(synthetic_report):
    page = _text(synthetic_report)
    assert '<div class="synthetic" role="alert">SINTÉTICO' in page
    assert "SYNTHETIC — these scenarios" in page
    assert "<title>Escenarios de inundación para la planificación — SINTÉTICO</title>" in page


def test_real_scenarios_are_not_labelled_synthetic(tmp_path):
    folder = write_scenario_folder(tmp_path / "real", synthetic=False, rain_factor=1.2,
                                   regional_idf=False)
    page = _text(write_planner_report(folder, tmp_path / "r.html", today=DAY).read_text())
    assert "SINTÉTICO" not in page and "SYNTHETIC" not in page
    # A rain factor is a climate sensitivity, said so; no regional-IDF caveat when not one.
    assert "Factor de lluvia 1.20 (+20\u00a0%" in page and "sensibilidad al cambio" in page
    assert "aproximación regional" not in page
    assert "Mejoras de albergues" not in page  # no upgrades given


def test_images_are_embedded_and_nothing_comes_from_a_network(synthetic_report):
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', synthetic_report)
    assert len(images) == 3  # the 100- and 10-year maps, the risk curve
    assert all(base64.b64decode(data).startswith(PNG) for data in images)
    assert "http://" not in synthetic_report and "https://" not in synthetic_report
    assert "<script" not in synthetic_report and "<link" not in synthetic_report
    assert re.findall(r'src="([^"]{0,22})', synthetic_report) == ["data:image/png;base64,"] * 3


def test_what_the_scenarios_are(synthetic_report):
    page = _text(synthetic_report)
    assert "30 de noviembre de 2026" in page
    assert "tormentas de 1, 3, 6, 24 y 72 horas" in page
    assert "crecida de 10 años = 10\u00a0% de probabilidad cada año" in page
    assert "crecida de 2 años = 50\u00a0% de probabilidad cada año" in page
    assert "es de más del 99\u00a0%" in page  # a 2-year flood within 30 years
    assert "aproximación regional" in page and "Factor de lluvia 1 " in page
    # The expected annual values of scenarios.json, in Spanish number format.
    assert "<strong>12\u00a0345.6</strong>" in page and "<strong>234.5</strong>" in page
    assert "Delft-FIAT" in page and "linealmente con el logaritmo de f" in page
    # The folder's weights (2, 10, 100 years), as the method paragraph lists them.
    assert "2 años: 0.2515; 10 años: 0.2094; 100 años: 0.0391" in page


def test_tables_top_rows(synthetic_report):
    page = _text(synthetic_report)

    def section(title: str) -> str:
        start = page.index(title)
        return page[start:page.index("<h2", start + 1)]

    # Municipalities: Metapán first (San Jerónimo and Metapán town: 500 + 60 people in the
    # 10-year flood, 900 + 300 in the 100-year one), then El Rosario (Cuscatlán).
    municipalities = section("5. Municipios")
    first = municipalities.index("<tr><td class=\"n\">1</td><td>Metapán</td><td>Santa Ana</td>")
    row = municipalities[first:municipalities.index("</tr>", first)]
    assert ">13\u00a0700<" in row  # population 1200 + 12 500
    assert '<td class="n">560</td><td class="n">1200</td>' in row
    assert municipalities.index(">Metapán<") < municipalities.index(">El Rosario<")
    assert "Tonacatepeque" in municipalities  # exposed in the 100-year flood only
    settlements = section("7. Asentamientos")
    assert settlements.index(">San Jerónimo<") < settlements.index(">El Rosario<")
    assert '<td class="n">500</td><td class="n">900</td>' in settlements
    departments = section("6. Departamentos")
    assert departments.index(">Santa Ana<") < departments.index(">Cuscatlán<")
    reaches = section("8. Tramos")
    assert '<td class="n">1</td><td class="n">7001</td><td class="n">-89.45123</td>' \
           '<td class="n">14.33111</td>' in reaches
    assert "<td>San Jerónimo</td>" in reaches and ">123.5<" in reaches


def test_centres_unsafe_in_frequent_floods(synthetic_report):
    page = _text(synthetic_report)
    start = page.index("9. Centros colectivos inseguros")
    centres = page[start:page.index("<h2", start + 1)]
    # The hospital floods from the 2-year flood; the church only in the 100-year one.
    assert "Hospital Nacional Metapán" in centres and ">hospital <" in centres
    assert "Iglesia El Rosario" not in centres


def test_chosen_upgrades_with_their_reasons(synthetic_report):
    page = _text(synthetic_report)
    start = page.index("10. Mejoras de albergues elegidas")
    upgrades = page[start:]
    assert "<strong>3644.9\n→ 3006.3</strong>" in upgrades
    assert "197\u00a0500 USD (costos supuestos" in upgrades and "Plan óptimo" in upgrades
    assert "Amplía en 100 plazas: evita 33 personas sin plaza por año." in upgrades
    assert "Adds 100 places" in upgrades and "proteger de la inundación" in upgrades
    assert upgrades.index("Centro Escolar Metapán") < upgrades.index("Iglesia El Rosario")


def test_bad_inputs_are_refused_clearly(tmp_path):
    with pytest.raises(InputError, match=r"no scenarios\.json; give the --out folder"):
        write_planner_report(tmp_path / "empty", tmp_path / "r.html")
    folder = write_scenario_folder(tmp_path / "s")
    bad = tmp_path / "upgrades.csv"
    pd.DataFrame({"site_id": ["1"]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match=r"lacks columns \['action_id'"):
        write_planner_report(folder, tmp_path / "r.html", upgrades_csv=bad)


def test_spanish_numbers_dates_and_chances():
    assert format_number(30086) == "30\u00a0086"
    assert format_number(1234) == "1234"  # four digits are not grouped (RAE)
    assert format_number(9031.26, 1) == "9031.3"
    assert format_number(1234567.891, 2) == "1\u00a0234\u00a0567.89"
    assert format_number(-12345) == "-12\u00a0345"
    assert format_number(float("nan")) == "—" and format_number(None) == "—"
    assert format_percent(0.04) == "4\u00a0%"
    assert spanish_date(date(2027, 1, 5)) == "5 de enero de 2027"
    ten = annual_chance(10)
    assert (ten.percent, ten.in_horizon) == ("10\u00a0%", "96\u00a0%")  # 1 − 0.9³⁰
    assert annual_chance(500).percent == "0.2\u00a0%"
    assert annual_chance(100).in_horizon == "26\u00a0%"


def test_scenario_folders_are_named_as_the_report_reads_them():
    assert pipeline.scenario_folder("x", 25).name == "rp25"
