"""Factored and compressed optimizer states, one module per method:

- :mod:`jaxopt_lab.optim.square_matricized` -- SMMF (arXiv:2412.08894);
- :mod:`jaxopt_lab.optim.subset_momentum` -- Subset-Norm + Subspace-Momentum (arXiv:2411.07120);
- :mod:`jaxopt_lab.optim.quantized` -- blockwise int8 state (arXiv:2110.02861), 8-bit Adam and
  Q-GaLore (arXiv:2407.08296).

This module re-exports their public names (``jaxopt_lab.optim`` star-imports it). The modules
are not named after the functions they define (``smmf``, ``subset_norm``), which the package
re-exports under those names.
"""

from .quantized import *  # noqa: F401,F403
from .quantized import __all__ as _quantized_all
from .quantized import _decode, _encode  # noqa: F401  (tests of the codec)
from .square_matricized import *  # noqa: F401,F403
from .square_matricized import __all__ as _smmf_all
from .subset_momentum import *  # noqa: F401,F403
from .subset_momentum import __all__ as _subset_norm_all

__all__ = list(_smmf_all) + list(_subset_norm_all) + list(_quantized_all)
