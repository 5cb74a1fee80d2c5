"""Byte-level LM pretraining with low-rank and memory-efficient optimizers: loss, state bytes, step time.

The small LLaMA-style decoder of ``jaxopt_lab.models`` on the standard-library byte corpus
(``jaxopt_lab.data.byte_corpus``), every optimizer of ``cfg.optimizers`` (``label -> {name, **kw}``)
trained from the same initialisation on the same batch sequence for ``cfg.steps`` steps on the training
engine (:mod:`jaxopt_lab.train`: each chunk of ``cfg.log_every`` steps is one jitted ``lax.scan``, sharded
over the ``mesh`` section's devices; the host only logs). Every registry optimizer can be named: the
engine feeds ``value``, ``grad_fn`` and ``chunk_grad_fn``. Logged: ``loss_<label>``
(mean training loss of the chunk); summary: ``final_loss_<label>`` (held-out loss on
``cfg.eval_windows`` test windows), ``state_bytes_<label>`` (``optim.state_bytes``),
``state_ratio_<label>`` (to ``cfg.reference``), ``step_ms_<label>`` (median chunk time / steps,
compile excluded) and ``gap_<label>`` (final loss minus the reference's).

Low-rank entries get ``cfg.rank`` / ``cfg.update_proj_gap`` unless they set their own, and project
only the leaves whose path contains one of ``cfg.project_only`` (GaLore projects the attention and MLP
matrices; embeddings, output and norms are trained by the inner Adam).

With ``cfg.projection.every > 0`` it also measures projection quality along the reference run: at
every ``every`` steps, for each projected matrix gradient G (the reference optimizer's training
gradient) and each projector kind of ``cfg.projection.kinds``, the relative residual
‖G − P Pᵀ G‖/‖G‖ with P fitted on G itself (``fresh``) and with P fitted ``every`` steps earlier
(``stale``: what a projected optimizer uses between refreshes); logged as ``residual_<fresh|stale>_
<kind>`` (mean over matrices) and averaged over the run in the summary. ``cfg.projection.ranks``
(optional) repeats the measurement at other ranks (matrices whose short side exceeds the rank):
``residual_<fresh|stale>_<kind>_r<rank>`` and ``dct_position_<fresh|stale>_r<rank>`` = (dct − svd)
/ (random − svd), averaged over the run, with a figure of the position against rank.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import Each, OneOf, Range, Rule, plots
from jaxopt_lab.lab.config import ConfigError
from jaxopt_lab.lab.rules import llama_config
from jaxopt_lab.optim.projectors import Projector

CONFIG_SPEC = {
    "lm_preset": OneOf(["tiny", "mini", "base", "small"]),
    "model.dim": Range(0, integer=True),
    "model.n_layers": Range(0, integer=True),
    "model.hidden_dim": Range(0, integer=True),
    "model.n_heads": Range(0, integer=True),
    "seq_len": Range(2, integer=True),
    "batch_size": Range(1, integer=True),
    "corpus_bytes": Range(1000, integer=True),
    "steps": Range(1, integer=True),
    "log_every": Range(1, integer=True),
    "eval_windows": Range(1, integer=True),
    "rank": Range(1, integer=True),
    "update_proj_gap": Range(1, integer=True),
    "projection.every": Range(0, integer=True),
    "projection.ranks": Each(Range(1, integer=True), may_be_empty=True),
    "optimizers.*.name": OneOf(optim.names),
    "optimizers.*.learning_rate": Range(0.0, open_low=True),
    "optimizers.*.rank": Range(1, integer=True),
    "mesh.data": Range(0, integer=True),
    "mesh.fsdp": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the initialisation (shared by every optimizer), the batch order and the corpus"),
    "lm_preset": ("tiny", "models.LlamaConfig preset: 'tiny' (dim 64, 2 layers), 'mini', 'base' or 'small'"),
    "model.dim": (0, "model width; 0 keeps the preset's"),
    "model.n_layers": (0, "decoder layers; 0 keeps the preset's"),
    "model.hidden_dim": (0, "MLP hidden width; 0 keeps the preset's"),
    "model.n_heads": (0, "attention heads (heads of even size); 0 keeps the preset's"),
    "seq_len": (64, "context length in bytes"),
    "batch_size": (16, "windows per step"),
    "corpus_bytes": (1_000_000, "bytes of the standard-library corpus used (train and held-out split)"),
    "steps": (600, "training steps, a multiple of log_every"),
    "log_every": (50, "steps per jitted chunk: the chunk's mean loss is logged after each"),
    "eval_windows": (256, "held-out windows of the final loss"),
    "rank": (16, "rank of the low-rank entries that set none, <= min(dim, hidden_dim) (16 = dim / 4, GaLore's "
                "LLaMA-60M ratio)"),
    "update_proj_gap": (100, "steps between projector refreshes of the low-rank entries that set none"),
    "project_only": (("attention", "mlp"), "low-rank entries project only the leaves whose path contains one "
                                           "of these; () projects every matrix"),
    "reference": ("adam", "the label whose loss, state bytes and step time the others are compared with"),
    "only": ((), "if non-empty: train only these labels (and the reference)"),
    "optimizers": ({
        "adam": {"name": "adam", "learning_rate": 3e-3},
        "galore": {"name": "galore", "learning_rate": 1e-2},
        "fira": {"name": "fira", "learning_rate": 1e-2},
        "osd": {"name": "online_subspace_descent", "learning_rate": 1e-2},
        "dct_galore": {"name": "dct_galore", "learning_rate": 1e-2},
        "frugal": {"name": "frugal", "learning_rate": 3e-3},
        "smmf": {"name": "smmf", "learning_rate": 3e-3},
    }, "label -> {name: a registered optimizer, its arguments}; GaLore-family learning rate as GaLore's C4 "
       "scripts; replaced as a whole"),
    "projection.every": (0, "steps between projection-quality measurements along the reference run, a "
                            "multiple of log_every; 0: none"),
    "projection.kinds": (("svd", "dct", "random"), "projector kinds measured (optim.PROJECTORS)"),
    "projection.ranks": ((), "extra ranks at which projection quality is measured"),
    "mesh.data": (0, "devices on the data axis; 0: all devices not on fsdp"),
    "mesh.fsdp": (1, "devices each parameter is split over"),
}

_LOWRANK_KEYS = ("rank", "update_proj_gap")

# pieces of the rules below, plain literals so that the rules are read without importing this file: the
# shortest side of the projected (attention / MLP) matrices of the run's model, in a condition and in a
# message, and the preset's model
_SIDE = ("min(llama_config(lm_preset, seq_len, model).dim, "
         "llama_config(lm_preset, seq_len, model).hidden_dim)")
_SIDE_TEXT = ("{min(llama_config(lm_preset, seq_len, model).dim, "
              "llama_config(lm_preset, seq_len, model).hidden_dim)}, the shortest side of the projected matrices "
              "(model dim {llama_config(lm_preset, seq_len, model).dim}, "
              "hidden {llama_config(lm_preset, seq_len, model).hidden_dim})")
_PRESET = "llama_config(lm_preset, seq_len, {})"

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (
    Rule("optimizers", "len(optimizers) > 0 and all('name' in entry for entry in optimizers.values())",
         "a non-empty table label -> {{name: a registered optimizer, its arguments}}"),
    Rule("reference", "reference in optimizers",
         "one of the labels of 'optimizers' {sorted(optimizers.keys())}"),
    Rule("only", "all(label in optimizers for label in only)",
         "labels of 'optimizers' {sorted(optimizers.keys())}"),
    Rule("steps", "steps % log_every == 0", "a multiple of log_every = {log_every}"),
    Rule("projection.every", "projection.every % log_every == 0",
         "a multiple of log_every = {log_every} (0: no measurement)"),
    Rule("projection.kinds", "set(projection.kinds) <= set(projector_kinds())",
         "projector kinds among optim.PROJECTORS = {projector_kinds()}"),
    # dim % n_heads == 0 with an even dim // n_heads, i.e. dim % (2 n_heads) == 0 (0: the preset's)
    Rule("model.n_heads", f"(model.dim or {_PRESET}.dim) % (2 * (model.n_heads or {_PRESET}.n_heads)) == 0",
         f"a divisor of the model dim {{model.dim or {_PRESET}.dim}} into heads of even size (rotary pairs; "
         f"0 keeps the preset's {{{_PRESET}.n_heads}})"),
    # an entry's own rank (frugal's is left out: it is not given the run's rank either, it sizes each
    # matrix's rank by a density), and the run's: given to the low-rank entries that set none and to the
    # projection probe, checked even when no entry takes it (which do is known only from their factories)
    Rule("optimizers", f"all(entry.rank <= {_SIDE} for entry in optimizers.values() "
                       f"if 'rank' in entry and entry.name != 'frugal')",
         f"entries whose rank is <= {_SIDE_TEXT}; too large: "
         f"{{[f'optimizers.{{label}}.rank' for label, entry in optimizers.items() "
         f"if 'rank' in entry and entry.name != 'frugal' and entry.rank > {_SIDE}]}}"),
    Rule("rank", f"rank <= {_SIDE}", f"<= {_SIDE_TEXT}"),
    Rule("projection.ranks", f"all(r < {_SIDE} for r in projection.ranks)", f"ranks below {_SIDE_TEXT}"),
    Rule("batch_size", "mesh.data == 0 or batch_size % (mesh.data * mesh.fsdp) == 0",
         "divisible by the mesh size mesh.data x mesh.fsdp = {mesh.data * mesh.fsdp} (the batch is split "
         "over all devices)"),
)


def check_config(cfg) -> None:
    """What needs the import (the rest is in ``CONFIG_SPEC`` and ``CONFIG_RULES``): every optimizer entry
    is built with the run's low-rank arguments (so a bad hyperparameter stops here) and can be fed by the
    engine, and the batch divides over the devices when ``mesh.data = 0`` (all of them)."""
    for label, entry in cfg.optimizers.to_dict().items():
        train.check_feedable(entry["name"], key=f"optimizers.{label}.name")
        try:
            build_optimizer(entry, cfg)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"config key 'optimizers.{label}' = {entry}: {e}") from None
    train.sharding.check_batch_size(train.mesh_from_config(cfg), cfg.batch_size, key="batch_size")


def model_config(cfg) -> models.LlamaConfig:
    """The preset ``lm_preset`` with ``max_seq_len = seq_len`` and the non-zero fields of ``model`` (the
    builder the config rules check)."""
    return llama_config(cfg.lm_preset, cfg.seq_len, cfg.model)


def projection_mask(project_only):
    """Leaves whose path contains one of ``project_only`` may be projected."""
    def mask(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: any(s in jax.tree_util.keystr(path) for s in project_only), params)
    return mask


def _optimizer_kwargs(entry: dict, cfg) -> dict:
    """The entry's hyperparameters, with the run's rank / update_proj_gap / projection mask for the
    low-rank and factored optimizers that take them."""
    entry = dict(entry)
    name = entry.pop("name")
    info = optim.info(name)
    if info.family in ("lowrank", "factored"):
        import inspect
        takes = inspect.signature(info.factory).parameters
        for key in _LOWRANK_KEYS:
            if key in takes and key not in entry and not (key == "rank" and name == "frugal"):
                entry[key] = cfg[key]
        if "mask" in takes and cfg.project_only:
            entry["mask"] = projection_mask(tuple(cfg.project_only))
    return entry


def build_optimizer(entry: dict, cfg):
    return optim.get(entry["name"], **_optimizer_kwargs(entry, cfg))


def make_problem(cfg, key):
    """(params, loss_fn, train tokens, eval batch)."""
    apply_fn, init_fn = models.functional_init(
        lambda rngs: models.Llama(model_config(cfg), rngs=rngs))
    corpus = data.byte_corpus(max_bytes=cfg.corpus_bytes, seed=cfg.seed)
    train_tokens, test_tokens = data.lm_split(corpus, cfg.seq_len)
    eval_batch = tuple(jnp.asarray(a) for a in data.lm_batches(test_tokens, cfg.seq_len,
                                                                 max_windows=cfg.eval_windows))

    def loss_fn(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    return init_fn(key), loss_fn, jnp.asarray(train_tokens), eval_batch


# ------------------------------------------------------------------------------------------------
# projection quality

def _matrices(grads, mask_fn, min_side):
    flat = jax.tree.leaves(grads)
    selected = jax.tree.leaves(mask_fn(grads)) if mask_fn else [True] * len(flat)
    return [g for g, s in zip(flat, selected) if s and g.ndim == 2 and min(g.shape) > min_side]


def make_projection_probe(kinds, rank):
    """Jitted ``(matrices, previous bases, key) -> (fresh residuals, stale residuals, new bases)``
    per kind; the short side of each matrix is projected (GaLore's reference side)."""

    def residual(gc, basis):
        return jnp.linalg.norm(gc - basis @ (basis.T @ gc)) / (jnp.linalg.norm(gc) + 1e-30)

    @jax.jit
    def probe(matrices, previous, key):
        fresh, stale, bases = {}, {}, {}
        for kind in kinds:
            proj = Projector(kind, rank)
            f, s, b = [], [], []
            for i, g in enumerate(matrices):
                gc = g.T if g.shape[0] >= g.shape[1] else g
                state, _ = proj.update(proj.init(gc.shape[0], 1), gc, jnp.int32(0), 1,
                                       jax.random.fold_in(key, i))
                basis = proj.basis(state, gc.shape[0])
                f.append(residual(gc, basis))
                s.append(residual(gc, previous[kind][i]))
                b.append(basis)
            fresh[kind], stale[kind], bases[kind] = jnp.stack(f).mean(), jnp.stack(s).mean(), b
        return fresh, stale, bases

    return probe


# ------------------------------------------------------------------------------------------------

def _sweep_ranks(cfg):
    """The run's rank first, then ``projection.ranks`` (if any) not equal to it."""
    extra = tuple(cfg.projection.ranks)
    return (cfg.rank,) + tuple(r for r in extra if r != cfg.rank)


def _projection_logger(cfg, key, engine, loss_fn, probe_out):
    """``evaluate`` hook for the reference run: every ``projection.every`` steps, the fresh and stale
    residuals of each projector kind on the gradient of a probe batch (at the run's rank and at
    ``projection.ranks``), logged and kept in ``probe_out`` (``probe_out[rank]`` for the sweep)."""
    mask_fn = projection_mask(tuple(cfg.project_only)) if cfg.project_only else None
    kinds = tuple(cfg.projection.kinds)
    probes = {r: make_projection_probe(kinds, r) for r in _sweep_ranks(cfg)}
    grad_fn = jax.jit(jax.grad(loss_fn))
    previous = {}

    def evaluate(state):
        step = int(state.step)
        scalars = {}
        if step % cfg.projection.every:
            return scalars
        batch = engine.sampler.batch(engine.data, key, 10_000 + step)
        grads = grad_fn(state.params, batch)
        for rank, probe in probes.items():
            mats = _matrices(grads, mask_fn, rank)
            if not mats:
                continue
            prev = previous.get(rank) or {k: [jnp.eye(min(g.shape), rank) for g in mats]
                                          for k in kinds}
            fresh, stale, previous[rank] = probe(mats, prev, jax.random.fold_in(key, step))
            out = probe_out if rank == cfg.rank else probe_out.setdefault(
                rank, {"fresh": {k: [] for k in kinds}, "stale": {k: [] for k in kinds}})
            for k in kinds:
                out["fresh"][k].append(float(fresh[k]))
                if rank == cfg.rank:
                    scalars[f"residual_fresh_{k}"] = float(fresh[k])
                if step > cfg.projection.every:  # the first "previous" is arbitrary
                    out["stale"][k].append(float(stale[k]))
                    if rank == cfg.rank:
                        scalars[f"residual_stale_{k}"] = float(stale[k])
        return scalars

    return evaluate


def _dct_position(values):
    """Where DCT sits between SVD (0) and random (1), from mean residuals by kind."""
    if not all(k in values for k in ("svd", "dct", "random")):
        return None
    return (values["dct"] - values["svd"]) / max(values["random"] - values["svd"], 1e-12)


def run(cfg, ctx):
    params0, loss_fn, tokens, eval_batch = make_problem(cfg, ctx.key)
    entries = cfg.optimizers.to_dict()
    labels = [cfg.reference] + [k for k in entries
                                if k != cfg.reference and (not cfg.only or k in cfg.only)]
    ctx.progress(len(labels) * cfg.steps)
    eval_loss = jax.jit(loss_fn)
    data_key = jax.random.fold_in(ctx.key, 1)
    summary, curves, memory = {}, {}, {}
    probe_out = {"fresh": {k: [] for k in cfg.projection.kinds},
                 "stale": {k: [] for k in cfg.projection.kinds}}   # + rank -> same, for the sweep
    mesh = train.mesh_from_config(cfg)
    sampler = train.batches.token_windows(tokens.shape[0], cfg.batch_size, cfg.seq_len)
    for i, label in enumerate(labels):
        engine = train.Engine(loss_fn, build_optimizer(entries[label], cfg), sampler, tokens, mesh=mesh)
        evaluate = None
        if label == cfg.reference and cfg.projection.every > 0:
            evaluate = _projection_logger(cfg, ctx.key, engine, loss_fn, probe_out)
        times = []
        state = train.fit(engine, engine.init(params0), ctx, steps=cfg.steps, log_every=cfg.log_every,
                          data_key=data_key, evaluate=evaluate, log_offset=i * cfg.steps, progress=False,
                          scalars=lambda m, label=label: {f"loss_{label}": m["loss"].mean()},
                          timings=times)
        xs, ys = plots.metric_series(ctx.metrics(), f"loss_{label}")
        curves[label] = (np.asarray(xs) - i * cfg.steps, np.asarray(ys))
        memory[label] = optim.state_bytes(state.opt_state)
        summary[f"final_loss_{label}"] = float(eval_loss(state.params, eval_batch))
        summary[f"train_loss_{label}"] = float(ys[-1])
        summary[f"state_bytes_{label}"] = memory[label]
        summary[f"step_ms_{label}"] = (1e3 * float(np.median(times)) / cfg.log_every
                                       if times else float("nan"))
    for label in labels:
        summary[f"state_ratio_{label}"] = memory[label] / memory[cfg.reference]
        summary[f"gap_{label}"] = (summary[f"final_loss_{label}"]
                                   - summary[f"final_loss_{cfg.reference}"])
        summary[f"abs_gap_{label}"] = abs(summary[f"gap_{label}"])
    for when in ("fresh", "stale"):
        for k, values in probe_out[when].items():
            if values:
                summary[f"residual_{when}_{k}"] = float(np.mean(values))
    sweep = {}   # rank -> when -> dct position
    for rank in _sweep_ranks(cfg):
        out = probe_out if rank == cfg.rank else probe_out.get(rank)
        suffix = "" if rank == cfg.rank else f"_r{rank}"
        for when in ("fresh", "stale"):
            means = {k: float(np.mean(v)) for k, v in (out or {}).get(when, {}).items() if v}
            if rank != cfg.rank:
                for k, v in means.items():
                    summary[f"residual_{when}_{k}{suffix}"] = v
            position = _dct_position(means)
            if position is not None:
                summary[f"dct_position_{when}{suffix}"] = position
                sweep.setdefault(when, {})[rank] = position
    summary["n_params"] = models.count_params(params0)
    ctx.summary(**{k: v for k, v in summary.items() if not (isinstance(v, float) and np.isnan(v))})

    ctx.figure("loss", plots.lines(curves, xlabel="step", ylabel="training loss (nats/byte)",
                                   title="byte-level LM"))
    ctx.figure("state_memory", plots.bars({k: v / 2**20 for k, v in memory.items()},
                                          ylabel="optimizer state (MiB)"))
    if any(probe_out["fresh"].values()):
        every = cfg.projection.every
        series = {f"{when} {k}": (every * np.arange(1 + (when == "stale"),
                                                    len(v) + 1 + (when == "stale")), v)
                  for when in ("fresh", "stale") for k, v in probe_out[when].items() if v}
        ctx.figure("projection_residual", plots.lines(
            series, xlabel="step", ylabel="‖G − PPᵀG‖ / ‖G‖", title=f"rank {cfg.rank}"))
    if len(sweep.get("fresh", {})) > 1:
        side = min(model_config(cfg).dim, model_config(cfg).hidden_dim)
        ctx.figure("dct_position_vs_rank", plots.lines(
            {when: (np.array(sorted(v)) / side, [v[r] for r in sorted(v)])
             for when, v in sweep.items()},
            xlabel=f"rank / projected side ({side})",
            ylabel="(dct − svd) / (random − svd)", title="DCT between SVD (0) and random (1)"))
