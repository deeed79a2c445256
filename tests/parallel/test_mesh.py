"""Mesh construction, logical-axis rules, batch placement and the multi-host entry point."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from coderl_jax.models.config import ModelConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.parallel import multihost


def test_make_mesh_fills_one_axis_and_rejects_bad_sizes():
    mesh = mesh_lib.make_mesh(-1, 2, 2)
    assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "tensor": 2}
    with pytest.raises(ValueError, match="needs 12 devices, 8 available"):
        mesh_lib.make_mesh(3, 2, 2)
    with pytest.raises(ValueError, match="at most one mesh axis may be -1"):
        mesh_lib.make_mesh(-1, -1, 2)


def test_indivisible_dimension_is_replicated():
    config = ModelConfig(num_heads=8, num_kv_heads=2, head_dim=8, hidden_size=64)
    shardings = mesh_lib.param_shardings(config, mesh_lib.make_mesh(1, 2, 4))
    attn = shardings["layers"]["attn"]
    assert attn["q_proj"]["kernel"].spec == P(None, "fsdp", "tensor", None)
    # 2 kv heads cannot be split 4 ways: replicated over tensor, still fsdp on embed.
    assert attn["k_proj"]["kernel"].spec == P(None, "fsdp", None, None)


def test_global_batch_array_single_process():
    mesh = mesh_lib.make_mesh(2, 2, 2)
    rows = np.arange(8 * 3).reshape(8, 3)
    array = multihost.global_batch_array(rows, mesh)
    assert array.sharding.spec == P(("data", "fsdp"), None)
    np.testing.assert_array_equal(np.asarray(array), rows)
    assert array.addressable_shards[0].data.shape == (2, 3)
    with pytest.raises(ValueError, match="not a multiple of the data x fsdp mesh size 4"):
        multihost.global_batch_array(rows[:6], mesh)


def test_initialize_distributed_is_a_no_op_for_a_single_process(monkeypatch):
    for name in multihost._CLUSTER_ENV_MARKERS + ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert multihost.initialize_distributed() is False
    monkeypatch.setenv("SLURM_JOB_ID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert multihost.initialize_distributed() is False  # a one-task SLURM job
    assert jax.process_count() == 1
