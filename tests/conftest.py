"""Shared fixtures: the repository root, a throw-away project with toy experiments."""

import pathlib
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_project_roots(monkeypatch):
    """Each test starts without the project roots that earlier tests' config files made known."""
    from jaxopt_lab.lab import project

    monkeypatch.setattr(project, "_LOADED_ROOTS", [])


@pytest.fixture
def repo_root() -> pathlib.Path:
    return ROOT


TOY_EXPERIMENT = '''
"""Toy: gradient descent x <- (1 - lr) x on ||x||^2, checkpointed every 5 steps."""
import jax, jax.numpy as jnp
from jaxopt_lab.lab import Range, require
CONFIG_SPEC = {"lr": Range(0.0, open_low=True), "steps": Range(1, integer=True)}

def check_config(cfg):
    require(cfg.fail_at_step <= cfg.steps, "fail_at_step", cfg.fail_at_step, f"<= steps = {cfg.steps}")
    if "bad" in cfg.tags:  # a plain ValueError, as a hook might raise: reported like a ConfigError
        raise ValueError(f"tags {cfg.tags!r}: 'bad' is not allowed")

def trial(cfg):
    def fn(key, hp):
        lr = hp.get("lr", cfg.lr)
        x = jax.random.normal(key, (3,))
        x, _ = jax.lax.scan(lambda x, _: (x - lr * x, None), x, None, length=cfg.steps)
        return {"final": jnp.sum(x ** 2)}
    return fn

def run(cfg, ctx):
    if cfg.fail_at_step == 0:
        raise RuntimeError("boom before any step")
    x, start = jax.random.normal(ctx.key, (3,)), 0
    restored = ctx.restore_state(x)
    if restored is not None:
        start, x = restored
    ctx.progress(cfg.steps, start)
    for s in range(start + 1, cfg.steps + 1):
        x = x - cfg.lr * x
        if s == cfg.fail_at_step:
            raise RuntimeError(f"boom at step {s}")
        ctx.log(s, loss=jnp.sum(x ** 2))
        if s % 5 == 0:
            ctx.save_state(s, x)
    ctx.summary(final=jnp.sum(x ** 2))
'''

TOY_CONFIG = '''
"""jaxopt-lab run configs/toy.py"""
import ml_collections
QUICK = {"steps": 3}
def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "toy"
    c.seed = 0
    c.lr = 0.5
    c.steps = 20
    c.fail_at_step = -1
    c.tags = ("a", "b")
    return c
'''

TOY_REPRODUCTION = '''
"""A toy reproduction."""
from jaxopt_lab.lab import Claim
from jaxopt_lab.lab.config import load_config_module
from jaxopt_lab.lab.project import project_root
TITLE = "toy convergence"
CLAIMS = [Claim("converges", "GD with lr 0.5 drives ||x||^2 below 1e-3", "final", "<", 1e-3),
          Claim("not_too_fast", "(a claim that fails on purpose)", "final", ">", 1.0)]
QUICK = {"steps": 2}
def get_config():
    return load_config_module(project_root() / "configs" / "toy.py").get_config()
'''


@pytest.fixture
def toy_project(tmp_path, monkeypatch) -> pathlib.Path:
    """A project root with a toy experiment, its config and a reproduction; JAXOPT_LAB_ROOT points to it."""
    root = tmp_path / "project"
    (root / "experiments").mkdir(parents=True)
    (root / "configs" / "reproduce").mkdir(parents=True)
    (root / "experiments" / "toy.py").write_text(textwrap.dedent(TOY_EXPERIMENT))
    (root / "configs" / "toy.py").write_text(textwrap.dedent(TOY_CONFIG))
    (root / "configs" / "reproduce" / "toy_claim.py").write_text(textwrap.dedent(TOY_REPRODUCTION))
    monkeypatch.setenv("JAXOPT_LAB_ROOT", str(root))
    return root


_REFUSALS_SCRIPT = '''
import json, sys
from jaxopt_lab.lab.config import ConfigError, load_config
out = []
for config, overrides in json.loads(sys.argv[1]):
    try:
        load_config(config, overrides)
        out.append(None)
    except ConfigError as e:
        out.append(str(e))
print(json.dumps({"messages": out, "jax": "jax" in sys.modules}))
'''


@pytest.fixture
def refused_before_import(tmp_path):
    """``check(cases)``: each case ``(config, overrides, fragment)`` -- a config path (or a config file's
    text, written to a temporary file) and ``--set`` overrides -- must be refused by ``load_config`` with
    a one-line ``ConfigError`` containing ``fragment``, all in one fresh process that never imports jax
    (so the refusal costs well under a second). Returns the messages."""
    import json
    import subprocess
    import sys

    def check(cases):
        jobs = []
        for i, (config, overrides, _) in enumerate(cases):
            if "get_config" in str(config):
                path = tmp_path / f"case_{i}.py"
                path.write_text(textwrap.dedent(config))
                config = str(path)
            jobs.append((str(config), list(overrides)))
        done = subprocess.run([sys.executable, "-c", _REFUSALS_SCRIPT, json.dumps(jobs)], capture_output=True,
                              text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads(done.stdout.strip().splitlines()[-1])
        for (config, overrides, fragment), message in zip(cases, result["messages"]):
            assert message is not None, f"{config} {overrides}: accepted, expected a refusal with {fragment!r}"
            assert fragment in message and "\n" not in message, (config, overrides, message)
        assert not result["jax"], "checking these configs imported jax"
        return result["messages"]

    return check
