"""The continuous decoder's host loop: slots, pages, preemption and early hand-off.

Between device segments (`continuous.decode_segment`) the host

1. reads each slot's new tokens; a finished sample frees its slot and its generated pages;
2. gives every decoding slot, oldest first, the pages its next segment can fill; when the
   free pages run short, the most recently admitted slots are preempted (their pages freed,
   their samples put back at the head of the queue, to be decoded again from their first
   token: the per-sample randomness makes the retry draw the same tokens, up to
   floating-point rounding of the logits);
3. refills idle slots with pending samples, in order, while pages allow;
4. dispatches the next segment, and only then hands the samples that finished to
   ``on_finished`` (so the host's work on them overlaps the device's decoding).

Memory: the pool holds the prompts' pages plus ``generated_pages`` pages; `DecodeStats`
records the most generated pages in use at once. The oldest slot can always finish (the
pool holds at least one full completion), so the loop terminates.

Shards: with ``num_shards`` > 1 (a mesh whose batch axes hold several devices of this
process) each shard has its own slots, its own pool (ids local to it) and its own queue:
the call's rows are split into equal contiguous blocks, shard j decodes block j, and the
segment's slot arrays are the shards' blocks one after the other. Several processes each
run this loop over their own rows and shards; since every segment is one program over all
devices, a process whose samples are done keeps running idle segments until every process
is done (the number of segments is the maximum over processes, agreed by one small
collective per segment).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable

import numpy as np

from coderl_jax.models.sampler.config import FINISH_LENGTH, FINISH_STOP, SamplingConfig
from coderl_jax.models.sampler.continuous import SlotState
from coderl_jax.models.sampler.output import FinishedSamples
from coderl_jax.models.sampler.prefill import PoolLayout
from coderl_jax.parallel import multihost


@dataclasses.dataclass
class DecodeStats:
    """What one continuous call did."""

    segments: int = 0
    preemptions: int = 0
    peak_generated_pages: int = 0  # most generated pages allocated at once (in one shard)


@dataclasses.dataclass
class Completions:
    """Per-sample results on the host: [N, M] tokens / log-probs, [N] lengths / stopped."""

    tokens: np.ndarray
    logprobs: np.ndarray
    lengths: np.ndarray
    stopped: np.ndarray

    def rows(self, index: list[int]) -> FinishedSamples:
        index = np.asarray(index, np.int64)
        return FinishedSamples(
            index=index,
            completion_tokens=self.tokens[index],
            completion_lengths=self.lengths[index],
            logprobs=self.logprobs[index],
            finish_reason=np.where(self.stopped[index], FINISH_STOP, FINISH_LENGTH).astype(
                np.int32
            ),
        )


class _Shard:
    """One shard's slots, pages and queue of samples (rows of the call)."""

    def __init__(self, rows: range, layout: PoolLayout, num_slots: int, config: SamplingConfig):
        self.layout, self.config = layout, config
        self.free = list(range(layout.scratch - 1, layout.first_generated - 1, -1))  # pop(): lowest
        self.owned: list[list[int]] = [[] for _ in range(num_slots)]
        self.sample = np.full(num_slots, rows.start, np.int64)  # local row of the call
        self.length = np.zeros(num_slots, np.int32)
        self.token = np.full(num_slots, config.pad_id, np.int32)
        self.active = np.zeros(num_slots, bool)
        self.admitted = np.zeros(num_slots, np.int64)  # admission counter: larger = younger
        self.pending = collections.deque(rows)
        self.counter = 0

    def pages_needed(self, slot_length: int, limit: int) -> int:
        # Keys of generated indices < min(length - 1 + steps, limit - 1) are written.
        steps = self.config.segment_steps
        return -(-min(slot_length - 1 + steps, limit - 1) // self.layout.page_size)

    def release(self, slot: int) -> None:
        self.free.extend(reversed(self.owned[slot]))
        self.owned[slot] = []
        self.active[slot] = False

    def allocate(self, limits: np.ndarray, stats: DecodeStats) -> None:
        """Pages for every decoding slot's next segment, oldest first; preempts the youngest."""
        for slot in sorted(np.flatnonzero(self.active), key=lambda s: self.admitted[s]):
            if not self.active[slot]:  # preempted below while serving an older slot
                continue
            need = self.pages_needed(self.length[slot], limits[self.sample[slot]])
            need -= len(self.owned[slot])
            while need > len(self.free):
                victim = max(np.flatnonzero(self.active), key=lambda s: self.admitted[s])
                self.release(victim)
                self.pending.appendleft(int(self.sample[victim]))
                stats.preemptions += 1
                if victim == slot:
                    break
            if self.active[slot]:
                self.owned[slot].extend(self.free.pop() for _ in range(max(need, 0)))

    def refill(self, first_tokens, first_logprobs, limits, out: Completions, finish) -> None:
        """Idle slots take pending samples in order, while pages allow."""
        stop_ids = set(self.config.stop_ids)
        for slot in np.flatnonzero(~self.active):
            while self.pending:
                index = self.pending[0]
                first = int(first_tokens[index])
                if first in stop_ids or limits[index] <= 1:
                    self.pending.popleft()
                    out.tokens[index, 0], out.logprobs[index, 0] = first, first_logprobs[index]
                    finish(index, 1, first in stop_ids)
                    continue
                need = self.pages_needed(1, limits[index])
                if need > len(self.free):
                    break
                self.pending.popleft()
                out.tokens[index] = self.config.pad_id
                out.logprobs[index] = 0.0
                out.tokens[index, 0], out.logprobs[index, 0] = first, first_logprobs[index]
                self.owned[slot] = [self.free.pop() for _ in range(need)]
                self.sample[slot], self.length[slot], self.token[slot] = index, 1, first
                self.active[slot], self.admitted[slot] = True, self.counter
                self.counter += 1
                break

    def page_table(self) -> np.ndarray:
        pages = np.full((len(self.owned), self.config.pages_per_row), self.layout.scratch, np.int32)
        for slot, slot_pages in enumerate(self.owned):
            pages[slot, : len(slot_pages)] = slot_pages
        return pages

    def absorb(self, new_length, still, stopped, tokens, logprobs, out, finish) -> None:
        """Reads one segment's results for this shard's slots."""
        for slot in np.flatnonzero(self.active):
            index, old, new = self.sample[slot], self.length[slot], new_length[slot]
            out.tokens[index, old:new] = tokens[slot, : new - old]
            out.logprobs[index, old:new] = logprobs[slot, : new - old]
            self.length[slot], self.token[slot] = new, out.tokens[index, new - 1]
            if not still[slot]:
                finish(int(index), int(new), bool(stopped[slot]))
                self.release(slot)


def run(
    segment: Callable,
    cache,
    first_tokens: np.ndarray,
    first_logprobs: np.ndarray,
    limits: np.ndarray,
    prompt_of: np.ndarray,
    prompt_lengths: np.ndarray,
    config: SamplingConfig,
    layout: PoolLayout,
    num_slots: int,
    on_finished: Callable[[FinishedSamples], None] | None = None,
    num_shards: int = 1,
    sample_offset: int = 0,
) -> tuple[Completions, DecodeStats]:
    """Decodes every sample (module docstring).

    Args:
      segment: ``(cache, SlotState of host arrays) -> (cache, SlotState, tokens [S, T],
        logprobs [S, T])``, S = num_shards x num_slots (shard j's slots at [j * num_slots,
        (j + 1) * num_slots)); its outputs are read with `multihost.local_rows`.
      first_tokens, first_logprobs: [N] from the prefill; limits: [N] length limits;
        prompt_of: [N] place of each sample's prompt in its shard's pool; prompt_lengths:
        [N] real tokens of each sample's prompt.
      layout: one shard's pool; num_slots: slots per shard.
      num_shards: shards of this process; shard j decodes rows [j * N / num_shards, ...).
      sample_offset: the global row of local row 0 (each sample's randomness).
    """
    n, m = len(first_tokens), config.max_new_tokens
    if layout.generated_pages < config.pages_per_row:
        raise ValueError(
            f"{layout.generated_pages} generated pages cannot hold one completion of "
            f"{m} tokens ({config.pages_per_row} pages of {layout.page_size})"
        )
    if n % num_shards:
        raise ValueError(f"{n} samples do not split evenly over {num_shards} shards")
    out = Completions(
        tokens=np.full((n, m), config.pad_id, np.int32),
        logprobs=np.zeros((n, m), np.float32),
        lengths=np.zeros(n, np.int32),
        stopped=np.zeros(n, bool),
    )
    stats = DecodeStats()
    rows = n // num_shards
    shards = [
        _Shard(range(j * rows, (j + 1) * rows), layout, num_slots, config)
        for j in range(num_shards)
    ]
    finished: list[int] = []

    def finish(index: int, final_length: int, stopped: bool) -> None:
        out.lengths[index], out.stopped[index] = final_length, stopped
        finished.append(index)

    while True:
        for shard in shards:
            shard.allocate(limits, stats)
            shard.refill(first_tokens, first_logprobs, limits, out, finish)
            in_use = sum(len(p) for p in shard.owned)
            stats.peak_generated_pages = max(stats.peak_generated_pages, in_use)
            if not shard.active.any() and shard.pending:
                raise RuntimeError("continuous decoder stalled with samples pending (a bug)")
        busy = any(shard.active.any() for shard in shards)
        if not multihost.max_over_processes(int(busy)):
            break
        sample = np.concatenate([s.sample for s in shards])
        slots = SlotState(
            sample=(sample + sample_offset).astype(np.int32),
            prompt=prompt_of[sample].astype(np.int32),
            prompt_length=prompt_lengths[sample].astype(np.int32),
            length=np.concatenate([s.length for s in shards]),
            token=np.concatenate([s.token for s in shards]),
            limit=limits[sample].astype(np.int32),
            active=np.concatenate([s.active for s in shards]),
            stopped=np.zeros(len(sample), bool),
            pages=np.concatenate([s.page_table() for s in shards]),
        )
        cache, new_slots, seg_tokens, seg_logprobs = segment(cache, slots)
        stats.segments += 1
        if finished and on_finished is not None:
            on_finished(out.rows(finished))  # runs while the device decodes the segment
        finished = []
        results = (new_slots.length, new_slots.active, new_slots.stopped, seg_tokens, seg_logprobs)
        results = [multihost.local_rows(x) for x in results]
        for j, shard in enumerate(shards):
            block = slice(j * num_slots, (j + 1) * num_slots)
            shard.absorb(*(x[block] for x in results), out, finish)
    if finished and on_finished is not None:
        on_finished(out.rows(finished))
    return out, stats
