"""Multi-host helpers: JAX's multi-controller runtime, barriers and per-process rows.

Multi-host runs use JAX's own runtime: every process calls `initialize_distributed`
(explicit coordinator/process arguments, ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES``
/ ``JAX_PROCESS_ID`` environment variables, or a detected SLURM / Cloud TPU / Open MPI
environment), builds the same mesh over all processes' devices
(`coderl_jax.parallel.mesh.make_mesh`), feeds only its own rows of each batch
(`global_batch_array`) and reads back only its own rows of each result (`local_rows`).
Every function is a no-op or the identity with a single process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh

from coderl_jax.parallel.mesh import batch_divisor, batch_sharding

log = logging.getLogger(__name__)


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
