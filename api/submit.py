"""One way in for a forecast: name checked, file received within limits, read as a run would
read it, moved into the inbox, queued with its :class:`~floodwarn.request.ForecastRequest`.

The API's upload, ``POST /runs`` (a file already in the inbox), ``floodwarn runs submit`` and
the inbox scanner all go through here. A refused forecast leaves the inbox and the store as
they were.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import time
import unicodedata
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    WithJsonSchema,
    create_model,
)
from sqlalchemy.orm import Session, sessionmaker

from api.errors import PayloadTooLargeError
from api.settings import Settings
from api.store.models import Run
from api.store.runs import known_rain_paths, queue_run
from floodwarn.errors import (
    DataFileError,
    FloodwarnError,
    InputError,
    NotFoundError,
    ServiceUnavailableError,
)
from floodwarn.hydrology.runoff import IA_RATIOS, check_ia_ratio
from floodwarn.io.rainfall import RAIN_FILE_SUFFIXES
from floodwarn.logs import get_logger
from floodwarn.parameters import WaterBodies, load_parameters
from floodwarn.pipeline import read_request_rain
from floodwarn.rainfall.forecast import Accumulation
from floodwarn.request import MAX_SELECTED_MEMBERS, ForecastRequest, describe_validation_error

log = get_logger(__name__)

#: A file name the service keeps: letters, digits, '.', '_', '-', '+', starting with a letter or
#: digit, at most this long (the inbox adds a 24-character prefix; file systems allow 255).
MAX_NAME_CHARS = 160
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

#: Errors of the data folder that are the server's state, not the caller's file.
_STORAGE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def _reservoir_levels_model() -> type[BaseModel]:
    """Initial levels by water body, each bounded by its storage table, so that the API's
    schema says exactly which levels are accepted (``models/reservoirs.yaml``)."""
    bodies = load_parameters(WaterBodies).water_bodies
    fields: dict[str, Any] = {
        body.id: (float | None, Field(default=None, ge=body.table[0].level_m,
                                      le=body.table[-1].level_m, allow_inf_nan=False,
                                      description=f"{body.name}, m a.s.l."))
        for body in bodies}
    return create_model("ReservoirLevels", __config__=ConfigDict(extra="forbid", frozen=True),
                        **fields)


ReservoirLevels = _reservoir_levels_model()
SafeName = Annotated[str, Field(max_length=MAX_NAME_CHARS,
                                pattern=f"^{_SAFE_NAME.pattern}$")]


def _known_ia_ratio(value: float) -> float:
    check_ia_ratio(value)
    return value


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmcClass(_Options):
    """Antecedent moisture class for every catchment: 1 dry, 2 average, 3 wet."""

    amc: Literal[1, 2, 3]


class AntecedentRain(_Options):
    """Rain of the five days before the forecast, mm (sets the moisture class)."""

    antecedent_rain_mm: float = Field(ge=0, le=2000, allow_inf_nan=False)


class AntecedentRainFile(_Options):
    """Observed rain of the days before the forecast: a file in the layers folder."""

    antecedent_rain_file: SafeName


class CurveNumberRasters(_Options):
    """Curve numbers from a land-cover and a soil raster, both in the layers folder."""

    landcover_file: SafeName
    soil_file: SafeName


def _antecedent_kind(value: Any) -> str | None:
    """Which antecedent moisture source an object gives (None: none or several)."""
    keys = set(value) if isinstance(value, dict) else {
        name for name in ("amc", "antecedent_rain_mm", "antecedent_rain_file")
        if hasattr(value, name)}
    given = keys & {"amc", "antecedent_rain_mm", "antecedent_rain_file"}
    return given.pop() if len(given) == 1 else None


class RunOptions(_Options):
    """What a caller may choose about a run submitted to the service. Mutually exclusive
    choices are alternatives in the schema (one antecedent moisture source; both curve-number
    rasters or neither), so that a request the schema accepts is a request the service
    runs. Files are named, never given as paths: they live in the service's layers folder."""

    variable: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                                 description="Rain variable / GRIB shortName.")
    units: str | None = Field(default=None, min_length=1, max_length=32,
                              description="Rain units overriding the file's ('mm', 'm').")
    accumulation: Accumulation | None = None
    members: frozenset[Annotated[int, Field(ge=0, le=1000)]] | None = Field(
        default=None, min_length=1, max_length=MAX_SELECTED_MEMBERS,
        description="Ensemble member numbers to run (default: all).")
    ia_ratio: Annotated[float, AfterValidator(_known_ia_ratio), WithJsonSchema(
        {"type": "number", "enum": list(IA_RATIOS),
         "description": "SCS initial abstraction ratio: 0.2 (tables) or 0.05 (Hawkins et "
                        "al. 2002)"})] = 0.2
    antecedent: Annotated[
        Annotated[AmcClass, Tag("amc")] | Annotated[AntecedentRain, Tag("antecedent_rain_mm")]
        | Annotated[AntecedentRainFile, Tag("antecedent_rain_file")],
        Discriminator(_antecedent_kind, custom_error_type="antecedent",
                      custom_error_message="give exactly one of amc, antecedent_rain_mm or "
                                           "antecedent_rain_file")] | None = None
    curve_numbers: CurveNumberRasters | None = None
    reservoir_levels: ReservoirLevels | None = None  # type: ignore[valid-type]

    def as_shown(self) -> dict[str, Any] | None:
        """The options as the caller gave them (what was not given left out), in the form
        they are given in."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude_none=True) or None


def check_file_name(name: str, *, what: str, suffixes: tuple[str, ...] | None = None) -> str:
    """``name`` if it is a plain, safe file name (no folder, no glob or control characters,
    not too long, with one of ``suffixes``); InputError saying what is wrong otherwise."""
    shown = name if len(name) <= 80 else name[:60] + "…"
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"{what} name {shown!r} is {len(name)} characters long; rename it to "
                         f"at most {MAX_NAME_CHARS}.")
    if not _SAFE_NAME.fullmatch(name):
        raise InputError(f"{what} name {shown!r} is not a plain file name: use letters, digits "
                         "and . _ - + only, starting with a letter or digit (no folders, "
                         "spaces, brackets or wildcards).")
    if suffixes is not None and Path(name).suffix.lower() not in suffixes:
        raise InputError(f"{what} {shown!r}: expected a forecast file named "
                         f"*{', *'.join(suffixes)}.")
    return name


def plain_upload_name(raw: str) -> str:
    """An uploaded file's name as the service keeps it: accents dropped, spaces and other
    characters made '_' ("pronóstico lluvia (1).nc" → "pronostico_lluvia_1_.nc"); a name
    holding a folder is refused, not cleaned."""
    if "/" in raw or "\\" in raw:
        raise InputError(f"forecast name {raw[:80]!r} holds a folder; send the file's name "
                         "only.")
    ascii_name = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode()
    plain = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9._+-]", "_", ascii_name)).lstrip("._-+")
    return plain or raw


def inbox_name(original: str, now: datetime) -> str:
    """A name in the inbox for a file called ``original`` arriving ``now``: sortable by arrival
    and unique, so that two arrivals of the same file never overwrite each other."""
    return f"{now:%Y%m%dT%H%M%S}_{secrets.token_hex(3)}_{original}"


def _regular_file_in(folder: Path, name: str, what: str) -> Path:
    """``folder/name`` if it is a regular file there: never a symlink, never outside."""
    path = folder / name
    if not path.is_symlink() and not path.exists():
        raise NotFoundError(f"no {what} {name!r} in the service's {folder.name} folder; put "
                            "it there first.")
    if path.is_symlink() or not path.is_file() or path.parent != folder:
        raise InputError(f"{what} {name!r} is not a regular file (links are not followed).")
    return path


def build_request(settings: Settings, rain_path: Path, options: RunOptions) -> ForecastRequest:
    """The request for a forecast file with the caller's options, layers resolved in the
    service's layers folder."""
    fields: dict[str, Any] = {
        "variable": options.variable, "units": options.units,
        "accumulation": options.accumulation, "ia_ratio": options.ia_ratio,
        "members": tuple(sorted(options.members)) if options.members else None}
    antecedent = options.antecedent
    if isinstance(antecedent, AmcClass):
        fields["amc"] = antecedent.amc
    elif isinstance(antecedent, AntecedentRain):
        fields["antecedent_rain_mm"] = antecedent.antecedent_rain_mm
    elif isinstance(antecedent, AntecedentRainFile):
        fields["antecedent_rain_path"] = _layer(settings, antecedent.antecedent_rain_file,
                                                "rain file")
    if options.curve_numbers is not None:
        fields["landcover_path"] = _layer(settings, options.curve_numbers.landcover_file,
                                          "land-cover raster")
        fields["soil_path"] = _layer(settings, options.curve_numbers.soil_file, "soil raster")
    if options.reservoir_levels is not None:
        levels = options.reservoir_levels.model_dump(exclude_none=True)
        fields["reservoir_levels"] = levels or None
    return ForecastRequest.build(terrain_dir=settings.terrain, rain_path=rain_path,
                                 **{k: v for k, v in fields.items() if v is not None})


