"""The docstring examples of the curvature modules run and print what they claim."""

import doctest
import importlib

import jax
import jax.numpy as jnp
import optax
import pytest

# (imported by path: the package re-exports the aliases shampoo, mfac, ... under the modules' names)
MODULES = ["hessian", "roots", "shampoo", "mfac", "psgd", "psgd_lra", "fosi", "cubic_newton", "oasis", "soap"]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(f"jaxopt_lab.optim.curvature.{name}")
    result = doctest.testmod(module, extraglobs={"jax": jax, "jnp": jnp, "optax": optax},
                             optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
