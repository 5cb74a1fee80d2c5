"""Where experiments and configs live: the project root with ``experiments/`` and ``configs/``.

The root is ``$JAXOPT_LAB_ROOT`` if set, else the nearest directory from the working directory upwards
that holds both folders, else the checkout this package was installed from (``pip install -e .``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
import sys
from types import ModuleType
from typing import Optional

from .config import ConfigError

__all__ = ["project_root", "experiment_names", "load_experiment", "config_files", "known_keys"]

_PACKAGE_PARENT = pathlib.Path(__file__).resolve().parents[2]


def _is_root(path: pathlib.Path) -> bool:
    return (path / "experiments").is_dir() and (path / "configs").is_dir()


def project_root() -> pathlib.Path:
    env = os.environ.get("JAXOPT_LAB_ROOT")
    if env:
        return pathlib.Path(env).resolve()
    here = pathlib.Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if _is_root(candidate):
            return candidate
    if _is_root(_PACKAGE_PARENT):
        return _PACKAGE_PARENT
    raise ConfigError("cannot find the project's experiments/ and configs/ folders; run from the "
                      "jaxopt_lab checkout or set JAXOPT_LAB_ROOT")


def experiment_names() -> list[str]:
    folder = project_root() / "experiments"
    return sorted(p.stem for p in folder.glob("*.py") if not p.name.startswith("_"))


@functools.lru_cache(maxsize=None)
def _import(path: str) -> ModuleType:
    name = "jaxopt_lab_experiment_" + pathlib.Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def load_experiment(name: str) -> ModuleType:
    """The module ``experiments/<name>.py``; ``ConfigError`` listing what exists if unknown."""
    path = project_root() / "experiments" / f"{name}.py"
    if not path.is_file():
        raise ConfigError(f"config key 'experiment' = {name!r}: unknown experiment; must be one of "
                          f"{', '.join(experiment_names())}")
    module = _import(str(path))
    if not callable(getattr(module, "run", None)):
        raise ConfigError(f"experiment {name!r} defines no run(cfg, ctx)")
    return module


def config_files() -> list[pathlib.Path]:
    root = project_root() / "configs"
    return sorted(p for p in root.rglob("*.py") if not p.name.startswith("_"))


def _config_keys(path: pathlib.Path) -> tuple[Optional[str], frozenset]:
    """``(experiment, dotted keys)`` of one config file; ``(None, {})`` if it does not load."""
    from .config import key_patterns, load_config_module

    try:
        cfg = load_config_module(path).get_config()
        return cfg.get("experiment"), frozenset(key_patterns(cfg))
    except Exception:  # noqa: BLE001 -- a broken config elsewhere must not block this one
        return None, frozenset()


@functools.lru_cache(maxsize=None)
def _shipped_keys(root: str, experiment: str) -> dict:
    """``{path: keys}`` of the config files under ``root/configs`` that run ``experiment``."""
    found = {}
    for path in sorted(pathlib.Path(root, "configs").rglob("*.py")):
        text = path.read_text(errors="replace")
        if f"'{experiment}'" not in text and f'"{experiment}"' not in text and "load_config" not in text:
            continue  # cheap filter: a config naming the experiment spells its name (or loads another)
        name, keys = _config_keys(path)
        if name == experiment:
            found[str(path.resolve())] = keys
    return found


def known_keys(experiment: ModuleType, name: str,
               exclude: Optional[pathlib.Path] = None) -> Optional[frozenset]:
    """The config keys experiment ``name`` knows, or None when it declares none to check against.

    Known keys are the experiment's ``CONFIG_SPEC`` keys, its optional ``CONFIG_KEYS`` (dotted keys; a
    ``*`` segment matches any one name, a final ``**`` anything below), the keys of its optional
    ``default_config()``, and the keys of the project's shipped configs that run it
    (:func:`jaxopt_lab.lab.config.key_patterns`) -- except ``exclude``, the file being checked, so that
    a typo cannot vouch for itself.
    """
    from .config import key_patterns

    declared = set(getattr(experiment, "CONFIG_SPEC", {})) | set(getattr(experiment, "CONFIG_KEYS", ()))
    if callable(getattr(experiment, "default_config", None)):
        declared |= key_patterns(experiment.default_config())
    skip = str(pathlib.Path(exclude).resolve()) if exclude is not None else None
    shipped = [keys for path, keys in _shipped_keys(str(project_root()), name).items() if path != skip]
    if not shipped and not getattr(experiment, "CONFIG_KEYS", None) and not callable(
            getattr(experiment, "default_config", None)):
        return None  # only the file itself describes this experiment: nothing to check it against
    return frozenset(declared.union(*shipped))
