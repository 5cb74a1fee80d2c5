"""The shared fixed-point driver: stopping rule, error trace, vmap, jit, unrolled gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab._loop import (CONVERGED, DIVERGED, MAX_ITERATIONS, NONFINITE, STATUS_NAMES, any_member,
                              batch_aware, iterate, num_blocks, update_if)


def _halving(threshold=1e-3, **kw):
    # x_{t+1} = x_t / 2 from 1: error after t steps is 2^-t, so the stopping step is known in closed form.
    return iterate(lambda i, x: 0.5 * x, jnp.abs, jnp.float32(1.0), threshold=threshold, **kw)


def test_stops_at_the_first_block_below_threshold():
    out = _halving(threshold=1e-3, max_iterations=100, inner_iterations=3)
    # 2^-t < 1e-3 first at t = 10; blocks of 3 -> checked at 3, 6, 9, 12.
    assert int(out.n_iters) == 12
    assert bool(out.converged)
    np.testing.assert_allclose(out.errors[:4], [2.0**-3, 2.0**-6, 2.0**-9, 2.0**-12], rtol=1e-6)
    assert np.all(np.asarray(out.errors[4:]) == -1)
    assert out.errors.shape == (num_blocks(100, 3),) == (34,)
    np.testing.assert_allclose(out.state, 2.0**-12)


def test_min_iterations_and_max_iterations():
    out = _halving(threshold=1e-3, max_iterations=100, min_iterations=20, inner_iterations=5)
    assert int(out.n_iters) == 20 and bool(out.converged)
    out = _halving(threshold=1e-12, max_iterations=10, inner_iterations=5)
    assert int(out.n_iters) == 10 and not bool(out.converged)


def test_non_finite_error_stops_and_is_not_converged():
    out = iterate(lambda i, x: x * 1e30, jnp.abs, jnp.float32(1.0), threshold=1e-3,
                  max_iterations=1000, inner_iterations=1)
    assert not bool(out.converged)
    assert int(out.n_iters) < 10


def test_status_says_why_the_loop_stopped():
    assert int(_halving(threshold=1e-3, max_iterations=100).status) == CONVERGED
    assert int(_halving(threshold=1e-12, max_iterations=10, inner_iterations=5).status) == MAX_ITERATIONS
    out = iterate(lambda i, x: x * 1e30, jnp.abs, jnp.float32(1.0), threshold=1e-3, max_iterations=1000,
                  inner_iterations=1)
    assert int(out.status) == NONFINITE and STATUS_NAMES[int(out.status)] == "nonfinite"
    # x -> 0.5 x for 5 steps, then x -> 10 x: the error grows 1e3-fold over its minimum within 4 steps
    grow = lambda i, x: jnp.where(i < 5, 0.5, 10.0) * x  # noqa: E731
    out = iterate(grow, jnp.abs, jnp.float32(1.0), threshold=1e-9, max_iterations=100, inner_iterations=1,
                  divergence_factor=1e3)
    assert int(out.status) == DIVERGED and int(out.n_iters) == 5 + 4
    for unroll in (False, True):   # the same status from the unrolled loop, and under vmap
        assert int(iterate(grow, jnp.abs, jnp.float32(1.0), threshold=1e-9, max_iterations=100,
                           inner_iterations=1, divergence_factor=1e3, unroll=unroll).status) == DIVERGED
    with pytest.raises(ValueError, match="divergence_factor"):
        iterate(grow, jnp.abs, jnp.float32(1.0), threshold=1e-9, max_iterations=10, divergence_factor=0.5)


def test_step_receives_the_global_iteration_index():
    out = iterate(lambda i, s: s + i, lambda s: jnp.float32(1.0), jnp.int32(0), threshold=0.0,
                  max_iterations=12, inner_iterations=4)
    assert int(out.state) == sum(range(12))


def test_jit_and_traced_threshold():
    f = jax.jit(lambda thr: _halving(threshold=thr, max_iterations=100, inner_iterations=1).n_iters)
    assert int(f(1e-3)) == 10 and int(f(1e-6)) == 20


def test_vmap_equals_loop():
    thresholds = jnp.array([1e-1, 1e-3, 1e-6])
    batched = jax.vmap(lambda t: _halving(threshold=t, max_iterations=64, inner_iterations=2))(thresholds)
    for i, t in enumerate(thresholds):
        single = _halving(threshold=t, max_iterations=64, inner_iterations=2)
        assert int(batched.n_iters[i]) == int(single.n_iters)
        np.testing.assert_array_equal(batched.state[i], single.state)
        np.testing.assert_array_equal(batched.errors[i], single.errors)


def test_unroll_matches_while_loop_and_is_differentiable():
    def solve(a, unroll):
        # Fixed point of x = a x / 2 + 1 is x* = 1 / (1 - a/2); d x*/da = 1/2 / (1 - a/2)^2.
        return iterate(lambda i, x: 0.5 * a * x + 1.0, lambda x: jnp.abs(0.5 * a * x + 1.0 - x), 0.0,
                       threshold=1e-6, max_iterations=200, inner_iterations=5, unroll=unroll)

    a = 0.8
    w, u = solve(a, False), solve(a, True)
    assert int(w.n_iters) == int(u.n_iters)
    np.testing.assert_allclose(w.state, u.state, rtol=1e-6)
    np.testing.assert_array_equal(w.errors, u.errors)
    grad = jax.grad(lambda a: solve(a, True).state)(a)
    np.testing.assert_allclose(grad, 0.5 / (1 - a / 2) ** 2, rtol=1e-4)


def test_callback_sees_each_block():
    seen = []
    out = iterate(lambda i, x: 0.5 * x, jnp.abs, jnp.float32(1.0), threshold=1e-3, max_iterations=100,
                  inner_iterations=5, callback=lambda it, err: seen.append((int(it), float(err))))
    jax.block_until_ready(out)
    jax.effects_barrier()
    assert [it for it, _ in seen] == [5, 10]
    np.testing.assert_allclose(seen[-1][1], 2.0**-10)


@pytest.mark.parametrize("kw", [dict(max_iterations=0), dict(inner_iterations=0),
                                dict(min_iterations=200), dict(threshold=-1.0)])
def test_bad_bounds_are_rejected(kw):
    args = dict(threshold=1e-3, max_iterations=100, inner_iterations=1)
    args.update(kw)
    with pytest.raises(ValueError, match=next(iter(kw))):
        iterate(lambda i, x: x, jnp.abs, 1.0, **args)


@pytest.mark.parametrize("differentiable", [False, True])
def test_update_if_is_a_conditional_update(differentiable):
    x = (jnp.arange(3.0), jnp.float32(2.0))
    double = lambda s: (2 * s[0], s[1] + 1)  # noqa: E731
    taken = update_if(jnp.bool_(True), double, x, differentiable=differentiable)
    kept = jax.jit(lambda p: update_if(p, double, x, differentiable=differentiable))(jnp.bool_(False))
    np.testing.assert_array_equal(taken[0], [0, 2, 4])
    np.testing.assert_array_equal(taken[1], 3.0)
    np.testing.assert_array_equal(kept[0], [0, 1, 2])
    np.testing.assert_array_equal(kept[1], 2.0)
    # under vmap each element gets its own branch (elements whose predicate is false keep their operand)
    xs = jnp.arange(4.0)
    out = jax.vmap(lambda p, v: update_if(p, lambda t: t * 10, v, differentiable=differentiable))(
        jnp.array([True, False, True, False]), xs)
    np.testing.assert_array_equal(out, [0.0, 1.0, 20.0, 3.0])


def test_update_if_differentiable_has_reverse_gradients():
    grad = jax.grad(lambda v: update_if(v > 0, lambda t: t ** 2, v, differentiable=True))
    assert float(grad(3.0)) == 6.0 and float(grad(-3.0)) == 1.0


def _halving_member(threshold, axis_name=None):
    out = iterate(lambda i, x, active=True: 0.5 * x, jnp.abs, jnp.float32(1.0), threshold=threshold, max_iterations=64,
                  inner_iterations=2, axis_name=axis_name)
    return out, any_member(threshold > 1e-2, axis_name)


def test_batch_aware_members_see_their_batch_and_match_a_loop():
    solve = batch_aware(_halving_member)
    thresholds = jnp.array([1e-1, 1e-3, 1e-6])
    batched, anywhere = jax.jit(jax.vmap(solve))(thresholds)
    assert np.all(np.asarray(anywhere))   # one member's predicate holds: all of them see it
    for i, t in enumerate(thresholds):
        single, alone = solve(t)
        assert bool(alone) == bool(t > 1e-2)
        # a member that is done keeps its state while the others go on: exactly the loop's answers
        assert int(batched.n_iters[i]) == int(single.n_iters) == int(np.ceil(-np.log2(t) / 2) * 2)
        np.testing.assert_array_equal(batched.state[i], single.state)
        np.testing.assert_array_equal(batched.errors[i], single.errors)
        assert bool(batched.converged[i])


@pytest.mark.slow
def test_batch_aware_nested_batches_do_not_see_each_other():
    solve = batch_aware(_halving_member)
    thresholds = jnp.array([[1e-1, 1e-3], [1e-4, 1e-6]])
    out, anywhere = jax.vmap(jax.vmap(solve))(thresholds)
    np.testing.assert_array_equal(anywhere, [[True, True], [False, False]])
    np.testing.assert_array_equal(out.n_iters, [[4, 10], [14, 20]])
    # an unbatched argument next to a batched one
    shifted = jax.vmap(batch_aware(lambda t, x0, axis_name=None: iterate(
        lambda i, x, active=True: 0.5 * x, jnp.abs, x0, threshold=t, max_iterations=64,
        axis_name=axis_name).n_iters),
        in_axes=(0, None))(jnp.array([1e-1, 1e-3]), jnp.float32(4.0))
    np.testing.assert_array_equal(shifted, [10, 20])


def test_batch_aware_finished_members_are_inactive():
    # the step learns which members are done, so that they can stay out of batch-wide decisions: each
    # member counts the steps at which some member of the batch is inactive
    def member(threshold, axis_name=None):
        def step(i, state, active=True):
            x, seen = state
            return 0.5 * x, seen + jnp.int32(any_member(~active, axis_name))
        return iterate(step, lambda s: jnp.abs(s[0]), (jnp.float32(1.0), jnp.int32(0)), threshold=threshold,
                       max_iterations=64, inner_iterations=2, axis_name=axis_name).state[1]

    # the first member is done after 4 steps; the second sees it inactive for its steps 5 to 20
    np.testing.assert_array_equal(jax.vmap(batch_aware(member))(jnp.array([1e-1, 1e-6])), [0, 16])
