"""`TrainConfig`: every optimizer, loss and update-schedule setting of the train step.

Frozen and validated on construction, so a bad value fails at start-up with the field's
name rather than inside a jitted function. Defaults follow the CodeRL+ paper's GRPO run
(verl): lr 1e-6, k3 KL with coefficient 0.001, no entropy bonus, clip 0.2, token-mean.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from coderl_jax.rl.losses import AggMode, KLKind, PolicyLoss
from coderl_jax.settings import check_choices, require


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of `coderl_jax.train.step.train_step` (one rollout batch -> updates)."""

    # --- optimizer (optax AdamW) ---
    learning_rate: float = 1e-6  # peak learning rate (after warmup)
    warmup_steps: int = 0  # optimizer updates of linear warmup from 0 to the peak
    lr_schedule: Literal["constant", "cosine"] = "constant"  # schedule after warmup
    # cosine: optimizer updates from the peak to the floor (None: all the run's updates)
    decay_steps: int | None = None
    final_lr_ratio: float = 0.0  # cosine: floor as a fraction of the peak
    adam_b1: float = 0.9  # AdamW first-moment decay
    adam_b2: float = 0.999  # AdamW second-moment decay
    adam_eps: float = 1e-8  # AdamW denominator epsilon
    weight_decay: float = 0.01  # decoupled decay; never applied to norm scales or biases
    max_grad_norm: float | None = 1.0  # global-norm clipping threshold; None disables it

    # --- policy loss (coderl_jax.rl.losses) ---
    policy_loss: PolicyLoss = "ppo_clip"  # ppo_clip: GRPO/DAPO, dual clip; or gspo
    loss_agg_mode: AggMode = "token-mean"  # how per-token losses become a scalar
    loss_scale_factor: float | None = None  # seq-mean-token-sum-norm divisor (None: T)
    clip_ratio_low: float = 0.2  # PPO ratio lower clip 1 - lo
    clip_ratio_high: float = 0.2  # PPO ratio upper clip 1 + hi (DAPO clip-higher: 0.28)
    clip_ratio_c: float = 3.0  # dual-clip bound for negative advantages (ppo_clip only)
    kl_coef: float = 0.001  # weight of the KL(pi || pi_ref) loss; 0 skips the reference
    kl_kind: KLKind = "k3"  # KL estimator; paper: k3 (low-variance)
    entropy_coef: float = 0.0  # entropy bonus weight (loss -= coef * entropy)
    log_entropy: bool = True  # compute the entropy for metrics even when entropy_coef = 0

    # --- log-probabilities ---
    temperature: float = 1.0  # sampling temperature: logits / T, exactly as the sampler
    # Positions per chunk of the vocabulary projection (memory ~ B x chunk x V fp32);
    # 0: the whole [B, T, V] logits at once, faster where they fit (small vocabularies).
    logprob_chunk_size: int = 128

    # --- update schedule (PPO / verl) ---
    ppo_epochs: int = 1  # passes over each rollout batch
    num_mini_batches: int = 1  # optimizer updates per epoch (rollout batch split in M)
    num_micro_batches: int = 1  # gradient-accumulation steps per update (lax.scan)
    # > 0: each micro-batch stops after its last real token, rounded up to a multiple of
    # this (one compiled branch per width; saves compute on left-aligned rows grouped by
    # length, as the trainer makes them). 0: all T columns.
    micro_batch_width_multiple: int = 0

    # --- numerics and memory ---
    master_weights_fp32: bool = True  # keep params and optimizer state in fp32
    # Gradient checkpointing of each layer (None: the model config's).
    remat_policy: Literal["none", "full", "dots"] | None = None

    def __post_init__(self):
        check_choices(self)
        for name in ("learning_rate", "adam_eps", "temperature"):
            require(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        require(self.decay_steps is None or self.decay_steps > 0, "decay_steps", "must be > 0")
        for name in ("ppo_epochs", "num_mini_batches", "num_micro_batches"):
            value = getattr(self, name)
            require(
                isinstance(value, int) and value >= 1, name, f"must be an int >= 1, got {value!r}"
            )
        for name in ("warmup_steps", "logprob_chunk_size", "micro_batch_width_multiple"):
            require(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        for name in ("weight_decay", "kl_coef", "entropy_coef", "clip_ratio_low"):
            require(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        require(0 <= self.final_lr_ratio <= 1, "final_lr_ratio", "must be in [0, 1]")
        for name in ("adam_b1", "adam_b2"):
            require(
                0 <= getattr(self, name) < 1, name, f"must be in [0, 1), got {getattr(self, name)}"
            )
        require(
            self.max_grad_norm is None or self.max_grad_norm > 0,
            "max_grad_norm",
            f"must be > 0 or None, got {self.max_grad_norm}",
        )
        require(self.clip_ratio_high > 0, "clip_ratio_high", "must be > 0")
        require(self.clip_ratio_low < 1, "clip_ratio_low", "must be < 1")
        require(
            self.policy_loss != "ppo_clip" or self.clip_ratio_c > 1,
            "clip_ratio_c",
            f"must be > 1, got {self.clip_ratio_c}",
        )
        require(
            self.loss_scale_factor is None or self.loss_scale_factor > 0,
            "loss_scale_factor",
            f"must be > 0 or None, got {self.loss_scale_factor}",
        )

    @property
    def updates_per_batch(self) -> int:
        """Optimizer updates made from one rollout batch (epochs x mini-batches)."""
        return self.ppo_epochs * self.num_mini_batches

    @property
    def uses_reference(self) -> bool:
        """Whether the reference model's log-probs are needed at all."""
        return self.kl_coef > 0

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)
