"""Shampoo and its inverse p-th roots against float64 references.

* roots: ``scipy.linalg.fractional_matrix_power`` on SPD matrices, well- and ill-conditioned;
* Shampoo: a float64 numpy transcription of the authors' update, google-research/precondition
  ``precondition/distributed_shampoo.py``: ``_transform_grad`` (grafting by the norm of the grafting
  direction, ``multiplier = ||graft|| / (||precond|| + 1e-16)``, momentum ``beta1 m + w u`` with
  ``w = 1 - beta1`` as with ``moving_average_for_momentum=True``), statistics ``w1 L + w2 G G^T``
  (``w2 = 1`` when ``beta2 == 1``), the uneven blocking of its ``BlockPartitioner`` (``np.split`` at
  multiples of ``block_size``), a preconditioner refresh every ``preconditioning_compute_steps`` and its
  relative ridge ``matrix_epsilon * lambda_max`` (``relative_matrix_epsilon=True``).
  Our Adam grafting adds Adam's bias correction to its ``GraftingType.RMSPROP``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxopt_lab import optim
from jaxopt_lab.optim.curvature import inverse_pth_root, scale_by_shampoo, shampoo_state_bytes


def _spd(n, condition, seed):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eigenvalues = np.geomspace(1.0, 1.0 / condition, n)
    return (q * eigenvalues) @ q.T


def _relative(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("method", ["newton", "eigh"])
@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("condition", [10.0, 1e6], ids=["well", "ill"])
def test_inverse_pth_root_matches_scipy(method, p, condition):
    matrix = _spd(12, condition, seed=p)
    eps = 1e-8
    expected = np.real(scipy.linalg.fractional_matrix_power(matrix + eps * np.eye(12), -1.0 / p))
    with jax.enable_x64(True):
        root, error = inverse_pth_root(jnp.asarray(matrix, jnp.float64), p, ridge_epsilon=eps,
                                       relative_epsilon=False, method=method,
                                       error_tolerance=1e-12)
        root = np.asarray(root)
    assert _relative(root, expected) < 1e-7, (method, p, condition, _relative(root, expected))
    assert float(error) < 1e-6


@pytest.mark.slow
def test_inverse_pth_root_float32_ill_conditioned_relative_ridge():
    """float32, condition 1e4, and a rank-deficient G G^T (128 x 64 G) with the relative ridge."""
    matrix = 50.0 * _spd(16, 1e4, seed=0)
    g = np.random.default_rng(1).normal(size=(128, 64))
    for m in (matrix, g @ g.T):
        eps = 1e-5 * np.linalg.eigvalsh(m)[-1]
        expected = np.real(scipy.linalg.fractional_matrix_power(m + eps * np.eye(len(m)), -0.25))
        for method in ("newton", "eigh"):
            root, error = inverse_pth_root(jnp.asarray(m, jnp.float32), 4, ridge_epsilon=1e-5,
                                           method=method)
            assert _relative(root, expected) < 2e-3, (method, _relative(root, expected))
            assert float(error) < 1e-5


def test_inverse_pth_root_rejects_bad_arguments():
    with pytest.raises(ValueError, match="p must be an int >= 1"):
        inverse_pth_root(jnp.eye(3), 0)
    with pytest.raises(ValueError, match="method"):
        inverse_pth_root(jnp.eye(3), 2, method="svd")


# ------------------------------------------------------------------------------------------------
# float64 transcription of distributed_shampoo's update


def _np_root(stat, p, eps):
    """The reference's root with its relative ridge eps * max(lambda_max, 1e-16)."""
    ridge = eps * max(np.linalg.eigvalsh(stat)[-1], 1e-16)
    return np.real(scipy.linalg.fractional_matrix_power(stat + ridge * np.eye(len(stat)), -1.0 / p))


