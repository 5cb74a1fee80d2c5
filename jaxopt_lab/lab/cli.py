"""The ``jaxopt-lab`` command line.

    jaxopt-lab run CONFIG [--set KEY=VALUE ...] [--workdir DIR]
    jaxopt-lab run --resume RUN_DIR
    jaxopt-lab sweep CONFIG --seeds N [--grid KEY=V1,V2 ...] [--set KEY=VALUE ...] [--workdir DIR]
    jaxopt-lab reproduce ID [--quick] [--workdir DIR]
    jaxopt-lab reproduce --all [--quick] [--workdir DIR]
    jaxopt-lab reproduce --list [--workdir DIR]
    jaxopt-lab reproduce --record RUNS_DIR
    jaxopt-lab report [RUNS_DIR] [--out DIR]
    jaxopt-lab list [--runs [WORKDIR]]
    jaxopt-lab show CONFIG [--set KEY=VALUE ...]
    jaxopt-lab show EXPERIMENT
    jaxopt-lab --version

``run`` and ``sweep`` take ``--distributed [--coordinator ADDR --num-processes N --process-id I]`` to
join a multi-host job (SLURM and TPU pods are detected without the three options).

Exit status: 0 done (and, for a full-size ``reproduce``, every claim passed), 1 failed, interrupted or a
claim failed at full size, 2 bad config or arguments (one line on stderr, no traceback), 3 diverged.
``reproduce --quick`` is a smoke test: it prints its verdicts marked indicative and exits 0 when the run
finished, whatever they say.

The parser and ``list`` import no jax: the runtime is imported only by commands that run something.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from .config import ConfigError

__all__ = ["main"]


def _add_distributed(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("several hosts")
    group.add_argument("--distributed", action="store_true",
                       help="join a multi-host job (jax.distributed); SLURM and TPU pods are detected")
    group.add_argument("--coordinator", metavar="ADDR", help="host:port of process 0 (other launchers)")
    group.add_argument("--num-processes", type=int, metavar="N", help="number of processes in the job")
    group.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1")
    group.add_argument("--distributed-timeout", type=int, default=60, metavar="S",
                       help="seconds to wait for the coordinator (default: 60)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxopt-lab", description="Run, sweep and reproduce jaxopt_lab experiments.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: jaxopt-lab run configs/quickstart.py --set optimizer.name=sgd")
    parser.add_argument("--version", action="version", version=f"jaxopt-lab {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one config, writing a run directory",
                         description="Run one config; the run directory gets config, metrics, "
                                     "figures, checkpoints and a summary.")
    run.add_argument("config", nargs="?", help="config file, e.g. configs/quickstart.py")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value (type-checked); repeatable")
    run.add_argument("--workdir", default="runs", help="where run directories go (default: runs/)")
    run.add_argument("--quick", action="store_true",
                     help="apply the config file's QUICK overrides first: a small smoke-test size")
    run.add_argument("--resume", metavar="RUN_DIR",
                     help="continue RUN_DIR from its last checkpoint")
    _add_distributed(run)

    sw = sub.add_parser("sweep", help="vmap a config's experiment over seeds and a grid",
                        description="Run the experiment's pure trial over seeds x grid in one "
                                    "compiled call, sharded over all devices.")
    sw.add_argument("config")
    sw.add_argument("--seeds", type=int, required=True, help="number of seeds (0..N-1)")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                    help="values of one config key; repeatable (Cartesian product)")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sw.add_argument("--workdir", default="runs")
    _add_distributed(sw)

    rep = sub.add_parser("reproduce", help="re-run a paper figure and check its claims",
                         description="Re-run a paper figure, draw it and check the paper's claims "
                                     "(PASS/FAIL per claim).")
    rep.add_argument("id", nargs="?", help="figure id, e.g. quickstart-sweep")
    rep.add_argument("--quick", action="store_true",
                     help="smoke test at small size (under 30 s): verdicts are indicative, exit 0 if it ran")
    rep.add_argument("--all", action="store_true",
                     help="run every reproduction, reusing finished runs whose config and code are unchanged")
    rep.add_argument("--list", action="store_true",
                     help="list the reproductions with their last full-size verdicts and run time")
    rep.add_argument("--record", metavar="RUNS_DIR",
                     help="write configs/reproduce/records/<id>.json from the latest finished full-size "
                          "run of each reproduction under RUNS_DIR")
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    rep.add_argument("--workdir", default="runs", help="where run directories go (default: runs/)")

    report = sub.add_parser("report", help="write a static HTML site of the reproductions' runs",
                            description="Write an HTML site: a page per reproduction (paper, claims, "
                                        "figures, config, environment, run time) and an index with the "
                                        "PASS/FAIL matrix, from the latest run of each under RUNS_DIR.")
    report.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR",
                        help="the workdir of the reproductions (default: runs/)")
    report.add_argument("--out", default=None, metavar="DIR", help="where the site goes (default: RUNS_DIR/report)")

    ls = sub.add_parser("list", help="list experiments, configs, optimizers and reproductions",
                        description="List experiments, configs, optimizers and reproductions; with "
                                    "--runs, the run directories under WORKDIR and their status.")
    ls.add_argument("--runs", nargs="?", const="runs", metavar="WORKDIR",
                    help="list run directories instead (default WORKDIR: runs/)")

    show = sub.add_parser("show", help="print a config as it would run, or an experiment's defaults",
                          description="Print the resolved config, each value with its source (the "
                                      "experiment's default, the file or a --set) and its help text; "
                                      "given an experiment's name instead, its default config with help "
                                      "and allowed values.")
    show.add_argument("config", metavar="CONFIG|EXPERIMENT")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("jaxopt-lab")
    except importlib.metadata.PackageNotFoundError:
        from .. import __version__
        return __version__


def _init_distributed(args) -> None:
    """``jaxopt_lab.train.distributed.initialize`` with the command line's options (before any work)."""
    explicit = {"--coordinator": args.coordinator, "--num-processes": args.num_processes,
                "--process-id": args.process_id}
    given = [k for k, v in explicit.items() if v is not None]
    if not args.distributed:
        if given:
            raise ConfigError(f"{given[0]} needs --distributed")
        return
    if given and len(given) != 3:
        missing = [k for k in explicit if k not in given]
        raise ConfigError(f"--distributed with {', '.join(given)} also needs {', '.join(missing)} "
                          f"(or none of the three, to detect SLURM / TPU pods)")
    if given:
        if args.num_processes < 1:
            raise ConfigError(f"--num-processes {args.num_processes}: must be an integer >= 1")
        if not 0 <= args.process_id < args.num_processes:
            raise ConfigError(f"--process-id {args.process_id}: must be in 0..{args.num_processes - 1}")
    if args.distributed_timeout < 1:
        raise ConfigError(f"--distributed-timeout {args.distributed_timeout}: must be an integer >= 1")
    try:
        from ..train import distributed
    except ImportError as e:
        raise ConfigError(f"--distributed needs jaxopt_lab.train.distributed, which cannot be imported "
                          f"({e})") from None
    distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                           process_id=args.process_id, timeout_s=args.distributed_timeout)


