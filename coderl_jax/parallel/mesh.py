"""Device mesh, logical-axis rules and sharding helpers.

The mesh has three axes: ``data`` (pure data parallel), ``fsdp`` (data parallel with
parameters and optimizer state sharded across it, ZeRO-3 style) and ``tensor``
(Megatron-style tensor parallel over attention heads and the MLP width). Every model weight
carries logical axis names (see `coderl_jax.models.transformer`); `LOGICAL_AXIS_RULES`
maps them to mesh axes here and nowhere else. A dimension that a mesh axis does not divide
(e.g. 2 kv heads over tensor=4) is replicated over that axis instead.

Batches are sharded over (data, fsdp) along their leading dimension; several processes
feed and read their own rows through `coderl_jax.parallel.multihost`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

log = logging.getLogger(__name__)

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")

# logical axis name -> mesh axis (or tuple of mesh axes, or None = replicated).
LOGICAL_AXIS_RULES: dict[str, str | tuple[str, ...] | None] = {
    "batch": BATCH_AXES,
    "vocab": "tensor",
    "embed": "fsdp",
    "heads": "tensor",
    "kv_heads": "tensor",
    "head_dim": None,
    "mlp": "tensor",
    "norm": None,
    "layers": None,
    "length": None,
}


def make_mesh(
    data: int = -1, fsdp: int = 1, tensor: int = 1, devices: Sequence | None = None
) -> Mesh:
    """A (data, fsdp, tensor) mesh; one size may be -1 ("all remaining devices")."""
    devices = list(devices if devices is not None else jax.devices())
    sizes = [data, fsdp, tensor]
    if sizes.count(-1) > 1:
        raise ValueError(
            f"at most one mesh axis may be -1, got data={data} fsdp={fsdp} tensor={tensor}"
        )
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if len(devices) % known:
            raise ValueError(
                f"{len(devices)} devices do not divide into mesh axes of product {known}"
            )
        sizes[sizes.index(-1)] = len(devices) // known
    if math.prod(sizes) != len(devices):
        raise ValueError(
            f"mesh data={sizes[0]} x fsdp={sizes[1]} x tensor={sizes[2]} needs "
            f"{math.prod(sizes)} devices, {len(devices)} available"
        )
    # Auto axes: XLA's sharding propagation decides intermediate layouts; we constrain
    # parameters and batches explicitly.
    auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    if devices == list(jax.devices()):
        return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=auto)
    return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES, axis_types=auto)


def _mesh_axes_for(
    logical: str | None, dim: int, mesh: Mesh, rules
) -> str | tuple[str, ...] | None:
    if logical is None:
        return None
    target = rules.get(logical)
    if target is None:
        return None
    axes = (target,) if isinstance(target, str) else tuple(target)
    kept = tuple(a for a in axes if mesh.shape[a] > 1)
    size = math.prod(mesh.shape[a] for a in kept)
    if kept and dim % size:
        log.info("dimension %d (%s) not divisible by mesh axes %s: replicated", dim, logical, kept)
        return None
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else kept


def logical_sharding(
    logical_spec: PartitionSpec, shape: Sequence[int], mesh: Mesh, rules=LOGICAL_AXIS_RULES
) -> NamedSharding:
    """NamedSharding for an array with the given logical axis names."""
    names = tuple(logical_spec) + (None,) * (len(shape) - len(logical_spec))
    spec = [_mesh_axes_for(name, dim, mesh, rules) for name, dim in zip(names, shape)]
    used = [a for s in spec if s for a in ((s,) if isinstance(s, str) else s)]
    if len(used) != len(set(used)):
        raise ValueError(f"logical spec {logical_spec} uses a mesh axis twice: {spec}")
    return NamedSharding(mesh, PartitionSpec(*spec))


def param_shardings(config, mesh: Mesh, rules=LOGICAL_AXIS_RULES):
    """Pytree of NamedSharding for the model's params (from their logical axis names)."""
    from coderl_jax.models import transformer

    logical = transformer.param_logical_axes(config)
    abstract = jax.eval_shape(lambda: transformer.init_params(config, jax.random.key(0)))
    return jax.tree.map(
        lambda spec, x: logical_sharding(spec, x.shape, mesh, rules),
        logical,
        abstract,
        is_leaf=lambda x: isinstance(x, PartitionSpec),
    )


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
    """Leading (batch) dimension over (data, fsdp); the rest replicated."""
    return NamedSharding(mesh, PartitionSpec(BATCH_AXES, *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_divisor(mesh: Mesh) -> int:
    """Global batch sizes must be multiples of this (devices over the batch axes)."""
    return mesh.shape["data"] * mesh.shape["fsdp"]
