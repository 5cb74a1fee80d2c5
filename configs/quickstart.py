"""jaxopt-lab run configs/quickstart.py

An MLP on scikit-learn's digits with Adam: train loss and test accuracy logged every 50 steps, a
loss-curve figure and checkpoints. Try ``--set optimizer.name=sam --set optimizer.learning_rate=0.05``.
"""

import ml_collections

QUICK = {"train.steps": 40, "train.log_every": 20, "train.checkpoint_every": 20}


def get_config() -> ml_collections.ConfigDict:
    # What a first run varies; every other key is the experiment's default: `jaxopt-lab show
    # configs/quickstart.py` prints them all with their help, `jaxopt-lab show train_classifier` the defaults.
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "train_classifier"   # an MLP on scikit-learn's digits

    cfg.optimizer = ml_collections.ConfigDict()
    cfg.optimizer.name = "adam"    # any name in `jaxopt-lab list`
    cfg.optimizer.learning_rate = 1e-3

    cfg.train = ml_collections.ConfigDict()
    cfg.train.steps = 1000
    cfg.train.log_every = 50
    cfg.train.checkpoint_every = 250   # 0: no checkpoints
    return cfg
