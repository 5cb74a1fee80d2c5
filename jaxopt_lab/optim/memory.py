"""Optimizer-state memory: measured (:func:`state_bytes`) and closed form (:func:`formula_bytes`).

The closed forms are the papers' state-size formulas (fp32 bytes per m × n matrix,
M = max(m, n), N = min(m, n), rank r), applied per leaf, plus what every optimizer also keeps: unprojected leaves (Adam: 8 bytes
per entry) and the fixed overhead (int32 step counts, one PRNG key). They are written from the
papers' formulas, not from our state layout, so a test comparing the two catches a moment on the
wrong side or a forgotten buffer.

======================  ====================================================
method                  bytes per projected matrix
======================  ====================================================
adam                    8mn
galore (reference)      4(2rM + rN)
galore (memory_min)     4(2rN + rM)          (optax.contrib.galore)
fira                    GaLore + 4
online_subspace_descent 4(2rM + 3rN) + 4     (P, AdamW moments on P, its count)
natural_galore          GaLore + 4·s·r·M
dct_galore              8rM + 4r             (int32 indices, no basis)
frugal                  4(2rM + rN), r = round(density · N)
gradnorm_lorp           4(2rM + rN + 2m) + 4(mn + m)   (reference class: keeps V, g)
smmf                    8(m̂ + n̂) + ⌈m̂n̂/8⌉   (most-square reshape, 1-bit sign)
subset_norm (SN + SM)   4(M + rM + rN)
adam_8bit               2·q(mn)
q_galore                2·q(rM) + q₄(rN) + 4(N + w + 2)   (int8 moments, int4 projector,
                        adaptive gap: first vector, w cosines, gap and count)
======================  ====================================================

q(s) = ⌈s/B⌉·B + 4⌈s/B⌉: s int8 codes padded to blocks of B plus one float32 scale per block
(4s when s < min_size: small arrays stay float32). q₄(s) = ⌈gG/2⌉ + 8g, g = ⌈s/G⌉: 4-bit
min-max codes (two per byte) in g groups of G = 256, one float32 scale and zero per group.
Q-GaLore's stochastic weight rounding adds a count and a key (12 bytes).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import numpy as np

__all__ = ["state_bytes", "formula_bytes", "FORMULA_METHODS", "quantized_bytes",
           "most_square"]


def state_bytes(state: Any) -> int:
    """Bytes held by every array leaf of an optimizer state (codes, scales, keys and counts too)."""
    total = 0
    for leaf in jax.tree.leaves(state):
        if hasattr(leaf, "nbytes"):
            total += int(leaf.nbytes)
        elif hasattr(leaf, "shape") and hasattr(leaf, "dtype"):  # ShapeDtypeStruct
            total += int(np.prod(leaf.shape)) * np.dtype(leaf.dtype).itemsize
    return total


def quantized_bytes(size: int, block_size: int = 256, min_size: int = 0) -> int:
    """int8 codes padded to whole blocks plus one float32 scale per block (float32 below
    ``min_size`` entries, which the 8-bit wrapper leaves unquantized)."""
    if size < min_size:
        return 4 * size
    blocks = math.ceil(size / block_size)
    return blocks * block_size + 4 * blocks


def most_square(size: int) -> tuple[int, int]:
    """(m̂, n̂) with m̂·n̂ = size and m̂ the largest divisor <= √size (SMMF's square-matricization)."""
    m = int(math.isqrt(size))
    while m > 1 and size % m:
        m -= 1
    m = max(m, 1)
    return m, size // m


def _projected(shape, rank, min_dim):
    if len(shape) != 2:
        return False
    short = min(shape)
    return short > rank if min_dim is None else short >= min_dim


def _per_leaf(method, shape, *, rank, side, history, density, block_size, min_dim,
              min_size=4096):
    """Bytes for one leaf (without the fixed overhead)."""
    size = int(np.prod(shape)) if shape else 1
    if method == "adam":
        return 8 * size
    if method == "adam_8bit":
        return 2 * quantized_bytes(size, block_size, min_size)
    if method == "smmf":
        mh, nh = most_square(size)
        return 8 * (mh + nh) + math.ceil(mh * nh / 8)
    if method == "gradnorm_lorp" and len(shape) == 2:
        m, n = shape
        copies = 4 * (m * n + m)
        v_state = _per_leaf("galore", shape, rank=rank, side=side, history=None, density=None,
                            block_size=block_size, min_dim=min_dim)
        return copies + v_state + 8 * m
    if method == "subset_norm":
        if len(shape) == 2 and _projected(shape, rank, min_dim):
            big, small = max(shape), min(shape)
            return 4 * (big + rank * big + rank * small)
        if len(shape) == 2:  # unprojected matrix: full momentum, one v per long-side index
            return 4 * (size + max(shape))
        return 4 * (size + _subset_count(size))
    if method == "frugal":
        if len(shape) != 2 or min(shape) < (32 if min_dim is None else min_dim):
            return 8 * size
        big, small = max(shape), min(shape)
        d = small if side == "reference" else big
        r = max(1, min(int(round(density * d)), small))
        return 4 * (2 * r * (size // d) + r * d)
    if not _projected(shape, rank, min_dim):
        if method == "q_galore":
            return 2 * quantized_bytes(size, block_size, min_size)
        return 8 * size
    big, small = max(shape), min(shape)
    kept, proj = (big, small) if side == "reference" else (small, big)
    r = rank
    galore = 4 * (2 * r * kept + r * proj)
    if method == "galore":
        return galore
    if method == "fira":
        return galore + 4
    if method == "natural_galore":
        return galore + 4 * history * r * kept
    if method == "online_subspace_descent":
        return 4 * (2 * r * kept + 3 * r * proj) + 4
    if method == "dct_galore":
        return 8 * r * kept + 4 * r
    if method == "q_galore":
        groups = math.ceil(r * proj / _QGALORE_GROUP)
        projector = math.ceil(groups * _QGALORE_GROUP / 2) + 8 * groups
        return (2 * quantized_bytes(r * kept, block_size, min_size) + projector
                + 4 * (proj + _QGALORE_WINDOW + 2))
    raise ValueError(f"method={method!r} has no formula; allowed: {', '.join(FORMULA_METHODS)}")


_QGALORE_GROUP, _QGALORE_WINDOW = 256, 5   # q_galore's projector group size and cosine window


def _subset_count(size: int) -> int:
    """Number of subsets for a 1-D leaf: subsets of size k = the largest divisor of d <= √d."""
    k, _ = most_square(size)
    return size // k


# fixed overhead: int32 counts (4 bytes) and PRNG keys (8 bytes) of each method's state tree.
_OVERHEAD = {
    "adam": 4,                     # ScaleByAdamState.count
    "adam_8bit": 4,
    "galore": 4 + 8 + 4,           # ProjectedState.count, .key, inner Adam count
    "fira": 16, "natural_galore": 16, "dct_galore": 16, "online_subspace_descent": 16,
    "frugal": 16, "q_galore": 16 + 12,   # + round_weights' count and key
    "gradnorm_lorp": 4 + 16,       # its own count + the GaLore it runs on (V, g)
    "smmf": 4,
    "subset_norm": 4 + 8,          # count + key
}
FORMULA_METHODS = tuple(_OVERHEAD)


def formula_bytes(method: str, params: Any, *, rank: int = 128, side: str = "reference",
                  history: int = 10, density: float = 0.25, block_size: int = 256,
                  min_size: int = 4096, min_dim: Optional[int] = None) -> int:
    """Closed-form optimizer-state bytes of ``method`` for ``params`` (the papers' formulas, per leaf,
    plus unprojected leaves and the fixed overhead). Methods: ``FORMULA_METHODS``.

    >>> import numpy as np
    >>> formula_bytes("adam", {"w": np.zeros((4096, 11008), np.float32)})
    360710148
    """
    if method not in _OVERHEAD:
        raise ValueError(f"method={method!r} has no formula; allowed: {', '.join(FORMULA_METHODS)}")
    shapes = [tuple(np.shape(x)) for x in jax.tree.leaves(params)]
    total = _OVERHEAD[method]
    for shape in shapes:
        total += _per_leaf(method, shape, rank=rank, side=side, history=history, density=density,
                           block_size=block_size, min_dim=min_dim, min_size=min_size)
    return total
