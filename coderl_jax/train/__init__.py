"""The RL train step: config, device batch, sharded state, jitted update, metrics.

Typical use (one rollout batch per call)::

    state = init_train_state(model_config, train_config, mesh, rng)  # or create_train_state
    step = make_train_step(model_config, train_config, mesh)
    ref_logprobs = make_logprobs_fn(model_config, train_config, mesh)  # if kl_coef > 0
    late = MetricsOneStepLate()
    for host_batch in batches:
        batch = device_put_batch(host_batch, mesh)
        batch = batch.replace(ref_logprobs=ref_logprobs(ref_params, batch))
        state, metrics = step(state, batch)
        logged = late.push(metrics)  # previous step's metrics; raises on NaN/Inf
"""

from coderl_jax.rl.batch import TaskKind, TrainBatch, device_put_batch
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.metrics import MetricsOneStepLate, check_finite
from coderl_jax.train.state import (
    TrainState,
    abstract_train_state,
    create_train_state,
    init_train_state,
    training_model_config,
)
from coderl_jax.train.step import make_logprobs_fn, make_train_step, train_step

__all__ = [
    "TaskKind",
    "MetricsOneStepLate",
    "TrainBatch",
    "TrainConfig",
    "TrainState",
    "abstract_train_state",
    "check_finite",
    "create_train_state",
    "device_put_batch",
    "init_train_state",
    "make_logprobs_fn",
    "make_train_step",
    "train_step",
    "training_model_config",
]
