"""jaxopt-lab reproduce sam-asam-ranking

SGD vs SAM vs ASAM (all on heavy-ball SGD) on the digits CNN with 20% label noise, 8 paired seeds:
davda54/sam's CIFAR-10 ranking of test errors (SGD > SAM > ASAM), checked with one-sided paired t-tests.
"""

import ml_collections

from jaxopt_lab.lab import Claim

TITLE = "Test-error ranking SGD > SAM > ASAM (davda54/sam's CIFAR-10 table) on the digits CNN, paired seeds"
DESCRIPTION = (
    "The ranking of davda54/sam's README (an unofficial PyTorch SAM / ASAM, 'Experiments': WRN 16-8 on "
    "CIFAR-10, 200 epochs, label smoothing and cutout): test error SGD + momentum 3.20 %, SAM + SGD + "
    "momentum 2.86 %, ASAM + SGD + momentum 2.55 %. SAM: Foret et al., arXiv:2010.01412; ASAM: Kwon et "
    "al., arXiv:2102.11600. Substitution: scikit-learn's 8x8 digits (1,347 train / 450 test images) with "
    "20% of the train labels flipped to another class, and jaxopt_lab.models.CNN (3x3 conv 16 -> "
    "LayerNorm -> ReLU -> pool, conv 32 -> LayerNorm -> ReLU -> pool, linear), no augmentation, no "
    "label smoothing. Hyperparameters taken from davda54/sam where they transfer, fixed before any run: "
    "base optimizer PyTorch SGD with momentum 0.9 and weight decay 5e-4 (example/train.py) for all "
    "three; SAM rho = 0.05 (README); batch 64; constant learning rate 0.05 (no schedule: davda54's "
    "step decay is tied to 200 CIFAR epochs) for 10 epochs (the 2-core budget; a 30-epoch run "
    "exceeded 50 min on the shared machine and was stopped after its ASAM arm, whose mean test "
    "accuracy over 8 seeds, with every leaf scaled adaptively, was 31.4%). ASAM: "
    "the README's setting (rho = 2.0, element-wise T_w = |w|, i.e. eta = 0, 'as suggested by its "
    "authors') does not transfer: in a pilot (10 epochs, 2 seeds, otherwise this config) ASAM stayed "
    "at chance, 10.0% test accuracy, against 95.3% for SGD (a perturbation of norm 2 in the T_w^-1 "
    "geometry moves a weight by up to twice its magnitude; why the WRN tolerates it and this small "
    "CNN does not is not tested here). The full run therefore uses the ASAM paper's own CIFAR-10 "
    "setting (SamsungLabs/ASAM defaults rho = 0.5, eta = 0.01), chosen before the first full run and "
    "not changed after it. 8 seeds; seed s gives all three methods the same initialization and "
    "minibatch order (the data split and the flipped labels are shared), run per method as one "
    "vmapped lab.sweep on the training engine (experiment 'sharpness'). Statistics fixed a priori: "
    "per pair, the paired difference of final test errors over seeds must be > 0 on average, and significant in a one-sided "
    "paired t-test at level 0.05; sign-test p-values and win counts are in the summary "
    "(<worse>_minus_<better>_sign_p, _wins). "
    "ASAM scope (changed after the first full run, for the reason below): the adaptive scaling "
    "T_w = |w| + eta applies to the kernels and LayerNorm scales only, biases get T_w = 1 "
    "(optimizer entry mask = 'weights', optim.sharpness.weight_mask), as in the ASAM authors' code "
    "whose rho and eta this config takes (SamsungLabs/ASAM asam.py, ASAM.ascent_step: 'if 'weight' "
    "in n'); davda54/sam's adaptive=True scales every parameter. Root cause of the first full run's "
    "collapse (ASAM with every leaf scaled: 18.6% test accuracy, std 18.4, training loss 2.27; "
    "falling with the radius: rho 0.01 -> 74.9%, 0.05 -> 58.3%, 0.1 -> 33.4%, 0.5 -> 18.6%, 2.0 -> "
    "10.0%; rho = 0 is SGD exactly): the first conv bias, which feeds a LayerNorm over channels, "
    "grows until the normalized features are the same at every pixel. Seed 0, 3 epochs, otherwise "
    "this config: mean |bias| of convs/0 is 0.22 under SGD (93.3% test accuracy), 5.09 under ASAM "
    "with every leaf scaled at rho 0.5 (10.0%), 3.58 even at rho 0.01 (23.8%), and 0.16 with the "
    "authors' scope at rho 0.5 (79.8%). Per-leaf perturbation size ||eps|| / ||w|| at the end of "
    "the ASAM (every leaf) run: convs/0/bias 6.5e-2 with every leaf scaled against 2.5e-5 with "
    "the authors' scope (SAM rho 0.05: 2.4e-6); kernels and scales 1e-4 to 4e-2 for all three. "
    "The same bias growth also occurs under SAM on some seeds (seed 0 with another minibatch "
    "order: 26.2% after 3 epochs, mean |bias| 2.77), which matches SAM's large spread below. "
    "Result (full size, 8 seeds, authors' ASAM scope, 202 s CPU, 501 s wall): 0 of 4 claims pass. "
    "Final test accuracy SGD 95.5% (std 0.7), SAM 91.7% (std 4.7; below SGD on 7 of 8 seeds, "
    "one-sided paired t-test p = 0.97), ASAM 89.4% (std 14.7; above SAM on 6 of 8 seeds, sign-test "
    "p = 0.14, but one seed loses 45 points to SGD, so the mean paired error drop against SAM is "
    "-2.3 points, t-test p = 0.64). SAM's training loss at the end (1.38) and ASAM's (1.29) are "
    "still above SGD's (1.00): with this budget and a constant learning rate the sharpness-aware "
    "methods are compared before they have fitted the data, whereas davda54's ranking is at 200 "
    "epochs with a decayed learning rate, BatchNorm, augmentation and label smoothing. Not "
    "established: whether a longer budget with a decayed learning rate reverses the ranking, and "
    "why a sharpness-aware perturbation inflates the conv bias in front of LayerNorm. "
    "Figure test_acc.png: test accuracy over epochs, mean and std over seeds.")
