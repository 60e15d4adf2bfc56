"""The planner's report of a flood-scenario folder, and what every printed planning page shares.

A scenario folder (``floodwarn scenarios run --out``) holds ``scenarios.json``, the combined
exposure tables and one ``rp{T}/`` folder per return period. This module reads it
(:func:`read_scenario_folder`), formats numbers, dates and return periods for Salvadoran
readers (:func:`format_number`, :func:`spanish_date`, :func:`annual_chance`), renders the
Jinja2 templates of ``floodwarn/planning/templates`` (:func:`page_environment`), and writes
the planner's report (:func:`write_planner_report`): one self-contained, printable HTML page,
Spanish first, with maps and the risk curve embedded as PNG ``data:`` URIs, so that it opens
and prints without a network.

Numbers follow El Salvador's usage (CLDR ``es_SV``/``es_419``: decimal point) with the RAE's
thousands separator, a non-breaking space from five digits on (``30 086``, ``9031.3``),
which no Spanish or English reader can mistake for a decimal mark.

References
----------
Real Academia Española & ASALE (2010) Ortografía de la lengua española, §4.2.4 (thousands
separated by a space in numbers of more than four digits; decimal point or comma by country).
Unicode CLDR, locale data ``es_419`` (inherited by ``es_SV``): decimal ``.``.
Deltares, Delft-FIAT documentation, "Risk calculation" (expected annual values; see
:mod:`floodwarn.planning.exposure`).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from floodwarn import __version__
from floodwarn.errors import DataFileError, InputError
from floodwarn.io.forecast_outputs import (
    DEPTH_FILE,
    EXPOSURE_FILES,
    SCENARIOS_FILE,
    SETTLEMENTS_FILE,
    UPGRADE_PLAN_FILE,
)
from floodwarn.logs import get_logger, timed_step

log = get_logger(__name__)

#: Columns an upgrades CSV must have (``floodwarn plan shelters``).
UPGRADE_COLUMNS = ("action_id", "site_id", "site_name", "kind", "places", "cost",
                   "municipality", "department", "expected_unplaced_avoided_per_year",
                   "reason_es", "reason_en")

#: Keys an upgrade plan's header must have.
UPGRADE_PLAN_KEYS = ("expected_unplaced_before", "expected_unplaced_after", "total_cost",
                     "upgrades", "budget", "optimal")
#: Thousands separator (non-breaking space, RAE) and decimal mark (El Salvador: point).
GROUP_MARK = "\u00a0"
DECIMAL_MARK = "."
MONTHS_ES = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
             "septiembre", "octubre", "noviembre", "diciembre")
#: Collective-centre kinds (models/collective_centres.yaml) in Spanish and English.
CENTRE_KINDS = {"school": ("escuela", "school"), "health_unit": ("unidad de salud", "health unit"),
                "hospital": ("hospital", "hospital"), "church": ("iglesia", "church"),
                "hall": ("salón comunal", "community hall"), "other": ("otro", "other"),
                "excluded": ("excluido", "excluded")}
#: Warning levels (models/levels.yaml) in English.
LEVELS_EN = {"verde": "green", "amarilla": "yellow", "naranja": "orange", "roja": "red"}
#: Shelter-upgrade kinds in Spanish and English.
UPGRADE_KINDS = {"capacity": ("ampliar capacidad", "add places"),
                 "flood_safe": ("proteger de la inundación", "flood-proof the site"),
                 "new_site": ("nuevo albergue", "new site")}
#: Rows of each ranked table in the report.
TOP_ROWS = 20
#: Longest side of a map's raster, in pixels (the depth is read at this resolution at most).
MAP_MAX_PIXELS = 900
#: Depth classes of the maps (m) and their colours, shallow to deep.
DEPTH_CLASSES_M = (0.0, 0.5, 1.0, 2.0)
DEPTH_COLOURS = ("#c6dbef", "#6baed6", "#2171b5", "#08306b")
#: Years over which the report gives the chance of seeing a flood at least once.
HORIZON_YEARS = 30

_TEMPLATES = Path(__file__).parent / "templates"


# --------------------------------------------------------------------------- the folder


@dataclass(frozen=True)
class ScenarioFolder:
    """A scenario folder and its ``scenarios.json`` record."""

    path: Path
    record: dict[str, Any]

    @property
    def return_periods(self) -> tuple[int, ...]:
        return tuple(int(t) for t in self.record.get("return_periods", ()))

    @property
    def synthetic(self) -> bool:
        return bool(self.record.get("synthetic", False))

    def scenario(self, years: int) -> Path:
        """One return period's folder: ``rp10`` for the 10-year flood."""
        return self.path / f"rp{int(years)}"

    def has_table(self, name: str) -> bool:
        return (self.path / EXPOSURE_FILES[name]).exists()

    def table(self, name: str) -> pd.DataFrame:
        """One of :data:`EXPOSURE_FILES` (``settlements``, ``municipalities``, …); ids stay
        text."""
        if name not in EXPOSURE_FILES:
            raise InputError(f"no exposure table {name!r}: give one of "
                             f"{', '.join(EXPOSURE_FILES)}.")
        path = self.path / EXPOSURE_FILES[name]
        if not path.exists():
            raise DataFileError(f"{path}: missing; the scenario run had no settlement or centre "
                                "in its domain, or stopped early; run `floodwarn scenarios "
                                "run` again.")
        return pd.read_csv(path, dtype={"id": str, "municipality_id": str,
                                        "department_code": str})

    @property
    def modified(self) -> datetime:
        """When the scenarios were written (``scenarios.json``'s time)."""
        return datetime.fromtimestamp((self.path / SCENARIOS_FILE).stat().st_mtime)


