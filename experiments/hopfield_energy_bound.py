"""Cross-entropy floor of small transformers vs the "Beyond Scaling Laws" lower bound (~1 nat).

"Beyond Scaling Laws: Understanding Transformer Performance with Associative Memory" (Niu et al. 2024,
arXiv:2405.08707) models each transformer block as a distance-energy associative memory and states that
"under specific conditions ... the minimum achievable cross-entropy loss is bounded from below by a
constant approximately equal to 1". This experiment measures the lowest cross-entropy that small
LLaMA-style decoders (``jaxopt_lab.models.Llama``) actually reach on the byte-level standard-library
corpus (``jaxopt_lab.data.byte_corpus``) over a grid of model sizes (``dims``) and training-set sizes
(``data_sizes`` tokens), and compares it with the bound.

Per model width, one compiled program trains every data size at once (``vmap``; the token streams are
padded to the longest and each run samples windows only from its own prefix). Training is Adam with
warm-up and cosine decay on the training engine's pure chunks (:mod:`jaxopt_lab.train`); every
``log_every`` steps the cross-entropy on ``eval_windows`` evenly spaced windows of the run's *training*
data (the quantity the bound is about: how far memorisation can push the loss) and on held-out windows
is recorded. Losses are in nats.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxopt_lab import data, models, train
from jaxopt_lab.lab import Each, Range, Rule, plots

CONFIG_SPEC = {
    "seq_len": Range(2, integer=True),
    "batch_size": Range(1, integer=True),
    "n_layers": Range(1, integer=True),
    "n_heads": Range(1, integer=True),
    "train.steps": Range(1, integer=True),
    "train.learning_rate": Range(0.0, open_low=True),
    "train.warmup": Range(0, integer=True),
    "train.log_every": Range(1, integer=True),
    "eval_windows": Range(1, integer=True),
    "bound": Range(0.0),
    "dims": Each(Range(1, integer=True)),
    "data_sizes": Each(Range(1, integer=True)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed of the corpus sample, the initialisations and the training windows"),
    "dims": ((16, 32, 64), "model widths d, each a multiple of 2 * n_heads; one compiled program per width"),
    "data_sizes": ((4096, 16384, 65536), "training-set sizes in tokens (bytes), each >= 2 * (seq_len + 1); "
                                         "vmapped within a width"),
    "n_layers": (2, "transformer blocks"),
    "n_heads": (4, "attention heads per block"),
    "seq_len": (64, "tokens per training and evaluation window"),
    "batch_size": (16, "windows per training step"),
    "eval_windows": (64, "evenly spaced windows on which the train and held-out cross-entropy are measured"),
    "bound": (1.0, "the paper's lower bound on the cross-entropy, in nats"),
    "train.steps": (800, "Adam steps per run (a multiple of train.log_every)"),
    "train.learning_rate": (3e-3, "peak learning rate (linear warm-up, then cosine decay to 5% of it)"),
    "train.warmup": (50, "warm-up steps of the learning-rate schedule"),
    "train.log_every": (100, "steps between evaluations (divides train.steps)"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (
    Rule("dims", "all(d % (2 * n_heads) == 0 for d in dims)",
         "multiples of 2 * n_heads = {2 * n_heads} (an even rotary head dimension)"),
    Rule("data_sizes", "min(data_sizes) >= 2 * (seq_len + 1)",
         "sizes of at least 2 * (seq_len + 1) = {2 * (seq_len + 1)} tokens"),
    Rule("train.log_every", "train.steps % train.log_every == 0", "a divisor of train.steps = {train.steps}"),
)


def _windows(tokens, n, count, seq_len):
    """``count`` evenly spaced windows of the first ``n`` tokens (``n`` may be traced)."""
    starts = jnp.linspace(0, n - seq_len - 1, count).astype(jnp.int32)
    win = jax.vmap(lambda s: jax.lax.dynamic_slice(tokens, (s,), (seq_len + 1,)))(starts).astype(jnp.int32)
    return win[:, :-1], win[:, 1:]


def train_width(cfg, dim: int, test_tokens):
    """Pure ``(key, stream, length) -> {train_ce, test_ce}`` traces for one model width."""
    llama_cfg = models.LlamaConfig(dim=dim, n_layers=cfg.n_layers, n_heads=cfg.n_heads, hidden_dim=2 * dim,
                                   max_seq_len=cfg.seq_len)
    apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(llama_cfg, rngs=rngs))
    schedule = optax.warmup_cosine_decay_schedule(0.0, cfg.train.learning_rate, cfg.train.warmup,
                                                  cfg.train.steps, cfg.train.learning_rate * 0.05)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
    test_x, test_y = _windows(test_tokens, test_tokens.shape[0], cfg.eval_windows, cfg.seq_len)

    def ce(params, x, y):
        return models.cross_entropy(apply_fn(params, x), y)

    def run(key, stream, length):
        k_init, k_data = jax.random.split(key)
        train_x, train_y = _windows(stream, length, cfg.eval_windows, cfg.seq_len)

        engine = train.Engine(lambda params, batch: ce(params, *batch), tx,
                              train.batches.token_windows(length, cfg.batch_size, cfg.seq_len), stream)

        def block(state, b):
            state, _ = engine.pure_run(state, k_data, b * cfg.train.log_every, cfg.train.log_every)
            return state, (ce(state.params, train_x, train_y), ce(state.params, test_x, test_y))

        n_blocks = cfg.train.steps // cfg.train.log_every
        _, (train_ce, test_ce) = jax.lax.scan(block, engine.pure_init(init_fn(k_init)), jnp.arange(n_blocks))
        return {"train_ce": train_ce, "test_ce": test_ce}

    return run, llama_cfg.num_params()


def run(cfg, ctx):
    sizes = sorted(int(s) for s in cfg.data_sizes)
    test_size = max(cfg.eval_windows * (cfg.seq_len + 1) + 1, 2 * (cfg.seq_len + 1))
    corpus = data.byte_corpus(max_bytes=sizes[-1] + test_size, seed=cfg.seed)
    stream = jnp.asarray(corpus[: sizes[-1]])
    test_tokens = jnp.asarray(corpus[sizes[-1]:])  # disjoint from every training prefix
    lengths = jnp.asarray(sizes, jnp.int32)
    steps = np.arange(1, cfg.train.steps // cfg.train.log_every + 1) * cfg.train.log_every
    results, n_params = {}, {}
    for w, dim in enumerate(int(d) for d in cfg.dims):
        fn, n_params[dim] = train_width(cfg, dim, test_tokens)
        keys = jax.random.split(jax.random.fold_in(ctx.key, w), len(sizes))
        out = jax.jit(jax.vmap(fn, in_axes=(0, None, 0)))(keys, stream, lengths)
        results[dim] = jax.tree.map(np.asarray, out)
    row = 0
    for dim, r in results.items():
        for j, size in enumerate(sizes):
            for i, s in enumerate(steps):
                row += 1
                ctx.log(row, dim=dim, params=n_params[dim], data_tokens=size, step_in_run=int(s),
                        train_ce=r["train_ce"][j, i], test_ce=r["test_ce"][j, i])

    min_train = {(dim, size): float(r["train_ce"][j].min()) for dim, r in results.items()
                 for j, size in enumerate(sizes)}
    best = min(min_train, key=min_train.get)
    min_test = min(float(r["test_ce"].min()) for r in results.values())
    ctx.summary(
        bound=cfg.bound,
        min_train_cross_entropy=min_train[best],
        min_train_cross_entropy_dim=best[0],
        min_train_cross_entropy_params=n_params[best[0]],
        min_train_cross_entropy_data_tokens=best[1],
        min_test_cross_entropy=min_test,
        runs_below_bound=sum(v < cfg.bound for v in min_train.values()),
        runs=len(min_train),
        min_train_ce_by_run={f"dim{d}_tokens{s}": v for (d, s), v in min_train.items()},
        params_by_dim={str(d): n for d, n in n_params.items()},
    )
    # The floor as a function of how much data each parameter has to memorise (D / N): a constant bound
    # would give a flat curve at or above it.
    ratio = {(dim, size): size / n_params[dim] for dim in results for size in sizes}
    min_test_by_run = {(dim, size): float(r["test_ce"][j].min()) for dim, r in results.items()
                       for j, size in enumerate(sizes)}
    order = sorted(ratio, key=ratio.get)
    ctx.summary(tokens_per_param_by_run={f"dim{d}_tokens{s}": ratio[(d, s)] for d, s in order},
                min_test_ce_by_run={f"dim{d}_tokens{s}": min_test_by_run[(d, s)] for d, s in order},
                min_train_ce_at_most_tokens_per_param=min_train[order[-1]],
                most_tokens_per_param=ratio[order[-1]])
    x = [ratio[k] for k in order]
    fig = plots.lines({"lowest training CE": (x, [min_train[k] for k in order]),
                       "lowest held-out CE": (x, [min_test_by_run[k] for k in order])},
                      xlabel="training tokens per parameter D / N", ylabel="cross-entropy (nats)", logx=True,
                      title="cross-entropy floor vs data per parameter (all runs)")
    fig.axes[0].axhline(cfg.bound, color="k", ls=":", lw=1)
    ctx.figure("min_cross_entropy_vs_tokens_per_param", fig)
    series = {f"dim {dim} ({n_params[dim] / 1e3:.0f}k params)": (sizes, [min_train[(dim, s)] for s in sizes])
              for dim in results}
    fig = plots.lines(series, xlabel="training tokens D", ylabel="lowest training cross-entropy (nats)",
                      title="cross-entropy floor vs the ~1 nat bound", logx=True)
    fig.axes[0].axhline(cfg.bound, color="k", ls=":", lw=1)
    ctx.figure("min_cross_entropy", fig)
