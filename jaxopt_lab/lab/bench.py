"""Timing for benchmark experiments: compile time and run time measured apart, side by side.

Benchmarks compare ratios measured in one process (rather than timed unit tests). ``time_jitted``
lowers and compiles a jitted function once (the compile time), then calls the compiled executable
``repeats`` times, blocking on the result each time, and reports the median (robust to a noisy,
shared machine).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any, Callable

import jax

__all__ = ["Timing", "time_jitted", "time_call"]


@dataclasses.dataclass(frozen=True)
class Timing:
    compile_s: float
    run_s: float          # median over repeats
    runs_s: tuple         # every repeat

    def to_json(self) -> dict:
        return {"compile_s": self.compile_s, "run_s": self.run_s, "runs_s": list(self.runs_s)}


def _block(x: Any) -> Any:
    return jax.tree.map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def time_jitted(fn: Callable, *args: Any, repeats: int = 5, warmup: int = 1, **kwargs: Any) -> Timing:
    """Compile ``jax.jit(fn)`` for ``args`` (timed), then time ``repeats`` calls of the executable."""
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    start = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    compile_s = time.perf_counter() - start
    for _ in range(warmup):
        _block(compiled(*args, **kwargs))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(compiled(*args, **kwargs))
        runs.append(time.perf_counter() - start)
    return Timing(compile_s, statistics.median(runs), tuple(runs))


def time_call(fn: Callable, *args: Any, repeats: int = 5, warmup: int = 1, **kwargs: Any) -> Timing:
    """Time a plain Python callable (e.g. a reference library); ``compile_s`` is its first call."""
    start = time.perf_counter()
    _block(fn(*args, **kwargs))
    first = time.perf_counter() - start
    for _ in range(max(warmup - 1, 0)):
        _block(fn(*args, **kwargs))
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn(*args, **kwargs))
        runs.append(time.perf_counter() - start)
    return Timing(first, statistics.median(runs), tuple(runs))
