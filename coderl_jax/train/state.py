"""`TrainState` (params, optimizer state, step), its shardings, and sharded initialisation.

Initialisation never materialises the model on one device: the state's shapes come from
`jax.eval_shape`, its shardings from the logical-axis rules (`coderl_jax.parallel.mesh`), and a
jitted init with those ``out_shardings`` makes every device build only its own shards.
The optimizer state's moments take their parameter's sharding (ZeRO-3 style over fsdp);
its scalars (update counts) are replicated.

With ``TrainConfig.master_weights_fp32`` the parameters (and AdamW moments) are stored in
float32 while the model computes in its ``compute_dtype`` (bf16 for the presets): the
decoder casts weights to the compute dtype at every matmul.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.optim import make_optimizer


@flax.struct.dataclass
class TrainState:
    """Everything the train step updates. A pure pytree (configs live outside)."""

    step: jax.Array  # int32 scalar: rollout batches trained on so far
    params: Any  # model parameters (fp32 with master weights)
    opt_state: optax.OptState  # optimizer state (moments shaped like params)


def training_model_config(model_config: ModelConfig, train_config: TrainConfig) -> ModelConfig:
    """The model config used for training: fp32 storage with master weights, and the
    train config's remat policy when it sets one."""
    changes = {}
    if train_config.master_weights_fp32:
        changes["param_dtype"] = "float32"
    if train_config.remat_policy is not None:
        changes["remat_policy"] = train_config.remat_policy
    return model_config.replace(**changes)


def _state_from_params(params: Any, optimizer: optax.GradientTransformation) -> TrainState:
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params)
    )


def state_shardings(model_config: ModelConfig, train_config: TrainConfig, mesh: Mesh) -> TrainState:
    """A TrainState of NamedShardings (``model_config`` as returned by
    `training_model_config`)."""
    optimizer = make_optimizer(train_config)
    param_shardings = mesh_lib.param_shardings(model_config, mesh)
    abstract = jax.eval_shape(
        lambda: _state_from_params(
            transformer.init_params(model_config, jax.random.key(0)), optimizer
        )
    )
    replicated = mesh_lib.replicated(mesh)
    opt_shardings = optax.tree_map_params(
        optimizer,
        lambda _, sharding: sharding,
        abstract.opt_state,
        param_shardings,
        transform_non_params=lambda _: replicated,
    )
    return TrainState(step=replicated, params=param_shardings, opt_state=opt_shardings)


def abstract_train_state(model_config: ModelConfig, train_config: TrainConfig) -> TrainState:
    """Shapes and dtypes of the state (`jax.ShapeDtypeStruct`s), nothing allocated."""
    config = training_model_config(model_config, train_config)
    optimizer = make_optimizer(train_config)
    return jax.eval_shape(
        lambda: _state_from_params(transformer.init_params(config, jax.random.key(0)), optimizer)
    )


def init_train_state(
    model_config: ModelConfig, train_config: TrainConfig, mesh: Mesh, rng: jax.Array
) -> TrainState:
    """A freshly initialised, sharded state (random weights)."""
    config = training_model_config(model_config, train_config)
    optimizer = make_optimizer(train_config)
    shardings = state_shardings(config, train_config, mesh)

    def init(rng):
        return _state_from_params(transformer.init_params(config, rng), optimizer)

    return jax.jit(init, out_shardings=shardings)(rng)


def create_train_state(
    params: Any, model_config: ModelConfig, train_config: TrainConfig, mesh: Mesh
) -> TrainState:
    """A sharded state around existing params (e.g. a loaded checkpoint), cast to the
    storage dtype; the optimizer state is created on device, shard by shard."""
    config = training_model_config(model_config, train_config)
    optimizer = make_optimizer(train_config)
    shardings = state_shardings(config, train_config, mesh)
    dtype = jnp.dtype(config.param_dtype)

    def build(params):
        return _state_from_params(jax.tree.map(lambda p: p.astype(dtype), params), optimizer)

    params = jax.device_put(params, shardings.params)
    return jax.jit(build, out_shardings=shardings)(params)
