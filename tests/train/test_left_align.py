"""`left_align`: moving every per-token field of a TrainBatch, and an unchanged train step."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from train_batches import rollout_batch
from update_checks import SMOOTH_ADAM, assert_same_update

from coderl_jax.models import transformer
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import TrainBatch, device_put_batch, left_align
from coderl_jax.train import state as state_lib
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig


def _hand_batch() -> TrainBatch:
    # Row 0: 2 leading pads, 3 real, 1 trailing pad. Row 1: no padding. Row 2: 1 leading pad.
    mask = np.array([[0, 0, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]], np.int32)
    return TrainBatch(
        tokens=np.array([[9, 9, 11, 12, 13, 9], [21, 22, 23, 24, 25, 26], [9, 31, 32, 33, 34, 35]]),
        attention_mask=mask,
        positions=np.array([[0, 0, 0, 1, 2, 2], [0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 3, 4]]),
        loss_mask=np.array(
            [[0, 0, 0, 1, 1, 0], [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1]], np.float32
        ),
        advantages=np.arange(18, dtype=np.float32).reshape(3, 6),
        rewards=np.array([1.0, 0.0, 0.5], np.float32),
        task_kind=np.array([0, 1, 0], np.int32),
        old_logprobs=-np.arange(18, dtype=np.float32).reshape(3, 6),
        ref_logprobs=None,
    )


def test_right_align_moves_every_per_token_field():
    aligned = left_align(_hand_batch())
    np.testing.assert_array_equal(
        aligned.tokens, [[11, 12, 13, 9, 9, 9], [21, 22, 23, 24, 25, 26], [31, 32, 33, 34, 35, 9]]
    )
    np.testing.assert_array_equal(
        aligned.attention_mask, [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]]
    )
    np.testing.assert_array_equal(
        aligned.positions, [[0, 1, 2, 2, 0, 0], [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 0]]
    )
    np.testing.assert_array_equal(
        aligned.loss_mask, [[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 0]]
    )
    np.testing.assert_array_equal(
        aligned.advantages, [[2, 3, 4, 5, 0, 1], [6, 7, 8, 9, 10, 11], [13, 14, 15, 16, 17, 12]]
    )
    np.testing.assert_array_equal(
        aligned.old_logprobs,
        [[-2, -3, -4, -5, 0, -1], [-6, -7, -8, -9, -10, -11], [-13, -14, -15, -16, -17, -12]],
    )
    assert aligned.ref_logprobs is None
    np.testing.assert_array_equal(aligned.rewards, [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(aligned.task_kind, [0, 1, 0])
    aligned.validate()


def test_right_align_keeps_per_sequence_advantages_and_is_idempotent():
    batch = _hand_batch().replace(advantages=np.array([0.5, -1.0, 2.0], np.float32))
    aligned = left_align(batch)
    np.testing.assert_array_equal(aligned.advantages, [0.5, -1.0, 2.0])
    again = left_align(aligned)
    for a, b in zip(jax.tree.leaves(aligned), jax.tree.leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_validate_rejects_loss_before_response_start():
    batch = _hand_batch()  # the first loss column is 3
    batch.replace(response_start=3).validate()
    with pytest.raises(ValueError, match="loss before response_start=4"):
        batch.replace(response_start=4).validate()
    with pytest.raises(ValueError, match="outside"):
        batch.replace(response_start=6).validate()


def test_right_align_rejects_padding_between_real_tokens():
    batch = _hand_batch()
    mask = batch.attention_mask.copy()
    mask[2] = [0, 1, 1, 0, 1, 1]
    with pytest.raises(ValueError, match="row 2 has padding between real tokens"):
        left_align(batch.replace(attention_mask=mask))


def _train_batch() -> TrainBatch:
    """The shared rollout batch (left + right padding) with every per-token field set."""
    batch = rollout_batch()
    rng = np.random.default_rng(7)
    shape = batch.tokens.shape
    return batch.replace(
        advantages=(1.0 + rng.normal(size=shape)).astype(np.float32),
        old_logprobs=(-4.0 + 0.1 * rng.normal(size=shape)).astype(np.float32),
        ref_logprobs=(-4.0 + 0.1 * rng.normal(size=shape)).astype(np.float32),
    )


def _step_metrics_and_params(model_config, batch: TrainBatch):
    # Two updates (PPO epochs), so the second one reads the old log-probs (ratios != 1).
    train_config = TrainConfig(learning_rate=1.0, kl_coef=0.1, ppo_epochs=2, **SMOOTH_ADAM)
    mesh = mesh_lib.make_mesh(1, 1, 1, devices=jax.devices()[:1])
    params = jax.device_get(
        jax.jit(transformer.init_params, static_argnums=0)(model_config, jax.random.key(3))
    )
    state = state_lib.create_train_state(params, model_config, train_config, mesh)
    step_fn = step_lib.make_train_step(model_config, train_config, mesh)
    state, metrics = step_fn(state, device_put_batch(batch, mesh))
    return jax.device_get(metrics), jax.device_get(state.params), params


def test_train_step_on_right_aligned_batch_matches_left_padded(model_config):
    batch = _train_batch()
    assert batch.attention_mask[:, 0].min() == 0  # the original really is left-padded
    metrics, params, start = _step_metrics_and_params(model_config, batch)
    aligned = left_align(batch)
    aligned_metrics, aligned_params, _ = _step_metrics_and_params(model_config, aligned)
    fused_config = model_config.replace(attention_impl="xla_fused")
    fused_metrics, fused_params, _ = _step_metrics_and_params(fused_config, aligned)
    assert abs(float(metrics["train/loss"])) > 0.1  # a real loss (policy + KL), not zero
    for other in (aligned_metrics, fused_metrics):
        for key in ("train/loss", "train/grad_norm", "train/kl", "train/tokens"):
            assert float(other[key]) == pytest.approx(float(metrics[key]), rel=1e-5), key
    assert_same_update(aligned_params, params, start)
    assert_same_update(fused_params, params, start)
