"""Run by test_two_process.py: ``python _two_process.py PORT NUM_PROCESSES PROCESS_ID DEVICES_PER_PROCESS``
(NUM_PROCESSES = 1: one process alone). Trains the small LLaMA a few steps on a (data=2, fsdp=2) mesh
spanning every process's devices; process 0 prints the losses as one JSON line."""

import json
import os
import sys

port, n_proc, proc_id, local = (int(a) for a in sys.argv[1:5])
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={local}"
sys.path.insert(0, os.path.dirname(__file__))

import jax  # noqa: E402

jax.config.update("jax_cpu_collectives_implementation", "gloo")

from jaxopt_lab import train  # noqa: E402

if n_proc > 1:
    train.distributed.initialize(f"127.0.0.1:{port}", n_proc, proc_id, timeout_s=120)

import numpy as np  # noqa: E402

import _llama  # noqa: E402

assert len(jax.devices()) == 4, jax.devices()
loss_fn, params, tokens = _llama.problem()
eng = _llama.engine("adam", train.make_mesh(2, 2), loss_fn, tokens)
state, metrics = eng.run(eng.init(params), jax.random.key(1), 0, 5)
losses = np.asarray(metrics["loss"].addressable_data(0)).tolist()
if jax.process_index() == 0:
    print("RESULT " + json.dumps(losses), flush=True)
