"""Re-run the tutorial notebooks and store them with their outputs, so they read on GitHub.

    python3 tools/refresh_notebooks.py                 # every notebook in notebooks/
    python3 tools/refresh_notebooks.py 03_lowrank      # only the ones whose name contains an argument

Each notebook runs top to bottom in a fresh kernel, from a scratch directory (anything it writes, such
as runs/, goes there), with this checkout's ``jaxopt_lab`` first on the path. It is written back only
if every cell succeeds; a failing notebook is reported and left as it was. Execution timings are not
recorded, so a refresh changes only what the code prints and draws. ``tests/test_notebooks.py``
executes the same notebooks without writing them.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def execute(path: pathlib.Path, *, timeout: int = 600) -> nbformat.NotebookNode:
    """``path`` executed in a fresh kernel from a scratch directory; raises on the first failing cell."""
    notebook = nbformat.read(path, as_version=4)
    os.environ["JAXOPT_LAB_ROOT"] = str(ROOT)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="notebook-") as scratch:
        NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": scratch}}).execute()
    return notebook


def main(argv: list[str]) -> int:
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if argv:
        paths = [p for p in paths if any(arg in p.stem for arg in argv)]
        if not paths:
            print(f"no notebook in {NOTEBOOKS} matches {argv}", file=sys.stderr)
            return 2
    failed = []
    for path in paths:
        start = time.perf_counter()
        print(f"{path.name}: running ...", flush=True)
        try:
            notebook = execute(path)
        except CellExecutionError as error:
            failed.append(path.name)
            print(f"{path.name}: FAILED, left unchanged\n{error}", file=sys.stderr)
            continue
        nbformat.write(notebook, path)
        print(f"{path.name}: refreshed in {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