_QUOTE = ("davda54/sam README, 'Experiments' (WRN 16-8, CIFAR-10): test error rate 'SGD + momentum "
          "3.20 %', 'SAM + SGD + momentum 2.86 %', 'ASAM + SGD + momentum 2.55 %'")
_LEVEL = 0.05  # one-sided paired t-test level, fixed before any run
CLAIMS = [
    Claim("sam beats sgd (mean paired error drop)", _QUOTE + ": SAM below SGD",
          "sgd_minus_sam_err_mean", ">", 0.0),
    Claim("sam beats sgd (paired t-test)", _QUOTE + ": SAM below SGD, one-sided paired t-test",
          "sgd_minus_sam_t_p", "<", _LEVEL),
    Claim("asam beats sam (mean paired error drop)", _QUOTE + ": ASAM below SAM",
          "sam_minus_asam_err_mean", ">", 0.0),
    Claim("asam beats sam (paired t-test)", _QUOTE + ": ASAM below SAM, one-sided paired t-test",
          "sam_minus_asam_t_p", "<", _LEVEL),
]
QUICK = {"epochs": 1, "eval_every": 1, "seeds": 2, "hidden": 32, "budget_epochs": (1,), "budget_seeds": 1}


def get_config():
    c = ml_collections.ConfigDict()
    c.experiment = "sharpness"
    c.seed = 0
    c.data_seed = 0
    c.label_noise = 0.2
    c.model = "cnn"            # channels (hidden // 8, hidden // 4) = (16, 32)
    c.hidden = 128
    c.normalize = False
    # davda54/sam's step decay (example/utility/step_lr.py: x0.2 at 3/10, 6/10, 8/10 of the epochs) over
    # 10 epochs x 8 seeds (a 30-epoch 8-seed run did not fit the shared 2 cores); the budget curve
    # re-runs the whole schedule over 20 epochs on the first 2 seeds (figure test_error_vs_epochs.png)
    c.epochs = 10
    c.schedule = "step"
    c.budget_epochs = (20,)
    c.budget_seeds = 2
    c.batch_size = 64
    c.seeds = 8
    c.eval_every = 5           # test-error curve for the figure; only the final error enters the claims
    c.hessian_batch = 512
    c.power_iterations = 0     # no lambda_max: not part of this claim
    c.reference = "sgd"
    c.only = ()
    torch_sgd = {"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 5e-4}
    c.optimizers = ml_collections.ConfigDict({
        "sgd": {"name": "sgd", **torch_sgd},
        "sam": {"name": "sam", "rho": 0.05, **torch_sgd},
        "asam": {"name": "asam", "rho": 0.5, "eta": 0.01, "mask": "weights", **torch_sgd},
    })
    c.comparisons = (("sgd", "sam"), ("sam", "asam"), ("sgd", "asam"))
    return c
