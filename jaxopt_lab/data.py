"""The data sets experiments train on: digits, a byte-level text corpus, and synthetic problems.

Nothing here downloads anything. The real data are scikit-learn's bundled digits (1,797 8x8 images,
10 classes) and a byte corpus made from the Python standard library's own ``.py`` sources; both stand
in for the MNIST / CIFAR / C4 experiments of the papers (see docs/). Everything else is generated
from an explicit ``key``.

Host-side loaders (``digits``, ``byte_corpus``, ``lm_split``, ``lm_batches``) return numpy arrays and
take an integer ``seed``; device-side samplers and generators (``sample_lm_batch``, ``batch_indices``,
``linear_regression``, ...) are pure jax functions of a ``key`` that jit and vmap.
"""

from __future__ import annotations

import functools
import operator
import os
import sysconfig
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

__all__ = [
    "Dataset",
    "digits",
    "byte_corpus",
    "lm_split",
    "lm_batches",
    "sample_lm_batch",
    "batch_indices",
    "linear_regression",
    "gaussian_blobs",
    "rosenbrock",
    "ill_conditioned_quadratic",
    "BYTE_VOCAB_SIZE",
]

BYTE_VOCAB_SIZE = 256


class Dataset(NamedTuple):
    """A supervised train/test split: float features ``x_*``, int32 labels ``y_*`` in [0, K)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int


def _as_int(value, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an int, got {value!r}") from None


# --------------------------------------------------------------------------------------------------
# digits


def digits(
    *,
    test_fraction: float = 0.25,
    label_noise: float = 0.0,
    imbalance: Optional[float] = None,
    seed: int = 0,
    flatten: bool = True,
    dtype=np.float32,
) -> Dataset:
    """scikit-learn's bundled 8x8 digits, scaled to [0, 1], with a stratified train/test split.

    Steps, each driven by its own stream derived from ``seed`` (so changing one option leaves the
    others' randomness unchanged):

    1. Stratified split: every class keeps (up to rounding) the same share in train and test.
    2. ``imbalance = rho`` in (0, 1]: a long-tailed train set (Cao et al. 2019, "Learning Imbalanced
       Datasets with Label-Distribution-Aware Margin Loss", arXiv:1906.07413): class ``c`` keeps
       ``max(1, round(n_c * rho ** (c / (K - 1))))`` of its ``n_c`` train samples, so class 0 keeps
       all and class K-1 a fraction ``rho``. The train order is preserved.
    3. ``label_noise = p`` in [0, 1): ``round(p * n_train)`` train samples, chosen without
       replacement, get a label drawn uniformly from the K-1 *other* classes (symmetric noise as in
       Zhang et al. 2017, arXiv:1611.03530). Test labels stay clean.

    Args:
      test_fraction: share of the data in the test set, in (0, 1).
      label_noise: fraction of train labels replaced by a different class, in [0, 1).
      imbalance: None (balanced) or the imbalance ratio ``rho`` in (0, 1].
      seed: integer seed; the same seed gives the same data set, bit for bit.
      flatten: features of shape (N, 64) if True, images (N, 8, 8, 1) (NHWC) if False.
      dtype: floating dtype of the features.

    Returns:
      A :class:`Dataset` of numpy arrays with ``num_classes = 10``.

    >>> ds = digits(seed=0)
    >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
    ((1347, 64), (450, 64), 10)
    """
    from sklearn.datasets import load_digits  # local: keep `import jaxopt_lab.data` light
    from sklearn.model_selection import train_test_split

    seed = _as_int(seed, "seed")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise!r}")
    if imbalance is not None and not 0.0 < imbalance <= 1.0:
        raise ValueError(f"imbalance must be None or in (0, 1], got {imbalance!r}")
    if not np.issubdtype(np.dtype(dtype), np.floating):
        raise ValueError(f"dtype must be a floating dtype, got {dtype!r}")

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(dtype)  # pixel intensities are integers 0..16
    y = bunch.target.astype(np.int32)
    num_classes = int(y.max()) + 1
    n_test = int(np.ceil(test_fraction * len(y)))  # scikit-learn's rounding of test_size
    if min(n_test, len(y) - n_test) < num_classes:
        raise ValueError(
            f"test_fraction must leave at least one sample per class on each side, i.e. lie in "
            f"[{num_classes / len(y):.4f}, {1 - num_classes / len(y):.4f}], got {test_fraction!r}"
        )
    # One independent stream per step, so that e.g. adding label noise leaves the split and the
    # imbalance subsampling of the same seed untouched: the clean data set is the noisy one's
    # reference.
    split_stream, imbalance_stream, noise_stream = np.random.SeedSequence(seed).spawn(3)
    split_seed = int(split_stream.generate_state(1)[0])
    imbalance_rng = np.random.default_rng(imbalance_stream)
    noise_rng = np.random.default_rng(noise_stream)

    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=split_seed
    )

    if imbalance is not None:
        keep = np.zeros(len(y_train), dtype=bool)
        for c in range(num_classes):
            members = np.flatnonzero(y_train == c)
            share = imbalance ** (c / (num_classes - 1))
            n_keep = max(1, int(round(len(members) * share)))
            keep[imbalance_rng.choice(members, size=n_keep, replace=False)] = True
        x_train, y_train = x_train[keep], y_train[keep]

    if label_noise > 0.0:
        y_train = y_train.copy()
        n_noisy = int(round(label_noise * len(y_train)))
        flip = noise_rng.choice(len(y_train), size=n_noisy, replace=False)
        # An offset in 1..K-1 (mod K) is uniform over the K-1 wrong classes and never the true one.
        offset = noise_rng.integers(1, num_classes, size=n_noisy)
        y_train[flip] = (y_train[flip] + offset) % num_classes

    if not flatten:
        x_train = x_train.reshape(-1, 8, 8, 1)
        x_test = x_test.reshape(-1, 8, 8, 1)
    return Dataset(x_train, y_train, x_test, y_test, num_classes)


# --------------------------------------------------------------------------------------------------
# byte-level language modelling


def _is_skipped_dir(name: str) -> bool:
    # Test suites are huge, repetitive and contain deliberately odd code; vendored packages are not
    # the standard library.
    return (
        name in ("site-packages", "dist-packages", "__pycache__", "idle_test")
        or name.startswith("test")
        or name.endswith("_test")
    )


def _stdlib_sources(root: str) -> list[str]:
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not _is_skipped_dir(d)]
        for name in filenames:
            if name.endswith(".py") and not name.startswith("test_"):
                paths.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(paths)


def byte_corpus(*, max_bytes: int = 2_000_000, seed: int = 0) -> np.ndarray:
    """A deterministic byte-level text corpus: the Python standard library's own ``.py`` sources.

    The source files under ``sysconfig.get_paths()["stdlib"]`` (without ``site-packages`` and test
    directories) are listed in sorted order, shuffled by ``seed`` (so the first ``max_bytes`` mix many
    modules rather than the alphabetically first few), and concatenated, separated by a newline,
    until ``max_bytes`` bytes. Unreadable files are skipped. Tokens are raw bytes (vocabulary 256),
    the setting of byte-level LMs such as ByT5 (arXiv:2105.13626).

    The corpus depends on the installed Python version, and on nothing else.

    Args:
      max_bytes: length of the corpus (shorter only if the standard library is smaller).
      seed: integer seed of the file order.

    Returns:
      A uint8 array of shape ``(max_bytes,)``.
    """
    max_bytes = _as_int(max_bytes, "max_bytes")
    seed = _as_int(seed, "seed")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
    root = sysconfig.get_paths()["stdlib"]
    paths = _stdlib_sources(root)
    order = np.random.default_rng(seed).permutation(len(paths))
    chunks, total = [], 0
    for i in order:
        try:
            with open(os.path.join(root, paths[i]), "rb") as f:
                text = f.read()
        except OSError:
            continue
        chunks.append(text + b"\n")
        total += len(text) + 1
        if total >= max_bytes:
            break
    return np.frombuffer(b"".join(chunks)[:max_bytes], dtype=np.uint8).copy()


def lm_split(
    corpus: np.ndarray, seq_len: int, test_fraction: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Split a token stream into a contiguous train prefix and test suffix.

    Contiguous rather than shuffled windows, so no test window overlaps a train window. Each part
    must hold at least one window of ``seq_len + 1`` tokens (inputs plus the shifted targets).
    """
    seq_len = _as_int(seq_len, "seq_len")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    corpus = np.asarray(corpus)
    cut = int(round(len(corpus) * (1.0 - test_fraction)))
    if min(cut, len(corpus) - cut) < seq_len + 1:
        raise ValueError(
            f"corpus of {len(corpus)} tokens is too short for seq_len={seq_len} with "
            f"test_fraction={test_fraction}: each part needs >= seq_len + 1 tokens"
        )
    return corpus[:cut], corpus[cut:]


def lm_batches(
    tokens: np.ndarray, seq_len: int, *, max_windows: Optional[int] = None
) -> tuple[np.ndarray, np.ndarray]:
    """All non-overlapping windows of a token stream, for a deterministic evaluation loss.

    Window ``i`` has inputs ``tokens[i L : i L + L]`` and targets ``tokens[i L + 1 : i L + L + 1]``
    (L = ``seq_len``); returns int32 arrays of shape ``(W, L)`` with ``W = (len - 1) // L``, or the
    first ``max_windows`` of them.
    """
    seq_len = _as_int(seq_len, "seq_len")
    tokens = np.asarray(tokens)
    if seq_len < 1 or len(tokens) < seq_len + 1:
        raise ValueError(
            f"seq_len must be in [1, len(tokens) - 1 = {len(tokens) - 1}], got {seq_len}"
        )
    n_windows = (len(tokens) - 1) // seq_len
    if max_windows is not None:
        if _as_int(max_windows, "max_windows") < 1:
            raise ValueError(f"max_windows must be >= 1, got {max_windows}")
        n_windows = min(n_windows, max_windows)
    span = n_windows * seq_len
    inputs = tokens[:span].reshape(n_windows, seq_len).astype(np.int32)
    targets = tokens[1 : span + 1].reshape(n_windows, seq_len).astype(np.int32)
    return inputs, targets


@functools.partial(jax.jit, static_argnames=("batch_size", "seq_len"))
def sample_lm_batch(
    key: PRNGKeyArray, tokens: Int[Array, " n"], batch_size: int, seq_len: int
) -> tuple[Int[Array, "batch seq_len"], Int[Array, "batch seq_len"]]:
    """``batch_size`` random windows of a token stream: next-token inputs and targets.

    Starts ``s ~ U{0, ..., n - seq_len - 1}``; inputs ``tokens[s : s + L]``, targets shifted by one,
    ``tokens[s + 1 : s + L + 1]``, both int32. Jitted with static ``batch_size`` and ``seq_len``.
    """
    n = tokens.shape[0]
    if seq_len < 1 or n < seq_len + 1:
        raise ValueError(f"seq_len must be in [1, len(tokens) - 1 = {n - 1}], got {seq_len}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    starts = jax.random.randint(key, (batch_size,), 0, n - seq_len)
    windows = jax.vmap(lambda s: jax.lax.dynamic_slice(tokens, (s,), (seq_len + 1,)))(starts)
    windows = windows.astype(jnp.int32)
    return windows[:, :-1], windows[:, 1:]


# --------------------------------------------------------------------------------------------------
# minibatching


@functools.partial(jax.jit, static_argnames=("n", "batch_size"))
def batch_indices(
    key: PRNGKeyArray, step: Int[Array, ""] | int, n: int, batch_size: int
) -> Int[Array, " batch_size"]:
    """Indices of minibatch ``step``: a pure function of ``(key, step)``, so a resumed run sees the
    same batches as an uninterrupted one.

    Epoch ``e = step // (n // batch_size)`` is a random permutation of ``range(n)`` drawn from
    ``fold_in(key, e)``; the step takes the next ``batch_size`` entries of it (the last
    ``n mod batch_size`` entries of each permutation are dropped). Within an epoch every sample is
    used at most once. ``step`` may be traced; ``n`` and ``batch_size`` are static.
    """
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, n = {n}], got {batch_size}")
    steps_per_epoch = n // batch_size
    step = jnp.asarray(step, jnp.int32)
    epoch, position = jnp.divmod(step, steps_per_epoch)
    permutation = jax.random.permutation(jax.random.fold_in(key, epoch), n)
    return jax.lax.dynamic_slice(permutation, (position * batch_size,), (batch_size,))


# --------------------------------------------------------------------------------------------------
# synthetic problems


def _orthonormal(key: PRNGKeyArray, n: int, d: int) -> Float[Array, "n d"]:
    # QR of a Gaussian matrix; fixing the signs by diag(R) makes Q Haar-distributed (Mezzadri 2007).
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, d)))
    return q * jnp.sign(jnp.diagonal(r))


