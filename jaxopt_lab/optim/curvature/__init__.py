"""Curvature: Hessian-vector products and eigenvalues, matrix roots, and the second-order optimizers
(Shampoo, SOAP, M-FAC, ...), each an optax transform registered in the family ``curvature``."""

from .hessian import *  # noqa: F401,F403
from .roots import *  # noqa: F401,F403
from .shampoo import *  # noqa: F401,F403
from .mfac import *  # noqa: F401,F403
from .psgd import *  # noqa: F401,F403
from .psgd_lra import *  # noqa: F401,F403
from .fosi import *  # noqa: F401,F403
from .cubic_newton import *  # noqa: F401,F403
from .oasis import *  # noqa: F401,F403
from .soap import *  # noqa: F401,F403
