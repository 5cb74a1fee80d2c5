"""jaxopt-lab run configs/bench/optim_step_lm.py

Per-step time of every one-gradient optimizer of jaxopt_lab.optim.adaptive against Adam
on the small LM (``models.Llama(LlamaConfig.tiny)``, byte tokens), one jitted training step each,
timed round-robin in one process by the shared ``bench_optim_step`` experiment. The target:
``<label>_ratio_to_reference <= 1.2`` (reference: adam) for each of them. XGrad and exact MARS take a
second gradient (``grad_fn``) by design and are not one-gradient optimizers, so they are not listed.
"""

import ml_collections

# QUICK checks the wiring on the small MLP (an LM compile costs ~10 s of CPU per optimizer)
QUICK = {"model": "mlp", "mlp_hidden": 8, "batch_size": 8, "repeats": 2, "steps_per_call": 2,
         "only": ("grams",)}

# label -> (registry name, keyword arguments): the paper defaults except the learning rate
ONE_GRADIENT = {
    "adamp": ("adamp", {"learning_rate": 1e-3}),
    "sgdp": ("sgdp", {"learning_rate": 0.1}),
    "grams": ("grams", {"learning_rate": 1e-3}),
    "mars": ("mars", {"learning_rate": 3e-3}),
    "fadam": ("fadam", {"learning_rate": 1e-3}),
    "diffgrad": ("diffgrad", {"learning_rate": 1e-3}),
    "lion_kappa": ("lion_kappa", {"learning_rate": 1e-4}),
    "sania": ("sania", {"learning_rate": 1.0}),
    "gravity": ("gravity", {"learning_rate": 0.1}),
}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "bench_optim_step"
    c.seed = 0
    c.model = "lm"
    c.mlp_hidden = 256         # unused for model="lm"
    c.lm_preset = "tiny"       # ~115k parameters: dim 64, 2 layers
    c.seq_len = 64
    c.batch_size = 16
    c.steps_per_call = 20      # training steps per timed call (one lax.scan)
    c.repeats = 15             # timed rounds (round-robin over optimizers); median reported
    c.reference = "adam"
    c.only = ()
    optimizers = {"adam": {"name": "adam", "learning_rate": 1e-3}}
    optimizers.update({label: {"name": name, **kw} for label, (name, kw) in ONE_GRADIENT.items()})
    c.optimizers = ml_collections.ConfigDict(optimizers)
    return c
