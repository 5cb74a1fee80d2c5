"""Where experiments and configs live: project roots, each with ``experiments/`` and/or ``configs/``.

Roots are searched in order:

1. ``$JAXOPT_LAB_ROOT`` if set (then it is the only root);
2. the root of the config file being loaded, then of those loaded before it (the nearest folder above
   the file with ``experiments/`` or ``configs/``), so an absolute config path identifies its project
   by itself;
3. the nearest such folder from the working directory upwards: a user's own project;
4. the built-in project: the checkout this package was installed from (``pip install -e .``), or the
   copy of ``experiments/`` and ``configs/`` shipped inside the package (``jaxopt_lab/_project``) by a
   regular install.

An experiment or config in an earlier root shadows one of the same name in a later root, so a user's
project works beside the built-in experiments and reproductions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import os
import pathlib
import sys
from types import ModuleType
from typing import Iterator, Optional, Union

from .config import ConfigError

__all__ = ["project_root", "project_roots", "builtin_root", "root_of", "rooted_at", "resolve_config",
           "experiment_names", "experiment_path", "load_experiment", "config_files", "Declared", "declared", "defaults_table", "known_keys"]

_PACKAGE_PARENT = pathlib.Path(__file__).resolve().parents[2]
_SHIPPED = pathlib.Path(__file__).resolve().parents[1] / "_project"
_CONFIG_ROOTS: list[pathlib.Path] = []  # roots of the config files being loaded (innermost last)
_LOADED_ROOTS: list[pathlib.Path] = []  # roots of the config files loaded so far (latest first)


def _is_root(path: pathlib.Path) -> bool:
    return (path / "experiments").is_dir() or (path / "configs").is_dir()


def builtin_root() -> Optional[pathlib.Path]:
    for candidate in (_PACKAGE_PARENT, _SHIPPED):
        if (candidate / "experiments").is_dir() and (candidate / "configs").is_dir():
            return candidate
    return None


def root_of(path: Union[str, pathlib.Path]) -> Optional[pathlib.Path]:
    """The nearest folder above ``path`` that holds ``experiments/`` or ``configs/``."""
    path = pathlib.Path(path).resolve()
    for candidate in path.parents:
        if _is_root(candidate):
            return candidate
    return None


@contextlib.contextmanager
def rooted_at(config_path: Union[str, pathlib.Path]) -> Iterator[None]:
    """While a config file is loaded, its own project comes first (see the module docstring)."""
    root = root_of(config_path)
    if root is not None:
        _CONFIG_ROOTS.append(root)
        if root in _LOADED_ROOTS:
            _LOADED_ROOTS.remove(root)
        _LOADED_ROOTS.insert(0, root)  # the run that follows finds the config's experiment there
    try:
        yield
    finally:
        if root is not None:
            _CONFIG_ROOTS.pop()


def project_roots() -> list[pathlib.Path]:
    env = os.environ.get("JAXOPT_LAB_ROOT")
    if env:
        return [pathlib.Path(env).resolve()]
    roots = list(reversed(_CONFIG_ROOTS)) + _LOADED_ROOTS
    here = pathlib.Path.cwd().resolve()
    roots += [c for c in (here, *here.parents) if _is_root(c)][:1]
    builtin = builtin_root()
    roots += [builtin] if builtin is not None else []
    unique = list(dict.fromkeys(roots))
    if not unique:
        raise ConfigError("cannot find experiments/ and configs/ folders: this installation ships none "
                          "and none are above the working directory; set JAXOPT_LAB_ROOT")
    return unique


def project_root() -> pathlib.Path:
    """The first project root: the current config's project, the user's, or the built-in one."""
    return project_roots()[0]


def resolve_config(text: Union[str, pathlib.Path]) -> pathlib.Path:
    """A config file given as a path (absolute, or relative to the working directory or to a project
    root) or by name (``quickstart``, ``reproduce/sns_iterations``); ``ConfigError`` if none exists."""
    path = pathlib.Path(text)
    if path.is_file() or path.is_absolute():
        return path
    tries = [path] if path.suffix == ".py" else [path.with_name(path.name + ".py")]
    if path.parts[:1] != ("configs",):
        tries += [pathlib.Path("configs") / t for t in tries]
    for root in project_roots():
        for t in tries:
            if (root / t).is_file():
                return root / t
    return path


def experiment_names() -> list[str]:
    names = set()
    for root in project_roots():
        names |= {p.stem for p in (root / "experiments").glob("*.py") if not p.name.startswith("_")}
    return sorted(names)


def experiment_path(name: str) -> Optional[pathlib.Path]:
    for root in project_roots():
        if (root / "experiments" / f"{name}.py").is_file():
            return root / "experiments" / f"{name}.py"
    return None


@functools.lru_cache(maxsize=None)
def _import(path: str) -> ModuleType:
    name = "jaxopt_lab_experiment_" + pathlib.Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def load_experiment(name: str) -> ModuleType:
    """The module ``experiments/<name>.py`` of the first root that has it; ``ConfigError`` listing what
    exists if none does."""
    path = experiment_path(name)
    if path is None:
        raise ConfigError(f"config key 'experiment' = {name!r}: unknown experiment; must be one of "
                          f"{', '.join(experiment_names())}")
    module = _import(str(path))
    if not callable(getattr(module, "run", None)):
        raise ConfigError(f"experiment {name!r} defines no run(cfg, ctx)")
    return module


def config_files() -> list[pathlib.Path]:
    """Every config file, by path relative to its root; an earlier root shadows a later one."""
    seen = {}
    for root in project_roots():
        for p in sorted((root / "configs").rglob("*.py")):
            if not p.name.startswith("_"):
                seen.setdefault(p.relative_to(root), p)
    return [seen[k] for k in sorted(seen)]


def _config_keys(path: pathlib.Path) -> tuple[Optional[str], frozenset]:
    """``(experiment, dotted keys)`` of one config file; ``(None, {})`` if it does not load."""
    from .config import key_patterns, load_config_module, not_recording

    try:
        with not_recording():  # read for their keys only: not files this run depends on
            cfg = load_config_module(path).get_config()
        return cfg.get("experiment"), frozenset(key_patterns(cfg))
    except Exception:  # noqa: BLE001 -- a broken config elsewhere must not block this one
        return None, frozenset()


@functools.lru_cache(maxsize=None)
def _shipped_keys(roots: tuple, experiment: str) -> dict:
    """``{path: keys}`` of the config files under the roots' ``configs/`` that run ``experiment``."""
    found = {}
    for path in sorted(p for root in roots for p in pathlib.Path(root, "configs").rglob("*.py")):
        text = path.read_text(errors="replace")
        if f"'{experiment}'" not in text and f'"{experiment}"' not in text and "load_config" not in text:
            continue  # cheap filter: a config naming the experiment spells its name (or loads another)
        name, keys = _config_keys(path)
        if name == experiment:
            found[str(path.resolve())] = keys
    return found


