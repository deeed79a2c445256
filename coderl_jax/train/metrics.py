"""Per-kind rollout statistics and the sampler/trainer log-prob check (on device), and the
host-side NaN/Inf check.

NaN policy: the train step reports ``train/nonfinite`` (1.0 when any update's loss or
gradient norm was NaN/Inf) and ``train/step``. `check_finite` raises `FloatingPointError`
naming that step. Reading metrics forces a device sync, so a training loop should read
them *one step late* (`MetricsOneStepLate`): step ``n + 1`` is dispatched before step
``n``'s metrics are fetched, keeping the device busy. The cost is that a NaN at step ``n``
raises after step ``n + 1`` was dispatched; the error still names step ``n``, and the
state at that point is not to be saved. Call `check_finite` on each step's metrics
directly instead where an immediate stop matters more than throughput.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.rl.batch import TaskKind, TrainBatch
from coderl_jax.rl.losses import masked_mean


def sequence_advantages(batch: TrainBatch) -> jax.Array:
    """[B] advantages: as given, or the mean over each row's loss tokens when per-token."""
    advantages = jnp.asarray(batch.advantages, jnp.float32)
    if advantages.ndim == 1:
        return advantages
    return masked_mean(advantages, batch.loss_mask, axis=-1)


def rollout_metrics(batch: TrainBatch) -> dict[str, jax.Array]:
    """Reward/advantage/length statistics per task kind and overall token counts."""
    mask = jnp.asarray(batch.loss_mask, jnp.float32)
    rewards = jnp.asarray(batch.rewards, jnp.float32)
    advantages = sequence_advantages(batch)
    response_lengths = jnp.sum(mask, axis=-1)
    metrics = {
        "train/tokens": jnp.sum(mask),
        "train/tokens_total": jnp.sum(jnp.asarray(batch.attention_mask, jnp.float32)),
        "train/sequences": jnp.asarray(mask.shape[0], jnp.float32),
    }
    for kind in TaskKind:
        prefix = kind.metric_name
        selected = (batch.task_kind == kind).astype(jnp.float32)
        adv_mean = masked_mean(advantages, selected)
        metrics[f"rollout/{prefix}/count"] = jnp.sum(selected)
        metrics[f"rollout/{prefix}/reward_mean"] = masked_mean(rewards, selected)
        metrics[f"rollout/{prefix}/advantage_mean"] = adv_mean
        metrics[f"rollout/{prefix}/advantage_std"] = jnp.sqrt(
            masked_mean(jnp.square(advantages - adv_mean), selected)
        )
        metrics[f"rollout/{prefix}/response_length"] = masked_mean(response_lengths, selected)
    return metrics


@jax.jit
def logprob_diff_max(
    sampler_logprobs_BxT: jax.Array, trainer_logprobs_BxT: jax.Array, loss_mask_BxT: jax.Array
) -> jax.Array:
    """``max |sampler - trainer|`` log-prob over the loss tokens (0 when there are none).

    The sampler's log-probs are those it drew each token with; the trainer's are the train
    path's (`coderl_jax.train.step.make_logprobs_fn`) under the same parameters. Both
    compute ``log softmax(logits / T)`` in float32, so they differ by rounding only: a few
    float32 ulps at the scale of the largest logit (``tests/train/test_logprob_check.py``
    bounds it). A larger value means the update is not on-policy: a temperature,
    top-k/top-p, precision or layout mismatch between the two.
    """
    diff = jnp.abs(
        jnp.asarray(sampler_logprobs_BxT, jnp.float32) - jnp.asarray(trainer_logprobs_BxT)
    )
    return jnp.max(jnp.where(jnp.asarray(loss_mask_BxT) > 0, diff, 0.0), initial=0.0)


def check_finite(host_metrics: dict[str, Any]) -> None:
    """Raises FloatingPointError if the step that produced ``host_metrics`` saw NaN/Inf."""
    if float(host_metrics["train/nonfinite"]) > 0:
        step = int(host_metrics["train/step"])
        raise FloatingPointError(
            f"non-finite loss or gradient at train step {step}: "
            f"loss={host_metrics.get('train/loss')}, "
            f"grad_norm={host_metrics.get('train/grad_norm')}"
        )


class MetricsOneStepLate:
    """Holds a step's device metrics and hands them to the host one step later.

    ``previous = late.push(metrics)`` returns the host metrics of the previous push (after
    `check_finite`), or None on the first call; ``late.flush()`` returns the last ones.
    """

    def __init__(self):
        self._pending: dict[str, jax.Array] | None = None

    def _fetch(self) -> dict[str, float] | None:
        if self._pending is None:
            return None
        host = {
            name: np.asarray(value).item() for name, value in jax.device_get(self._pending).items()
        }
        self._pending = None
        check_finite(host)
        return host

    def push(self, metrics: dict[str, jax.Array]) -> dict[str, float] | None:
        previous = self._fetch()
        self._pending = metrics
        return previous

    def flush(self) -> dict[str, float] | None:
        return self._fetch()
