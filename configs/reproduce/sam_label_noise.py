"""jaxopt-lab reproduce sam-label-noise

SAM vs SGD on digits with 20% symmetric label noise, same budget, paired seeds.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "SAM is robust to label noise: digits MLP, 20% noisy labels, SAM vs SGD"
DESCRIPTION = (
    "Foret et al., 'Sharpness-Aware Minimization for Efficiently Improving Generalization', "
    "arXiv:2010.01412. Substitution: scikit-learn's 8x8 digits (1,347 train / 450 test images, 20% "
    "of the train labels flipped to another class) and a 64-256-256-10 ReLU MLP instead of CIFAR / "
    "(Fashion-)MNIST; plain SGD (lr 0.05, batch 64, 60 epochs) and SAM-SGD (rho 0.05) with the same "
    "initializations and minibatch order per seed (8 seeds). Claims check the mean test accuracy at "
    "the end of the budget and the top Hessian eigenvalue of the training loss (power iteration).")
_QUOTE = ("'SAM natively provides robustness to label noise on par with that provided by "
          "state-of-the-art procedures that specifically target learning with noisy labels' "
          "(arXiv:2010.01412, abstract)")
CLAIMS = [
    Claim("sam beats sgd under label noise", _QUOTE, "sam_test_acc_mean", ">",
          "sgd_test_acc_mean"),
    Claim("sam's paired gain is positive on average", _QUOTE, "sam_acc_gain_mean", ">", 0.0),
    Claim("sam finds flatter minima",
          "'SAM provides a strong regularization of the eigenvalues throughout the learning "
          "trajectory' (arXiv:2301.09949, abstract)", "sam_lambda_max_mean", "<",
          "sgd_lambda_max_mean"),
]
QUICK = {"epochs": 2, "eval_every": 1, "seeds": 2, "hidden": 16, "power_iterations": 3,
         "hessian_batch": 64}


def get_config():
    # The label-noise study's config (configs/sharpness/label_noise.py) with this study's changes.
    from jaxopt_lab.lab.config import load_config
    from jaxopt_lab.lab.project import project_root

    c = load_config(project_root() / "configs" / "sharpness" / "label_noise.py")
    c.hidden = 256
    c.seeds = 8
    c.eval_every = 10
    c.optimizers = ml_collections.ConfigDict({
        "sgd": {"name": "sgd", "learning_rate": 0.05},
        "sam": {"name": "sam", "learning_rate": 0.05, "rho": 0.05},
    })
    return c
