"""Run by test_multidevice.py with 8 simulated CPU devices; prints one JSON line of measurements."""

import json
import os
import sys
import tempfile

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402

from jaxopt_lab import optim, train  # noqa: E402
from jaxopt_lab.lab.checkpoint import Checkpointer  # noqa: E402
from jaxopt_lab.lab.run import Context  # noqa: E402

import _llama  # noqa: E402

STEPS = 20
loss_fn, params, tokens = _llama.problem()
key = jax.random.key(1)
devices = jax.devices()
one = train.make_mesh(1, 1, devices[:1])
grid = train.make_mesh(2, 4)
out = {"losses": {}, "bytes": {}}
names = sys.argv[1].split(",")
for name in names:
    per_mesh = {}
    for label, mesh in (("one", one), ("grid", grid)):
        eng = _llama.engine(name, mesh, loss_fn, tokens)
        state, metrics = eng.run(eng.init(params), key, 0, STEPS)
        per_mesh[label] = np.asarray(metrics["loss"]).tolist()
        # largest leaves: per-device bytes vs the whole leaf's bytes, and the replicated remainder
        out["bytes"].setdefault(name, {})[label] = {
            "device": train.sharding.device_bytes(state.opt_state), "total": optim.state_bytes(state.opt_state),
            "replicated": sum(x.nbytes for x in jax.tree.leaves(state.opt_state)
                              if isinstance(x, jax.Array) and x.sharding.is_fully_replicated)}
    out["losses"][name] = per_mesh

if "checkpoint" in sys.argv[2:]:
    # written on (2, 4) after 10 steps, resumed on 1 device and on (4, 2); compared to 20 steps on one mesh
    with tempfile.TemporaryDirectory() as tmp:
        eng = _llama.engine("adam", grid, loss_fn, tokens)
        state, first = eng.run(eng.init(params), key, 0, 10)
        Checkpointer(os.path.join(tmp, "ckpt")).save(10, state)
        for label, mesh in (("one", one), ("grid42", train.make_mesh(4, 2))):
            eng = _llama.engine("adam", mesh, loss_fn, tokens)
            _, restored = Checkpointer(os.path.join(tmp, "ckpt")).restore(eng.init(params))
            _, second = eng.run(restored, key, 10, 10)
            out[f"resumed_{label}"] = np.concatenate([first["loss"], second["loss"]]).tolist()

        # kill + resume on the same mesh through the driver: bit-identical final state
        cfg = ml_collections.ConfigDict({"seed": 0})

        class Killed(Exception):
            pass

        eng = _llama.engine("adam", grid, loss_fn, tokens)  # one engine: compiled once

        def final(run_dir, kill_at=None):
            ctx = Context(run_dir, cfg)
            log = ctx.log
            if kill_at is not None:
                def dying_log(step, **scalars):
                    log(step, **scalars)
                    if step == kill_at:
                        raise Killed
                ctx.log = dying_log
            try:
                state = train.fit(eng, eng.init(params), ctx, steps=STEPS, log_every=5, data_key=key,
                                  checkpoint_every=10, progress=False)
            finally:
                ctx.close()
            return jax.tree.map(np.asarray, state)

        straight = final(os.path.join(tmp, "straight"))
        try:
            final(os.path.join(tmp, "killed"), kill_at=15)
        except Killed:
            pass
        resumed = final(os.path.join(tmp, "killed"))
        out["kill_resume_identical"] = all(
            np.array_equal(a, b) for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)))
print("RESULT " + json.dumps(out))
