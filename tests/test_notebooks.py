"""The notebooks of notebooks/ run end to end on the demo's output — the one `floodwarn demo`
of the test session (`demo_output`, tests/conftest.py) — and are kept without outputs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("forecast_tour", "model_check", "planner_upgrades")
#: Longest a cell may run; the planner's flood scenarios take about a minute.
CELL_TIMEOUT_S = 600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _this_interpreter(tmp_path: Path) -> KernelManager:
    """A kernel of this test's Python (its virtual environment), not whichever `python3`
    kernel Jupyter's search path finds first."""
    spec = tmp_path / "kernels" / "floodwarn-tests"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "floodwarn tests", "language": "python"}))
    return KernelManager(kernel_name="floodwarn-tests", kernel_spec_manager=KernelSpecManager(
        kernel_dirs=[str(spec.parent)]))


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the session's demo (about 4 min) may be built in this test
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_on_the_demo(name, demo_output, tmp_path, monkeypatch):
    assert demo_output.exit_code == 0, demo_output.output
    monkeypatch.setenv("FLOODWARN_DEMO_DIR", str(demo_output.out_dir))
    # The planner's scenarios go to this test's folder, not into the shared demo output.
    monkeypatch.setenv("FLOODWARN_SCENARIOS_DIR", str(tmp_path / "scenarios"))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(notebook, km=_this_interpreter(tmp_path), timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute()
    except CellExecutionError as exc:  # the failing cell, its source and traceback
        pytest.fail(f"notebooks/{name}.ipynb failed:\n{ANSI_ESCAPE.sub('', str(exc))}",
                    pytrace=False)


def test_every_notebook_is_run_and_listed_in_the_readme():
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)
    readme = (REPO / "README.md").read_text()
    assert all(f"notebooks/{name}.ipynb" in readme for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_kept_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    dirty = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             and (cell.outputs or cell.execution_count is not None)]
    assert not dirty, f"cells {dirty} keep outputs: clear them before committing"
    assert notebook.cells[0].cell_type == "markdown"
