"""Reproductions: a figure id -> a config and the paper's claims, checked on the run's summary.

A reproduction is a config file ``configs/reproduce/<id with _>.py`` (id ``sns-iterations`` is
``configs/reproduce/sns_iterations.py``) that defines, besides ``get_config()`` at paper-like size:

* ``CLAIMS``: a list of :class:`Claim` -- each quotes the paper's claim it tests, names the summary value
  it checks, the comparison and the tolerance;
* ``QUICK``: ``{dotted_key: value}`` overrides that shrink the run to seconds (``--quick``; used by tests);
* optionally ``TITLE`` and ``DESCRIPTION`` (the paper, what was substituted, e.g. digits for CIFAR-10).

``reproduce(id)`` runs the config like ``jaxopt-lab run``, evaluates every claim on ``summary.json``, writes
``claims.json`` into the run directory and returns the verdicts. A failing claim is reported as FAIL, with
the measured value; nothing is retried or loosened.
"""

from __future__ import annotations

import dataclasses
import math
import operator
import pathlib
from typing import Any, Mapping, Optional, Sequence, Union

from . import config as config_lib
from . import metrics as metrics_lib
from .project import project_roots

__all__ = ["Claim", "Verdict", "Reproduction", "ids", "load", "reproduce", "evaluate", "format_table"]

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclasses.dataclass(frozen=True)
class Claim:
    """A named check ``summary[key] <op> bound``.

    Attributes:
      name: short name of the check.
      quote: the paper's claim it tests (quoted from the paper) and its source.
      key: the summary value measured.
      op: ``>``, ``>=``, ``<``, ``<=``, or ``~`` (equal within ``rtol``/``atol``).
      bound: a number, or the name of another summary value.
      rtol, atol: tolerances for ``~`` (``|v - b| <= atol + rtol |b|``).
      margin: for inequalities, ``v > b + margin`` (or ``v < b - margin``): the stated tolerance.
    """

    name: str
    quote: str
    key: str
    op: str
    bound: Union[float, str]
    rtol: float = 0.0
    atol: float = 0.0
    margin: float = 0.0

    def __post_init__(self):
        if self.op not in (*_OPS, "~"):
            raise ValueError(f"Claim {self.name!r}: op must be one of >, >=, <, <=, ~; got {self.op!r}")

    def describe(self) -> str:
        bound = self.bound if isinstance(self.bound, str) else f"{self.bound:.4g}"
        if self.op == "~":
            return f"{self.key} ~ {bound} (rtol {self.rtol:g}, atol {self.atol:g})"
        tol = f" by {self.margin:g}" if self.margin else ""
        return f"{self.key} {self.op} {bound}{tol}"

    def check(self, summary: Mapping[str, Any]) -> "Verdict":
        value = summary.get(self.key)
        bound = summary.get(self.bound) if isinstance(self.bound, str) else self.bound
        if not isinstance(value, (int, float)) or not isinstance(bound, (int, float)):
            return Verdict(self, False, value, bound, "missing or non-numeric value in the summary")
        if not (math.isfinite(value) and math.isfinite(bound)):
            return Verdict(self, False, value, bound, "non-finite value")
        if self.op == "~":
            passed = abs(value - bound) <= self.atol + self.rtol * abs(bound)
        elif self.op in (">", ">="):
            passed = _OPS[self.op](value, bound + self.margin)
        else:
            passed = _OPS[self.op](value, bound - self.margin)
        return Verdict(self, bool(passed), value, bound, "")


@dataclasses.dataclass(frozen=True)
class Verdict:
    claim: Claim
    passed: bool
    value: Any
    bound: Any
    note: str

    def to_json(self) -> dict:
        return {"name": self.claim.name, "quote": self.claim.quote, "check": self.claim.describe(),
                "value": self.value, "bound": self.bound, "passed": self.passed,
                "result": "PASS" if self.passed else "FAIL", "note": self.note}


@dataclasses.dataclass(frozen=True)
class Reproduction:
    id: str
    path: pathlib.Path
    title: str
    description: str
    claims: tuple[Claim, ...]
    quick: Mapping[str, Any]

    def config(self, quick: bool = False, overrides: Sequence[str] = ()):
        cfg = config_lib.load_config(self.path, overrides)
        if quick:
            config_lib.apply_overrides(cfg, self.quick.items())
        return cfg


def _files() -> dict[str, pathlib.Path]:
    """id -> file of every reproduction, over all project roots (an earlier root shadows a later)."""
    found = {}
    for root in project_roots():
        for p in sorted((root / "configs" / "reproduce").glob("*.py")):
            if not p.name.startswith("_"):
                found.setdefault(p.stem.replace("_", "-"), p)
    return found


def ids() -> list[str]:
    """All registered figure ids."""
    return sorted(_files())


def load(figure_id: str) -> Reproduction:
    path = _files().get(figure_id)
    if path is None:
        import difflib
        close = difflib.get_close_matches(figure_id, ids(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise config_lib.ConfigError(f"unknown reproduction {figure_id!r}{hint} (see "
                                     f"'jaxopt-lab reproduce --list')")
    module = config_lib.load_config_module(path)
    claims = tuple(getattr(module, "CLAIMS", ()))
    if not claims:
        raise config_lib.ConfigError(f"reproduction {figure_id!r} ({path}) defines no CLAIMS")
    return Reproduction(figure_id, path, getattr(module, "TITLE", figure_id),
                        (module.__doc__ or "").strip() if not hasattr(module, "DESCRIPTION")
                        else module.DESCRIPTION, claims, dict(getattr(module, "QUICK", {})))


def evaluate(claims: Sequence[Claim], summary: Mapping[str, Any]) -> list[Verdict]:
    return [c.check(summary) for c in claims]


def format_table(figure_id: str, verdicts: Sequence[Verdict], quick: bool = False) -> str:
    head = f"reproduction {figure_id}" + (" (--quick: small size, claims are indicative)" if quick else "")
    rows = [head]
    width = max((len(v.claim.name) for v in verdicts), default=4)
    for v in verdicts:
        value = f"{v.value:.4g}" if isinstance(v.value, (int, float)) else str(v.value)
        note = f"  [{v.note}]" if v.note else ""
        rows.append(f"  {'PASS' if v.passed else 'FAIL'}  {v.claim.name:<{width}}  {v.claim.describe()}"
                    f"  (measured {value}){note}")
        rows.append(f"        claim: {v.claim.quote}")
    passed = sum(v.passed for v in verdicts)
    rows.append(f"{passed} passed, {len(verdicts) - passed} failed")
    return "\n".join(rows)


def reproduce(figure_id: str, *, quick: bool = False, workdir: Union[str, pathlib.Path] = "runs",
              overrides: Sequence[str] = (), stream=None) -> tuple["RunResult", list[Verdict]]:
    """Run the reproduction, check its claims, write ``claims.json``; returns (run, verdicts)."""
    from .run import start_run  # jax is imported only when something runs

    repro = load(figure_id)
    cfg = repro.config(quick=quick, overrides=overrides)
    result = start_run(cfg, workdir, stream=stream)
    verdicts = evaluate(repro.claims, result.summary) if result.status == "done" else [
        Verdict(c, False, None, None, f"run {result.status}: {result['message']}") for c in repro.claims]
    metrics_lib.atomic_write_json(result.run_dir / "claims.json", {
        "id": figure_id, "title": repro.title, "quick": quick, "run_status": result.status,
        "claims": [v.to_json() for v in verdicts]})
    return result, verdicts
