"""The notebooks in notebooks/ are stored executed, and execute from top to bottom without error.

Outputs are refreshed with ``python3 tools/refresh_notebooks.py``; the tests below never write a notebook.
"""

import os
import pathlib

import pytest

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_with_its_outputs(path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    # Every code cell was run, in order, in one session: a cell edited after the last refresh has no
    # execution count, and cells run out of order break the sequence.
    counts = [cell.execution_count for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{path.name}: stale outputs (execution counts {counts}); run python3 tools/refresh_notebooks.py")
    errors = [o for cell in code for o in cell.outputs if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: stored with an error output"
    assert any(cell.outputs for cell in code), f"{path.name}: stored without outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    root = str(path.parents[1])
    monkeypatch.setenv("JAXOPT_LAB_ROOT", root)
    # the kernel imports this checkout's jaxopt_lab, whatever is installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    notebook = nbformat.read(path, as_version=4)
    assert any(cell.cell_type == "code" for cell in notebook.cells)
    # Runs in a scratch directory so a notebook that writes runs/ leaves the checkout clean; the
    # executed copy stays in memory (the stored notebook is not rewritten).
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
