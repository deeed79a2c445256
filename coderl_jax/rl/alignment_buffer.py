"""The buffer of alignment tasks that alignment prompts are drawn from (CodeRL+).

Tasks enter in training-step order (each carries the step that created it) and the oldest
are evicted first once ``capacity`` (official: 20,000) is exceeded. Sampling does not remove
tasks: a task can be asked again in later steps, as in the official code. Sampling is
deterministic given a ``numpy.random.Generator``. Strategies (``SAMPLERS``, name -> function),
each drawing ``n`` tasks without replacement within one call:

* ``"recent"`` (official default): when the most recent step's additions hold at least
  ``n`` tasks, ``n`` of them uniformly at random; otherwise the ``n`` newest tasks. (Steps
  that made no task add nothing, so "the most recent step" is the latest one that made any.)
* ``"random"``: ``n`` tasks uniformly at random from the whole buffer.
* ``"balanced"``: balanced over source problems, so problems with many failing rollouts do
  not crowd out the rest. It goes in rounds; each round visits the problems that still have
  undrawn tasks in a random order and draws one random task from each, until ``n`` tasks are
  drawn. Problems' counts therefore differ by at most one unless a problem runs out.

Per slot (``per_slot=True``, the official code's way, used under ``semantics="official"``):
each of the ``n`` alignment slots of a batch is its own one-task draw of the strategy, so a
task can fill several slots. With ``"recent"`` every slot is a uniform draw, with
replacement, from the tasks of the latest step that made any (the official
``RolloutEnhancedDataset`` calls ``sample_records(1)`` once per slot).

The age of a task at step ``t`` is ``t - task.step`` (:func:`task_ages`), logged so metrics
show how stale the sampled tasks are.

Checkpointing: :meth:`AlignmentBuffer.save_jsonl` writes a header line (format, version,
capacity, size) and one task per line; :meth:`AlignmentBuffer.load_jsonl` restores an equal
buffer (same tasks, order and capacity). The checkpoint code stores it as
``BUFFER_FILENAME`` inside each checkpoint directory.
"""

from __future__ import annotations

import collections
import json
import os
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np

from coderl_jax import storage
from coderl_jax.rl.alignment_task import AlignmentTask

SamplingStrategy = Literal["recent", "random", "balanced"]
SAMPLING_STRATEGIES: tuple[str, ...] = typing.get_args(SamplingStrategy)
BUFFER_FILENAME = "alignment_buffer.jsonl"
_FORMAT = "coderl_jax.alignment_buffer"
_VERSION = 1


