"""The one fixed-point driver that every iterative solver in jaxopt_lab runs on.

A solver supplies ``step(iteration, state) -> state`` and ``error(state) -> scalar``. The driver runs
``inner_iterations`` steps per block with ``lax.scan`` and evaluates the error once per block, inside a
``lax.while_loop`` that stops when

    error < threshold  and  iteration >= min_iterations,   or   iteration >= max_iterations,
    or the error is not finite,   or (optionally) the error has grown ``divergence_factor``-fold above the
    smallest error seen so far.

Why it stopped is the output's ``status``, an int32 decided inside the loop (so it jits and vmaps):
``CONVERGED`` (0), ``MAX_ITERATIONS`` (1, the budget ran out first), ``NONFINITE`` (2, the error became
NaN or inf: a NaN input, an overflow) or ``DIVERGED`` (3, the growth test above). ``converged`` is the
derived ``status == CONVERGED``; :data:`STATUS_NAMES` maps a code to its name.

The per-block errors go into a preallocated trace of length ``ceil(max_iterations / inner_iterations)``,
filled with ``-1`` where no block ran (ott-jax's convention), so the output has a static shape and the
whole loop jits and vmaps. Under ``vmap`` finished problems keep their state (JAX selects the old carry
for elements whose predicate is false), so a batch of problems gives the same answers as a Python loop.

Batch-aware solvers: under a plain ``vmap`` every member of a batch decides for itself, so a conditional
update inside a step (:func:`update_if`) runs for the whole batch whenever one member needs it, yet only
that member keeps the result. :func:`batch_aware` lets a solver see its batch instead: it runs as one
member of a ``vmap`` with a named axis, :func:`any_member` turns a per-member condition into a batch-wide
one, and ``iterate(..., axis_name=...)`` keeps finished members' answers as a loop over them would.

``while_loop`` cannot be reverse-differentiated; ``unroll=True`` runs the same blocks as a ``lax.scan``
over all blocks with the state frozen after convergence, which is differentiable end to end (the
"unrolled" gradient). Solvers that want implicit gradients wrap the driver in a ``custom_vjp``.

Modelled on ott-jax's ``ott/math/fixed_point_loop.py``; written for this project.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

__all__ = ["LoopOutput", "any_member", "batch_aware", "iterate", "num_blocks", "update_if",
           "CONVERGED", "MAX_ITERATIONS", "NONFINITE", "DIVERGED", "STATUS_NAMES"]

State = Any

CONVERGED, MAX_ITERATIONS, NONFINITE, DIVERGED = 0, 1, 2, 3
STATUS_NAMES = ("converged", "max_iterations", "nonfinite", "diverged")


class LoopOutput(NamedTuple):
    """Result of :func:`iterate`.

    Attributes:
      state: the final solver state.
      errors: per-block error trace, shape ``(num_blocks,)``; ``-1`` where no block ran.
      n_iters: number of steps taken, a multiple of ``inner_iterations`` (the last block runs whole, so
        up to ``inner_iterations - 1`` steps past ``max_iterations`` when it does not divide evenly).
      status: int32 reason for stopping (module docstring: ``CONVERGED``, ``MAX_ITERATIONS``,
        ``NONFINITE``, ``DIVERGED``).
    """

    state: State
    errors: jax.Array
    n_iters: jax.Array
    status: jax.Array

    @property
    def converged(self) -> jax.Array:
        """``error < threshold`` was reached with ``n_iters >= min_iterations``."""
        return self.status == CONVERGED


def num_blocks(max_iterations: int, inner_iterations: int) -> int:
    """Length of the preallocated error trace."""
    return -(-max_iterations // inner_iterations)


def update_if(pred: jax.Array, fn: Callable[[State], State], operand: State, *,
              differentiable: bool = False) -> State:
    """``fn(operand)`` where ``pred`` holds, else ``operand``: a conditional update of a loop's state.

    The same result as ``lax.cond(pred, fn, lambda x: x, operand)``, written as a ``while_loop`` of zero
    or one trips. Why: XLA:CPU copies every buffer that a ``cond`` inside a loop passes through unchanged
    -- for a 2000 x 2000 float32 Sinkhorn kernel about 4 ms per call, three matrix-vector products' worth
    -- while a ``while_loop`` updates its carry in place. Under ``vmap`` the update runs when any element's
    ``pred`` holds, and elements whose ``pred`` is false keep their operand (a select, not a cond that
    computes both branches for everyone). ``while_loop`` is not reverse-differentiable, so
    ``differentiable=True`` (e.g. inside an unrolled loop) uses ``lax.cond`` instead. Pass everything
    ``fn`` reads through ``operand``: under ``vmap``, batched values that ``fn`` closes over were measured
    to make a batched Sinkhorn loop ~9x slower.
    """
    if differentiable:
        return jax.lax.cond(pred, fn, lambda x: x, operand)
    _, out = jax.lax.while_loop(lambda c: c[0], lambda c: (jnp.zeros_like(c[0]), fn(c[1])),
                                (jnp.asarray(pred, bool), operand))
    return out


def any_member(pred: jax.Array, axis_name: Optional[Any]) -> jax.Array:
    """``pred`` for a solver run alone; under ``vmap(..., axis_name=axis_name)`` whether it holds for any
    member of the batch (the same, unbatched, value for all of them)."""
    if axis_name is None:
        return pred
    return jax.lax.psum(jnp.int32(pred), axis_name) > 0


def batch_aware(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn(*args, axis_name=None)`` so that under ``jax.vmap`` it runs as
    ``vmap(partial(fn, axis_name=name), axis_name=name)``: each member sees the batch through ``name``
    (:func:`any_member`, ``iterate(..., axis_name=name)``). Called unbatched, it is ``fn(*args)``.

    Built on ``jax.custom_batching.custom_vmap``, which has no reverse-mode rule: wrap only code that is
    not differentiated (a solve inside ``lax.custom_root``, or behind a ``custom_vjp``). Every output is
    batched.
    """

    @jax.custom_batching.custom_vmap
    def wrapped(*args):
        return fn(*args)

    @wrapped.def_vmap
    def _batched(axis_size, in_batched, *args):
        del axis_size
        name = object()   # a fresh axis name: nested batches do not see each other
        # Flat leaves: in_axes given as a pytree would not survive every pytree class (None is an
        # empty subtree).
        leaves, tree = jax.tree.flatten(args)
        batched = jax.tree.leaves(in_batched)
        assert len(batched) == len(leaves), (len(batched), len(leaves))

        def member(*leaves):
            return fn(*jax.tree.unflatten(tree, leaves), axis_name=name)

        out = jax.vmap(member, in_axes=[0 if b else None for b in batched], axis_name=name)(*leaves)
        return out, jax.tree.map(lambda _: True, out)

    return functools.wraps(fn)(wrapped)


