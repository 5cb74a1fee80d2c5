"""Reproductions: a figure id -> a config and the paper's claims, checked on the run's summary.

A reproduction is a config file ``configs/reproduce/<id with _>.py`` (id ``sns-iterations`` is
``configs/reproduce/sns_iterations.py``) that defines, besides ``get_config()`` at paper-like size:

* ``CLAIMS``: a list of :class:`Claim` -- each quotes the paper's claim it tests, names the summary value
  it checks, the comparison and the tolerance;
* ``QUICK``: ``{dotted_key: value}`` overrides that shrink the run to a smoke test of under 30 s
  (``--quick``; used by tests): it runs, draws and evaluates every claim, but its verdicts are only
  indicative and do not set the exit status -- the full-size run is the claim check;
* optionally ``TITLE`` and ``DESCRIPTION`` (the paper, what was substituted, e.g. digits for CIFAR-10).

``reproduce(id)`` runs the config like ``jaxopt-lab run``, evaluates every claim on ``summary.json``, writes
``claims.json`` into the run directory (verdicts, wall and CPU time, cores, and the config and code hashes
of :func:`plan`) and returns the verdicts. A failing claim is reported as FAIL, with the measured value;
nothing is retried or loosened. ``reproduce_all`` runs every reproduction, reusing a finished run whose
config and code hashes are unchanged (:func:`cached_run`).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import pathlib
import sys
import time
from typing import Any, Mapping, Optional, Sequence, Union

from . import config as config_lib
from . import metrics as metrics_lib
from .project import project_roots

__all__ = ["Claim", "Verdict", "Reproduction", "Planned", "Outcome", "ids", "load", "plan", "reproduce",
           "evaluate", "format_table", "cached_run", "reproduce_all", "format_matrix"]

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
    """The verdicts as text; a quick run's are marked indicative (small size: they check the pipeline)."""
    head = f"reproduction {figure_id}" + (" (--quick: small size, verdicts are indicative only)" if quick else "")
    rows = [head]
    width = max((len(v.claim.name) for v in verdicts), default=4)
    for v in verdicts:
        value = f"{v.value:.4g}" if isinstance(v.value, (int, float)) else str(v.value)
        note = f"  [{v.note}]" if v.note else ""
        result = ("PASS" if v.passed else "FAIL") + ("*" if quick else "")
        rows.append(f"  {result}  {v.claim.name:<{width}}  {v.claim.describe()}  (measured {value}){note}")
        rows.append(f"        claim: {v.claim.quote}")
    passed = sum(v.passed for v in verdicts)
    rows.append(f"{passed} passed, {len(verdicts) - passed} failed"
                + ("  (* indicative: the claims are checked at full size, without --quick)" if quick else ""))
    return "\n".join(rows)


@dataclasses.dataclass(frozen=True)
class Planned:
    """A reproduction resolved for a run: its config, and what identifies the run (the cache key)."""

    repro: Reproduction
    cfg: Any
    config_hash: str
    code_hash: str
    files: tuple[pathlib.Path, ...]


def plan(figure_id: str, *, quick: bool = False, overrides: Sequence[str] = ()) -> Planned:
    """Load the reproduction's config and hash it with the source files it depends on
    (:mod:`jaxopt_lab.lab.fingerprint`): a finished run with the same two hashes is the same run."""
    from . import fingerprint
    from .project import experiment_path

    repro = load(figure_id)
    with config_lib.recording_files() as config_files:
        cfg = repro.config(quick=quick, overrides=overrides)
    experiment = experiment_path(cfg.experiment)
    runtime = pathlib.Path(__file__).with_name("run.py")  # what executes every run
    files = fingerprint.module_files(repro.path, *config_files, runtime, *([experiment] if experiment else []))
    return Planned(repro, cfg, config_lib.config_hash(cfg), fingerprint.content_hash(files), tuple(files))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def reproduce(figure_id: str, *, quick: bool = False, workdir: Union[str, pathlib.Path] = "runs",
              overrides: Sequence[str] = (), stream=None) -> tuple["RunResult", list[Verdict]]:
    """Run the reproduction, check its claims, write ``claims.json``; returns (run, verdicts).

    ``claims.json`` also holds the run's wall and CPU time, the cores it had, and the config and code
    hashes of :func:`plan` (what ``reproduce --all`` compares to skip a run that would be the same).
    """
    from .run import start_run  # jax is imported only when something runs

    planned = plan(figure_id, quick=quick, overrides=overrides)
    repro = planned.repro
    wall, cpu = time.perf_counter(), time.process_time()
    result = start_run(planned.cfg, workdir, stream=stream)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    verdicts = evaluate(repro.claims, result.summary) if result.status == "done" else [
        Verdict(c, False, None, None, f"run {result.status}: {result['message']}") for c in repro.claims]
    metrics_lib.atomic_write_json(result.run_dir / "claims.json", {
        "id": figure_id, "title": repro.title, "quick": quick, "run_status": result.status,
        "overrides": list(overrides), "config_hash": planned.config_hash, "code_hash": planned.code_hash,
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cores": _cores(),
        "claims": [v.to_json() for v in verdicts]})
    return result, verdicts


