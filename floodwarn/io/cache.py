"""A folder of named arrays, keyed by a content hash: products that are costly to make and
depend only on their inputs (catchment rain weights, design-storm thresholds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from floodwarn.logs import get_logger

log = get_logger(__name__)


class ArrayCache:
    """``directory/<kind>_<key>.npz``; ``directory=None`` caches nothing.

    Writes go to a temporary name and are renamed into place, so concurrent runs (ensemble
    members, Dask workers) can share one cache and never read a half-written file. An
    unreadable entry is ignored (logged) and made again.
    """

    def __init__(self, directory: str | Path | None) -> None:
        self.directory = Path(directory) if directory is not None else None

    def _path(self, kind: str, key: str) -> Path | None:
        return None if self.directory is None else self.directory / f"{kind}_{key}.npz"

    def load(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        path = self._path(kind, key)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError) as exc:
            log.warning("unreadable cache entry ignored", extra={"path": str(path),
                                                                  "error": str(exc)})
            return None
        log.info("cache hit", extra={"kind": kind, "path": str(path)})
        return arrays

    def save(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        path = self._path(kind, key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(path)
