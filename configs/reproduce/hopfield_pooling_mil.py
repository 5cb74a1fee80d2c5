"""jaxopt-lab reproduce hopfield-pooling-mil

Multiple-instance learning on bags of 8x8 digits (positive iff the bag contains a 9): HopfieldPooling vs
mean pooling with the same instance encoder, 5 seeds.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "HopfieldPooling vs mean pooling on digit bags (multiple-instance learning)"
DESCRIPTION = (
    "(hflayers, 'Hopfield Networks is All You Need', arXiv:2008.02217; [paper, verify]): the "
    "MNIST-bags MIL task with scikit-learn's 8x8 digits substituted for MNIST. Bags of 8-16 digits (mask "
    "padded), positive iff they contain a 9 (1-2 nines), balanced labels; 600 train bags from the train "
    "split, 400 test bags from the test split. Same encoder (64-64-32 ReLU) and linear head; pooling is "
    "HopfieldPooling (1 trainable query, 4 heads, beta = 1/sqrt(head dim), one update step) or the masked "
    "mean. Full-batch Adam 3e-3, 600 steps, 5 seeds; test accuracy averaged over seeds.")

CLAIMS = [
    Claim("hopfield_beats_mean", "D4: '(b) MNIST-bags MIL with HopfieldPooling vs mean pooling' -- "
          "attention-based Hopfield pooling picks out the few positive instances that a mean dilutes "
          "(mean test accuracy over seeds)", key="hopfield_pool_accuracy", op=">",
          bound="mean_pool_accuracy"),
    Claim("hopfield_learns_task", "D4: HopfieldPooling solves the MIL task (test accuracy well above "
          "chance 0.5; read as >= 0.9)", key="hopfield_pool_accuracy", op=">=", bound=0.9),
]

QUICK = {"bags.train": 64, "bags.test": 64, "train.steps": 20, "train.log_every": 10, "num_seeds": 1,
         "bag_size.max": 10}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "hopfield_pooling_mil"
    c.seed = 0
    c.target = 9
    c.max_positives = 2
    c.num_seeds = 5
    c.bags = ml_collections.ConfigDict({"train": 600, "test": 400})
    c.bag_size = ml_collections.ConfigDict({"min": 8, "max": 16})
    c.model = ml_collections.ConfigDict({"hidden": 64, "features": 32, "num_heads": 4, "update_steps": 1})
    c.train = ml_collections.ConfigDict({"steps": 600, "learning_rate": 3e-3, "log_every": 50})
    return c
