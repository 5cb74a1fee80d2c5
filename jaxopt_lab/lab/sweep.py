"""Sweeps: one compiled, vmapped call over seeds x a hyperparameter grid, sharded over devices.

A trial is a pure function ``trial(key, hparams) -> pytree`` where ``hparams`` maps grid keys to scalars.
``sweep`` forms the Cartesian product ``grid x seeds`` as one flat *trial axis*, pads it to a multiple
of the device count (repeating the last trial; the padding is dropped afterwards), places the inputs
with a ``NamedSharding`` that splits the trial axis over ``jax.devices()``, and runs
``jit(vmap(trial))`` once. The same code runs on one CPU, several GPUs or a TPU slice; on several hosts
start it with ``jaxopt-lab sweep --distributed``: the trial axis
then spans the devices of every host. Outputs come back with shape ``(*grid_shape, n_seeds, ...)``.

The key of seed ``s`` is ``jax.random.PRNGKey(s)``, the same as ``ctx.key`` of a run with ``seed=s``,
so a sweep trial and a single run of the same pure function agree.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["Sweep", "SweepResult", "prepare", "sweep", "seed_keys"]

Trial = Callable[[jax.Array, Mapping[str, jax.Array]], Any]


def seed_keys(seeds: Sequence[int]) -> jax.Array:
    """``PRNGKey(s)`` for each seed, stacked: shape ``(len(seeds), 2)``."""
    return jnp.stack([jax.random.PRNGKey(int(s)) for s in seeds])


@dataclasses.dataclass
class SweepResult:
    """Outputs of a sweep.

    Attributes:
      grid: grid key -> values along that axis (in the order given).
      seeds: the seeds, the last axis before each output's own dimensions.
      outputs: the trial's outputs, each with leading shape ``(*grid_shape, n_seeds)``.
    """

    grid: dict[str, np.ndarray]
    seeds: np.ndarray
    outputs: Any

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.grid.values()) + (len(self.seeds),)

    def mean(self) -> Any:
        """Mean over seeds of each output."""
        return jax.tree.map(lambda x: np.mean(np.asarray(x), axis=len(self.grid)), self.outputs)

    def std(self) -> Any:
        """Standard deviation over seeds of each output."""
        return jax.tree.map(lambda x: np.std(np.asarray(x), axis=len(self.grid)), self.outputs)


@dataclasses.dataclass
class Sweep:
    """A prepared sweep: ``fn(*args)`` runs it (``fn.lower(*args).compile()`` compiles it apart)."""

    fn: Any
    args: tuple
    grid: dict[str, np.ndarray]
    seeds: np.ndarray
    n_trials: int

    def finish(self, outputs: Any) -> SweepResult:
        shape = tuple(len(v) for v in self.grid.values()) + (len(self.seeds),)

        if jax.process_count() > 1:  # the trial axis spans hosts: gather every host's trials
            from jax.experimental import multihost_utils

            outputs = multihost_utils.process_allgather(outputs, tiled=True)

        def unpad(x):
            x = np.asarray(x)[: self.n_trials]
            return x.reshape(shape + x.shape[1:])

        return SweepResult(self.grid, self.seeds, jax.tree.map(unpad, outputs))

    def run(self) -> SweepResult:
        return self.finish(self.fn(*self.args))


def prepare(trial: Trial, seeds: Union[int, Sequence[int]],
            grid: Optional[Mapping[str, Sequence[float]]] = None, *,
            devices: Optional[Sequence[jax.Device]] = None, shard: bool = True) -> Sweep:
    """Build the flat trial axis, its sharding and the jitted vmapped function (nothing runs yet).

    Args:
      trial: ``(key, hparams) -> pytree`` of arrays; pure and jit-able.
      seeds: a number of seeds (``0..n-1``) or the seeds themselves.
      grid: hyperparameter name -> values; the sweep covers their Cartesian product.
      devices: devices to shard the trial axis over (default: all of ``jax.devices()``).
      shard: ``False`` runs on the default device without sharding.
    """
    seeds = np.arange(seeds) if isinstance(seeds, int) else np.asarray(list(seeds))
    if seeds.ndim != 1 or len(seeds) == 0:
        raise ValueError(f"seeds must be a positive count or a non-empty list, got {seeds!r}")
    grid = {k: np.asarray(v) for k, v in (grid or {}).items()}
    for k, v in grid.items():
        if v.ndim != 1 or len(v) == 0 or not np.issubdtype(v.dtype, np.number):
            raise ValueError(f"grid {k!r} must be a non-empty list of numbers, got {v.tolist()!r}")
    axes = np.meshgrid(*grid.values(), indexing="ij") if grid else []
    n_points = math.prod(len(v) for v in grid.values())
    n_trials = n_points * len(seeds)

    hparams = {k: np.repeat(a.reshape(-1), len(seeds)) for k, a in zip(grid, axes)}
    keys = np.asarray(seed_keys(seeds))
    keys = np.tile(keys, (n_points, 1))

    devices = list(devices if devices is not None else jax.devices()) if shard else []
    n_pad = (-n_trials) % len(devices) if devices else 0

    def pad(x):
        return np.concatenate([x, np.repeat(x[-1:], n_pad, axis=0)]) if n_pad else x

    keys = pad(keys)
    hparams = {k: pad(v).astype(np.result_type(v.dtype, np.float32)
                            if np.issubdtype(v.dtype, np.floating) else v.dtype)
               for k, v in hparams.items()}

    batched = jax.vmap(trial)
    if devices:
        sharding = NamedSharding(Mesh(np.asarray(devices), ("trial",)), PartitionSpec("trial"))
        # Every host holds the whole (small) input; each fills in its own devices' shards, so the same
        # code places the trial axis on one host or across all hosts of a multi-host job.
        def place(x):
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

        keys = place(keys)
        hparams = {k: place(v) for k, v in hparams.items()}
        fn = jax.jit(batched, out_shardings=sharding)
    else:
        fn = jax.jit(batched)
    return Sweep(fn, (keys, hparams), grid, seeds, n_trials)


def sweep(trial: Trial, seeds: Union[int, Sequence[int]],
          grid: Optional[Mapping[str, Sequence[float]]] = None, *,
          devices: Optional[Sequence[jax.Device]] = None, shard: bool = True) -> SweepResult:
    """Run ``trial`` over ``grid x seeds`` in one compiled call (see :func:`prepare`).

    >>> import jax.numpy as jnp
    >>> res = sweep(lambda key, hp: hp["x"] ** 2 + 0 * key[0], seeds=2, grid={"x": [1.0, 2.0, 3.0]})
    >>> res.outputs.shape, res.mean().tolist()
    ((3, 2), [1.0, 4.0, 9.0])
    """
    return prepare(trial, seeds, grid, devices=devices, shard=shard).run()


# ------------------------------------------------------------------------------------------------
# `jaxopt-lab sweep`: an experiment's pure trial over seeds x grid, with a run directory.

def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["a.b=1,2,3", "c=x,y"]`` -> ``{"a.b": ["1","2","3"], "c": ["x","y"]}``."""
    from .config import ConfigError

    grid = {}
    for item in items:
        key, sep, values = item.partition("=")
        values = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not values:
            raise ConfigError(f"--grid {item!r}: expected KEY=V1,V2,..., e.g. --grid "
                              f"optimizer.learning_rate=0.01,0.1")
        grid[key.strip()] = values
    return grid


