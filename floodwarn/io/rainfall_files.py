"""Which files a rain forecast is made of, and how several files become one forecast.

A forecast is given as one path — a file, a folder, or a glob pattern — or as a list of
files. :func:`rain_files` resolves it to :class:`RainFiles`: the files, sorted, all of one
format (NetCDF, GRIB or GeoTIFF) by their suffix (:data:`RAIN_FORMATS`) or, for names without
a known suffix (WRF writes ``wrfout_d01_2020-05-30_12:00:00``; NOMADS ``gec00.t00z.pgrb2s.
0p25.f003``), by their first bytes (:data:`MAGIC_BYTES`). Mixed formats are refused.

:func:`assemble_rainfall` joins what the readers found in each file (one
:class:`~floodwarn.rainfall.forecast.RawRainfall` per file) by member and valid time;
:func:`check_complete` is the rule both it and the GRIB reader apply: every member holds every
step exactly once, and an error names every missing (member, step) and every duplicate.

This module imports no reader (the readers import it).

References
----------
Unidata (2023) NetCDF file format specifications: classic ``CDF\\x01``/``CDF\\x02``/``CDF\\x05``
and netCDF-4 (HDF5, ``\\x89HDF\\r\\n\\x1a\\n``) signatures.
WMO (2023) Manual on Codes, vol. I.2, FM 92 GRIB: section 0 starts with ``GRIB``.
Adobe (1992) TIFF revision 6.0, §2 (``II*\\0``/``MM\\0*``); BigTIFF (``II+\\0``).
"""

from __future__ import annotations

import glob
import os
from collections import Counter
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from floodwarn.errors import DataFileError, InputError
from floodwarn.io.rain_limits import check_declared_cells, file_name, is_pattern
from floodwarn.logs import get_logger
from floodwarn.rainfall.forecast import RawRainfall, normalise_units

log = get_logger(__name__)

#: Rain file suffix (lower case) → its format. :data:`floodwarn.io.rainfall.RAIN_READERS` maps
#: the same suffixes, in this order, to the readers.
RAIN_FORMATS: dict[str, str] = {
    ".nc": "NetCDF",
    ".nc4": "NetCDF",
    ".netcdf": "NetCDF",
    ".grib": "GRIB",
    ".grib1": "GRIB",
    ".grib2": "GRIB",
    ".grb": "GRIB",
    ".grb2": "GRIB",
    ".tif": "GeoTIFF",
    ".tiff": "GeoTIFF",
}

#: A file's first four bytes → its format, for names without a known suffix.
MAGIC_BYTES: dict[bytes, str] = {
    b"CDF\x01": "NetCDF",  # classic
    b"CDF\x02": "NetCDF",  # 64-bit offset (what WRF writes by default)
    b"CDF\x05": "NetCDF",  # 64-bit data (CDF-5)
    b"\x89HDF": "NetCDF",  # netCDF-4 (HDF5)
    b"GRIB": "GRIB",
    b"II*\x00": "GeoTIFF",
    b"MM\x00*": "GeoTIFF",
    b"II+\x00": "GeoTIFF",  # BigTIFF
    b"MM\x00+": "GeoTIFF",
}

#: A forecast as callers give it: one path (file, folder, pattern) or a list of files.
RainSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
SourceKind = Literal["file", "folder", "pattern", "list"]

_INTRO: dict[str, str] = {"folder": "the folder holds", "pattern": "as a pattern it matches",
                          "list": "the list holds"}


@dataclass(frozen=True)
class RainFiles:
    """The files of one forecast: ``files`` sorted, all of ``format``; ``name`` is how
    messages name the forecast (a file, folder or pattern name — never the folders above it —
    or, for a list, its first and last file); ``source`` the path or pattern as given (kept in
    the forecast's metadata); ``kind`` says which of these it was."""

    files: tuple[Path, ...]
    format: str
    kind: SourceKind
    name: str
    source: str


def sniff_format(path: Path) -> str | None:
    """The format a file's first bytes show (:data:`MAGIC_BYTES`), or None."""
    try:
        with open(path, "rb") as fh:
            return MAGIC_BYTES.get(fh.read(4))
    except OSError:
        return None


def file_format(path: Path) -> str | None:
    """A file's format: by its suffix (:data:`RAIN_FORMATS`), else by its first bytes."""
    return RAIN_FORMATS.get(path.suffix.lower()) or sniff_format(path)


