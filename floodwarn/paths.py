"""Where the shipped data (``gis_data/``) and parameter sets (``models/``) are found.

Looked up when called, never at import: ``FLOODWARN_GIS_DATA_DIR`` / ``FLOODWARN_MODELS_DIR``
override the directories of the source tree.
"""

from __future__ import annotations

import os
from pathlib import Path

from floodwarn.errors import DataFileError

_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def _directory(env_var: str, name: str) -> Path:
    configured = os.environ.get(env_var)
    path = Path(configured) if configured else _SOURCE_ROOT / name
    if not path.is_dir():
        raise DataFileError(
            f"{path}: the {name}/ directory was not found. Run floodwarn from its source tree "
            f"(pip install -e .) or set {env_var} to a copy of {name}/."
        )
    return path


def gis_data_dir() -> Path:
    """The shipped El Salvador data (``gis_data/``)."""
    return _directory("FLOODWARN_GIS_DATA_DIR", "gis_data")


def models_dir() -> Path:
    """The shipped parameter sets (``models/``)."""
    return _directory("FLOODWARN_MODELS_DIR", "models")
