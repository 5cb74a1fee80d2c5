"""The documentation site builds without a warning, and the repository never points outside itself."""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The build spec's file names (or its name alone, followed by a section), the shared folder, issue
# numbers; each spelled in two pieces so that this file does not match itself.
_OUTSIDE = re.compile("|".join([
    r"\bPAPERS" + r"\b",
    r"DESIGN" + r"\.md",
    r"\.\./" + r"shared",
    r"(?i:\bissues?\s+#?" + r"[0-9]+\b)",
]))


def _repository_files() -> list[pathlib.Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: the file list comes from git")
    return [ROOT / name for name in listed.split("\0") if name]


def test_no_file_outside_docs_points_outside_the_repository():
    hits = []
    for path in _repository_files():
        relative = path.relative_to(ROOT)
        if relative.parts[0] == "docs" or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        for number, line in enumerate(text.splitlines(), 1):
            match = _OUTSIDE.search(line)
            if match:
                hits.append(f"{relative}:{number}: {match.group(0)!r}")
    assert not hits, ("cite the paper (title, arXiv id) or docs/ instead of:\n" + "\n".join(hits[:50])
                      + (f"\n... and {len(hits) - 50} more" if len(hits) > 50 else ""))


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install -e '.[docs]' to build the documentation")
    # --strict: a broken link, a missing page, an unresolved API reference or a docstring that does not
    # render is an error.
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path),
                             "--config-file", str(ROOT / "mkdocs.yml")],
                            cwd=ROOT, capture_output=True, text=True, timeout=1200,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    for page in ("index.html", "design/index.html", "cli/index.html", "reproductions/index.html",
                 "api/optim/index.html", "sensing/index.html"):
        assert (tmp_path / page).is_file(), page
    # the generated pages are filled: every reproduction config appears, the CLI help is there
    reproductions = (tmp_path / "reproductions" / "index.html").read_text()
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    figure_ids = hooks._reproduction_files(ROOT)
    assert figure_ids
    for figure_id in figure_ids:
        assert f'id="{figure_id}"' in reproductions, figure_id
    assert "usage: jaxopt-lab run" in (tmp_path / "cli" / "index.html").read_text()
    api = (tmp_path / "api" / "optim" / "index.html").read_text()
    for name in ("sam", "galore", "adamp", "names"):   # one per family page section, and the registry
        assert re.search(rf'id="jaxopt_lab\.optim\.[\w.]*\b{name}"', api), name
