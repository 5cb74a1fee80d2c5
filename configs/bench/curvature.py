"""jaxopt-lab run configs/bench/curvature.py

Per-step time of the curvature optimizers (jaxopt_lab.optim.curvature) against Adam on the small LM
(``models.Llama(LlamaConfig.tiny)``, byte tokens), one jitted training step each, timed round-robin in
one process by the shared ``bench_optim_step`` experiment. Every timed call runs 100 consecutive steps
from the initial state, so each method pays its refreshes at its own rate: Shampoo's and PSGD-Kron's
preconditioners every 10 steps, FOSI's Lanczos (4 k = 20 Hessian-vector products) once per 100 steps
(``warmup = 1``: at the first step of each call). Targets (``<label>_ratio_to_reference``, reference
adam): shampoo <= 2.0, psgd_kron (Hessian-vector-product fit) <= 1.5, fosi <= 1.5; M-FAC, OASIS and the
whitening PSGD are reported without a target. Lazy cubic Newton forms the dense Hessian (d^2 memory)
and is meant for small full-batch problems, so it is not timed on the LM. SOAP is not timed here: on
CPU its eigh and QR are LAPACK calls outside the compiled program, with their own threads beside
XLA's (13x Adam measured on a loaded 2-core machine). State sizes against their closed forms are
checked exactly by tests/optim/test_shampoo.py, test_soap.py and test_mfac.py.
"""

import ml_collections

# QUICK checks the wiring on the small MLP (an LM compile costs ~10 s of CPU per optimizer)
QUICK = {"model": "mlp", "mlp_hidden": 8, "batch_size": 8, "repeats": 1, "steps_per_call": 2,
         "only": ("shampoo",)}

OPTIMIZERS = {
    "adam": {"name": "adam", "learning_rate": 1e-3},
    "shampoo": {"name": "shampoo", "learning_rate": 1e-3, "precondition_every": 10},
    "psgd_kron": {"name": "psgd_kron", "learning_rate": 1e-3, "mode": "hessian",
                  "precondition_every": 10},
    "psgd_kron_whitening": {"name": "psgd_kron", "learning_rate": 1e-3, "mode": "whitening",
                            "precondition_every": 10},
    "fosi": {"name": "fosi", "learning_rate": 1e-3, "base": "adam", "every": 100, "warmup": 1},
    "mfac": {"name": "mfac", "learning_rate": 1e-3, "window_size": 32},
    "oasis": {"name": "oasis", "learning_rate": 1.0},
}


def get_config():
    # The model, data and timing settings are the LM step benchmark's (configs/bench/optim_step_lm.py);
    # only the timed call length, the rounds and the optimizers differ.
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    c = load_config(project_root() / "configs" / "bench" / "optim_step_lm.py")
    c.steps_per_call = 100     # one FOSI refresh and ten Shampoo/PSGD refreshes per timed call
    c.repeats = 5              # timed rounds (round-robin over optimizers); median reported
    c.optimizers = ml_collections.ConfigDict(OPTIMIZERS)
    return c
