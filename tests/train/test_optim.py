"""Learning-rate schedule, weight-decay mask and clipping, against hand-computed numbers."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from coderl_jax.train.config import TrainConfig
from coderl_jax.train.optim import learning_rate_schedule, make_optimizer, weight_decay_mask


def test_warmup_then_cosine():
    config = TrainConfig(
        learning_rate=1e-3,
        warmup_steps=10,
        lr_schedule="cosine",
        decay_steps=100,
        final_lr_ratio=0.1,
    )
    lr = learning_rate_schedule(config)
    assert float(lr(0)) == 0.0
    assert float(lr(5)) == pytest.approx(5e-4)
    assert float(lr(10)) == pytest.approx(1e-3)
    # Halfway through the cosine: 0.1 + 0.9 * (1 + cos(pi / 2)) / 2 = 0.55 of the peak.
    assert float(lr(60)) == pytest.approx(5.5e-4, rel=1e-5)
    assert float(lr(110)) == pytest.approx(1e-4, rel=1e-5)
    assert float(lr(500)) == pytest.approx(1e-4, rel=1e-5)


def test_constant_schedule_without_warmup():
    lr = learning_rate_schedule(TrainConfig(learning_rate=2e-6))
    assert float(lr(0)) == pytest.approx(2e-6) and float(lr(1000)) == pytest.approx(2e-6)


def test_weight_decay_skips_norms_and_biases():
    params = {
        "embedding": jnp.ones((4, 2)),
        "final_norm": {"scale": jnp.ones(2)},
        "layers": {"attn": {"q_proj": {"kernel": jnp.ones((2, 2, 1)), "bias": jnp.ones((2, 1))}}},
    }
    mask = weight_decay_mask(params)
    assert mask["embedding"] and mask["layers"]["attn"]["q_proj"]["kernel"]
    assert not mask["final_norm"]["scale"]
    assert not mask["layers"]["attn"]["q_proj"]["bias"]  # rank 2 (stacked), still a bias
    # Zero gradient: only decoupled decay moves the weights, kernel -> 1 - lr * wd.
    optimizer = make_optimizer(TrainConfig(learning_rate=0.1, weight_decay=0.5))
    state = optimizer.init(params)
    zeros = optax.tree_utils.tree_zeros_like(params)
    updates, _ = optimizer.update(zeros, state, params)
    new = optax.apply_updates(params, updates)
    np.testing.assert_allclose(new["layers"]["attn"]["q_proj"]["kernel"], 0.95, rtol=1e-6)
    np.testing.assert_allclose(new["embedding"], 0.95, rtol=1e-6)
    np.testing.assert_allclose(new["layers"]["attn"]["q_proj"]["bias"], 1.0)
    np.testing.assert_allclose(new["final_norm"]["scale"], 1.0)


def test_global_norm_clipping_before_adam():
    # b1 = b2 = 0 and eps = 1: the Adam step is -lr * g / (|g| + 1), so clipping shows.
    config = TrainConfig(
        learning_rate=1.0, adam_b1=0.0, adam_b2=0.0, adam_eps=1.0, weight_decay=0.0
    )
    params = {"kernel": jnp.zeros(2)}
    grads = {"kernel": jnp.array([3.0, 4.0])}  # norm 5 -> clipped to [0.6, 0.8]
    optimizer = make_optimizer(config)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    np.testing.assert_allclose(updates["kernel"], [-0.6 / 1.6, -0.8 / 1.8], rtol=1e-6)
    unclipped = make_optimizer(config.replace(max_grad_norm=None))
    updates, _ = unclipped.update(grads, unclipped.init(params), params)
    np.testing.assert_allclose(updates["kernel"], [-3 / 4, -4 / 5], rtol=1e-6)
