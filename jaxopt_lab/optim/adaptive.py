r"""The adaptive and momentum family: one module per method, re-exported here.

Each optimizer comes in two levels: ``scale_by_<name>`` computes the direction and
``<name>(learning_rate, ...)`` is the alias
``chain(scale_by_<name>(...), decayed_weights(weight_decay), scale_by_learning_rate)`` built by
:func:`jaxopt_lab.optim._common.alias`. Where a paper scales the weight decay by a quantity only the
direction knows (AdamP/SGDP's ``wd_ratio``, FAdam's Fisher-preconditioned decay) the decay is part of
the direction and the alias says so.

Every transform returns ``optax.GradientTransformationExtraArgs`` and ignores extra ``update`` keyword
arguments it does not read, so one training step
``tx.update(grads, state, params, value=loss, grad_fn=grad_fn)`` drives all of them. The ones that
read extra arguments: ``sania`` (``value``, the loss at ``params``), ``xgrad`` and exact ``mars``
(``grad_fn``, a function ``params -> grads`` on the current batch).

Members: :mod:`.adamp` (AdamP, SGDP), :mod:`.grams`, :mod:`.mars`, :mod:`.fadam`, :mod:`.diffgrad`,
:mod:`.lion_kappa`, :mod:`.sania`, :mod:`.gravity`, :mod:`.xgrad`. All take real floating-point
parameters and raise a ``TypeError`` naming the leaf at ``init`` otherwise (complex parameters:
``optax.contrib.split_real_and_imaginary``).
"""

from .adamp import *  # noqa: F401,F403
from .adamp import __all__ as _adamp
from .diffgrad import *  # noqa: F401,F403
from .diffgrad import __all__ as _diffgrad
from .fadam import *  # noqa: F401,F403
from .fadam import __all__ as _fadam
from .grams import *  # noqa: F401,F403
from .grams import __all__ as _grams
from .gravity import *  # noqa: F401,F403
from .gravity import __all__ as _gravity
from .lion_kappa import *  # noqa: F401,F403
from .lion_kappa import __all__ as _lion_kappa
from .mars import *  # noqa: F401,F403
from .mars import __all__ as _mars
from .sania import *  # noqa: F401,F403
from .sania import __all__ as _sania
from .xgrad import *  # noqa: F401,F403
from .xgrad import __all__ as _xgrad

MODULES = ("adamp", "grams", "mars", "fadam", "diffgrad", "lion_kappa", "sania", "gravity", "xgrad")

__all__ = [*_adamp, *_grams, *_mars, *_fadam, *_diffgrad, *_lion_kappa, *_sania, *_gravity, *_xgrad]