def run_sweep_experiment(cfg, seeds: int, grid: Mapping[str, Sequence[str]],
                         workdir="runs", stream=None) -> tuple[Any, dict]:
    """Sweep ``cfg``'s experiment over ``seeds`` and ``grid``; write a run directory.

    The experiment must define ``trial(cfg) -> (key, hparams) -> {name: scalar}``. Numeric grid keys are
    swept inside one vmapped, sharded call (``hparams`` holds them by dotted key); other keys (e.g. the
    optimizer name) change the config and compile once per value; a progress line is printed to
    ``stream`` (stdout by default) as each such part starts and ends.
    """
    import itertools
    import pathlib

    from . import config as config_lib
    from . import metrics as metrics_lib
    from . import plots
    from .config import ConfigError
    from .run import _new_run_dir, _write_status, check_experiment, environment, is_primary, prepare

    stream = stream or sys.stdout
    cfg = config_lib.complete(cfg)
    experiment = prepare(cfg)
    if not callable(getattr(experiment, "trial", None)):
        raise ConfigError(f"experiment {cfg.experiment!r} defines no trial(cfg) and cannot be swept")
    if not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"--seeds {seeds!r}: must be an integer >= 1")

    numeric, other = {}, {}
    for key, values in grid.items():
        probe = cfg.copy_and_resolve_references()
        config_lib.apply_overrides(probe, [(key, values[0])])  # checks the key exists, converts type
        current = dict(config_lib.flat_items(probe))[key]
        if isinstance(current, (int, float)) and not isinstance(current, bool):
            converted = []
            for v in values:
                config_lib.apply_overrides(probe, [(key, v)])
                converted.append(dict(config_lib.flat_items(probe))[key])
            numeric[key] = converted
        else:
            other[key] = values

    # Every grid point must be a valid config, checked before any work.
    variants = {}
    for combo in itertools.product(*other.values()) if other else [()]:
        variant = cfg.copy_and_resolve_references()
        config_lib.apply_overrides(variant, list(zip(other, combo)))
        check_experiment(experiment, variant)
        for key, values in numeric.items():
            for v in values:
                probe = variant.copy_and_resolve_references()
                config_lib.apply_overrides(probe, [(key, v)])
                check_experiment(experiment, probe)
        variants[combo] = variant

    run_dir = _new_run_dir(pathlib.Path(workdir), cfg.experiment,
                           "sweep-" + config_lib.config_hash(cfg))
    primary = is_primary()  # on several hosts only process 0 writes files; all take part in the sweep
    if primary:
        metrics_lib.atomic_write_text(run_dir / "config.json", config_lib.config_to_json(cfg) + "\n")
        metrics_lib.atomic_write_json(run_dir / "env.json", environment())
        metrics_lib.atomic_write_json(run_dir / "sweep_spec.json", {"seeds": seeds, "grid": dict(grid)})
    _write_status(run_dir, "running")
    figures = run_dir / "figures"
    if primary:
        figures.mkdir(exist_ok=True)
    rows, summary = [], {}
    n_trials = seeds * math.prod(len(v) for v in numeric.values())
    try:
        for i, combo in enumerate(itertools.product(*other.values()) if other else [()], 1):
            variant = variants[combo]
            label = ",".join(f"{k}={v}" for k, v in zip(other, combo))
            started = time.perf_counter()
            print(f"[sweep] part {i}/{len(variants)}{' (' + label + ')' if label else ''}: {n_trials} trials "
                  f"in one call, compiling…", file=stream, flush=True)
            result = sweep(experiment.trial(variant), seeds, numeric)
            jax.block_until_ready(result.outputs)
            print(f"[sweep] part {i}/{len(variants)} done in {time.perf_counter() - started:.1f} s",
                  file=stream, flush=True)
            means, stds = result.mean(), result.std()
            for idx in np.ndindex(*result.shape[:-1]):
                point = {k: result.grid[k][i].item() for k, i in zip(result.grid, idx)}
                point.update(zip(other, combo))
                name = ",".join(f"{k}={v}" for k, v in point.items()) or "base"
                for s_i, seed in enumerate(result.seeds):
                    rows.append({**point, "seed": int(seed), **{
                        k: np.asarray(v)[idx + (s_i,)].item() for k, v in result.outputs.items()}})
                summary[name] = {**{f"{k}_mean": np.asarray(v)[idx].item() for k, v in means.items()},
                                 **{f"{k}_std": np.asarray(v)[idx].item() for k, v in stds.items()}}
            if len(numeric) == 1 and primary:
                (key, values), = numeric.items()
                for out_key, mean in means.items():
                    readable = label or plots.label(out_key)
                    fig = plots.lines({readable: (values, np.asarray(mean))},
                                      bands={readable: np.asarray(stds[out_key])},
                                      xlabel=plots.label(key), ylabel=plots.label(out_key),
                                      logx=min(values) > 0,
                                      title=f"{cfg.experiment}: mean over {seeds} seeds, band ±1 std")
                    fig.savefig(figures / f"{out_key}{'-' + label if label else ''}.png", dpi=110,
                                bbox_inches="tight")
                    plots.plt.close(fig)
        if primary:
            metrics_lib.atomic_write_json(run_dir / "sweep.json", rows)
            metrics_lib.atomic_write_json(run_dir / "summary.json", summary)
        _write_status(run_dir, "done")
    except ConfigError:
        _write_status(run_dir, "failed", "bad sweep configuration")
        raise
    except Exception as e:  # noqa: BLE001
        _write_status(run_dir, "failed", f"{type(e).__name__}: {e}")
        raise
    return run_dir, summary
