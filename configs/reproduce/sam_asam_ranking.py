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
    "LayerNorm over channels -> ReLU -> pool, conv 32 -> LayerNorm -> ReLU -> pool, linear; the convs "
    "have biases), no augmentation, no label smoothing. Hyperparameters from davda54/sam where they "
    "transfer, fixed before any run: base optimizer PyTorch SGD with momentum 0.9 and weight decay 5e-4 "
    "(example/train.py) for all three; SAM rho = 0.05 (README); batch 64; learning rate 0.05 with "
    "davda54's step decay (example/utility/step_lr.py: x0.2 at 3/10, 6/10 and 8/10 of the epochs), 10 "
    "epochs, 8 seeds. ASAM: the README's rho = 2.0 with every leaf scaled stayed at chance in a pilot "
    "(10 epochs, 2 seeds: 10.0% against 95.3% for SGD), so ASAM uses the ASAM authors' CIFAR-10 setting "
    "(SamsungLabs/ASAM: rho = 0.5, eta = 0.01, T_w = |w| + eta on kernels and LayerNorm scales only, "
    "biases T_w = 1: asam.py ASAM.ascent_step 'if 'weight' in n'; optimizer entry mask = 'weights'); "
    "with every leaf scaled ASAM collapsed (18.6% at rho 0.5, first conv bias 0.2 -> 5.1). Seed s "
    "gives all methods the same initialization and minibatch order; per method one vmapped lab.sweep "
    "(experiment 'sharpness'). Statistics fixed a priori: per pair, the mean paired test-error "
    "difference must be > 0 and significant in a one-sided paired t-test at level 0.05 (sign tests and "
    "win counts in the summary). "
    "History: the first full run (constant learning rate 0.05, 10 epochs, 202 s CPU) failed 0/4: SGD "
    "95.5%, SAM 91.7% (below SGD on 7 of 8 seeds), ASAM 89.4%; SAM's and ASAM's final training loss "
    "(1.38, 1.29) was above SGD's (1.00), which suggested under-fitting. To test that, the full size "
    "was changed (before the run, claims and level unchanged) to davda54's decayed schedule, with a "
    "budget curve that re-runs the whole schedule over 20 epochs on the first 2 seeds (a 30-epoch "
    "8-seed run did not fit the shared 2 cores). "
    "Result (full size, step decay, 10 epochs, 8 seeds, 302 s CPU, 1,804 s wall on the shared "
    "machine): 1 of 4 claims passes. SGD 96.7% (std 1.0), SAM 66.4% (std 25.6; below SGD on 8 of 8 "
    "seeds, t-test p = 0.99), ASAM 77.1% (std 23.0; above SAM on 6 of 8 seeds, mean error drop "
    "10.7 points, t-test p = 0.20, below SGD on 8 of 8). Budget curve (figure test_error_vs_epochs.png): "
    "doubling the budget to 20 epochs does not close the gap, test error SGD 2.4%, SAM 35.6%, ASAM "
    "6.0% (2 seeds: seeds 0 and 1, SAM's two worst). So neither the decayed schedule nor a longer "
    "budget reverses the ranking; the under-fit explanation is not the cause. "
    "Root cause of SAM's loss (measured): SAM's perturbation of the biases. The first conv's bias "
    "feeds a LayerNorm over channels, which does not cancel a per-channel bias (BatchNorm would); SAM "
    "inflates it until the normalized features are nearly the same at every pixel. Figure "
    "first_bias_abs.png: mean |bias| of convs/0 at the end is 0.13-0.34 under SGD and 0.82-2.78 under "
    "SAM, and the larger the bias, the lower SAM's accuracy (Spearman -0.74 over the 8 seeds; seeds 0, "
    "1: |b| 2.78, 2.35, test accuracy 22%, 26%). Ablation (constant learning rate 0.05, 10 epochs, the same 8 seeds and "
    "batches; SAM-ON, arXiv:2306.04226, with a mask that excludes leaves from the perturbation, "
    "normalized over the perturbed leaves only): SAM 91.7% (|b| 0.74-2.63), SAM without perturbing "
    "the biases 96.75% (|b| 0.13-0.30; above SAM on 7 of 8 seeds, paired t-test p = 0.008), SAM "
    "perturbing the kernels only (no biases, no LayerNorm parameters) 97.0% (above SAM on 8 of 8, p = "
    "0.008), both above SGD's 95.5% (sam_no_bias above SGD on 6 of 8 seeds). Excluding the biases "
    "alone is enough. Why the perturbation inflates a bias in front of a normalization: for a "
    "parameter group u on which the loss is scale-invariant (here (kernel, bias) of conv 0, since "
    "LayerNorm(c z) = LayerNorm(z)), <grad L(u), u> = 0, so at the perturbed point <grad L(w + eps), w> "
    "= -<grad L(w + eps), eps> ~ -rho ||g||, and SAM's descent step grows ||w||^2 by about "
    "2 lr rho ||g|| per step, at first order, where SGD grows it only at second order (lr^2 ||g||^2); "
    "this growth was not separated per leaf here. This model difference is absent from the paper's "
    "setting: every conv of davda54's WRN has bias=False and is followed by BatchNorm "
    "(example/model/wide_res_net.py). ASAM with the authors' scope keeps the bias small (0.13-0.31) "
    "yet loses to SGD with the decayed schedule; its 18% seed is seed 4 (the others 77-95%). Root cause "
    "of that seed (measured: seed 4, seed 7 for contrast, re-run alone with the full run's "
    "initialization and batches, which reproduces ASAM's 18.0% and 94.9% exactly; 10 epochs, about 20 "
    "s CPU per run; figure diag_asam_seed4/asam_seed4_collapse.png in the full run's directory): dead "
    "ReLUs in the second block, in the first epoch, before any learning-rate decay. The minibatch "
    "loss jumps from 2.8 to 4.2 within 5 steps (SGD: at most 2.8), and after epoch 1 (lr 0.05) 19 of "
    "the 32 channels of block 2 are 0 at every pixel of every training image (27 after epoch 2, 29 at "
    "the end; SGD on the same seed: 4 after epoch 1, 0 from epoch 2 on); the block-2 LayerNorm biases "
    "are pushed negative (mean -0.29, min -0.75 after 39 steps) and 4 of its scales below 0. From "
    "epoch 2 on the training loss is ln 10 = 2.30 (uniform prediction; logit std across images 0.009, "
    "SGD 1.42), and a dead channel gets no gradient through its ReLU, so the decays at epochs 3, 6 and "
    "8 cannot revive it. Seed 7 also falls to chance in epoch 1 (10.4%) but keeps 26 of 32 channels "
    "alive and recovers. Why the perturbation hits these leaves: with T_w = |w| + 0.01 the kernels "
    "(|w| ~ 0.1-0.3) take a small share of the radius and the leaves with T_w ~ 1 take the rest, the "
    "biases (T_w = 1 in the authors' scope) and the LayerNorm scales (|s| + 0.01 ~ 1 at init): in "
    "epoch 1 the perturbation's Euclidean norm is 0.46, 90% of it on the biases, in effect a SAM step "
    "of radius ~0.45 (9x SAM's 0.05) on biases and LayerNorm parameters. Ablations on seed 4 (same "
    "initialization and batches; excluded leaves get T_w = 0, i.e. are not perturbed; the entry's "
    "mask = 'kernels' would still perturb them with T_w = 1), final test accuracy, dead block-2 "
    "channels, ||eps|| in epoch 1: ASAM 18.0%, 29, 0.46; biases unperturbed 73.8%, 14, 0.35 (now on "
    "the LayerNorm scales); LayerNorm biases unperturbed 51.8%, 23; rho 0.2 (a sensitivity point, not "
    "the setting) 70.7%, 12, 0.18; kernels only perturbed 90.7%, 8, 0.09; SGD 96.0%, 0. So the "
    "damage grows with the size of the perturbation on the non-kernel leaves; no single leaf is the "
    "cause and no variant reaches SGD on this seed. Ruled out: SAM's mechanism (the first conv bias "
    "stays at |b| 0.31) and the step decay (the collapse precedes the first decay). Whether ASAM's "
    "rho = 0.5 does the same in the authors' WRN (BatchNorm, which normalizes each channel over the "
    "batch, and convs without bias) was not tested. "
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
# smoke test: the MLP (compiles in half the CNN's time), one epoch, the budget curve reduced to the main point
QUICK = {"epochs": 1, "eval_every": 1, "seeds": 2, "hidden": 32, "model": "mlp", "budget_epochs": (1,),
         "budget_seeds": 1}


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
