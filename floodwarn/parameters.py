"""Parameter sets in ``models/``: YAML files validated by pydantic models on load."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Annotated, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from floodwarn.errors import DataFileError, InputError
from floodwarn.paths import models_dir


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterSet(_Strict):
    """Every parameter file names its version and its source."""

    version: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=10)]


class CentreKind(_Strict):
    usable_area_m2: Annotated[float, Field(ge=0, le=100_000)]
    shelter: bool


class CentreRule(_Strict):
    kind: str
    categories: list[str] = []
    keywords: list[str] = []


class CollectiveCentreRules(ParameterSet):
    """How a public site gets a kind and a capacity (``models/collective_centres.yaml``)."""

    area_per_person_m2: Annotated[float, Field(gt=0, le=50)]
    rules: Annotated[list[CentreRule], Field(min_length=1)]
    kinds: dict[str, CentreKind]

    @model_validator(mode="after")
    def _rules_name_known_kinds(self) -> CollectiveCentreRules:
        unknown = sorted({r.kind for r in self.rules} - set(self.kinds))
        if unknown:
            raise ValueError(f"rules use kinds {unknown} that are not defined under 'kinds'")
        return self

    def capacity(self, kind: str) -> int:
        """Persons a centre of ``kind`` can hold (0 for kinds that are not shelters)."""
        spec = self.kinds[kind]
        return int(spec.usable_area_m2 // self.area_per_person_m2) if spec.shelter else 0


SOIL_GROUPS = ("A", "B", "C", "D")


class CurveNumberTable(ParameterSet):
    """Curve numbers by cover and soil group, raster code maps (``models/curve_numbers.yaml``)."""

    curve_numbers: dict[str, Annotated[list[Annotated[float, Field(ge=30, le=100)]],
                                       Field(min_length=4, max_length=4)]]
    landcover_codes: dict[int, str]
    soil_codes: dict[int, Literal["A", "B", "C", "D"]]
    default_cover: str
    default_soil_group: Literal["A", "B", "C", "D"]

    @model_validator(mode="after")
    def _covers_known(self) -> CurveNumberTable:
        unknown = sorted(set(self.landcover_codes.values()) - set(self.curve_numbers))
        if unknown:
            raise ValueError(f"landcover_codes use covers {unknown} missing from curve_numbers")
        if self.default_cover not in self.curve_numbers:
            raise ValueError(f"default_cover {self.default_cover!r} is not in curve_numbers")
        for cover, cns in self.curve_numbers.items():
            if any(b < a for a, b in pairwise(cns)):
                raise ValueError(f"{cover}: curve numbers must not fall from group A to D")
        return self

    def curve_number(self, cover: str, soil_group: str) -> float:
        return self.curve_numbers[cover][SOIL_GROUPS.index(soil_group)]

    @property
    def default_curve_number(self) -> float:
        return self.curve_number(self.default_cover, self.default_soil_group)


class RoutingParameters(ParameterSet):
    """Channel and catchment-response parameters (``models/routing.yaml``)."""

    manning_n: Annotated[float, Field(gt=0.01, le=0.2)]
    floodplain_manning_n: Annotated[float, Field(gt=0.01, le=0.3)]
    width_coefficient_m: Annotated[float, Field(gt=0, le=50)]
    width_exponent: Annotated[float, Field(gt=0, le=1)]
    depth_coefficient_m: Annotated[float, Field(gt=0, le=10)]
    depth_exponent: Annotated[float, Field(gt=0, le=1)]
    min_channel_slope: Annotated[float, Field(gt=0, le=0.05)]
    slope_min_window_cells: Annotated[float, Field(ge=2, le=1000)]
    slope_min_window_m: Annotated[float, Field(ge=0, le=100_000)]
    slope_max_window_m: Annotated[float, Field(gt=0, le=200_000)]
    slope_min_drop_m: Annotated[float, Field(ge=0, le=100)]
    routing_step_s: Annotated[float, Field(ge=10, le=3600)]
    min_land_slope_percent: Annotated[float, Field(gt=0, le=20)]
    min_lag_hours: Annotated[float, Field(gt=0, le=10)]
    max_lag_hours: Annotated[float, Field(gt=0, le=500)]
    reference_flow_share: Annotated[float, Field(gt=0, le=1)]

    @model_validator(mode="after")
    def _lag_range(self) -> RoutingParameters:
        if self.max_lag_hours <= self.min_lag_hours:
            raise ValueError("max_lag_hours must exceed min_lag_hours")
        if self.slope_max_window_m < self.slope_min_window_m:
            raise ValueError("slope_max_window_m must be ≥ slope_min_window_m")
        return self


class IdfParameters(ParameterSet):
    """Design-rainfall depth-duration-frequency (``models/idf_el_salvador.yaml``)."""

    approximation: bool
    annual_max_daily_mean_mm: Annotated[float, Field(gt=10, le=1000)]
    annual_max_daily_std_mm: Annotated[float, Field(gt=0, le=500)]
    clock_to_sliding_factor: Annotated[float, Field(ge=1, le=1.3)]
    duration_exponent: Annotated[float, Field(gt=0, lt=1)]
    design_storm_hours: Annotated[list[Annotated[int, Field(ge=1, le=240)]],
                                  Field(min_length=1)]
    simulation_hours: Annotated[int, Field(ge=1, le=720)]
    recession_hours: Annotated[int, Field(ge=1, le=720)]
    design_storm_pattern: Literal["uniform", "alternating_block"]
    reference_areas_km2: Annotated[list[Annotated[float, Field(gt=0, le=100_000)]],
                                   Field(min_length=1)]
    return_periods_years: Annotated[list[Annotated[int, Field(ge=2, le=10_000)]],
                                    Field(min_length=1)]

    @model_validator(mode="after")
    def _ordered(self) -> IdfParameters:
        rp = self.return_periods_years
        if rp != sorted(set(rp)):
            raise ValueError("return_periods_years must be increasing and distinct")
        areas = self.reference_areas_km2
        if areas != sorted(set(areas)):
            raise ValueError("reference_areas_km2 must be increasing and distinct")
        if self.simulation_hours < max(self.design_storm_hours):
            raise ValueError("simulation_hours must cover the design storm")
        return self


LEVELS = ("verde", "amarilla", "naranja", "roja")
#: Settlement metrics a level rule may bound.
LEVEL_METRICS = ("max_depth_m", "mean_depth_m", "flooded_share", "people_exposed",
                 "hours_to_flooding", "return_period_years")


class Bound(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("a bound needs 'min' or 'max'")
        return self


class LevelRule(_Strict):
    level: Literal["amarilla", "naranja", "roja"]
    any: Annotated[list[dict[str, Bound]], Field(min_length=1)]

    @model_validator(mode="after")
    def _known_metrics(self) -> LevelRule:
        for condition in self.any:
            unknown = sorted(set(condition) - set(LEVEL_METRICS))
            if unknown:
                raise ValueError(f"{self.level}: unknown metrics {unknown}; use {LEVEL_METRICS}")
            if not condition:
                raise ValueError(f"{self.level}: an empty condition would always hold")
        return self


class Footprint(_Strict):
    people_per_km2: Annotated[float, Field(gt=0, le=100_000)]
    min_radius_m: Annotated[float, Field(gt=0)]
    max_radius_m: Annotated[float, Field(gt=0)]


class CentreSafety(_Strict):
    site_radius_m: Annotated[float, Field(gt=0, le=1000)]
    margin_m: Annotated[float, Field(gt=0, le=5000)]
    unsafe_site_depth_m: Annotated[float, Field(gt=0, le=5)]
    unsafe_margin_depth_m: Annotated[float, Field(gt=0, le=5)]
    at_risk_margin_depth_m: Annotated[float, Field(gt=0, le=5)]


class EvacuationRules(_Strict):
    levels: Annotated[list[Literal["amarilla", "naranja", "roja"]], Field(min_length=1)]
    max_distance_km: Annotated[float, Field(gt=0, le=500)]
    candidates_per_settlement: Annotated[int, Field(ge=1, le=1000)]


class EnsembleProbability(_Strict):
    amarilla: Annotated[float, Field(gt=0, le=1)]
    naranja: Annotated[float, Field(gt=0, le=1)]
    roja: Annotated[float, Field(gt=0, le=1)]


class LevelRules(ParameterSet):
    """Warning-level rules for settlements, centre safety and evacuation
    (``models/levels.yaml``)."""

    wet_depth_m: Annotated[float, Field(gt=0, le=2)]
    footprint: Footprint
    levels: Annotated[list[LevelRule], Field(min_length=1)]
    ensemble_min_probability: EnsembleProbability
    centres: CentreSafety
    evacuation: EvacuationRules

    @model_validator(mode="after")
    def _most_severe_first(self) -> LevelRules:
        ranks = [LEVELS.index(rule.level) for rule in self.levels]
        if ranks != sorted(ranks, reverse=True) or len(set(ranks)) != len(ranks):
            raise ValueError("levels must be listed once each, most severe first")
        if self.footprint.max_radius_m < self.footprint.min_radius_m:
            raise ValueError("footprint max_radius_m must be ≥ min_radius_m")
        for rule in self.levels:
            for k, condition in enumerate(rule.any, start=1):
                depth = condition.get("max_depth_m")
                people = condition.get("people_exposed")
                if depth is None or depth.min is None or depth.min < self.wet_depth_m or \
                        people is None or people.min is None or people.min < 1:
                    raise ValueError(
                        f"{rule.level} condition {k} must ask for water on land and people in "
                        f"it (max_depth_m min ≥ wet_depth_m {self.wet_depth_m} and "
                        "people_exposed min ≥ 1): no warning for a place where nothing floods")
        return self


Month = Literal["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                "dec"]
#: Calendar months as the parameter files name them, January first.
MONTHS: tuple[Month, ...] = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep",
                             "oct", "nov", "dec")


class BaseFlow(ParameterSet):
    """Base flow per unit catchment area by calendar month (``models/base_flow.yaml``)."""

    approximation: bool
    specific_discharge_l_s_km2: dict[Month, Annotated[float, Field(ge=0, le=500)]]
    design_storm_month: Month

    @model_validator(mode="after")
    def _every_month(self) -> BaseFlow:
        if len(self.specific_discharge_l_s_km2) != 12:
            raise ValueError("specific_discharge_l_s_km2 needs all twelve months")
        return self

    def for_month(self, month: int) -> float:
        """Specific base flow (L/s/km²) of calendar month 1…12."""
        if not 1 <= month <= 12:
            raise InputError(f"month {month} is not 1…12.")
        return self.specific_discharge_l_s_km2[MONTHS[month - 1]]




class PlausibilityBounds(ParameterSet):
    """Bounds a forecast's figures are checked against before an analyst trusts the run
    (``models/plausibility.yaml``)."""

    francou_rodier_min_area_km2: Annotated[float, Field(gt=0, le=100_000)]
    regional_k: Annotated[float, Field(gt=0, lt=10)]
    world_k: Annotated[float, Field(gt=0, lt=10)]
    large_river_km2: Annotated[float, Field(gt=0, le=1_000_000)]
    max_settlement_depth_m: Annotated[float, Field(gt=0, le=100)]
    max_land_depth_m: Annotated[float, Field(gt=0, le=200)]
    max_large_river_celerity_m_s: Annotated[float, Field(gt=0, le=50)]
    max_mass_balance_error: Annotated[float, Field(gt=0, le=1)]
    deepest_settlements_listed: Annotated[int, Field(ge=1, le=100)]

    @model_validator(mode="after")
    def _k_order(self) -> PlausibilityBounds:
        if self.world_k < self.regional_k:
            raise ValueError("world_k must not be below regional_k")
        return self


class StorageLevel(_Strict):
    """One row of a water body's level-pool table: water level, storage and outflow there."""

    level_m: Annotated[float, Field(ge=-10, le=3000)]
    storage_hm3: Annotated[float, Field(ge=0, le=100_000)]
    outflow_m3s: Annotated[float, Field(ge=0, le=200_000)]


