"""Device meshes and the FSDP sharding rule for parameters, optimizer state and batches.

A run's ``mesh`` config section names a 2-D ``jax.sharding.Mesh`` with axes ``("data", "fsdp")``;
``mesh.data = 0`` (the default) puts every device not used by ``fsdp`` on ``data``.

**Rule** (one rule for every array leaf of the train state, so a state leaf follows its parameter):
a leaf with at least one axis divisible by the ``fsdp`` size is split over ``fsdp`` along its largest such
axis (the first of equal ones) and replicated over ``data``; a leaf with no such axis (scalars, counters,
odd sizes) is replicated. Optimizer moments have their parameter's shape and so its sharding; GaLore-style
projectors (m x r) and low-rank moments (r x n), SMMF's factors and 8-bit blocks are split along whichever
of their axes divides, else replicated. XLA inserts the all-gathers a sharded computation needs.

Batches are split along their leading (example) axis over ``data`` x ``fsdp``; the batch size must be
divisible by the mesh size (:func:`check_batch_size`).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxopt_lab.lab.config import ConfigError

__all__ = ["AXES", "make_mesh", "mesh_from_config", "leaf_spec", "tree_shardings", "batch_spec",
           "check_batch_size", "device_bytes"]

AXES = ("data", "fsdp")


def make_mesh(data: int = 0, fsdp: int = 1, devices=None) -> Mesh:
    """The ``(data, fsdp)`` mesh over ``devices`` (default: all, across processes); ``data = 0``: all
    devices not on ``fsdp``. ``ConfigError`` naming ``mesh.*`` if the sizes do not fit the devices."""
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    for key, value, low in (("mesh.data", data, 0), ("mesh.fsdp", fsdp, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"config key {key!r} = {value!r}: must be an integer >= {low}")
    if n % fsdp:
        raise ConfigError(f"config key 'mesh.fsdp' = {fsdp}: must divide the number of devices ({n})")
    data = data or n // fsdp
    if data * fsdp != n:
        raise ConfigError(f"config keys 'mesh.data' x 'mesh.fsdp' = {data} x {fsdp} = {data * fsdp}: must "
                          f"equal the number of devices ({n}); mesh.data = 0 uses all devices")
    return Mesh(np.asarray(devices).reshape(data, fsdp), AXES)


def mesh_from_config(cfg) -> Mesh:
    """:func:`make_mesh` from the config's optional ``mesh`` section (default: all devices on data)."""
    section = cfg.get("mesh", None) if hasattr(cfg, "get") else None
    if not section:
        return make_mesh()
    return make_mesh(int(section.get("data", 0)), int(section.get("fsdp", 1)))


def leaf_spec(shape, fsdp: int) -> P:
    """The rule above for one leaf's shape."""
    if fsdp == 1:
        return P()
    axes = [a for a, size in enumerate(shape) if size % fsdp == 0 and size >= fsdp]
    if not axes:
        return P()
    axis = max(axes, key=lambda a: (shape[a], -a))
    return P(*([None] * axis + ["fsdp"]))


def tree_shardings(mesh: Mesh, tree: Any) -> Any:
    """``NamedSharding`` of every leaf of ``tree`` (arrays or ``ShapeDtypeStruct``) by the rule."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, leaf_spec(np.shape(x), fsdp)), tree)


def batch_spec(mesh: Mesh, tree: Any) -> Any:
    """``NamedSharding`` splitting each batch leaf's leading axis over data x fsdp (scalars replicated)."""
    return jax.tree.map(
        lambda x: NamedSharding(mesh, P(AXES) if np.ndim(x) else P()), tree)


def check_batch_size(mesh: Mesh, batch_size: Optional[int], key: str = "train.batch_size") -> None:
    """``ConfigError`` unless ``batch_size`` divides over the mesh (``None``: full batch, not checked)."""
    size = math.prod(mesh.shape.values())
    if batch_size is not None and batch_size % size:
        raise ConfigError(f"config key {key!r} = {batch_size}: must be divisible by the mesh size "
                          f"mesh.data x mesh.fsdp = {size} (the batch is split over all devices)")


def device_bytes(tree: Any, device=None) -> int:
    """Bytes of ``tree``'s arrays held on ``device`` (default: this process's first device), measured
    from ``addressable_shards``."""
    target = device or jax.local_devices()[0]
    total = 0
    for leaf in jax.tree.leaves(tree):
        if not isinstance(leaf, jax.Array):
            continue
        total += sum(s.data.nbytes for s in leaf.addressable_shards if s.device == target)
    return total