def read_scenario_folder(scenarios_dir: str | Path) -> ScenarioFolder:
    """The folder's ``scenarios.json``; a clear error when ``scenarios_dir`` is not the output
    of ``floodwarn scenarios run``."""
    folder = Path(scenarios_dir)
    index = folder / SCENARIOS_FILE
    if not index.exists():
        raise InputError(f"{folder}: no {SCENARIOS_FILE}; give the --out folder of "
                         "`floodwarn scenarios run --terrain TERRAIN --out FOLDER`.")
    try:
        record = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{index}: unreadable ({exc}); run `floodwarn scenarios run` "
                            "again.") from exc
    if not record.get("return_periods"):
        raise DataFileError(f"{index}: no return_periods; it is not a scenario record.")
    return ScenarioFolder(path=folder, record=record)


# --------------------------------------------------------------------------- formatting


def format_number(value: Any, decimals: int = 0) -> str:
    """``value`` for a Salvadoran reader: decimal point, thousands separated by a non-breaking
    space from five integer digits on (``30 086``, ``1234``, ``9031.3``); ``—`` for a missing
    value."""
    if value is None or value == "":
        return "—"
    number = float(value)
    if not math.isfinite(number):
        return "—"
    text = f"{abs(number):.{decimals}f}"
    whole, _, fraction = text.partition(".")
    if len(whole) > 4:
        groups = [whole[max(0, end - 3):end] for end in range(len(whole), 0, -3)]
        whole = GROUP_MARK.join(reversed(groups))
    sign = "-" if number < 0 and float(text) != 0 else ""
    return sign + whole + (DECIMAL_MARK + fraction if fraction else "")


def format_percent(share: float, decimals: int = 0) -> str:
    """A share (0.1) as a Spanish percentage, with its space: ``10 %``."""
    return format_percent_points(100.0 * share, decimals)


def format_percent_points(pct: Any, decimals: int = 0) -> str:
    """A value already in percent (12.5) as ``12.5 %``; ``—`` when missing."""
    text = format_number(pct, decimals)
    return text if text == "—" else f"{text}\u00a0%"


