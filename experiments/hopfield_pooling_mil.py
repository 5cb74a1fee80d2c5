"""Hopfield pooling for multiple-instance learning on digit bags: HopfieldPooling vs mean pooling.

After the MNIST-bags task of "Hopfield Networks is All You Need" (Ramsauer et al.,
arXiv:2008.02217; MNIST is not available here, scikit-learn's 8x8 digits stand in). A bag is a set of
``bag_size.min``..``bag_size.max`` digit images (padded to the maximum with a mask); it is positive iff
it contains the digit ``target``. Positive bags hold 1..``max_positives`` target digits, so the signal is
a small fraction of the bag. Train bags come from the train split, test bags from the test split.

Both models share the architecture except for the pooling: an instance encoder MLP (64 -> hidden ->
features, ReLU), then either :class:`jaxopt_lab.hopfield.HopfieldPooling` (one trainable query,
``num_heads`` heads, ``update_steps`` state updates) or the masked mean over instances, then a linear
bag classifier. Training is full-batch Adam on the training engine's pure chunks (:mod:`jaxopt_lab.train`),
one ``lax.scan`` over steps, ``vmap``-ed over seeds
(``models.functional_init``), so the host only logs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxopt_lab import data, hopfield, models, train
from jaxopt_lab.lab import Range, Rule, plots

CONFIG_SPEC = {
    "target": Range(0, 9, integer=True),
    "bags.train": Range(2, integer=True),
    "bags.test": Range(2, integer=True),
    "bag_size.min": Range(1, integer=True),
    "bag_size.max": Range(1, integer=True),
    "max_positives": Range(1, integer=True),
    "model.hidden": Range(1, integer=True),
    "model.features": Range(1, integer=True),
    "model.num_heads": Range(1, integer=True),
    "model.update_steps": Range(0, integer=True),
    "train.steps": Range(1, integer=True),
    "train.learning_rate": Range(0.0, open_low=True),
    "train.log_every": Range(1, integer=True),
    "num_seeds": Range(1, integer=True),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the digits split and the bags; the models' seeds derive from it"),
    "num_seeds": (5, "independent model initialisations and training runs (vmapped), on the same bags"),
    "target": (9, "a bag is positive iff it holds this digit (0-9)"),
    "max_positives": (2, "positive bags hold 1 .. max_positives target digits (<= bag_size.min)"),
    "bags.train": (600, "training bags (from the digits' train split), half of them positive"),
    "bags.test": (400, "test bags (from the test split), half of them positive"),
    "bag_size.min": (8, "fewest instances in a bag"),
    "bag_size.max": (16, "most instances in a bag (bags are padded to it, with a mask)"),
    "model.hidden": (64, "hidden width of the instance encoder MLP (64 -> hidden -> features)"),
    "model.features": (32, "instance feature width (divisible by model.num_heads)"),
    "model.num_heads": (4, "heads of Hopfield pooling"),
    "model.update_steps": (1, "state updates of Hopfield pooling before its read-out (0: plain attention)"),
    "train.steps": (600, "full-batch Adam steps (a multiple of train.log_every)"),
    "train.learning_rate": (3e-3, "Adam learning rate"),
    "train.log_every": (50, "steps between test evaluations (divides train.steps)"),
}

# rules relating keys, checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (
    Rule("bag_size.min", "bag_size.min <= bag_size.max", "<= bag_size.max = {bag_size.max}"),
    Rule("max_positives", "max_positives <= bag_size.min", "<= bag_size.min = {bag_size.min}"),
    Rule("model.num_heads", "model.features % model.num_heads == 0",
         "a divisor of model.features = {model.features}"),
    Rule("train.log_every", "train.steps % train.log_every == 0", "a divisor of train.steps = {train.steps}"),
)


def make_bags(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, n_bags: int, target: int,
              size_min: int, size_max: int, max_positives: int):
    """``(bags, mask, labels)``: ``n_bags x size_max x features`` (zero padded), balanced labels."""
    pos_idx, neg_idx = np.flatnonzero(y == target), np.flatnonzero(y != target)
    bags = np.zeros((n_bags, size_max, x.shape[-1]), np.float32)
    mask = np.zeros((n_bags, size_max), bool)
    labels = np.arange(n_bags) % 2  # half positive
    rng.shuffle(labels)
    for b in range(n_bags):
        size = int(rng.integers(size_min, size_max + 1))
        k = int(rng.integers(1, max_positives + 1)) if labels[b] else 0
        members = np.concatenate([rng.choice(pos_idx, k), rng.choice(neg_idx, size - k)])
        rng.shuffle(members)
        bags[b, :size] = x[members]
        mask[b, :size] = True
    return bags, mask, labels.astype(np.int32)


class BagClassifier(nnx.Module):
    """Instance encoder -> pooling (``"hopfield"`` or ``"mean"``) -> linear bag logit."""

    def __init__(self, in_features: int, hidden: int, features: int, pooling: str, *, num_heads: int = 1,
                 update_steps: int = 0, rngs: nnx.Rngs):
        if pooling not in ("hopfield", "mean"):
            raise ValueError(f"pooling must be 'hopfield' or 'mean', got {pooling!r}")
        self.encoder1 = nnx.Linear(in_features, hidden, rngs=rngs)
        self.encoder2 = nnx.Linear(hidden, features, rngs=rngs)
        self.pool = (hopfield.HopfieldPooling(features, num_heads=num_heads, update_steps=update_steps,
                                              rngs=rngs) if pooling == "hopfield" else None)
        self.head = nnx.Linear(features, 1, rngs=rngs)

    def __call__(self, bags, mask):
        h = nnx.relu(self.encoder2(nnx.relu(self.encoder1(bags))))
        if self.pool is None:
            weights = mask[..., None].astype(h.dtype)
            pooled = jnp.sum(h * weights, axis=-2) / jnp.maximum(jnp.sum(weights, axis=-2), 1.0)
        else:
            pooled = self.pool(h, mask=mask)[..., 0, :]
        return self.head(pooled)[..., 0]


def _loss(logits, labels):
    return optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)).mean()


def _accuracy(logits, labels):
    return jnp.mean((logits > 0) == (labels == 1))


def train_fn(cfg, pooling: str, train_set, test_set):
    """Pure ``key -> (metrics trace, final test accuracy)`` for one pooling; jit/vmap over keys."""
    apply_fn, init_fn = models.functional_init(lambda rngs: BagClassifier(
        64, cfg.model.hidden, cfg.model.features, pooling, num_heads=cfg.model.num_heads,
        update_steps=cfg.model.update_steps, rngs=rngs))
    (xb, mb, yb), (xt, mt, yt) = train_set, test_set

    def loss_fn(params, batch):
        bags, mask, labels = batch
        return _loss(apply_fn(params, bags, mask), labels)

    engine = train.Engine(loss_fn, optax.adam(cfg.train.learning_rate), train.batches.full_batch(),
                          (xb, mb, yb))

    def block(state, index):
        state, metrics = engine.pure_run(state, None, index * cfg.train.log_every, cfg.train.log_every)
        test_acc = _accuracy(apply_fn(state.params, xt, mt), yt)
        return state, (metrics["loss"][-1], test_acc)

    def run(key):
        n_blocks = cfg.train.steps // cfg.train.log_every
        state, (losses, test_accs) = jax.lax.scan(block, engine.pure_init(init_fn(key)), jnp.arange(n_blocks))
        train_acc = _accuracy(apply_fn(state.params, xb, mb), yb)
        return {"loss": losses, "test_accuracy": test_accs, "train_accuracy": train_acc}

    return run


def datasets(cfg):
    ds = data.digits(seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    common = (cfg.target, cfg.bag_size.min, cfg.bag_size.max, cfg.max_positives)
    train_set = make_bags(rng, ds.x_train, ds.y_train, cfg.bags.train, *common)
    test_set = make_bags(rng, ds.x_test, ds.y_test, cfg.bags.test, *common)
    return tuple(map(jnp.asarray, train_set)), tuple(map(jnp.asarray, test_set))


def run(cfg, ctx):
    train_set, test_set = datasets(cfg)
    keys = jax.random.split(ctx.key, cfg.num_seeds)
    results = {}
    for pooling in ("hopfield", "mean"):
        fn = jax.jit(jax.vmap(train_fn(cfg, pooling, train_set, test_set)))
        results[pooling] = jax.tree.map(np.asarray, fn(keys))
    steps = np.arange(1, cfg.train.steps // cfg.train.log_every + 1) * cfg.train.log_every
    ctx.progress(int(steps[-1]))
    for i, s in enumerate(steps):
        ctx.log(int(s), **{f"{p}_loss": r["loss"][:, i].mean() for p, r in results.items()},
                **{f"{p}_test_accuracy": r["test_accuracy"][:, i].mean() for p, r in results.items()})
    final = {p: r["test_accuracy"][:, -1] for p, r in results.items()}
    ctx.summary(
        hopfield_pool_accuracy=float(final["hopfield"].mean()),
        mean_pool_accuracy=float(final["mean"].mean()),
        hopfield_pool_accuracy_std=float(final["hopfield"].std()),
        mean_pool_accuracy_std=float(final["mean"].std()),
        hopfield_minus_mean_accuracy=float((final["hopfield"] - final["mean"]).mean()),
        hopfield_pool_train_accuracy=float(results["hopfield"]["train_accuracy"].mean()),
        mean_pool_train_accuracy=float(results["mean"]["train_accuracy"].mean()),
        num_seeds=cfg.num_seeds, chance=0.5)
    fig = plots.lines({f"{p} pooling": (steps, r["test_accuracy"].mean(0)) for p, r in results.items()},
                      xlabel="step", ylabel="test bag accuracy", title=f"MIL: bag contains a {cfg.target}",
                      bands={f"{p} pooling": r["test_accuracy"].std(0) for p, r in results.items()})
    ctx.figure("mil_accuracy", fig)
