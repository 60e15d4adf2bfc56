"""Structured logging: one JSON object per line, one line per step with its duration.

Nothing here configures logging at import; :func:`configure_logging` is called by the CLI (or
by an application embedding floodwarn) with the level it wants.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOGGER_NAME = "floodwarn"


class JsonLineFormatter(logging.Formatter):
    """Render a record as one JSON object: time, level, event and any ``extra`` fields."""

    _standard: frozenset[str] = frozenset(vars(logging.makeLogRecord({})))

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in self._standard and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> None:
    """Send floodwarn's logs as JSON lines to ``stream`` (stderr by default)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.handlers.clear()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def get_logger(name: str) -> logging.Logger:
    """Logger under the ``floodwarn`` namespace."""
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


@contextmanager
def timed_step(
    logger: logging.Logger, step: str, timings: dict[str, float] | None = None, **fields: Any
) -> Iterator[dict[str, Any]]:
    """Log one line when ``step`` ends, with its duration in seconds and any extra fields.

    The yielded dict can be filled by the block with figures to log (cells, reaches, …). When
    ``timings`` is given, the duration is also stored there under ``step``.
    """
    extra: dict[str, Any] = dict(fields)
    start = time.perf_counter()
    try:
        yield extra
    finally:
        duration = time.perf_counter() - start
        if timings is not None:
            timings[step] = round(duration, 4)
        logger.info(step, extra={"step": step, "duration_s": round(duration, 4), **extra})