def _cmd_run(args) -> int:
    from .config import load_config

    if args.config and not args.resume:
        print(f"[jaxopt-lab] loading {args.config} …", flush=True)  # before jax's import, ~seconds
    if args.resume:
        if args.config or args.overrides or args.quick:
            raise ConfigError("--resume takes only RUN_DIR: the config is the one the run started with")
        from .run import resume_run

        result = resume_run(args.resume)
    else:
        if not args.config:
            raise ConfigError("run needs a CONFIG file (or --resume RUN_DIR)")
        # a config error stops here, before jax's import
        cfg = load_config(args.config, args.overrides, quick=args.quick)
        from .run import start_run

        result = start_run(cfg, args.workdir)
    print(f"{result.status}: {result.run_dir}" + (f" ({result['message']})" if result["message"] else ""))
    if result.status == "failed" and not result["message"].startswith("disk full"):
        status = result.run_dir / "status.json"
        print(f"see {status} for the traceback", file=sys.stderr)
    return result.exit_code


def _cmd_sweep(args) -> int:
    from .config import load_config

    print(f"[jaxopt-lab] loading {args.config} …", flush=True)
    cfg = load_config(args.config, args.overrides)
    from .sweep import parse_grid, run_sweep_experiment

    grid = parse_grid(args.grid)
    shape = "".join(f" x {len(values)} {key}" for key, values in grid.items())
    print(f"[jaxopt-lab] sweeping {cfg.experiment}: {args.seeds} seeds{shape}; compiling…", flush=True)
    run_dir, summary = run_sweep_experiment(cfg, args.seeds, grid, args.workdir)
    for point, values in summary.items():
        shown = " ".join(f"{k}={v:.4g}" for k, v in values.items() if k.endswith("_mean"))
        print(f"  {point}: {shown}")
    print(f"done: {run_dir}")
    return 0


