"""DAPO host-side helpers: dynamic sampling and soft overlong punishment (numpy).

DAPO (Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale",
arXiv 2503.14476) = clip-higher + token-mean loss (``coderl_jax.rl.losses``) plus two
rollout-side changes that live here because they act on host data before the device step:

- **Dynamic sampling** (paper section 3.2): a group whose G rewards are all equal has GRPO
  advantage 0 everywhere and contributes no gradient, only a smaller effective batch. Such
  groups are dropped and generation continues until the batch holds the target number of
  informative groups. ``DynamicSamplingBatch`` is the accumulator the trainer drives; it
  mirrors verl's ``filter_groups`` logic in ``ray_trainer`` (keep groups with reward
  std > 0 or of size 1; stop after ``max_num_gen_batches`` generation rounds).
- **Overlong reward shaping** (paper section 3.4, eq. 13): ``overlong_penalty``.

Rewards are ``[B]`` with the G samples of a prompt contiguous, as everywhere in ``rl``.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def _grouped_rewards(rewards: np.ndarray, group_size: int) -> np.ndarray:
    rewards = np.asarray(rewards, np.float32)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must be [B], got shape {rewards.shape}")
    if group_size < 1 or rewards.shape[0] % group_size:
        raise ValueError(
            f"rewards of length {rewards.shape[0]} cannot be split into groups of "
            f"group_size={group_size}; expected a positive divisor of the batch"
        )
    if not np.all(np.isfinite(rewards)):
        bad = np.flatnonzero(~np.isfinite(rewards)).tolist()
        raise ValueError(f"rewards must be finite; rows {bad} are not")
    return rewards.reshape(-1, group_size)


def informative_groups(rewards: np.ndarray, group_size: int, atol: float = 0.0) -> np.ndarray:
    """Which groups carry a learning signal: rewards not all equal (within ``atol``).

    A group is kept iff ``max(r) - min(r) > atol`` or ``G == 1`` (verl keeps singletons,
    whose advantage is not zero; filtering them would loop forever).

    Args:
      rewards: ``[B]`` rewards, groups of ``group_size`` contiguous.
      group_size: G.
      atol: rewards closer than this count as equal (0: exact equality, as verl's std > 0).

    Returns:
      ``[B // G]`` bool.
    """
    grouped = _grouped_rewards(rewards, group_size)
    if group_size == 1:
        return np.ones(grouped.shape[0], bool)
    return np.ptp(grouped, axis=1) > atol


@dataclasses.dataclass(frozen=True)
class KeptSamples:
    """Samples of the kept groups, in arrival order, ``N = num_groups * G`` rows.

    Attributes:
      rewards: ``[N]`` float32.
      payload: ``[N, ...]`` rows of the payload passed to ``add`` (by default the sample's
        index within its round, i.e. equal to ``sample_index``).
      round_index: ``[N]`` int, which ``add`` call (0-based) each sample came from.
      sample_index: ``[N]`` int, the sample's row within that call's rewards.
    """

    rewards: np.ndarray
    payload: np.ndarray
    round_index: np.ndarray
    sample_index: np.ndarray


class DynamicSamplingBatch:
    """Accumulates informative groups over generation rounds until a batch is full.

    Trainer loop::

        batch = DynamicSamplingBatch(num_groups=128, group_size=8, max_rounds=10)
        while not batch.is_full:
            rollout = generate(next_prompts())      # raises once max_rounds is spent
            batch.add(rollout.rewards, payload=np.arange(len(rollout.rewards)))
        kept = batch.take()                          # first 128 informative groups

    Groups beyond the target (from the round that fills the batch) are discarded and
    counted in ``stats['groups_surplus']``. ``take`` resets the accumulator for the next
    training batch.

    Args:
      num_groups: informative groups wanted per training batch (prompts per batch).
      group_size: G, samples per prompt.
      max_rounds: cap on ``add`` calls per batch (verl ``max_num_gen_batches``); ``None``
        for no cap.
      atol: reward tolerance for "all equal" (see ``informative_groups``).
    """

    def __init__(self, num_groups: int, group_size: int, max_rounds: int | None, atol: float = 0.0):
        if num_groups < 1 or group_size < 1:
            raise ValueError(
                f"num_groups and group_size must be >= 1, got {num_groups}, {group_size}"
            )
        if max_rounds is not None and max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1 or None, got {max_rounds}")
        self.num_groups = num_groups
        self.group_size = group_size
        self.max_rounds = max_rounds
        self.atol = atol
        self._reset()

    def _reset(self) -> None:
        self._rewards: list[np.ndarray] = []
        self._payload: list[np.ndarray] = []
        self._round_index: list[np.ndarray] = []
        self._sample_index: list[np.ndarray] = []
        self._kept_groups = 0
        self.stats = {"rounds": 0, "groups_seen": 0, "groups_all_equal": 0, "groups_surplus": 0}

    @property
    def num_kept_groups(self) -> int:
        return self._kept_groups

    @property
    def is_full(self) -> bool:
        return self._kept_groups >= self.num_groups

    @property
    def exhausted(self) -> bool:
        """True when the round cap is spent and the batch is still not full."""
        rounds_spent = self.max_rounds is not None and self.stats["rounds"] >= self.max_rounds
        return rounds_spent and not self.is_full

    def add(self, rewards: np.ndarray, payload: np.ndarray | None = None) -> int:
        """Adds one generation round; returns how many of its groups were kept.

        Args:
          rewards: ``[B]`` rewards of the round, groups of ``group_size`` contiguous.
          payload: ``[B, ...]`` per-sample data to carry along (indices into the rollout,
            ids, ...); defaults to ``arange(B)``.

        Raises:
          RuntimeError: the batch is already full, or ``max_rounds`` rounds were spent.
        """
        if self.is_full:
            raise RuntimeError("DynamicSamplingBatch is full; call take() before add()")
        if self.exhausted:
            raise RuntimeError(
                f"dynamic sampling gave up after max_rounds={self.max_rounds} rounds with "
                f"{self._kept_groups}/{self.num_groups} informative groups "
                f"({self.stats['groups_all_equal']} of {self.stats['groups_seen']} groups had "
                "all-equal rewards: the prompts may be too easy or too hard)"
            )
        grouped = _grouped_rewards(rewards, self.group_size)
        num_samples = grouped.size
        payload = np.arange(num_samples) if payload is None else np.asarray(payload)
        if payload.shape[:1] != (num_samples,):
            raise ValueError(
                f"payload must have leading dimension B={num_samples}, got shape {payload.shape}"
            )
        keep = informative_groups(grouped.reshape(-1), self.group_size, self.atol)
        kept_ids = np.flatnonzero(keep)
        room = self.num_groups - self._kept_groups
        self.stats["rounds"] += 1
        self.stats["groups_seen"] += grouped.shape[0]
        self.stats["groups_all_equal"] += int(np.sum(~keep))
        self.stats["groups_surplus"] += max(0, kept_ids.size - room)
        kept_ids = kept_ids[:room]
        rows = (kept_ids[:, None] * self.group_size + np.arange(self.group_size)).reshape(-1)
        self._rewards.append(grouped.reshape(-1)[rows])
        self._payload.append(payload[rows])
        self._round_index.append(np.full(rows.size, self.stats["rounds"] - 1))
        self._sample_index.append(rows)
        self._kept_groups += kept_ids.size
        return int(kept_ids.size)

    def take(self, allow_partial: bool = False) -> KeptSamples:
        """Returns the kept samples and resets for the next batch.

        Args:
          allow_partial: return fewer than ``num_groups`` groups instead of raising (e.g.
            after ``exhausted``); the result then has fewer rows than a full batch.
        """
        if not self.is_full and not allow_partial:
            raise RuntimeError(
                f"DynamicSamplingBatch holds {self._kept_groups}/{self.num_groups} groups; "
                "add more rounds or pass allow_partial=True"
            )
        if not self._rewards:
            raise RuntimeError("DynamicSamplingBatch.take() before any add()")
        kept = KeptSamples(
            rewards=np.concatenate(self._rewards),
            payload=np.concatenate(self._payload),
            round_index=np.concatenate(self._round_index),
            sample_index=np.concatenate(self._sample_index),
        )
        self._reset()
        return kept


def overlong_penalty(
    response_lengths: np.ndarray,
    max_response_len: int,
    overlong_buffer_len: int,
    penalty_factor: float = 1.0,
) -> np.ndarray:
    """DAPO soft overlong punishment, a length-dependent reward term (to be added).

    DAPO eq. 13 with ``L_max = max_response_len``, ``L_cache = overlong_buffer_len``:

        R_length(y) = 0                                   if |y| <= L_max - L_cache
                    = ((L_max - L_cache) - |y|) / L_cache  if L_max - L_cache < |y| <= L_max
                    = -1                                  if |y| > L_max

    times ``penalty_factor`` (verl ``reward_model.overlong_buffer.penalty_factor``; the paper
    uses 1, with L_max = 20480 and L_cache = 4096). The penalty falls linearly from 0 to
    ``-penalty_factor`` over the last ``L_cache`` tokens before the limit.

    Args:
      response_lengths: ``[B]`` number of generated tokens per response.
      max_response_len: ``L_max``.
      overlong_buffer_len: ``L_cache``, 0 < L_cache <= L_max.
      penalty_factor: scale of the penalty (>= 0).

    Returns:
      ``[B]`` float32 penalties in ``[-penalty_factor, 0]``.
    """
    lengths = np.asarray(response_lengths)
    if lengths.ndim != 1 or (lengths.size and lengths.min() < 0):
        raise ValueError(f"response_lengths must be [B] non-negative, got {lengths}")
    if not 0 < overlong_buffer_len <= max_response_len:
        raise ValueError(
            f"need 0 < overlong_buffer_len <= max_response_len, got {overlong_buffer_len} and "
            f"{max_response_len}"
        )
    if penalty_factor < 0:
        raise ValueError(f"penalty_factor must be >= 0, got {penalty_factor}")
    expected_len = max_response_len - overlong_buffer_len
    ramp = (expected_len - lengths.astype(np.float64)) / overlong_buffer_len
    penalty = np.clip(ramp, -1.0, 0.0)
    return (penalty_factor * penalty).astype(np.float32)


def apply_overlong_penalty(
    rewards: np.ndarray,
    response_lengths: np.ndarray,
    max_response_len: int,
    overlong_buffer_len: int,
    penalty_factor: float = 1.0,
) -> np.ndarray:
    """``rewards + overlong_penalty(...)``: ``[B]`` float32 shaped rewards."""
    rewards = np.asarray(rewards, np.float32)
    if rewards.shape != np.shape(response_lengths):
        raise ValueError(
            f"rewards {rewards.shape} and response_lengths {np.shape(response_lengths)} differ"
        )
    return rewards + overlong_penalty(
        response_lengths, max_response_len, overlong_buffer_len, penalty_factor
    )


def kept_rows(accumulator: DynamicSamplingBatch, num_rows: int) -> list[tuple[int, int]]:
    """``(round, row)`` of each row of the step's batch: the kept samples in order, then,
    when the rounds ran out before ``num_rows`` informative rows, the first round's other
    rows in order (their groups have equal rewards, so zero advantages: they add no
    gradient, only tokens to the mean). Takes the accumulator's samples (`take`)."""
    kept = accumulator.take(allow_partial=True)
    rows = list(zip(kept.round_index.tolist(), kept.sample_index.tolist()))
    used = set(rows)
    rows += [(0, n) for n in range(num_rows) if (0, n) not in used][: num_rows - len(rows)]
    return rows
