"""Configs: Python files whose ``get_config()`` returns an ``ml_collections.ConfigDict``.

``load_config(path, overrides)`` executes the file, applies ``--set a.b=v`` overrides with the type of the
field they replace, and returns the ConfigDict. Everything wrong with a config (an unknown key, a value of
the wrong type, a value out of range, an unknown experiment) raises :class:`ConfigError`, whose message is
one line naming the key, the value and what is allowed; the CLI prints it and exits with status 2 before
any work is done.

Experiments state their ranges declaratively in ``CONFIG_SPEC = {"train.steps": Range(1, integer=True),
"optimizer.name": OneOf(optim.names), "ks": Each(Range(1, integer=True)), ...}``; :func:`validate` checks
a config against it; a key with a ``*`` segment (``"optimizers.*.learning_rate"``) checks that field of
every entry of a collection that states it. Rules relating keys go in ``CONFIG_RULES``
(:mod:`jaxopt_lab.lab.rules`), checked like ``CONFIG_SPEC`` before the experiment is imported. Checks that
need the import (building an optimizer from its hyperparameters, the device mesh) go in the experiment's
``check_config(cfg)`` (with :func:`require`), which the runtime calls after both and before the run
directory exists.
Every key of a config file must be known to its experiment (:func:`check_keys`).

Defaults: an experiment declares its full default config as a literal table right after ``CONFIG_SPEC``::

    CONFIG_DEFAULTS = {
        # dotted key: (default value, help text: what it does, its unit, how it interacts)
        "optimizer.name": ("adam", "a registered optimizer (see `jaxopt-lab list`)"),
        "train.steps": (1000, "optimizer steps"),
    }

The lab reads it with ``ast`` (the experiment is not imported, so a config error costs well under a
second), builds the default ConfigDict (:func:`defaults_from`) and puts the values a config states over
it (:func:`with_defaults`): a config states only ``experiment`` and what it changes. ``seed`` defaults to
0 unless the table says otherwise (:data:`RUNTIME_DEFAULTS`). A default that is a dict is one value -- a
collection such as ``{"adam": {...}, "sgd": {...}}`` -- which a config replaces as a whole when it
states that key. For an experiment without a table, ``experiment`` and ``seed`` are required and every
key its ``CONFIG_SPEC`` checks must be stated.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import difflib
import hashlib
import importlib.util
import json
import math
import pathlib
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence, Union

import ml_collections

__all__ = ["ConfigError", "Range", "OneOf", "Each", "require", "load_config", "load_config_module", "apply_overrides",
           "recording_files", "not_recording", "parse_override", "RUNTIME_DEFAULTS", "check_table", "defaults_from", "whole_keys", "table_keys", "help_of",
           "complete", "with_defaults", "key_patterns", "optimizer_arguments", "check_keys", "validate", "config_hash", "config_to_json", "config_from_json",
           "flat_items"]


class ConfigError(ValueError):
    """A config problem, reported as one line: key, value, what is allowed."""


# ------------------------------------------------------------------------------------------------
# Specs: what values a key allows.

@dataclasses.dataclass(frozen=True)
class Range:
    """A number in ``[low, high]`` (bounds optional, ``open_low``/``open_high`` exclude them)."""

    low: Optional[float] = None
    high: Optional[float] = None
    open_low: bool = False
    open_high: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.open_low else '>='} {self.low}")
        if self.high is not None:
            parts.append(f"{'<' if self.open_high else '<='} {self.high}")
        return kind + (" " + " and ".join(parts) if parts else "")

    def allows(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.open_high else value > self.high):
            return False
        return True


@dataclasses.dataclass(frozen=True)
class OneOf:
    """One of a fixed set of choices; ``choices`` may be a callable returning them (e.g. a registry)."""

    choices: Union[Sequence[Any], Callable[[], Iterable[Any]]]

    def _choices(self) -> list:
        return list(self.choices() if callable(self.choices) else self.choices)

    def describe(self) -> str:
        return "one of " + ", ".join(map(repr, self._choices()))

    def allows(self, value: Any) -> bool:
        if isinstance(value, (list, tuple)):
            return all(v in self._choices() for v in value)
        return value in self._choices()

    def close_matches(self, value: Any) -> list:
        if not isinstance(value, str):
            return []
        return difflib.get_close_matches(value, [str(c) for c in self._choices()], n=3, cutoff=0.5)


@dataclasses.dataclass(frozen=True)
class Each:
    """A tuple or list (non-empty unless ``may_be_empty``) whose every element the ``rule`` allows."""

    rule: Union[Range, OneOf]
    may_be_empty: bool = False

    def describe(self) -> str:
        kind = "a (possibly empty) sequence" if self.may_be_empty else "a non-empty sequence"
        return f"{kind}, each element {self.rule.describe()}"

    def allows(self, value: Any) -> bool:
        return isinstance(value, (tuple, list)) and (self.may_be_empty or len(value) > 0) \
            and all(map(self.rule.allows, value))


Spec = Union[Range, OneOf, Each]


def require(condition: bool, key: str, value: Any, allowed: str) -> None:
    """For an experiment's ``check_config``: ``ConfigError("config key K = V: must be ALLOWED")``
    unless ``condition``."""
    if not condition:
        raise ConfigError(f"config key {key!r} = {value!r}: must be {allowed}")


# ------------------------------------------------------------------------------------------------
# Loading and overriding.

_RECORDERS: list[list[pathlib.Path]] = []


@contextlib.contextmanager
def recording_files() -> Iterator[list[pathlib.Path]]:
    """Collects the config files loaded inside the ``with`` block (a config may load another)."""
    files: list[pathlib.Path] = []
    _RECORDERS.append(files)
    try:
        yield files
    finally:
        _RECORDERS.remove(files)


@contextlib.contextmanager
def not_recording() -> Iterator[None]:
    """Config files loaded inside are not collected (e.g. those read only to learn known keys)."""
    saved = _RECORDERS[:]
    _RECORDERS.clear()
    try:
        yield
    finally:
        _RECORDERS[:] = saved


def load_config_module(path: Union[str, pathlib.Path]):
    """Import a config file as a module (configs are plain Python, not a package).

    A file that does not parse, imports a missing module or raises while importing is a
    :class:`ConfigError` naming the file and the line, not a traceback.
    """
    from .project import resolve_config, rooted_at

    path = resolve_config(path)
    if path.is_dir() or not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    for files in _RECORDERS:
        files.append(pathlib.Path(path).resolve())
    name = "jaxopt_lab_config_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    module.__jaxopt_lab_path__ = path
    try:
        with rooted_at(path):
            spec.loader.exec_module(module)
    except SyntaxError as e:
        raise ConfigError(f"config file {str(path)!r}: syntax error at line {e.lineno}: {e.msg}") from None
    except ImportError as e:
        missing = f"module {e.name!r}" if e.name else str(e)
        raise ConfigError(f"config file {str(path)!r} imports {missing}, which cannot be imported "
                          f"({e})") from None
    except Exception as e:  # noqa: BLE001 -- any error in the user's file is reported as one line
        raise ConfigError(f"config file {str(path)!r}: {_where(e, path)}{type(e).__name__}: {e}") from None
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"config file {str(path)!r} defines no get_config()")
    return module


def _where(error: BaseException, path: pathlib.Path) -> str:
    """``"line N: "`` of the deepest frame of ``error`` inside ``path`` (empty if none)."""
    import traceback

    target = str(path.resolve())
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__)
             if str(pathlib.Path(f.filename).resolve()) == target]
    return f"line {lines[-1]}: " if lines else ""


def load_config(path: Union[str, pathlib.Path], overrides: Sequence[str] = (), *,
                check: bool = True, quick: bool = False) -> ml_collections.ConfigDict:
    """Load ``path``'s ``get_config()``, put it over its experiment's defaults and apply ``key=value``
    overrides (type-checked).

    With ``check``, every key the file states must be known to its experiment
    (:func:`jaxopt_lab.lab.project.known_keys`), so a typo is an error rather than a silent default; the
    experiment's ``CONFIG_DEFAULTS`` fill what the file leaves out and its ``CONFIG_SPEC`` rules that
    need no import are checked -- all without importing the experiment. Without ``check`` the file is
    taken as it is (``experiment`` and ``seed`` required, no defaults).
    """
    from .project import rooted_at

    module = load_config_module(path)
    path = module.__jaxopt_lab_path__
    try:
        with rooted_at(path):
            cfg = module.get_config()
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"config file {str(path)!r}: get_config() raised at {_where(e, pathlib.Path(path))}"
                          f"{type(e).__name__}: {e}") from None
    if not isinstance(cfg, ml_collections.ConfigDict):
        raise ConfigError(f"get_config() in {str(path)!r} must return an ml_collections.ConfigDict, "
                          f"got {type(cfg).__name__}")
    if not isinstance(cfg.get("experiment"), str):
        raise ConfigError(f"config {str(path)!r}: key 'experiment' is required and must be a str, the name "
                          f"of an experiment (see `jaxopt-lab list`)")
    if not check:
        _require_seed(cfg, path)
        _apply_quick(cfg, module, quick)
        apply_overrides(cfg, [parse_override(o) for o in overrides])
        return cfg
    from .project import declared, defaults_table, experiment_path, known_keys, load_experiment

    with rooted_at(path):
        source = experiment_path(cfg.experiment)
        described = declared(source) if source is not None else None
        # Read from the experiment's source, not imported, so a config error costs well under a second;
        # its import follows in the run, with the full check.
        experiment = described if described is not None and described.complete \
            else load_experiment(cfg.experiment)
        table = defaults_table(experiment)
        known = known_keys(experiment, cfg.experiment, exclude=path)
    if table is None:
        _require_seed(cfg, path)
    if known is not None:
        try:
            check_keys(cfg, known, cfg.experiment)
        except ConfigError as e:
            raise ConfigError(f"config file {str(path)!r}: {e}") from None
    cfg = _over_defaults(cfg, table)
    _apply_quick(cfg, module, quick)
    apply_overrides(cfg, [parse_override(o) for o in overrides])
    if described is not None:  # the rules that need no import, before any heavy work
        validate(cfg, {k: r for k, r in described.spec.items() if k not in described.registry_keys})
        try:
            validate(cfg, {k: r for k, r in described.spec.items() if k in described.registry_keys})
        except ConfigError:  # a name registered when the experiment is imported is allowed
            with rooted_at(path):
                validate(cfg, getattr(load_experiment(cfg.experiment), "CONFIG_SPEC", {}))
        if described.complete:
            from .rules import check_rules

            check_rules(cfg, described.rules)
    from . import writers  # a writer whose library is missing is refused here, before any import of jax

    writers.check(cfg)
    return cfg


def _require_seed(cfg: ml_collections.ConfigDict, path) -> None:
    if not isinstance(cfg.get("seed"), int):
        raise ConfigError(f"config {str(path)!r}: key 'seed' is required and must be an int (its experiment "
                          f"{cfg.experiment!r} declares no CONFIG_DEFAULTS)")


# ------------------------------------------------------------------------------------------------
# Defaults: an experiment's CONFIG_DEFAULTS table.

# defaults the runtime gives every experiment with a table (a table may restate them with its own help)
RUNTIME_DEFAULTS = {"seed": (0, "PRNG seed of the run (jax.random.PRNGKey): initialisation, data order, noise")}


def check_table(table: Any, experiment: str = "?") -> dict:
    """``{dotted key: (default, help)}``: ``table`` with :data:`RUNTIME_DEFAULTS` it does not restate;
    :class:`ConfigError` naming the entry if it is not of that form."""
    where = f"CONFIG_DEFAULTS of experiment {experiment!r}"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a dict {{'dotted.key': (default, 'help text')}}, "
                          f"got {type(table).__name__}")
    for key, entry in table.items():
        if not isinstance(key, str) or not all(key.split(".")):
            raise ConfigError(f"{where}: key {key!r} must be a dotted name like 'train.steps'")
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str) and entry[1].strip()):
            raise ConfigError(f"{where}: entry {key!r} must be (default value, 'help text'), got {entry!r}")
        parent = next((key[:i] for i in range(len(key)) if key[i] == "." and key[:i] in table), None)
        if parent is not None:
            raise ConfigError(f"{where}: {key!r} lies inside {parent!r}, which is a value, not a group")
    return {**RUNTIME_DEFAULTS, **table}


def defaults_from(table: Mapping[str, tuple], experiment: str = "?") -> ml_collections.ConfigDict:
    """The default ConfigDict of a ``CONFIG_DEFAULTS`` table (dotted keys become nested groups)."""
    cfg = ml_collections.ConfigDict()
    for key, (value, _) in check_table(table, experiment).items():
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            if part not in node:
                node[part] = ml_collections.ConfigDict()
            node = node[part]
        node[leaf] = ml_collections.ConfigDict(value) if isinstance(value, dict) else value
    return cfg


def whole_keys(table: Mapping[str, tuple]) -> tuple[str, ...]:
    """The table's keys whose default is a dict: one value, replaced as a whole by a config stating it."""
    return tuple(k for k, (v, _) in table.items() if isinstance(v, dict))


