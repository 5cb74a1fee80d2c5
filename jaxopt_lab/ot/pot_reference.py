"""POT (Python Optimal Transport, the ``ot`` package) as an optional reference.

The solvers never need POT; the experiments that compare against it (``ot_race``'s mirror study,
``bench_ot``'s POT timings) load it through :func:`require_pot`, which names the extra to install in one
line instead of failing at import time with a traceback.
"""

from __future__ import annotations

import importlib

__all__ = ["POT_EXTRA", "require_pot"]

POT_EXTRA = "ot-reference"


def require_pot(purpose: str):
    """The ``ot`` module, or ``ModuleNotFoundError`` with one line saying what needs it and how to install it."""
    try:
        return importlib.import_module("ot")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"{purpose} needs POT (the `ot` package), which is optional: pip install 'jaxopt-lab[{POT_EXTRA}]' "
            f"(or pip install pot)") from None