def _cmd_reproduce(args) -> int:
    from . import reproduce as rep

    modes = [name for name, on in (("ID", bool(args.id)), ("--all", args.all), ("--list", args.list),
                                   ("--record", args.record is not None)) if on]
    if len(modes) > 1:
        raise ConfigError(f"reproduce takes one of ID, --all, --list, --record; got {' and '.join(modes)}")
    if args.list:
        return _list_reproductions(args.workdir)
    if args.record is not None:
        return _record(args.record)
    if args.all:
        if args.overrides:
            raise ConfigError("reproduce --all takes no --set: each reproduction runs as configured")
        outcomes = rep.reproduce_all(quick=args.quick, workdir=args.workdir)
        print(rep.format_matrix(outcomes, quick=args.quick))
        finished = all(o.status == "done" for o in outcomes)
        return (0 if finished else 1) if args.quick else (0 if all(o.passed for o in outcomes) else 1)
    if not args.id:
        raise ConfigError("reproduce needs a figure ID, --all, --list or --record (see 'jaxopt-lab reproduce -h')")
    print(f"[jaxopt-lab] reproduce {args.id}{' --quick' if args.quick else ''}: loading …", flush=True)
    result, verdicts = rep.reproduce(args.id, quick=args.quick, workdir=args.workdir,
                                     overrides=args.overrides)
    print(rep.format_table(args.id, verdicts, quick=args.quick))
    print(f"{result.status}: {result.run_dir}")
    if result.status != "done":
        return result.exit_code
    return 0 if args.quick or all(v.passed for v in verdicts) else 1


def _list_reproductions(workdir: str) -> int:
    """Each reproduction with its last full-size verdicts and run time: from the latest finished run in
    the workdir, else from its committed record."""
    from . import catalog, history
    from .project import project_roots

    runs = history.latest(workdir)
    seen = set()
    for root in project_roots():
        for r in catalog.reproductions(root / "configs" / "reproduce"):
            if r.name in seen:
                continue
            seen.add(r.name)
            print(f"{r.name:<26} {r.summary}" + (f"  [cannot load: {r.error}]" if r.error else ""))
            if r.name in runs:
                last = runs[r.name]
                print(f"{'':<26}   last full-size run: {history.describe(last)} ({last['run_dir']})")
            elif (record := history.read_record(root, r.name)) is not None:
                commit = (record.get("git_commit") or "?")[:10]
                print(f"{'':<26}   recorded full-size run: {history.describe(record)}, commit {commit}")
            else:
                print(f"{'':<26}   no full-size run recorded")
    return 0


def _record(runs_dir: str) -> int:
    from . import history
    from .project import project_root
    from .reproduce import ids

    out = history.records_dir(project_root())
    written, notes = history.write_records(runs_dir, out, known_ids=set(ids()))
    for note in notes:
        print(f"  skipped: {note}")
    for figure_id in written:
        print(f"  recorded {figure_id}: {history.describe(history.read_record(project_root(), figure_id))}")
    print(f"{len(written)} records written to {out}" + ("" if written else
          f" (no finished full-size reproduction run under {runs_dir})"))
    return 0


def _cmd_report(args) -> int:
    from .report import write_site

    index, notes = write_site(args.runs_dir, args.out)
    for note in notes:
        print(f"  {note}")
    print(f"report: {index}")
    return 0


def _cmd_list(args) -> int:
    from . import catalog
    from .project import config_files, experiment_names, experiment_path, project_roots

    if args.runs is not None:
        return _list_runs(args.runs)
    roots = project_roots()
    print("experiments:")
    for name in experiment_names():
        e = catalog.module_entry(experiment_path(name))
        print(f"  {e.name:<24} {e.summary}" + (f"  [cannot import: {e.error}]" if e.error else ""))
    print("configs:")
    for path in config_files():
        root = next(r for r in roots if path.is_relative_to(r))
        print(f"  {path.relative_to(root)}" + ("" if root == roots[0] else f"  ({root})"))
    print("optimizers (name, family, extra args, paper):")
    rows = [(o.name, o.extra[0], ",".join(o.extra[1]) or "-", o.summary) for o in catalog.optimizers()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)] if rows else [0, 0, 0]
    for name, family, extra, paper in rows:  # columns as wide as their longest entry
        print(f"  {name:<{widths[0]}}  {family:<{widths[1]}}  {extra:<{widths[2]}}  {paper}")
    print("reproductions:")
    seen = set()
    for root in roots:
        for r in catalog.reproductions(root / "configs" / "reproduce"):
            if r.name not in seen:
                seen.add(r.name)
                print(f"  {r.name}" + (f"  [cannot load: {r.error}]" if r.error else ""))
    return 0