class WaterBody(_Strict):
    """A reservoir or lake routed as a level pool (``models/reservoirs.yaml``).

    ``point_lonlat`` lies on the water surface (it finds the lake on the DEM);
    ``outlet_lonlat`` is the dam or natural outlet (None: the lake has no surface outlet);
    ``surface_area_km2`` is its area at ``surface_level_m``, the level its shore on a DEM
    stands for (the land above it floods only when the water rises above that level).
    ``table`` gives storage and outflow against level, both never decreasing; the outflow of a
    reservoir is what passes the dam at that level (turbines plus spillway as operated in a
    flood), of a lake what its outlet channel carries.
    """

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    name: Annotated[str, Field(min_length=3)]
    kind: Literal["reservoir", "lake"]
    point_lonlat: tuple[Annotated[float, Field(ge=-180, le=180)],
                        Annotated[float, Field(ge=-90, le=90)]]
    outlet_lonlat: tuple[Annotated[float, Field(ge=-180, le=180)],
                         Annotated[float, Field(ge=-90, le=90)]] | None
    surface_area_km2: Annotated[float, Field(gt=0, le=10_000)]
    surface_level_m: float
    normal_level_m: float | dict[Month, float]
    table: Annotated[list[StorageLevel], Field(min_length=2)]
    source: Annotated[str, Field(min_length=10)]
    approximation: bool

    @model_validator(mode="after")
    def _table_ordered(self) -> WaterBody:
        rows = self.table
        if any(b.level_m <= a.level_m for a, b in pairwise(rows)):
            raise ValueError(f"{self.id}: table levels must increase")
        if any(b.storage_hm3 <= a.storage_hm3 for a, b in pairwise(rows)):
            raise ValueError(f"{self.id}: storage must increase with level")
        if any(b.outflow_m3s < a.outflow_m3s for a, b in pairwise(rows)):
            raise ValueError(f"{self.id}: outflow must not fall as the level rises")
        if isinstance(self.normal_level_m, dict) and len(self.normal_level_m) != 12:
            raise ValueError(f"{self.id}: normal_level_m needs one number or all twelve months")
        low, high = rows[0].level_m, rows[-1].level_m
        if not low <= self.surface_level_m <= high:
            raise ValueError(f"{self.id}: surface_level_m {self.surface_level_m} m lies outside "
                             f"its table ({low}…{high} m)")
        for month in range(1, 13):
            level = self.normal_level(month)
            if not low <= level <= high:
                raise ValueError(f"{self.id}: the normal level of {MONTHS[month - 1]}, "
                                 f"{level} m, lies outside its table ({low}…{high} m)")
        return self

    def normal_level(self, month: int) -> float:
        """The level (m a.s.l.) the body is normally at in calendar month 1…12."""
        if isinstance(self.normal_level_m, dict):
            return self.normal_level_m[MONTHS[month - 1]]
        return float(self.normal_level_m)


