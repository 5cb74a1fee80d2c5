"""Matrix sensing: problems, solvers, metrics (see ``docs/sensing.md``). Each module lists its public names in __all__; they are re-exported here."""

from .problems import *  # noqa: F401,F403
from .solvers import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
