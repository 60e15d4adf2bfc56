"""Site profiles: the official list of collective centres (albergues), read and validated.

The National Directorate of Shelters (Dirección Nacional de Albergues) and DGPC keep their list of
collective centres in a spreadsheet. :func:`read_site_profiles` reads it — CSV or XLSX, Spanish or
English headers — and names every bad row at once, so nothing is ever half-imported; missing
data stays missing (NA), never filled with a guess that looks like a fact. The shipped MINSAL
buildings become the default profile (:func:`default_site_profiles`), marked as estimates.
:func:`centres_from_profiles` turns profiles and the latest occupancy into the centres frame the
risk chain and the evacuation plan use (remaining capacity, which sites may receive people).

References:
    CCCM Cluster (2010) Collective Centre Guidelines. UNHCR / IOM — what a collective-centre
    profile records (capacity, covered area, WASH facilities, condition).
    Sphere Association (2018) The Sphere Handbook, Shelter and settlement standard 3 (living
    space): at least 3.5 m² of covered living space per person.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import geopandas as gpd
import numpy as np
import pandas as pd
from pyogrio.errors import DataSourceError

from floodwarn.errors import DataFileError, InputError
from floodwarn.io.gis_data import (
    EL_SALVADOR_BBOX,
    MAX_SNAP_M,
    METRIC_CRS,
    fold_case_and_accents,
    load_collective_centres,
    load_municipalities,
    place_key,
)
from floodwarn.logs import get_logger

log = get_logger(__name__)

#: Columns of the site profile frame, in order (the shared data contract).
PROFILE_COLUMNS = (
    "site_id", "name", "lon", "lat", "municipality_id", "municipality", "department",
    "department_code", "kind", "capacity_people", "covered_area_m2", "water", "toilets_female",
    "toilets_male", "showers_female", "showers_male", "accessible_toilet", "kitchen",
    "electricity", "lighting", "lockable_doors", "private_space", "condition", "usable",
    "capacity_source", "notes",
)
#: Counts (pandas Int64, NA = unknown): whole numbers ≥ 0.
COUNT_COLUMNS = ("capacity_people", "toilets_female", "toilets_male", "showers_female",
                 "showers_male")
#: Yes/no facts (pandas "boolean", NA = unknown).
BOOLEAN_COLUMNS = ("water", "accessible_toilet", "kitchen", "electricity", "lighting",
                   "lockable_doors", "private_space", "usable")
REQUIRED_COLUMNS = ("site_id", "name", "lon", "lat", "usable")

#: Accepted headers per profile column, compared by :func:`header_key` (case, accents, spaces
#: and punctuation ignored): the contract's English names and the Spanish a shelter list uses.
PROFILE_HEADERS: dict[str, tuple[str, ...]] = {
    "site_id": ("site_id", "codigo", "id_albergue", "codigo_albergue"),
    "name": ("name", "nombre", "nombre_albergue"),
    "lon": ("lon", "longitud", "longitude", "x"),
    "lat": ("lat", "latitud", "latitude", "y"),
    "municipality": ("municipality", "municipio"),
    "department": ("department", "departamento"),
    "kind": ("kind", "tipo", "tipo_edificio"),
    "capacity_people": ("capacity_people", "capacidad_personas", "capacidad"),
    "covered_area_m2": ("covered_area_m2", "area_cubierta_m2", "area_cubierta"),
    "water": ("water", "agua"),
    "toilets_female": ("toilets_female", "inodoros_mujeres"),
    "toilets_male": ("toilets_male", "inodoros_hombres"),
    "showers_female": ("showers_female", "duchas_mujeres"),
    "showers_male": ("showers_male", "duchas_hombres"),
    "accessible_toilet": ("accessible_toilet", "inodoro_accesible"),
    "kitchen": ("kitchen", "cocina"),
    "electricity": ("electricity", "electricidad"),
    "lighting": ("lighting", "iluminacion"),
    "lockable_doors": ("lockable_doors", "puertas_con_llave"),
    "private_space": ("private_space", "espacio_privado"),
    "condition": ("condition", "estado", "condicion"),
    "usable": ("usable", "habilitado", "puede_usarse"),
    "notes": ("notes", "observaciones", "notas"),
    "capacity_source": ("capacity_source", "fuente_capacidad"),
}
#: Optional live columns a site file handed to a run may carry (see :func:`read_site_centres`).
LIVE_HEADERS: dict[str, tuple[str, ...]] = {
    "people_present": ("people_present", "personas_presentes"),
    "site_status": ("site_status", "estado_albergue"),
}

#: Cell texts meaning "not known" (blank), compared by :func:`header_key`.
UNKNOWN_WORDS = frozenset({"", "na", "n_a", "nd", "n_d", "s_d", "sd", "sin_dato", "sin_datos"})
BOOLEAN_WORDS: dict[str, bool] = {
    **dict.fromkeys(("si", "s", "yes", "y", "true", "verdadero", "1", "x"), True),
    **dict.fromkeys(("no", "n", "false", "falso", "0"), False),
}
CONDITION_WORDS: dict[str, str] = {
    **dict.fromkeys(("bueno", "buena", "good"), "good"),
    **dict.fromkeys(("regular", "fair"), "fair"),
    **dict.fromkeys(("malo", "mala", "poor"), "poor"),
}
#: Building kinds as a shelter list writes them → the kinds of models/collective_centres.yaml.
#: Other words are kept as written (a kind is a label, not a fact floodwarn computes with).
KIND_WORDS: dict[str, str] = {
    **dict.fromkeys(("school", "escuela", "centro_escolar", "instituto", "complejo_educativo",
                     "colegio"), "school"),
    **dict.fromkeys(("church", "iglesia", "parroquia", "templo", "ermita"), "church"),
    **dict.fromkeys(("hall", "casa_comunal", "salon", "salon_comunal", "gimnasio",
                     "polideportivo"), "hall"),
    **dict.fromkeys(("health_unit", "unidad_de_salud", "ucsf"), "health_unit"),
    "hospital": "hospital",
    **dict.fromkeys(("other", "otro"), "other"),
}
#: Where a capacity comes from: an official census (the default for an imported list) or the
#: estimate by building kind (a file written from :func:`default_site_profiles`).
CAPACITY_SOURCE_WORDS: dict[str, str] = {
    **dict.fromkeys(("census", "censo"), "census"),
    **dict.fromkeys(("estimate", "estimacion", "estimada"), "estimate"),
}
SITE_STATUSES = ("open", "full", "closed")
SITE_STATUS_WORDS: dict[str, str] = {
    **{s: s for s in SITE_STATUSES}, "abierto": "open", "lleno": "full", "cerrado": "closed"}

#: A site whose list names a neighbouring municipality is accepted, and put in the named one,
#: when the point lies this close to that municipality's polygon, m: the shipped polygons are
#: generalised and move boundaries by some hundred metres.
BOUNDARY_TOLERANCE_M = 1_000.0
#: "2.400" or "1,200": in El Salvador a point often separates thousands (2.400 m² = 2,400 m²),
#: elsewhere it is a decimal; such a number is refused as ambiguous, never guessed.
THOUSANDS_GROUPS = r"\d{1,3}([.,])\d{3}(?:\1\d{3})*"
#: Problems spelled out in an error message (all of them are in ``SiteProfileError.problems``).
MESSAGE_PROBLEMS = 20
#: floor(area / m² per person) tolerates this much rounding (10.5 m² / 3.5 = 2.9999…).
FLOOR_TOLERANCE = 1e-9

ESTIMATE_NOTE = ("capacidad estimada por tipo de edificio / capacity estimated from the building "
                 "kind (models/collective_centres.yaml)")
XLSX_SHEET_NAMES = ("albergues", "albergue", "sites", "site_profiles", "centros_colectivos")


@dataclass(frozen=True)
class RowProblem:
    """One problem of an imported file: ``row`` as a spreadsheet shows it (header = 1, first
    data row = 2; 0 = the file as a whole), the row's ``site_id`` when known, the ``column``
    as headed in the file (the contract name when the column is missing) and what to fix."""

    row: int
    site_id: str | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row else "file"
        if self.site_id:
            where += f" (site {self.site_id!r})"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}"


class SiteProfileError(InputError):
    """A table that cannot be imported (a site list, a form export): ``problems`` names every
    bad row and column; the message (:func:`describe_problems`) the first of them.
    ``what`` names the table, e.g. "albergues.csv: the site list"."""

    def __init__(self, problems: list[RowProblem], *, what: str) -> None:
        self.problems = list(problems)
        super().__init__(describe_problems(self.problems, what=what))


def describe_problems(problems: list[RowProblem], *, what: str) -> str:
    """An error message naming the first :data:`MESSAGE_PROBLEMS` problems and their count."""
    lines = [f"{what}: {len(problems)} problem(s); nothing was imported. Fix them and import "
             "the whole file again:"]
    lines += [f"  - {p}" for p in problems[:MESSAGE_PROBLEMS]]
    if len(problems) > MESSAGE_PROBLEMS:
        lines.append(f"  … and {len(problems) - MESSAGE_PROBLEMS} more.")
    return "\n".join(lines)


def header_key(text: str) -> str:
    """A header or word compared loosely: no accents, lower case, any run of spaces or
    punctuation as one "_" ("Área cubierta (m²)" → "area_cubierta_m2", "Sí" → "si")."""
    return re.sub(r"[^a-z0-9]+", "_", fold_case_and_accents(str(text))).strip("_")


# --------------------------------------------------------------------------- reading tables


@dataclass(frozen=True)
class TextTable:
    """A table as text: ``headers`` as written, ``cells`` (str, "" when blank, columns 0…n-1),
    ``rows`` (the spreadsheet row of each record), ``overflow`` (records with more filled cells
    than the header has columns — usually a separator inside an unquoted value)."""

    headers: tuple[str, ...]
    cells: pd.DataFrame
    rows: np.ndarray
    overflow: np.ndarray


def _table(headers: list[str], records: list[tuple[int, list[str]]]) -> TextTable:
    width = len(headers)
    cells = pd.DataFrame([(r + [""] * width)[:width] for _, r in records],
                         columns=range(width), dtype=object).fillna("")
    return TextTable(
        headers=tuple(h.strip() for h in headers),
        cells=cells.map(str.strip) if len(cells) else cells,
        rows=np.array([n for n, _ in records], dtype=np.int64),
        overflow=np.array([any(c.strip() for c in r[width:]) for _, r in records], dtype=bool),
    )


def _split_header(records: Iterable[tuple[int, list[str]]], where: str) -> TextTable:
    """The first non-blank record is the header; blank records after it are skipped."""
    headers: list[str] | None = None
    data: list[tuple[int, list[str]]] = []
    for number, record in records:
        if not any(cell.strip() for cell in record):
            continue
        if headers is None:
            headers = record
        else:
            data.append((number, record))
    if headers is None:
        raise InputError(f"{where}: the file is empty; it needs a header row and one row per "
                         "site.")
    return _table(headers, data)


def decode_text(content: bytes, *, where: str) -> str:
    """CSV bytes as text: UTF-8 (with or without BOM), else Windows-1252 / Latin-1 (what Excel
    writes for "CSV" on a Spanish Windows)."""
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if "\x00" in text:
        raise InputError(f"{where}: not a text file (it holds NUL bytes); save the sheet as "
                         "CSV UTF-8 or as XLSX.")
    return text


def read_csv_table(content: bytes, *, where: str) -> TextTable:
    """A CSV table as text, separated by ";", "," or tab (whichever the header line uses most;
    Excel's ``sep=;`` first line is honoured). Row numbers are the records' positions as a
    spreadsheet shows them (header = 1)."""
    text = decode_text(content, where=where)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((";", ",", "\t"), key=first.count) if first else ","
    sep = re.fullmatch(r"\s*sep=(.)\s*", first)
    if sep:
        delimiter = sep.group(1)
        text = text.split("\n", 1)[1] if "\n" in text else ""
    try:
        records = list(enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter),
                                 start=1))
    except csv.Error as exc:
        raise InputError(f"{where}: cannot be read as CSV ({exc}); save it again as CSV UTF-8."
                         ) from exc
    return _split_header(records, where)


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as the text a person reads in it (12.0 → "12", TRUE → "true")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def read_xlsx_table(content: bytes, *, where: str) -> TextTable:
    """The site sheet of an XLSX workbook as text: the sheet named like "albergues" or
    "sites", else the first one. Row numbers are the sheet's."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        names = {header_key(n): n for n in book.sheetnames}
        sheet = book[next((names[n] for n in XLSX_SHEET_NAMES if n in names),
                          book.sheetnames[0])]
        sheet.reset_dimensions()  # some writers store wrong dimensions; read every row
        records = [(n, [_cell_text(v) for v in values])
                   for n, values in enumerate(sheet.iter_rows(values_only=True), start=1)]
        book.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, OSError,
            ValueError, TypeError, ParseError, EOFError) as exc:
        raise InputError(f"{where}: cannot be read as an XLSX workbook ({type(exc).__name__}: "
                         f"{exc}); the file may be truncated or not an Excel 2007+ workbook. "
                         "Save it again from Excel or LibreOffice as .xlsx, or as CSV UTF-8."
                         ) from exc
    return _split_header(records, where)


