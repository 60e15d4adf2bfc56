"""Exceptions raised by floodwarn.

Every error says what is wrong, where (file, variable, field, cell) and how to fix it. Each
class also inherits the builtin a caller would naturally catch, so ``except ValueError`` keeps
working for code that does not know floodwarn.
"""

from __future__ import annotations


class FloodwarnError(Exception):
    """Base class of every error floodwarn raises on purpose."""


class InputError(FloodwarnError, ValueError):
    """An input (array, raster, vector layer, parameter) is invalid."""


class CRSError(InputError):
    """An input is in a coordinate reference system the step cannot use."""


class DataFileError(FloodwarnError, OSError):
    """A file is missing, unreadable, truncated or not of the expected format."""


class DownloadError(FloodwarnError, OSError):
    """A remote resource could not be fetched."""


class TerrainModelError(FloodwarnError, RuntimeError):
    """A terrain model on disk is incomplete or inconsistent with itself."""


class NotFoundError(FloodwarnError, LookupError):
    """A thing asked for by its id (a run, a message, a key) does not exist."""


class ServiceUnavailableError(FloodwarnError, RuntimeError):
    """The service cannot do this now (its data folder is read-only or full, its store is
    unreachable); asking again later may work."""