def table_keys(table: Mapping[str, tuple]) -> set[str]:
    """The keys a table declares, for :func:`check_keys`: its dotted keys, and below a dict default the
    keys of that dict (the entry names of a collection as ``*``, see :func:`key_patterns`)."""
    keys = set()
    for key, (value, _) in check_table(table).items():
        if isinstance(value, dict):
            keys |= {f"{key}.{k[2:]}" for k in key_patterns(ml_collections.ConfigDict({"_": value}))}
        else:
            keys.add(key)
    return keys


def help_of(table: Mapping[str, tuple], key: str) -> str:
    """The help text of ``key`` (or of the dict default it lies in); empty if the table has none."""
    table = check_table(table)
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        entry = table.get(".".join(parts[:n]))
        if entry is not None:
            return entry[1]
    return ""


def complete(cfg: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``cfg`` put over its experiment's ``CONFIG_DEFAULTS`` (``cfg`` itself if it declares none): what
    the runtime does to a config built in Python, so it too states only what it changes. Idempotent."""
    from .project import declared, defaults_table, experiment_path, load_experiment

    source = experiment_path(cfg.experiment)
    described = declared(source) if source is not None else None
    table = described.defaults if described is not None else defaults_table(load_experiment(cfg.experiment))
    return _over_defaults(cfg, table)


def _over_defaults(cfg: ml_collections.ConfigDict, table: Optional[Mapping[str, tuple]]) -> ml_collections.ConfigDict:
    if table is None:
        return cfg
    return with_defaults(cfg, defaults_from(table, cfg.experiment), whole_keys(table))


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a stated ``value`` may replace ``default`` (an int may replace a float, a list a tuple)."""
    if value is None or default is None:
        return True
    if isinstance(value, bool) or isinstance(default, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(default))


def _apply_quick(cfg: ml_collections.ConfigDict, module, quick: bool) -> None:
    """The file's ``QUICK`` overrides (a smoke-test size), before any ``--set``."""
    if not quick:
        return
    if not isinstance(getattr(module, "QUICK", None), dict):
        raise ConfigError(f"config file {module.__jaxopt_lab_path__!r} declares no QUICK overrides "
                          f"(a dict {{'dotted.key': value}}), so it has no --quick form")
    apply_overrides(cfg, module.QUICK.items())


def with_defaults(cfg: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict,
                  whole: Sequence[str] = ()) -> ml_collections.ConfigDict:
    """``defaults`` with every value ``cfg`` states put over it: a config states only what it changes.

    A stated value must have its default's type (an int may stand for a float, a list for a tuple).
    The groups named in ``whole`` (dict defaults, e.g. a collection of optimizers) are replaced as a
    whole when ``cfg`` states anything in them.
    """
    merged = ml_collections.ConfigDict(defaults.to_dict())
    stated = flat_items(cfg)
    with merged.unlocked():
        for group in whole:
            if any(k == group or k.startswith(group + ".") for k, _ in stated):
                *parents, leaf = group.split(".")
                node = merged
                for part in parents:
                    node = node[part]
                del node[leaf]
        for key, value in stated:
            node, *parents = merged, *key.split(".")[:-1]
            for part in parents:
                if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
                    node[part] = ml_collections.ConfigDict()
                node = node[part]
            leaf = key.rpartition(".")[2]
            default = node[leaf] if leaf in node else None
            if not _same_kind(value, default):
                kind = "a tuple" if isinstance(default, (tuple, list)) else \
                    ("an " if type(default).__name__ == "int" else "a ") + type(default).__name__
                raise ConfigError(f"config key {key!r} = {value!r}: must be {kind} "
                                  f"(the type of its default {default!r})")
            if leaf in node:
                del node[leaf]  # replace, whatever the default's type (e.g. a tuple by a list, None)
            is_float = isinstance(default, float) and not isinstance(value, bool) and isinstance(value, int)
            node[leaf] = float(value) if is_float else value
    return merged


def parse_override(text: str) -> tuple[str, str]:
    """``"a.b=v"`` -> ``("a.b", "v")``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set optimizer.learning_rate=0.01")
    return key.strip(), value.strip()


def flat_items(cfg: ml_collections.ConfigDict, prefix: str = "") -> list[tuple[str, Any]]:
    """All leaves of a ConfigDict as ``(dotted_key, value)``."""
    items = []
    for key in cfg.keys():
        value = cfg[key]
        full = f"{prefix}{key}"
        if isinstance(value, ml_collections.ConfigDict):
            items.extend(flat_items(value, full + "."))
        else:
            items.append((full, value))
    return items


def _lookup_parent(cfg: ml_collections.ConfigDict, key: str):
    *parents, leaf = key.split(".")
    node = cfg
    for i, part in enumerate(parents + [leaf]):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            known = [k for k, _ in flat_items(cfg)]
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(known)}"
            experiment = cfg.get("experiment")
            where = f" for experiment {experiment!r}" if isinstance(experiment, str) else ""
            raise ConfigError(f"unknown config key {key!r}{where}{hint}")
        if i < len(parents):
            node = node[part]
    return node, leaf


def _convert(key: str, text: str, current: Any) -> Any:
    def fail(expected: str):
        return ConfigError(f"--set {key}={text}: expected {expected} (the type of {key!r})")

    if isinstance(current, bool):
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise fail("a bool (true/false)")
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            raise fail("an int") from None
    if isinstance(current, float):
        try:
            return float(text)
        except ValueError:
            raise fail("a float") from None
    if isinstance(current, str):
        return text
    if isinstance(current, (tuple, list)):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            # Allow the comma form a,b,c for sequences of strings.
            value = tuple(v.strip() for v in text.split(",") if v.strip())
        if not isinstance(value, (tuple, list)):
            value = (value,)
        if current and any(type(v) is not type(current[0]) and not
                           (isinstance(current[0], float) and isinstance(v, int)) for v in value):
            raise fail(f"a sequence of {type(current[0]).__name__}")
        value = tuple(float(v) if current and isinstance(current[0], float) else v for v in value)
        return type(current)(value)
    if current is None:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    raise fail(type(current).__name__)


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Iterable[tuple[str, Any]]) -> None:
    """Set ``(dotted_key, value)`` pairs; string values are converted to the field's type."""
    for key, value in overrides:
        if key in LOGGING_DEFAULTS and not _has_key(cfg, key):
            _add_runtime_key(cfg, key)  # any config may take them, e.g. --set logging.writers=jsonl,tensorboard
        parent, leaf = _lookup_parent(cfg, key)
        current = parent[leaf]
        if isinstance(current, ml_collections.ConfigDict):
            raise ConfigError(f"config key {key!r} is a group, not a value; set one of its fields")
        if isinstance(value, str):
            value = _convert(key, value, current)
        with cfg.unlocked():
            try:
                parent[leaf] = value
            except TypeError as e:
                raise ConfigError(f"config key {key!r}: {e}") from None


# keys every config may hold: the runtime's, not the experiment's (see jaxopt_lab.lab.writers)
RUNTIME_KEYS = ("experiment", "seed", "logging.writers", "logging.wandb_project", "logging.wandb_mode")
# what the runtime assumes for the logging keys a config does not state (a --set of one adds it)
LOGGING_DEFAULTS = {"logging.writers": ("jsonl",), "logging.wandb_project": "", "logging.wandb_mode": "offline"}


def _has_key(cfg: ml_collections.ConfigDict, key: str) -> bool:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            return False
        node = node[part]
    return True


def _add_runtime_key(cfg: ml_collections.ConfigDict, key: str) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    with cfg.unlocked():
        for part in parents:
            if part not in node:
                node[part] = ml_collections.ConfigDict()
            node = node[part]
        node[leaf] = LOGGING_DEFAULTS[key]
MAX_SEED = 2 ** 32 - 1  # jax.random.PRNGKey keeps only the low 32 bits of a seed (without x64)


def key_patterns(cfg: ml_collections.ConfigDict) -> set[str]:
    """The dotted keys of ``cfg``, with the entry names of *collections* replaced by ``*``.

    A collection is a group whose members are all groups (e.g. ``optimizers.adam``, ``optimizers.sam``):
    its entries are named by the user, so any name is allowed, while their fields are still checked
    (``optimizers.*.learning_rate``).
    """
    out = set()

    def walk(node, prefix):
        values = [node[k] for k in node.keys()]
        collection = bool(prefix) and values and all(isinstance(v, ml_collections.ConfigDict) for v in values)
        for key, value in zip(node.keys(), values):
            name = f"{prefix}{'*' if collection else key}"
            if isinstance(value, ml_collections.ConfigDict):
                walk(value, name + ".")
            else:
                out.add(name)

    walk(cfg, "")
    return out


def _matches(key: str, pattern: str) -> bool:
    parts, want = key.split("."), pattern.split(".")
    if want[-1] == "**":
        return len(parts) > len(want) - 1 and _matches(".".join(parts[:len(want) - 1]), ".".join(want[:-1]))
    return len(parts) == len(want) and all(w in ("*", p) for p, w in zip(parts, want))


def optimizer_arguments(cfg: ml_collections.ConfigDict, key: str) -> Optional[list[str]]:
    """If ``key``'s group names a registry optimizer (``<group>.name``), the fields that group may hold:
    ``name`` and the optimizer's arguments; else None."""
    parent = key.rpartition(".")[0]
    try:
        name = cfg[parent + ".name"] if parent else cfg.get("name")
    except (KeyError, AttributeError):
        return None
    if not isinstance(name, str):
        return None
    from .catalog import optimizer_parameters

    parameters = optimizer_parameters().get(name)
    if parameters is not None:  # read from the sources: no import of jax for a config's key check
        return ["name", *parameters]
    import inspect

    from .. import optim  # a name registered some other way (e.g. by a user's module): ask the registry

    if name not in optim.names():
        return None
    return ["name", *inspect.signature(optim.info(name).factory).parameters]


def check_keys(cfg: ml_collections.ConfigDict, known: Iterable[str], experiment: str) -> None:
    """Every leaf key of ``cfg`` must match one of ``known``; else one line with a suggestion.

    ``known`` holds dotted keys, where a ``*`` segment stands for any one name and a final ``**`` for
    anything below (see :func:`jaxopt_lab.lab.project.known_keys`). The fields of a group naming a
    registry optimizer (``optimizer.name = "adam"``) may also be that optimizer's arguments.
    """
    known = set(known) | set(RUNTIME_KEYS)
    exact = {k for k in known if "*" not in k}
    patterns = [k for k in known if "*" in k]
    for key, _ in flat_items(cfg):
        if key in exact or any(_matches(key, p) for p in patterns):
            continue
        parent, _, leaf = key.rpartition(".")
        arguments = optimizer_arguments(cfg, key)
        if arguments is not None:
            if leaf in arguments:
                continue
            exact = exact | {f"{parent}.{a}" for a in arguments}
        parts = key.split(".")
        candidates = exact | {".".join(parts[i] if w == "*" and i < len(parts) else w
                                       for i, w in enumerate(p.split("."))) for p in patterns
                              if not p.endswith("**")}
        close = _suggest(key, sorted(candidates))
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown config key {key!r} for experiment {experiment!r}{hint}")


def _suggest(key: str, known: Sequence[str]) -> list[str]:
    """Known keys close to ``key``: an acronym of a sibling first (``lr`` -> ``learning_rate``), then
    difflib's closest."""
    parent, _, leaf = key.rpartition(".")
    acronyms = [k for k in known if k.rpartition(".")[0] == parent and "_" in k.rpartition(".")[2]
                and leaf == "".join(w[:1] for w in k.rpartition(".")[2].split("_"))]
    return acronyms or difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.6)