def _series_text(values: pd.Series) -> pd.Series:
    """A typed column (from a vector file) as cell texts, "" where missing."""
    missing = values.isna().to_numpy()
    if pd.api.types.is_bool_dtype(values):
        text = values.map({True: "true", False: "false"})
    elif pd.api.types.is_float_dtype(values):
        number = values.to_numpy(dtype=np.float64, na_value=np.nan)
        whole = np.isfinite(number) & (number == np.round(number))
        text = pd.Series(number.astype(str), index=values.index)
        text[whole] = number[whole].astype(np.int64).astype(str)
    else:
        text = values.astype(object).map(str)
    return text.where(~missing, "").astype(object)


def read_vector_table(content: bytes, *, where: str) -> TextTable:
    """A GeoJSON or GeoPackage of sites (as :func:`write_site_profiles` writes) as text; lon
    and lat come from the point geometry when the layer has no such columns."""
    try:
        with warnings.catch_warnings():
            # GDAL reads the bytes from a name without extension and says so for a GeoPackage.
            warnings.filterwarnings("ignore", "File /vsimem/.*non conformant file extension")
            gdf = gpd.read_file(io.BytesIO(content), engine="pyogrio")
    except (DataSourceError, OSError, ValueError) as exc:
        raise InputError(f"{where}: cannot be read as a vector layer ({exc}).") from exc
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    frame = pd.DataFrame({c: _series_text(gdf[c]) for c in gdf.columns if c != "geometry"})
    keys = {header_key(c) for c in frame.columns}
    points = gdf.geometry.where(gdf.geom_type == "Point")
    for column, axis in (("lon", "x"), ("lat", "y")):
        if keys.isdisjoint(PROFILE_HEADERS[column]):
            frame[column] = _series_text(getattr(points, axis))
    records = [(i + 2, list(r)) for i, r in enumerate(frame.itertuples(index=False, name=None))]
    return _table([str(c) for c in frame.columns], records)