def _formats_known() -> str:
    by_format: dict[str, list[str]] = {}
    for suffix, fmt in RAIN_FORMATS.items():
        by_format.setdefault(fmt, []).append(suffix)
    return "; ".join(f"{fmt} ({', '.join(suffixes)})" for fmt, suffixes in by_format.items())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _one_format(name: str, kind: SourceKind, files: list[Path]) -> str:
    """The one format of ``files`` (already known to have one each), else an error naming the
    files that differ from the most common format."""
    found = {f: file_format(f) for f in files}
    unknown = [f.name for f, fmt in found.items() if fmt is None]
    if unknown:
        raise InputError(
            f"{name}: {_INTRO[kind]} files of no rain format floodwarn reads ({unknown[:5]}"
            f"{' …' if len(unknown) > 5 else ''}); it reads {_formats_known()}, and NetCDF or "
            "GRIB files without these suffixes. Leave the other files out (narrow the pattern)."
        )
    formats = {f: str(fmt) for f, fmt in found.items()}
    counts = Counter(formats.values())
    if len(counts) == 1:
        return next(iter(counts))
    first = formats[files[0]]
    main = max(counts, key=lambda fmt: (counts[fmt], fmt == first))
    others = [f.name for f, fmt in formats.items() if fmt != main]
    raise InputError(
        f"{name}: {_INTRO[kind]} files that are not {main}s ({others[:5]}"
        f"{' …' if len(others) > 5 else ''}) besides {_plural(counts[main], main + ' file')}; "
        f"the files of one forecast must share one format — give the {main} files only."
    )


def _folder(path: Path) -> RainFiles:
    """A folder's rain files. A folder holding GeoTIFFs is a stack of them, as it always was:
    other files beside them are left out (logged). Otherwise its NetCDF or GRIB files, which
    must be of one format."""
    name = file_name(path)
    files = sorted(f for f in path.iterdir()
                   if not f.name.startswith(".") and f.is_file() and file_format(f) is not None)
    if not files:
        raise DataFileError(f"{name}: the folder holds no rain forecast files ({_formats_known()};"
                            " or NetCDF/GRIB files without these suffixes).")
    tiffs = [f for f in files if file_format(f) == "GeoTIFF"]
    if tiffs and len(tiffs) < len(files):
        log.warning("files beside a folder's GeoTIFF stack left out",
                    extra={"folder": name, "files": [f.name for f in files if f not in tiffs]})
        files = tiffs
    return RainFiles(tuple(files), _one_format(name, "folder", files), "folder", name, str(path))


def _pattern(pattern: str) -> RainFiles:
    name = file_name(pattern)
    files = sorted(Path(m) for m in glob.glob(pattern) if Path(m).is_file())
    if not files:
        raise DataFileError(f"{name}: no such file, and as a pattern it matches no file.")
    return RainFiles(tuple(files), _one_format(name, "pattern", files), "pattern", name, pattern)


def _regular_file(path: Path) -> Path:
    if not path.exists():
        raise DataFileError(f"{file_name(path)}: no such file.")
    if not path.is_file():
        raise DataFileError(f"{file_name(path)}: is not a regular file; a list of rain files "
                            "holds files only (give a folder or a pattern on its own).")
    return path


def _single_file(path: Path) -> RainFiles:
    name = file_name(path)
    _regular_file(path)
    fmt = file_format(path)
    if fmt is None:
        suffix = path.suffix.lower()
        said = f"format {suffix!r}" if suffix else "format (no suffix, and its first bytes are "\
            "neither NetCDF, GRIB nor TIFF)"
        raise InputError(
            f"{name}: unknown rain forecast {said}; floodwarn reads {_formats_known()}, files "
            "without these suffixes that are NetCDF or GRIB inside (wrfout_d01_…), and "
            "folders, patterns or lists of files of one format."
        )
    return RainFiles((path,), fmt, "file", name, str(path))


def list_label(files: Sequence[Path]) -> str:
    """How messages name a list of files: ``first … last (n files)``."""
    if len(files) == 1:
        return files[0].name
    return f"{files[0].name} … {files[-1].name} ({len(files)} files)"


