"""Device mesh, logical-axis rules and sharding helpers.

The mesh has three axes: ``data`` (pure data parallel), ``fsdp`` (data parallel with
parameters and optimizer state sharded across it, ZeRO-3 style) and ``tensor``
(Megatron-style tensor parallel over attention heads and the MLP width). Every model weight
carries logical axis names (see `coderl_jax.models.transformer`); `LOGICAL_AXIS_RULES`
maps them to mesh axes here and nowhere else. A dimension that a mesh axis does not divide
(e.g. 2 kv heads over tensor=4) is replicated over that axis instead.

Batches are sharded over (data, fsdp) along their leading dimension.

Multi-host runs use JAX's own multi-controller runtime: every process calls
`initialize_distributed` (explicit coordinator/process arguments, ``JAX_COORDINATOR_ADDRESS``
/ ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` environment variables, or a detected SLURM /
Cloud TPU / Open MPI environment), builds the same mesh over all processes' devices and
feeds only its own rows of each batch (`global_batch_array`) and reads back only its own
rows of each result (`local_rows`).
"""

from __future__ import annotations

import logging
import math
import os
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


# Environment variables whose presence means "launched as one of several processes".
_CLUSTER_ENV_MARKERS = (
    "JAX_COORDINATOR_ADDRESS",  # explicit (our launchers, or by hand)
    "SLURM_JOB_ID",  # SLURM srun (one task per host)
    "TPU_WORKER_HOSTNAMES",  # TPU VM pod slices (GKE)
    "CLOUD_TPU_TASK_ID",  # Cloud TPU VM
    "OMPI_COMM_WORLD_SIZE",  # Open MPI mpirun
)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    local_device_ids: Sequence[int] | None = None,
) -> bool:
    """Starts JAX's multi-process runtime when this is one process of several.

    Explicit arguments win; otherwise ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
    ``JAX_PROCESS_ID`` and ``JAX_LOCAL_DEVICE_IDS`` (comma-separated) are read, and JAX's own
    cluster detection (SLURM, Cloud TPU VM, Open MPI) fills what is missing. With none of these set (a single process, the laptop
    and test default) nothing happens. Must run before any other JAX call.

    Returns:
      True when `jax.distributed.initialize` was called.
    """
    if num_processes is None and os.environ.get("JAX_NUM_PROCESSES"):
        num_processes = int(os.environ["JAX_NUM_PROCESSES"])
    if process_id is None and os.environ.get("JAX_PROCESS_ID"):
        process_id = int(os.environ["JAX_PROCESS_ID"])
    if local_device_ids is None and os.environ.get("JAX_LOCAL_DEVICE_IDS"):
        # One process driving several GPUs under SLURM (JAX would otherwise give each
        # process only the GPU numbered SLURM_LOCALID); see launch/slurm_gpu.sbatch.
        local_device_ids = [int(i) for i in os.environ["JAX_LOCAL_DEVICE_IDS"].split(",")]
    explicit = coordinator_address is not None or num_processes is not None
    slurm_tasks = int(os.environ.get("SLURM_NTASKS", "1"))
    in_cluster = any(name in os.environ for name in _CLUSTER_ENV_MARKERS)
    if not explicit and (not in_cluster or ("SLURM_JOB_ID" in os.environ and slurm_tasks == 1)):
        return False
    if num_processes == 1:
        return False
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
    )
    log.info(
        "jax.distributed: process %d of %d, %d local / %d global devices",
        jax.process_index(),
        jax.process_count(),
        jax.local_device_count(),
        jax.device_count(),
    )
    return True


def sync_processes(name: str) -> None:
    """Barrier: every process waits here until all have arrived (no-op with one process).

    For files that process 0 writes and the others then read (shared caches, the
    reference policy)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def max_over_processes(value: int) -> int:
    """The maximum of an int over all processes (a collective: every process calls it), for
    static shapes that all hosts must agree on; ``value`` itself with one process."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils

    return int(np.max(multihost_utils.process_allgather(np.asarray(value))))


def on_process_zero_first(build, name: str):
    """``build()`` on process 0, then on the others once it is done: a cache that several
    processes would otherwise write at once (the tiny model, a TFDS dataset) is built
    once and only read by the rest (or rebuilt where hosts do not share a disk)."""
    if jax.process_index() == 0:
        result = build()
    sync_processes(name)
    if jax.process_index() != 0:
        result = build()
    return result


def global_batch_array(local_rows: np.ndarray, mesh: Mesh) -> jax.Array:
    """A global array sharded over (data, fsdp) from this process's rows.

    Each process passes its own contiguous block of rows, ``B / process_count`` of them,
    in process order (process p holds global rows ``[p * b, (p + 1) * b)``). With one
    process this is an ordinary sharded `device_put` of the whole batch.

    Args:
      local_rows: ``[b, ...]`` host array, this process's share of the global batch.
      mesh: the (data, fsdp, tensor) mesh; ``b * process_count`` must be a multiple of
        `batch_divisor`.
    """
    local_rows = np.asarray(local_rows)
    global_rows = local_rows.shape[0] * jax.process_count()
    if global_rows % batch_divisor(mesh):
        raise ValueError(
            f"global batch of {global_rows} rows ({local_rows.shape[0]} per process) is not a "
            f"multiple of the data x fsdp mesh size {batch_divisor(mesh)}"
        )
    sharding = batch_sharding(mesh, local_rows.ndim)
    global_shape = (global_rows, *local_rows.shape[1:])
    return jax.make_array_from_process_local_data(sharding, local_rows, global_shape)


def local_rows(x: jax.Array | np.ndarray) -> np.ndarray:
    """This process's rows of a row-sharded global array, as numpy (the inverse of
    `global_batch_array`).

    With one process, or for an array every process holds whole (replicated), this is
    ``np.asarray(x)``. Otherwise the addressable shards are ordered by their first row and
    shards holding the same rows (replicas over the tensor axis) are kept once.
    """
    if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    by_first_row: dict[int, jax.Array] = {}
    for shard in x.addressable_shards:
        rows = shard.index[0] if shard.index else slice(None)
        by_first_row.setdefault(rows.start or 0, shard.data)
    return np.concatenate([np.asarray(by_first_row[k]) for k in sorted(by_first_row)], axis=0)