TABLE_READERS: dict[str, Callable[..., TextTable]] = {
    "csv": read_csv_table, "xlsx": read_xlsx_table, "vector": read_vector_table}
SUFFIX_FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
                  ".geojson": "vector", ".json": "vector", ".gpkg": "vector"}


def _source_name(source: str | Path | bytes, filename: str | None) -> str:
    if filename:
        return filename
    return "uploaded site list" if isinstance(source, bytes) else str(source)


def source_bytes(source: str | Path | bytes, *, what: str) -> bytes:
    """The bytes of a table given as a path or as its content (an upload); a file that cannot
    be read is an error naming it and ``what`` it should have been."""
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InputError(f"{source}: cannot read the {what} ({exc}).") from exc


def _read_source(source: str | Path | bytes, filename: str | None) -> tuple[TextTable, str]:
    """The table of a site file (path or bytes) and the name to report it by."""
    where = _source_name(source, filename)
    content = source_bytes(source, what="site list")
    suffix = Path(where).suffix.lower()
    if suffix == ".xls":
        raise InputError(f"{where}: old Excel 97–2003 (.xls) workbooks are not read; save it "
                         "as .xlsx or as CSV UTF-8.")
    if content.startswith(b"PK\x03\x04"):
        kind = "xlsx"
    elif content.startswith(b"SQLite format 3"):
        kind = "vector"
    else:
        kind = SUFFIX_FORMATS.get(suffix, "csv")
    return TABLE_READERS[kind](content, where=where), where


