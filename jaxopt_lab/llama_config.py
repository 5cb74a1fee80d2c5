"""The size of a LLaMA-style decoder (:class:`jaxopt_lab.models.Llama`), in plain Python.

Kept apart from the model (which needs jax and flax) so that a config's model sizes are checked before
anything heavy is imported (see :mod:`jaxopt_lab.lab.rules`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

__all__ = ["LlamaConfig"]


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    """Size of a :class:`Llama` decoder.

    Parameter count (untied; norms have a scale only, no linear has a bias)::

        2 V D  [embedding + output]  +  L (4 D^2 + 3 D F + 2 D)  +  D

    with V = ``vocab_size``, D = ``dim``, L = ``n_layers``, F = ``hidden_dim`` (see
    :meth:`num_params`). Presets (byte vocabulary): ``tiny`` ~115k, ``mini`` ~0.92M, ``base`` ~4.95M,
    ``small`` ~19.5M; each accepts field overrides, e.g. ``LlamaConfig.tiny(max_seq_len=256)``.
    """

    vocab_size: int = 256
    dim: int = 64
    n_layers: int = 2
    n_heads: int = 4
    hidden_dim: int = 128
    max_seq_len: int = 128
    rope_theta: float = 10000.0
    tie_embeddings: bool = False
    norm_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "dim", "n_layers", "n_heads", "hidden_dim", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.n_heads or (self.dim // self.n_heads) % 2:
            raise ValueError(
                f"dim must be a multiple of n_heads with an even head dimension (rotary pairs), got "
                f"dim={self.dim}, n_heads={self.n_heads}"
            )
        if self.rope_theta <= 0:
            raise ValueError(f"rope_theta must be > 0, got {self.rope_theta}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def num_params(self) -> int:
        """The closed-form parameter count of ``Llama(self)``."""
        d, f = self.dim, self.hidden_dim
        per_block = 4 * d * d + 3 * d * f + 2 * d
        embeddings = self.vocab_size * d * (1 if self.tie_embeddings else 2)
        return embeddings + self.n_layers * per_block + d

    PRESETS: ClassVar[tuple] = ("tiny", "mini", "base", "small")  # the classmethods below

    @classmethod
    def _preset(cls, overrides: dict, **fields) -> "LlamaConfig":
        return cls(**{**fields, **overrides})

    # SwiGLU hidden sizes are about 8/3 * dim (LLaMA's choice, which keeps the MLP at the parameter
    # cost of a 4 * dim GELU MLP), rounded up to a multiple of 64; tiny uses 2 * dim to stay near
    # 100k parameters.
    @classmethod
    def tiny(cls, **overrides) -> "LlamaConfig":
        """~115k parameters: dim 64, 2 layers, 4 heads."""
        return cls._preset(overrides, dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_seq_len=128)

    @classmethod
    def mini(cls, **overrides) -> "LlamaConfig":
        """~0.92M parameters: dim 128, 4 layers, 4 heads."""
        return cls._preset(overrides, dim=128, n_layers=4, n_heads=4, hidden_dim=384, max_seq_len=256)

    @classmethod
    def base(cls, **overrides) -> "LlamaConfig":
        """~4.95M parameters: dim 256, 6 layers, 8 heads."""
        return cls._preset(overrides, dim=256, n_layers=6, n_heads=8, hidden_dim=704, max_seq_len=256)

    @classmethod
    def small(cls, **overrides) -> "LlamaConfig":
        """~19.5M parameters: dim 512, 6 layers, 8 heads."""
        return cls._preset(
            overrides, dim=512, n_layers=6, n_heads=8, hidden_dim=1408, max_seq_len=512
        )
