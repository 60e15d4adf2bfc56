"""Parameter sets in ``models/``: YAML files validated by pydantic models on load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, TypeVar

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


#: Every parameter file shipped in models/ and the model that validates it.
PARAMETER_FILES: dict[str, type[ParameterSet]] = {
    "collective_centres.yaml": CollectiveCentreRules,
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