@dataclasses.dataclass(frozen=True)
class Declared:
    """What an experiment file declares about its config, read with ``ast`` (nothing imported).

    Attributes:
      keys: the keys of ``CONFIG_SPEC`` and the dotted keys of ``CONFIG_KEYS``.
      spec: the ``CONFIG_SPEC`` rules that evaluate from literals, ``Range``/``OneOf``/``Each``,
        ``optim.names`` (the registry as :mod:`jaxopt_lab.lab.catalog` reads it; a file that calls
        ``register`` may add names when imported, so for it the caller confirms a refusal by importing)
        and the module's literal constants alone; any other rule is checked after the import.
      config_keys: whether it declares ``CONFIG_KEYS``.
      defaults: its ``CONFIG_DEFAULTS`` table ``{dotted key: (default, help)}``, or None if it has none.
      registry_keys: the ``OneOf(optim.names)`` keys of a file that may register names.
      complete: False when ``ast`` cannot follow all of ``CONFIG_SPEC`` (e.g. a comprehension over
        another module's table) or ``CONFIG_RULES``: then ``keys``, ``spec`` and ``rules`` are partial
        and only the import tells all.
      rules: its ``CONFIG_RULES`` (:class:`jaxopt_lab.lab.rules.Rule`), cross-key rules checked before
        the import.
    """

    keys: frozenset
    spec: dict
    config_keys: bool
    defaults: Optional[dict] = None
    registry_keys: frozenset = frozenset()
    complete: bool = True
    rules: tuple = ()


