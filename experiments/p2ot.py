"""P2OT vs SeLa pseudo-labelling for imbalanced clustering: a linear head self-trained on fixed features.

Papers: ("P^2OT: Progressive Partial Optimal Transport for Deep Imbalanced Clustering",
arXiv:2401.09266; "Self-labelling via simultaneous clustering and representation learning", arXiv:1911.05371).
Fixed features stand in for the paper's frozen DINO ViT features: a long-tailed Gaussian mixture with known
labels (``ot.problems.imbalanced_mixture``) or scikit-learn's digits made long-tailed (``data.digits``),
projected to ``data.dim`` principal components. A linear head starts from noisy class means (the "noisy
linear head" of the P^2OT paper) and is trained, for ``train.epochs`` rounds, on the pseudo-labels of one method:

* ``p2ot``: P^2OT soft labels n Q[:, :K] with the rho ramp rho(t) = rho_base + (rho_upper - rho_base)
  exp(-5 (1 - t/T)^2): a cross-entropy in which each sample weighs its transported mass (the confident ones);
* ``sela``: SeLa's equipartition Sinkhorn labels (hard argmax, all samples, uniform cluster sizes);
* ``uot`` (if ``compare_uot``): semi-relaxed OT with all mass transported (P^2OT at rho = 1, PPOT's "uot"
  baseline).

The numerical core (every round's OT solve and head update, the latter on the training engine's pure
chunks, :mod:`jaxopt_lab.train`) is one jitted ``lax.scan`` vmapped over seeds; per round it returns
confusion matrices, from which the host computes Hungarian-matched accuracies of the pseudo-labels on
the selected samples (P^2OT's top floor(rho n) by transported mass; all samples for SeLa) and on all
samples, the head's accuracy, and the recovered cluster proportions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.optimize import linear_sum_assignment

from jaxopt_lab import ot, train
from jaxopt_lab.lab import OneOf, Range, Rule, plots

METHODS = ("p2ot", "sela", "uot")
DIGITS_FEATURES = 64  # 8 x 8 pixels: the most principal components the digits source has

CONFIG_SPEC = {
    "data.source": OneOf(("mixture", "digits")),
    "data.n_head": Range(2, integer=True),
    "data.n_classes": Range(2, integer=True),
    "data.imbalance_ratio": Range(0.0, 1.0, open_low=True),
    "data.dim": Range(1, integer=True),
    "data.separation": Range(0.0, open_low=True),
    "head.noise": Range(0.0),
    "head.temperature": Range(0.0, open_low=True),
    "p2ot.epsilon": Range(0.0, open_low=True),
    "p2ot.gamma": Range(0.0, open_low=True),
    "p2ot.rho_base": Range(0.0, 1.0, open_low=True),
    "p2ot.rho_upper": Range(0.0, 1.0, open_low=True),
    "sela.lamb": Range(0.0, open_low=True),
    "train.epochs": Range(1, integer=True),
    "train.steps_per_epoch": Range(1, integer=True),
    "train.learning_rate": Range(0.0, open_low=True),
    "n_seeds": Range(1, integer=True),
    "compare_uot": OneOf((True, False)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "PRNG seed: features, head initialisation and training of every seed derive from it"),
    "n_seeds": (5, "independent repetitions (data, head, training), vmapped; accuracies are averaged over them"),
    "compare_uot": (True, "also train on semi-relaxed OT labels with all mass transported ('uot' baseline)"),
    "data.source": ("mixture", "'mixture': long-tailed Gaussian mixture with known labels; 'digits': "
                               "scikit-learn's digits made long-tailed and projected to data.dim components"),
    "data.n_head": (500, "mixture: samples of the largest class (class k: n_head * ratio^(k / (K - 1)))"),
    "data.n_classes": (10, "clusters K of the OT pseudo-labels (mixture: also its classes; digits has 10)"),
    "data.imbalance_ratio": (0.01, "size of the smallest class / the largest"),
    "data.dim": (16, "feature dimension (digits: principal components kept, at most 64)"),
    "data.separation": (4.0, "mixture: norm of the class means (unit within-class std); digits: features "
                              "scaled to an average std of separation / 4"),
    "head.noise": (1.0, "std of the noise added to the class means the linear head starts from"),
    "head.temperature": (1.0, "softmax temperature of the head's logits"),
    "p2ot.epsilon": (0.1, "P2OT entropic regularisation"),
    "p2ot.gamma": (1.0, "P2OT weight of the KL penalty that relaxes the uniform cluster-size constraint"),
    "p2ot.rho_base": (0.1, "transported mass fraction rho at the first round (the ramp's start)"),
    "p2ot.rho_upper": (1.0, "transported mass fraction rho at the last round (>= p2ot.rho_base)"),
    "sela.lamb": (25.0, "SeLa's inverse entropic regularisation (its Sinkhorn runs at epsilon = 1 / lamb)"),
    "train.epochs": (50, "pseudo-labelling rounds: one OT solve then train.steps_per_epoch head updates each"),
    "train.steps_per_epoch": (10, "Adam steps of the head on each round's pseudo-labels"),
    "train.learning_rate": (0.01, "Adam learning rate of the head"),
}

# relations between keys, checked before anything is imported (see jaxopt_lab.lab.rules)
CONFIG_RULES = (
    Rule("p2ot.rho_upper", "p2ot.rho_upper >= p2ot.rho_base", ">= p2ot.rho_base = {p2ot.rho_base}"),
    Rule("data.dim", f"data.source != 'digits' or data.dim <= {DIGITS_FEATURES}",
         f"<= {DIGITS_FEATURES}, the feature dimension of data.source = 'digits'"),
)


# ------------------------------------------------------------------------------------------------- data
def make_features(cfg, key):
    """(x, labels, true class proportions): the mixture, or digits projected on ``data.dim`` principal axes."""
    if cfg.data.source == "mixture":
        mix = ot.imbalanced_mixture(key, n_head=cfg.data.n_head, n_classes=cfg.data.n_classes,
                                    imbalance_ratio=cfg.data.imbalance_ratio, dim=cfg.data.dim,
                                    separation=cfg.data.separation)
        return mix.x, mix.labels, mix.proportions
    from jaxopt_lab import data  # digits: a fixed-feature substitute for the paper's image sets

    seed = int(jax.random.randint(key, (), 0, 2**31 - 1))
    ds = data.digits(imbalance=cfg.data.imbalance_ratio, seed=seed, flatten=True)
    x = np.asarray(ds.x_train, np.float64)
    x = x - x.mean(0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    x = x @ vt[: cfg.data.dim].T
    # Unit average variance per feature, then ``separation`` scales the features (the mixture's knob).
    x = x / np.sqrt(np.mean(x**2)) * cfg.data.separation / 4.0
    labels = np.asarray(ds.y_train, np.int32)
    counts = np.bincount(labels, minlength=ds.num_classes)
    return jnp.asarray(x, jnp.float32), jnp.asarray(labels), jnp.asarray(counts / counts.sum(), jnp.float32)


# ------------------------------------------------------------------------------------------ the core
def _confusion(labels, predictions, weights, k):
    return jnp.einsum("ni,nj->ij", jax.nn.one_hot(labels, k) * weights[:, None], jax.nn.one_hot(predictions, k))


def make_simulation(cfg, x, labels):
    """Pure ``simulate(method, key) -> per-epoch records``; ``method`` static, everything else traced."""
    n, dim = x.shape
    k = cfg.data.n_classes
    epochs, steps = cfg.train.epochs, cfg.train.steps_per_epoch
    tx = optax.adam(cfg.train.learning_rate)
    p2ot_eps = cfg.p2ot.epsilon
    sela_eps = 1.0 / cfg.sela.lamb

    def logits_fn(params, xs):
        w, c = params
        return (xs @ w + c) / cfg.head.temperature

    def init_head(key):
        # Noisy class means: logits_k = <mu_k, x> - |mu_k|^2 / 2 (a nearest-mean head for a uniform prior,
        # unaware of the imbalance) with the means perturbed.
        onehot = jax.nn.one_hot(labels, k)
        means = (onehot.T @ x) / jnp.maximum(onehot.sum(0), 1.0)[:, None]
        means = means + cfg.head.noise * jax.random.normal(key, means.shape)
        return means.T, -0.5 * jnp.sum(means**2, axis=1)

    def label(method, logits, rho, init):
        if method == "sela":
            prob = ot.labelling_problem(logits, epsilon=sela_eps)
            out = ot.SeLa(ot.Sinkhorn(threshold=1e-4, max_iterations=5000))(prob, init=init[:2])
            targets = jax.nn.one_hot(out.labels, k)  # SeLa trains on hard labels
            return out, targets, jnp.ones((n,), bool), (out.f, out.g, init[2])
        prob = ot.labelling_problem(logits, epsilon=p2ot_eps)
        out = ot.P2OT(rho=rho, gamma=cfg.p2ot.gamma, threshold=1e-5)(prob, init=(init[0], init[2]))
        return out, out.pseudo_labels, out.selected, (out.f, init[1], out.g)

    def loss_fn(params, targets):
        return -jnp.sum(targets * jax.nn.log_softmax(logits_fn(params, x))) / n

    # full batch: the batch is the round's pseudo-labels (passed to each chunk as its data)
    engine = train.Engine(loss_fn, tx, train.batches.full_batch(), None)

    def simulate(method, key):
        dtype = x.dtype
        potentials = (jnp.zeros((n,), dtype), jnp.zeros((k,), dtype), jnp.zeros((k + 1,), dtype))

        def epoch(carry, t):
            state, potentials = carry
            logits = logits_fn(state.params, x)
            # The ramp reaches rho_upper at the last round; SeLa and UOT transport all the mass.
            rho = (ot.rho_schedule(t, max(epochs - 1, 1), cfg.p2ot.rho_base, cfg.p2ot.rho_upper)
                   if method == "p2ot" else jnp.ones((), dtype))
            out, targets, selected, potentials = label(method, logits, rho, potentials)
            pseudo = out.labels
            record = dict(
                rho=rho,
                n_selected=jnp.sum(selected),
                conf_selected=_confusion(labels, pseudo, selected.astype(dtype), k),
                conf_all=_confusion(labels, pseudo, jnp.ones((n,), dtype), k),
                conf_head=_confusion(labels, jnp.argmax(logits, 1), jnp.ones((n,), dtype), k),
                cluster_mass=out.cluster_masses / jnp.sum(out.cluster_masses),
                ot_iters=out.n_iters,
                ot_converged=out.converged,
            )
            state, _ = engine.pure_run(state, None, t * steps, steps, data=targets)
            return (state, potentials), record

        (state, _), records = jax.lax.scan(epoch, (engine.pure_init(init_head(key)), potentials),
                                           jnp.arange(epochs, dtype=jnp.int32))
        records["conf_final_head"] = _confusion(labels, jnp.argmax(logits_fn(state.params, x), 1),
                                                jnp.ones((n,), x.dtype), k)
        return records

    return simulate


# ---------------------------------------------------------------------------------------------- metrics
def hungarian_accuracy(confusion: np.ndarray) -> float:
    """Accuracy under the best one-to-one cluster -> class matching (scipy's Hungarian algorithm)."""
    total = confusion.sum()
    if total == 0:
        return float("nan")
    rows, cols = linear_sum_assignment(-confusion)
    return float(confusion[rows, cols].sum() / total)


def matched_proportions(confusion: np.ndarray, cluster_mass: np.ndarray) -> np.ndarray:
    """Cluster masses re-indexed by the class each cluster is matched to."""
    rows, cols = linear_sum_assignment(-confusion)
    out = np.zeros_like(cluster_mass)
    out[rows] = cluster_mass[cols]
    return out


def summarize(records, proportions) -> dict:
    """Host-side Hungarian metrics of one seed's per-round ``records``."""
    r = jax.tree.map(np.asarray, records)
    acc = lambda key: np.array([hungarian_accuracy(c) for c in r[key]])  # noqa: E731
    last = matched_proportions(r["conf_all"][-1], r["cluster_mass"][-1])
    return dict(selected_acc=acc("conf_selected"), all_acc=acc("conf_all"), head_acc=acc("conf_head"),
                final_acc=hungarian_accuracy(r["conf_final_head"]), rho=r["rho"],
                proportion_tv=0.5 * np.abs(last - np.asarray(proportions)).sum(),
                ot_converged=r["ot_converged"].mean(), ot_iters=r["ot_iters"].mean())


# -------------------------------------------------------------------------------------------------- run
def run_method(cfg, method, features, keys) -> dict:
    """Every seed of one method; returns each metric stacked over seeds (leading axis)."""
    shapes = {tuple(x.shape) for x, _, _ in features}
    if len(shapes) == 1:  # same-shape data (the mixture): one compiled call vmapped over the seeds
        x, labels = jnp.stack([f[0] for f in features]), jnp.stack([f[1] for f in features])
        simulate = lambda xs, ys, kk: make_simulation(cfg, xs, ys)(method, kk)  # noqa: E731
        records = jax.jit(jax.vmap(simulate))(x, labels, keys)
        per_seed = [jax.tree.map(lambda v: v[s], records) for s in range(len(features))]
    else:  # digits subsamples differ in size: one call per seed
        per_seed = [jax.jit(lambda kk, f=f: make_simulation(cfg, f[0], f[1])(method, kk))(kk)
                    for f, kk in zip(features, keys)]
    stats = [summarize(rec, f[2]) for rec, f in zip(per_seed, features)]
    return {key: np.stack([st[key] for st in stats]) for key in stats[0]}


def run(cfg, ctx):
    data_keys = jax.random.split(ctx.key, cfg.n_seeds)
    head_keys = jax.vmap(lambda kk: jax.random.fold_in(kk, 1))(data_keys)
    features = [make_features(cfg, kk) for kk in data_keys]
    methods = METHODS if cfg.compare_uot else ("p2ot", "sela")
    results = {method: run_method(cfg, method, features, head_keys) for method in methods}
    p2, se, uo = results["p2ot"], results["sela"], results.get("uot")
    ctx.progress(cfg.train.epochs)
    for t in range(cfg.train.epochs):
        ctx.log(t + 1, rho=float(p2["rho"][0, t]),
                p2ot_selected_acc=float(p2["selected_acc"][:, t].mean()),
                p2ot_all_acc=float(p2["all_acc"][:, t].mean()),
                sela_acc=float(se["all_acc"][:, t].mean()),
                **({} if uo is None else dict(uot_acc=float(uo["all_acc"][:, t].mean()))),
                p2ot_head_acc=float(p2["head_acc"][:, t].mean()),
                sela_head_acc=float(se["head_acc"][:, t].mean()))

    epochs = np.arange(1, cfg.train.epochs + 1)
    curves = {"P2OT (selected)": (epochs, p2["selected_acc"].mean(0)), "P2OT (all)": (epochs, p2["all_acc"].mean(0)),
              "SeLa": (epochs, se["all_acc"].mean(0))}
    if uo is not None:
        curves["UOT (rho = 1)"] = (epochs, uo["all_acc"].mean(0))
    ctx.figure("pseudo_label_accuracy", plots.lines(
        curves, xlabel="round", ylabel="Hungarian accuracy of pseudo-labels (mean over seeds)",
        title=f"imbalance {cfg.data.imbalance_ratio:g}, {cfg.data.source}"))
    ctx.figure("head_accuracy", plots.lines(
        {m: (epochs, results[m]["head_acc"].mean(0)) for m in results},
        xlabel="round", ylabel="head accuracy (all samples)"))

    ctx.summary(
        p2ot_selected_acc=float(p2["selected_acc"].mean()),
        p2ot_selected_acc_seed_std=float(p2["selected_acc"].mean(1).std()),
        p2ot_first_round_selected_acc=float(p2["selected_acc"][:, 0].mean()),
        p2ot_all_acc=float(p2["all_acc"].mean()),
        sela_acc=float(se["all_acc"].mean()),
        sela_acc_seed_std=float(se["all_acc"].mean(1).std()),
        sela_first_round_acc=float(se["all_acc"][:, 0].mean()),
        initial_head_acc=float(p2["head_acc"][:, 0].mean()),
        p2ot_final_head_acc=float(p2["final_acc"].mean()),
        sela_final_head_acc=float(se["final_acc"].mean()),
        p2ot_proportion_tv=float(p2["proportion_tv"].mean()),
        sela_proportion_tv=float(se["proportion_tv"].mean()),
        p2ot_ot_converged_fraction=float(p2["ot_converged"].mean()),
        sela_ot_converged_fraction=float(se["ot_converged"].mean()),
        n_samples=int(features[0][0].shape[0]),
        **({} if uo is None else dict(uot_acc=float(uo["all_acc"].mean()),
                                      uot_final_head_acc=float(uo["final_acc"].mean()),
                                      uot_proportion_tv=float(uo["proportion_tv"].mean()))),
    )
