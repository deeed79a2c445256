"""The RL objective of one (micro-)batch: policy loss + KL penalty - entropy bonus.

``loss = policy_loss + kl_coef * KL - entropy_coef * H``, each term aggregated over the
loss mask with ``TrainConfig.loss_agg_mode`` (verl's actor loss, ``dp_actor.py``); the KL
uses the configured estimator against the reference model's log-probs.

Log-probs are recomputed from the decoder's final hidden states in float32, chunked along
the sequence (`coderl_jax.train.logprobs`), with logits divided by the sampling temperature
exactly as the sampler does, so that with unchanged weights they equal the sampler's. Only
columns from ``TrainBatch.response_start`` on are projected to the vocabulary: prompt
tokens carry no loss.

Micro-batches: every aggregation mode is a sum over rows divided by a denominator that
depends on the whole mini-batch (token count for ``token-mean``, non-empty rows for the
``seq-mean-*`` modes, a constant for ``seq-mean-token-sum-norm``). A micro-batch's loss,
aggregated over its own rows, is therefore multiplied by
``denominator(micro) / denominator(mini-batch)``; the weighted micro losses (and their
gradients) then sum exactly to the mini-batch loss (and gradient), not to a mean of
per-micro-batch means.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.rl import losses
from coderl_jax.rl.batch import TrainBatch
from coderl_jax.train import logprobs as logprobs_lib
from coderl_jax.train.config import TrainConfig


def sequence_logprobs(
    params: Any,
    model_config: ModelConfig,
    batch: TrainBatch,
    temperature: float,
    chunk_size: int,
    compute_entropy: bool,
) -> tuple[jax.Array, jax.Array | None]:
    """Log-prob of every token given its prefix, and the entropy there ([B, T] fp32).

    ``chunk_size`` positions of logits at a time (`coderl_jax.train.logprobs`); 0 computes
    the full ``[B, T, V]`` logits in one piece.

    Entry ``[:, t]`` scores ``tokens[:, t]`` (column 0, which has no prefix, is 0), matching
    the `TrainBatch` alignment. The entropy is that of the distribution predicting
    ``tokens[:, t]``. Columns before ``batch.response_start`` are not computed (0).
    """
    hidden_BxTxD = transformer.Transformer(model_config).apply(
        {"params": params},
        batch.tokens,
        batch.positions,
        batch.attention_mask,
        output="hidden",
    )
    compute_dtype = jnp.dtype(model_config.compute_dtype)
    unembed_DxV = transformer.unembedding(params, model_config).astype(compute_dtype)
    # Position p predicts token p + 1. Columns before the response are never scored, so the
    # projection starts at the position that predicts column max(response_start, 1).
    start = max(batch.response_start - 1, 0)
    hidden_BxSxD = hidden_BxTxD[:, start:-1]
    targets_BxS = batch.tokens[:, start + 1 :]
    if chunk_size == 0:
        logp, entropy = logprobs_lib.token_logprobs_and_entropy_unchunked(
            hidden_BxSxD, unembed_DxV, targets_BxS, temperature, compute_entropy
        )
    else:
        logp, entropy = logprobs_lib.token_logprobs_and_entropy(
            hidden_BxSxD,
            unembed_DxV,
            targets_BxS,
            temperature=temperature,
            chunk_size=chunk_size,
            compute_entropy=compute_entropy,
        )

    def align(x_BxS):  # back to [B, T]: the unscored columns hold 0
        return jnp.pad(x_BxS, ((0, 0), (start + 1, 0)))

    return align(logp), None if entropy is None else align(entropy)


def aggregation_denominator(mask_BxT: jax.Array, mode: str) -> jax.Array:
    """What `losses.aggregate_loss` divides the masked row sums by, up to a constant."""
    if mode == "token-mean":
        return jnp.sum(mask_BxT)
    if mode in ("seq-mean-token-sum", "seq-mean-token-mean"):
        return jnp.sum((jnp.sum(mask_BxT, axis=-1) > 0).astype(jnp.float32))
    if mode == "seq-mean-token-sum-norm":
        return jnp.asarray(1.0, jnp.float32)
    raise ValueError(
        f"loss aggregation mode {mode!r}; expected one of {tuple(losses.AGGREGATIONS)}"
    )


def token_advantages(advantages: jax.Array, shape: tuple[int, int]) -> jax.Array:
    """[B] sequence advantages broadcast to [B, T]; [B, T] returned as is (float32)."""
    advantages = jnp.asarray(advantages, jnp.float32)
    if advantages.ndim == 1:
        return jnp.broadcast_to(advantages[:, None], shape)
    return advantages


def rl_loss(
    params: Any,
    batch: TrainBatch,
    weight: jax.Array,
    token_weight: jax.Array,
    model_config: ModelConfig,
    config: TrainConfig,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Weighted loss of one micro-batch and its (equally weighted) metrics.

    Args:
      params: model parameters (differentiated).
      batch: a micro-batch ``[b, T]``.
      weight: ``denominator(micro) / denominator(mini-batch)`` (module docstring); 1 for a
        whole mini-batch.
      token_weight: micro-batch share of the mini-batch's loss tokens, for token-mean
        metrics (clip fractions).
      model_config: the training model config (`state.training_model_config`).
      config: loss settings.

    Returns:
      ``(weight * loss, metrics)``; summing both over micro-batches gives mini-batch values.
    """
    need_entropy = config.entropy_coef > 0 or config.log_entropy
    logp, entropy = sequence_logprobs(
        params,
        model_config,
        batch,
        config.temperature,
        config.logprob_chunk_size,
        need_entropy,
    )
    mask = jnp.asarray(batch.loss_mask, jnp.float32)
    advantages = token_advantages(batch.advantages, mask.shape)
    if config.updates_per_batch == 1:
        # One update per rollout batch: the policy has not moved since sampling, so the
        # ratio is exactly 1 in value; only its gradient matters (verl's on-policy case).
        old_logp = jax.lax.stop_gradient(logp)
    elif batch.old_logprobs is None:
        raise ValueError(
            f"TrainBatch.old_logprobs is required with {config.updates_per_batch} updates per "
            "rollout batch (ppo_epochs x num_mini_batches > 1)"
        )
    else:
        old_logp = batch.old_logprobs
    mode = config.loss_agg_mode

    def aggregate(values_BxT):
        return losses.aggregate_loss(values_BxT, mask, mode, config.loss_scale_factor)

    pg_loss, pg_metrics = losses.POLICY_LOSSES[config.policy_loss](
        logp,
        old_logp,
        advantages,
        mask,
        config.clip_ratio_low,
        config.clip_ratio_high,
        config.clip_ratio_c,
        mode,
    )
    if mode == "seq-mean-token-sum-norm" and config.loss_scale_factor is not None:
        # The policy losses divide by T in this mode; rescale to the configured divisor.
        pg_loss = pg_loss * mask.shape[-1] / config.loss_scale_factor
    loss = pg_loss
    metrics = {"pg_loss": pg_loss}
    if entropy is not None:
        entropy_term = aggregate(entropy)
        if config.entropy_coef > 0:
            loss = loss - config.entropy_coef * entropy_term
        metrics["entropy"] = jax.lax.stop_gradient(entropy_term)
    if config.uses_reference:
        if batch.ref_logprobs is None:
            raise ValueError(
                f"TrainBatch.ref_logprobs is required when kl_coef={config.kl_coef} > 0"
            )
        kl = aggregate(losses.kl_penalty(logp, batch.ref_logprobs, config.kl_kind))
        loss = loss + config.kl_coef * kl
        metrics["kl"] = kl
    metrics = {name: value * weight for name, value in metrics.items()}
    metrics["loss"] = loss * weight
    for name, value in pg_metrics.items():
        metrics[name] = value * token_weight
    return loss * weight, jax.lax.stop_gradient(metrics)