class WaterBodies(ParameterSet):
    """The reservoirs and lakes routed as level pools (``models/reservoirs.yaml``)."""

    water_bodies: Annotated[list[WaterBody], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_ids(self) -> WaterBodies:
        ids = [w.id for w in self.water_bodies]
        if len(set(ids)) != len(ids):
            raise ValueError("water body ids must be unique")
        return self


class CapacityUpgrade(_Strict):
    added_covered_area_m2: Annotated[float, Field(gt=0, le=100_000)]
    area_per_person_m2: Annotated[float, Field(gt=0, le=50)]
    cost_per_m2: Annotated[float, Field(ge=0)]
    kinds: Annotated[list[str], Field(min_length=1)]

    @property
    def places(self) -> int:
        """People the added covered space shelters at the standard's area per person."""
        return int(self.added_covered_area_m2 // self.area_per_person_m2)

    @property
    def cost(self) -> float:
        return self.added_covered_area_m2 * self.cost_per_m2


class FloodProofing(_Strict):
    cost_per_site: Annotated[float, Field(ge=0)]
    kinds: Annotated[list[str], Field(min_length=1)]


class ShelterUpgradeStandard(ParameterSet):
    """Default candidate shelter upgrades and their assumed costs
    (``models/shelter_upgrades.yaml``)."""

    approximation: bool
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    capacity_upgrade: CapacityUpgrade
    flood_proofing: FloodProofing
    exclude_name_keywords: list[str] = []


#: Every parameter file shipped in models/ and the model that validates it.
PARAMETER_FILES: dict[str, type[ParameterSet]] = {
    "collective_centres.yaml": CollectiveCentreRules,
    "curve_numbers.yaml": CurveNumberTable,
    "routing.yaml": RoutingParameters,
    "idf_el_salvador.yaml": IdfParameters,
    "levels.yaml": LevelRules,
    "reservoirs.yaml": WaterBodies,
    "base_flow.yaml": BaseFlow,
    "plausibility.yaml": PlausibilityBounds,
    "shelter_upgrades.yaml": ShelterUpgradeStandard,
}

P = TypeVar("P", bound=ParameterSet)


def load_parameters(model: type[P], path: str | Path | None = None) -> P:
    """Load and validate a parameter file; by default the shipped one for ``model``."""
    if path is None:
        name = next(n for n, m in PARAMETER_FILES.items() if m is model)
        path = models_dir() / name
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataFileError(f"{path}: parameter file not found.") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc}).") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping of parameters at the top level.")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InputError(f"{path}: invalid parameters — {problems}.") from exc