# --------------------------------------------------------------------------- validation


def map_headers(headers: Iterable[str], accepted: Mapping[str, tuple[str, ...]]
                ) -> tuple[dict[str, int], list[RowProblem]]:
    """Column index of each known field (headers compared by :func:`header_key`), and a
    problem for each field headed twice."""
    field_of = {alias: f for f, aliases in accepted.items() for alias in aliases}
    found: dict[str, int] = {}
    problems: list[RowProblem] = []
    headers = list(headers)
    for i, header in enumerate(headers):
        field = field_of.get(header_key(header))
        if field is None:
            continue
        if field in found:
            problems.append(RowProblem(1, None, header, (
                f"this column and {headers[found[field]]!r} both mean {field}; keep one.")))
        else:
            found[field] = i
    return found, problems


def keys_of(values: pd.Series, key: Callable[[str], str] = header_key) -> pd.Series:
    """``key`` (:func:`header_key`) of each cell, computed once per distinct text."""
    distinct = values.unique()
    return values.map(dict(zip(distinct, map(key, distinct), strict=True)))


class _Checker:
    """Collects problems of one table, column by column, and hands out cleaned text."""

    def __init__(self, table: TextTable, columns: dict[str, int]) -> None:
        self.table = table
        self.columns = columns
        self.problems: list[RowProblem] = []
        self._text: dict[str, pd.Series] = {}
        self.ids = self.text("site_id")

    def header(self, field: str) -> str:
        return self.table.headers[self.columns[field]] if field in self.columns else field

    def raw(self, field: str) -> pd.Series:
        if field not in self.columns:
            return pd.Series("", index=self.table.cells.index, dtype=object)
        return self.table.cells[self.columns[field]]

    def text(self, field: str) -> pd.Series:
        """The field's cells, "" where blank or written as unknown (n/d, s/d, NA)."""
        if field not in self._text:
            raw = self.raw(field)
            self._text[field] = raw.where(~keys_of(raw).isin(UNKNOWN_WORDS), "")
        return self._text[field]

    def flag(self, mask: np.ndarray | pd.Series, field: str | None,
             message: Callable[[int], str]) -> None:
        column = self.header(field) if field else None
        for i in map(int, np.flatnonzero(np.asarray(mask, dtype=bool))):
            site = self.ids.iloc[i] or None
            self.problems.append(RowProblem(int(self.table.rows[i]), site, column, message(i)))

    def words(self, field: str, vocabulary: Mapping[str, Any], what: str) -> pd.Series:
        """The field mapped through ``vocabulary`` (keys by :func:`header_key`); NA blank."""
        text = self.text(field)
        value = keys_of(text).map(vocabulary)
        accepted = ", ".join(dict.fromkeys(vocabulary))
        self.flag((text != "") & value.isna(), field,
                  lambda i: f"{text.iloc[i]!r} is not {what}; write one of: {accepted}.")
        return value.where(text != "")

    def numbers(self, field: str, *, whole: bool, signed: bool = False) -> pd.Series:
        """The field as numbers (float, NaN where blank or bad), ≥ 0 unless ``signed``; a
        decimal comma ("13,7") is read as a point."""
        text = self.text(field)
        value = pd.to_numeric(text.str.replace(r"^([+-]?\d+),(\d+)$", r"\1.\2", regex=True),
                              errors="coerce").to_numpy(np.float64)
        given = (text != "").to_numpy().copy()
        if not signed:  # coordinates carry decimals, never thousands
            grouped = text.str.fullmatch(THOUSANDS_GROUPS).to_numpy(bool)
            self.flag(grouped, field, lambda i: (
                f"{text.iloc[i]!r} is ambiguous: a thousands separator or a decimal? Write the "
                "number without separators (2400), with a decimal comma or point only for a "
                "fraction (2,4)."))
            given &= ~grouped
        finite = np.isfinite(value)
        self.flag(given & ~finite, field, lambda i: (
            f"{text.iloc[i]!r} is not a number; write digits only (no units or thousands "
            "separators), or leave it blank if unknown."))
        ok = given & finite
        if not signed:
            negative = ok & (value < 0)
            self.flag(negative, field,
                      lambda i: f"{text.iloc[i]!r} is negative; it must be 0 or more.")
            ok &= ~negative
        if whole:
            fraction = ok & (value != np.floor(value))
            self.flag(fraction, field,
                      lambda i: f"{text.iloc[i]!r} is not a whole number; count whole units.")
            ok &= ~fraction
        return pd.Series(np.where(ok, value, np.nan), index=text.index)


def _check_required(check: _Checker) -> None:
    for field in REQUIRED_COLUMNS:
        if field not in check.columns:
            accepted = ", ".join(PROFILE_HEADERS[field])
            check.problems.append(RowProblem(1, None, field, (
                f"required column {field} is missing; head it with one of: {accepted}.")))
        else:
            blank = check.text(field) == ""
            check.flag(blank, field, lambda i: "is blank; this value is required.")


def _check_unique_ids(check: _Checker) -> None:
    ids = check.ids
    repeated = (ids != "") & ids.duplicated(keep=False)
    rows = pd.Series(check.table.rows, index=ids.index)
    check.flag(repeated, "site_id", lambda i: (
        f"site_id {ids.iloc[i]!r} is used on rows "
        f"{', '.join(map(str, rows[ids == ids.iloc[i]]))}; each site needs its own id."))


