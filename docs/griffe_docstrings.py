"""A griffe extension that lets the API pages render the docstrings as they are written.

The docstrings follow the Google style with a few reStructuredText habits; Markdown would mangle
those, so each docstring is rewritten once, when griffe loads it:

* top-level doctest blocks (``>>>`` lines and their output) become ``pycon`` code fences (Markdown
  would read ``>>>`` as nested quotes and ``[a, b]`` outputs as links); doctests indented under an
  ``Example:`` section are left to griffe's own example parser;
* ``.. math:: expr`` (and its indented continuation) becomes a ``$$ ... $$`` display block;
* Sphinx roles such as ``:func:`~pkg.name``` become inline code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|obj|exc):`~?([^`]+)`")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _math(lines: list[str], i: int, out: list[str]) -> int:
    """``.. math::`` at line i, with its continuation (lines indented deeper), as a ``$$`` block."""
    indent = _indent(lines[i])
    first = lines[i].split("::", 1)[1].strip()
    body = [first] if first else []
    i += 1
    while i < len(lines):
        if lines[i].strip() and _indent(lines[i]) > indent:
            body.append(lines[i].strip())
        elif lines[i].strip() or not any(
                l.strip() and _indent(l) > indent for l in lines[i + 1:i + 2]):
            break
        i += 1
    pad = " " * indent
    out += ["", pad + "$$", *[pad + b for b in body], pad + "$$", ""]
    return i


def _doctest(lines: list[str], i: int, out: list[str]) -> int:
    block = []
    while i < len(lines) and lines[i].strip():
        block.append(lines[i])
        i += 1
    out += ["", "```pycon", *block, "```", ""]
    return i


def rewrite(text: str) -> str:
    lines = _ROLE.sub(r"`\1`", text).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith(".. math::"):
            i = _math(lines, i, out)
        elif line.startswith(">>>"):
            i = _doctest(lines, i, out)
        else:
            out.append(line)
            i += 1
    return "\n".join(out)


class DocstringRewrite(griffe.Extension):
    """Rewrite every loaded docstring with :func:`rewrite`."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if getattr(obj, "docstring", None) is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