def rain_files(source: RainSource) -> RainFiles:
    """Resolve a forecast given as a path or a list of paths to its files, of one format.

    A path that exists is that file or folder, whatever characters its name holds; it is a
    glob pattern only when nothing by that exact name exists. A folder's files are those of a
    known format (hidden files and others, such as ``.idx`` indexes, are left out; a folder
    holding GeoTIFFs is the stack of its GeoTIFFs, as it always was); a pattern or a list must
    match rain files only. A file's format comes from its suffix
    (:data:`RAIN_FORMATS`) or, without a known suffix, from its first bytes
    (:data:`MAGIC_BYTES`). Several formats at once are refused, naming the odd files.
    """
    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        path = Path(text)
        if path.is_dir():
            return _folder(path)
        if is_pattern(text):
            return _pattern(text)
        return _single_file(path)
    if not isinstance(source, Sequence) or not source:
        raise InputError(f"a rain forecast is a path or a non-empty list of paths; got "
                         f"{source!r}.")
    paths = [_regular_file(Path(os.fspath(p))) for p in source]
    if len(paths) == 1:
        return _single_file(paths[0])
    counts = Counter(p.resolve() for p in paths)
    repeated = sorted(p.name for p, n in counts.items() if n > 1)
    if repeated:
        raise InputError(f"{list_label(sorted(paths))}: the list names {repeated} more than "
                         "once; give each file once.")
    files = sorted(paths)
    name = list_label(files)
    common = Path(os.path.commonpath([str(p.resolve()) for p in files]))
    return RainFiles(tuple(files), _one_format(name, "list", files), "list", name,
                     str(common / name))


def describe_rain_source(source: RainSource) -> str:
    """One line saying what a forecast path, pattern or list resolves to, e.g.
    ``gec*.f0*: 6 GRIB files (gec00.f003, gec00.f006, … gep02.f006)`` — for the CLI to show
    what it is about to read. Raises the errors :func:`rain_files` raises."""
    found = rain_files(source)
    names = [f.name for f in found.files]
    shown = ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])}, … {names[-1]}"
    what = _plural(len(names), found.format + " file")
    if found.kind == "list":
        return f"a list of {what} ({shown})"
    return f"{found.name}: {what} ({shown})"


# ------------------------------------------------------------------------ member × step rule


def _seconds(t: Any) -> Any:
    """A time (datetime64 of any unit, or ISO text) as numpy datetime64[s]."""
    return np.asarray(t).astype("datetime64[s]")[()]


def _iso(t: Any) -> str:
    return str(np.datetime_as_string(_seconds(t), unit="m"))


