"""The optimizer benchmark's measurements: steps-to-target, targets, best learning rate, Dolan–Moré
performance profiles, the AlgoPerf score and the ranking, against hand-computed examples."""

import math

import jax
import numpy as np
import pytest

from jaxopt_lab.lab import ConfigError, load_config
from jaxopt_lab.lab.project import load_experiment, project_root
from jaxopt_lab.lab.run import check_experiment

bench = load_experiment("optimizer_benchmark")
INF = math.inf


def test_steps_to_target_is_the_first_eval_at_or_below_it_and_nan_never_counts():
    steps = np.array([10, 20, 30, 40, 50])
    curve = np.array([3.0, 2.0, np.nan, 0.5, 0.4])
    assert bench.steps_to_target(curve, steps, 1.0) == 40
    assert bench.steps_to_target(curve, steps, 2.0) == 20          # reaching it exactly counts
    assert bench.steps_to_target(curve, steps, 0.1) == INF         # never
    assert bench.steps_to_target(np.full(5, np.nan), steps, 10.0) == INF  # diverged
    batch = bench.steps_to_target(np.stack([curve, curve[::-1]]), steps, 1.0)
    np.testing.assert_array_equal(batch, [40, 10])


def test_reference_target_is_the_best_median_at_the_fraction_of_the_budget():
    eval_steps = np.array([25, 50, 75, 100])
    # (2 learning rates, 3 seeds, 4 evals); at step 75 (75% of 100) the medians over seeds are 0.5 and 0.3
    curves = np.array([[[9, 9, 0.4, 0], [9, 9, 0.5, 0], [9, 9, 0.6, 0]],
                       [[9, 9, 1.0, 0], [9, 9, 0.3, 0], [9, 9, 0.2, 0]]], float)
    assert bench.reference_target(curves, eval_steps, 0.75) == pytest.approx(0.3)
    assert bench.reference_target(curves, eval_steps, 0.7) == pytest.approx(9.0)  # last eval <= 70: step 50
    curves[1, :, 2] = np.nan                                     # lr 1 diverged: lr 0 sets the target
    assert bench.reference_target(curves, eval_steps, 0.75) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="diverged"):
        bench.reference_target(np.full((2, 3, 4), np.nan), eval_steps, 0.75)


def test_best_learning_rate_fewest_median_steps_then_lowest_final_metric():
    steps = np.array([[INF, INF, INF], [30, 40, INF], [30, 40, 50], [20, INF, INF]])
    final = np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2], [0.3, 0.3, 0.3], [np.nan, 0.1, 0.1]])
    assert bench.best_learning_rate(steps, final) == 1     # medians inf, 40, 40, inf: tie -> lower final
    assert bench.best_learning_rate(np.full((2, 3), INF), np.array([[1.0] * 3, [0.5, np.nan, 0.5]])) == 1


# A hand-computed example: 3 problems x 3 solvers.
COSTS = np.array([[10.0, 20.0, INF],     # ratios 1, 2, inf
                  [30.0, 15.0, 45.0],    # ratios 2, 1, 3
                  [INF, INF, INF]])      # nobody solves it: inf for all


def test_performance_ratios_and_profile_match_the_hand_computed_example():
    ratios = bench.performance_ratios(COSTS)
    np.testing.assert_array_equal(ratios, [[1, 2, INF], [2, 1, 3], [INF, INF, INF]])
    profile = bench.performance_profile(ratios, np.array([1.0, 1.5, 2.0, 3.0, 100.0]))
    np.testing.assert_allclose(profile, np.array([[1, 1, 0], [1, 1, 0], [2, 2, 0], [2, 2, 1], [2, 2, 1]]) / 3)


