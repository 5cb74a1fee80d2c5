"""The training engine every training experiment runs on.

* :class:`TrainState` (``state``): params, optimizer state, step, model state;
* :func:`make_step` (``step``): one step feeding every optimizer ``value``, ``grad_fn`` and
  ``chunk_grad_fn``; :func:`check_feedable` refuses at config time an optimizer an experiment cannot feed;
  :func:`wrap_optimizer`: gradient accumulation and skipping non-finite updates;
* ``batches``: samplers where a batch is a pure function of (data key, step);
* :class:`Engine` (``engine``): jitted, sharded ``lax.scan`` chunks of steps; :func:`fit` (``loop``): the
  host between chunks (log, evaluate, checkpoint, resume);
* ``sharding``: the ``(data, fsdp)`` mesh and the FSDP rule; ``distributed.initialize`` for several hosts.
"""

from . import batches, distributed, sharding
from .batches import Sampler
from .engine import Engine
from .loop import chunk_means, fit
from .sharding import make_mesh, mesh_from_config
from .state import TrainState
from .step import EXTRA_ARGS, check_feedable, make_step, wrap_optimizer

__all__ = ["TrainState", "make_step", "check_feedable", "wrap_optimizer", "EXTRA_ARGS", "Engine", "fit",
           "chunk_means", "Sampler", "batches", "sharding", "distributed", "make_mesh", "mesh_from_config"]