def _list_runs(workdir: str) -> int:
    import pathlib

    from .lock import effective_status

    base = pathlib.Path(workdir)
    if not base.is_dir():
        raise ConfigError(f"list --runs {workdir!r}: not a directory")
    runs = sorted(p.parent for p in base.glob("*/*/config.json"))
    for run_dir in runs:
        status = effective_status(run_dir)
        step = status.get("step")
        where = f" at step {step}" if step is not None else ""
        message = f"  ({status['message']})" if status.get("message") else ""
        print(f"  {status.get('status', 'unknown'):<12} {run_dir}{where}{message}")
    if not runs:
        print(f"  no run directories under {workdir}")
    return 0


def _cmd_show(args) -> int:
    from .project import experiment_path, resolve_config

    if not resolve_config(args.config).is_file() and experiment_path(args.config) is not None:
        if args.overrides:
            raise ConfigError(f"show {args.config!r}: --set needs a config file, not an experiment name")
        return _show_experiment(args.config)
    return _show_config(args.config, args.overrides)


def _show_config(path: str, overrides: Sequence[str]) -> int:
    """Each key of the resolved config: value, where it comes from (the default, the file or --set) and
    its help text."""
    from .config import defaults_from, flat_items, help_of, load_config, load_config_module
    from .project import declared, experiment_path, rooted_at

    cfg = load_config(path, overrides)
    module = load_config_module(path)
    with rooted_at(module.__jaxopt_lab_path__):
        stated = dict(flat_items(module.get_config()))
        described = declared(experiment_path(cfg.experiment))
    table = described.defaults if described is not None else None
    defaults = dict(flat_items(defaults_from(table, cfg.experiment))) if table else {}
    overridden = {o.partition("=")[0].strip() for o in overrides}
    items = flat_items(cfg)
    width = max(len(k) for k, _ in items)
    value_width = min(24, max(len(repr(v)) for _, v in items))
    print(f"# {path}: experiment {cfg.experiment!r}" + ("" if table else " (declares no CONFIG_DEFAULTS)"))
    shown = set()  # a help text once: the fields of a dict default share their entry's
    for key, value in items:
        if key in overridden:
            where = "--set"
        elif key in stated:
            where = path + (" (same as the default)" if key in defaults and defaults[key] == value else "")
        else:
            where = "default"
        text = help_of(table, key) if table else ""
        if text in shown:
            text = ""
        shown.add(text)
        print(f"{key:<{width}} = {value!r:<{value_width}}  # {where}" + (f" -- {text}" if text else ""))
    return 0


def _show_experiment(name: str) -> int:
    """The experiment's config keys: default, help text and allowed values; then its open-ended keys."""
    from . import catalog
    from .config import check_table
    from .project import declared, experiment_path

    path = experiment_path(name)
    described = declared(path)
    print(f"experiment {name!r}: {catalog.module_entry(path).summary}  ({path})")
    if described is None:
        raise ConfigError(f"experiment file {str(path)!r} does not parse")
    if not described.complete:
        print("  (its CONFIG_SPEC is built in a way read only by importing it: some allowed values are not shown)")
    table = check_table(described.defaults, name) if described.defaults is not None else {}
    if described.defaults is None:
        print("  declares no CONFIG_DEFAULTS: a config states 'experiment', 'seed' and every key below")
    keys = list(table) + sorted(k for k in described.keys if k not in table and "*" not in k)
    width = max([len(k) for k in keys] + [3])
    for key in keys:
        value, text = table.get(key, (None, ""))
        rule = described.spec.get(key)
        allowed = f" [{_short(rule.describe())}]" if rule is not None else ""
        shown = repr(value) if key in table else "(no default: a config must state it)"
        print(f"  {key:<{width}} = {shown}")
        if text or allowed:
            print(f"  {'':<{width}}   {text}{allowed}")
    patterns = sorted(k for k in described.keys if "*" in k)
    if patterns:
        print("open-ended keys ('*' stands for any name; no default): " + ", ".join(patterns))
    return 0


def _short(text: str, limit: int = 160) -> str:
    """``text``, or its start and end around '...' when longer than ``limit`` (e.g. 90 optimizer names)."""
    return text if len(text) <= limit else f"{text[:limit // 2].rpartition(',')[0]}, ..., " \
                                           f"{text[-limit // 4:].partition(', ')[2]}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _cmd_run, "sweep": _cmd_sweep, "reproduce": _cmd_reproduce, "list": _cmd_list,
                "show": _cmd_show, "report": _cmd_report}
    try:
        if hasattr(args, "distributed"):
            _init_distributed(args)
        return commands[args.command](args)
    except ConfigError as e:
        print(f"jaxopt-lab: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        from .metrics import disk_full_message, is_disk_full

        if not is_disk_full(e):
            raise
        print(f"jaxopt-lab: error: {disk_full_message(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("jaxopt-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