def algoperf_scores(costs, max_tau, num_points):
    """A float64 numpy transcription of AlgoPerf's own scoring, mlcommons/algorithmic-efficiency
    scoring/performance_profile.py (commit c668c1ce): ``compute_performance_profiles`` divides each
    workload's times by the fastest (``df.div(df.min(axis=0), axis=1)``), takes
    ``rho(tau) = (r <= tau).sum(axis=1) / NUM_WORKLOADS`` on ``np.linspace(min_tau=1, max_tau, num_points)``,
    and ``compute_leaderboard_score(normalize=True)`` integrates it with ``np.trapz`` over the taus and
    divides by ``max_tau - min_tau``. Rows: solvers (submissions), columns: problems (workloads)."""
    df = np.asarray(costs, np.float64).T
    with np.errstate(invalid="ignore"):
        r = df / df.min(axis=0)                      # a workload nobody solves: inf / inf = nan
    points = np.linspace(1.0, max_tau, num=num_points)
    perf = np.stack([(r <= tau).sum(axis=1) / df.shape[1] for tau in points], axis=1)
    return np.trapezoid(perf, x=points, axis=1) / (points.max() - points.min())


def test_profile_score_is_the_normalised_area_under_the_profile_as_algoperf_scores_it():
    ratios = bench.performance_ratios(COSTS)
    scores = bench.profile_score(ratios, 4.0)
    np.testing.assert_allclose(scores, [5 / 9, 5 / 9, 1 / 9])   # ((4-1)+(4-2))/(3*3), ..., (4-3)/(3*3)
    # AlgoPerf's trapezoid on a grid of taus converges to our exact area (error <= a grid step / 3)
    np.testing.assert_allclose(algoperf_scores(COSTS, 4.0, 30_001), scores, atol=1e-4)
    costs = np.random.default_rng(0).lognormal(size=(8, 5))       # 8 workloads, 5 solvers
    costs[costs > 3.0] = INF                                      # some misses
    np.testing.assert_allclose(algoperf_scores(costs, 4.0, 30_001),
                               bench.profile_score(bench.performance_ratios(costs), 4.0), atol=1e-4)


def test_rank_by_score_then_problems_solved_then_name():
    assert bench.rank(["b", "a", "c"], np.array([5 / 9, 5 / 9, 1 / 9]), np.array([2, 2, 1])) == ["a", "b", "c"]
    assert bench.rank(["b", "a", "c"], np.array([0.5, 0.5, 0.9]), np.array([2, 1, 1])) == ["c", "b", "a"]


@pytest.mark.slow  # two compiles of a training scan: seconds
def test_trial_curve_is_the_metric_after_each_interval_of_one_uninterrupted_run():
    cfg = load_config(project_root() / "configs" / "benchmark" / "optimizers.py",
                      ["digits_mlp.hidden=(8,)", "digits_mlp.steps=6", "digits_mlp.eval_every=3"])
    workload = bench.digits_mlp(cfg)
    curve = bench.make_trial(workload, "adam")(jax.random.PRNGKey(0), {"lr": 0.01})["curve"]
    engine = bench.train.Engine(workload.loss, bench.optim.get("adam", learning_rate=0.01), workload.sampler,
                                workload.data)
    init_key, data_key = jax.random.split(jax.random.PRNGKey(0))
    state, _ = engine.pure_run(engine.pure_init(workload.init(init_key)), data_key, 0, 6)
    assert curve.shape == (2,)
    np.testing.assert_allclose(curve[-1], workload.metric(state.params), rtol=1e-5)
    assert curve[-1] < curve[0]


def test_bad_config_is_refused_naming_the_key():
    """Also by the runtime's check, for a config changed after loading (tests/lab/test_rules_sam.py: when
    loading, before the import)."""
    cfg = load_config(project_root() / "configs" / "benchmark" / "optimizers.py")
    check_experiment(bench, cfg)
    for key, value in (("digits_cnn.eval_every", 7), ("exclude", tuple(cfg.optimizers))):
        changed = cfg.copy_and_resolve_references()
        changed.update_from_flattened_dict({key: value})
        with pytest.raises(ConfigError, match=f"'{key}' = "):
            check_experiment(bench, changed)
