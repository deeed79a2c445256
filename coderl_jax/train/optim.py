"""Optimizer: global-norm clipping + AdamW with a warmup + constant/cosine schedule.

Weight decay is applied to matrices (projections, embeddings) only, never to RMSNorm
scales or attention biases. The mask is chosen by parameter *name*, not by rank: layers are
stacked by ``nn.scan``, so a per-layer bias ``[L, H, Dh]`` has the rank of a matrix.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from coderl_jax.settings import require
from coderl_jax.train.config import TrainConfig

# Leaf names (last key of the parameter path) that are never decayed.
NO_DECAY_NAMES = ("scale", "bias")


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
    """lr(update): linear 0 -> peak over ``warmup_steps``, then constant or cosine decay.

    Cosine: ``peak * (r + (1 - r) * (1 + cos(pi * s / decay_steps)) / 2)`` with
    ``r = final_lr_ratio`` and ``s`` the updates since warmup (held at the floor after).
    """
    peak = config.learning_rate
    if config.lr_schedule == "constant":
        after = optax.constant_schedule(peak)
    else:
        require(config.decay_steps is not None, "decay_steps", "cosine decay needs a value")
        after = optax.cosine_decay_schedule(peak, config.decay_steps, alpha=config.final_lr_ratio)
    if config.warmup_steps == 0:
        return after
    warmup = optax.linear_schedule(0.0, peak, config.warmup_steps)
    return optax.join_schedules([warmup, after], [config.warmup_steps])


def weight_decay_mask(params: Any) -> Any:
    """Pytree of bools like ``params``: True where weight decay applies."""

    def decays(path, _leaf) -> bool:
        last = path[-1]
        name = getattr(last, "key", getattr(last, "name", str(last)))
        return name not in NO_DECAY_NAMES

    return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Clip by global norm (if configured), then AdamW with the configured schedule."""
    adamw = optax.adamw(
        learning_rate=learning_rate_schedule(config),
        b1=config.adam_b1,
        b2=config.adam_b2,
        eps=config.adam_eps,
        weight_decay=config.weight_decay,
        mask=weight_decay_mask,
    )
    if config.max_grad_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adamw)
