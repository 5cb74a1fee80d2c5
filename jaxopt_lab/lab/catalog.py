"""What exists, read from the source files with ``ast`` -- nothing is imported, so ``jaxopt-lab list``
answers in well under a second and no broken experiment can crash it.

* experiments: the first sentence of each module docstring, and whether the module can be imported (a syntax
  error, or a top-level import of a package that is not installed, is listed with the experiment);
* optimizers: the ``register(name, family=..., paper=..., extra_args=...)`` calls of
  ``jaxopt_lab/optim`` and of helpers forwarding to it (a test checks this listing against the live
  registry);
* reproductions: ids and ``TITLE`` of ``configs/reproduce/*.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib.util
import pathlib
import re
from typing import Any, Optional

__all__ = ["Entry", "module_entry", "experiments", "optimizers", "reproductions"]

_OPTIM = pathlib.Path(__file__).resolve().parents[1] / "optim"


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    summary: str = ""
    error: str = ""       # why the module cannot be imported (empty if it can, as far as ast can tell)
    extra: tuple = ()


def _parse(path: pathlib.Path) -> tuple[Optional[ast.Module], str]:
    try:
        return ast.parse(path.read_text(errors="replace"), filename=str(path)), ""
    except SyntaxError as e:
        return None, f"syntax error at line {e.lineno}: {e.msg}"


def _missing_imports(tree: ast.Module) -> list[str]:
    """Top-level (absolute) imports whose package is not installed."""
    missing = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            try:
                found = importlib.util.find_spec(top) is not None
            except (ImportError, ValueError):
                found = False
            if not found and top not in missing:
                missing.append(top)
    return missing


def module_entry(path: pathlib.Path, name: Optional[str] = None) -> Entry:
    """Docstring summary and import problems of one module file."""
    tree, error = _parse(path)
    name = name or path.stem
    if tree is None:
        return Entry(name, "", error)
    missing = _missing_imports(tree)
    error = f"needs {', '.join(repr(m) for m in missing)}, not installed" if missing else ""
    return Entry(name, summary(ast.get_docstring(tree) or ""), error)


def summary(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line (a summary may wrap)."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    sentence = re.match(r"(.+?[.!?])(\s|$)", paragraph)
    return sentence.group(1) if sentence else paragraph


def experiments(folder: pathlib.Path) -> list[Entry]:
    return [module_entry(p) for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


def _constants(tree: ast.Module) -> dict[str, Any]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, SyntaxError, TypeError):
                pass
    return out


def _value(node: Optional[ast.AST], env: dict) -> Any:
    """A literal, a name bound in ``env``, a string/tuple sum, or a tuple of those; None otherwise."""
    if node is None:
        return None
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _value(node.left, env), _value(node.right, env)
        try:
            return left + right if left is not None and right is not None else None
        except TypeError:
            return None
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_value(e, env) for e in node.elts]
        return None if any(i is None for i in items) else tuple(items)
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


@dataclasses.dataclass(frozen=True)
class _Helper:
    """A function whose body calls ``register(...)`` with its parameters (e.g. ``_optax``)."""

    params: tuple
    defaults: dict
    call: ast.Call
    constants: dict


def _helpers(trees: dict) -> dict:
    found = {}
    for tree in trees.values():
        constants = _constants(tree)
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or node.name == "register":
                continue
            calls = [c for c in ast.walk(node) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)
                     and c.func.id == "register"]
            if not calls:
                continue
            args = node.args.posonlyargs + node.args.args
            params = tuple(a.arg for a in args)
            defaults = {a.arg: _value(d, constants) for a, d in zip(args[len(args) - len(node.args.defaults):],
                                                                   node.args.defaults)}
            defaults.update({a.arg: _value(d, constants) for a, d in zip(node.args.kwonlyargs,
                                                                        node.args.kw_defaults) if d})
            found[node.name] = _Helper(params, defaults, calls[0], constants)
    return found


def _registration(call: ast.Call, env: dict) -> Optional[Entry]:
    kw = {k.arg: k.value for k in call.keywords}
    name = _value(call.args[0], env) if call.args else _value(kw.get("name"), env)
    if not isinstance(name, str):
        return None
    paper, family = _value(kw.get("paper"), env), _value(kw.get("family"), env)
    extra = _value(kw.get("extra_args"), env) or ()
    return Entry(name, paper if isinstance(paper, str) else "?", extra=(family or "?", tuple(extra)))


def optimizers(folder: pathlib.Path = _OPTIM) -> list[Entry]:
    """``Entry(name, paper, extra=(family, extra_args))`` of every registered optimizer, by name.

    Reads ``register(...)`` calls and calls of helpers that forward to ``register`` (binding the
    helper's parameters), as decorators or statements, in every module of ``jaxopt_lab/optim``.
    Parsing them takes ~0.3 s, so the listing is kept until a file changes (a config error that lists
    the allowed names asks for it several times).
    """
    paths = sorted(pathlib.Path(folder).rglob("*.py"))
    stamps = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    return list(_optimizers(stamps))


@functools.lru_cache(maxsize=4)
def _optimizers(stamps: tuple) -> tuple[Entry, ...]:
    trees = {}
    for path, _, _ in stamps:
        tree, _ = _parse(pathlib.Path(path))
        if tree is not None:
            trees[path] = tree
    helpers = _helpers(trees)
    found = {}
    for tree in trees.values():
        constants = _constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id == "register":
                entry = _registration(node, constants)
            elif node.func.id in helpers:
                helper = helpers[node.func.id]
                env = {**helper.constants, **constants, **helper.defaults}
                env.update({p: _value(a, constants) for p, a in zip(helper.params, node.args)})
                env.update({k.arg: _value(k.value, constants) for k in node.keywords if k.arg})
                entry = _registration(helper.call, env)
            else:
                continue
            if entry is not None:
                found[entry.name] = entry
    return tuple(found[k] for k in sorted(found))


def reproductions(folder: pathlib.Path) -> list[Entry]:
    out = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree, error = _parse(path)
        title = _constants(tree).get("TITLE", "") if tree is not None else ""
        out.append(Entry(path.stem.replace("_", "-"), title if isinstance(title, str) else "", error))
    return out
