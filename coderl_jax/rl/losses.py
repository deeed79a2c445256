"""Policy-gradient losses: KL estimators, loss aggregation, PPO clip and GSPO.

Pure ``jnp`` functions in float32 over token arrays ``[B, T]`` with a 0/1 float ``mask``
(1 = response token that counts in the loss). Semantics follow verl
(``verl/trainer/ppo/core_algos.py``: ``kl_penalty``, ``agg_loss``, ``compute_policy_loss``,
``compute_policy_loss_gspo``), the system the official CodeRL+ code runs on.

All reductions are NaN-free on empty input: a row (or a whole batch) with no valid token
contributes nothing and an all-empty batch aggregates to 0 instead of 0/0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp

# Log-ratio clamp before exp(): keeps ratios finite when the policy and the behaviour policy
# disagree wildly (verl uses the same +-20 bound).
_LOG_RATIO_CLAMP = 20.0


def _check_same_shape(**arrays: jax.Array) -> None:
    shapes = {name: jnp.shape(a) for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"expected arrays of one shape [B, T], got {shapes}")


def safe_divide(numerator: jax.Array, denominator: jax.Array) -> jax.Array:
    """``numerator / denominator`` where ``denominator > 0``, else 0 (no NaN, no NaN grads)."""
    positive = denominator > 0
    return jnp.where(positive, numerator / jnp.where(positive, denominator, 1.0), 0.0)


def masked_mean(values: jax.Array, mask: jax.Array, axis: int | None = None) -> jax.Array:
    """Mean of ``values`` over positions where ``mask`` is 1; 0 where nothing is valid.

    Args:
      values: ``[...]`` array.
      mask: 0/1 float array broadcastable to ``values``.
      axis: reduce over this axis, or over everything when ``None``.
    """
    values = jnp.asarray(values, jnp.float32)
    mask = jnp.broadcast_to(jnp.asarray(mask, jnp.float32), values.shape)
    return safe_divide(jnp.sum(values * mask, axis=axis), jnp.sum(mask, axis=axis))


def kl_penalty(logp: jax.Array, ref_logp: jax.Array, kind: str) -> jax.Array:
    """Per-token estimate of KL(pi || pi_ref) from sampled-token log-probabilities.

    With ``d = logp - ref_logp`` (samples drawn from pi):

    - ``k1`` / ``kl``: ``d`` (unbiased, high variance, can be negative).
    - ``abs``: ``|d|``.
    - ``k2`` / ``mse``: ``d**2 / 2``.
    - ``k3`` / ``low_var_kl``: ``x = clip(ref_logp - logp, -20, 20)``,
      ``clip(exp(x) - x - 1, -10, 10)`` (unbiased, non-negative, low variance).

    Source: J. Schulman, "Approximating KL Divergence" (2020) for k1/k2/k3; verl
    ``kl_penalty`` for the names and clamps. The paper's setting is k3 with coefficient 0.001.
    verl's straight-through ``"k3+"`` variants are not provided.

    Args:
      logp: ``[B, T]`` log-probs of the sampled tokens under the current policy.
      ref_logp: ``[B, T]`` log-probs under the reference policy.
      kind: a name in ``KL_ESTIMATORS``.

    Returns:
      ``[B, T]`` float32 (unmasked; aggregate with ``aggregate_loss``).
    """
    _check_same_shape(logp=logp, ref_logp=ref_logp)
    if kind not in KL_ESTIMATORS:
        raise ValueError(f"kl_penalty kind={kind!r}; expected one of {tuple(KL_ESTIMATORS)}")
    return KL_ESTIMATORS[kind](jnp.asarray(logp, jnp.float32), jnp.asarray(ref_logp, jnp.float32))


def _k3(logp: jax.Array, ref_logp: jax.Array) -> jax.Array:
    x = jnp.clip(ref_logp - logp, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    return jnp.clip(jnp.exp(x) - x - 1.0, -10.0, 10.0)


# KL estimators by name (verl's names and aliases): (logp, ref_logp) -> [B, T].
KL_ESTIMATORS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "k1": lambda logp, ref: logp - ref,
    "kl": lambda logp, ref: logp - ref,
    "abs": lambda logp, ref: jnp.abs(logp - ref),
    "k2": lambda logp, ref: 0.5 * jnp.square(logp - ref),
    "mse": lambda logp, ref: 0.5 * jnp.square(logp - ref),
    "k3": _k3,
    "low_var_kl": _k3,
}
KLKind = Literal[tuple(KL_ESTIMATORS)]


def aggregate_loss(
    loss_mat: jax.Array,
    mask: jax.Array,
    mode: str,
    loss_scale_factor: float | None = None,
) -> jax.Array:
    """Reduce a per-token loss ``[B, T]`` to a scalar (verl ``agg_loss``).

    With ``m`` the mask, ``s_i = sum_t l_it m_it`` the row sums, ``n_i = sum_t m_it`` the row
    token counts and ``R`` the set of non-empty rows (``n_i > 0``):

    - ``token-mean``: ``sum_i s_i / sum_i n_i`` (DAPO; every token weighs the same).
    - ``seq-mean-token-sum``: ``mean_{i in R} s_i``.
    - ``seq-mean-token-mean``: ``mean_{i in R} s_i / n_i`` (original GRPO paper).
    - ``seq-mean-token-sum-norm``: ``sum_i s_i / (loss_scale_factor or T)`` (Dr.GRPO: a
      constant divisor, so longer answers are not down-weighted). As in verl, the sum runs
      over rows without a 1/B factor; the Dr.GRPO paper also averages over the G responses.

    Empty rows are excluded from the ``seq-mean-*`` averages and an all-empty batch gives 0.

    Args:
      loss_mat: ``[B, T]`` per-token loss.
      mask: ``[B, T]`` 0/1 float mask.
      mode: a name in ``AGGREGATIONS``.
      loss_scale_factor: divisor for ``seq-mean-token-sum-norm``; defaults to ``T``.

    Returns:
      float32 scalar.
    """
    _check_same_shape(loss_mat=loss_mat, mask=mask)
    if jnp.ndim(loss_mat) != 2:
        raise ValueError(f"aggregate_loss expects [B, T] arrays, got shape {jnp.shape(loss_mat)}")
    if mode not in AGGREGATIONS:
        raise ValueError(f"aggregate_loss mode={mode!r}; expected one of {tuple(AGGREGATIONS)}")
    if loss_scale_factor is not None and loss_scale_factor <= 0:
        raise ValueError(f"loss_scale_factor must be > 0, got {loss_scale_factor}")
    loss_mat = jnp.asarray(loss_mat, jnp.float32)
    mask = jnp.asarray(mask, jnp.float32)
    return AGGREGATIONS[mode](loss_mat, mask, loss_scale_factor)


def _row_sums_counts(loss_mat: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.sum(loss_mat * mask, axis=-1), jnp.sum(mask, axis=-1)


def _seq_mean_token_sum(loss_mat, mask, _scale):
    sums, counts = _row_sums_counts(loss_mat, mask)
    return masked_mean(sums, (counts > 0).astype(jnp.float32))


def _seq_mean_token_mean(loss_mat, mask, _scale):
    sums, counts = _row_sums_counts(loss_mat, mask)
    return masked_mean(safe_divide(sums, counts), (counts > 0).astype(jnp.float32))


def _seq_mean_token_sum_norm(loss_mat, mask, scale):
    sums, _ = _row_sums_counts(loss_mat, mask)
    return jnp.sum(sums) / (loss_mat.shape[-1] if scale is None else scale)


# Loss aggregations by name (verl's agg_loss modes; see `aggregate_loss`):
# (loss [B, T], mask [B, T], loss_scale_factor) -> scalar.
AGGREGATIONS: dict[str, Callable[[jax.Array, jax.Array, float | None], jax.Array]] = {
    "token-mean": lambda loss_mat, mask, _scale: masked_mean(loss_mat, mask),
    "seq-mean-token-sum": _seq_mean_token_sum,
    "seq-mean-token-mean": _seq_mean_token_mean,
    "seq-mean-token-sum-norm": _seq_mean_token_sum_norm,
}
AggMode = Literal[tuple(AGGREGATIONS)]


def _clipped_surrogate(
    ratio: jax.Array,
    advantages: jax.Array,
    clip_ratio_low: float,
    clip_ratio_high: float,
) -> tuple[jax.Array, jax.Array]:
    """PPO's pessimistic surrogate ``max(-A r, -A clip(r, 1-lo, 1+hi))`` and its clip flags."""
    unclipped = -advantages * ratio
    clipped = -advantages * jnp.clip(ratio, 1.0 - clip_ratio_low, 1.0 + clip_ratio_high)
    return jnp.maximum(unclipped, clipped), (clipped > unclipped).astype(jnp.float32)