class SphereWater(_Strict):
    l_per_person_day: Annotated[float, Field(ge=7.5, le=100)]
    source: Annotated[str, Field(min_length=10)]


class SphereCoveredSpace(_Strict):
    m2_per_person: Annotated[float, Field(gt=0, le=50)]
    source: Annotated[str, Field(min_length=10)]


class SphereToilets(_Strict):
    people_per_toilet: Annotated[int, Field(ge=1, le=250)]
    female_per_male: Annotated[float, Field(ge=1, le=10)]
    source: Annotated[str, Field(min_length=10)]


class SphereHygiene(_Strict):
    kits_per_household_month: Annotated[float, Field(gt=0, le=10)]
    water_containers_per_household: Annotated[int, Field(ge=1, le=10)]
    water_container_l: tuple[Annotated[float, Field(gt=0, le=50)],
                             Annotated[float, Field(gt=0, le=50)]]
    bathing_soap_g_per_person_month: Annotated[float, Field(gt=0, le=5000)]
    laundry_soap_g_per_person_month: Annotated[float, Field(gt=0, le=5000)]
    source: Annotated[str, Field(min_length=10)]


class SphereKit(_Strict):
    """A kit counted per unit (a household, a woman or girl) with what it holds."""

    kits_per_unit: Annotated[float, Field(gt=0, le=10)]
    contents: Annotated[str, Field(min_length=10)]
    source: Annotated[str, Field(min_length=10)]


