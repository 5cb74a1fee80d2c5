"""Run by test_multiprocess.py with 4 simulated CPU devices: m-SAM (num_chunks=4) on one device and on a
(data=4) mesh, where each data shard perturbs with its own chunk's gradient (shard_map); prints one JSON
line (RESULT ...) with the per-step losses, whether shard_map is used and the all-gathers of the sharded step."""

import json
import os
import re
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxopt_lab import optim, train  # noqa: E402

import _llama  # noqa: E402

STEPS, CHUNKS = 6, 4
loss_fn, params, tokens = _llama.problem()
key = jax.random.key(1)
out = {"losses": {}}
for label, mesh in (("one", train.make_mesh(1, 1, jax.devices()[:1])), ("data4", train.make_mesh(4, 1))):
    tx = optim.get("m_sam", learning_rate=3e-3, rho=0.05, num_chunks=CHUNKS)
    eng = train.Engine(loss_fn, tx, train.batches.token_windows(tokens.shape[0], _llama.BATCH, _llama.SEQ_LEN),
                       tokens, mesh=mesh, num_chunks=CHUNKS)
    state = eng.init(params)
    if label == "data4":
        eng.run(state, key, 0, STEPS)  # compiles
        lowered = eng._runs[STEPS].lower(eng.init(params), key, jnp.int32(0), eng._data)
        out["shard_map"] = bool(re.search(r"manual_computation|SPMDFullToShardShape", lowered.as_text()))
        # all-gathers of the compiled step and their result shapes: one of the batch's (batch, seq) shape
        # would collect the other shards' rows
        out["all_gathers"] = re.findall(r"= (\S+\[[0-9,]*\])\S* all-gather", lowered.compile().as_text())
        state = eng.init(params)
    _, metrics = eng.run(state, key, 0, STEPS)
    out["losses"][label] = np.asarray(metrics["loss"]).tolist()
print("RESULT " + json.dumps(out))
