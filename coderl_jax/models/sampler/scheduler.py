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
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models.sampler.config import FINISH_LENGTH, FINISH_STOP, SamplingConfig
from coderl_jax.models.sampler.continuous import SlotState
from coderl_jax.models.sampler.output import FinishedSamples
from coderl_jax.models.sampler.prefill import PoolLayout


@dataclasses.dataclass
class DecodeStats:
    """What one continuous call did."""

    segments: int = 0
    preemptions: int = 0
    peak_generated_pages: int = 0  # most generated pages allocated at once


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


def run(
    segment: Callable,
    cache,
    first_tokens: np.ndarray,
    first_logprobs: np.ndarray,
    limits: np.ndarray,
    prompt_of: np.ndarray,
    config: SamplingConfig,
    layout: PoolLayout,
    num_slots: int,
    on_finished: Callable[[FinishedSamples], None] | None = None,
) -> tuple[Completions, DecodeStats]:
    """Decodes every sample (module docstring).

    Args:
      segment: ``(cache, SlotState) -> (cache, SlotState, tokens [S, T], logprobs [S, T])``.
      first_tokens, first_logprobs: [N] from the prefill; limits: [N] length limits;
        prompt_of: [N] prompt index of each sample.
    """
    n, m, size, steps = (
        len(first_tokens),
        config.max_new_tokens,
        layout.page_size,
        config.segment_steps,
    )
    stop_ids = set(config.stop_ids)
    if layout.generated_pages < config.pages_per_row:
        raise ValueError(
            f"{layout.generated_pages} generated pages cannot hold one completion of "
            f"{m} tokens ({config.pages_per_row} pages of {size})"
        )
    out = Completions(
        tokens=np.full((n, m), config.pad_id, np.int32),
        logprobs=np.zeros((n, m), np.float32),
        lengths=np.zeros(n, np.int32),
        stopped=np.zeros(n, bool),
    )
    stats = DecodeStats()
    free = list(range(layout.scratch - 1, layout.first_generated - 1, -1))  # pop() = lowest id
    owned: list[list[int]] = [[] for _ in range(num_slots)]
    sample = np.zeros(num_slots, np.int32)
    length = np.zeros(num_slots, np.int32)
    token = np.full(num_slots, config.pad_id, np.int32)
    active = np.zeros(num_slots, bool)
    admitted = np.zeros(num_slots, np.int64)  # admission counter: larger = younger
    pending = collections.deque(range(n))
    finished: list[int] = []
    counter = 0

    def pages_needed(slot_length: int, limit: int) -> int:
        # Keys of generated indices < min(length - 1 + steps, limit - 1) are written.
        return -(-min(slot_length - 1 + steps, limit - 1) // size)

    def release(slot: int) -> None:
        free.extend(reversed(owned[slot]))
        owned[slot] = []
        active[slot] = False

    def finish(index: int, final_length: int, stopped: bool) -> None:
        out.lengths[index], out.stopped[index] = final_length, stopped
        finished.append(index)

    while True:
        for slot in sorted(np.flatnonzero(active), key=lambda s: admitted[s]):
            if not active[slot]:  # preempted below while serving an older slot
                continue
            need = pages_needed(length[slot], limits[sample[slot]]) - len(owned[slot])
            while need > len(free):
                victim = max(np.flatnonzero(active), key=lambda s: admitted[s])
                release(victim)
                pending.appendleft(int(sample[victim]))
                stats.preemptions += 1
                if victim == slot:
                    break
            if active[slot]:
                owned[slot].extend(free.pop() for _ in range(max(need, 0)))
        for slot in np.flatnonzero(~active):
            while pending:
                index = pending[0]
                first = int(first_tokens[index])
                if first in stop_ids or limits[index] <= 1:
                    pending.popleft()
                    out.tokens[index, 0], out.logprobs[index, 0] = first, first_logprobs[index]
                    finish(index, 1, first in stop_ids)
                    continue
                need = pages_needed(1, limits[index])
                if need > len(free):
                    break
                pending.popleft()
                out.tokens[index] = config.pad_id
                out.logprobs[index] = 0.0
                out.tokens[index, 0], out.logprobs[index, 0] = first, first_logprobs[index]
                owned[slot] = [free.pop() for _ in range(need)]
                sample[slot], length[slot], token[slot] = index, 1, first
                active[slot], admitted[slot] = True, counter
                counter += 1
                break
        in_use = sum(len(p) for p in owned)
        stats.peak_generated_pages = max(stats.peak_generated_pages, in_use)
        if not active.any():
            if pending:
                raise RuntimeError("continuous decoder stalled with samples pending (a bug)")
            break
        pages = np.full((num_slots, config.pages_per_row), layout.scratch, np.int32)
        for slot, slot_pages in enumerate(owned):
            pages[slot, : len(slot_pages)] = slot_pages
        slots = SlotState(
            sample=jnp.asarray(sample),
            prompt=jnp.asarray(prompt_of[sample].astype(np.int32)),
            length=jnp.asarray(length),
            token=jnp.asarray(token),
            limit=jnp.asarray(limits[sample].astype(np.int32)),
            active=jnp.asarray(active),
            stopped=jnp.zeros(num_slots, bool),
            pages=jnp.asarray(pages),
        )
        cache, new_slots, seg_tokens, seg_logprobs = segment(cache, slots)
        stats.segments += 1
        if finished and on_finished is not None:
            on_finished(out.rows(finished))  # runs while the device decodes the segment
        finished = []
        new_length, still, stopped, seg_tokens, seg_logprobs = jax.device_get(
            (new_slots.length, new_slots.active, new_slots.stopped, seg_tokens, seg_logprobs)
        )
        for slot in np.flatnonzero(active):
            index, old, new = sample[slot], length[slot], new_length[slot]
            out.tokens[index, old:new] = seg_tokens[slot, : new - old]
            out.logprobs[index, old:new] = seg_logprobs[slot, : new - old]
            length[slot], token[slot] = new, out.tokens[index, new - 1]
            if not still[slot]:
                finish(int(index), int(new), bool(stopped[slot]))
                release(slot)
    if finished and on_finished is not None:
        on_finished(out.rows(finished))
    return out, stats