def validate(cfg: ml_collections.ConfigDict, spec: Mapping[str, Spec]) -> None:
    """Check every key named in ``spec``; raise :class:`ConfigError` at the first violation."""
    seed = cfg.get("seed")
    if isinstance(seed, bool) or not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise ConfigError(f"config key 'seed' = {seed!r}: must be an integer in [0, 2**32 - 1]")
    for pattern, rule in spec.items():
        for key in _expand(cfg, pattern):
            _check_key(cfg, key, rule)


def _expand(cfg: ml_collections.ConfigDict, pattern: str) -> list[str]:
    """``pattern`` itself, or for a key with ``*`` segments the keys of ``cfg`` it matches (entries of a
    collection that do not state the field are not checked)."""
    if "*" not in pattern:
        return [pattern]
    return [key for key, _ in flat_items(cfg) if _matches(key, pattern)]


def _check_key(cfg: ml_collections.ConfigDict, key: str, rule: Spec) -> None:
    node = cfg
    for part in key.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            raise ConfigError(f"config key {key!r} is missing (experiment {cfg.get('experiment')!r} needs "
                              f"it: {rule.describe()})")
        node = node[part]
    if not rule.allows(node):
        close = rule.close_matches(node) if isinstance(rule, OneOf) else []
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ConfigError(f"config key {key!r} = {node!r}: must be {rule.describe()}{hint}")


def config_to_json(cfg: ml_collections.ConfigDict) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True, indent=2, default=list)


def config_from_json(text: str) -> ml_collections.ConfigDict:
    def restore(value):
        if isinstance(value, dict):
            return {k: restore(v) for k, v in value.items()}
        if isinstance(value, list):
            return tuple(restore(v) for v in value)
        return value

    return ml_collections.ConfigDict(restore(json.loads(text)))


def config_hash(cfg: ml_collections.ConfigDict) -> str:
    """8 hex digits identifying the config's content (order-independent)."""
    canonical = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]