def _check_coordinates(check: _Checker) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """lon, lat (float) and which rows hold a point inside El Salvador's bounding box."""
    lon = check.numbers("lon", whole=False, signed=True)
    lat = check.numbers("lat", whole=False, signed=True)
    lon_text, lat_text = check.text("lon"), check.text("lat")
    w, s, e, n = EL_SALVADOR_BBOX
    both = (lon.notna() & lat.notna()).to_numpy()
    x, y = lon.to_numpy(), lat.to_numpy()
    swapped = both & (y >= w) & (y <= e) & (x >= s) & (x <= n)
    check.flag(swapped, "lon", lambda i: (
        f"lon {lon_text.iloc[i]} and lat {lat_text.iloc[i]} look swapped; El Salvador lies at "
        f"lon {w}…{e}, lat {s}…{n}."))
    east = both & ~swapped & (x >= -e) & (x <= -w)
    check.flag(east, "lon", lambda i: (
        f"lon {lon_text.iloc[i]} is east of Greenwich; El Salvador's longitudes are negative "
        f"(west), e.g. -{lon_text.iloc[i].lstrip('+')}."))
    for field, value, low, high in (("lon", x, w, e), ("lat", y, s, n)):
        outside = both & ~swapped & ~east & ((value < low) | (value > high))
        check.flag(outside, field, _outside_message(field, check.text(field), low, high))
    inside = both & (x >= w) & (x <= e) & (y >= s) & (y <= n)
    return lon, lat, inside


def _outside_message(field: str, text: pd.Series, low: float, high: float
                     ) -> Callable[[int], str]:
    return lambda i: (f"{field} {text.iloc[i]} lies outside El Salvador ({low}…{high}); check "
                      "the coordinates (decimal degrees, WGS 84).")


def _containing_municipality(lon: np.ndarray, lat: np.ndarray, municipalities: gpd.GeoDataFrame
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Municipality id holding each point (a point just off the generalised coastline: the
    nearest within :data:`MAX_SNAP_M`; None beyond) and the distance to it, m."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    joined = gpd.sjoin(points, municipalities[["id", "geometry"]], how="left",
                       predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    chosen = joined["id"].to_numpy(dtype=object)
    distance = np.zeros(len(points))
    off = pd.isna(chosen)
    if off.any():
        near = gpd.sjoin_nearest(points.loc[off].to_crs(METRIC_CRS),
                                 municipalities[["id", "geometry"]].to_crs(METRIC_CRS),
                                 how="left", distance_col="distance_m")
        near = near[~near.index.duplicated(keep="first")]
        distance[off] = near["distance_m"].to_numpy()
        chosen[off] = np.where(near["distance_m"].to_numpy() <= MAX_SNAP_M,
                               near["id"].to_numpy(dtype=object), None)
    return chosen, distance


def _municipality_matches(given: str, rows: pd.DataFrame) -> np.ndarray:
    """Which municipalities (rows of :func:`load_municipalities`) ``given`` names: by id,
    DIGESTYC code or official name (:func:`place_key`)."""
    text = given.strip()
    code = text.zfill(4) if text.isdigit() else None
    return ((rows["id"] == text) | (rows["code"] == code)
            | (keys_of(rows["name"], place_key) == place_key(text))).to_numpy()


def _place_sites(check: _Checker, lon: pd.Series, lat: pd.Series, inside: np.ndarray,
                 municipalities: gpd.GeoDataFrame) -> pd.Series:
    """The municipality id of each site from its point (None where it has no valid point),
    checked against the municipality and department the list names."""
    by_id = municipalities.set_index("id", drop=False)
    chosen = pd.Series([None] * len(lon), index=lon.index, dtype=object)
    if not inside.any():
        return chosen
    ids, distance = _containing_municipality(lon.to_numpy()[inside], lat.to_numpy()[inside],
                                             municipalities)
    chosen[inside] = ids
    far = np.zeros(len(lon), dtype=bool)
    far[np.flatnonzero(inside)[pd.isna(ids)]] = True
    where = dict(zip(np.flatnonzero(inside), distance, strict=True))
    check.flag(far, "lon", lambda i: (
        f"the point (lon {lon.iloc[i]}, lat {lat.iloc[i]}) lies {where[i] / 1000:.1f} km from "
        "every municipality of El Salvador (abroad or at sea); check the coordinates."))

    given = check.text("municipality")
    placed = chosen.notna() & (given != "")
    official = keys_of(chosen[placed].map(by_id["name"]), place_key)
    code = chosen[placed].map(by_id["code"])
    same = ((given[placed] == chosen[placed]) | (given[placed].str.zfill(4) == code)
            | (keys_of(given[placed], place_key) == official))
    metric = municipalities.to_crs(METRIC_CRS).geometry
    contradicted: dict[int, str] = {}
    for i in same.index[~same.to_numpy()]:
        matches = _municipality_matches(given[i], municipalities)
        point = gpd.GeoSeries(gpd.points_from_xy([lon[i]], [lat[i]]), crs="EPSG:4326"
                              ).to_crs(METRIC_CRS).iloc[0]
        near = metric[matches].distance(point)
        if len(near) and near.min() <= BOUNDARY_TOLERANCE_M:
            chosen[i] = municipalities["id"][near.idxmin()]
            continue
        holder = by_id.loc[chosen[i]]
        what = "is another municipality" if matches.any() else (
            "names no municipality of El Salvador")
        contradicted[i] = (f"{given[i]!r} {what}, but the point (lon {lon[i]}, lat {lat[i]}) "
                           f"lies in {holder['name']} ({holder['department']}); correct the "
                           "municipality or the coordinates.")
    check.flag(chosen.index.isin(list(contradicted)), "municipality", contradicted.__getitem__)

    department = check.text("department")
    placed = chosen.notna() & (department != "")
    rows = by_id.loc[chosen[placed]]
    same = ((keys_of(department[placed], place_key).to_numpy()
             == keys_of(rows["department"], place_key))
            | (department[placed].str.upper().to_numpy() == rows["department_code"])
            | (department[placed].str.zfill(2).to_numpy() == rows["code"].str[:2]))
    bad = np.zeros(len(chosen), dtype=bool)
    bad[np.flatnonzero(placed.to_numpy())[~same.to_numpy()]] = True
    check.flag(bad, "department", lambda i: (
        f"{department.iloc[i]!r} is not the department of the site's municipality "
        f"{by_id.loc[chosen.iloc[i], 'name']} ({by_id.loc[chosen.iloc[i], 'department']}); "
        "correct the department or the coordinates."))
    return chosen


def _assemble(check: _Checker, lon: pd.Series, lat: pd.Series, municipality_id: pd.Series,
              parsed: dict[str, pd.Series], municipalities: gpd.GeoDataFrame
              ) -> gpd.GeoDataFrame:
    place = municipalities.set_index("id").loc[municipality_id.to_numpy()]
    kind = check.text("kind")
    frame = pd.DataFrame({
        "site_id": check.ids.astype(str),
        "name": check.text("name").astype(str),
        "lon": lon.astype(np.float64),
        "lat": lat.astype(np.float64),
        "municipality_id": municipality_id.astype(str),
        "municipality": place["name"].to_numpy(),
        "department": place["department"].to_numpy(),
        "department_code": place["department_code"].to_numpy(),
        "kind": keys_of(kind).map(KIND_WORDS).fillna(kind).where(kind != ""),
        **{c: parsed[c].astype("Int64") for c in COUNT_COLUMNS},
        "covered_area_m2": parsed["covered_area_m2"].astype("Float64"),
        **{c: parsed[c].astype("boolean") for c in BOOLEAN_COLUMNS},
        "condition": parsed["condition"],
        "capacity_source": parsed["capacity_source"].fillna("census"),
        "notes": check.text("notes").astype(str),
    }).reset_index(drop=True)
    return profile_frame(frame)


def profile_frame(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    """A profile table in contract order and dtypes, as EPSG:4326 points at lon/lat."""
    out = frame.loc[:, list(PROFILE_COLUMNS)].copy()
    for column in COUNT_COLUMNS:
        out[column] = out[column].astype("Int64")
    out["covered_area_m2"] = out["covered_area_m2"].astype("Float64")
    for column in BOOLEAN_COLUMNS:
        out[column] = out[column].astype("boolean")
    for column in ("kind", "condition"):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["lon"], out["lat"]),
                            crs="EPSG:4326")


