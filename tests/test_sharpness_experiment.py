"""The sharpness experiment's learning-rate schedules, SAM-ON masks and config checks."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import models
from jaxopt_lab.lab.config import ConfigError, load_config_module
from jaxopt_lab.lab.project import load_experiment, project_root
from jaxopt_lab.lab.run import check_experiment

sharpness = load_experiment("sharpness")


def davda54_step_lr(base: float, total_epochs: int, epoch: int) -> float:
    """davda54/sam example/utility/step_lr.py, StepLR.__call__ (lines 7-15), transcribed."""
    if epoch < total_epochs * 3 / 10:
        return base
    if epoch < total_epochs * 6 / 10:
        return base * 0.2
    if epoch < total_epochs * 8 / 10:
        return base * 0.2 ** 2
    return base * 0.2 ** 3


def torch_cosine_annealing(base: float, total_epochs: int, epoch: int) -> float:
    """PyTorch CosineAnnealingLR(T_max=total_epochs, eta_min=0) after ``epoch`` scheduler steps, as
    SamsungLabs/ASAM example_cifar.py steps it once per epoch (closed form of torch's recursion)."""
    return base * (1 + math.cos(math.pi * epoch / total_epochs)) / 2


@pytest.mark.parametrize("schedule, reference", [("step", davda54_step_lr),
                                                 ("cosine", torch_cosine_annealing)])
@pytest.mark.parametrize("epochs", [7, 10, 200])
def test_schedule_matches_the_authors_per_epoch_rate(schedule, reference, epochs):
    steps_per_epoch = 21
    rate = jax.jit(sharpness.learning_rate_schedule(0.05, schedule, epochs, steps_per_epoch))
    steps = np.arange(epochs * steps_per_epoch)
    ours = np.asarray(jax.vmap(rate)(jnp.asarray(steps)))
    expected = np.array([reference(0.05, epochs, s // steps_per_epoch) for s in steps])
    # float32 rounding of the rate: a few ulps of the base rate
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=4 * np.finfo(np.float32).eps * 0.05)
    assert sharpness.learning_rate_schedule(0.05, "constant", epochs, steps_per_epoch) == 0.05


def test_kernel_mask_selects_only_the_cnn_kernels():
    # the parameter tree of jaxopt_lab.models.CNN, abstractly (no weights allocated)
    params = jax.eval_shape(models.functional_init(
        lambda rngs: models.CNN(10, (4, 8), rngs=rngs))[1], jax.random.PRNGKey(0))
    mask = sharpness.kernel_mask(params)
    selected = {jax.tree_util.keystr(path) for path, keep in
                jax.tree_util.tree_leaves_with_path(mask) if keep}
    assert selected == {"['convs'][0]['kernel']", "['convs'][1]['kernel']", "['head']['kernel']"}


@pytest.mark.parametrize("key, value, message", [
    ("schedule", "linear", "'schedule' = 'linear': must be one of 'constant', 'step', 'cosine'"),
    ("budget_seeds", 9, "'budget_seeds' = 9: must be <= seeds = 8"),
    ("budget_epochs", (0,), "'budget_epochs' = (0,): must be a (possibly empty) sequence, each element an "
                            "integer >= 1"),
])
def test_bad_schedule_or_budget_is_named(key, value, message):
    cfg = load_config_module(project_root() / "configs" / "reproduce" / "sam_asam_ranking.py").get_config()
    cfg[key] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_experiment(sharpness, cfg)


@pytest.mark.parametrize("label, field, message", [
    ("sam", "eta", "optimizer 'sam' has no argument 'eta'"),
    ("sgd", "rho", "sgd on the PyTorch-SGD base takes no argument ['rho']"),
])
def test_an_argument_its_optimizer_does_not_take_is_refused(label, field, message):
    """The runtime's check builds every entry (after the import), also sgd on the PyTorch-SGD base."""
    cfg = load_config_module(project_root() / "configs" / "reproduce" / "sam_asam_ranking.py").get_config()
    check_experiment(sharpness, cfg)
    cfg.optimizers[label][field] = 0.1
    with pytest.raises(ConfigError, match=re.escape(f"'optimizers.{label}' = ") + ".*" + re.escape(message)):
        check_experiment(sharpness, cfg)