def ppo_clip_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    clip_ratio_low: float = 0.2,
    clip_ratio_high: float = 0.2,
    clip_ratio_c: float = 3.0,
    agg_mode: str = "token-mean",
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Dual-clip PPO policy loss (verl ``compute_policy_loss``, "vanilla").

    ``rho = exp(clip(logp - old_logp, -20, 20))``;
    ``l1 = max(-A rho, -A clip(rho, 1 - lo, 1 + hi))`` (PPO, Schulman et al. 2017);
    for ``A < 0`` the dual clip bounds the loss by ``-A c``: ``l = min(l1, -A c)``
    (Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep RL");
    the loss is ``aggregate_loss(l, mask, agg_mode)``.

    GRPO: lo = hi = 0.2. DAPO = clip-higher (lo 0.2, hi 0.28) + ``token-mean`` + dynamic
    sampling (``coderl_jax.rl.dapo``).

    Args:
      logp: ``[B, T]`` current-policy log-probs of the sampled tokens (differentiated).
      old_logp: ``[B, T]`` behaviour-policy log-probs (treated as constants).
      advantages: ``[B, T]`` per-token advantages (constants).
      mask: ``[B, T]`` 0/1 float mask.
      clip_ratio_low / clip_ratio_high: ``lo`` / ``hi`` above.
      clip_ratio_c: dual-clip bound ``c``; must be > 1.
      agg_mode: see ``aggregate_loss``.

    Returns:
      ``(loss, metrics)``: scalar loss; metrics (masked token means, stop-gradient):
      ``clipfrac`` (share of tokens where the clipped term is the active max),
      ``clipfrac_lower`` (share where ``A < 0`` and the dual clip binds) and
      ``ppo_kl`` (mean of ``old_logp - logp``, the k1 estimate of KL(old || new)).
    """
    _check_same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
    if clip_ratio_c <= 1.0:
        raise ValueError(f"clip_ratio_c must be > 1 for the dual clip, got {clip_ratio_c}")
    logp = jnp.asarray(logp, jnp.float32)
    old_logp = jax.lax.stop_gradient(jnp.asarray(old_logp, jnp.float32))
    advantages = jax.lax.stop_gradient(jnp.asarray(advantages, jnp.float32))
    mask = jnp.asarray(mask, jnp.float32)

    log_ratio = jnp.clip(logp - old_logp, -_LOG_RATIO_CLAMP, _LOG_RATIO_CLAMP)
    ratio = jnp.exp(log_ratio)
    clip_loss, clipped = _clipped_surrogate(ratio, advantages, clip_ratio_low, clip_ratio_high)
    dual_bound = -advantages * clip_ratio_c
    dual_clip_loss = jnp.minimum(clip_loss, dual_bound)
    negative_adv = advantages < 0
    per_token = jnp.where(negative_adv, dual_clip_loss, clip_loss)
    loss = aggregate_loss(per_token, mask, agg_mode)

    dual_clipped = ((clip_loss > dual_bound) & negative_adv).astype(jnp.float32)
    metrics = {
        "clipfrac": masked_mean(clipped, mask),
        "clipfrac_lower": masked_mean(dual_clipped, mask),
        "ppo_kl": masked_mean(-log_ratio, mask),
    }
    return loss, jax.lax.stop_gradient(metrics)


def gspo_loss(
    logp: jax.Array,
    old_logp: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    clip_ratio_low: float = 3e-4,
    clip_ratio_high: float = 4e-4,
    agg_mode: str = "seq-mean-token-mean",
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Group Sequence Policy Optimization loss (Zheng et al. 2025, arXiv 2507.18071).

    GSPO clips a *sequence-level*, length-normalised importance ratio instead of per-token
    ratios: ``s_i = exp(mean_{t valid} (logp_it - old_logp_it))``. We use the paper's
    GSPO-token form (as verl's ``compute_policy_loss_gspo`` does):
    ``s_it = sg(s_i) * exp(logp_it - sg(logp_it))``, whose value equals ``s_i`` and whose
    gradient is ``s_i * grad logp_it``, so with sequence-level advantages it is exactly GSPO.
    Per token ``l_it = max(-A_it s_it, -A_it clip(s_it, 1 - lo, 1 + hi))``, aggregated with
    ``agg_mode`` (paper and verl: ``seq-mean-token-mean``). The log ratio is clamped at 10
    before ``exp`` (verl). The paper's clip range is tiny (3e-4 / 4e-4) because ``s_i`` is a
    geometric mean over the whole sequence; no dual clip.

    Args:
      logp, old_logp, advantages, mask: ``[B, T]`` as in ``ppo_clip_loss``.
      clip_ratio_low / clip_ratio_high: clip range around 1 for ``s_i``.
      agg_mode: see ``aggregate_loss``.

    Returns:
      ``(loss, metrics)`` with ``clipfrac`` (share of valid tokens whose clipped term is
      active) and ``ppo_kl`` (mean of ``old_logp - logp`` over valid tokens).
    """
    _check_same_shape(logp=logp, old_logp=old_logp, advantages=advantages, mask=mask)
    logp = jnp.asarray(logp, jnp.float32)
    old_logp = jax.lax.stop_gradient(jnp.asarray(old_logp, jnp.float32))
    advantages = jax.lax.stop_gradient(jnp.asarray(advantages, jnp.float32))
    mask = jnp.asarray(mask, jnp.float32)

    log_ratio = logp - old_logp
    seq_log_ratio = masked_mean(log_ratio, mask, axis=-1)
    token_log_ratio = (
        logp - jax.lax.stop_gradient(logp) + jax.lax.stop_gradient(seq_log_ratio)[:, None]
    )
    ratio = jnp.exp(jnp.minimum(token_log_ratio, 10.0))
    per_token, clipped = _clipped_surrogate(ratio, advantages, clip_ratio_low, clip_ratio_high)
    loss = aggregate_loss(per_token, mask, agg_mode)
    metrics = {
        "clipfrac": masked_mean(clipped, mask),
        "ppo_kl": masked_mean(-log_ratio, mask),
    }
    return loss, jax.lax.stop_gradient(metrics)


def _gspo(logp, old_logp, advantages, mask, clip_ratio_low, clip_ratio_high, _c, agg_mode):
    return gspo_loss(logp, old_logp, advantages, mask, clip_ratio_low, clip_ratio_high, agg_mode)


# Policy losses by name: (logp, old_logp, advantages, mask, clip_ratio_low, clip_ratio_high,
# clip_ratio_c, agg_mode) -> (loss, metrics). GSPO has no dual clip (clip_ratio_c unused).
POLICY_LOSSES: dict[str, Callable[..., tuple[jax.Array, dict[str, jax.Array]]]] = {
    "ppo_clip": ppo_clip_loss,
    "gspo": _gspo,
}
PolicyLoss = Literal[tuple(POLICY_LOSSES)]