def _validate_profiles(table: TextTable, *, where: str) -> gpd.GeoDataFrame:
    columns, header_problems = map_headers(table.headers, PROFILE_HEADERS)
    check = _Checker(table, columns)
    check.problems += header_problems
    if not len(table.cells):
        check.problems.append(RowProblem(1, None, None, (
            "the file has a header but no sites; add one row per site below it.")))
    _check_required(check)
    check.flag(table.overflow, None, lambda i: (
        "has more cells than the header has columns; a value probably holds the separator "
        "(e.g. a decimal comma in a comma-separated file); quote it or use ';'."))
    _check_unique_ids(check)
    lon, lat, inside = _check_coordinates(check)
    parsed: dict[str, pd.Series] = {
        c: check.numbers(c, whole=True) for c in COUNT_COLUMNS}
    parsed["covered_area_m2"] = check.numbers("covered_area_m2", whole=False)
    for column in BOOLEAN_COLUMNS:
        parsed[column] = check.words(column, BOOLEAN_WORDS, "yes or no")
    parsed["condition"] = check.words("condition", CONDITION_WORDS, "a known condition")
    parsed["capacity_source"] = check.words("capacity_source", CAPACITY_SOURCE_WORDS,
                                            "a capacity source")
    municipalities = load_municipalities()
    municipality_id = _place_sites(check, lon, lat, inside, municipalities)
    if check.problems:
        problems = sorted(check.problems, key=lambda p: (p.row, _column_order(check, p.column)))
        raise SiteProfileError(problems, what=f"{where}: the site list")
    return _assemble(check, lon, lat, municipality_id, parsed, municipalities)


def _column_order(check: _Checker, column: str | None) -> int:
    if column is None:
        return -1
    headers = list(check.table.headers)
    return headers.index(column) if column in headers else len(headers)


def _read_checked(source: str | Path | bytes, filename: str | None
                  ) -> tuple[gpd.GeoDataFrame, TextTable, str]:
    try:
        table, where = _read_source(source, filename)
    except InputError as exc:
        raise SiteProfileError([RowProblem(0, None, None, str(exc))],
                               what=_source_name(source, filename)) from exc
    profiles = _validate_profiles(table, where=where)
    log.info("site_profiles_read", extra={"source": where, "sites": len(profiles)})
    return profiles, table, where


