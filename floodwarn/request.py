"""One forecast run, asked for: :class:`ForecastRequest`.

The CLI, the service's API and its inbox all build the same validated, immutable request;
the service stores it with the run, so a run executed later (or again, after a crash) does
exactly what was asked. Every option is checked here, before any file is loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from floodwarn.errors import InputError
from floodwarn.hydrology.runoff import check_amc, check_curve_number_sources, check_ia_ratio
from floodwarn.hydrology.water_bodies import check_reservoir_levels
from floodwarn.parameters import WaterBodies, load_parameters
from floodwarn.rainfall.forecast import Accumulation

#: Ensemble members one run may select (ECMWF ENS has 51, GEFS 31).
MAX_SELECTED_MEMBERS = 256
#: Files one forecast may be spread over (GEFS: 31 members × 81 steps in per-step files).
MAX_RAIN_FILES = 10_000


class ForecastOptions(BaseModel):
    """What a caller may choose about a forecast run besides its files: how to read the rain,
    which members to run, antecedent moisture, the SCS initial abstraction ratio and the
    reservoirs' initial levels. Files named here (antecedent rain, land cover, soil) are
    resolved by whoever builds the :class:`ForecastRequest`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    variable: str | None = Field(default=None, min_length=1, max_length=64,
                                 description="Rain variable / GRIB shortName (default: found "
                                             "by name).")
    units: str | None = Field(default=None, min_length=1, max_length=32,
                              description="Rain units, overriding the file's (e.g. 'mm', 'm', "
                                          "'kg m-2 s-1').")
    accumulation: Accumulation | None = Field(
        default=None, description="How rain accumulates in the file: per step, since the "
                                  "start, or a rate (default: from the file).")
    members: tuple[int, ...] | None = Field(
        default=None, min_length=1, max_length=MAX_SELECTED_MEMBERS,
        description="Ensemble member numbers to run (default: every member of the file).")
    amc: int | None = Field(default=None, description="Antecedent moisture class 1, 2 or 3 "
                                                      "for every catchment.")
    antecedent_rain_mm: float | None = Field(
        default=None, ge=0, le=2000, allow_inf_nan=False,
        description="Rain of the five days before the forecast, mm (sets the AMC).")
    ia_ratio: float = Field(default=0.2, description="SCS initial abstraction ratio: 0.2 "
                                                     "(tables) or 0.05 (Hawkins et al. 2002).")
    reservoir_levels: tuple[tuple[str, float], ...] | None = Field(
        default=None, description="Initial levels of reservoirs and lakes, m a.s.l. by id of "
                                  "models/reservoirs.yaml (others: the month's normal level).")

    @field_validator("reservoir_levels", mode="before")
    @classmethod
    def _levels_as_pairs(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted(value.items()))
        return value

    @field_serializer("reservoir_levels")
    def _levels_as_dict(self, value: tuple[tuple[str, float], ...] | None
                        ) -> dict[str, float] | None:
        return None if value is None else dict(value)

    @field_validator("members")
    @classmethod
    def _members_distinct(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None:
            if any(m < 0 for m in value):
                raise ValueError("member numbers are ≥ 0 (0 is the control run)")
            if len(set(value)) != len(value):
                raise ValueError("a member is listed twice")
        return value

    @field_validator("amc")
    @classmethod
    def _amc_known(cls, value: int | None) -> int | None:
        if value is not None:
            check_amc(value)
        return value

    @field_validator("ia_ratio")
    @classmethod
    def _ia_ratio_known(cls, value: float) -> float:
        check_ia_ratio(value)
        return value

    @field_validator("reservoir_levels")
    @classmethod
    def _levels_known(cls, value: tuple[tuple[str, float], ...] | None
                      ) -> tuple[tuple[str, float], ...] | None:
        if value:
            ids = [body for body, _ in value]
            if len(set(ids)) != len(ids):
                raise ValueError("a water body is given two initial levels")
            check_reservoir_levels(dict(value), load_parameters(WaterBodies))
        return value or None

    @property
    def reservoir_levels_m(self) -> dict[str, float] | None:
        """The initial levels as a mapping (a copy: the request stays as it was)."""
        return None if self.reservoir_levels is None else dict(self.reservoir_levels)


class ForecastRequest(ForecastOptions):
    """A forecast run: the rain file, the terrain model, the options, and the optional layers
    (antecedent rain, land cover and soil for curve numbers, settlements, collective centres).

    Build it with :meth:`build` to get floodwarn's :class:`InputError` for anything wrong.
    """

    terrain_dir: Path
    rain_path: Path
    rain_files: tuple[Path, ...] | None = Field(
        default=None, min_length=2, max_length=MAX_RAIN_FILES,
        description="A forecast spread over several files: all of them (rain_path is the "
                    "first); rain_path alone may also be a folder or a glob.")
    antecedent_rain_path: Path | None = None
    landcover_path: Path | None = None
    soil_path: Path | None = None
    settlements_path: Path | None = None
    centres_path: Path | None = None
    #: A country-wide layer of collective centres that replaces the shipped one (the service's
    #: live sites): like the shipped layer, the sites outside the terrain's domain are left out,
    #: where a ``centres_path`` must lie inside it whole.
    centres_layer_path: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.centres_path is not None and self.centres_layer_path is not None:
            raise ValueError("collective centres: give centres_path or centres_layer_path, "
                             "not both")
        given = [name for name, value in (("amc", self.amc),
                                          ("antecedent_rain_mm", self.antecedent_rain_mm),
                                          ("antecedent_rain", self.antecedent_rain_path))
                 if value is not None]
        if len(given) > 1:
            raise ValueError(f"antecedent moisture: give one of {given}, not several")
        check_curve_number_sources(self.landcover_path, self.soil_path)
        if self.rain_files is not None:
            if self.rain_files[0] != self.rain_path:
                raise ValueError("rain_files: the first file must be rain_path")
            twice = sorted({str(p) for p in self.rain_files if self.rain_files.count(p) > 1})
            if twice:
                raise ValueError(f"the rain file {twice[0]} is given twice (--rain); give "
                                 "each file once")
        return self

    @property
    def rain_source(self) -> Path | tuple[Path, ...]:
        """What the rain is read from: the list of files, or the one file, folder or glob."""
        return self.rain_files if self.rain_files is not None else self.rain_path

    @classmethod
    def build(cls, **fields: Any) -> ForecastRequest:
        """The request, or :class:`InputError` naming every field that is wrong and why."""
        try:
            return cls.model_validate(fields)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc, "forecast request")) from exc

    @classmethod
    def from_options(cls, options: ForecastOptions, **fields: Any) -> ForecastRequest:
        """A request with ``options`` (as chosen by a caller) and the files resolved here."""
        return cls.build(**options.model_dump(exclude_none=True), **fields)

    def to_json(self) -> dict[str, Any]:
        """The request as stored with a run (paths as strings, defaults left out)."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude_none=True)

    @property
    def options(self) -> ForecastOptions:
        """The caller's options, without the files."""
        return ForecastOptions.model_validate(
            self.model_dump(include=set(ForecastOptions.model_fields)))


