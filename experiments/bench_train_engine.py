"""The training engine's cost: its step against a minimal hand-written jitted Adam step, and the
per-device optimizer-state bytes under FSDP sharding.

1. **Step time** (one process, one device, side by side): ``cfg.chunk`` steps of the small LLaMA of
   ``jaxopt_lab.models`` on byte windows, as one jitted ``lax.scan``, through :class:`jaxopt_lab.train.Engine`
   with the registry's ``adam`` vs a hand-written scan of the same steps (same batches, Adam's update
   written out in ``jax.numpy``). Timed alternately ``cfg.repeats`` times, state threaded as in a run;
   summary ``step_ratio`` = median engine chunk / median hand-written chunk (target <= 1.03), compile
   times apart (``compile_s_engine``, ``compile_s_hand``), and ``max_loss_rel_diff`` (the two compute
   the same losses).
2. **State bytes** (a subprocess with ``cfg.devices`` simulated CPU devices): for each optimizer of
   ``cfg.sharded``, the optimizer-state bytes held by one device on the mesh ``(data=1, fsdp=devices)``
   over those on one device, measured from ``addressable_shards`` (``bytes_ratio_<name>``; target <= 0.13
   at 8 devices).
"""

from __future__ import annotations

import inspect
import json
import os
import statistics
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab import data, models, optim, train
from jaxopt_lab.lab import Each, OneOf, Range

CONFIG_SPEC = {
    "lm_preset": OneOf(["tiny", "mini", "base", "small"]),
    "seq_len": Range(2, integer=True),
    "batch_size": Range(1, integer=True),
    "chunk": Range(1, integer=True),
    "repeats": Range(1, integer=True),
    "devices": Range(1, integer=True),
    "learning_rate": Range(0.0, open_low=True),
    "sharded": Each(OneOf(optim.names)),
}

CONFIG_DEFAULTS = {
    "seed": (0, "seed of the initialisation, the corpus and the batches"),
    "lm_preset": ("tiny", "models.LlamaConfig preset of the timed model"),
    "seq_len": (64, "context length in bytes"),
    "batch_size": (16, "windows per step"),
    "chunk": (20, "steps per timed jitted chunk (one lax.scan)"),
    "repeats": (9, "timed chunks of each side, alternating; the medians are compared"),
    "learning_rate": (1e-3, "Adam's learning rate (both sides)"),
    "devices": (8, "simulated CPU devices of the FSDP state-bytes measurement (mesh data=1, fsdp=devices)"),
    "sharded": (("adam", "galore", "smmf"), "registered optimizers whose per-device state bytes are measured"),
}
TARGET_STEP_RATIO = 1.03
TARGET_BYTES_RATIO = 0.13


def problem(cfg):
    config = getattr(models.LlamaConfig, cfg.lm_preset)(max_seq_len=cfg.seq_len)
    apply_fn, init_fn = models.functional_init(lambda rngs: models.Llama(config, rngs=rngs))
    tokens = jnp.asarray(data.byte_corpus(max_bytes=200_000, seed=cfg.seed), jnp.int32)

    def loss_fn(params, batch):
        return models.cross_entropy(apply_fn(params, batch[0]), batch[1])

    return config, loss_fn, init_fn(jax.random.key(cfg.seed)), tokens


def hand_written_adam(loss_fn, cfg, b1=0.9, b2=0.999, eps=1e-8):
    """The minimal jitted chunk: Adam written out, batches drawn as the engine draws them."""

    @jax.jit
    def run(params, m, v, count, key, start, tokens):  # tokens an argument, as the engine's data is
        def body(carry, step):
            params, m, v, count = carry
            batch = data.sample_lm_batch(jax.random.fold_in(key, step), tokens, cfg.batch_size, cfg.seq_len)
            loss, g = jax.value_and_grad(loss_fn)(params, batch)
            count = count + 1
            m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
            v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
            c1, c2 = 1 - b1 ** count, 1 - b2 ** count
            params = jax.tree.map(lambda p, m, v: p - cfg.learning_rate * (m / c1) / (jnp.sqrt(v / c2) + eps),
                                  params, m, v)
            return (params, m, v, count), loss

        (params, m, v, count), losses = jax.lax.scan(
            body, (params, m, v, count), start + jnp.arange(cfg.chunk, dtype=jnp.int32))
        return params, m, v, count, losses

    return run