def read_site_profiles(source: str | Path | bytes, *, filename: str | None = None
                       ) -> gpd.GeoDataFrame:
    """The official list of collective centres as a site profile frame (``capacity_source``
    "census", unless a ``capacity_source`` column says "estimate"), from CSV (UTF-8, UTF-8
    with BOM or Latin-1; ``;``, ``,`` or tab separated), XLSX (the sheet named like
    "albergues"/"sites", else the first) or a GeoJSON/GeoPackage written by
    :func:`write_site_profiles`.

    Headers in English (the contract's names) or Spanish (:data:`PROFILE_HEADERS`), compared
    ignoring case, accents, spaces and punctuation. Yes/no cells accept sí/si/no/yes/y/n/true/
    false/verdadero/falso/1/0/x; condition bueno/regular/malo (good/fair/poor); a blank cell
    (or n/d, s/d, NA) stays NA — unknown, never a guess. Municipality and department are the
    official ones of the municipality that holds the point; a municipality or department the
    list gives must agree with it (name, geoBoundaries id or DIGESTYC code; a point within
    :data:`BOUNDARY_TOLERANCE_M` of the named municipality takes that one).

    ``source`` is a path or the file's bytes (then ``filename`` tells the format and names the
    file in messages). Raises :class:`SiteProfileError` naming every bad row and column at
    once (row numbers as the spreadsheet shows them: header = 1); nothing is returned then.
    """
    return _read_checked(source, filename)[0]


def read_site_centres(source: str | Path | bytes, *, area_per_person_m2: float,
                      filename: str | None = None) -> gpd.GeoDataFrame:
    """The centres frame (:func:`centres_from_profiles`) of a site file, with the occupancy
    columns ``people_present`` (personas_presentes) and ``site_status`` (estado_albergue: open,
    full, closed) when the file carries them — as the service hands a run its live sites."""
    profiles, table, where = _read_checked(source, filename)
    columns, problems = map_headers(
        table.headers, {**LIVE_HEADERS, "site_id": PROFILE_HEADERS["site_id"]})
    check = _Checker(table, columns)
    check.problems += problems
    present = status = None
    if "people_present" in columns:
        present = check.numbers("people_present", whole=True)
    if "site_status" in columns:
        status = check.words("site_status", SITE_STATUS_WORDS, "a site status")
    if check.problems:
        raise SiteProfileError(check.problems, what=f"{where}: the occupancy columns")
    index = pd.Index(profiles["site_id"], name="site_id")
    return centres_from_profiles(
        profiles,
        people_present=None if present is None else present.set_axis(index),
        site_status=None if status is None else status.set_axis(index),
        area_per_person_m2=area_per_person_m2)