class ScenarioRequest(BaseModel):
    """Flood scenarios for planning (:func:`floodwarn.pipeline.run_flood_scenarios`): the
    return periods, the design storms' durations (None: every duration of the IDF file, each
    reach taking its critical one), a rain factor (climate-change sensitivity), the terrain
    model and the optional layers. Build it with :meth:`build`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    terrain_dir: Path
    return_periods: tuple[int, ...] = Field(default=(2, 5, 10, 25, 50, 100), min_length=1,
                                            max_length=20)
    durations_h: tuple[int, ...] | None = Field(default=None, min_length=1, max_length=10)
    rain_factor: float = Field(default=1.0, allow_inf_nan=False)
    ia_ratio: float = 0.2
    landcover_path: Path | None = None
    soil_path: Path | None = None
    settlements_path: Path | None = None
    centres_path: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        from floodwarn.planning.scenarios import check_scenario_options

        try:
            check_scenario_options(self.return_periods, self.durations_h or (1,),
                                   self.rain_factor)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        check_ia_ratio(self.ia_ratio)
        check_curve_number_sources(self.landcover_path, self.soil_path)
        return self

    @classmethod
    def build(cls, **fields: Any) -> ScenarioRequest:
        """The request, or :class:`InputError` naming every field that is wrong and why."""
        try:
            request = cls.model_validate(fields)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc, "scenario request")) from exc
        # Return periods in order: tables and integration run from frequent to rare.
        return request.model_copy(update={"return_periods": tuple(sorted(
            request.return_periods))})

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def describe_validation_error(exc: ValidationError, what: str) -> str:
    """One line per problem: the field and the reason (pydantic's own wording)."""
    problems = []
    for error in exc.errors():
        place = ".".join(str(part) for part in error["loc"])
        reason = str(error["msg"]).removeprefix("Value error, ")
        problems.append(f"{place}: {reason}" if place else reason)
    return f"{what}: " + "; ".join(problems)