class _OptimNames:
    """``optim.names`` for a ``CONFIG_SPEC`` read without importing jaxopt_lab.optim."""

    @staticmethod
    def names() -> list[str]:
        from .rules import optimizer_names

        return optimizer_names()


def declared(path: Union[str, pathlib.Path]) -> Optional[Declared]:
    """:class:`Declared` of an experiment file; None when it does not parse (then the caller imports it,
    as it does when ``Declared.complete`` is False)."""
    stat = pathlib.Path(path).stat()
    return _declared(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=None)
def _declared(path: str, mtime_ns: int, size: int) -> Optional[Declared]:
    import ast

    from .config import Each, OneOf, Range
    from .rules import Rule

    source = pathlib.Path(path).read_text(errors="replace")
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    env = {"Range": Range, "OneOf": OneOf, "Each": Each, "Rule": Rule,
           # the registry's names as jaxopt-lab list reads them (checked against the live registry by a test)
           "optim": _OptimNames(),
           # another experiment's CONFIG_SPEC as its file declares it (e.g. in a comprehension)
           "load_experiment": _declared_spec}
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = node.value
            try:
                env.setdefault(node.targets[0].id, ast.literal_eval(node.value))
            except (ValueError, SyntaxError, TypeError):
                pass
    keys, spec, registry = set(), {}, set()
    # a file that calls register(...) (e.g. optim.register) may add names when imported
    registers = any(isinstance(n, ast.Call) and "register" in (getattr(n.func, "id", None),
                                                               getattr(n.func, "attr", None))
                    for n in ast.walk(tree))
    table = values.get("CONFIG_SPEC")
    complete = table is None or isinstance(table, ast.Dict)
    if isinstance(table, ast.Dict):
        for k, v in zip(table.keys, table.values):
            if k is None:  # {**load_experiment("other").CONFIG_SPEC, ...}: the other file's declaration
                other = _declared_other(v)
                if other is not None and other.complete:
                    keys |= other.keys
                    spec.update(other.spec)
                    registry |= other.registry_keys
                    continue
                try:  # {**{f"{w}.steps": Range(1) for w in WORKLOADS}, ...} over the file's literals
                    rules = eval(compile(ast.Expression(v), str(path), "eval"),  # noqa: S307
                                 {"__builtins__": {}, **env})  # globals: a comprehension's scope sees them
                except Exception:  # noqa: BLE001 -- built some other way: only the import can tell
                    rules = None
                if not isinstance(rules, dict) or not all(isinstance(r, str) for r in rules):
                    complete = False
                    continue
                keys |= set(rules)
                spec.update(rules)
                continue
            if not (isinstance(k, ast.Constant) and isinstance(k.value, str)):
                complete = False
                continue
            keys.add(k.value)
            if "optim" in {n.id for n in ast.walk(v) if isinstance(n, ast.Name)} and registers:
                registry.add(k.value)  # the file may register an optimizer when imported: confirm then
            try:
                spec[k.value] = eval(compile(ast.Expression(v), str(path), "eval"),  # noqa: S307
                                     {"__builtins__": {}}, env)
            except Exception:  # noqa: BLE001 -- not evaluable without the import: checked later
                pass
    try:
        keys |= set(ast.literal_eval(values["CONFIG_KEYS"])) if "CONFIG_KEYS" in values else set()
    except (ValueError, SyntaxError, TypeError):
        pass
    defaults = _defaults_of(values["CONFIG_DEFAULTS"], path) if "CONFIG_DEFAULTS" in values else None
    rules = ()
    if "CONFIG_RULES" in values:
        try:  # Rule(...) literals, and *load_experiment("other").CONFIG_RULES
            rules = tuple(eval(compile(ast.Expression(values["CONFIG_RULES"]), str(path), "eval"),  # noqa: S307
                               {"__builtins__": {}, **env}))
        except Exception:  # noqa: BLE001 -- built some other way: only the import can tell
            complete = False
    return Declared(frozenset(keys), spec, "CONFIG_KEYS" in values, defaults, frozenset(registry), complete,
                    rules)


