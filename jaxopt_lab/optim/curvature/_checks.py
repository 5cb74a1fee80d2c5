"""The one check the shared validators (``jaxopt_lab.optim._common``) do not have: an extra ``update``
argument a method cannot work without."""

from __future__ import annotations

from typing import Any


def need(method: str, name: str, value: Any) -> None:
    if value is None:
        raise ValueError(f"{method} needs the extra argument {name} "
                         f"(call tx.update(grads, state, params, {name}=...))")
