"""The ``jaxopt-lab`` command line.

    jaxopt-lab run CONFIG [--set KEY=VALUE ...] [--workdir DIR]
    jaxopt-lab run --resume RUN_DIR
    jaxopt-lab sweep CONFIG --seeds N [--grid KEY=V1,V2 ...] [--set KEY=VALUE ...] [--workdir DIR]
    jaxopt-lab reproduce ID [--quick] [--workdir DIR]
    jaxopt-lab reproduce --list
    jaxopt-lab list [--runs [WORKDIR]]
    jaxopt-lab show CONFIG [--set KEY=VALUE ...]
    jaxopt-lab --version

``run`` and ``sweep`` take ``--distributed [--coordinator ADDR --num-processes N --process-id I]`` to
join a multi-host job (SLURM and TPU pods are detected without the three options).

Exit status: 0 done (and every claim passed, for ``reproduce``), 1 failed, interrupted or a claim
failed, 2 bad config or arguments (one line on stderr, no traceback), 3 diverged.

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
    rep.add_argument("--quick", action="store_true", help="small size that finishes in seconds")
    rep.add_argument("--list", action="store_true", help="list the reproductions")
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    rep.add_argument("--workdir", default="runs")

    ls = sub.add_parser("list", help="list experiments, configs, optimizers and reproductions",
                        description="List experiments, configs, optimizers and reproductions; with "
                                    "--runs, the run directories under WORKDIR and their status.")
    ls.add_argument("--runs", nargs="?", const="runs", metavar="WORKDIR",
                    help="list run directories instead (default WORKDIR: runs/)")

    show = sub.add_parser("show", help="print a config as it would run",
                          description="Print the resolved config, each value with its source "
                                      "(the file or a --set).")
    show.add_argument("config")
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
    from .run import resume_run, start_run

    if args.config and not args.resume:
        print(f"[jaxopt-lab] loading {args.config} …", flush=True)  # before jax's import, ~seconds
    if args.resume:
        if args.config or args.overrides:
            raise ConfigError("--resume takes only RUN_DIR: the config is the one the run started with")
        result = resume_run(args.resume)
    else:
        if not args.config:
            raise ConfigError("run needs a CONFIG file (or --resume RUN_DIR)")
        result = start_run(load_config(args.config, args.overrides), args.workdir)
    print(f"{result.status}: {result.run_dir}" + (f" ({result['message']})" if result["message"] else ""))
    if result.status == "failed" and not result["message"].startswith("disk full"):
        status = result.run_dir / "status.json"
        print(f"see {status} for the traceback", file=sys.stderr)
    return result.exit_code


def _cmd_sweep(args) -> int:
    from .config import load_config
    from .sweep import parse_grid, run_sweep_experiment

    print(f"[jaxopt-lab] loading {args.config} …", flush=True)
    cfg = load_config(args.config, args.overrides)
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

    if args.list:
        for figure_id in rep.ids():
            r = rep.load(figure_id)
            print(f"{figure_id:<28} {r.title}  ({len(r.claims)} claims)")
        return 0
    if not args.id:
        raise ConfigError("reproduce needs a figure ID (see 'jaxopt-lab reproduce --list')")
    result, verdicts = rep.reproduce(args.id, quick=args.quick, workdir=args.workdir,
                                     overrides=args.overrides)
    print(rep.format_table(args.id, verdicts, quick=args.quick))
    print(f"{result.status}: {result.run_dir}")
    if result.status != "done":
        return result.exit_code
    return 0 if all(v.passed for v in verdicts) else 1


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
    for o in catalog.optimizers():
        family, extra = o.extra
        print(f"  {o.name:<22} {family:<10} {','.join(extra) or '-':<9} {o.summary}")
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
    from .config import flat_items, load_config, load_config_module
    from .project import load_experiment

    cfg = load_config(args.config, args.overrides)
    stated = dict(flat_items(load_config_module(args.config).get_config()))
    defaults = getattr(load_experiment(cfg.experiment), "default_config", None)
    default_items = dict(flat_items(defaults())) if callable(defaults) else {}
    overridden = {o.partition("=")[0].strip() for o in args.overrides}
    width = max(len(k) for k, _ in flat_items(cfg))
    for key, value in flat_items(cfg):
        if key in overridden:
            source = "--set"
        elif key in stated:
            source = args.config + (" (same as the default)" if default_items.get(key, object()) == value
                                    else "")
        else:
            source = f"default of experiment {cfg.experiment!r}"
        print(f"{key:<{width}} = {value!r:<24} # {source}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    commands = {"run": _cmd_run, "sweep": _cmd_sweep, "reproduce": _cmd_reproduce, "list": _cmd_list,
                "show": _cmd_show}
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
