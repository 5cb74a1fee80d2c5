"""POT (Python Optimal Transport, the ``ot`` package) as a reference, loaded only where it is compared with.

POT is a declared dependency of jaxopt-lab, but the solvers never import it: only the experiments that
compare against it (``ot_race``'s mirror study, ``bench_ot``'s POT timings) load it, through
:func:`require_pot`, so an environment without it still runs everything else and those experiments stop
with one line saying how to install it instead of a traceback.
"""

from __future__ import annotations

import importlib

__all__ = ["require_pot"]


def require_pot(purpose: str):
    """The ``ot`` module, or ``ModuleNotFoundError`` with one line saying what needs it and how to install it."""
    try:
        return importlib.import_module("ot")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"{purpose} needs POT (the `ot` package, a dependency of jaxopt-lab missing from this "
            f"environment): pip install pot") from None
