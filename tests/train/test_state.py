"""TrainState shapes, dtypes and shardings; a 7B state is only ever built abstractly."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import PartitionSpec as P

from coderl_jax.models import transformer
from coderl_jax.models.config import PRESETS
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.train import state as state_lib
from coderl_jax.train.config import TrainConfig


def test_7b_state_is_planned_without_allocation():
    model_config = PRESETS["qwen2.5-coder-7b"]  # bf16 weights, bf16 compute
    config = TrainConfig(remat_policy="full")
    abstract = state_lib.abstract_train_state(model_config, config)
    train_model = state_lib.training_model_config(model_config, config)
    assert (train_model.param_dtype, train_model.compute_dtype) == ("float32", "bfloat16")
    assert train_model.remat_policy == "full"
    param_leaves = jax.tree.leaves(abstract.params)
    assert all(leaf.dtype == jnp.float32 for leaf in param_leaves)
    assert sum(math.prod(leaf.shape) for leaf in param_leaves) == model_config.num_params
    adam = abstract.opt_state[1][0]
    assert isinstance(adam, optax.ScaleByAdamState)
    assert adam.mu["lm_head"].shape == (3584, 152064) and adam.mu["lm_head"].dtype == jnp.float32

    mesh = mesh_lib.make_mesh(1, 4, 2)
    shardings = state_lib.state_shardings(train_model, config, mesh)
    assert shardings.params["lm_head"].spec == P("fsdp", "tensor")
    assert shardings.params["layers"]["mlp"]["down_proj"]["kernel"].spec == P(
        None, "tensor", "fsdp"
    )
    assert adam_spec(shardings, "embedding") == P("tensor", "fsdp")
    # Every byte of params + Adam moments is split 8 ways except the small replicated
    # norms; fp32 params + 2 moments of 7.6B parameters = 91 GB -> ~11.4 GB per device.
    per_device = 0
    for leaf, sharding in zip(
        jax.tree.leaves(abstract), jax.tree.leaves(shardings, is_leaf=_is_sharding)
    ):
        per_device += math.prod(sharding.shard_shape(leaf.shape)) * leaf.dtype.itemsize
    total = 3 * 4 * model_config.num_params
    assert total / 8 <= per_device < total / 8 * 1.01


def adam_spec(shardings, name):
    return shardings.opt_state[1][0].mu[name].spec


def _is_sharding(x):
    return isinstance(x, jax.sharding.Sharding)


def test_create_train_state_casts_to_fp32_master_weights(model_config):
    bf16_model = model_config.replace(param_dtype="bfloat16", compute_dtype="bfloat16")
    params = jax.jit(transformer.init_params, static_argnums=0)(bf16_model, jax.random.key(0))
    mesh = mesh_lib.make_mesh(2, 2, 2)
    state = state_lib.create_train_state(params, bf16_model, TrainConfig(), mesh)
    assert int(state.step) == 0
    got = state.params["layers"]["attn"]["q_proj"]["kernel"]
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(got, params["layers"]["attn"]["q_proj"]["kernel"].astype(float))
    assert got.sharding.spec == P(None, "fsdp", "tensor", None)
    kept = state_lib.create_train_state(
        params, bf16_model, TrainConfig(master_weights_fp32=False), mesh
    )
    assert kept.params["embedding"].dtype == jnp.bfloat16
