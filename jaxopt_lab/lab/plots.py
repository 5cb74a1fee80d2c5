"""Small matplotlib helpers shared by experiments (headless: the Agg backend, no display needed)."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["lines", "bars", "metric_series", "label", "LABELS"]

# Readable axis labels of common config and summary keys; anything else falls back to :func:`label`.
LABELS = {
    "optimizer.learning_rate": "learning rate",
    "optimizer.name": "optimizer",
    "optimizer.weight_decay": "weight decay",
    "optimizer.rho": "SAM radius ρ",
    "optimizer.rank": "projection rank",
    "train.steps": "training steps",
    "train.batch_size": "batch size",
    "data.label_noise": "label-noise fraction",
    "solver.epsilon": "entropic regularisation ε",
    "final_loss": "final training loss",
    "final_train_loss": "final training loss",
    "test_accuracy": "test accuracy",
    "final_test_accuracy": "test accuracy",
    "seed": "seed",
}


def label(key: str) -> str:
    """A readable label for a dotted config or summary key: :data:`LABELS`, else its last segment with
    underscores as spaces (``train.warmup_steps`` -> ``warmup steps``)."""
    if key in LABELS:
        return LABELS[key]
    return key.rpartition(".")[2].replace("_", " ")


def metric_series(records: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of ``key`` from metrics records (those that have it)."""
    rows = [(r["step"], r[key]) for r in records if key in r and r[key] is not None]
    if not rows:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*rows)
    return np.asarray(steps), np.asarray(values, dtype=float)


def lines(series: Mapping[str, tuple], *, xlabel: str, ylabel: str, title: str = "",
          logx: bool = False, logy: bool = False, bands: Optional[Mapping[str, np.ndarray]] = None,
          ax=None):
    """One line per ``label -> (x, y)``; ``bands[label]`` (same shape as y) draws y +- band (say what the
    band is in the title or a caption). A new figure is laid out tight, its legend outside the axes when
    more than four lines share them."""
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label, (x, y) in series.items():
        x, y = np.asarray(x), np.asarray(y, dtype=float)
        (line,) = ax.plot(x, y, label=label, marker="o" if len(x) < 20 else None, ms=3)
        if bands is not None and label in bands:
            ax.fill_between(x, y - bands[label], y + bands[label], alpha=0.2, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(series) > 4:  # crowded: the legend goes beside the axes, not over the curves
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    elif len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if fig is not None:
        fig.tight_layout()
    return fig if fig is not None else ax.figure


def bars(values: Mapping[str, float], *, ylabel: str, title: str = "",
         errors: Optional[Mapping[str, float]] = None, logy: bool = False):
    """A bar per ``label -> value`` (with optional error bars)."""
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(values) + 2), 3.8))
    labels = list(values)
    err = [errors[k] for k in labels] if errors else None
    ax.bar(range(len(labels)), [values[k] for k in labels], yerr=err, capsize=3)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
