"""SOAP against a float64 numpy transcription of the official code, nikhilvyas/SOAP ``soap.py``
(commit a1e5535; ``merge_dims=False``, ``precondition_1d=False``, ``normalize_grads=False``,
``correct_bias=True``, ``weight_decay=0``):

* ``step`` (lines 108-212): the first call only builds the bases (``continue``, line 153); then the
  projection ``Q_L^T G Q_R`` (``project``, lines 240-266), Adam's moments (167-170), the bias
  correction ``lr * sqrt(1 - b2^t) / (1 - b1^t)`` (178-182) and ``project_back`` (309-334);
* ``update_preconditioner`` (268-307): momentum back to the original space, ``GG.lerp_(outer, 1 - s)``,
  a refresh when ``step % precondition_frequency == 0``, momentum into the new basis;
* ``get_orthogonal_matrix`` (337-370): ``eigh``, columns flipped; ``get_orthogonal_matrix_QR``
  (373-430): columns and ``exp_avg_sq`` sorted by ``diag(Q^T S Q)`` descending, ``qr(S Q)``.

The leaves are square and the 1-D leaf is not rotated: a first gradient of full rank gives
statistics without a degenerate eigenspace, whose basis would be arbitrary (any orthonormal basis of
it is as valid, and LAPACK's float32 and float64 choices differ).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import scale_by_soap, soap_state_bytes


class _ReferenceSOAP:
    """One official SOAP per parameter, the update returned as ``-(p_new - p) / lr``."""

    def __init__(self, shapes, b1, b2, shampoo_beta, eps, frequency):
        self.__dict__.update(b1=b1, b2=b2, s=shampoo_beta, eps=eps, frequency=frequency)
        self.state = [{"step": 0, "m": np.zeros(s), "v": np.zeros(s), "Q": None} for s in shapes]

    @staticmethod
    def _project(x, qs):
        for q in qs:  # tensordot(x, q, dims=[[0], [0]]), or a permutation for an unrotated dim
            x = np.tensordot(x, q, axes=([0], [0])) if q is not None else np.moveaxis(x, 0, -1)
        return x

    @staticmethod
    def _project_back(x, qs):
        for q in qs:
            x = np.tensordot(x, q, axes=([0], [1])) if q is not None else np.moveaxis(x, 0, -1)
        return x

    def _update_preconditioner(self, g, st):
        if st["Q"] is not None:
            st["m"] = self._project_back(st["m"], st["Q"])
        if g.ndim == 2:
            outer = [g @ g.T, g.T @ g]
            st["GG"] = [gg + (1 - self.s) * (o - gg) for gg, o in zip(st["GG"], outer)]
        if st["Q"] is None:
            st["Q"] = [np.flip(np.linalg.eigh(gg + 1e-30 * np.eye(len(gg)))[1], 1)
                       for gg in st["GG"]] if g.ndim == 2 else [None]
        if st["step"] > 0 and st["step"] % self.frequency == 0 and g.ndim == 2:
            final = []
            for ind, (m, o) in enumerate(zip(st["GG"], st["Q"])):
                order = np.argsort(-np.diag(o.T @ m @ o), kind="stable")
                st["v"] = np.take(st["v"], order, axis=ind)
                final.append(np.linalg.qr(m @ o[:, order])[0])
            st["Q"] = final
        if st["step"] > 0:
            st["m"] = self._project(st["m"], st["Q"])

    def update(self, grads):
        out = []
        for g, st in zip(grads, self.state):
            if st["Q"] is None:
                st["GG"] = [np.zeros((n, n)) for n in g.shape] if g.ndim == 2 else []
                self._update_preconditioner(g, st)
                out.append(np.zeros_like(g))
                continue
            g_t = self._project(g, st["Q"])
            st["step"] += 1
            st["m"] = self.b1 * st["m"] + (1 - self.b1) * g_t
            st["v"] = self.b2 * st["v"] + (1 - self.b2) * g_t ** 2
            scale = np.sqrt(1 - self.b2 ** st["step"]) / (1 - self.b1 ** st["step"])
            out.append(scale * self._project_back(st["m"] / (np.sqrt(st["v"]) + self.eps), st["Q"]))
            self._update_preconditioner(g, st)
        return out


@pytest.mark.parametrize("shampoo_beta", [None, 0.8])
def test_soap_matches_float64_transcription(shampoo_beta):
    """Twelve steps on a 4x4 and a 6x6 leaf (rotated) and a vector (Adam), bases refreshed every 3
    Adam steps (four refreshes): our direction against the official step / lr."""
    shapes = [(4, 4), (6, 6), (5,)]
    b1, b2, eps, every = 0.9, 0.95, 1e-8, 3
    reference = _ReferenceSOAP(shapes, b1, b2, b2 if shampoo_beta is None else shampoo_beta, eps,
                               every)
    tx = scale_by_soap(b1=b1, b2=b2, shampoo_beta=shampoo_beta, eps=eps,
                       precondition_frequency=every)
    rng = np.random.default_rng(0)
    state = tx.init([jnp.zeros(s, jnp.float32) for s in shapes])
    update = jax.jit(tx.update)
    worst = 0.0
    for step in range(13):
        grads = [rng.normal(size=s) * (1.0 + np.arange(s[-1])) for s in shapes]
        ours, state = update([jnp.asarray(g, jnp.float32) for g in grads], state)
        for a, b in zip(ours, reference.update(grads)):
            if step == 0:
                assert np.all(np.asarray(a) == 0) and np.all(b == 0)
                continue
            worst = max(worst, float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)))
    assert worst < 1e-4, worst


def test_soap_keeps_previous_basis_on_nonfinite_statistics():
    tx = scale_by_soap(precondition_frequency=1)
    state, update = tx.init({"w": jnp.zeros((3, 3))}), jax.jit(tx.update)
    for g in (jnp.eye(3) + 0.1, 2 * jnp.eye(3) - 0.3):
        _, state = update({"w": g}, state)
    good = state.bases
    _, state = update({"w": jnp.full((3, 3), jnp.nan)}, state)
    jax.tree.map(np.testing.assert_array_equal, state.bases, good)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(good))


def test_soap_state_bytes_closed_form():
    params = {"w": jnp.zeros((10, 7)), "b": jnp.zeros(7), "big": jnp.zeros((3, 50))}
    for kwargs in ({}, {"block_size": 4}, {"max_precond_dim": 20}):
        state = jax.eval_shape(scale_by_soap(**kwargs).init, params)
        measured = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
        assert measured == soap_state_bytes(params, **kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"b1": 1.0}, "b1"),
    ({"b2": -0.1}, "b2"),
    ({"shampoo_beta": 1.5}, "shampoo_beta"),
    ({"eps": -1.0}, "eps must be"),
    ({"precondition_frequency": 0}, "precondition_frequency must be an int >= 1"),
    ({"max_precond_dim": 0}, "max_precond_dim must be an int >= 1"),
    ({"block_size": 0}, "block_size must be an int >= 1"),
])
def test_soap_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("soap", learning_rate=1e-3, **kwargs)