def _layer(settings: Settings, name: str, what: str) -> Path:
    return _regular_file_in(settings.layers_dir, check_file_name(name, what=what), what)


def require_terrain(settings: Settings) -> None:
    """Refuse to accept forecasts while no terrain model is configured: the run would fail."""
    if not (settings.terrain / "terrain.json").exists():
        raise ServiceUnavailableError(
            f"the service has no terrain model at {settings.terrain} to run forecasts on: set "
            "FLOODWARN_TERRAIN_DIR to a folder made by `floodwarn terrain build`, or start "
            "`floodwarn serve` once without --no-demo to build the demo terrain.")


def parse_options(text: str | None) -> RunOptions:
    """Run options from a JSON text (an upload's ``options`` form field)."""
    if not text:
        return RunOptions()
    try:
        return RunOptions.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise InputError(f"options: not JSON ({exc.msg} at character {exc.pos}).") from exc
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, "options")) from exc


def check_rain(request: ForecastRequest, settings: Settings, shown_name: str) -> None:
    """Read the rain as the run will (size, format, variables, units, times, members): what
    the run would refuse is refused now, as the caller's error naming the file."""
    staged = request.rain_path.name
    try:
        read_request_rain(request, max_cells=settings.max_rain_cells)
    except InputError as exc:  # named as the caller knows the file
        raise InputError(str(exc).replace(staged, shown_name)) from exc
    except DataFileError as exc:
        reason = str(exc).replace(f"{staged}: ", "").replace(staged, shown_name)
        raise InputError(f"{shown_name}: not a readable forecast file: {reason}") from exc
    except (MemoryError, RecursionError) as exc:
        raise InputError(f"{shown_name}: too large or too deeply nested to read as a "
                         "forecast.") from exc
    except Exception as exc:  # a decoder's own error on a hostile file: the caller's file
        log.warning("forecast file refused by its decoder", exc_info=exc,
                    extra={"file": shown_name})
        raise InputError(f"{shown_name}: not a readable forecast file "
                         f"({type(exc).__name__}: {exc}).") from exc


