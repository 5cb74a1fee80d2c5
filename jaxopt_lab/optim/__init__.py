"""Optimizers as optax ``GradientTransformationExtraArgs``.

Each method module defines ``scale_by_<name>`` (the direction) and ``<name>`` (the alias with
learning rate), registers the alias, and lists its public names in ``__all__``; they are re-exported
here. ``get``/``names``/``info`` give one namespace over ours and optax's own. The shared pieces
(hyperparameter checks, the alias builder, moments) are in ``_common``.
"""

from .registry import OptimizerInfo, families, get, info, names, register
from .sharpness import *  # noqa: F401,F403
from .lowrank import *  # noqa: F401,F403
from .factored import *  # noqa: F401,F403
from .adaptive import *  # noqa: F401,F403
from .curvature import *  # noqa: F401,F403
