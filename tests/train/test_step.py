"""The full train step: PPO epochs x mini-batches, and the NaN/Inf check."""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from update_checks import SMOOTH_ADAM, assert_same_update

from coderl_jax.models import transformer
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import device_put_batch
from coderl_jax.train import loss as loss_lib
from coderl_jax.train import metrics as metrics_lib
from coderl_jax.train import state as state_lib
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.optim import make_optimizer

MULTI_UPDATE = TrainConfig(
    learning_rate=3.0,  # large, so later updates see ratios != 1 and clip
    ppo_epochs=2,
    num_mini_batches=2,
    kl_coef=0.0,
    log_entropy=False,
    warmup_steps=2,
    **SMOOTH_ADAM,  # comparable on any machine (tests/train/update_checks.py)
)


@pytest.fixture(scope="module")
def one_device_mesh():
    return mesh_lib.make_mesh(1, 1, 1, devices=jax.devices()[:1])


def test_epochs_and_mini_batches_make_sequential_updates(model_config, batch, one_device_mesh):
    mesh = one_device_mesh
    init = jax.jit(transformer.init_params, static_argnums=0)
    params = jax.device_get(init(model_config, jax.random.key(3)))
    logprobs_fn = step_lib.make_logprobs_fn(model_config, MULTI_UPDATE, mesh)
    device_batch = device_put_batch(batch, mesh)
    old = logprobs_fn(params, device_batch)
    device_batch = device_batch.replace(old_logprobs=old)

    state = state_lib.create_train_state(params, model_config, MULTI_UPDATE, mesh)
    step_fn = step_lib.make_train_step(model_config, MULTI_UPDATE, mesh)
    new_state, metrics = step_fn(state, device_batch)

    # The same four updates by hand: mini-batch j holds rows j, j + 2, ...; old log-probs
    # stay those of the initial params in both epochs.
    optimizer = make_optimizer(MULTI_UPDATE)
    grad_fn = jax.jit(
        jax.grad(lambda p, b: loss_lib.rl_loss(p, b, 1.0, 1.0, model_config, MULTI_UPDATE)[0])
    )
    update_fn = jax.jit(optimizer.update)
    host_batch = jax.device_get(device_batch)
    expected, opt_state = params, optimizer.init(params)
    for _epoch in range(2):
        for j in range(2):
            mini = jax.tree.map(lambda x, j=j: x[j::2], host_batch)
            updates, opt_state = update_fn(grad_fn(expected, mini), opt_state, expected)
            expected = optax.apply_updates(expected, updates)
    assert_same_update(new_state.params, expected, params)

    assert int(new_state.step) == 1
    assert metrics["train/updates"] == 4
    # Warmup over 2 updates: lr 0, 0.5 peak, peak, peak -> mean 0.625 peak.
    assert float(metrics["train/lr"]) == pytest.approx(0.625 * 3.0, rel=1e-6)
    assert float(metrics["train/clipfrac"]) > 0  # the policy moved away from the old one
    assert float(metrics["train/tokens"]) == batch.loss_mask.sum()
    assert float(metrics["rollout/align/count"]) == 2
    code = batch.task_kind == 0
    assert float(metrics["rollout/code/reward_mean"]) == pytest.approx(batch.rewards[code].mean())
    assert float(metrics["rollout/code/advantage_std"]) == pytest.approx(
        batch.advantages[code].std(), rel=1e-5
    )
    with pytest.raises(ValueError, match="old_logprobs is required"):
        step_fn(new_state, device_put_batch(batch, mesh))


def test_non_finite_loss_raises_with_step_number(model_config, batch, one_device_mesh):
    mesh = one_device_mesh
    config = TrainConfig(kl_coef=0.0, log_entropy=False)
    state = state_lib.init_train_state(model_config, config, mesh, jax.random.key(0))
    step_fn = step_lib.make_train_step(model_config, config, mesh)
    late = metrics_lib.MetricsOneStepLate()

    state, metrics = step_fn(state, device_put_batch(batch, mesh))
    assert late.push(metrics) is None
    bad = batch.replace(advantages=np.where(np.arange(8) == 5, np.nan, batch.advantages))
    state, bad_metrics = step_fn(state, device_put_batch(bad, mesh))
    good = late.push(bad_metrics)  # returns step 0's metrics, checked
    assert good["train/step"] == 0 and good["train/nonfinite"] == 0
    with pytest.raises(FloatingPointError, match="train step 1"):
        late.flush()
    with pytest.raises(FloatingPointError, match="train step 1"):
        metrics_lib.check_finite(jax.device_get(bad_metrics))


def test_batch_must_split_evenly(model_config, batch):
    mesh = mesh_lib.make_mesh(8, 1, 1)
    config = TrainConfig(kl_coef=0.0, num_micro_batches=2)
    state = state_lib.abstract_train_state(model_config, config)
    step_fn = step_lib.make_train_step(model_config, config, mesh)
    with pytest.raises(ValueError, match="cannot be spread evenly over the 8"):
        step_fn.lower(state, device_put_batch(batch, mesh))


@pytest.mark.slow
def test_bf16_compute_with_fp32_master_weights_and_remat(model_config, batch, one_device_mesh):
    # The presets' numerics: bf16 weights and compute; training keeps fp32 master weights
    # and remats every layer. The loss must match the fp32 model's to bf16 precision.
    mesh = one_device_mesh
    bf16_model = model_config.replace(param_dtype="bfloat16", compute_dtype="bfloat16")
    config = TrainConfig(kl_coef=0.0, remat_policy="full", learning_rate=1e-3)
    init = jax.jit(transformer.init_params, static_argnums=0)
    params = init(bf16_model, jax.random.key(5))
    state = state_lib.create_train_state(params, bf16_model, config, mesh)
    new_state, metrics = step_lib.make_train_step(bf16_model, config, mesh)(
        state, device_put_batch(batch, mesh)
    )
    leaves = jax.tree.leaves(new_state.params)
    assert all(leaf.dtype == np.float32 for leaf in leaves)
    assert np.isfinite(float(metrics["train/loss"])) and float(metrics["train/grad_norm"]) > 0
    # Same weights in fp32 end to end: the policy loss of one update is -mean(A) over
    # tokens either way; the entropy (a function of the logits) differs by bf16 rounding.
    fp32_model = model_config
    fp32_state = state_lib.create_train_state(params, fp32_model, config, mesh)
    _, fp32_metrics = step_lib.make_train_step(fp32_model, config, mesh)(
        fp32_state, device_put_batch(batch, mesh)
    )
    assert float(metrics["train/pg_loss"]) == pytest.approx(
        float(fp32_metrics["train/pg_loss"]), rel=1e-5
    )
    assert float(metrics["train/entropy"]) == pytest.approx(
        float(fp32_metrics["train/entropy"]), rel=2e-2
    )
    assert float(metrics["train/grad_norm"]) == pytest.approx(
        float(fp32_metrics["train/grad_norm"]), rel=5e-2
    )