def _step_label(t: np.datetime64, reference: np.datetime64 | None) -> str:
    if reference is None:
        return _iso(t)
    hours = (_seconds(t) - _seconds(reference)) / np.timedelta64(1, "h")
    return f"{_iso(t)} (+{hours:g} h)"


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive runs of whole numbers: [0, 1, 2, 5] → [(0, 2), (5, 5)]."""
    runs: list[tuple[int, int]] = []
    for i in sorted(indices):
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _steps_text(indices: Sequence[int], ends: np.ndarray, reference: np.datetime64 | None) -> str:
    parts = []
    for lo, hi in _runs(indices):
        if hi - lo >= 2:
            parts.append(f"{_step_label(ends[lo], reference)} to {_step_label(ends[hi], reference)}"
                         f" ({hi - lo + 1} steps)")
        else:
            parts.extend(_step_label(ends[i], reference) for i in range(lo, hi + 1))
    return ", ".join(parts)


def _members_text(members: Sequence[int]) -> str:
    texts = [str(lo) if lo == hi else f"{lo}-{hi}" if hi > lo + 1 else f"{lo}, {hi}"
             for lo, hi in _runs(members)]
    return ("member " if len(members) == 1 else "members ") + ", ".join(texts)


#: Duplicated (member, step) pairs named one by one in an error; the rest are counted.
MAX_DUPLICATES_LISTED = 4


def check_complete(name: str, present: Mapping[int, Collection[np.datetime64]], *,
                   duplicates: Sequence[str] = (), reference: np.datetime64 | None = None,
                   parts: str = "files") -> tuple[np.ndarray, np.ndarray]:
    """The members (sorted) and step ends (sorted) of a forecast assembled from pieces, or an
    :class:`InputError` naming every problem.

    ``present`` maps each member number to the step ends (UTC) some piece holds for it;
    ``duplicates`` describes pieces found twice (made by the caller, who knows the files).
    Every member must hold every step that any member holds, and member numbers must run
    without gaps from the lowest to the highest (a gap is a member whose files are missing).
    Missing steps are listed per member, members with the same gaps together, consecutive
    steps as a range, so that the message names every missing (member, step) compactly.
    """
    members = np.array(sorted(present), dtype=np.int64)
    ends = np.array(sorted({_seconds(t) for ts in present.values() for t in ts}),
                    dtype="datetime64[s]")
    problems: list[str] = []
    if members.size:
        gaps = sorted(set(range(int(members[0]), int(members[-1]) + 1)) - set(members.tolist()))
        if gaps:
            problems.append(f"{_members_text(gaps)} {'is' if len(gaps) == 1 else 'are'} missing"
                            f" (no {parts[:-1] if parts.endswith('s') else parts} holds "
                            f"{'it' if len(gaps) == 1 else 'them'})")
    index = {t: i for i, t in enumerate(ends.tolist())}
    lacking: dict[tuple[int, ...], list[int]] = {}
    for member in members.tolist():
        have = {index[_seconds(t).item()] for t in present[member]}
        missing = tuple(i for i in range(ends.size) if i not in have)
        if missing:
            lacking.setdefault(missing, []).append(member)
    for missing, who in sorted(lacking.items(), key=lambda item: item[1][0]):
        verb = "lacks" if len(who) == 1 else "lack"
        noun = "step" if len(missing) == 1 else "steps"
        problems.append(f"{_members_text(who)} {verb} the {noun} ending "
                        f"{_steps_text(missing, ends, reference)}")
    if duplicates:  # the first few name the files; a whole member twice is 72 of them
        shown = list(duplicates[:MAX_DUPLICATES_LISTED])
        more = len(duplicates) - len(shown)
        problems.append("held twice: " + "; ".join(shown)
                        + (f"; and {more} more member/step pairs" if more else ""))
    if problems:
        fixes = ([f"add the missing {parts}"] if len(problems) > len(duplicates[:1]) else []) \
            + (["leave out one of each pair held twice"] if duplicates else [])
        raise InputError(
            f"{name}: the forecast's {parts} do not give every member every step exactly once: "
            + "; ".join(problems) + f". {' and '.join(fixes).capitalize()}.")
    return members, ends


# ------------------------------------------------------------------------ assembling files


def _same_grid(a: RawRainfall, b: RawRainfall) -> bool:
    if a.x.shape != b.x.shape or a.y.shape != b.y.shape:
        return False
    if a.crs != b.crs:
        from pyproj import CRS

        if not CRS.from_user_input(a.crs).equals(CRS.from_user_input(b.crs)):
            return False
    spacing = max(float(np.abs(np.diff(a.x)).min(initial=np.inf)) if a.x.size > 1 else 1.0,
                  float(np.abs(np.diff(a.y)).min(initial=np.inf)) if a.y.size > 1 else 1.0)
    tolerance = 1e-3 * (spacing if np.isfinite(spacing) else 1.0)
    return bool(np.allclose(a.x, b.x, rtol=0, atol=tolerance)
                and np.allclose(a.y, b.y, rtol=0, atol=tolerance))


def _grid_text(raw: RawRainfall) -> str:
    return (f"{raw.y.size} × {raw.x.size} cells, x {raw.x.min():g}…{raw.x.max():g}, "
            f"y {raw.y.min():g}…{raw.y.max():g}")


def refuse_mixed(name: str, held: Sequence[tuple[Hashable, str]], *, what: str, parts: str,
                 fix: str) -> None:
    """Refuse pieces of one forecast that differ in ``what``: ``held`` is (value, place) for
    each piece (a file, or a message of one file); the error groups the places by value."""
    groups: dict[Hashable, list[str]] = {}
    for value, place in held:
        places = groups.setdefault(value, [])
        if place not in places:
            places.append(place)
    if len(groups) > 1:
        said = "; ".join(f"{value}: {', '.join(places[:4])}{' …' if len(places) > 4 else ''}"
                         for value, places in groups.items())
        raise InputError(f"{name}: the {parts} are of {len(groups)} different {what} ({said}); "
                         f"{fix}")


def _check_alike(name: str, parts: Sequence[tuple[Path, RawRainfall]]) -> None:
    """Every file on the first file's grid, in its units and accumulation, of its run."""
    first_path, first = parts[0]
    refuse_mixed(name, [(normalise_units(raw.units), p.name) for p, raw in parts], what="units",
                 parts="files", fix="give files of one product, or state the units (--units) "
                                    "if they are really the same.")
    refuse_mixed(name, [(str(raw.accumulation), p.name) for p, raw in parts],
                 what="accumulations", parts="files",
                 fix="state it with --accumulation if they are really alike.")
    other = [(p, raw) for p, raw in parts[1:] if not _same_grid(first, raw)]
    if other:
        said = "; ".join(f"{p.name} on {_grid_text(raw)}" for p, raw in other[:5])
        raise InputError(
            f"{name}: the files are not on one grid: {first_path.name} is on {_grid_text(first)}"
            f" ({first.crs[:60]}), but {said}. Give the members and steps of one forecast on "
            "one grid (regrid or crop them alike).")
    refuse_mixed(name, [(_iso(raw.reference_time), p.name) for p, raw in parts
                        if raw.reference_time is not None],
                 what="forecast runs", parts="files", fix="give the files of one run.")


