"""Optimal transport solvers on ott-jax problems: Sinkhorn (dense or online point clouds), Sinkhorn-Newton-Sparse,
Mirror Sinkhorn, unbalanced / partial OT and OT pseudo-labelling, sliced distances (see ``docs/``). Each
module lists its public names in __all__; they are re-exported here."""

from .output import *  # noqa: F401,F403
from .problems import *  # noqa: F401,F403
from .sinkhorn import *  # noqa: F401,F403
from .sns import *  # noqa: F401,F403
from .mirror import *  # noqa: F401,F403
from .partial import *  # noqa: F401,F403
from .sliced import *  # noqa: F401,F403
