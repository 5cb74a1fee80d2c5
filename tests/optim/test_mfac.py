"""M-FAC against the explicit inverse of ``lambda I + G^T G / m`` and a float64 transcription of the
official dynamic algorithm, IST-DASLab/M-FAC ``optim.py`` (``HInvFastUpMulti.setup``, ``.mul``,
``.update_mul``: unpivoted LU of ``m I + lambda^{-1} G G^T``, the ``coef`` recursion, the ring buffer
``last``; ``MFAC.step``: momentum ``v = mu v + (1 - mu) u``), and the sequential Woodbury ``HInvSlow``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import mfac_state_bytes, scale_by_mfac


def _lu_no_pivot(a):
    """Doolittle LU without pivoting, packed like ``torch.lu(pivot=False)[0]``."""
    a = a.copy()
    n = len(a)
    for k in range(n):
        a[k + 1:, k] /= a[k, k]
        a[k + 1:, k + 1:] -= np.outer(a[k + 1:, k], a[k, k + 1:])
    return a


class _OfficialMFAC:
    """float64 transcription of ``HInvFastUpMulti`` (one device) and ``MFAC.step``."""

    def __init__(self, m, d, damp, momentum):
        self.m, self.lambd, self.momentum = m, 1.0 / damp, momentum
        self.grads = np.zeros((m, d))
        self.dots = np.zeros((m, m))
        self.last = 0
        self.coef = self.lambd * np.eye(m)
        self.v = np.zeros(d)

    def setup(self):
        m = self.m
        packed = _lu_no_pivot(self.lambd * self.dots + m * np.eye(m))
        self.giHig = np.triu(packed - m * np.eye(m))
        self.denom = m + np.diagonal(self.giHig)
        tmp = -self.giHig.T / self.denom.reshape(1, -1)
        for i in range(max(self.last, 1), m):
            self.coef[i, :i] = tmp[i, :i] @ self.coef[:i, :i]

    def mul(self, x, dots):
        gihix = self.lambd * dots.copy()
        for i in range(1, self.m):
            gihix[i:] -= self.giHig[i - 1, i:] * (gihix[i - 1] / self.denom[i - 1])
        return self.lambd * x - ((gihix / self.denom) @ self.coef) @ self.grads

    def step(self, g):
        self.grads[self.last] = g
        tmp = self.grads @ g
        self.dots[self.last, :] = tmp
        self.dots[:, self.last] = tmp
        self.setup()
        u = self.mul(g, tmp)
        self.last = (self.last + 1) % self.m
        self.v = self.momentum * self.v + (1 - self.momentum) * u
        return self.v


def _hinv_slow(grads, damp):
    """``HInvSlow``: ``m`` Woodbury rank-one updates of ``I / damp``."""
    m, d = grads.shape
    h = np.eye(d) / damp
    for g in grads:
        hg = h @ g
        h -= np.outer(hg, hg) / (m + g @ hg)
    return h


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_mfac_matches_official_dynamic_algorithm_and_explicit_inverse(momentum):
    m, damp = 5, 0.05
    shapes = [(4, 6), (7,)]
    d = sum(int(np.prod(s)) for s in shapes)
    reference = _OfficialMFAC(m, d, damp, momentum)
    tx = scale_by_mfac(window_size=m, damping=damp, momentum=momentum)
    state = tx.init([jnp.zeros(s) for s in shapes])
    update = jax.jit(tx.update)
    rng = np.random.default_rng(0)
    worst_official = worst_explicit = 0.0
    for t in range(2 * m + 3):  # wraps the ring buffer twice
        g = rng.normal(size=d)
        leaves = [jnp.asarray(g[:24].reshape(4, 6), jnp.float32), jnp.asarray(g[24:], jnp.float32)]
        ours, state = update(leaves, state)
        ours = np.concatenate([np.asarray(x, np.float64).ravel() for x in ours])
        expected = reference.step(g)
        worst_official = max(worst_official,
                             np.max(np.abs(ours - expected)) / np.max(np.abs(expected)))
        if momentum == 0.0:
            window = reference.grads
            explicit = np.linalg.solve(damp * np.eye(d) + window.T @ window / m, g)
            slow = _hinv_slow(window, damp) @ g
            np.testing.assert_allclose(slow, explicit, rtol=1e-8, atol=1e-8)
            worst_explicit = max(worst_explicit,
                                 np.max(np.abs(ours - explicit)) / np.max(np.abs(explicit)))
    assert worst_official < 1e-4, worst_official
    assert worst_explicit < 1e-4, worst_explicit


def test_mfac_state_bytes_closed_form():
    params = {"w": jnp.zeros((10, 7)), "b": jnp.zeros(7)}
    state = scale_by_mfac(window_size=6).init(params)
    assert sum(x.nbytes for x in jax.tree.leaves(state)) == mfac_state_bytes(params, window_size=6)


@pytest.mark.parametrize("kwargs,match", [
    ({"window_size": 0}, "window_size must be an int >= 1"),
    ({"damping": 0.0}, "damping must be in"),
    ({"damping": -1.0}, "damping must be in"),
    ({"momentum": 1.0}, "momentum must be in"),
])
def test_mfac_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("mfac", learning_rate=1e-3, **kwargs)
