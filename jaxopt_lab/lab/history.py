"""Finished reproduction runs, and the records committed from them.

Every ``jaxopt-lab reproduce`` run writes ``claims.json`` into its run directory
(``<workdir>/<experiment>/<UTC time>-<hash>/``). A run counts as *finished* when ``claims.json`` parses and
says the run ended ``done`` (a failed, interrupted or diverged run, a run killed before its claims were
written, or a damaged file is skipped, never an error). A run started with ``--set`` overrides is not the
reproduction's own config, so it never counts as its full-size (or quick) run here.

A *record* is what ``reproduce --list`` shows when the workdir holds no finished full-size run of a
reproduction: ``configs/reproduce/records/<id>.json`` with the run time, the cores, the date, the git
commit and the verdicts of the latest finished full-size run. ``jaxopt-lab reproduce --record RUNS_DIR``
writes them (:func:`write_records`). Nothing here imports jax.
"""

from __future__ import annotations

import datetime
import json
import pathlib
from typing import Any, Optional, Union

from .metrics import atomic_write_json

__all__ = ["finished_runs", "latest", "read_json", "record_of", "write_records", "read_record", "records_dir", "describe"]

PathLike = Union[str, pathlib.Path]
_STAMP = "%Y%m%dT%H%M%SZ"


def read_json(path: pathlib.Path) -> Optional[dict]:
    """A JSON object file's contents, or None when it is missing, damaged or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _started(run_dir: pathlib.Path) -> Optional[datetime.datetime]:
    try:
        return datetime.datetime.strptime(run_dir.name[:16], _STAMP).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def _wall_s(run_dir: pathlib.Path, claims: dict) -> Optional[float]:
    """The run's wall time: as the reproduction measured it, else status.json's last update minus the
    start time in the directory's name (runs written before the time was recorded)."""
    if isinstance(claims.get("wall_s"), (int, float)):
        return float(claims["wall_s"])
    status, start = read_json(run_dir / "status.json") or {}, _started(run_dir)
    try:
        end = datetime.datetime.strptime(status.get("updated", ""), _STAMP).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return (end - start).total_seconds() if start is not None else None


def finished_runs(workdir: PathLike, *, quick: Optional[bool] = False) -> list[dict]:
    """``claims.json`` of every finished run under ``workdir`` (oldest first), each with ``run_dir`` and
    ``wall_s`` filled in; ``quick=None`` takes both sizes."""
    base = pathlib.Path(workdir)
    if not base.is_dir():
        return []
    runs = []
    for path in base.glob("*/*/claims.json"):
        claims = read_json(path)
        if claims is None or claims.get("run_status") != "done" or not isinstance(claims.get("id"), str):
            continue
        if not isinstance(claims.get("claims"), list) or (quick is not None and bool(claims.get("quick")) != quick):
            continue
        if claims.get("overrides"):  # a changed config checks nothing the reproduction claims
            continue
        run_dir = path.parent
        claims = dict(claims, run_dir=str(run_dir), wall_s=_wall_s(run_dir, claims))
        runs.append(claims)
    return sorted(runs, key=lambda c: (pathlib.Path(c["run_dir"]).name, c["run_dir"]))


def latest(workdir: PathLike, *, quick: Optional[bool] = False) -> dict[str, dict]:
    """id -> ``claims.json`` of its latest finished run under ``workdir``."""
    return {c["id"]: c for c in finished_runs(workdir, quick=quick)}


def record_of(claims: dict) -> dict:
    """The record of one finished full-size run (see the module docstring)."""
    run_dir = pathlib.Path(claims["run_dir"])
    env = read_json(run_dir / "env.json") or {}
    started = _started(run_dir)
    verdicts = [{k: c.get(k) for k in ("name", "result", "value", "bound", "check")} for c in claims["claims"]]
    return {
        "id": claims["id"], "title": claims.get("title", claims["id"]),
        "wall_s": claims.get("wall_s"), "cpu_s": claims.get("cpu_s"), "cores": claims.get("cores"),
        "date": started.strftime("%Y-%m-%d %H:%M UTC") if started else None,
        "git_commit": env.get("git_commit"), "config_hash": claims.get("config_hash"),
        "code_hash": claims.get("code_hash"), "run": run_dir.name,
        "passed": sum(c.get("result") == "PASS" for c in verdicts),
        "failed": sum(c.get("result") != "PASS" for c in verdicts),
        "claims": verdicts,
    }


def records_dir(project_root: PathLike) -> pathlib.Path:
    return pathlib.Path(project_root) / "configs" / "reproduce" / "records"


def write_records(runs_dir: PathLike, out_dir: PathLike, known_ids=None) -> tuple[list[str], list[str]]:
    """Write ``<out_dir>/<id>.json`` for the latest finished full-size run of each reproduction under
    ``runs_dir``; returns (ids written, notes on what was skipped and why)."""
    base = pathlib.Path(runs_dir)
    if not base.is_dir():
        from .config import ConfigError

        raise ConfigError(f"reproduce --record {str(runs_dir)!r}: not a directory")
    notes = []
    for path in sorted(base.glob("*/*/claims.json")):
        claims = read_json(path)
        if claims is None:
            notes.append(f"{path.parent}: claims.json is missing or damaged, skipped")
        elif claims.get("run_status") != "done":
            notes.append(f"{path.parent}: {claims.get('id')} ended {claims.get('run_status')!r}, skipped")
    out = pathlib.Path(out_dir)
    written = []
    for figure_id, claims in sorted(latest(base).items()):
        if known_ids is not None and figure_id not in known_ids:
            notes.append(f"{claims['run_dir']}: {figure_id!r} is not a registered reproduction, skipped")
            continue
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / f"{figure_id}.json", record_of(claims))
        written.append(figure_id)
    return written, notes


def read_record(project_root: PathLike, figure_id: str) -> Optional[dict]:
    record = read_json(records_dir(project_root) / f"{figure_id}.json")
    return record if record is not None and isinstance(record.get("claims"), list) else None


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "time unknown"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def describe(result: dict) -> str:
    """One line: verdicts, run time, cores, date -- of a finished run's claims.json or of a record."""
    claims = result.get("claims", [])
    passed = sum(c.get("result") == "PASS" for c in claims)
    cores = result.get("cores")
    date = result.get("date")
    if date is None and result.get("run_dir"):
        started = _started(pathlib.Path(result["run_dir"]))
        date = started.strftime("%Y-%m-%d %H:%M UTC") if started else None
    failing = [c.get("name") for c in claims if c.get("result") != "PASS"]
    verdict = "PASS" if not failing else f"FAIL ({', '.join(map(str, failing))})"
    on = f" on {cores} cores" if cores else ""  # records written before the core count was kept lack it
    return (f"{passed}/{len(claims)} claims pass, {verdict}; {_duration(result.get('wall_s'))}{on}"
            + (f", {date}" if date else ""))
