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

__all__ = ["Entry", "module_entry", "experiments", "optimizers", "optimizer_parameters", "reproductions"]

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
    factory: Optional[str] = None  # the parameter registered as the factory: register(...)(factory)


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
            factory = next((c.args[0].id for c in ast.walk(node) if isinstance(c, ast.Call) and c.func is calls[0]
                            and c.args and isinstance(c.args[0], ast.Name)), None)
            found[node.name] = _Helper(params, defaults, calls[0], constants, factory)
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
    return list(_optimizers(_stamps(folder)))


def _stamps(folder: pathlib.Path) -> tuple:
    """Each source file with its modification time and size: the caches' key (a changed file re-reads)."""
    paths = sorted(pathlib.Path(folder).rglob("*.py"))
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)


@functools.lru_cache(maxsize=4)
def _trees(stamps: tuple) -> dict:
    return {path: tree for path, _, _ in stamps if (tree := _parse(pathlib.Path(path))[0]) is not None}


def _entry_of(node: ast.Call, constants: dict, helpers: dict) -> Optional[Entry]:
    """The registration a ``register(...)`` call, or a call of a helper forwarding to it, makes."""
    if not isinstance(node.func, ast.Name):
        return None
    if node.func.id == "register":
        return _registration(node, constants)
    if node.func.id in helpers:
        helper = helpers[node.func.id]
        env = {**helper.constants, **constants, **helper.defaults}
        env.update({p: _value(a, constants) for p, a in zip(helper.params, node.args)})
        env.update({k.arg: _value(k.value, constants) for k in node.keywords if k.arg})
        return _registration(helper.call, env)
    return None


@functools.lru_cache(maxsize=4)
def _registrations(stamps: tuple) -> dict:
    """``{name: (Entry, factory)}``: every registration in the sources, with its factory as the parameter
    names of our decorated function, or the dotted name of the function an optax wrapper registers (e.g.
    ``"optax.adam"``), or None when it cannot be told."""
    trees = _trees(stamps)
    helpers = _helpers(trees)
    found = {}
    for tree in trees.values():
        constants = _constants(tree)
        for node in ast.walk(tree):  # breadth first: a decorated function before its decorator's call
            if isinstance(node, ast.FunctionDef):  # @register("name", ...) or @_register(...) def factory(...)
                for decorator in node.decorator_list:
                    entry = _entry_of(decorator, constants, helpers) if isinstance(decorator, ast.Call) else None
                    if entry is not None:
                        found[entry.name] = (entry, _parameters(node))
            elif isinstance(node, ast.Call) and (entry := _entry_of(node, constants, helpers)) is not None:
                helper = helpers.get(getattr(node.func, "id", None))  # e.g. _optax("adam", optax.adam, ...)
                bound = dict(zip(helper.params, node.args)) | {k.arg: k.value for k in node.keywords if k.arg} \
                    if helper is not None else {}
                factory = _dotted(bound[helper.factory]) if helper is not None and helper.factory in bound else None
                known = found.get(entry.name, (None, None))[1]
                found[entry.name] = (entry, factory if known is None else known)
    return found


def _optimizers(stamps: tuple) -> tuple[Entry, ...]:
    found = _registrations(stamps)
    return tuple(found[k][0] for k in sorted(found))


# ------------------------------------------------------------------------------------------------
# The arguments each optimizer takes, from its factory's signature in the source (ours or optax's).

def optimizer_parameters(folder: pathlib.Path = _OPTIM) -> dict[str, Optional[tuple[str, ...]]]:
    """``{name: the parameter names of its factory}`` for every registered optimizer, as
    ``inspect.signature(optim.info(name).factory).parameters`` has them (a test checks that), read from
    the sources: the decorated function for ours, the function an optax wrapper names (followed through
    optax's re-exports and ``functools.partial``) for optax's. None where a factory cannot be followed."""
    return dict(_optimizer_parameters(_stamps(folder)))


@functools.lru_cache(maxsize=4)
def _optimizer_parameters(stamps: tuple) -> tuple:
    found = {name: factory if isinstance(factory, tuple) or factory is None else _external_parameters(factory)
             for name, (_, factory) in _registrations(stamps).items()}
    return tuple(sorted(found.items()))


def _parameters(node: ast.FunctionDef) -> tuple[str, ...]:
    a = node.args
    return tuple(x.arg for x in [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs,
                                 *([a.kwarg] if a.kwarg else [])])


def _dotted(node: ast.AST) -> Optional[str]:
    """``"optax.contrib.muon"`` for that attribute chain; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)) is not None:
        return f"{base}.{node.attr}"
    return None


@functools.lru_cache(maxsize=None)
def _module_tree(module: str) -> tuple[Optional[ast.Module], str]:
    """The parsed source of an installed module (found from its top-level package, importing nothing)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return None, module
    if spec is None or not spec.submodule_search_locations:
        return None, module
    base = pathlib.Path(list(spec.submodule_search_locations)[0]).joinpath(*rest)
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return _parse(path)[0], module if path.name != "__init__.py" else module + ".__init__"
    return None, module


def _external_parameters(dotted: Optional[str], depth: int = 0) -> Optional[tuple[str, ...]]:
    """Parameters of the function ``package.module.name``, following re-exports (``from x import name``),
    aliases and ``functools.partial`` (whose signature keeps every parameter) by ``ast``."""
    if dotted is None or "." not in dotted or depth > 8:
        return None
    module, _, name = dotted.rpartition(".")
    tree, where = _module_tree(module)
    if tree is None:
        return None
    package = module if where.endswith(".__init__") else module.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return _parameters(node)
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    source = node.module or ""
                    if node.level:
                        parts = package.split(".")
                        source = ".".join(parts[:len(parts) - node.level + 1] + ([source] if source else []))
                    return _external_parameters(f"{source}.{alias.name}", depth + 1)
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, ast.Call) and _dotted(value.func) in ("functools.partial", "partial") and value.args:
                value = value.args[0]
            target = _dotted(value)
            if target is not None:
                return _external_parameters(target if "." in target else f"{module}.{target}", depth + 1)
            return None
    return None


def reproductions(folder: pathlib.Path) -> list[Entry]:
    out = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree, error = _parse(path)
        title = _constants(tree).get("TITLE", "") if tree is not None else ""
        out.append(Entry(path.stem.replace("_", "-"), title if isinstance(title, str) else "", error))
    return out