def is_site_profile_file(path: str | Path) -> bool:
    """Whether ``path`` is a site-profile file: a CSV/XLSX table, or a vector layer with a
    ``site_id`` field (the shipped facilities layer has none)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if SUFFIX_FORMATS.get(suffix) in ("csv", "xlsx") or suffix == ".xls":
        return True
    try:
        from pyogrio import read_info

        fields = read_info(path)["fields"]
    except (DataSourceError, OSError, ValueError):
        return False
    return "site_id" in set(fields)


# --------------------------------------------------------------------------- defaults, centres


def default_site_profiles() -> gpd.GeoDataFrame:
    """The shipped sites (:func:`floodwarn.io.gis_data.load_collective_centres`: MINSAL public
    buildings) as profiles: ``capacity_people`` the estimate by building kind (usable area /
    3.5 m² per person, models/collective_centres.yaml; NA for kinds that are never shelters),
    nothing surveyed (area, services and condition NA), ``usable`` the kind's shelter flag,
    ``capacity_source`` "estimate"."""
    centres = load_collective_centres()
    n = len(centres)
    unknown_count = pd.array([pd.NA] * n, dtype="Int64")
    unknown_flag = pd.array([pd.NA] * n, dtype="boolean")
    frame = pd.DataFrame({
        "site_id": centres["id"].astype(str),
        "name": centres["name"],
        "lon": centres.geometry.x,
        "lat": centres.geometry.y,
        "municipality_id": centres["municipality_id"],
        "municipality": centres["municipality"],
        "department": centres["department"],
        "department_code": centres["department_code"],
        "kind": centres["kind"],
        # A building that is no collective centre (hospital, health unit) has no capacity to
        # state: unknown, not "0 places".
        "capacity_people": centres["capacity"].astype("Int64").where(
            centres["shelter"].to_numpy(), pd.NA),
        "covered_area_m2": pd.array([pd.NA] * n, dtype="Float64"),
        **{c: unknown_count for c in COUNT_COLUMNS if c != "capacity_people"},
        **{c: unknown_flag for c in BOOLEAN_COLUMNS if c != "usable"},
        "usable": centres["shelter"].astype("boolean"),
        "condition": None,
        "capacity_source": "estimate",
        "notes": ESTIMATE_NOTE,
    })
    return profile_frame(frame)


def _by_site(values: pd.Series | None, ids: pd.Index, what: str) -> pd.Series:
    """``values`` (indexed by site_id) in the order of ``ids``; NA for sites it lacks."""
    if values is None:
        return pd.Series([pd.NA] * len(ids), index=ids, dtype=object)
    values = values.set_axis(values.index.astype(str))
    if values.index.duplicated().any():
        dup = values.index[values.index.duplicated()][0]
        raise InputError(f"{what}: site_id {dup!r} appears more than once; give one value per "
                         "site.")
    return values.reindex(ids)


def centres_from_profiles(
    profiles: pd.DataFrame,
    *,
    people_present: pd.Series | None = None,
    site_status: pd.Series | None = None,
    area_per_person_m2: float,
) -> gpd.GeoDataFrame:
    """The centres frame the risk chain uses, from site profiles and their latest occupancy.

    Columns as :func:`floodwarn.io.gis_data.load_collective_centres` (``id`` = site_id as str,
    ``name``, ``kind``, ``capacity``, ``shelter``, ``category`` = kind, ``address`` = "",
    municipality and department, geometry) plus ``capacity_profiled``, ``capacity_basis``,
    ``capacity_source``, ``people_present`` (Int64) and ``site_status``:

    - profiled capacity = ``capacity_people`` (basis "reported"); when unknown but the covered
      area is known, floor(covered_area_m2 / area_per_person_m2) (basis "area": Sphere 2018,
      Shelter and settlement standard 3, 3.5 m² of covered living space per person); when both
      are unknown, 0 (basis "unknown": never a destination);
    - ``capacity`` (what the evacuation plan may still send) = max(profiled − people_present,
      0), people_present NA counting as 0;
    - ``shelter`` = ``usable`` is True (NA is not) and ``site_status`` is neither closed nor
      full.

    ``people_present`` and ``site_status`` are Series indexed by site_id (sites they lack: NA).

    References:
        Sphere Association (2018) The Sphere Handbook, Shelter and settlement standard 3.
        CCCM Cluster (2010) Collective Centre Guidelines (capacity by covered area).
    """
    if not area_per_person_m2 > 0:
        raise InputError(f"area_per_person_m2 is {area_per_person_m2}; it must be > 0 (Sphere "
                         "2018: 3.5 m² per person).")
    ids = pd.Index(profiles["site_id"].astype(str), name="site_id")
    present = pd.to_numeric(_by_site(people_present, ids, "people_present"),
                            errors="coerce").astype("Float64")
    if (present < 0).any():
        bad = present.index[(present < 0).fillna(False).to_numpy()][0]
        raise InputError(f"people_present of site {bad!r} is negative; a count is 0 or more.")
    status = _by_site(site_status, ids, "site_status")
    unknown_status = status.notna() & ~status.isin(SITE_STATUSES)
    if unknown_status.any():
        bad = status.index[unknown_status.to_numpy()][0]
        raise InputError(f"site_status of site {bad!r} is {status[bad]!r}; use one of "
                         f"{', '.join(SITE_STATUSES)}.")
    reported = profiles["capacity_people"].astype("Float64").to_numpy(np.float64, na_value=np.nan)
    area = profiles["covered_area_m2"].astype("Float64").to_numpy(np.float64, na_value=np.nan)
    from_area = np.floor(area / area_per_person_m2 + FLOOR_TOLERANCE)
    profiled = np.where(np.isfinite(reported), reported,
                        np.where(np.isfinite(from_area), from_area, 0)).astype(np.int64)
    basis = np.select([np.isfinite(reported), np.isfinite(from_area)], ["reported", "area"],
                      "unknown")
    occupied = present.fillna(0).to_numpy(np.float64)
    usable = profiles["usable"].astype("boolean").fillna(False).to_numpy(bool)
    geometry = (profiles.geometry.array if isinstance(profiles, gpd.GeoDataFrame)
                else gpd.points_from_xy(profiles["lon"], profiles["lat"]))
    out = gpd.GeoDataFrame({
        "id": ids.to_numpy(dtype=object),
        "name": profiles["name"].to_numpy(dtype=object),
        "kind": profiles["kind"].to_numpy(dtype=object),
        "capacity": np.maximum(profiled - occupied, 0).astype(np.int64),
        "shelter": usable & ~status.isin(["closed", "full"]).to_numpy(bool),
        "category": profiles["kind"].to_numpy(dtype=object),
        "address": "",
        "municipality_id": profiles["municipality_id"].to_numpy(dtype=object),
        "municipality": profiles["municipality"].to_numpy(dtype=object),
        "department": profiles["department"].to_numpy(dtype=object),
        "department_code": profiles["department_code"].to_numpy(dtype=object),
        "capacity_profiled": profiled,
        "capacity_basis": basis,
        "capacity_source": profiles["capacity_source"].to_numpy(dtype=object),
        "people_present": present.round().astype("Int64").array,
        "site_status": status.astype(object).where(status.notna(), None).to_numpy(),
    }, geometry=geometry, crs="EPSG:4326")
    return out


def write_site_profiles(profiles: pd.DataFrame, path: str | Path) -> Path:
    """Write profiles (and the optional ``people_present``, ``site_status`` columns) as a
    GeoJSON (or GeoPackage for ``.gpkg``) that :func:`read_site_profiles` and the forecast
    chain (:func:`floodwarn.io.gis_data.load_collective_centres`) read back."""
    path = Path(path)
    driver = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}.get(
        path.suffix.lower())
    if driver is None:
        raise InputError(f"{path}: write site profiles as .geojson or .gpkg.")
    columns = list(PROFILE_COLUMNS) + [c for c in LIVE_HEADERS if c in profiles.columns]
    missing = [c for c in PROFILE_COLUMNS if c not in profiles.columns]
    if missing:
        raise InputError(f"site profiles lack column(s) {missing}; build them with "
                         "read_site_profiles or default_site_profiles.")
    table = pd.DataFrame(profile_frame(pd.DataFrame(profiles)).drop(columns="geometry"))
    for column in columns[len(PROFILE_COLUMNS):]:
        table[column] = profiles[column].to_numpy()
    gdf = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(table["lon"], table["lat"]),
                           crs="EPSG:4326")
    try:
        gdf.to_file(path, driver=driver, engine="pyogrio")
    except (DataSourceError, OSError) as exc:
        raise DataFileError(f"{path}: cannot write the site profiles ({exc}).") from exc
    return path
