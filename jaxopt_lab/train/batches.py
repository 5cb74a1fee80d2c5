"""Batch samplers: a batch is a pure function of ``(data key, step)``, so a resumed run replays the
batches of an uninterrupted one and a sweep's trials see the same batches.

A :class:`Sampler` is split in two so a chunk of steps costs little memory: ``plan(key, steps)`` draws
the (small) index arrays of a whole chunk at once (one permutation per epoch instead of one per step),
and ``fetch(data, plan_i)`` turns one step's indices into the batch inside the training scan.
``sampler.batch(data, key, step)`` composes them for one step.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Sampler", "epochs", "token_windows", "full_batch", "step_keys"]


class Sampler(NamedTuple):
    """``plan(key, steps[int32, (T,)]) -> per-step indices (leading axis T)``;
    ``fetch(data, indices) -> batch`` for one step; ``batch_size`` (None: the whole data set)."""

    plan: Callable[[Any, jax.Array], Any]
    fetch: Callable[[Any, Any], Any]
    batch_size: Any = None

    def batch(self, data, key, step):
        steps = jnp.asarray(step, jnp.int32)[None]
        return self.fetch(data, jax.tree.map(lambda a: a[0], self.plan(key, steps)))


def _check(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def epochs(n: int, batch_size: int) -> Sampler:
    """Minibatches of ``n`` examples without replacement within an epoch.

    Epoch ``e = step // (n // batch_size)`` is the permutation of ``range(n)`` drawn from
    ``fold_in(key, e)``; step ``s`` takes its entries ``[p b, (p + 1) b)``, ``p = s mod (n // b)``
    (the last ``n mod b`` of each permutation are never used). Same batches as
    :func:`jaxopt_lab.data.batch_indices`. ``data`` is a pytree of arrays with leading axis ``n``.
    """
    _check("n", n, 1, 2**31 - 1)
    _check("batch_size", batch_size, 1, n)
    per_epoch = n // batch_size

    def plan(key, steps):
        epoch, position = jnp.divmod(steps, per_epoch)
        first = epoch[0]
        # Steps come in increasing order: the chunk spans epochs first .. first + T // per_epoch + 1.
        n_epochs = steps.shape[0] // per_epoch + 2
        perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(key, e), n))(
            first + jnp.arange(n_epochs))
        rows = perms[jnp.clip(epoch - first, 0, n_epochs - 1)]
        offsets = position[:, None] * batch_size + jnp.arange(batch_size)
        return jnp.take_along_axis(rows, offsets, axis=1)

    def fetch(data, indices):
        return jax.tree.map(lambda a: a[indices], data)

    return Sampler(plan, fetch, batch_size)


def token_windows(n_tokens: int, batch_size: int, seq_len: int) -> Sampler:
    """``batch_size`` random windows of a token stream per step, starts drawn from ``fold_in(key, step)``:
    the batches of :func:`jaxopt_lab.data.sample_lm_batch`. ``data`` is the int token array; a batch is
    ``(inputs, targets)``, both ``(batch_size, seq_len)`` int32, targets shifted by one. ``n_tokens`` may
    be traced (windows then come from the stream's first ``n_tokens`` tokens: a sweep over data sizes)."""
    if isinstance(n_tokens, int):
        _check("seq_len", seq_len, 1, n_tokens - 1)
    _check("batch_size", batch_size, 1, 2**31 - 1)

    def plan(key, steps):
        return jax.vmap(lambda s: jax.random.randint(jax.random.fold_in(key, s), (batch_size,), 0,
                                                     n_tokens - seq_len))(steps)

    def fetch(tokens, starts):
        windows = jax.vmap(lambda s: jax.lax.dynamic_slice(tokens, (s,), (seq_len + 1,)))(starts)
        windows = windows.astype(jnp.int32)
        return windows[:, :-1], windows[:, 1:]

    return Sampler(plan, fetch, batch_size)


def full_batch() -> Sampler:
    """Every step sees the whole data set (full-batch gradient descent)."""
    return Sampler(lambda key, steps: steps, lambda data, _: data, None)


def step_keys(total: int) -> Sampler:
    """A PRNG key per step, ``split(key, total)[step]``, for a stochastic objective that draws its own
    noise from it (the batch is the key; ``data`` is unused). ``total``: the run's number of steps."""
    _check("total", total, 1, 2**31 - 1)
    return Sampler(lambda key, steps: jax.random.split(key, total)[steps], lambda data, key: key, None)
