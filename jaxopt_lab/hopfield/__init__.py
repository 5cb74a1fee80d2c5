"""Hopfield energies and associative memory (see ``docs/hopfield.md``). Each module lists its public names in __all__; they are re-exported here."""

from .energies import *  # noqa: F401,F403
from .retrieval import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .capacity import *  # noqa: F401,F403
