"""Advantage estimators: GRPO, Dr.GRPO, RLOO, REINFORCE++ (with and without group baseline).

Pure ``jnp`` functions in float32. Sequence rewards come as ``[B]`` with the G samples of one
prompt contiguous (``B = prompts * G``, row ``i`` belongs to group ``i // G``); token arrays
are ``[B, T]`` with a 0/1 float ``mask``. Semantics follow verl
(``verl/trainer/ppo/core_algos.py``), the system the official CodeRL+ code runs on; where
other systems differ, the docstring says how.

Because groups have a fixed size here, the only singleton groups are those of ``G = 1``;
verl treats a singleton as having baseline mean 0 and std 1, and so do we.

`ADVANTAGE_ESTIMATORS` maps each estimator's name (the ``advantage_estimator`` setting) to
one function of the rollout's rewards, group size and loss mask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.rl.losses import masked_mean, safe_divide

# Variance floor of verl's ``masked_whiten``.
_WHITEN_EPS = 1e-8


def _grouped(rewards: jax.Array, group_size: int) -> jax.Array:
    """``[B]`` rewards -> ``[B // G, G]`` float32, validating the layout."""
    rewards = jnp.asarray(rewards, jnp.float32)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be [B], got shape {rewards.shape}")
    if group_size < 1 or rewards.shape[0] % group_size:
        raise ValueError(
            f"rewards of length {rewards.shape[0]} cannot be split into groups of "
            f"group_size={group_size}; expected a positive divisor of the batch"
        )
    return rewards.reshape(-1, group_size)


def _group_mean(grouped: jax.Array) -> jax.Array:
    """``[N, G]`` -> ``[N, 1]`` group means, 0 for singleton groups (verl convention)."""
    if grouped.shape[1] == 1:
        return jnp.zeros_like(grouped)
    return jnp.mean(grouped, axis=1, keepdims=True)


def grpo_advantages(
    rewards: jax.Array, group_size: int, eps: float = 1e-6, norm_by_std: bool = True
) -> jax.Array:
    """GRPO outcome advantages, one per sequence (verl ``compute_grpo_outcome_advantage``).

    ``A_i = (r_i - mean_g) / (std_g + eps)`` where ``mean_g`` and ``std_g`` are the mean and
    the Bessel-corrected (``ddof=1``) standard deviation of the rewards in ``i``'s group
    (Shao et al. 2024, DeepSeekMath). A singleton group uses mean 0 and std 1. A group with
    all-equal rewards gets advantage 0.

    ``norm_by_std=False`` is Dr.GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training"):
    ``A_i = r_i - mean_g``, removing the difficulty bias of the std division.

    Other systems: TRL uses ``eps = 1e-4``; EasyDeL uses the population std (``ddof=0``).

    Args:
      rewards: ``[B]`` scalar rewards, groups of ``group_size`` contiguous.
      group_size: G.
      eps: added to the std.
      norm_by_std: divide by the group std (GRPO) or not (Dr.GRPO).

    Returns:
      ``[B]`` float32 advantages; broadcast to tokens with ``adv[:, None] * mask``.
    """
    grouped = _grouped(rewards, group_size)
    centered = grouped - _group_mean(grouped)
    if norm_by_std:
        if group_size == 1:
            std = jnp.ones_like(grouped)
        else:
            std = jnp.std(grouped, axis=1, ddof=1, keepdims=True)
        centered = centered / (std + eps)
    return centered.reshape(-1)


def rloo_advantages(rewards: jax.Array, group_size: int) -> jax.Array:
    """REINFORCE leave-one-out advantages (verl ``compute_rloo_outcome_advantage``).

    ``A_i = r_i - (1 / (G - 1)) sum_{j != i} r_j = G / (G - 1) * (r_i - mean_g)``
    (Kool et al. 2019; Ahmadian et al. 2024, "Back to Basics"). A singleton group has no
    other member; as in verl its baseline is 0, so ``A_i = r_i``.

    Args:
      rewards: ``[B]`` scalar rewards, groups of ``group_size`` contiguous.
      group_size: G.

    Returns:
      ``[B]`` float32 advantages.
    """
    grouped = _grouped(rewards, group_size)
    if group_size == 1:
        return grouped.reshape(-1)
    others_mean = (jnp.sum(grouped, axis=1, keepdims=True) - grouped) / (group_size - 1)
    return (grouped - others_mean).reshape(-1)


def masked_whiten(values: jax.Array, mask: jax.Array) -> jax.Array:
    """Shift to zero mean and scale to unit variance over the valid entries (verl ``masked_whiten``).

    ``(x - mu) / sqrt(var + 1e-8)`` with ``mu`` the masked mean and ``var`` the unbiased
    masked variance ``sum m (x - mu)^2 / (n - 1)``, ``n = sum m``. verl raises for ``n <= 1``;
    here ``n = 1`` gives variance 0 (so the single entry maps to 0) and ``n = 0`` gives 0.

    Args:
      values: ``[B, T]``.
      mask: ``[B, T]`` 0/1 float.

    Returns:
      ``[B, T]`` float32; entries outside the mask are whitened too but meaningless.
    """
    values = jnp.asarray(values, jnp.float32)
    mask = jnp.asarray(mask, jnp.float32)
    count = jnp.sum(mask)
    mean = masked_mean(values, mask)
    centered = values - mean
    var = safe_divide(jnp.sum(jnp.square(centered) * mask), count - 1.0)
    return centered * jax.lax.rsqrt(var + _WHITEN_EPS)


def reinforce_pp_baseline_advantages(
    rewards: jax.Array, group_size: int, mask: jax.Array
) -> jax.Array:
    """REINFORCE++ with a group-mean baseline, per token.

    verl ``compute_reinforce_plus_plus_baseline_outcome_advantage``: subtract the group
    mean from each sequence reward (singleton groups: mean 0), broadcast the score to every
    token, whiten over all valid tokens of the batch (``masked_whiten``: unbiased variance,
    eps 1e-8), multiply by the mask. Source: Hu 2025, "REINFORCE++" (arXiv 2501.03262).

    Args:
      rewards: ``[B]`` sequence rewards, groups of ``group_size`` contiguous.
      group_size: G.
      mask: ``[B, T]`` 0/1 float response mask.

    Returns:
      ``[B, T]`` float32 advantages, 0 outside the mask.
    """
    grouped = _grouped(rewards, group_size)
    mask = jnp.asarray(mask, jnp.float32)
    if mask.ndim != 2 or mask.shape[0] != grouped.size:
        raise ValueError(f"mask must be [B={grouped.size}, T], got shape {mask.shape}")
    scores = (grouped - _group_mean(grouped)).reshape(-1)
    token_scores = scores[:, None] * mask
    return masked_whiten(token_scores, mask) * mask


def discounted_returns(token_rewards: jax.Array, mask: jax.Array, gamma: float = 1.0) -> jax.Array:
    """Reward-to-go ``G_t = r_t + gamma * G_{t+1}``, reset after every padding position.

    Right-to-left scan as in verl ``compute_reinforce_plus_plus_outcome_advantage``: the
    running return is stored at ``t`` and then multiplied by ``mask_t``, so a padding
    position cuts the sum and valid tokens never see rewards placed beyond padding.

    Args:
      token_rewards: ``[B, T]`` per-token rewards (an outcome reward sits on the last valid
        token).
      mask: ``[B, T]`` 0/1 float.
      gamma: discount.

    Returns:
      ``[B, T]`` float32 returns (unmasked).
    """
    token_rewards = jnp.asarray(token_rewards, jnp.float32)
    mask = jnp.asarray(mask, jnp.float32)

    def step(running_B, reward_and_mask):
        reward_B, mask_B = reward_and_mask
        running_B = reward_B + gamma * running_B
        return running_B * mask_B, running_B

    init = jnp.zeros(token_rewards.shape[:1], jnp.float32)
    _, returns_TxB = jax.lax.scan(step, init, (token_rewards.T, mask.T), reverse=True)
    return returns_TxB.T


def reinforce_pp_advantages(
    token_rewards: jax.Array, mask: jax.Array, gamma: float = 1.0
) -> jax.Array:
    """REINFORCE++ advantages (verl ``compute_reinforce_plus_plus_outcome_advantage``).

    ``A = masked_whiten(discounted_returns(r, mask, gamma), mask) * mask``: discounted
    returns right to left (reset at padding), whitened over all valid tokens of the batch
    (unbiased variance, eps 1e-8). No critic and no group baseline; the batch-wide whitening
    is the baseline (Hu 2025, arXiv 2501.03262). A KL-in-reward term, if wanted, is folded
    into ``token_rewards`` by the caller.

    Args:
      token_rewards: ``[B, T]`` per-token rewards.
      mask: ``[B, T]`` 0/1 float.
      gamma: discount.

    Returns:
      ``[B, T]`` float32 advantages, 0 outside the mask.
    """
    token_rewards = jnp.asarray(token_rewards, jnp.float32)
    mask = jnp.asarray(mask, jnp.float32)
    if token_rewards.ndim != 2 or token_rewards.shape != mask.shape:
        raise ValueError(
            f"token_rewards and mask must both be [B, T]; got {token_rewards.shape} and {mask.shape}"
        )
    returns = discounted_returns(token_rewards, mask, gamma)
    return masked_whiten(returns, mask) * mask


def _reinforce_pp_from_sequence_rewards(rewards_N, _group_size, mask_NxT):
    """REINFORCE++ with each sequence's reward on its last completion token."""
    mask = np.asarray(mask_NxT, np.float32)
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    token_rewards = np.zeros_like(mask)
    token_rewards[np.arange(len(rewards_N)), last] = rewards_N * (mask.sum(1) > 0)
    return reinforce_pp_advantages(token_rewards, mask)


# Estimators by name: (rewards [N] float32, group size G, loss mask [N, T]) -> advantages,
# [N] (sequence level) or [N, T] (REINFORCE++ variants).
ADVANTAGE_ESTIMATORS: dict[str, Callable[[np.ndarray, int, np.ndarray], jax.Array]] = {
    "grpo": lambda r, g, _mask: grpo_advantages(r, g),
    "drgrpo": lambda r, g, _mask: grpo_advantages(r, g, norm_by_std=False),
    "rloo": lambda r, g, _mask: rloo_advantages(r, g),
    "reinforce_pp": _reinforce_pp_from_sequence_rewards,
    "reinforce_pp_baseline": lambda r, g, mask: reinforce_pp_baseline_advantages(
        r, g, np.asarray(mask, np.float32)
    ),
}
AdvantageEstimator = Literal[tuple(ADVANTAGE_ESTIMATORS)]
