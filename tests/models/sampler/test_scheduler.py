"""The continuous decoder's host loop, driven by a fake device segment (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from coderl_jax.models.sampler import scheduler
from coderl_jax.models.sampler.config import SamplingConfig
from coderl_jax.models.sampler.prefill import PoolLayout

STOP, PAD = 13, 0


def token_at(sample, position):
    """The fake model: sample n's token at position t (13 = stop appears now and then)."""
    return (np.asarray(sample) * 7 + np.asarray(position) * 3) % 41 + 10


def expected(n: int, limit: int) -> list[int]:
    tokens = []
    for t in range(limit):
        tokens.append(int(token_at(n, t)))
        if tokens[-1] == STOP:
            break
    return tokens


def fake_segment(config: SamplingConfig, layout: PoolLayout, log: list):
    """Decodes like `continuous.decode_segment` and checks the host's page bookkeeping."""

    def segment(cache, slots):
        s = {k: np.array(getattr(slots, k)) for k in ("sample", "length", "limit", "active")}
        pages = np.asarray(slots.pages)
        owners = {}
        for slot in np.flatnonzero(s["active"]):
            for page in pages[slot][pages[slot] != layout.scratch]:
                assert layout.first_generated <= page < layout.scratch
                assert owners.setdefault(int(page), slot) == slot, "a page has two owners"
        log.append(len(owners))
        steps = config.segment_steps
        tokens = np.full((len(s["sample"]), steps), PAD, np.int32)
        stopped = np.zeros(len(s["sample"]), bool)
        for t in range(steps):
            if not s["active"].any():
                break
            for slot in np.flatnonzero(s["active"]):
                written = s["length"][slot] - 1  # generated index whose key is stored now
                assert pages[slot, written // layout.page_size] != layout.scratch
                token = int(token_at(s["sample"][slot], s["length"][slot]))
                tokens[slot, t] = token
                s["length"][slot] += 1
                if token == STOP:
                    stopped[slot] = True
                if token == STOP or s["length"][slot] >= s["limit"][slot]:
                    s["active"][slot] = False
        new = slots.replace(length=s["length"], active=s["active"], stopped=stopped)
        return cache, new, tokens, np.where(tokens != PAD, -0.5, 0.0).astype(np.float32)

    return segment


@pytest.mark.parametrize("num_slots, num_pages", [(4, 0), (4, 5), (7, 9), (1, 0)])
def test_every_sample_decoded_in_full_whatever_the_pages(num_slots, num_pages):
    n, m, size = 23, 20, 4
    config = SamplingConfig(m, stop_ids=(STOP,), page_size=size, segment_steps=3)
    layout = PoolLayout(2, 2, num_pages or num_slots * config.pages_per_row, size)
    limits = np.asarray([m if i % 3 else 1 + i % 11 for i in range(n)], np.int32)
    first = token_at(np.arange(n), 0)
    handed, log = [], []
    out, stats = scheduler.run(
        fake_segment(config, layout, log),
        None,
        first,
        np.full(n, -0.5, np.float32),
        limits,
        np.arange(n) // 12,
        np.full(n, 5),
        config,
        layout,
        num_slots,
        on_finished=handed.append,
    )
    for i in range(n):
        want = expected(i, int(limits[i]))
        assert out.lengths[i] == len(want), i
        np.testing.assert_array_equal(out.tokens[i, : len(want)], want)
        assert np.all(out.tokens[i, len(want) :] == PAD)
        assert out.stopped[i] == (want[-1] == STOP)
        np.testing.assert_array_equal(out.logprobs[i, : len(want)], -0.5)
    # Each sample is handed over exactly once, with its final tokens.
    index = np.concatenate([h.index for h in handed])
    assert sorted(index) == list(range(n))
    for h in handed:
        np.testing.assert_array_equal(h.completion_tokens, out.tokens[h.index])
    assert stats.peak_generated_pages <= layout.generated_pages
    assert max(log) <= layout.generated_pages
    if num_pages == 5:  # one completion's worth: slots wait or are preempted
        assert stats.preemptions > 0
    if num_pages == 0:
        assert stats.preemptions == 0


def test_samples_finished_by_their_first_token_never_take_a_slot():
    config = SamplingConfig(8, stop_ids=(int(token_at(0, 0)),), page_size=4, segment_steps=2)
    layout = PoolLayout(1, 1, 2, 4)
    handed, log = [], []
    out, stats = scheduler.run(
        fake_segment(config, layout, log),
        None,
        token_at(np.arange(2), 0),
        np.zeros(2, np.float32),
        np.asarray([8, 1]),
        np.zeros(2, np.int64),
        np.full(2, 3),
        config,
        layout,
        1,
        on_finished=handed.append,
    )
    np.testing.assert_array_equal(out.lengths, [1, 1])
    np.testing.assert_array_equal(out.stopped, [True, False])
    assert stats.segments == 0 and log == []
    assert [list(h.index) for h in handed] == [[0, 1]]


def test_a_pool_smaller_than_one_completion_is_refused():
    config = SamplingConfig(20, page_size=4)
    with pytest.raises(ValueError, match="cannot hold one completion"):
        scheduler.run(
            None, None, np.ones(1), np.zeros(1), np.asarray([20]), np.zeros(1, np.int64),
            np.ones(1), config, PoolLayout(1, 1, 4, 4), 1,
        )  # fmt: skip
