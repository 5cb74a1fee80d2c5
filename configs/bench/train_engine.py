"""jaxopt-lab run configs/bench/train_engine.py

The training engine's overhead and sharding: engine step / hand-written jitted Adam step on the small
LLaMA (target <= 1.03, compile times apart), and per-device optimizer-state bytes with FSDP over 8
simulated devices / one device for adam, galore and smmf (target <= 0.13).
"""

import ml_collections

QUICK = {"chunk": 5, "repeats": 3, "seq_len": 16, "batch_size": 8}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "bench_train_engine"
    c.seed = 0
    c.lm_preset = "tiny"
    c.seq_len = 64
    c.batch_size = 16
    c.chunk = 20            # steps per timed jitted chunk
    c.repeats = 9
    c.learning_rate = 1e-3
    c.devices = 8
    c.sharded = ("adam", "galore", "smmf")
    return c