@dataclasses.dataclass
class Outcome:
    """One row of ``reproduce --all``: how a reproduction ended (``claims`` is its claims.json)."""

    id: str
    status: str                      # done, failed, diverged, interrupted, or "error" (bad config)
    claims: list = dataclasses.field(default_factory=list)
    wall_s: Optional[float] = None
    run_dir: str = ""
    cached: bool = False
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "done" and bool(self.claims) and all(c.get("passed") for c in self.claims)


def cached_run(planned: Planned, workdir: Union[str, pathlib.Path], quick: bool) -> Optional[dict]:
    """The latest finished run under ``workdir`` with the same id, size, config hash and code hash."""
    from .history import finished_runs

    same = [c for c in finished_runs(workdir, quick=quick) if c["id"] == planned.repro.id
            and c.get("config_hash") == planned.config_hash and c.get("code_hash") == planned.code_hash
            and not c.get("overrides")]
    return same[-1] if same else None


def reproduce_all(*, quick: bool = False, workdir: Union[str, pathlib.Path] = "runs", only: Sequence[str] = (),
                  stream=None) -> list[Outcome]:
    """Every reproduction (or those in ``only``), skipping those with a finished identical run in ``workdir``
    (:func:`cached_run`); prints a progress line per reproduction."""
    stream = stream or sys.stdout
    chosen = list(only) or ids()
    outcomes = []
    for i, figure_id in enumerate(chosen, 1):
        prefix = f"[reproduce --all {i}/{len(chosen)}] {figure_id}"
        try:
            planned = plan(figure_id, quick=quick)
        except config_lib.ConfigError as e:
            print(f"{prefix}: error: {e}", file=stream, flush=True)
            outcomes.append(Outcome(figure_id, "error", message=str(e)))
            continue
        cached = cached_run(planned, workdir, quick)
        if cached is not None:
            print(f"{prefix}: unchanged since {cached['run_dir']}, reused", file=stream, flush=True)
            outcomes.append(Outcome(figure_id, "done", cached["claims"], cached.get("wall_s"),
                                    cached["run_dir"], cached=True))
            continue
        print(f"{prefix}: running" + (" (--quick)" if quick else "") + " …", file=stream, flush=True)
        try:
            result, verdicts = reproduce(figure_id, quick=quick, workdir=workdir, stream=stream)
        except config_lib.ConfigError as e:
            print(f"{prefix}: error: {e}", file=stream, flush=True)
            outcomes.append(Outcome(figure_id, "error", message=str(e)))
            continue
        claims = metrics_lib.read_json(result.run_dir / "claims.json", {})
        print(format_table(figure_id, verdicts, quick=quick), file=stream, flush=True)
        outcomes.append(Outcome(figure_id, result.status, claims.get("claims", []), claims.get("wall_s"),
                                str(result.run_dir), message=result["message"]))
    return outcomes


def format_matrix(outcomes: Sequence[Outcome], quick: bool = False) -> str:
    """The PASS/FAIL matrix of ``reproduce --all``."""
    width = max((len(o.id) for o in outcomes), default=12)
    rows = [f"{'reproduction':<{width}}  claims  verdict  {'time':>8}  run" +
            ("   (--quick: indicative verdicts)" if quick else "")]
    for o in outcomes:
        n_pass = sum(bool(c.get("passed")) for c in o.claims)
        verdict = "PASS" if o.passed else ("FAIL" if o.status == "done" else o.status.upper())
        when = f"{o.wall_s:.0f} s" if isinstance(o.wall_s, (int, float)) else "-"
        where = (o.run_dir + (" (cached)" if o.cached else "")) if o.run_dir else o.message
        rows.append(f"{o.id:<{width}}  {f'{n_pass}/{len(o.claims)}':>6}  {verdict:<7}  {when:>8}  {where}")
    finished = [o for o in outcomes if o.status == "done"]
    rows.append(f"{sum(o.passed for o in outcomes)} of {len(outcomes)} reproductions pass every claim; "
                f"{len(outcomes) - len(finished)} did not finish")
    return "\n".join(rows)
