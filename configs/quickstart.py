"""jaxopt-lab run configs/quickstart.py

An MLP on scikit-learn's digits with Adam: train loss and test accuracy logged every 50 steps, a
loss-curve figure and checkpoints. Try ``--set optimizer.name=sam --set optimizer.learning_rate=0.05``.
"""

import ml_collections

QUICK = {"train.steps": 40, "train.log_every": 20, "train.checkpoint_every": 20}


def get_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.experiment = "train_classifier"
    cfg.seed = 0

    cfg.data = ml_collections.ConfigDict()
    cfg.data.seed = 0              # train/test split and label noise
    cfg.data.test_fraction = 0.25
    cfg.data.label_noise = 0.0

    cfg.model = ml_collections.ConfigDict()
    cfg.model.kind = "mlp"         # mlp | cnn
    cfg.model.hidden = (64, 64)    # MLP hidden widths
    cfg.model.channels = (16, 32)  # CNN channels

    cfg.optimizer = ml_collections.ConfigDict()
    cfg.optimizer.name = "adam"    # any name in `jaxopt-lab list`
    cfg.optimizer.learning_rate = 1e-3

    cfg.train = ml_collections.ConfigDict()
    cfg.train.steps = 1000
    cfg.train.batch_size = 128
    cfg.train.log_every = 50
    cfg.train.checkpoint_every = 250   # 0: no checkpoints

    cfg.mesh = ml_collections.ConfigDict()
    cfg.mesh.data = 0              # devices on the data axis; 0: all devices not on fsdp
    cfg.mesh.fsdp = 1              # devices each parameter is split over
    return cfg
