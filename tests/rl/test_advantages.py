"""Advantage estimators against hand-computed numbers (arithmetic in the comments)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.rl.advantages import (
    discounted_returns,
    grpo_advantages,
    masked_whiten,
    reinforce_pp_advantages,
    reinforce_pp_baseline_advantages,
    rloo_advantages,
)


def _close(actual, expected, tol=1e-6):
    assert np.asarray(actual).dtype == np.float32
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected, np.float32), atol=tol)


# Group 0 = [1, 0, 0, 1]: mean 0.5, Bessel variance (4 * 0.25) / 3 = 1/3, std 0.5773503.
# Group 1 = [1, 1, 1, 1]: all equal, centered 0 -> advantage 0 whatever the std.
BINARY_REWARDS = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_grpo_binary_groups_and_all_equal_group():
    a = 0.5 / (np.sqrt(1.0 / 3.0) + 1e-6)  # 0.8660239
    _close(grpo_advantages(jnp.array(BINARY_REWARDS), 4), [a, -a, -a, a, 0, 0, 0, 0])


def test_grpo_uses_sample_std():
    # [0, 1, 2]: mean 1, Bessel variance (1 + 0 + 1) / 2 = 1 -> A = [-1, 0, 1] with eps 0.
    # (Population std would be sqrt(2/3) and give +-1.2247.)
    _close(grpo_advantages(jnp.array([0.0, 1.0, 2.0]), 3, eps=0.0), [-1.0, 0.0, 1.0])


def test_grpo_group_of_one_uses_mean_zero_std_one():
    # mean 0, std 1: A = r / (1 + eps).
    _close(grpo_advantages(jnp.array([2.0, -1.0]), 1), [2.0 / (1 + 1e-6), -1.0 / (1 + 1e-6)])


def test_dr_grpo_is_mean_only():
    # Group 0: r - 0.5; group 1: r - 1.
    out = grpo_advantages(jnp.array(BINARY_REWARDS), 4, norm_by_std=False)
    _close(out, [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0])
    # Singleton groups: baseline 0, so A = r.
    _close(grpo_advantages(jnp.array([2.0, -1.0]), 1, norm_by_std=False), [2.0, -1.0])


def test_rloo_leave_one_out_mean():
    # [1, 0, 0, 1]: A_0 = 1 - (0 + 0 + 1)/3 = 2/3, A_1 = 0 - (1 + 0 + 1)/3 = -2/3.
    # [0, 1, 2]:   A_0 = 0 - 1.5 = -1.5, A_1 = 1 - 1 = 0, A_2 = 2 - 0.5 = 1.5.
    _close(rloo_advantages(jnp.array([1.0, 0.0, 0.0, 1.0]), 4), [2 / 3, -2 / 3, -2 / 3, 2 / 3])
    _close(rloo_advantages(jnp.array([0.0, 1.0, 2.0]), 3), [-1.5, 0.0, 1.5])
    _close(rloo_advantages(jnp.array([3.0, 3.0]), 2), [0.0, 0.0])
    _close(rloo_advantages(jnp.array([2.0, -1.0]), 1), [2.0, -1.0])  # no others: baseline 0


def test_bad_group_size_raises():
    with pytest.raises(ValueError, match="group_size=3"):
        grpo_advantages(jnp.zeros(8), 3)
    with pytest.raises(ValueError, match=r"rewards must be \[B\]"):
        rloo_advantages(jnp.zeros((2, 4)), 4)


def test_masked_whiten_unbiased_and_degenerate_counts():
    # Valid values 1, 2, 3: mean 2, unbiased var (1 + 0 + 1)/2 = 1.
    values = jnp.array([[1.0, 2.0, 99.0], [3.0, -7.0, 0.0]])
    mask = jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    out = masked_whiten(values, mask) * mask
    _close(out, np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]) / np.sqrt(1.0 + 1e-8))
    # One valid entry: variance 0, whitened value 0. No valid entry: no NaN.
    one = masked_whiten(jnp.array([[5.0, 1.0]]), jnp.array([[0.0, 1.0]])) * jnp.array([[0.0, 1.0]])
    _close(one, [[0.0, 0.0]])
    assert np.isfinite(np.asarray(masked_whiten(jnp.ones((2, 2)), jnp.zeros((2, 2))))).all()


def test_reinforce_pp_baseline_hand_computed():
    # Group [1, 0] -> scores [0.5, -0.5]. Row 0 has 3 tokens, row 1 one token in the middle.
    # Valid token values: .5, .5, .5, -.5 -> n 4, mean .25, centered .25 .25 .25 -.75,
    # sum of squares 3 * .0625 + .5625 = .75, unbiased var .75 / 3 = .25, std .5.
    mask = jnp.array([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    out = reinforce_pp_baseline_advantages(jnp.array([1.0, 0.0]), 2, mask)
    std = np.sqrt(0.25 + 1e-8)
    _close(out, np.array([[0.25, 0.25, 0.25], [0.0, -0.75, 0.0]]) / std)


def test_reinforce_pp_baseline_padding_both_ends_and_empty_row():
    # Groups [1, 0] -> [.5, -.5], [3, 3] -> [0, 0]. Rows: right pad, left pad, 1 token, empty.
    # Valid values .5 .5 -.5 -.5 0: mean 0, sum sq 1, var 1/4, std .5 -> values / .5.
    mask = jnp.array(
        [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    )
    out = reinforce_pp_baseline_advantages(jnp.array([1.0, 0.0, 3.0, 3.0]), 2, mask)
    expected = np.array([[0.5, 0.5, 0], [0, -0.5, -0.5], [0, 0, 0], [0, 0, 0]]) / np.sqrt(
        0.25 + 1e-8
    )
    _close(out, expected)


def test_discounted_returns_reset_at_padding():
    # gamma .5, right to left, running return multiplied by mask_t after being stored:
    # row 0 r [0 0 1 0] m [1 1 1 0]: t3 0 (reset), t2 1, t1 .5, t0 .25.
    # row 1 r [0 0 0 2] m [0 1 1 1]: t3 2, t2 1, t1 .5, t0 (pad) .25 stored then reset.
    # row 2 r [0 0 5 0] m [1 0 1 0]: t3 0, t2 5, t1 (pad) 2.5 then reset, t0 0 + .5 * 0 = 0.
    rewards = jnp.array([[0.0, 0, 1, 0], [0, 0, 0, 2], [0, 0, 5, 0]])
    mask = jnp.array([[1.0, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 0]])
    out = discounted_returns(rewards, mask, gamma=0.5)
    _close(out, [[0.25, 0.5, 1, 0], [0.25, 0.5, 1, 2], [0, 2.5, 5, 0]])


def test_reinforce_pp_hand_computed():
    # Returns from test above (rows 0, 1): valid .25 .5 1 | .5 1 2; n 6, mean 5.25/6 = .875,
    # centered -.625 -.375 .125 | -.375 .125 1.125, sum of squares 1.96875, var 1.96875/5
    # = .39375.
    rewards = jnp.array([[0.0, 0, 1, 0], [0, 0, 0, 2]])
    mask = jnp.array([[1.0, 1, 1, 0], [0, 1, 1, 1]])
    out = reinforce_pp_advantages(rewards, mask, gamma=0.5)
    centered = np.array([[-0.625, -0.375, 0.125, 0], [0, -0.375, 0.125, 1.125]])
    _close(out, centered / np.sqrt(0.39375 + 1e-8))


def test_reinforce_pp_gamma_one_all_empty_is_zero():
    out = reinforce_pp_advantages(jnp.ones((2, 3)), jnp.zeros((2, 3)))
    _close(out, np.zeros((2, 3)))


def test_everything_jits():
    rewards = jnp.array(BINARY_REWARDS)
    mask = jnp.array([[1.0, 1.0, 0.0]] * 8)
    for fn in (
        functools.partial(grpo_advantages, group_size=4),
        functools.partial(grpo_advantages, group_size=4, norm_by_std=False),
        functools.partial(rloo_advantages, group_size=4),
        functools.partial(reinforce_pp_baseline_advantages, group_size=4, mask=mask),
    ):
        _close(jax.jit(fn)(rewards), fn(rewards))
    token_rewards = jnp.arange(24.0).reshape(8, 3) % 5
    eager = reinforce_pp_advantages(token_rewards, mask, 0.9)
    _close(jax.jit(reinforce_pp_advantages)(token_rewards, mask, 0.9), eager)
