"""Which source files a run depends on, and one content hash over them (the cache key of ``reproduce --all``).

The files of a reproduction are:

* its config file and every config file it loads while resolving (``load_config_module``);
* the experiment module ``experiments/<name>.py``;
* every ``jaxopt_lab`` module that module imports, followed transitively: ``import jaxopt_lab.a.b`` and
  ``from jaxopt_lab.a import b`` count ``jaxopt_lab/a/b.py`` (or ``b/__init__.py``) and the ``__init__.py``
  of each package above it; a package whose ``__init__`` imports its names lazily (a module-level
  ``__getattr__``) counts the module its table of lazy names maps a name to, or every module in it when
  the name cannot be placed. Imports anywhere in a file count (inside functions too): the set errs on the
  side of too many files.

``reproduce`` adds the runtime itself (``jaxopt_lab/lab/run.py`` and what it imports) to every
reproduction's files.

The hash is the sha256 of the files' contents together with their paths relative to their project root, so
a run is reused only when none of the files it depends on has changed by a single byte -- whether the
change is committed or not. Nothing is imported: files are read with ``ast``.
"""

from __future__ import annotations

import ast
import hashlib
import pathlib
from typing import Iterable, Optional, Union

__all__ = ["module_files", "content_hash"]

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]  # .../jaxopt_lab
_PACKAGE = _PACKAGE_DIR.name


def _module_file(dotted: str) -> Optional[pathlib.Path]:
    """``jaxopt_lab/a/b.py`` or ``jaxopt_lab/a/b/__init__.py`` for ``jaxopt_lab.a.b``; None if neither."""
    parts = dotted.split(".")
    if parts[0] != _PACKAGE:
        return None
    base = _PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _dotted(path: pathlib.Path) -> str:
    rel = path.relative_to(_PACKAGE_DIR.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _is_lazy(tree: ast.Module) -> bool:
    return any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)


def _lazy_table(tree: ast.Module) -> dict[str, str]:
    """``{"Name": "module"}`` entries of the dict literals in a lazy package's ``__init__``."""
    table = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and isinstance(v, ast.Constant) and isinstance(k.value, str) \
                        and isinstance(v.value, str) and v.value.isidentifier():
                    table[k.value] = v.value
    return table


def _defined(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _imports(path: pathlib.Path, tree: ast.Module) -> set[pathlib.Path]:
    """The jaxopt_lab module files that ``path`` imports (see the module docstring)."""
    here = _dotted(path) if path.is_relative_to(_PACKAGE_DIR) else ""
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[pathlib.Path] = set()

    def add(dotted: str, names: Iterable[str] = ()) -> None:
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):  # the packages above are imported too
            f = _module_file(".".join(parts[:i]))
            if f is not None:
                found.add(f)
        target = _module_file(dotted)
        if target is None:
            return
        if target.name != "__init__.py":
            return
        init = _parse(target)
        for name in names:
            sub = _module_file(f"{dotted}.{name}") or _module_file(f"{dotted}.{_lazy_table(init).get(name)}")
            if sub is not None:
                found.add(sub)
            elif _is_lazy(init) and (name == "*" or name not in _defined(init)):
                found.update(target.parent.rglob("*.py"))  # a lazy name we cannot place: all of it

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, ["*"] if alias.name == _PACKAGE else ())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                dotted = ".".join(base + ([node.module] if node.module else []))
            else:
                dotted = node.module or ""
            add(dotted, [a.name for a in node.names])
    return found


def _parse(path: pathlib.Path) -> ast.Module:
    try:
        return ast.parse(path.read_text(errors="replace"), filename=str(path))
    except SyntaxError:
        return ast.Module(body=[], type_ignores=[])


def module_files(*entry_points: Union[str, pathlib.Path]) -> list[pathlib.Path]:
    """The entry files and every jaxopt_lab module they import, transitively; sorted."""
    todo = [pathlib.Path(p).resolve() for p in entry_points]
    seen: set[pathlib.Path] = set()
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        todo.extend(f for f in _imports(path, _parse(path)) if f not in seen)
    return sorted(seen)


def _label(path: pathlib.Path) -> str:
    """A path that does not depend on where the checkout lives: relative to its project root."""
    for parent in path.parents:
        if (parent / "experiments").is_dir() or (parent / "configs").is_dir() or (parent / _PACKAGE).is_dir():
            return str(path.relative_to(parent))
    return path.name


def content_hash(files: Iterable[Union[str, pathlib.Path]]) -> str:
    """sha256 (hex, 16 characters) over the files' relative paths and contents."""
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(f).resolve() for f in files):
        digest.update(_label(path).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"missing")
    return digest.hexdigest()[:16]
