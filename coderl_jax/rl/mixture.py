"""Per-step prompt mixture of code generation and execution semantics alignment (CodeRL+).

The paper's mixed batch is ``B_mixed = alpha * B_code + (1 - alpha) * B_align`` (alpha = 0.6).
For a batch of ``B`` prompts a step takes ``round(alpha * B)`` code-generation prompts
(Python ``round``: halves go to the even number) and ``B - round(alpha * B)`` alignment
prompts. While the alignment source holds fewer tasks than that, code-generation prompts
fill the missing places; the plan records the shortfall so it is logged.

Modes, chosen by alpha (the paper's ablations):

* ``alpha == 1``: ``"grpo"``, plain GRPO on code generation, alignment never sampled.
* ``0 < alpha < 1``: ``"coderl_plus"``, alignment tasks come from the growing buffer of the
  policy's own failures.
* ``alpha == 0``: ``"alignment_only"``, every prompt is an alignment task drawn from a fixed
  pool (:func:`load_alignment_pool`: tasks from a previous run's buffer files plus tasks
  converted from reference solutions); a pool smaller than the batch is an error, there is
  nothing to fill with.

Both kinds are then sampled with the same policy and G, rewarded by kind, and given
advantages within each prompt's group; that happens downstream of this module, which only
decides what goes into the batch.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from coderl_jax.rl.alignment import AlignmentConfig, AlignmentTask
from coderl_jax.rl.alignment_buffer import AlignmentBuffer, SamplingStrategy
from coderl_jax.rl.batch import TaskKind
from coderl_jax.settings import ConfigError, Semantics, check_choices, require


def mixture_mode(alpha: float) -> str:
    """``"grpo"`` (alpha = 1), ``"coderl_plus"`` (0 < alpha < 1) or ``"alignment_only"`` (0)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"mixture alpha must lie in [0, 1], got {alpha}")
    return "grpo" if alpha == 1.0 else "alignment_only" if alpha == 0.0 else "coderl_plus"


@dataclasses.dataclass(frozen=True)
class MixtureConfig:
    """How each step's prompts are split between the two tasks."""

    alpha: float = 0.6  # fraction of code-generation prompts (1: plain GRPO; 0: alignment only)
    sampling: SamplingStrategy = "recent"  # how alignment tasks are drawn from the buffer
    semantics: Semantics = "improved"  # batch composition and buffer sampling rules

    def __post_init__(self):
        check_choices(self)
        try:
            mixture_mode(self.alpha)
        except ValueError as e:
            raise ConfigError("alpha", str(e)) from None

    @property
    def mode(self) -> str:
        return mixture_mode(self.alpha)


@dataclasses.dataclass(frozen=True)
class AlignmentTaskConfig:
    """The execution-semantics-alignment task (CodeRL+'s contribution)."""

    mixture: MixtureConfig = MixtureConfig()  # α and the buffer's sampling strategy
    conversion: AlignmentConfig = AlignmentConfig()  # failure -> task rules
    buffer_capacity: int = 20000  # tasks kept (official: 20k)
    pool_files: tuple[str, ...] = ()  # alignment_only (α=0): buffer JSONL files of earlier runs

    def __post_init__(self):
        require(self.buffer_capacity >= 1, "buffer_capacity", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class MixturePlan:
    """Prompt counts of one step."""

    batch_size: int
    num_code: int  # code-generation prompts, fill included
    num_align: int  # alignment prompts actually drawn
    align_wanted: int  # B - round(alpha * B)

    @property
    def align_shortfall(self) -> int:
        """Alignment places filled with code-generation prompts."""
        return self.align_wanted - self.num_align

    def metrics(self) -> dict[str, float]:
        return {
            "rollout/mix/code_prompts": self.num_code,
            "rollout/mix/align_prompts": self.num_align,
            "rollout/mix/align_wanted": self.align_wanted,
            "rollout/mix/align_shortfall": self.align_shortfall,
            "rollout/mix/align_fraction": self.num_align / self.batch_size,
        }


def plan_mixture(batch_size: int, alpha: float, align_available: int) -> MixturePlan:
    """Counts for one step: ``round(alpha * B)`` code prompts, the rest alignment, code
    prompts filling what the alignment source cannot supply (except in alignment_only)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if align_available < 0:
        raise ValueError(f"align_available must be >= 0, got {align_available}")
    align_wanted = batch_size - round(alpha * batch_size)
    if mixture_mode(alpha) == "alignment_only" and align_available < batch_size:
        raise ValueError(
            f"alignment_only needs a pool of at least batch_size={batch_size} tasks, "
            f"got {align_available}"
        )
    num_align = min(align_wanted, align_available)
    return MixturePlan(batch_size, batch_size - num_align, num_align, align_wanted)


@dataclasses.dataclass(frozen=True)
class MixedBatch:
    """One step's prompts: code-generation items first, then alignment tasks."""

    code: list[Any]
    align: list[AlignmentTask]
    plan: MixturePlan

    @property
    def kinds(self) -> list[TaskKind]:
        """The kind of each prompt, in batch order."""
        return [TaskKind.CODE] * len(self.code) + [TaskKind.ALIGNMENT] * len(self.align)


def draw_mixed_batch(
    batch_size: int,
    config: MixtureConfig,
    next_code: Callable[[int], Sequence[Any]],
    alignment_source: AlignmentBuffer,
    rng: np.random.Generator,
) -> MixedBatch:
    """Draws one step's prompts.

    Args:
      batch_size: B, prompts per step.
      config: alpha and the alignment sampling strategy.
      next_code: ``n -> n`` code-generation prompts from the data iterator (not called for
        alignment_only).
      alignment_source: the buffer (coderl_plus) or the fixed pool (alignment_only).
      rng: draws the alignment tasks.
    """
    plan = plan_mixture(batch_size, config.alpha, len(alignment_source))
    code = list(next_code(plan.num_code)) if plan.num_code else []
    if len(code) != plan.num_code:
        raise ValueError(f"next_code({plan.num_code}) returned {len(code)} prompts")
    align = alignment_source.sample(plan.num_align, config.sampling, rng)
    return MixedBatch(code, align, plan)


def load_alignment_pool(
    buffer_files: Sequence[str | os.PathLike], extra_tasks: Sequence[AlignmentTask] = ()
) -> AlignmentBuffer:
    """The fixed pool of alignment_only: tasks of previous runs' buffer files (saved by
    ``AlignmentBuffer.save_jsonl``) plus ``extra_tasks`` (e.g. converted reference
    solutions), ordered by step (stable), with capacity equal to their number."""
    tasks = [task for path in buffer_files for task in AlignmentBuffer.load_jsonl(path).tasks]
    tasks += list(extra_tasks)
    if not tasks:
        raise ValueError("load_alignment_pool: no tasks in the given files and extra tasks")
    return AlignmentBuffer(capacity=len(tasks), tasks=sorted(tasks, key=lambda t: t.step))