class PlanningAssumption(_Strict):
    """A figure the Sphere standards do not give: why this value, and what should replace it."""

    value: float
    basis: Annotated[str, Field(min_length=10)]
    replace_with: Annotated[str, Field(min_length=10)]


#: Plausible range of each planning assumption (a typo such as 36 persons per household fails).
PLANNING_BOUNDS: dict[str, tuple[float, float]] = {
    "planning_days": (1, 60),
    "household_size": (1, 15),
    "share_women_girls_12_49": (0, 1),
    "share_18_49_of_female_18_59": (0, 1),
    "share_12_17_of_female_6_17": (0, 1),
}


class PlanningAssumptions(_Strict):
    planning_days: PlanningAssumption
    household_size: PlanningAssumption
    share_women_girls_12_49: PlanningAssumption
    share_18_49_of_female_18_59: PlanningAssumption
    share_12_17_of_female_6_17: PlanningAssumption

    @model_validator(mode="after")
    def _in_range(self) -> PlanningAssumptions:
        for name, (low, high) in PLANNING_BOUNDS.items():
            value = getattr(self, name).value
            if not low <= value <= high:
                raise ValueError(f"planning.{name}.value {value} lies outside {low}…{high}")
        return self


class SphereStandards(ParameterSet):
    """Sphere minimum standards used for the needs of people in collective centres, each with
    its citation, and the planning assumptions they need (``models/sphere_standards.yaml``)."""

    water: SphereWater
    covered_space: SphereCoveredSpace
    toilets: SphereToilets
    hygiene: SphereHygiene
    menstrual_hygiene: SphereKit
    household_items: SphereKit
    emergency_shelter: SphereKit
    planning: PlanningAssumptions

    @model_validator(mode="after")
    def _containers_ordered(self) -> SphereStandards:
        low, high = self.hygiene.water_container_l
        if high < low:
            raise ValueError("hygiene.water_container_l must be [smallest, largest] litres")
        return self

    @property
    def water_l_per_person_day(self) -> float:
        return self.water.l_per_person_day

    @property
    def covered_area_m2_per_person(self) -> float:
        return self.covered_space.m2_per_person

    @property
    def people_per_toilet(self) -> int:
        return self.toilets.people_per_toilet

    @property
    def planning_days(self) -> float:
        return self.planning.planning_days.value

    @property
    def household_size(self) -> float:
        return self.planning.household_size.value


