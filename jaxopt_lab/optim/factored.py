"""Factored and compressed optimizer states, one module per method:

- :mod:`jaxopt_lab.optim.smmf` -- SMMF (arXiv:2412.08894);
- :mod:`jaxopt_lab.optim.subset_norm` -- Subset-Norm + Subspace-Momentum (arXiv:2411.07120);
- :mod:`jaxopt_lab.optim.quantized` -- blockwise int8 state (arXiv:2110.02861), 8-bit Adam and
  Q-GaLore (arXiv:2407.08296).

This module re-exports their public names (``jaxopt_lab.optim`` star-imports it).
"""

from .quantized import *  # noqa: F401,F403
from .quantized import __all__ as _quantized_all
from .quantized import _decode, _encode  # noqa: F401  (tests of the codec)
from .smmf import *  # noqa: F401,F403
from .smmf import __all__ as _smmf_all
from .subset_norm import *  # noqa: F401,F403
from .subset_norm import __all__ as _subset_norm_all

__all__ = list(_smmf_all) + list(_subset_norm_all) + list(_quantized_all)
