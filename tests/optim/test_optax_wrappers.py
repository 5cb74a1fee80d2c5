"""The registry's adapters around optax (lookahead with plain params, sophia driven by grad_fn)
agree with optax used directly."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

from jaxopt_lab import optim

A = jnp.array([3.0, 1.0, 0.2])  # diagonal Hessian of the quadratic below


def loss(params):
    return 0.5 * jnp.sum(A * params["w"] ** 2) + jnp.sum(params["b"] ** 2)


def test_lookahead_matches_optax_lookahead():
    params = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.3])}
    ours = optim.get("lookahead", learning_rate=0.1, sync_period=3, slow_step_size=0.5, base="sgd")
    theirs = optax.lookahead(optax.sgd(0.1), sync_period=3, slow_step_size=0.5)
    p_ours, s_ours = params, ours.init(params)
    p_theirs = optax.LookaheadParams.init_synced(params)
    s_theirs = theirs.init(p_theirs)
    for _ in range(7):
        u, s_ours = ours.update(jax.grad(loss)(p_ours), s_ours, p_ours)
        p_ours = optax.apply_updates(p_ours, u)
        u, s_theirs = theirs.update(jax.grad(loss)(p_theirs.fast), s_theirs, p_theirs)
        p_theirs = optax.apply_updates(p_theirs, u)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), p_ours, p_theirs.fast)


def test_sophia_with_grad_fn_matches_optax_with_obj_fn():
    # For a diagonal Hessian, Hutchinson's v * (H v) with Rademacher v is the exact diagonal whatever
    # v is, so our grad_fn-driven estimator and optax's obj_fn one must give identical updates.
    params = {"w": jnp.array([1.0, -2.0, 0.5]), "b": jnp.array([0.3])}
    ours = optim.get("sophia", learning_rate=0.05, update_interval=1, weight_decay=0.0)
    theirs = optax.contrib.sophia(0.05, update_interval=1, weight_decay=0.0)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    p_ours = p_theirs = params
    # jitted: eager steps would re-trace the Hessian estimates at every step
    step_ours = jax.jit(lambda p, s: ours.update(jax.grad(loss)(p), s, p, grad_fn=jax.grad(loss)))
    step_theirs = jax.jit(lambda p, s: theirs.update(jax.grad(loss)(p), s, p, obj_fn=loss))
    for _ in range(5):
        u1, s_ours = step_ours(p_ours, s_ours)
        u2, s_theirs = step_theirs(p_theirs, s_theirs)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), u1, u2)
        p_ours, p_theirs = optax.apply_updates(p_ours, u1), optax.apply_updates(p_theirs, u2)


def test_sophia_without_grad_fn_says_what_is_missing():
    tx = optim.get("sophia", learning_rate=0.1, update_interval=1)
    params = {"w": jnp.ones(3), "b": jnp.ones(1)}
    try:
        tx.update(params, tx.init(params), params)
    except ValueError as e:
        assert "grad_fn" in str(e)
    else:
        raise AssertionError("sophia without grad_fn must raise")


def test_sophia_refuses_non_float_params_and_takes_an_empty_tree():
    tx = optim.get("sophia", learning_rate=0.1)
    with pytest.raises(TypeError, match=r"sophia: params\['i'\] has dtype int32"):
        tx.init({"i": jnp.ones(2, jnp.int32)})
    with pytest.raises(TypeError, match=r"params\['z'\] has dtype complex64"):
        tx.init({"z": jnp.ones(2, jnp.complex64)})
    updates, _ = tx.update({}, tx.init({}), {}, grad_fn=lambda p: p)
    assert updates == {}