def _storage_error(exc: OSError, what: str) -> Exception:
    if exc.errno in _STORAGE_ERRNOS:
        return ServiceUnavailableError(
            f"the service cannot store {what} now: its data folder is "
            f"{'full' if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 'not writable'} "
            f"({os.strerror(exc.errno)}); the operators must fix it.")
    return exc


def new_staging_file(settings: Settings, name: str, now: datetime) -> Path:
    """A fresh file in the uploads folder (owner-only), created here so that a read-only or
    full data folder is reported before anything is received."""
    staged = settings.uploads_dir / inbox_name(name, now)
    try:
        settings.uploads_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise _storage_error(exc, "uploads") from exc
    return staged


def submit_staged(sessions: sessionmaker[Session], settings: Settings, staged: Path, *,
                  name: str, options: RunOptions, actor: str, now: datetime) -> Run:
    """Check a received file as a run would, move it into the inbox and queue its run. The
    staged file is gone afterwards either way."""
    try:
        request = build_request(settings, staged, options)
        check_rain(request, settings, name)
        require_terrain(settings)
        settings.inbox_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = settings.inbox_dir / staged.name
        # Renamed first, queued at once: the scanner leaves a file alone for its first second,
        # and a queued run always finds its file.
        staged.replace(target)
    except OSError as exc:
        raise _storage_error(exc, "forecasts") from exc
    finally:
        staged.unlink(missing_ok=True)
    request = request.model_copy(update={"rain_path": target})
    with sessions.begin() as session:
        return queue_run(session, request, actor=actor, now=now, options=options.as_shown())


def submit_file(sessions: sessionmaker[Session], settings: Settings, source: Path, *,
                options: RunOptions, actor: str, now: datetime) -> Run:
    """Submit a local file (``floodwarn runs submit``): copied, checked, queued."""
    name = check_file_name(source.name, what="forecast", suffixes=RAIN_FILE_SUFFIXES)
    size = source.stat().st_size
    limit = int(settings.max_upload_mb * 1024 * 1024)
    if size > limit:
        raise PayloadTooLargeError(f"{name} is {size / 2**20:.0f} MB, over the "
                                   f"{settings.max_upload_mb:g} MB limit.")
    staged = new_staging_file(settings, name, now)
    try:
        shutil.copyfile(source, staged)
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise _storage_error(exc, "forecasts") from exc
    return submit_staged(sessions, settings, staged, name=name, options=options, actor=actor,
                         now=now)


def submit_inbox_file(sessions: sessionmaker[Session], settings: Settings, name: str, *,
                      options: RunOptions, actor: str, now: datetime) -> Run:
    """Queue a run of a file already in the inbox (``POST /runs``), checked first."""
    check_file_name(name, what="forecast", suffixes=RAIN_FILE_SUFFIXES)
    path = _regular_file_in(settings.inbox_dir, name, "forecast")
    request = build_request(settings, path, options)
    check_rain(request, settings, name)
    require_terrain(settings)
    with sessions.begin() as session:
        return queue_run(session, request, actor=actor, now=now, options=options.as_shown())