def time_step(cfg):
    _, loss_fn, params, tokens = problem(cfg)
    key = jax.random.key(1)
    mesh = train.make_mesh(1, 1, jax.devices()[:1])
    engine = train.Engine(loss_fn, optim.get("adam", learning_rate=cfg.learning_rate),
                          train.batches.token_windows(tokens.shape[0], cfg.batch_size, cfg.seq_len), tokens,
                          mesh=mesh)
    hand = hand_written_adam(loss_fn, cfg)
    state = engine.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    carry = (params, zeros, zeros, jnp.float32(0.0))

    t0 = time.perf_counter()
    jax.block_until_ready(engine.run(engine.init(params), key, 0, cfg.chunk))
    compile_engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(hand(*carry, key, 0, tokens))
    compile_hand = time.perf_counter() - t0

    engine_s, hand_s, engine_loss, hand_loss = [], [], [], []
    for r in range(cfg.repeats):  # alternate, so both see the same machine load
        start = r * cfg.chunk
        t0 = time.perf_counter()
        state, metrics = engine.run(state, key, start, cfg.chunk)
        jax.block_until_ready(metrics)
        engine_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        *carry, losses = hand(*carry, key, start, tokens)
        jax.block_until_ready(losses)
        hand_s.append(time.perf_counter() - t0)
        engine_loss.append(np.asarray(metrics["loss"]))
        hand_loss.append(np.asarray(losses))
    engine_loss, hand_loss = np.concatenate(engine_loss), np.concatenate(hand_loss)
    engine_med, hand_med = statistics.median(engine_s), statistics.median(hand_s)
    return {"step_ms_engine": 1e3 * engine_med / cfg.chunk, "step_ms_hand": 1e3 * hand_med / cfg.chunk,
            "step_ratio": engine_med / hand_med, "step_target": TARGET_STEP_RATIO,
            "compile_s_engine": compile_engine - engine_med, "compile_s_hand": compile_hand - hand_med,
            "max_loss_rel_diff": float(np.max(np.abs(engine_loss / hand_loss - 1)))}


def state_bytes(cfg) -> dict:
    """Run in a process with ``cfg.devices`` devices: per-device state bytes, sharded over all of them
    vs on one."""
    config, loss_fn, params, tokens = problem(cfg)
    out = {}
    for name in cfg.sharded:
        takes_rank = "rank" in inspect.signature(optim.info(name).factory).parameters
        kw = {"rank": config.dim // 4} if takes_rank else {}  # GaLore's rank d/4
        per_mesh = []
        for mesh in (train.make_mesh(1, 1, jax.devices()[:1]), train.make_mesh(1, len(jax.devices()))):
            engine = train.Engine(loss_fn, optim.get(name, learning_rate=cfg.learning_rate, **kw),
                                  train.batches.token_windows(tokens.shape[0], cfg.batch_size, cfg.seq_len),
                                  tokens, mesh=mesh)
            per_mesh.append(train.sharding.device_bytes(engine.init(params).opt_state))
        out[f"state_bytes_{name}"] = per_mesh[0]
        out[f"device_state_bytes_{name}"] = per_mesh[1]
        out[f"bytes_ratio_{name}"] = per_mesh[1] / per_mesh[0]
    return out


def run(cfg, ctx):
    ctx.progress(2)
    summary = time_step(cfg)
    ctx.log(1, step_ratio=summary["step_ratio"])
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={cfg.devices}",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, __file__, cfg.to_json()], env=env, capture_output=True, text=True,
                          timeout=1800)
    if done.returncode:
        raise RuntimeError(f"state-bytes subprocess failed: {done.stderr.strip().splitlines()[-1:]}")
    summary.update(json.loads(done.stdout.strip().splitlines()[-1]))
    summary["bytes_target"] = TARGET_BYTES_RATIO
    summary["bytes_ratio_max"] = max(v for k, v in summary.items() if k.startswith("bytes_ratio_"))
    ctx.log(2, bytes_ratio_max=summary["bytes_ratio_max"])
    ctx.summary(**summary)


if __name__ == "__main__":  # the state-bytes subprocess: argv[1] is the config as JSON
    import ml_collections

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print(json.dumps(state_bytes(ml_collections.ConfigDict(json.loads(sys.argv[1])))))
