"""Deterministic, host-sharded, checkpointable walk over a list of prompts.

Order. The items whose prompt fits the length limit ("eligible", see below) are walked in a
fresh permutation every epoch: epoch ``e`` uses ``numpy.random.default_rng([seed, e])
.permutation``, so the order depends only on ``(seed, epoch, eligible items)``, never on how
many items were drawn before or on which host asks. The epochs follow each other without a
gap: the walk is the concatenation of the epochs' permutations.

Draws. :meth:`PromptIterator.take` hands out exactly the items asked for, the next ones of
the walk; a draw that reaches the end of an epoch goes on with the next epoch's permutation.
So every eligible item is visited exactly once per epoch, whatever the draw sizes (a step
whose code share changes, e.g. while the alignment buffer fills up, skips nothing).
:meth:`PromptIterator.sample` draws items uniformly with replacement from the eligible ones
without moving the walk (the official CodeRL+ sampler's filler problems).

Hosts. With ``P = process_count`` processes, every process calls ``take(counts)`` with the
same list ``counts`` (how many items each process takes this step): the walk advances by
``sum(counts)``, and process ``i`` gets positions ``[sum(counts[:i]), sum(counts[:i + 1]))``
of that stretch. The union over processes is the stretch, with no overlap, and every
process's iterator stays in the same state. ``process_index`` and ``process_count`` default to
``jax.process_index()`` / ``jax.process_count()``.

State. ``state()`` is ``{"epoch", "position", "seed", "num_eligible"}`` (plain ints,
JSON-able): the walk continues at ``position`` of epoch ``epoch``'s permutation (the items
before it were handed out). ``restore(state)`` continues exactly there; a state from another
seed or another set of eligible items raises instead of silently yielding a different
stream. States saved before draws of any size existed (every position a multiple of the
batch size, an epoch's last partial batch skipped) have the same keys and meaning and restore
as they are: the walk continues from the saved position of the same permutation, and now
also visits the end of the epoch that the old iterator skipped.

Length filter. Given ``length_fn(item) -> int`` (e.g. prompt tokens) and ``max_length``,
items longer than ``max_length`` are dropped once, at construction; the count is logged and
kept in ``num_filtered``. The filter is a pure function of the items, so every host and every
restart computes the same eligible set and the saved positions stay valid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PromptIterator(Generic[T]):
    """The walk over the eligible items (see the module docstring)."""

    def __init__(
        self,
        items: Sequence[T],
        global_batch_size: int,
        seed: int,
        length_fn: Callable[[T], int] | None = None,
        max_length: int | None = None,
        process_index: int | None = None,
        process_count: int | None = None,
    ):
        """
        Args:
          items: the dataset (e.g. ``Problem``s), in a fixed order.
          global_batch_size: prompts per step over all processes (a step draws at most this
            many items; each process's share of a step is ``local_batch_size`` prompts).
          seed: shuffling seed.
          length_fn: length of an item's prompt; required with ``max_length``.
          max_length: items with ``length_fn(item) > max_length`` are dropped (None: keep all).
          process_index, process_count: this host's rank and the number of hosts (default:
            from jax).
        """
        if process_index is None or process_count is None:
            import jax

            process_index = jax.process_index() if process_index is None else process_index
            process_count = jax.process_count() if process_count is None else process_count
        if process_count < 1 or not 0 <= process_index < process_count:
            raise ValueError(
                f"process_index must lie in [0, process_count): got {process_index} of "
                f"{process_count}"
            )
        if global_batch_size < 1 or global_batch_size % process_count:
            raise ValueError(
                f"global_batch_size ({global_batch_size}) must be a positive multiple of "
                f"process_count ({process_count})"
            )
        if seed < 0:
            raise ValueError(f"seed must be >= 0 (numpy SeedSequence), got {seed}")
        if (max_length is None) != (length_fn is None):
            raise ValueError("length_fn and max_length must be given together")
        self._items = items
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.process_index = process_index
        self.process_count = process_count
        self._eligible = self._filter(items, length_fn, max_length)
        self.num_filtered = len(items) - len(self._eligible)
        if self.num_filtered:
            logger.warning(
                "prompt iterator: dropped %d of %d items longer than %d",
                self.num_filtered,
                len(items),
                max_length,
            )
        if len(self._eligible) < global_batch_size:
            raise ValueError(
                f"{len(self._eligible)} eligible items ({self.num_filtered} over the length "
                f"limit) cannot fill one global batch of {global_batch_size}"
            )
        self._epoch = 0
        self._position = 0
        self._order = self._epoch_order(0)

    @staticmethod
    def _filter(items, length_fn, max_length) -> np.ndarray:
        if length_fn is None:
            return np.arange(len(items))
        return np.array(
            [i for i, item in enumerate(items) if length_fn(item) <= max_length], dtype=np.int64
        )

    def _epoch_order(self, epoch: int) -> np.ndarray:
        permutation = np.random.default_rng([self.seed, epoch]).permutation(len(self._eligible))
        return self._eligible[permutation]

    @property
    def num_eligible(self) -> int:
        return len(self._eligible)

    @property
    def local_batch_size(self) -> int:
        """This process's prompts per step."""
        return self.global_batch_size // self.process_count

    @property
    def epoch(self) -> int:
        """The epoch the next item comes from."""
        return self._epoch

    def take_indices(self, counts: Sequence[int]) -> np.ndarray:
        """Indices into ``items`` of this process's ``counts[process_index]`` next items of
        the walk, shape ``[counts[process_index]]``; advances the walk by ``sum(counts)``
        (every process passes the same ``counts``, one entry per process)."""
        counts = [int(n) for n in counts]
        if len(counts) != self.process_count or min(counts) < 0:
            raise ValueError(
                f"take needs one count >= 0 per process ({self.process_count}), got {counts}"
            )
        stretch = []
        remaining = sum(counts)
        while remaining:
            if self._position == len(self._eligible):
                self._epoch, self._position = self._epoch + 1, 0
                self._order = self._epoch_order(self._epoch)
            n = min(remaining, len(self._eligible) - self._position)
            stretch.append(self._order[self._position : self._position + n])
            self._position += n
            remaining -= n
        if self._position == len(self._eligible):  # the state names the next epoch
            self._epoch, self._position = self._epoch + 1, 0
            self._order = self._epoch_order(self._epoch)
        walk = np.concatenate(stretch) if stretch else np.zeros((0,), np.int64)
        start = sum(counts[: self.process_index])
        return walk[start : start + counts[self.process_index]]

    def take(self, counts: Sequence[int]) -> list[T]:
        """This process's share of the next ``sum(counts)`` items (see ``take_indices``)."""
        return [self._items[i] for i in self.take_indices(counts)]

    def sample(self, n: int, rng: np.random.Generator) -> list[T]:
        """``n`` eligible items drawn uniformly with replacement; the walk does not move."""
        if n < 0:
            raise ValueError(f"cannot sample {n} items")
        picks = rng.integers(len(self._eligible), size=n)
        return [self._items[i] for i in self._eligible[picks]]

    def state(self) -> dict[str, int]:
        """Where the walk continues, as a JSON-able dict (see the module docstring)."""
        return {
            "epoch": self._epoch,
            "position": self._position,
            "seed": self.seed,
            "num_eligible": len(self._eligible),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from ``state()`` of an iterator over the same items, seed and filter."""
        missing = {"epoch", "position", "seed", "num_eligible"} - set(state)
        if missing:
            raise ValueError(f"iterator state lacks {sorted(missing)}: {state}")
        if int(state["seed"]) != self.seed or int(state["num_eligible"]) != len(self._eligible):
            raise ValueError(
                f"iterator state {state} is from another stream: this iterator has seed "
                f"{self.seed} and {len(self._eligible)} eligible items"
            )
        epoch, position = int(state["epoch"]), int(state["position"])
        if epoch < 0 or not 0 <= position <= len(self._eligible):
            raise ValueError(f"iterator state out of range: {state}")
        if position == len(self._eligible):  # an old state at the very end of an epoch
            epoch, position = epoch + 1, 0
        self._epoch, self._position = epoch, position
        self._order = self._epoch_order(epoch)
