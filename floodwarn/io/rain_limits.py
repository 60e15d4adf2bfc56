"""Limits every rain reader applies before it decodes anything, and how their messages name
files.

The cell budget (:data:`MAX_RAIN_CELLS`) is checked against the size a file *declares*, so a
few-kilobyte file declaring billions of cells is refused before any allocation. Messages name a
file by its name only: they reach users of the service, the server's folders must not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from floodwarn.errors import DataFileError, FloodwarnError, InputError

#: Largest forecast read, in cells (members × steps × rows × columns as the file declares
#: them), unless the caller passes ``max_cells``. Reading costs about 25 bytes per cell at its
#: peak (the file's float32, float64 working copies, the float32 result), so 50 million cells
#: is ≈ 1.2 GB. Real forecasts for El Salvador are far smaller: a 51-member ensemble × 40 steps
#: on a 0.1° grid over the country and its upstream basins (≈ 35 × 25 cells) is 1.8 million;
#: the demo storm on a ≈ 1 km grid (0.01°, 330 × 220) for 72 hourly steps is 5.2 million; a
#: 3-km WRF run over Central America (≈ 600 × 600) for 72 h is 26 million. Larger files are
#: global or continental grids: crop them to the country (see :data:`CROP_BOX`).
MAX_RAIN_CELLS = 50_000_000

#: El Salvador and the upstream basins of its rivers (Lempa, Paz, Goascorán) with a margin:
#: west, south, east, north in degrees — the demo storm's grid.
CROP_BOX = (-90.5, 12.8, -87.2, 15.0)

#: Characters that make a path a pattern (:mod:`glob`) when no file has that exact name.
GLOB_CHARACTERS = "*?["


def file_name(path: str | Path) -> str:
    """How messages name a file: its name, never the folders above it."""
    return Path(path).name or str(path)


def decoder_reason(exc: BaseException, path: str | Path) -> str:
    """A decoder's message, shortened, with the file's full path replaced by its name."""
    text = str(exc) or type(exc).__name__
    name = file_name(path)
    text = text.replace(str(Path(path).resolve()), name).replace(str(path), name)
    parent = str(Path(path).parent)
    if parent not in ("", ".", "/"):
        text = text.replace(parent, "…")
    text = " ".join(text.split())
    return text if len(text) <= 200 else text[:197] + "…"


#: What decoders (HDF5, netCDF-C, cftime, numpy) raise on a truncated or corrupt file.
DECODER_ERRORS = (OSError, RuntimeError, ValueError, OverflowError, TypeError, KeyError,
                  IndexError)


@contextmanager
def decoding(path: str | Path, what: str = "data") -> Iterator[None]:
    """Any decoder failure inside becomes a :class:`DataFileError` naming the file (floodwarn's
    own errors pass through)."""
    try:
        yield
    except FloodwarnError:
        raise
    except DECODER_ERRORS as exc:
        raise DataFileError(
            f"{file_name(path)}: its {what} cannot be decoded ({decoder_reason(exc, path)}); "
            "the file is probably truncated or corrupt — download it again."
        ) from exc


def cell_budget(max_cells: int | None) -> int:
    if max_cells is None:
        return MAX_RAIN_CELLS
    if isinstance(max_cells, bool) or not isinstance(max_cells, int) or max_cells <= 0:
        raise InputError(f"max_cells must be a positive whole number of cells; got "
                         f"{max_cells!r} (default {MAX_RAIN_CELLS:,}).")
    return max_cells


def check_declared_cells(name: str, shape: Sequence[int], axes: str, max_cells: int | None,
                 crop: str) -> None:
    """Refuse a declared array larger than the budget, before anything is read."""
    budget = cell_budget(max_cells)
    cells = math.prod(int(n) for n in shape)
    if cells > budget:
        raise InputError(
            f"{name}: declares {' × '.join(f'{int(n):,}' for n in shape)} ({axes}) = "
            f"{cells:,} cells of rain, more than the budget of {budget:,} cells; nothing was "
            f"read. Crop the forecast to El Salvador and its basins (lon {CROP_BOX[0]} to "
            f"{CROP_BOX[2]}, lat {CROP_BOX[1]} to {CROP_BOX[3]}, e.g. {crop}), or, if the "
            "machine has the memory (≈ 25 bytes a cell), raise the budget (max_cells; the "
            "service's FLOODWARN_MAX_RAIN_CELLS)."
        )


def is_pattern(path: str | Path) -> bool:
    """A pattern: a path with glob characters that names no existing file or folder."""
    return any(ch in str(path) for ch in GLOB_CHARACTERS) and not Path(path).exists()