def _check_concrete(value, name: str, low: float) -> None:
    # Only concrete Python numbers are checked: a traced value (under jit/vmap, e.g. a swept
    # condition number) cannot be branched on.
    if isinstance(value, (int, float)) and not value >= low:
        raise ValueError(f"{name} must be >= {low}, got {value}")


# The generators validate their arguments in Python, then run one jitted kernel: eager op-by-op
# dispatch of the QR and friends costs far more than the single compile.


@functools.partial(jax.jit, static_argnums=(1, 2))
def _linear_regression(key, n, d, noise, condition_number):
    k_u, k_v, k_w, k_eps = jax.random.split(key, 4)
    s = jnp.logspace(0.0, -jnp.log10(condition_number), d)
    x = jnp.sqrt(n) * (_orthonormal(k_u, n, d) * s) @ _orthonormal(k_v, d, d).T
    w_star = jax.random.normal(k_w, (d,))
    y = x @ w_star + noise * jax.random.normal(k_eps, (n,))
    return x, y, w_star


def linear_regression(
    key: PRNGKeyArray, n: int, d: int, noise: float = 0.0, condition_number: float = 1.0
) -> tuple[Float[Array, "n d"], Float[Array, " n"], Float[Array, " d"]]:
    """Least squares ``y = X w* + noise * eps`` with a design matrix of prescribed condition number.

    ``X = sqrt(n) U diag(s) V^T`` with Haar-random orthonormal ``U`` (n x d), ``V`` (d x d) and
    singular values ``s`` log-spaced from 1 down to ``1 / condition_number``, so
    ``cond(X) = condition_number`` and the least-squares Hessian ``X^T X / n`` has eigenvalues in
    ``[1 / condition_number**2, 1]`` (its condition number is ``condition_number**2``).
    ``w* ~ N(0, I_d)``, ``eps ~ N(0, I_n)``. Requires ``n >= d``. ``noise`` and ``condition_number``
    may be traced (swept under vmap).

    Returns:
      ``(X, y, w_star)``.
    """
    n, d = _as_int(n, "n"), _as_int(d, "d")
    if not 1 <= d <= n:
        raise ValueError(f"need 1 <= d <= n for a full-rank design, got n={n}, d={d}")
    _check_concrete(condition_number, "condition_number", 1.0)
    _check_concrete(noise, "noise", 0.0)
    return _linear_regression(key, n, d, noise, condition_number)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _gaussian_blobs(key, n, d, num_classes, separation):
    k_mean, k_order, k_noise = jax.random.split(key, 3)
    if num_classes <= d:
        directions = _orthonormal(k_mean, d, num_classes).T
    else:
        directions = jax.random.normal(k_mean, (num_classes, d))
        directions = directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    means = separation / jnp.sqrt(2.0) * directions
    y = jax.random.permutation(k_order, jnp.arange(n, dtype=jnp.int32) % num_classes)
    return means[y] + jax.random.normal(k_noise, (n, d)), y


