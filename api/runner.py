"""Where forecasts execute: in this process (the command line, tests) or in a child process
that the service's worker keeps warm.

A forecast is CPU-bound Python and numba work; run on a thread of the API's own process it
holds the interpreter lock for long stretches and every request waits behind it (p99 of the
read load went from tens to hundreds of milliseconds). In a child process it competes only
for the cores. The child dies with its parent (Linux ``PR_SET_PDEATHSIG``), so a killed
service never leaves a forecast writing behind the one that recovers it; a child that dies
(out of memory, a crash in a native library) fails its run with the reason, and the next run
gets a new child.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from floodwarn.ensemble import Execution, MemberProgress
from floodwarn.errors import FloodwarnError
from floodwarn.request import ForecastRequest

#: Members one after another in the process that runs the forecast.
SERIAL = Execution()
#: How often the parent looks at the child's progress (s).
PROGRESS_POLL_S = 0.5


class ProgressSink(Protocol):
    """Hears a run's steps and, while its ensemble members run, how many are done."""

    def step(self, name: str) -> None: ...

    def members(self, progress: MemberProgress) -> None: ...


class ForecastRunner(Protocol):
    def __call__(self, request: ForecastRequest, out_dir: Path, cache_dir: Path,
                 progress: ProgressSink, execution: Execution = ...
                 ) -> tuple[dict[str, Any], bool]: ...


def run_here(request: ForecastRequest, out_dir: Path, cache_dir: Path, progress: ProgressSink,
             execution: Execution = SERIAL) -> tuple[dict[str, Any], bool]:
    """Execute in this process: the run's record and whether it has risk outputs."""
    from floodwarn.pipeline import run_forecast

    result = run_forecast(request, out_dir, cache_dir=cache_dir, on_step=progress.step,
                          execution=execution, on_members=progress.members)
    return result.record, result.risk is not None


class ForecastProcessDiedError(FloodwarnError, RuntimeError):
    """The child process executing a forecast ended abruptly."""


def _die_with_parent() -> None:
    """In the child: receive SIGKILL when the process that started it ends (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child ends when its queue closes
        pass


class _ProgressFile:
    """In the child: the latest step and member count, as JSON in a file the parent polls."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.state: dict[str, Any] = {}

    def _write(self) -> None:
        partial = f"{self.path}.part"
        Path(partial).write_text(json.dumps(self.state))
        os.replace(partial, self.path)

    def step(self, name: str) -> None:
        self.state = {"step": name}
        self._write()

    def members(self, progress: MemberProgress) -> None:
        self.state["members"] = progress.to_json()
        self._write()


def _child_run(request_json: dict[str, Any], out_dir: str, cache_dir: str,
               progress_file: str, execution: Execution) -> tuple[dict[str, Any], bool]:
    return run_here(ForecastRequest.model_validate(request_json), Path(out_dir),
                    Path(cache_dir), _ProgressFile(progress_file), execution)


def _child_prepare(terrain_dir: str, cache_dir: str) -> dict[str, float]:
    from floodwarn.pipeline import prepare_forecasting

    return prepare_forecasting(terrain_dir, cache_dir=cache_dir)


class ForecastProcess:
    """A warm child process executing one forecast (or terrain preparation) at a time."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_die_with_parent)
        return self._pool

    def call(self, function: Callable[..., Any], *args: Any, what: str) -> Any:
        """``function(*args)`` in the child (a module-level function), waited for."""
        return self._result(self._executor().submit(function, *args), what)

    def _result(self, future: Future[Any], what: str) -> Any:
        try:
            return future.result()
        except BrokenProcessPool as exc:
            self.close()
            raise ForecastProcessDiedError(f"the process executing the {what} ended abruptly "
                                      "(out of memory, or killed); see the service log.") \
                from exc

    def prepare(self, terrain_dir: Path, cache_dir: Path) -> dict[str, float]:
        """Prepare the terrain for forecasting in the child."""
        return dict(self.call(_child_prepare, str(terrain_dir), str(cache_dir),
                              what="terrain preparation"))

    def __call__(self, request: ForecastRequest, out_dir: Path, cache_dir: Path,
                 progress: ProgressSink, execution: Execution = SERIAL
                 ) -> tuple[dict[str, Any], bool]:
        """Execute a forecast in the child (its ensemble members on ``execution``; a local
        cluster stays up in the child between runs), passing its steps and member counts on
        as they come."""
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        progress_file = out_dir.parent / f".{out_dir.name}.progress"
        progress_file.unlink(missing_ok=True)
        future = self._executor().submit(_child_run, request.model_dump(mode="json"),
                                         str(out_dir), str(cache_dir), str(progress_file),
                                         execution)
        seen: dict[str, Any] = {}
        try:
            while not future.done():
                time.sleep(PROGRESS_POLL_S)
                try:
                    state = json.loads(progress_file.read_text())
                except (OSError, ValueError):  # not written yet
                    continue
                if state.get("step") and state["step"] != seen.get("step"):
                    progress.step(state["step"])
                if state.get("members") and state["members"] != seen.get("members"):
                    members = state["members"]
                    progress.members(MemberProgress(
                        members["members_done"], members["members_total"],
                        members["elapsed_s"], members["eta_s"]))
                seen = state
            record, has_risk = self._result(future, "forecast")
        finally:
            progress_file.unlink(missing_ok=True)
        return record, bool(has_risk)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
