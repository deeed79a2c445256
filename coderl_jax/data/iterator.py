"""Deterministic, host-sharded, checkpointable iterator over a list of prompts.

Order. The items whose prompt fits the length limit ("eligible", see below) are visited in a
fresh permutation every epoch: epoch ``e`` uses ``numpy.random.default_rng([seed, e])
.permutation``, so the order depends only on ``(seed, epoch, eligible items)``, never on how
many batches were drawn before or on which host asks.

Batches. Each epoch is cut into ``len(eligible) // global_batch_size`` global batches of
consecutive positions of its permutation; the remainder (fewer than a batch) is dropped and
the next epoch starts, so every step sees a full batch of distinct items.

Hosts. With ``P = process_count`` processes, process ``i`` takes positions
``[i * B/P, (i + 1) * B/P)`` of every global batch (``B = global_batch_size``, divisible by
``P``): the union over processes is the global batch, with no overlap. ``process_index`` and
``process_count`` default to ``jax.process_index()`` / ``jax.process_count()``.

State. ``state()`` is ``{"epoch", "position", "seed", "num_eligible"}`` (plain ints, JSON-able):
the next global batch starts at ``position`` of epoch ``epoch``'s permutation.
``restore(state)`` continues exactly there; a state from another seed or another set of
eligible items raises instead of silently yielding a different stream.

Length filter. Given ``length_fn(item) -> int`` (e.g. prompt tokens) and ``max_length``,
items longer than ``max_length`` are dropped once, at construction; the count is logged and
kept in ``num_filtered``. The filter is a pure function of the items, so every host and every
restart computes the same eligible set and the saved positions stay valid.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PromptIterator(Generic[T]):
    """Endless iterator of this process's share of each global batch (a list of items)."""

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
          global_batch_size: items per step over all processes.
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
    def batches_per_epoch(self) -> int:
        return len(self._eligible) // self.global_batch_size

    @property
    def local_batch_size(self) -> int:
        return self.global_batch_size // self.process_count

    def next_indices(self) -> np.ndarray:
        """Indices into ``items`` of this process's share of the next global batch, shape
        ``[local_batch_size]``; advances the iterator."""
        if self._position + self.global_batch_size > len(self._eligible):
            self._epoch += 1
            self._position = 0
            self._order = self._epoch_order(self._epoch)
        start = self._position + self.process_index * self.local_batch_size
        indices = self._order[start : start + self.local_batch_size]
        self._position += self.global_batch_size
        return indices

    def __next__(self) -> list[T]:
        return [self._items[i] for i in self.next_indices()]

    def __iter__(self) -> Iterator[list[T]]:
        return self

    def state(self) -> dict[str, int]:
        """Where the next global batch starts, as a JSON-able dict (see the module docstring)."""
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
        if position % self.global_batch_size:
            raise ValueError(
                f"iterator state position {position} is not a multiple of the global batch "
                f"size {self.global_batch_size} (saved with another batch size?)"
            )
        self._epoch, self._position = epoch, position
        self._order = self._epoch_order(epoch)
