"""The per-batch RL objective: hand-computed loss values, gradients and micro-batching."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.models import transformer
from coderl_jax.rl.batch import with_response_start
from coderl_jax.train import loss as loss_lib
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig


@pytest.fixture(scope="module")
def params():
    from train_batches import small_model_config

    init = jax.jit(transformer.init_params, static_argnums=0)
    return init(small_model_config(), jax.random.key(0))


# Shared configs keep the number of compilations (the bulk of the run time) small.
FREE = TrainConfig(kl_coef=0.0, log_entropy=False)  # policy loss only
SEQ_MEAN = FREE.replace(loss_agg_mode="seq-mean-token-mean")
WITH_KL = FREE.replace(kl_coef=0.1)

_loss_and_grad = jax.jit(jax.value_and_grad(loss_lib.rl_loss, has_aux=True), static_argnums=(4, 5))


def loss_and_grad(params, batch, model_config, config):
    """Loss, metrics and gradient of a whole batch (weights 1)."""
    (loss, metrics), grads = _loss_and_grad(params, batch, 1.0, 1.0, model_config, config)
    return loss, metrics, grads


@functools.partial(jax.jit, static_argnums=(2, 3))
def accumulated_gradient(params, batch, model_config, config):
    return step_lib._accumulated_gradient(params, batch, model_config, config, None)


def test_logprobs_apply_sampling_temperature_and_align_with_tokens(params, model_config, batch):
    temperature = 0.7
    logprobs = jax.jit(loss_lib.sequence_logprobs, static_argnums=(1, 3, 4, 5))
    logp, entropy = logprobs(params, model_config, batch, temperature, 4, True)
    logits = jax.jit(transformer.Transformer(model_config).apply)(
        {"params": params}, batch.tokens, batch.positions, batch.attention_mask
    )
    log_probs = jax.nn.log_softmax(np.asarray(logits) / temperature, axis=-1)
    # logp[:, t] scores tokens[:, t] with the distribution computed at position t - 1.
    expected = np.take_along_axis(log_probs[:, :-1], batch.tokens[:, 1:, None], axis=-1)[..., 0]
    np.testing.assert_allclose(logp[:, 1:], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(logp[:, 0], 0.0)
    expected_entropy = -np.sum(np.exp(log_probs) * log_probs, axis=-1)[:, :-1]
    np.testing.assert_allclose(entropy[:, 1:], expected_entropy, rtol=1e-5, atol=1e-5)
    # chunk_size 0: the whole [B, T, V] logits in one piece, same numbers.
    logp_full, entropy_full = logprobs(params, model_config, batch, temperature, 0, True)
    np.testing.assert_allclose(logp_full, logp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(entropy_full, entropy, rtol=1e-5, atol=1e-5)


GSPO = FREE.replace(
    policy_loss="gspo",
    loss_agg_mode="seq-mean-token-mean",
    clip_ratio_low=3e-4,
    clip_ratio_high=4e-4,
)
SUM_NORM = FREE.replace(loss_agg_mode="seq-mean-token-sum-norm", loss_scale_factor=4.0)


@pytest.mark.parametrize(
    "config",
    [FREE, SEQ_MEAN, GSPO, SUM_NORM],
    ids=["token-mean", "seq-mean-token-mean", "gspo", "seq-mean-token-sum-norm"],
)
def test_single_update_loss_is_minus_mean_advantage(params, model_config, batch, config):
    # One update: ratio == 1 (GSPO: sequence ratio == 1), so every token's loss is -A of
    # its row; the aggregation decides the weights.
    loss, metrics, _ = loss_and_grad(params, batch, model_config, config)
    counts = batch.loss_mask.sum(axis=1)  # row 3 is empty
    if config.loss_agg_mode == "token-mean":
        expected = -np.sum(batch.advantages * counts) / np.sum(counts)
    elif config.loss_agg_mode == "seq-mean-token-mean":
        expected = -np.mean(batch.advantages[counts > 0])
    else:  # sum over all tokens / loss_scale_factor
        expected = -np.sum(batch.advantages * counts) / 4.0
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["pg_loss"]) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["clipfrac"]) == 0.0 and float(metrics["ppo_kl"]) == 0.0


def test_single_update_gradient_is_the_policy_gradient(params, model_config, batch):
    # With old = stop_gradient(current), grad of the clipped loss == grad of -A * logp.
    _, _, grads = loss_and_grad(params, batch, model_config, FREE)

    @jax.jit
    def reinforce(params):
        logp, _ = loss_lib.sequence_logprobs(params, model_config, batch, 1.0, 128, False)
        mask = batch.loss_mask
        return -jnp.sum(batch.advantages[:, None] * logp * mask) / jnp.sum(mask)

    expected = jax.grad(reinforce)(params)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)


def test_kl_term_uses_reference_and_is_skipped_at_zero(params, model_config, batch):
    config = WITH_KL
    with pytest.raises(ValueError, match="ref_logprobs is required"):
        loss_and_grad(params, batch, model_config, config)
    # Reference == policy: k3 is 0 with zero gradient, so the loss equals the KL-free one.
    own = loss_lib.sequence_logprobs(params, model_config, batch, 1.0, 128, False)[0]
    loss, metrics, grads = loss_and_grad(
        params, batch.replace(ref_logprobs=own), model_config, config
    )
    free_loss, free_metrics, free_grads = loss_and_grad(params, batch, model_config, FREE)
    assert float(metrics["kl"]) == pytest.approx(0.0, abs=1e-6)
    assert "kl" not in free_metrics
    assert float(loss) == pytest.approx(float(free_loss), rel=1e-6)
    for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(free_grads)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    # A reference 0.5 nats below the policy everywhere: k3 = e^-0.5 + 0.5 - 1 per token.
    loss_shifted, metrics_shifted, _ = loss_and_grad(
        params, batch.replace(ref_logprobs=own - 0.5), model_config, config
    )
    k3 = np.exp(-0.5) + 0.5 - 1.0
    assert float(metrics_shifted["kl"]) == pytest.approx(k3, rel=1e-5)
    assert float(loss_shifted) == pytest.approx(float(free_loss) + 0.1 * k3, rel=1e-5)


def test_response_start_skips_prompt_columns_and_changes_nothing_else(params, model_config, batch):
    # Every response of the rollout batch starts at column 6.
    assert with_response_start(batch, multiple=4).response_start == 4
    skipping = with_response_start(batch, multiple=1)
    assert skipping.response_start == 6
    logprobs = jax.jit(loss_lib.sequence_logprobs, static_argnums=(1, 3, 4, 5))
    full_logp, full_entropy = logprobs(params, model_config, batch, 0.7, 4, True)
    logp, entropy = logprobs(params, model_config, skipping, 0.7, 4, True)
    np.testing.assert_allclose(logp[:, 6:], full_logp[:, 6:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(entropy[:, 6:], full_entropy[:, 6:], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(logp[:, :6], 0.0)
    # Loss (with a KL term) and gradient are those of the full computation.
    reference = batch.replace(ref_logprobs=np.asarray(full_logp) - 0.3)
    loss, metrics, grads = loss_and_grad(params, reference, model_config, WITH_KL)
    loss_skip, metrics_skip, grads_skip = loss_and_grad(
        params, reference.replace(response_start=6), model_config, WITH_KL
    )
    assert float(loss_skip) == pytest.approx(float(loss), rel=1e-6)
    assert float(metrics_skip["kl"]) == pytest.approx(float(metrics["kl"]), rel=1e-6)
    for got, want in zip(jax.tree.leaves(grads_skip), jax.tree.leaves(grads)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    # No row has loss anywhere: nothing can be skipped safely but column 0.
    assert with_response_start(batch.replace(loss_mask=0 * batch.loss_mask)).response_start == 0


@pytest.mark.parametrize("config", [FREE, SEQ_MEAN], ids=["token-mean", "seq-mean-token-mean"])
def test_micro_batch_accumulation_equals_full_batch(params, model_config, batch, config):
    # Rows have 0..10 loss tokens, so per-micro-batch means would weigh tokens unequally.
    full_loss, _, full_grads = loss_and_grad(params, batch, model_config, config)
    micro_config = config.replace(num_micro_batches=4)
    micro_grads, micro_metrics = accumulated_gradient(params, batch, model_config, micro_config)
    assert float(micro_metrics["loss"]) == pytest.approx(float(full_loss), rel=1e-5)
    for got, want in zip(jax.tree.leaves(micro_grads), jax.tree.leaves(full_grads)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7)
    norm = float(jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(full_grads))))
    assert norm > 1e-3  # the comparison is not between zeros