def read_each(files: RainFiles, read: Callable[[Path], RawRainfall],
              declared_cells: Callable[[Path], int], *, max_cells: int | None,
              crop: str) -> RawRainfall:
    """Read a set of files one by one with ``read`` and join them (:func:`assemble_rainfall`),
    after checking the cells all of them declare (``declared_cells``, from headers only)
    against ``max_cells``; ``crop`` is the command the budget's message suggests."""
    total = sum(declared_cells(f) for f in files.files)
    check_declared_cells(files.name, (total,), "cells of rain in all its files", max_cells, crop)
    return assemble_rainfall([(f, read(f)) for f in files.files], name=files.name,
                             source=files.source)


def assemble_rainfall(parts: Sequence[tuple[Path, RawRainfall]], *, name: str,
                      source: str) -> RawRainfall:
    """One forecast from what each file holds, joined by member and valid time (step end).

    Each part is (file, what the reader found in it); a part without member numbers holds
    members 0, 1, …. The files must share grid, units, accumulation and forecast run
    (:func:`_check_alike`); every member must hold every step exactly once
    (:func:`check_complete`, which names every gap and every step two files both hold).
    Members come out sorted by number; steps by time. Python loops run over files, members and
    steps, never over grid cells.
    """
    _check_alike(name, parts)
    holder: dict[tuple[int, np.datetime64], tuple[int, int, int]] = {}
    present: dict[int, list[np.datetime64]] = {}
    duplicates: list[str] = []
    for k, (path, raw) in enumerate(parts):
        numbers = np.arange(raw.values.shape[0]) if raw.members is None else np.asarray(
            raw.members)
        if numbers.dtype.kind not in "iu":
            raise InputError(f"{path.name}: its members are labelled {numbers.tolist()[:5]}, "
                             "not numbered; files are joined by member number.")
        for m_index, member in enumerate(numbers.tolist()):
            for t_index, end in enumerate(np.asarray(raw.step_end).astype("datetime64[s]")):
                key = (member, end)
                if key in holder:
                    other = parts[holder[key][0]][0].name
                    duplicates.append(f"member {member}, step ending {_iso(end)}: in both "
                                      f"{other} and {path.name}")
                    continue
                holder[key] = (k, m_index, t_index)
                present.setdefault(member, []).append(end)
    reference = next((raw.reference_time for _, raw in parts if raw.reference_time is not None),
                     None)
    members, ends = check_complete(name, present, duplicates=duplicates, reference=reference)
    first = parts[0][1]
    values = np.empty((members.size, ends.size, first.y.size, first.x.size), np.float64)
    starts: np.ndarray | None = np.empty(ends.size, "datetime64[s]")
    m_pos = {m: i for i, m in enumerate(members.tolist())}
    t_pos = {t: i for i, t in enumerate(ends.tolist())}
    for (member, end), (k, m_index, t_index) in holder.items():
        raw = parts[k][1]
        values[m_pos[member], t_pos[end.item()]] = raw.values[m_index, t_index]
        if starts is not None:
            if raw.step_start is None:
                starts = None
            else:
                starts[t_pos[end.item()]] = _seconds(raw.step_start[t_index])
    return replace(
        first,
        values=values,
        step_end=ends,
        step_start=starts,
        source=source,
        reference_time=reference,
        members=members,
        attrs={**first.attrs, "floodwarn_files": len(parts)},
    )


# ------------------------------------------------------------- chaining accumulation intervals


@dataclass(frozen=True)
class Interval:
    """One accumulation over [start_h, end_h] hours after the reference time, of one member,
    as a piece of a forecast (a GRIB message); ``where`` names it (``message 3 of a.grib2``)."""

    member: int
    start_h: int
    end_h: int
    where: str


