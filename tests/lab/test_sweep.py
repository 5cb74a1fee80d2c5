"""lab.sweep: grid x seeds in one vmapped call; equals a loop; sharded over 4 devices equals unsharded."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab.lab import sweep as sweep_lib


def _trial(key, hp):
    # A random quadratic minimised by 30 steps of GD with step size hp["lr"]: output depends on both
    # the key (seed) and the hyperparameters, so any mix-up of axes shows.
    x0 = jax.random.normal(key, (4,))
    x, _ = jax.lax.scan(lambda x, _: (x - hp["lr"] * hp["scale"] * x, None), x0, None, length=30)
    return {"loss": jnp.sum(x ** 2), "x0": x0}


def test_shapes_order_and_equality_with_a_loop():
    grid = {"lr": [0.01, 0.1, 0.3], "scale": [1.0, 2.0]}
    res = sweep_lib.sweep(_trial, seeds=[5, 7], grid=grid)
    assert res.shape == (3, 2, 2)
    assert res.outputs["loss"].shape == (3, 2, 2) and res.outputs["x0"].shape == (3, 2, 2, 4)
    for i, lr in enumerate(grid["lr"]):
        for j, scale in enumerate(grid["scale"]):
            for s, seed in enumerate([5, 7]):
                one = _trial(jax.random.PRNGKey(seed), {"lr": jnp.float32(lr), "scale": jnp.float32(scale)})
                np.testing.assert_allclose(res.outputs["loss"][i, j, s], one["loss"], rtol=1e-6)
                np.testing.assert_array_equal(res.outputs["x0"][i, j, s], one["x0"])
    np.testing.assert_allclose(res.mean()["loss"], res.outputs["loss"].mean(axis=2))
    np.testing.assert_allclose(res.std()["loss"], res.outputs["loss"].std(axis=2))


def test_seed_key_is_the_run_key():
    # ctx.key of a run with seed s is PRNGKey(s); a sweep trial with seed s must see the same key.
    res = sweep_lib.sweep(lambda key, hp: key, seeds=[3])
    np.testing.assert_array_equal(res.outputs[0], jax.random.PRNGKey(3))




@pytest.mark.parametrize("bad", [dict(seeds=0), dict(seeds=2, grid={"lr": []}),
                                 dict(seeds=2, grid={"lr": ["a"]})])
def test_bad_sweeps(bad):
    with pytest.raises(ValueError):
        sweep_lib.prepare(_trial, **bad)


SHARDED_SCRIPT = textwrap.dedent('''
    import json, jax, numpy as np
    from jaxopt_lab.lab.project import load_experiment
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab import sweep
    assert len(jax.devices()) == 4, jax.devices()
    cfg = load_config("configs/quickstart.py", ["train.steps=20", "model.hidden=(16,)"])
    trial = load_experiment("train_classifier").trial(cfg)
    grid = {"optimizer.learning_rate": [1e-3, 3e-3, 1e-2]}
    prepared = sweep.prepare(trial, seeds=2, grid=grid)          # 6 trials, padded to 8
    out = prepared.fn(*prepared.args)
    n_shards = len(out["test_loss"].sharding.device_set)
    sharded = prepared.finish(out)
    plain = sweep.sweep(trial, seeds=2, grid=grid, shard=False)
    print(json.dumps({"n_shards": n_shards, "padded": int(out["test_loss"].shape[0]),
                      "sharded": np.asarray(sharded.outputs["test_loss"]).tolist(),
                      "plain": np.asarray(plain.outputs["test_loss"]).tolist()}))
''')


@pytest.mark.slow
def test_sharded_over_four_devices_equals_unsharded(repo_root):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT], cwd=repo_root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n_shards"] == 4 and out["padded"] == 8
    np.testing.assert_allclose(out["sharded"], out["plain"], rtol=1e-5)
    assert np.asarray(out["sharded"]).shape == (3, 2)


@pytest.mark.slow
def test_cli_sweep_writes_a_run_directory(toy_project, tmp_path, capsys, monkeypatch):
    from jaxopt_lab.lab import cli

    monkeypatch.chdir(toy_project)
    code = cli.main(["sweep", "configs/toy.py", "--seeds", "3", "--grid", "lr=0.1,0.5",
                     "--workdir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "[sweep] part 1/1: 6 trials in one call, compiling…" in out and "part 1/1 done in" in out
    (run_dir,) = (tmp_path / "toy").iterdir()
    rows = json.loads((run_dir / "sweep.json").read_text())
    assert len(rows) == 6 and {r["lr"] for r in rows} == {0.1, 0.5}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["lr=0.1"]["final_mean"] > summary["lr=0.5"]["final_mean"]  # faster decay
    assert (run_dir / "figures" / "final.png").exists()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    # A grid value outside the experiment's CONFIG_SPEC is refused before any work.
    assert cli.main(["sweep", "configs/toy.py", "--seeds", "2", "--grid", "lr=0.1,-1",
                     "--workdir", str(tmp_path / "bad")]) == 2
    assert "must be a number > 0" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_plot_labels_are_readable():
    from jaxopt_lab.lab import plots

    assert plots.label("optimizer.learning_rate") == "learning rate"
    assert plots.label("train.warmup_steps") == "warmup steps"  # fallback: last segment, no underscores
