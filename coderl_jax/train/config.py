"""`TrainConfig`: every optimizer, loss and update-schedule setting of the train step.

Frozen and validated on construction, so a bad value fails at start-up with the field's
name rather than inside a jitted function. Defaults follow the CodeRL+ paper's GRPO run
(verl): lr 1e-6, k3 KL with coefficient 0.001, no entropy bonus, clip 0.2, token-mean.
"""

from __future__ import annotations

import dataclasses

from coderl_jax.rl.losses import AGG_MODES, KL_KINDS

POLICY_LOSSES = ("ppo_clip", "gspo")
LR_SCHEDULES = ("constant", "cosine")
REMAT_POLICIES = ("none", "full", "dots")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of `coderl_jax.train.step.train_step` (one rollout batch -> updates)."""

    # --- optimizer (optax AdamW) ---
    learning_rate: float = 1e-6  # peak learning rate (after warmup)
    warmup_steps: int = 0  # optimizer updates of linear warmup from 0 to the peak
    lr_schedule: str = "constant"  # after warmup: "constant" or "cosine" decay
    decay_steps: int = 1000  # cosine: optimizer updates from the peak to the floor
    final_lr_ratio: float = 0.0  # cosine: floor as a fraction of the peak
    adam_b1: float = 0.9  # AdamW first-moment decay
    adam_b2: float = 0.999  # AdamW second-moment decay
    adam_eps: float = 1e-8  # AdamW denominator epsilon
    weight_decay: float = 0.01  # decoupled decay; never applied to norm scales or biases
    max_grad_norm: float | None = 1.0  # global-norm clipping threshold; None disables it

    # --- policy loss (coderl_jax.rl.losses) ---
    policy_loss: str = "ppo_clip"  # "ppo_clip" (GRPO/DAPO, dual clip) or "gspo"
    loss_agg_mode: str = "token-mean"  # how per-token losses become a scalar (AGG_MODES)
    loss_scale_factor: float | None = None  # seq-mean-token-sum-norm divisor (None: T)
    clip_ratio_low: float = 0.2  # PPO ratio lower clip 1 - lo
    clip_ratio_high: float = 0.2  # PPO ratio upper clip 1 + hi (DAPO clip-higher: 0.28)
    clip_ratio_c: float = 3.0  # dual-clip bound for negative advantages (ppo_clip only)
    kl_coef: float = 0.001  # weight of the KL(pi || pi_ref) loss; 0 skips the reference
    kl_kind: str = "k3"  # KL estimator (KL_KINDS); paper: k3 (low-variance)
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
    # this (one compiled branch per width; saves compute on right-aligned rows grouped by
    # length, as the trainer makes them). 0: all T columns.
    micro_batch_width_multiple: int = 0

    # --- numerics and memory ---
    master_weights_fp32: bool = True  # keep params and optimizer state in fp32
    remat_policy: str | None = None  # "none"/"full"/"dots"; None keeps the model config's

    def __post_init__(self):
        positive = ("learning_rate", "decay_steps", "adam_eps", "temperature")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {getattr(self, name)}")
        for name in ("ppo_epochs", "num_mini_batches", "num_micro_batches"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be an int >= 1, got {value!r}")
        for name in ("warmup_steps", "logprob_chunk_size", "micro_batch_width_multiple"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("weight_decay", "kl_coef", "entropy_coef", "clip_ratio_low"):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.final_lr_ratio <= 1:
            raise ValueError(
                f"TrainConfig.final_lr_ratio must be in [0, 1], got {self.final_lr_ratio}"
            )
        for name in ("adam_b1", "adam_b2"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(
                f"TrainConfig.max_grad_norm must be > 0 or None, got {self.max_grad_norm}"
            )
        if self.clip_ratio_high <= 0 or self.clip_ratio_low >= 1:
            raise ValueError(
                "TrainConfig clip range must satisfy 0 <= clip_ratio_low < 1 < 1 + clip_ratio_high"
                f"; got low={self.clip_ratio_low} high={self.clip_ratio_high}"
            )
        if self.policy_loss == "ppo_clip" and self.clip_ratio_c <= 1:
            raise ValueError(f"TrainConfig.clip_ratio_c must be > 1, got {self.clip_ratio_c}")
        choices = {
            "lr_schedule": LR_SCHEDULES,
            "policy_loss": POLICY_LOSSES,
            "loss_agg_mode": AGG_MODES,
            "kl_kind": KL_KINDS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"TrainConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        if self.remat_policy is not None and self.remat_policy not in REMAT_POLICIES:
            raise ValueError(
                f"TrainConfig.remat_policy must be None or one of {REMAT_POLICIES}, "
                f"got {self.remat_policy!r}"
            )
        if self.loss_scale_factor is not None and self.loss_scale_factor <= 0:
            raise ValueError(
                f"TrainConfig.loss_scale_factor must be > 0 or None, got {self.loss_scale_factor}"
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