class _ReferenceShampoo:
    def __init__(self, shapes, block_size, every, p, b1, beta2, eps, graft, graft_beta2, graft_eps):
        self.__dict__.update(block_size=block_size, every=every, p=p, b1=b1, beta2=beta2, eps=eps,
                             graft=graft, graft_beta2=graft_beta2, graft_eps=graft_eps)
        self.step = 0
        self.state = []
        for shape in shapes:
            entry = {"m": np.zeros(shape), "v": np.zeros(shape)}
            if len(shape) == 2:
                rows = np.split(np.arange(shape[0]), range(block_size, shape[0], block_size))
                cols = np.split(np.arange(shape[1]), range(block_size, shape[1], block_size))
                entry["blocks"] = [(r, c) for r in rows for c in cols]
                entry["L"] = [np.zeros((len(r), len(r))) for r, c in entry["blocks"]]
                entry["R"] = [np.zeros((len(c), len(c))) for r, c in entry["blocks"]]
                entry["PL"] = [np.eye(len(r)) for r, c in entry["blocks"]]
                entry["PR"] = [np.eye(len(c)) for r, c in entry["blocks"]]
            self.state.append(entry)

    def update(self, grads):
        out = []
        w2 = 1.0 if self.beta2 == 1.0 else 1.0 - self.beta2
        refresh = self.step % self.every == 0
        self.step += 1
        for g, s in zip(grads, self.state):
            g = np.asarray(g, np.float64)
            if self.graft == "adagrad":
                s["v"] = s["v"] + g * g
                graft = g / (np.sqrt(s["v"]) + self.graft_eps)
            elif self.graft == "adam":
                s["v"] = self.graft_beta2 * s["v"] + (1 - self.graft_beta2) * g * g
                graft = g / (np.sqrt(s["v"] / (1 - self.graft_beta2 ** self.step)) + self.graft_eps)
            else:
                graft = g
            if "blocks" in s:
                precond = np.zeros_like(g)
                for k, (r, c) in enumerate(s["blocks"]):
                    block = g[np.ix_(r, c)]
                    s["L"][k] = self.beta2 * s["L"][k] + w2 * block @ block.T
                    s["R"][k] = self.beta2 * s["R"][k] + w2 * block.T @ block
                    if refresh:
                        s["PL"][k] = _np_root(s["L"][k], self.p, self.eps)
                        s["PR"][k] = _np_root(s["R"][k], self.p, self.eps)
                    precond[np.ix_(r, c)] = s["PL"][k] @ block @ s["PR"][k]
                update = precond * np.linalg.norm(graft) / (np.linalg.norm(precond) + 1e-16)
            else:
                update = graft
            s["m"] = self.b1 * s["m"] + (1 - self.b1) * update
            out.append(s["m"].copy())
        return out


@pytest.mark.parametrize("graft,beta2,root_method", [
    ("adam", 1.0, "newton"), pytest.param("adagrad", 0.99, "eigh", marks=pytest.mark.slow),
    pytest.param("sgd", 0.9, "newton", marks=pytest.mark.slow)])
def test_shampoo_matches_float64_transcription(graft, beta2, root_method):
    """Five steps with blocks of 4 on a 10x7 leaf (uneven 4+4+2 / 4+3 blocks), a 3x5 leaf (one block)
    and a vector (diagonal fallback); roots refreshed every 2 steps."""
    shapes = [(10, 7), (3, 5), (5,)]
    kw = dict(block_size=4, every=2, p=4, b1=0.9, beta2=beta2, eps=1e-3, graft=graft,
              graft_beta2=0.99, graft_eps=1e-8)
    reference = _ReferenceShampoo(shapes, **kw)
    tx = scale_by_shampoo(block_size=4, precondition_every=2, exponent=4, b1=0.9, beta2=beta2,
                          epsilon=1e-3, graft=graft, graft_beta2=0.99, graft_epsilon=1e-8,
                          root_method=root_method)
    rng = np.random.default_rng(0)
    params = [jnp.zeros(s, jnp.float32) for s in shapes]
    state = tx.init(params)
    update = jax.jit(tx.update)
    worst = 0.0
    for _ in range(5):
        grads = [rng.normal(size=s) for s in shapes]
        ours, state = update([jnp.asarray(g, jnp.float32) for g in grads], state)
        for a, b in zip(ours, reference.update(grads)):
            worst = max(worst, _relative(a, b))
    assert worst < 2e-4, worst


@pytest.mark.slow
def test_shampoo_keeps_previous_preconditioner_on_nonfinite_statistics():
    tx = scale_by_shampoo(block_size=8, precondition_every=1)
    params = {"w": jnp.zeros((4, 3))}
    state = tx.init(params)
    _, state = tx.update({"w": jnp.ones((4, 3)) + jnp.eye(4, 3)}, state)
    good = state.preconditioners
    _, state = tx.update({"w": jnp.full((4, 3), jnp.nan)}, state)
    jax.tree.map(np.testing.assert_array_equal, state.preconditioners, good)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(good))


def test_shampoo_state_bytes_closed_form():
    params = {"w": jnp.zeros((10, 7)), "b": jnp.zeros(7), "big": jnp.zeros((3, 5000))}
    for graft in ("adam", "sgd"):
        state = scale_by_shampoo(block_size=4, graft=graft).init(params)
        measured = sum(x.nbytes for x in jax.tree.leaves(state))
        assert measured == shampoo_state_bytes(params, block_size=4, graft=graft)


@pytest.mark.parametrize("kwargs,match", [
    ({"block_size": 0}, "block_size must be an int >= 1"),
    ({"precondition_every": 0}, "precondition_every must be an int >= 1"),
    ({"exponent": 0}, "exponent must be an int >= 1"),
    ({"epsilon": -1.0}, "epsilon must be in"),
    ({"graft": "lion"}, "graft must be one of"),
    ({"root_method": "svd"}, "root_method must be one of"),
])
def test_shampoo_rejects_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optim.get("shampoo", learning_rate=1e-3, **kwargs)