def _compact_percent(pct: float) -> str:
    """``10``, ``4``, ``0.2``: at most one decimal, none when whole."""
    return format_number(pct, 0 if abs(pct - round(pct)) < 1e-9 else 1)


def spanish_date(day: date) -> str:
    """``30 de noviembre de 2026``."""
    return f"{day.day} de {MONTHS_ES[day.month - 1]} de {day.year}"


@dataclass(frozen=True)
class AnnualChance:
    """What a return period means, in plain words."""

    years: int
    percent: str  # "10 %": the chance in any one year
    in_horizon: str  # "96 %": the chance of at least one in HORIZON_YEARS years
    es: str
    en: str


def annual_chance(years: int) -> AnnualChance:
    """A T-year flood has a 1/T chance of being reached or exceeded in any one year — not one
    flood every T years: ``crecida de 10 años = 10 % de probabilidad cada año``."""
    pct = _compact_percent(100.0 / years) + "\u00a0%"
    at_least_once = round(100.0 * (1.0 - (1.0 - 1.0 / years) ** HORIZON_YEARS))
    horizon = _compact_percent(min(at_least_once, 99)) + "\u00a0%"
    over = at_least_once > 99
    return AnnualChance(
        years=years, percent=pct, in_horizon=("más del " if over else "") + horizon,
        es=f"crecida de {years} años = {pct} de probabilidad cada año (de igualarse o "
           f"superarse); no significa «una vez cada {years} años»: puede repetirse en años "
           f"seguidos, y en {HORIZON_YEARS} años la probabilidad de verla al menos una vez es "
           f"{'de más del ' if over else 'de '}{horizon}",
        en=f"{years}-year flood = {pct} chance every year of being reached or exceeded; not "
           f"'once every {years} years': it can come in consecutive years, and the chance of "
           f"at least one in {HORIZON_YEARS} years is {'over ' if over else ''}{horizon}")


def centre_kind(kind: Any) -> tuple[str, str]:
    """(Spanish, English) name of a collective-centre kind."""
    return CENTRE_KINDS.get(str(kind), (str(kind), str(kind)))


