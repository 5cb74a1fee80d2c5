"""The runtime: configs, run directories, the experiment Context, sweeps, reproductions, the CLI.

This is the only package of jaxopt_lab that does I/O. Its names are imported on first use, so the CLI
answers ``--help`` and ``list`` without importing jax.
"""

import importlib

_NAMES = {
    "ConfigError": "config", "OneOf": "config", "Range": "config", "Each": "config",
    "require": "config", "load_config": "config", "Rule": "rules",
    "Claim": "reproduce",
    "Context": "run", "Diverged": "run", "RunResult": "run", "resume_run": "run", "start_run": "run",
    "SweepResult": "sweep",
}
_MODULES = ("bench", "plots", "sweep", "config", "run", "reproduce", "metrics", "checkpoint", "project",
            "lock", "catalog", "writers", "cli", "rules")

__all__ = sorted(_NAMES) + ["bench", "plots", "sweep"]


def __getattr__(name):
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