def gaussian_blobs(
    key: PRNGKeyArray, n: int, d: int, num_classes: int = 2, separation: float = 3.0
) -> tuple[Float[Array, "n d"], Int[Array, " n"]]:
    """Isotropic Gaussian classes ``x = mu_y + N(0, I_d)`` whose means are ``separation`` apart.

    ``mu_c = separation / sqrt(2) * u_c`` with ``u_c`` random orthonormal directions when
    ``num_classes <= d``, so every pair of means is exactly ``separation`` apart (the nearest-mean
    error against one other class is ``Phi(-separation / 2)``); with more classes than dimensions
    the ``u_c`` are independent random unit vectors and the distances are ``separation`` only on
    average. Classes are balanced (the first ``n mod num_classes`` classes get one extra sample)
    and the samples come in random order.

    Returns:
      ``(X, y)`` with float32 ``X`` of shape (n, d) and int32 labels.
    """
    n, d, num_classes = _as_int(n, "n"), _as_int(d, "d"), _as_int(num_classes, "num_classes")
    if n < 1 or d < 1:
        raise ValueError(f"n and d must be >= 1, got n={n}, d={d}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    _check_concrete(separation, "separation", 0.0)
    return _gaussian_blobs(key, n, d, num_classes, separation)


def rosenbrock(x: Float[Array, "... d"]) -> Float[Array, "..."]:
    """Rosenbrock's function ``sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` over the last axis.

    Minimum 0 at ``x = (1, ..., 1)``; a curved, badly conditioned valley (Rosenbrock 1960).
    """
    if x.shape[-1] < 2:
        raise ValueError(f"rosenbrock needs at least 2 coordinates, got shape {x.shape}")
    head, tail = x[..., :-1], x[..., 1:]
    return jnp.sum(100.0 * (tail - head**2) ** 2 + (1.0 - head) ** 2, axis=-1)


@functools.partial(jax.jit, static_argnums=1)
def _ill_conditioned_quadratic(key, d, condition_number):
    k_q, k_b = jax.random.split(key)
    q = _orthonormal(k_q, d, d)
    eigenvalues = jnp.logspace(-jnp.log10(condition_number), 0.0, d)
    a = (q * eigenvalues) @ q.T
    return 0.5 * (a + a.T), jax.random.normal(k_b, (d,))  # exactly symmetric despite round-off


def ill_conditioned_quadratic(
    key: PRNGKeyArray, d: int, condition_number: float
) -> tuple[Float[Array, "d d"], Float[Array, " d"]]:
    """A random quadratic ``f(x) = 0.5 x^T A x - b^T x`` with ``cond(A) = condition_number``.

    ``A = Q diag(lambda) Q^T`` with Haar-random ``Q`` and eigenvalues log-spaced in
    ``[1 / condition_number, 1]``, so ``f`` is 1-smooth (gradient descent is stable for step sizes
    below 2) and ``1 / condition_number``-strongly convex. ``b ~ N(0, I_d)``; the minimiser is
    ``A^{-1} b``.

    Returns:
      ``(A, b)``.
    """
    d = _as_int(d, "d")
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    _check_concrete(condition_number, "condition_number", 1.0)
    return _ill_conditioned_quadratic(key, d, condition_number)