def _validate(threshold, max_iterations, min_iterations, inner_iterations, divergence_factor=None):
    if divergence_factor is not None and not (isinstance(divergence_factor, (int, float))
                                              and divergence_factor > 1):
        raise ValueError(f"divergence_factor must be None or a number > 1, got {divergence_factor!r}")
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations must be an int >= 1, got {max_iterations!r}")
    if not isinstance(inner_iterations, int) or inner_iterations < 1:
        raise ValueError(f"inner_iterations must be an int >= 1, got {inner_iterations!r}")
    if not isinstance(min_iterations, int) or not 0 <= min_iterations <= max_iterations:
        raise ValueError(
            f"min_iterations must be an int in [0, max_iterations={max_iterations}], got {min_iterations!r}")
    if isinstance(threshold, (int, float)) and not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")


def iterate(
    step: Callable[[jax.Array, State], State],
    error: Callable[[State], jax.Array],
    init_state: State,
    *,
    threshold: float | jax.Array,
    max_iterations: int,
    min_iterations: int = 0,
    inner_iterations: int = 10,
    unroll: bool = False,
    callback: Optional[Callable[[Any, Any], None]] = None,
    axis_name: Optional[Any] = None,
    divergence_factor: Optional[float] = None,
) -> LoopOutput:
    """Iterate ``step`` from ``init_state`` until ``error(state) < threshold`` (see module docstring).

    Args:
      step: ``(iteration, state) -> state``; ``iteration`` is the int32 index of the step being taken.
      error: ``state -> scalar``; evaluated after each block of ``inner_iterations`` steps.
      init_state: a pytree.
      threshold: convergence tolerance on ``error`` (may be traced).
      max_iterations, min_iterations, inner_iterations: static loop bounds.
      unroll: run a reverse-differentiable ``lax.scan`` over all blocks instead of a ``while_loop``.
      callback: optional host function ``(iteration, error)`` called after every block through
        ``jax.debug.callback`` (for progress display; never print inside a kernel).
      axis_name: run as one member of a batch mapped with this axis name (see :func:`batch_aware`):
        blocks run while any member runs -- the loop's predicate is the same for all members, so a
        step may take batch-wide decisions -- and a member that is done keeps its state, error trace
        and iteration count (a loop over the members one at a time gives the same answers). The step
        is then called as ``step(iteration, state, active)``: ``active`` is False once the member is
        done (the steps it still runs are discarded), so that it stays out of batch-wide decisions
        (``any_member(pred & active, axis_name)``) -- a diverged member would otherwise vote forever.
        Ignored with ``unroll=True``.
      divergence_factor: stop with status ``DIVERGED`` once the error exceeds this multiple of the
        smallest error seen so far (``None``: never; a static number > 1).

    Example:
      >>> import jax.numpy as jnp
      >>> out = iterate(lambda i, x: 0.5 * x, lambda x: jnp.abs(x), jnp.float32(1.0),
      ...               threshold=1e-3, max_iterations=100, inner_iterations=1)
      >>> int(out.n_iters), bool(out.converged), STATUS_NAMES[int(out.status)]
      (10, True, 'converged')
    """
    _validate(threshold, max_iterations, min_iterations, inner_iterations, divergence_factor)
    n_blocks = num_blocks(max_iterations, inner_iterations)
    errors0 = -jnp.ones((n_blocks,), dtype=jnp.result_type(float))

    def run_block(block, state, *member):
        # ``member``: (active,) when running as a member of a named batch (see ``axis_name``)
        def body(s, i):
            return step(block * inner_iterations + i, s, *member), None

        state, _ = jax.lax.scan(body, state, jnp.arange(inner_iterations, dtype=jnp.int32))
        err = jnp.asarray(error(state), dtype=errors0.dtype)
        if callback is not None:
            jax.debug.callback(callback, (block + 1) * inner_iterations, err)
        return state, err

    def block_status(block, err, best):
        # (status after this block, done): the first reason that applies, MAX_ITERATIONS if none does
        n_iters = (block + 1) * inner_iterations
        status = jnp.where(~jnp.isfinite(err), NONFINITE,
                           jnp.where((err < threshold) & (n_iters >= min_iterations), CONVERGED,
                                     MAX_ITERATIONS))
        if divergence_factor is not None:
            status = jnp.where((status == MAX_ITERATIONS) & (err > divergence_factor * best), DIVERGED, status)
        status = status.astype(jnp.int32)
        return status, (status != MAX_ITERATIONS) | (n_iters >= max_iterations)

    inf = jnp.asarray(jnp.inf, errors0.dtype)
    if axis_name is not None and not unroll:
        return _iterate_member(run_block, block_status, init_state, errors0, n_blocks, inner_iterations,
                               axis_name)

    if not unroll:
        def cond(carry):
            block, _, _, done, _, _ = carry
            return (~done) & (block < n_blocks)

        def body(carry):
            block, state, errors, _, _, best = carry
            state, err = run_block(block, state)
            status, done = block_status(block, err, best)
            return block + 1, state, errors.at[block].set(err), done, status, jnp.minimum(best, err)

        init = (jnp.int32(0), init_state, errors0, jnp.bool_(False), jnp.int32(MAX_ITERATIONS), inf)
        block, state, errors, _, status, _ = jax.lax.while_loop(cond, body, init)
        return LoopOutput(state, errors, block * inner_iterations, status)

    def scan_body(carry, block):
        state, done, status, n_iters, best = carry
        new_state, err = run_block(block, state)
        # Frozen once done: later blocks recompute but keep the converged state, so the gradient is
        # that of the loop that stopped.
        state = jax.tree.map(lambda new, old: jnp.where(done, old, new), new_state, state)
        blk_status, blk_done = block_status(block, err, best)
        err = jnp.where(done, -1.0, err).astype(errors0.dtype)
        n_iters = jnp.where(done, n_iters, (block + 1) * inner_iterations)
        status = jnp.where(done, status, blk_status)
        best = jnp.where(done, best, jnp.minimum(best, err))
        return (state, done | blk_done, status, n_iters, best), err

    init = (init_state, jnp.bool_(False), jnp.int32(MAX_ITERATIONS), jnp.int32(0), inf)
    (state, _, status, n_iters, _), errors = jax.lax.scan(
        scan_body, init, jnp.arange(n_blocks, dtype=jnp.int32))
    return LoopOutput(state, errors, n_iters, status)


def _iterate_member(run_block, block_status, init_state, errors0, n_blocks, inner_iterations, axis_name):
    """The ``while_loop`` of :func:`iterate` for one member of the batch named ``axis_name``."""

    def cond(carry):
        block, _, _, done, _, _, _ = carry
        return any_member(~done, axis_name) & (block < n_blocks)

    def body(carry):
        block, state, errors, done, status, blocks, best = carry
        new_state, err = run_block(block, state, ~done)
        new_status, new_done = block_status(block, err, best)

        def keep(old, new):   # a finished member keeps what it had
            return jnp.where(done, old, new)

        return (block + 1, jax.tree.map(keep, state, new_state), keep(errors, errors.at[block].set(err)),
                done | new_done, keep(status, new_status), keep(blocks, block + 1),
                keep(best, jnp.minimum(best, err)))

    init = (jnp.int32(0), init_state, errors0, jnp.bool_(False), jnp.int32(MAX_ITERATIONS), jnp.int32(0),
            jnp.asarray(jnp.inf, errors0.dtype))
    _, state, errors, _, status, blocks, _ = jax.lax.while_loop(cond, body, init)
    return LoopOutput(state, errors, blocks * inner_iterations, status)