class AdditiveGroup(_Strict):
    """Count columns where ``total`` = sum of ``parts`` on every row that has them all."""

    total: str
    parts: Annotated[list[str], Field(min_length=2)]


#: An HXL 1.1 hashtag with attributes, e.g. ``#affected +idps +f +children``.
HXL_HASHTAG = r"^#[a-z][a-z0-9_]*( \+[a-z][a-z0-9_]*)*$"


class SharedColumn(_Strict):
    label: Annotated[str, Field(min_length=2)]
    hxl: Annotated[str, Field(pattern=HXL_HASHTAG)]


class DataSharingRules(ParameterSet):
    """What an export of occupancy data may show: the small-number threshold, the count columns
    and their additive groups, and each column's label and HXL hashtag
    (``models/data_sharing.yaml``)."""

    min_count: Annotated[int, Field(ge=2, le=100)]
    count_columns: Annotated[list[str], Field(min_length=1)]
    additive_groups: list[AdditiveGroup]
    columns: dict[str, SharedColumn]

    @model_validator(mode="after")
    def _known_columns(self) -> DataSharingRules:
        counts = set(self.count_columns)
        for k, group in enumerate(self.additive_groups, start=1):
            unknown = sorted({group.total, *group.parts} - counts)
            if unknown:
                raise ValueError(f"additive group {k} ({group.total}) uses {unknown}, which are "
                                 "not in count_columns")
            if group.total in group.parts or len(set(group.parts)) != len(group.parts):
                raise ValueError(f"additive group {k} ({group.total}) repeats a column")
        unlabelled = sorted(counts - set(self.columns))
        if unlabelled:
            raise ValueError(f"count columns {unlabelled} have no entry under 'columns'")
        return self


PARAMETER_FILES.update({
    "sphere_standards.yaml": SphereStandards,
    "data_sharing.yaml": DataSharingRules,
})