@dataclass(frozen=True)
class ChainPlan:
    """How intervals chain into totals since ``origin_h``: for each member (sorted), the
    indices of the intervals that extend a known total, in order; ``ends_h`` the step ends
    every member reaches; ``zero_length`` the intervals that end where they start (step 0 of
    ECMWF's ``tp``), which must hold no rain."""

    members: np.ndarray
    origin_h: int
    ends_h: tuple[int, ...]
    routes: dict[int, tuple[int, ...]]
    zero_length: tuple[int, ...]


def _hours(reference: np.datetime64, hours: int) -> np.datetime64:
    return _seconds(reference) + np.timedelta64(int(hours), "h")


def plan_chain(name: str, intervals: Sequence[Interval], *, reference: np.datetime64,
               variable: str, parts: str = "messages") -> ChainPlan:
    """Plan how accumulations over mixed intervals become totals since the start, per member,
    from their headers alone (before any value is decoded).

    An interval starting where a known total ends extends it: GFS/GEFS buckets 0-3, 0-6, then
    6-9, 6-12 (the bucket resets every 6 h, and later steps are 6-hourly only); ECMWF totals
    0-6, 0-12, … all from 0. Of two intervals ending at the same hour the one starting earlier
    is used (GFS files may hold both 6-12 and 0-12). Refused, each naming every case: the same
    member and interval held twice (naming both pieces); a member missing, or lacking a step
    other members hold (:func:`check_complete`); an interval that continues no known total (a
    piece missing before it); members starting at different hours.
    """
    seen: dict[tuple[int, int, int], str] = {}
    duplicates: list[str] = []
    present: dict[int, set[np.datetime64]] = {}
    for piece in intervals:
        key = (piece.member, piece.start_h, piece.end_h)
        if key in seen:
            duplicates.append(f"member {piece.member}, hours {piece.start_h}-{piece.end_h}: "
                              f"{seen[key]} and {piece.where}")
            continue
        seen[key] = piece.where
        held = present.setdefault(piece.member, set())
        if piece.end_h > piece.start_h:
            held.add(_hours(reference, piece.end_h))
    members, ends = check_complete(name, present, duplicates=duplicates, reference=reference,
                                   parts=parts)
    if ends.size == 0:
        raise InputError(f"{name}: its {variable} {parts} are all at step 0 (hours 0-0, the "
                         "start of the forecast), which holds no interval of rain; give the "
                         "later steps too.")
    routes: dict[int, tuple[int, ...]] = {}
    origins: dict[int, int] = {}
    orphans: list[str] = []
    zero = tuple(i for i, p in enumerate(intervals) if p.end_h == p.start_h)
    for member in members.tolist():
        own = sorted((i for i, p in enumerate(intervals)
                      if p.member == member and p.end_h > p.start_h),
                     key=lambda i: (intervals[i].end_h, intervals[i].start_h))
        origin = min(intervals[i].start_h for i in own)
        known, route = {origin}, []
        for i in own:
            p = intervals[i]
            if p.start_h not in known:
                before = max((h for h in known if h < p.start_h), default=origin)
                orphans.append(f"member {member}: {variable} over hours {p.start_h}-{p.end_h} "
                               f"({p.where}) does not continue any earlier interval (known "
                               f"ends {sorted(known)}): hours {before}-{p.start_h} are missing")
            elif p.end_h not in known:
                known.add(p.end_h)
                route.append(i)
        routes[member] = tuple(route)
        origins[member] = origin
    if orphans:
        raise InputError(f"{name}: " + "; ".join(orphans) + f". The {parts} are missing a "
                         "message; add it (download the forecast again).")
    if len(set(origins.values())) > 1:
        said = ", ".join(f"member {m} from hour {h}" for m, h in origins.items())
        raise InputError(f"{name}: the members' accumulations start at different hours "
                         f"({said}); give every member the same steps.")
    hours = (ends - _seconds(reference)) // np.timedelta64(1, "h")
    return ChainPlan(members=members, origin_h=next(iter(origins.values())),
                     ends_h=tuple(int(h) for h in hours), routes=routes, zero_length=zero)


def lon_to_180(x: np.ndarray, values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes 0…360 → −180…180, values reordered to keep x ascending."""
    if x.max() <= 180.0:
        return x, values
    x180 = ((x + 180.0) % 360.0) - 180.0
    order = np.argsort(x180, kind="stable")
    return x180[order], np.take(values, order, axis=axis)