async def receive_upload(chunks: AsyncIterator[bytes], content_type: str,
                         settings: Settings, now: datetime) -> tuple[Path, str, str | None]:
    """Stream a ``multipart/form-data`` upload (fields ``forecast``: the file; ``options``:
    JSON) straight into a staging file, refusing it the moment it passes the size limit.
    Returns the staged file, the file's name and the options text."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InputError("an upload is multipart/form-data with the file in the field "
                         "'forecast' (e.g. curl -F forecast=@gfs.grib2).")
    limit = int(settings.max_upload_mb * 1024 * 1024)
    state: dict[str, Any] = {"headers": [], "field": None, "name": None, "out": None,
                             "size": 0, "options": bytearray(), "staged": None, "header": b"",
                             "value": b"", "seen": set()}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"].append((state["header"].lower(), state["value"]))
        state["header"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disposition = dict(state["headers"]).get(b"content-disposition", b"")
        _, fields = parse_options_header(disposition)
        field = fields.get(b"name", b"").decode("utf-8", "replace")
        state["headers"] = []
        if field in state["seen"]:
            raise InputError(f"the form field {field!r} is given twice.")
        state["seen"].add(field)
        state["field"] = field
        if field == "forecast":
            name = check_file_name(
                plain_upload_name(fields.get(b"filename", b"").decode("utf-8", "replace")),
                what="forecast", suffixes=RAIN_FILE_SUFFIXES)
            state["name"] = name
            state["staged"] = new_staging_file(settings, name, now)
            state["out"] = state["staged"].open("wb")
        elif field != "options":
            raise InputError(f"unknown form field {field!r}; an upload has 'forecast' (the "
                             "file) and optionally 'options' (JSON).")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["field"] == "forecast":
            state["size"] += end - start
            if state["size"] > limit:
                raise PayloadTooLargeError(f"upload {state['name']!r} is larger than the "
                                           f"{settings.max_upload_mb:g} MB limit.")
            state["out"].write(data[start:end])
        elif state["field"] == "options":
            state["options"] += data[start:end]
            if len(state["options"]) > 65536:
                raise InputError("the options field is over 64 KB; it holds a small JSON "
                                 "object.")

    def on_part_end() -> None:
        if state["field"] == "forecast":
            state["out"].close()
        state["field"] = None

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data, "on_part_end": on_part_end})
    try:
        async for chunk in chunks:
            parser.write(chunk)
        parser.finalize()
        if state["staged"] is None:
            raise InputError("body.forecast: Field required (the forecast file, e.g. "
                             "curl -F forecast=@gfs.grib2).")
        if state["size"] == 0:
            raise InputError(f"upload {state['name']!r} is empty.")
    except Exception as exc:
        if state["out"] is not None:
            state["out"].close()
        if state["staged"] is not None:
            state["staged"].unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _storage_error(exc, "uploads") from exc
        if not isinstance(exc, FloodwarnError):
            raise InputError(f"the upload is not a well-formed multipart form: {exc}") from exc
        raise
    return state["staged"], state["name"], bytes(state["options"]).decode("utf-8", "replace")


def scan_inbox(sessions: sessionmaker[Session], settings: Settings, *, now: datetime,
               settle_s: float, skipped: set[str] | None = None) -> list[int]:
    """Queue a run for every forecast file in the inbox not queued before.

    Hidden files (a leading dot: temporary names of writers), files modified less than
    ``settle_s`` seconds ago, links and anything that is not a regular file are left alone;
    names a run could not keep are skipped, logged once when ``skipped`` (the names already
    reported) is given.
    """
    reported = skipped if skipped is not None else set()
    inbox = settings.inbox_dir
    if not inbox.is_dir():
        return []
    wall = time.time()
    with sessions() as session:
        known = known_rain_paths(session)
    queued = []
    with os.scandir(inbox) as entries:
        candidates = sorted(entries, key=lambda e: e.name)
    for entry in candidates:
        if (entry.name.startswith(".") or str(inbox / entry.name) in known
                or Path(entry.name).suffix.lower() not in RAIN_FILE_SUFFIXES):
            continue
        try:
            if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                if entry.name not in reported:
                    reported.add(entry.name)
                    log.warning("inbox entry skipped: not a regular file (links are not "
                                "followed)", extra={"file": entry.name})
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:  # renamed away between listing and looking
            continue
        if info.st_size == 0 or wall - info.st_mtime < settle_s:
            continue
        try:
            check_file_name(entry.name, what="forecast", suffixes=RAIN_FILE_SUFFIXES)
            request = build_request(settings, inbox / entry.name, RunOptions())
        except InputError as exc:
            if entry.name not in reported:
                reported.add(entry.name)
                log.warning("inbox file skipped", extra={"file": entry.name,
                                                         "reason": str(exc)})
            continue
        with sessions.begin() as session:
            queued.append(queue_run(session, request, actor="inbox", now=now).id)
    return queued
