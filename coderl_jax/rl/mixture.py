"""Per-step prompt mixture of code generation and execution semantics alignment (CodeRL+).

The paper's mixed batch is ``B_mixed = alpha * B_code + (1 - alpha) * B_align`` (alpha = 0.6).
:func:`plan_step` decides a step's counts for every process, from the global batch ``B``
(prompts per step over all processes) and how many tasks each process's alignment source
holds; :func:`draw_mixed_batch` then draws this process's prompts: code-generation problems
from the data iterator's walk (every process passes the same per-process counts, so the walk
hands out each problem exactly once per epoch and nothing is skipped), alignment tasks from
the buffer. Counts per ``semantics``:

* ``"improved"``: ``round(alpha * B)`` code problems (Python ``round``: halves go to the even
  number) and ``B - round(alpha * B)`` alignment tasks. While a process's source holds fewer
  tasks than its alignment share, problems from the walk fill the missing places; the plan
  records the shortfall so it is logged.
* ``"official"`` (the official ``RolloutBatchSampler``, ``recipe/rollout_batch_sampler.py``,
  with ``ratio = 1 - alpha``): ``A = int(B * (1 - alpha))`` alignment slots and ``B - A``
  problems from the walk (128 prompts: 51 and 77). While the buffer holds fewer than ``A``
  tasks, the ``A`` slots are filled with problems drawn at random, with replacement, from the
  whole training set (the walk does not move for them); from then on they are alignment
  tasks, one per slot, drawn with replacement (``AlignmentBuffer.sample(per_slot=True)``).
  With several processes "the buffer" is all processes' buffers together.

Processes: each process holds ``B / P`` prompts; the code problems (and so the alignment
slots) are split as evenly as possible, the first processes taking one more.

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
decides what goes into the batch (code problems first, then alignment tasks: the official
sampler shuffles the batch, which changes nothing downstream but the order of rows).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from coderl_jax.rl.alignment_buffer import AlignmentBuffer, SamplingStrategy
from coderl_jax.rl.alignment_task import AlignmentConfig, AlignmentTask
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
    """One process's prompt counts of one step."""

    batch_size: int  # this process's prompts
    num_code: int  # code-generation prompts, fill included
    num_align: int  # alignment prompts actually drawn
    align_wanted: int  # this process's share of the alignment places
    num_random_code: int = 0  # official, buffer short: problems at random (not from the walk)

    @property
    def num_walk(self) -> int:
        """Code problems taken from the data iterator's walk."""
        return self.num_code - self.num_random_code

    @property
    def align_shortfall(self) -> int:
        """Alignment places filled with code-generation prompts."""
        return self.align_wanted - self.num_align

    def metrics(self) -> dict[str, float]:
        return {
            "rollout/mix/code_prompts": self.num_code,
            "rollout/mix/random_code_prompts": self.num_random_code,
            "rollout/mix/align_prompts": self.num_align,
            "rollout/mix/align_wanted": self.align_wanted,
            "rollout/mix/align_shortfall": self.align_shortfall,
            "rollout/mix/align_fraction": self.num_align / self.batch_size,
        }


def even_shares(total: int, parts: int) -> list[int]:
    """``total`` split over ``parts`` as evenly as possible, the first parts one more."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def plan_step(
    batch_size: int,
    alpha: float,
    align_available: Sequence[int],
    semantics: str = "improved",
) -> list[MixturePlan]:
    """Every process's counts for one step (rules in the module docstring).

    Args:
      batch_size: B, the step's prompts over all processes (a multiple of their number).
      alpha: the code-generation fraction.
      align_available: tasks in each process's alignment source, one entry per process.
      semantics: ``"improved"`` or ``"official"`` counts.
    """
    processes = len(align_available)
    if batch_size < 1 or processes < 1 or batch_size % processes:
        raise ValueError(
            f"batch_size must be a positive multiple of the {processes} processes, got {batch_size}"
        )
    if min(align_available) < 0:
        raise ValueError(f"align_available must be >= 0, got {list(align_available)}")
    if semantics not in ("improved", "official"):
        raise ValueError(f"semantics must be 'improved' or 'official', got {semantics!r}")
    local = batch_size // processes
    if mixture_mode(alpha) == "alignment_only" and min(align_available) < local:
        raise ValueError(
            f"alignment_only needs a pool of at least batch_size={local} tasks, "
            f"got {min(align_available)}"
        )
    if semantics == "official":
        num_code = batch_size - int(batch_size * (1 - alpha))
    else:
        num_code = round(alpha * batch_size)
    buffer_ready = sum(align_available) >= batch_size - num_code
    plans = []
    for code, available in zip(even_shares(num_code, processes), align_available):
        wanted = local - code
        if semantics == "improved":
            num_align = min(wanted, available)
            plans.append(MixturePlan(local, local - num_align, num_align, wanted))
        else:  # one draw per slot: any task fills them all, none means code fills them
            num_align = wanted if buffer_ready and available else 0
            plans.append(
                MixturePlan(local, local - num_align, num_align, wanted, wanted - num_align)
            )
    return plans


def plan_mixture(
    batch_size: int, alpha: float, align_available: int, semantics: str = "improved"
) -> MixturePlan:
    """:func:`plan_step` for one process."""
    return plan_step(batch_size, alpha, [align_available], semantics)[0]


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


class CodeProblems(Protocol):
    """Where code-generation problems come from: the data iterator
    (`coderl_jax.data.iterator.PromptIterator`)."""

    def take(self, counts: Sequence[int]) -> list: ...

    def sample(self, n: int, rng: np.random.Generator) -> list: ...


def draw_mixed_batch(
    plans: Sequence[MixturePlan],
    process_index: int,
    config: MixtureConfig,
    problems: CodeProblems,
    alignment_source: AlignmentBuffer,
    rng: np.random.Generator,
) -> MixedBatch:
    """Draws this process's prompts of one step.

    Args:
      plans: every process's plan (:func:`plan_step`); the same on every process.
      process_index: this process's index into ``plans``.
      config: the alignment sampling strategy and the semantics.
      problems: the data iterator: ``take`` walks it (every process advances it by the
        same counts), ``sample`` draws the official filler problems.
      alignment_source: the buffer (coderl_plus) or the fixed pool (alignment_only).
      rng: draws the alignment tasks and the filler problems.
    """
    plan = plans[process_index]
    code = list(problems.take([p.num_walk for p in plans]))
    if plan.num_random_code:
        code += list(problems.sample(plan.num_random_code, rng))
    if len(code) != plan.num_code:
        raise ValueError(f"the data iterator gave {len(code)} of {plan.num_code} problems")
    per_slot = config.semantics == "official"
    align = alignment_source.sample(plan.num_align, config.sampling, rng, per_slot=per_slot)
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