class AlignmentBuffer:
    """FIFO buffer of :class:`AlignmentTask`, oldest first (see the module docstring)."""

    def __init__(self, capacity: int = 20_000, tasks: Iterable[AlignmentTask] = ()):
        if capacity < 1:
            raise ValueError(f"AlignmentBuffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._tasks: collections.deque[AlignmentTask] = collections.deque()
        self.add(list(tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlignmentBuffer):
            return NotImplemented
        return self.capacity == other.capacity and list(self._tasks) == list(other._tasks)

    @property
    def tasks(self) -> list[AlignmentTask]:
        """All tasks, oldest first (a copy)."""
        return list(self._tasks)

    @property
    def latest_step(self) -> int | None:
        """Step of the newest task, or None when empty."""
        return self._tasks[-1].step if self._tasks else None

    def add(self, tasks: Sequence[AlignmentTask]) -> int:
        """Appends tasks (steps must not go backwards); returns how many old tasks were evicted."""
        for task in tasks:
            if self._tasks and task.step < self._tasks[-1].step:
                raise ValueError(
                    f"AlignmentBuffer.add: task of step {task.step} after step "
                    f"{self._tasks[-1].step}; tasks must arrive in step order"
                )
            self._tasks.append(task)
        evicted = max(0, len(self._tasks) - self.capacity)
        for _ in range(evicted):
            self._tasks.popleft()
        return evicted

    def sample(
        self, n: int, strategy: str, rng: np.random.Generator, per_slot: bool = False
    ) -> list[AlignmentTask]:
        """Draws ``n`` tasks with ``strategy``: distinct ones, or with ``per_slot`` one draw
        per slot (tasks may repeat; needs a non-empty buffer). See the module docstring."""
        if strategy not in SAMPLERS:
            raise ValueError(
                f"sampling strategy must be one of {tuple(SAMPLERS)}, got {strategy!r}"
            )
        too_many = n > len(self._tasks) if not per_slot else n > 0 and not self._tasks
        if n < 0 or too_many:
            raise ValueError(f"cannot sample {n} tasks from a buffer of {len(self._tasks)}")
        tasks, draw = self.tasks, SAMPLERS[strategy]
        if per_slot:
            return [draw(tasks, 1, rng)[0] for _ in range(n)]
        return draw(tasks, n, rng)

    def save_jsonl(self, path: str | os.PathLike) -> None:
        """Writes the buffer to ``path`` (local, or an object store's ``gs://...``) so that
        a crash leaves the old file or the new (`coderl_jax.storage.atomic_writer`)."""
        header = {
            "format": _FORMAT,
            "version": _VERSION,
            "capacity": self.capacity,
            "size": len(self),
        }
        with storage.atomic_writer(path) as f:
            f.write((json.dumps(header) + "\n").encode("utf-8"))
            for task in self._tasks:
                line = json.dumps(task.to_json(), ensure_ascii=False, allow_nan=False) + "\n"
                f.write(line.encode("utf-8"))

    @classmethod
    def load_jsonl(cls, path: str | os.PathLike, capacity: int | None = None) -> AlignmentBuffer:
        """Reads a buffer written by :meth:`save_jsonl`; ``capacity`` overrides the saved one
        (oldest tasks are evicted if it is smaller)."""
        # "\n" only: str.splitlines would also split inside a task at U+2028 or U+0085, which
        # json.dumps(ensure_ascii=False) leaves unescaped.
        lines = storage.read_text(path).split("\n")
        if lines and not lines[-1]:
            lines.pop()
        try:
            header = json.loads(lines[0]) if lines else {}
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: line 1 is not a JSON header ({e})") from e
        if header.get("format") != _FORMAT or header.get("version") != _VERSION:
            raise ValueError(f"{path}: expected a {_FORMAT} v{_VERSION} header, got {lines[:1]}")
        tasks = []
        for line_number, line in enumerate(lines[1:], start=2):
            try:
                tasks.append(AlignmentTask.from_json(json.loads(line)))
            except (json.JSONDecodeError, TypeError, KeyError, ValueError) as e:
                raise ValueError(
                    f"{path}: line {line_number} is not an alignment task ({e})"
                ) from e
        if len(tasks) != header["size"]:
            raise ValueError(f"{path}: header says {header['size']} tasks, file has {len(tasks)}")
        return cls(capacity or header["capacity"], tasks)


def _sample_random(
    tasks: list[AlignmentTask], n: int, rng: np.random.Generator
) -> list[AlignmentTask]:
    return [tasks[i] for i in rng.choice(len(tasks), size=n, replace=False)]


def _sample_recent(
    tasks: list[AlignmentTask], n: int, rng: np.random.Generator
) -> list[AlignmentTask]:
    latest = [t for t in tasks if t.step == tasks[-1].step] if tasks else []
    if len(latest) >= n:
        return [latest[i] for i in rng.choice(len(latest), size=n, replace=False)]
    return tasks[len(tasks) - n :]


def _sample_balanced(
    tasks: list[AlignmentTask], n: int, rng: np.random.Generator
) -> list[AlignmentTask]:
    by_problem: dict[str, list[int]] = collections.defaultdict(list)
    for index, task in enumerate(tasks):
        by_problem[task.problem_id].append(index)
    remaining = list(by_problem.values())  # first-appearance order: deterministic
    chosen: list[int] = []
    while len(chosen) < n:
        remaining = [indices for indices in remaining if indices]
        for problem in rng.permutation(len(remaining)):
            if len(chosen) == n:
                break
            indices = remaining[problem]
            chosen.append(indices.pop(int(rng.integers(len(indices)))))
    return [tasks[i] for i in chosen]


# Strategy name -> (tasks oldest first, n, rng) -> n distinct tasks.
SAMPLERS: dict[str, Callable[[list[AlignmentTask], int, np.random.Generator], list]] = {
    "recent": _sample_recent,
    "random": _sample_random,
    "balanced": _sample_balanced,
}


def task_ages(tasks: Sequence[AlignmentTask], step: int) -> np.ndarray:
    """Ages ``step - task.step`` of the given tasks, int64 of shape [N]."""
    return np.asarray([step - task.step for task in tasks], dtype=np.int64).reshape(-1)