def _defaults_of(node, path: str) -> dict:
    """A ``CONFIG_DEFAULTS`` table from its ``ast``: a literal dict, which may start from another
    experiment's table with ``**load_experiment("name").CONFIG_DEFAULTS`` (as ``CONFIG_SPEC`` may)."""
    import ast

    from .config import ConfigError, check_table

    table = {}
    try:
        if not isinstance(node, ast.Dict):
            raise ValueError
        for k, v in zip(node.keys, node.values):
            other = _declared_other(v, "CONFIG_DEFAULTS") if k is None else None
            if k is None and (other is None or other.defaults is None):
                raise ValueError
            table.update(other.defaults if k is None else {ast.literal_eval(k): ast.literal_eval(v)})
    except (ValueError, SyntaxError, TypeError):
        raise ConfigError(f"experiment file {path!r}: CONFIG_DEFAULTS must be a literal dict (Python literals "
                          f"and **load_experiment('name').CONFIG_DEFAULTS only: it is read without importing "
                          f"the file)") from None
    check_table(table, pathlib.Path(path).stem)
    return table


def _declared_spec(name: str):
    """``load_experiment(name)`` for a ``CONFIG_SPEC`` (or ``CONFIG_RULES``) read by ``ast``: its
    ``CONFIG_SPEC`` and ``CONFIG_RULES`` as its file declares them (a rule that needs the import is checked after it, as in any file), and only when ``ast``
    can follow all of its keys (else the caller's expression fails and the import decides)."""
    import types

    path = experiment_path(name)
    other = declared(path) if path is not None else None
    if other is None or not other.complete:
        raise LookupError(name)
    return types.SimpleNamespace(CONFIG_SPEC=other.spec, CONFIG_RULES=other.rules)


def _declared_other(node, table: str = "CONFIG_SPEC") -> Optional[Declared]:
    """:func:`declared` of the experiment in ``load_experiment("name").<table>``; None for any other
    expression."""
    import ast

    if isinstance(node, ast.Attribute) and node.attr == table and isinstance(node.value, ast.Call) \
            and getattr(node.value.func, "id", None) == "load_experiment" and len(node.value.args) == 1 \
            and isinstance(node.value.args[0], ast.Constant):
        path = experiment_path(str(node.value.args[0].value))
        return declared(path) if path is not None else None
    return None


def defaults_table(experiment: Union[ModuleType, Declared]) -> Optional[dict]:
    """The experiment's ``CONFIG_DEFAULTS`` table (checked), or None if it declares none."""
    from .config import check_table

    if isinstance(experiment, Declared):
        return experiment.defaults
    table = getattr(experiment, "CONFIG_DEFAULTS", None)
    if table is None:
        return None
    check_table(table, pathlib.Path(getattr(experiment, "__file__", "?")).stem)
    return table


def known_keys(experiment: Union[ModuleType, Declared], name: str,
               exclude: Optional[pathlib.Path] = None) -> Optional[frozenset]:
    """The config keys experiment ``name`` knows, or None when it declares none to check against.

    Known keys are the experiment's ``CONFIG_SPEC`` keys, its optional ``CONFIG_KEYS`` (dotted keys; a
    ``*`` segment matches any one name, a final ``**`` anything below) and the keys of its
    ``CONFIG_DEFAULTS`` (:func:`jaxopt_lab.lab.config.table_keys`). An experiment without that table is
    also described by the keys of the project's shipped configs that run it
    (:func:`jaxopt_lab.lab.config.key_patterns`) -- except ``exclude``, the file being checked, so that
    a typo cannot vouch for itself. ``experiment`` is what its file declares (:func:`declared`), or the
    imported module when ``ast`` cannot follow its ``CONFIG_SPEC``.
    """
    from .config import table_keys

    if isinstance(experiment, Declared):
        declared_keys, has_keys = set(experiment.keys), experiment.config_keys
    else:
        declared_keys = set(getattr(experiment, "CONFIG_SPEC", {})) | set(getattr(experiment, "CONFIG_KEYS", ()))
        has_keys = bool(getattr(experiment, "CONFIG_KEYS", None))
    table = defaults_table(experiment)
    if table is not None:
        return frozenset(declared_keys | table_keys(table))
    skip = str(pathlib.Path(exclude).resolve()) if exclude is not None else None
    shipped = [keys for path, keys in _shipped_keys(tuple(map(str, project_roots())), name).items() if path != skip]
    if not shipped and not has_keys:
        return None  # only the file itself describes this experiment: nothing to check it against
    return frozenset(declared_keys.union(*shipped))