def spanish_list(items: Sequence[Any]) -> str:
    """``1, 3, 6, 24 y 72``."""
    words = [str(i) for i in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " y " + words[-1]


@cache
def page_environment() -> Any:
    """The Jinja2 environment of the planning pages: HTML autoescaped, every variable required,
    the number filters (``num``, ``pct``) registered."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["pct"] = format_percent
    env.filters["percent_points"] = format_percent_points
    env.filters["kind_es"] = lambda kind: centre_kind(kind)[0]
    env.filters["kind_en"] = lambda kind: centre_kind(kind)[1]
    env.filters["level_en"] = lambda level: LEVELS_EN.get(str(level), str(level))
    env.filters["text"] = lambda value: "—" if value is None or (
        isinstance(value, float) and not math.isfinite(value)) or value == "" else str(value)
    return env


def render_page(template: str, **context: Any) -> str:
    """One planning template rendered with ``context`` and the floodwarn version."""
    return str(page_environment().get_template(template).render(version=__version__, **context))


def write_text_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file, so that a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- the report


def write_planner_report(scenarios_dir: str | Path, out_path: str | Path, *,
                         upgrades_csv: str | Path | None = None,
                         today: date | None = None) -> Path:
    """The planner's report of a scenario folder as one self-contained HTML page at
    ``out_path``: what the scenarios are (return periods and their annual chance, design
    storm durations, rain factor, the IDF's standing), the 100- and 10-year depth maps with
    department outlines and settlements sized by expected annual people exposed, the risk
    curve with the expected annual values and their method, the top municipalities,
    departments, settlements and river reaches, the collective centres unsafe from the 2-, 5-
    and 10-year floods, and — with ``upgrades_csv`` (``floodwarn plan shelters``; its
    ``upgrade_plan.json`` next to it) — the chosen shelter upgrades with their reasons.

    Spanish first, English second and smaller; labelled SINTÉTICO / SYNTHETIC when the
    scenarios are. Images are PNG ``data:`` URIs and nothing is fetched from a network, so it
    opens, prints and travels as one file. ``today`` dates the page (default: today).
    """
    folder = read_scenario_folder(scenarios_dir)
    out = Path(out_path)
    upgrades = _read_upgrades(Path(upgrades_csv)) if upgrades_csv is not None else None
    with timed_step(log, "planner_report", scenarios=str(folder.path), out=str(out)):
        context = _report_context(folder, upgrades, today or date.today())
        write_text_atomic(out, render_page("planner_report.html", **context))
    return out


def shown_periods(periods: Sequence[int]) -> list[int]:
    """The return periods a table shows: 10 and 100 years when present, else the first and
    last."""
    chosen = [t for t in (10, 100) if t in periods]
    return chosen or sorted({periods[0], periods[-1]})


def _report_context(folder: ScenarioFolder, upgrades: dict[str, Any] | None,
                    today: date) -> dict[str, Any]:
    record = folder.record
    periods = list(folder.return_periods)
    tables = {name: folder.table(name) for name in EXPOSURE_FILES if folder.has_table(name)}
    settlements = tables.get("settlements")
    curve = _risk_curve_values(record, periods, settlements)
    weights = np.asarray(record.get("annual_probability_weights") or
                         _weights(periods), np.float64)
    expected = {k: float(v) for k, v in (record.get("expected_annual") or {}).items()}
    if not expected and curve:
        expected = {k: float(weights @ np.asarray(v, np.float64)) for k, v in curve.items()}
    maps = [_depth_map(folder, years, settlements) for years in _map_periods(periods)]
    centres = tables.get("centres")
    unsafe = None
    if centres is not None:
        unsafe = centres[centres["unsafe_from_rp"] <= 10].sort_values(
            ["unsafe_from_rp", "name"], kind="stable")
    factor = float(record.get("rain_factor", 1.0))
    return {
        "title_es": "Escenarios de inundación para la planificación",
        "title_en": "Flood scenarios for planning",
        "synthetic": folder.synthetic,
        "today": spanish_date(today), "today_iso": today.isoformat(),
        "computed": spanish_date(folder.modified.date()),
        "folder_name": folder.path.resolve().name,
        "record": record,
        "periods": periods,
        "chances": [annual_chance(t) for t in periods],
        "shown": shown_periods(periods),
        "durations": spanish_list(record.get("durations_h") or ["—"]),
        "durations_en": ", ".join(str(d) for d in record.get("durations_h") or ["—"]),
        "rain_factor": factor,
        "rain_change": format_percent(factor - 1.0) if factor != 1.0 else "",
        "regional_idf": bool(record.get("idf_is_regional_approximation", False)),
        "summaries": [_scenario_summary(record, t) for t in periods],
        "expected": expected,
        "weights": [(t, format_number(w, 4)) for t, w in zip(periods, weights, strict=False)],
        "first": periods[0], "last": periods[-1],
        "maps": maps,
        "curve": _png_uri(_risk_curve_png(periods, curve, expected)) if curve else None,
        "municipalities": _top(tables.get("municipalities"), "eae_people_exposed"),
        "departments": _top(tables.get("departments"), "eae_people_exposed", rows=None),
        "settlements": _top(settlements, "eae_people_exposed"),
        "reaches": (None if "reaches" not in tables else
                    tables["reaches"].sort_values("rank").head(TOP_ROWS).to_dict("records")),
        "unsafe": None if unsafe is None else unsafe.to_dict("records"),
        "centres_known": centres is not None,
        "upgrades": upgrades,
        "top_rows": TOP_ROWS,
    }


def _weights(periods: Sequence[int]) -> np.ndarray:
    from floodwarn.planning.exposure import annual_probability_weights

    return annual_probability_weights(periods)


def _top(table: pd.DataFrame | None, column: str, rows: int | None = TOP_ROWS
         ) -> list[dict[str, Any]] | None:
    if table is None:
        return None
    ranked = table.sort_values(column, ascending=False, kind="stable")
    return (ranked if rows is None else ranked.head(rows)).to_dict("records")


def _scenario_summary(record: dict[str, Any], years: int) -> dict[str, Any]:
    summary = (record.get("scenarios") or {}).get(f"rp{years}", {})
    inundation = summary.get("inundation", {})
    levels = summary.get("settlements_by_level", {})
    status = summary.get("centres_by_status", {})
    return {"years": years, "chance": annual_chance(years).percent,
            "flooded_km2": inundation.get("flooded_land_km2"),
            "people_exposed": summary.get("people_exposed"),
            "evacuees": summary.get("evacuees"),
            "unmet": summary.get("unmet_evacuees"),
            "red_orange": (levels.get("roja", 0) + levels.get("naranja", 0)) if levels else None,
            "centres_unsafe": status.get("unsafe")}


def _risk_curve_values(record: dict[str, Any], periods: Sequence[int],
                       settlements: pd.DataFrame | None) -> dict[str, list[float]]:
    """People exposed, evacuees and unplaced evacuees of each scenario: the settlement table's
    sums (what the tables show), else the scenario summaries."""
    names = {"people_exposed": ("people_exposed", "people_exposed"),
             "evacuees": ("evacuees", "evacuees"),
             "unplaced_evacuees": ("unplaced_evacuees", "unmet_evacuees")}
    if settlements is not None:
        return {key: [float(settlements[f"{column}_rp{t}"].sum()) for t in periods]
                for key, (column, _) in names.items()}
    summaries = record.get("scenarios") or {}
    if not all("people_exposed" in summaries.get(f"rp{t}", {}) for t in periods):
        return {}
    return {key: [float(summaries[f"rp{t}"].get(name, 0)) for t in periods]
            for key, (_, name) in names.items()}


def _read_upgrades(path: Path) -> dict[str, Any]:
    """The chosen shelter upgrades and their plan's header (``upgrade_plan.json`` next to the
    CSV; without it, the table alone)."""
    if not path.exists():
        raise InputError(f"{path}: no such upgrades file; give the upgrades.csv written by "
                         "`floodwarn plan shelters`.")
    table = pd.read_csv(path, dtype={"site_id": str, "action_id": str})
    missing = [c for c in UPGRADE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: lacks columns {missing}; expected the upgrades.csv of "
                         f"`floodwarn plan shelters` ({', '.join(UPGRADE_COLUMNS)}).")
    header_path = path.parent / UPGRADE_PLAN_FILE
    header: dict[str, Any] | None = None
    if header_path.exists():
        plan = json.loads(header_path.read_text(encoding="utf-8"))
        missing = [k for k in UPGRADE_PLAN_KEYS if k not in plan]
        if missing:
            raise InputError(f"{header_path}: lacks {missing}; expected the upgrade_plan.json "
                             "of `floodwarn plan shelters`.")
        header = {"currency": "", "costs_are_assumptions": False, **plan}
    else:
        log.warning("upgrade plan header missing", extra={"path": str(header_path)})
    rows = table.sort_values("expected_unplaced_avoided_per_year", ascending=False,
                             kind="stable").to_dict("records")
    for row in rows:
        row["kind_es"], row["kind_en"] = UPGRADE_KINDS.get(str(row["kind"]),
                                                           (str(row["kind"]),) * 2)
    return {"rows": rows, "header": header, "file": path.name,
            "cost": float(table["cost"].sum())}


# --------------------------------------------------------------------------- figures


def _png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(width_in: float, height_in: float) -> Any:
    """A matplotlib figure without pyplot (no global state: safe in a server's threads)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - a dependency of floodwarn
        raise InputError("the planner's report draws its maps with matplotlib: "
                         "pip install 'matplotlib>=3.8'.") from exc
    return Figure(figsize=(width_in, height_in), dpi=120, layout="constrained")


def _save_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, metadata={"Software": None})
    return buffer.getvalue()


def _map_periods(periods: Sequence[int]) -> list[int]:
    """The 100- and 10-year maps (those present), else the rarest scenario."""
    return [t for t in (100, 10) if t in periods] or [max(periods)]


def _depth_map(folder: ScenarioFolder, years: int, settlements: pd.DataFrame | None
               ) -> dict[str, Any]:
    """One scenario's map: its PNG as a data URI and the caption's facts."""
    path = folder.scenario(years) / DEPTH_FILE
    chance = annual_chance(years)
    if not path.exists():
        return {"years": years, "chance": chance, "uri": None}
    points = _settlement_points(folder, settlements)
    png = _depth_map_png(path, points, f"Crecida de {years} años ({chance.percent} cada año) "
                                       f"/ {years}-year flood")
    return {"years": years, "chance": chance, "uri": _png_uri(png)}


def _settlement_points(folder: ScenarioFolder, settlements: pd.DataFrame | None
                       ) -> pd.DataFrame | None:
    """Settlements' lon/lat (from the first scenario's layer) with their expected annual
    people exposed."""
    if settlements is None:
        return None
    layer = folder.scenario(folder.return_periods[0]) / SETTLEMENTS_FILE
    if not layer.exists():
        return None
    import geopandas as gpd

    places = gpd.read_file(layer, columns=["id"], engine="pyogrio").to_crs("EPSG:4326")
    xy = pd.DataFrame({"id": places["id"].astype(str), "lon": places.geometry.x,
                       "lat": places.geometry.y})
    return settlements[["id", "eae_people_exposed"]].merge(xy, on="id", how="inner")


def _depth_map_png(depth_path: Path, points: pd.DataFrame | None, title: str) -> bytes:
    """Peak depth in four classes (the deepest cell of each displayed pixel, so that narrow
    floodplains stay visible), department outlines and names, settlements as circles whose
    area grows with their expected annual people exposed, a scale bar."""
    import geopandas as gpd
    import rasterio
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    from floodwarn.io.gis_data import load_departments

    with rasterio.open(depth_path) as src:
        depth = _block_max(src)
        bounds, crs = src.bounds, src.crs
    depth = np.ma.masked_where(~(depth > 0), depth)  # dry, channels, lakes, outside: blank
    departments = load_departments().to_crs(crs)
    view = _map_view(bounds, departments.total_bounds)
    figure = _figure(7.3, 4.9)
    ax = figure.add_subplot()
    edges = [*DEPTH_CLASSES_M, 1e6]  # the last class has no upper bound
    ax.imshow(depth, extent=(bounds.left, bounds.right, bounds.bottom, bounds.top),
              cmap=ListedColormap(DEPTH_COLOURS), norm=BoundaryNorm(edges, len(DEPTH_COLOURS)),
              interpolation="nearest", zorder=1)
    departments.boundary.plot(ax=ax, color="#666666", linewidth=0.5, zorder=2)
    for row in departments.itertuples():
        spot = row.geometry.representative_point()
        if view[0] < spot.x < view[2] and view[1] < spot.y < view[3]:
            ax.text(spot.x, spot.y, str(row.name), fontsize=5.5, color="#555555",
                    ha="center", va="center", zorder=3)
    handles: list[Any] = [Patch(facecolor=c, label=label) for c, label in zip(
        DEPTH_COLOURS, ("< 0.5 m", "0.5–1 m", "1–2 m", "> 2 m"), strict=True)]
    if points is not None and len(points):
        located = gpd.GeoSeries(gpd.points_from_xy(points["lon"], points["lat"]),
                                crs="EPSG:4326").to_crs(crs)
        value = points["eae_people_exposed"].to_numpy(np.float64)
        top = float(np.nanmax(value)) if np.nanmax(value) > 0 else 1.0

        def area(v: np.ndarray | float) -> Any:
            return 3.0 + 260.0 * np.sqrt(np.clip(v, 0, None) / top)

        exposed = value > 0
        ax.scatter(located.x[~exposed], located.y[~exposed], s=2.0, color="#999999",
                   zorder=4, linewidths=0)
        ax.scatter(located.x[exposed], located.y[exposed], s=area(value[exposed]),
                   facecolor="#f28e2b", edgecolor="#7a3b00", alpha=0.75, linewidths=0.5,
                   zorder=5)
        for ref in _nice_sizes(top):
            handles.append(Line2D([], [], marker="o", linestyle="", markersize=math.sqrt(
                area(ref)), markerfacecolor="#f28e2b", markeredgecolor="#7a3b00",
                label=f"{format_number(ref)} pers./año"))
    left, bottom, right, top = view
    bar_km = next((km for km in (100, 50, 20, 10, 5, 2, 1) if km * 1000 <= (right - left) / 4),
                  0.5)
    scale_x, scale_y = left + 0.04 * (right - left), bottom + 0.05 * (top - bottom)
    ax.plot([scale_x, scale_x + bar_km * 1000], [scale_y, scale_y], color="black",
            linewidth=2, zorder=6)
    ax.text(scale_x + bar_km * 500, scale_y + 0.015 * (top - bottom), f"{bar_km:g} km",
            ha="center", va="bottom", fontsize=6.5, zorder=6)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    ax.legend(handles=handles, loc="lower right", fontsize=6, framealpha=0.9,
              title="Profundidad / depth · expuestas por año", title_fontsize=6)
    return _save_png(figure)


def _map_view(bounds: Any, country: np.ndarray) -> tuple[float, float, float, float]:
    """What a map shows: El Salvador (its departments' extent, 5 km around) within the
    raster."""
    margin = 5_000.0
    view = (max(bounds.left, country[0] - margin), max(bounds.bottom, country[1] - margin),
            min(bounds.right, country[2] + margin), min(bounds.top, country[3] + margin))
    if view[0] >= view[2] or view[1] >= view[3]:  # the raster lies outside the country
        return (bounds.left, bounds.bottom, bounds.right, bounds.top)
    return view


def _block_max(src: Any) -> np.ndarray:
    """Band 1 of an open raster reduced to at most :data:`MAP_MAX_PIXELS` on its longer side,
    each pixel the largest value of the block it covers (NaN where all are NaN), read in
    strips so that a country-wide raster never sits whole in memory."""
    from rasterio.windows import Window

    factor = max(1, math.ceil(max(src.width, src.height) / MAP_MAX_PIXELS))
    cols = math.ceil(src.width / factor)
    strips = []
    step = factor * max(1, 256 // factor)
    for top in range(0, src.height, step):
        rows = min(step, src.height - top)
        block = src.read(1, window=Window(0, top, src.width, rows)).astype(np.float32)
        if src.nodata is not None and not np.isnan(src.nodata):
            block[block == np.float32(src.nodata)] = np.nan
        padded = np.full((math.ceil(rows / factor) * factor, cols * factor), -np.inf,
                         np.float32)
        padded[:rows, :src.width] = np.where(np.isnan(block), -np.inf, block)
        strips.append(padded.reshape(-1, factor, cols, factor).max(axis=(1, 3)))
    reduced = np.vstack(strips)
    return np.where(np.isneginf(reduced), np.nan, reduced)


def _nice_sizes(top: float) -> list[float]:
    """Up to three round reference values below ``top`` for a size legend."""
    values = []
    for share in (1.0, 0.25, 0.04):
        v = top * share
        if v < 1:
            continue
        magnitude = 10 ** math.floor(math.log10(v))
        values.append(float(math.floor(v / magnitude) * magnitude))
    return sorted(set(values), reverse=True)


def _risk_curve_png(periods: Sequence[int], curve: dict[str, list[float]],
                    expected: dict[str, float]) -> bytes:
    """People against annual exceedance probability f = 1/T on a linear axis, interpolated as
    the expected annual values assume (0 above the first scenario's f, log-linear between,
    the last value below the last f), so that the shaded area is the expected annual number
    of people exposed."""
    f = 1.0 / np.asarray(periods, np.float64)
    figure = _figure(7.3, 3.6)
    ax = figure.add_subplot()
    styles = {"people_exposed": ("#f28e2b", "Expuestas / exposed"),
              "evacuees": ("#e15759", "A evacuar / evacuees"),
              "unplaced_evacuees": ("#7a0177", "Sin lugar / without a place")}
    for key, (colour, label) in styles.items():
        xs, ys = _assumed_curve(f, np.asarray(curve[key], np.float64))
        ax.plot(xs, ys, color=colour, linewidth=1.4, label=label)
        ax.plot(f, curve[key], "o", color=colour, markersize=3.5)
        if key == "people_exposed":
            ax.fill_between(xs, ys, color=colour, alpha=0.18, linewidth=0)
    total = expected.get("people_exposed")
    if total is not None:
        ax.text(0.98, 0.95, f"Área sombreada = {format_number(total)} personas expuestas por "
                f"año (valor esperado)\nShaded area = expected annual people exposed",
                transform=ax.transAxes, ha="right", va="top", fontsize=7)
    ax.set_xlim(0, min(1.0, f[0] * 1.12))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("Probabilidad anual de la crecida / annual exceedance probability",
                  fontsize=7.5)
    ax.set_ylabel("Personas / people", fontsize=7.5)
    ax.xaxis.set_major_formatter(lambda x, _pos: format_percent(x))
    ax.yaxis.set_major_formatter(lambda y, _pos: format_number(y))
    ax.tick_params(labelsize=6.5)
    top = ax.secondary_xaxis("top")
    top.set_xticks(f, _spaced_labels(f, [f"{t} a" for t in periods], ax.get_xlim()[1]),
                   fontsize=6.5)
    top.set_xlabel("Periodo de retorno (años) / return period (years)", fontsize=7)
    ax.legend(fontsize=6.5, loc="center right")
    ax.grid(alpha=0.3, linewidth=0.5)
    return _save_png(figure)


def _spaced_labels(positions: np.ndarray, labels: list[str], span: float) -> list[str]:
    """``labels`` with those too close to the previous shown one blanked (rare floods crowd
    near f = 0)."""
    shown, last = [], -np.inf
    for x, label in sorted(zip(positions, labels, strict=True)):
        keep = (x - last) / span >= 0.03
        shown.append((x, label if keep else ""))
        last = x if keep else last
    order = {x: text for x, text in shown}
    return [order[x] for x in positions]


def _assumed_curve(f: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The curve X(f) of the expected-annual method, sampled for drawing (f decreasing)."""
    xs: list[float] = [float(f[0]) * 1.12, float(f[0])]
    ys: list[float] = [0.0, 0.0]
    for k in range(len(f)):
        if k:
            fine = np.exp(np.linspace(np.log(f[k - 1]), np.log(f[k]), 24))[1:]
            share = (np.log(f[k - 1]) - np.log(fine)) / (np.log(f[k - 1]) - np.log(f[k]))
            xs.extend(fine.tolist())
            ys.extend((values[k - 1] + share * (values[k] - values[k - 1])).tolist())
        else:
            xs.append(float(f[0]))
            ys.append(float(values[0]))
    xs.append(0.0)
    ys.append(float(values[-1]))
    return np.asarray(xs), np.asarray(ys)
