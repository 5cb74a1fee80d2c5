"""``jaxopt-lab report``: a static HTML site of the reproductions' runs (standard library only).

For each reproduction the site shows its latest run under the runs directory -- the latest finished
full-size run, else the latest finished ``--quick`` run (labelled indicative), else the latest run that did
not finish (with the reason) -- on a page ``<id>.html``: the title, the paper and what differs from it
(the reproduction's ``DESCRIPTION``), every claim with its quote, check, measured value, bound and verdict,
the figures (copied next to the page), the config, the environment and the run time. ``index.html`` holds
the PASS/FAIL matrix of every registered reproduction. Every text is HTML-escaped; every link is relative
and points to a file the site contains.
"""

from __future__ import annotations

import datetime
import html
import json
import pathlib
import shutil
from typing import Any, Optional, Union

from . import history

__all__ = ["write_site", "choose_runs"]

PathLike = Union[str, pathlib.Path]

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.PASS { color: #176b2c; font-weight: bold; } .FAIL { color: #b00020; font-weight: bold; }
.other { color: #8a5a00; font-weight: bold; }
.banner { background: #fff4d6; border: 1px solid #e0c060; padding: 0.5rem 1rem; }
pre { background: #f7f7f7; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5rem 0; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—" if value is None else str(value)
    return f"{value:.4g}"


def choose_runs(runs_dir: PathLike) -> dict[str, dict]:
    """id -> the claims.json (with ``run_dir``) shown for it (see the module docstring)."""
    base = pathlib.Path(runs_dir)
    attempts: dict[str, list] = {}
    for path in sorted(base.glob("*/*/claims.json"), key=lambda p: p.parent.name):
        claims = history.read_json(path)
        if claims is None or not isinstance(claims.get("id"), str) or not isinstance(claims.get("claims"), list):
            continue
        attempts.setdefault(claims["id"], []).append(dict(claims, run_dir=str(path.parent)))
    full, quick = history.latest(base, quick=False), history.latest(base, quick=True)
    return {figure_id: full.get(figure_id) or quick.get(figure_id) or tried[-1]
            for figure_id, tried in attempts.items()}


def _verdict(claims: Optional[dict]) -> tuple[str, str]:
    """(text, css class) of a run's overall verdict."""
    if claims is None:
        return "no run", "other"
    if claims.get("run_status") != "done":
        return f"run {claims.get('run_status', 'unknown')}", "other"
    passed = all(c.get("passed") for c in claims["claims"]) and bool(claims["claims"])
    text = "PASS" if passed else "FAIL"
    return (text + " (indicative)" if claims.get("quick") else text), text


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def _repro_text(figure_id: str) -> tuple[str, str]:
    """(TITLE, DESCRIPTION) of a registered reproduction; empty strings if it cannot be loaded."""
    from .config import ConfigError
    from .reproduce import load

    try:
        repro = load(figure_id)
    except ConfigError:
        return "", ""
    return repro.title, repro.description


def _duration(seconds: Any) -> str:
    return "unknown" if not isinstance(seconds, (int, float)) else (
        f"{seconds:.1f} s" if seconds < 120 else f"{seconds:.0f} s ({seconds / 60:.1f} min)")


def _run_page(figure_id: str, claims: dict, out: pathlib.Path, title: str, description: str) -> str:
    run_dir = pathlib.Path(claims["run_dir"])
    status = history.read_json(run_dir / "status.json") or {}
    env = history.read_json(run_dir / "env.json") or {}
    verdict, css = _verdict(claims)
    parts = ["<p><a href=\"index.html\">all reproductions</a></p>",
             f"<h1>{_e(title or claims.get('title') or figure_id)}</h1>",
             f"<p><code>jaxopt-lab reproduce {_e(figure_id)}</code> — verdict: "
             f"<span class=\"{css}\">{_e(verdict)}</span></p>"]
    if claims.get("quick"):
        parts.append("<p class=\"banner\">This is a <b>--quick</b> run: a smoke test at small size. Its "
                     "verdicts are indicative only; the claims are checked by the full-size run.</p>")
    if claims.get("run_status") != "done":
        parts.append(f"<p class=\"banner\">The run did not finish: status <b>{_e(claims.get('run_status'))}"
                     f"</b>. {_e(status.get('message', ''))}</p>")
    if description:
        parts.append("<h2>The paper, and what differs</h2>" +
                     "".join(f"<p>{_e(p)}</p>" for p in description.split("\n\n") if p.strip()))
    rows = ["<tr><th>claim</th><th>the paper says</th><th>check</th><th>measured</th><th>bound</th>"
            "<th>verdict</th></tr>"]
    for c in claims["claims"]:
        result = c.get("result", "PASS" if c.get("passed") else "FAIL")
        note = f"<br><small>{_e(c['note'])}</small>" if c.get("note") else ""
        shown = result + (" (indicative)" if claims.get("quick") else "")
        rows.append(f"<tr><td>{_e(c.get('name'))}</td><td>{_e(c.get('quote', ''))}</td>"
                    f"<td><code>{_e(c.get('check', ''))}</code></td><td>{_e(_number(c.get('value')))}</td>"
                    f"<td>{_e(_number(c.get('bound')))}</td><td class=\"{_e(result)}\">{_e(shown)}{note}</td></tr>")
    parts.append("<h2>Claims</h2><table>" + "".join(rows) + "</table>")
    figures = sorted(p for p in run_dir.rglob("*.png") if "checkpoints" not in p.relative_to(run_dir).parts)
    if figures:
        parts.append("<h2>Figures</h2>")
        folder = out / figure_id
        folder.mkdir(parents=True, exist_ok=True)
        for fig in figures:
            name = "_".join(fig.relative_to(run_dir).parts)
            shutil.copyfile(fig, folder / name)
            parts.append(f"<figure><img src=\"{_e(figure_id)}/{_e(name)}\" alt=\"{_e(fig.stem)}\">"
                         f"<figcaption>{_e(fig.stem)}</figcaption></figure>")
    timing = [("run directory", str(run_dir)), ("status", claims.get("run_status")),
              ("size", "--quick (indicative)" if claims.get("quick") else "full size"),
              ("wall time", _duration(claims.get("wall_s"))), ("CPU time", _duration(claims.get("cpu_s"))),
              ("cores", claims.get("cores") or "unknown"), ("git commit", env.get("git_commit")),
              ("config hash", claims.get("config_hash")), ("code hash", claims.get("code_hash"))]
    parts.append("<h2>Run</h2><table>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v if v is not None else 'unknown')}</td></tr>" for k, v in timing) + "</table>")
    config = (run_dir / "config.json").read_text() if (run_dir / "config.json").is_file() else "(missing)"
    parts.append(f"<h2>Config</h2><pre>{_e(config)}</pre>")
    shown_env = {k: env.get(k) for k in ("python", "platform", "backend", "devices", "x64", "versions")}
    parts.append(f"<h2>Environment</h2><pre>{_e(json.dumps(shown_env, indent=2))}</pre>")
    return _page(f"{figure_id} — jaxopt_lab reproduction", "\n".join(parts))


def write_site(runs_dir: PathLike = "runs", out: Optional[PathLike] = None) -> tuple[pathlib.Path, list[str]]:
    """Write the site into ``out`` (default ``RUNS_DIR/report``); returns (index.html, notes).

    ``ConfigError`` if ``runs_dir`` is not a directory. A runs directory without reproduction runs gives
    an index that says so.
    """
    from .config import ConfigError
    from .reproduce import ids

    base = pathlib.Path(runs_dir)
    if not base.is_dir():
        raise ConfigError(f"report {str(runs_dir)!r}: not a directory (run 'jaxopt-lab reproduce --all' "
                          f"to fill it)")
    out = pathlib.Path(out) if out is not None else base / "report"
    out.mkdir(parents=True, exist_ok=True)
    chosen = choose_runs(base)
    try:
        registered = ids()
    except ConfigError:
        registered = []
    notes = []
    rows = ["<tr><th>reproduction</th><th>title</th><th>claims passed</th><th>verdict</th><th>size</th>"
            "<th>wall time</th></tr>"]
    for figure_id in sorted(set(registered) | set(chosen)):
        title, description = _repro_text(figure_id)
        claims = chosen.get(figure_id)
        verdict, css = _verdict(claims)
        if claims is None:
            notes.append(f"{figure_id}: no run under {base}")
            rows.append(f"<tr><td>{_e(figure_id)}</td><td>{_e(title)}</td><td>—</td>"
                        f"<td class=\"other\">no run</td><td>—</td><td>—</td></tr>")
            continue
        (out / f"{figure_id}.html").write_text(_run_page(figure_id, claims, out, title, description))
        n_pass = sum(bool(c.get("passed")) for c in claims["claims"])
        rows.append(f"<tr><td><a href=\"{_e(figure_id)}.html\">{_e(figure_id)}</a></td>"
                    f"<td>{_e(title or claims.get('title', ''))}</td><td>{n_pass}/{len(claims['claims'])}</td>"
                    f"<td class=\"{css}\">{_e(verdict)}</td>"
                    f"<td>{'--quick' if claims.get('quick') else 'full'}</td>"
                    f"<td>{_e(_duration(claims.get('wall_s')))}</td></tr>")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = ["<h1>jaxopt_lab reproductions</h1>",
            f"<p>From the runs under <code>{_e(base)}</code>, {_e(now)}. Each page shows the latest finished "
            f"full-size run of a reproduction, else its latest <code>--quick</code> run, whose verdicts are "
            f"indicative only.</p>"]
    if not chosen:
        body.append(f"<p class=\"banner\">No reproduction runs under <code>{_e(base)}</code>: run "
                    f"<code>jaxopt-lab reproduce --all --workdir {_e(base)}</code> first.</p>")
        notes.append(f"no reproduction runs under {base}")
    body.append("<table>" + "".join(rows) + "</table>")
    index = out / "index.html"
    index.write_text(_page("jaxopt_lab reproductions", "\n".join(body)))
    return index, notes
