"""The optimizer registry is complete: every name has a family, a paper and its extra arguments; ours are
registered under their paper names; every optimizer optax ships is present under optax's name; unknown
names get close matches; ``jaxopt-lab list`` prints all of it."""

import contextlib
import io
import re

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxopt_lab import optim
from jaxopt_lab.lab import cli

FAMILIES = {"optax", "sharpness", "lowrank", "factored", "adaptive", "curvature"}

ADAPTIVE = {"adamp", "sgdp", "grams", "mars", "fadam", "diffgrad", "lion_kappa", "sania", "gravity",
            "xgrad"}
# optax.contrib's optimizers (`sam` and `galore` are registered by our own sharpness / lowrank
# modules, which wrap or replace optax.contrib's). Not registered: `dpsgd` (per-example gradients).
OPTAX_CONTRIB = ["acprop", "ademamix", "adopt", "cocob", "dadapt_adamw", "dog", "dowg", "galore",
                 "madgrad", "mechanize", "momo", "momo_adam", "muon", "prodigy", "sam", "schedule_free",
                 "schedule_free_adamw", "schedule_free_sgd", "simplified_ademamix", "sophia"]
# every alias in optax's main namespace (the functions of optax._src.alias), plus the registry's
# own compositions of optax: lookahead, Nesterov SGD
OPTAX_ALIASES = sorted(
    n for n in dir(optax) if not n.startswith("_")
    and getattr(getattr(getattr(optax, n), "func", getattr(optax, n)), "__module__", "")
    == "optax._src.alias")
OPTAX_ALL = OPTAX_ALIASES + OPTAX_CONTRIB + ["lookahead", "sgd_nesterov"]


def test_every_optax_optimizer_is_registered():
    assert len(OPTAX_ALIASES) >= 31  # optax 0.2.8's alias module
    assert not set(OPTAX_ALL) - set(optim.names())


@pytest.mark.parametrize("name", optim.names())
def test_every_name_has_family_paper_and_extra_args(name):
    info = optim.info(name)
    assert info.name == name
    assert info.family in FAMILIES, info.family
    assert isinstance(info.paper, str) and len(info.paper) > 10
    # the contract's extra arguments are grad_fn and value; a family may add its own (m_sam reads
    # chunk_grad_fn), so only require keyword-argument names here
    assert isinstance(info.extra_args, tuple)
    assert all(isinstance(a, str) and a.isidentifier() for a in info.extra_args)
    assert callable(info.factory)


def test_our_adaptive_optimizers_under_their_paper_names():
    assert set(optim.names(family="adaptive")) == ADAPTIVE
    for name in ADAPTIVE:
        info = optim.info(name)
        assert info.source == "jaxopt_lab"
        assert re.search(r"arXiv:\d{4}\.\d{4,5}", info.paper), info.paper
        assert getattr(optim, name) is info.factory  # re-exported from jaxopt_lab.optim
        assert hasattr(optim, f"scale_by_{name}")
    assert optim.info("sania").extra_args == ("value",)
    assert optim.info("xgrad").extra_args == ("grad_fn",)
    assert optim.info("mars").extra_args == ("grad_fn",)  # read only with exact=True


@pytest.mark.parametrize("name", OPTAX_ALL)
def test_optax_own_optimizers_are_registered(name):
    info = optim.info(name)
    assert info.paper


def test_optax_wrappers_are_optax():
    """``get("adam")`` is optax.adam (same updates), not a re-implementation."""
    params = {"w": jnp.array([1.0, -2.0, 0.5])}
    grads = {"w": jnp.array([0.3, -0.1, 2.0])}
    for name, ref in (("adam", optax.adam(1e-2)), ("lion", optax.lion(1e-2)),
                      ("sgd", optax.sgd(1e-2))):
        tx = optim.get(name, learning_rate=1e-2)
        ours, _ = tx.update(grads, tx.init(params), params)
        theirs, _ = ref.update(grads, ref.init(params), params)
        np.testing.assert_array_equal(np.asarray(ours["w"]), np.asarray(theirs["w"]))
        assert optim.info(name).family == "optax" and optim.info(name).source.startswith("optax")


def test_unknown_name_gives_close_matches():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'.*did you mean.*'adam'"):
        optim.get("adamm")
    with pytest.raises(ValueError, match=r"'lion_kappa'"):
        optim.info("lion_kapa")
    with pytest.raises(ValueError, match=r"'grams'"):
        optim.get("gramms", learning_rate=1e-3)


def test_get_rejects_unknown_keyword():
    with pytest.raises(ValueError, match=r"no argument 'rho'.*learning_rate"):
        optim.get("grams", learning_rate=1e-3, rho=0.1)


def test_cli_list_prints_every_optimizer_with_family_extra_args_and_paper():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["list"]) == 0
    text = out.getvalue()
    section = text.split("\noptimizers (name, family, extra args, paper):\n")[1]
    section = section.split("\nreproductions:")[0]
    lines = {line.split()[0]: line for line in section.splitlines() if line.strip()}
    assert set(lines) == set(optim.names())
    for name, line in lines.items():
        info = optim.info(name)
        fields = line.split(None, 3)
        assert fields[1] == info.family
        assert fields[2] == (",".join(info.extra_args) or "-")
        assert fields[3].strip() == info.paper
