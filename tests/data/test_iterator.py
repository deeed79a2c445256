"""PromptIterator: per-epoch shuffles, host sharding, exact restore, length filter."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from coderl_jax.data.iterator import PromptIterator


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def test_epochs_are_seeded_permutations_cut_into_full_batches():
    items = list(range(10))
    it = PromptIterator(items, global_batch_size=4, seed=3, process_index=0, process_count=1)
    assert it.batches_per_epoch == 2  # 10 // 4; the last 2 of each epoch are dropped
    batches = _take(it, 6)
    for epoch in range(3):
        order = np.random.default_rng([3, epoch]).permutation(10).tolist()
        assert batches[2 * epoch] == order[0:4]
        assert batches[2 * epoch + 1] == order[4:8]
        assert len(set(batches[2 * epoch] + batches[2 * epoch + 1])) == 8
    assert batches[0:2] != batches[2:4]  # a new shuffle each epoch
    again = PromptIterator(items, global_batch_size=4, seed=3, process_index=0, process_count=1)
    assert _take(again, 6) == batches
    other = PromptIterator(items, global_batch_size=4, seed=4, process_index=0, process_count=1)
    assert _take(other, 2) != batches[:2]


def test_hosts_take_disjoint_slices_that_make_up_the_global_batch():
    items = [f"p{i}" for i in range(13)]
    whole = PromptIterator(items, global_batch_size=6, seed=0, process_index=0, process_count=1)
    hosts = [
        PromptIterator(items, global_batch_size=6, seed=0, process_index=i, process_count=3)
        for i in range(3)
    ]
    assert hosts[0].local_batch_size == 2
    for _ in range(5):  # crosses two epoch boundaries (2 batches per epoch)
        global_batch = next(whole)
        local = [next(h) for h in hosts]
        assert local[0] + local[1] + local[2] == global_batch


def test_restore_continues_exactly_like_an_uninterrupted_run():
    items = list(range(23))
    kwargs = dict(global_batch_size=4, seed=11, process_index=1, process_count=2)
    uninterrupted = _take(PromptIterator(items, **kwargs), 12)
    first = PromptIterator(items, **kwargs)
    head = _take(first, 7)  # 5 batches per epoch: the save lands inside epoch 1
    saved = json.loads(json.dumps(first.state()))
    assert saved == {"epoch": 1, "position": 8, "seed": 11, "num_eligible": 23}
    resumed = PromptIterator(items, **kwargs)
    resumed.restore(saved)
    assert head + _take(resumed, 5) == uninterrupted


def test_length_filter_drops_long_prompts_deterministically(caplog):
    items = ["a" * n for n in [3, 9, 1, 12, 5, 7, 2, 10]]
    kwargs = dict(global_batch_size=2, seed=0, process_index=0, process_count=1)
    with caplog.at_level(logging.WARNING):
        it = PromptIterator(items, length_fn=len, max_length=7, **kwargs)
    assert it.num_filtered == 3 and it.num_eligible == 5
    assert "dropped 3 of 8 items longer than 7" in caplog.text
    seen = [s for batch in _take(it, 6) for s in batch]
    assert max(map(len, seen)) <= 7
    assert set(seen) == {"aaa", "a", "aaaaa", "aaaaaaa", "aa"}
    # Same filter after a restart: the state restores; a different filter is refused.
    it2 = PromptIterator(items, length_fn=len, max_length=7, **kwargs)
    it2.restore(it.state())
    assert next(it2) == next(it)
    unfiltered = PromptIterator(items, **kwargs)
    with pytest.raises(ValueError, match="another stream"):
        unfiltered.restore(it.state())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="multiple of process_count"):
        PromptIterator(
            list(range(8)), global_batch_size=3, seed=0, process_index=0, process_count=2
        )
    with pytest.raises(ValueError, match="cannot fill one global batch"):
        PromptIterator(
            ["xx", "y"],
            global_batch_size=2,
            seed=0,
            length_fn=len,
            max_length=1,
            process_index=0,
            process_count=1,
        )
    with pytest.raises(ValueError, match="process_index"):
        PromptIterator(
            list(range(8)), global_batch_size=2, seed=0, process_index=2, process_count=2
        )
    with pytest.raises(ValueError, match="seed must be >= 0"):
        PromptIterator(
            list(range(8)), global_batch_size=2, seed=-1, process_index=0, process_count=1
        )
    with pytest.raises(ValueError, match="together"):
        PromptIterator(
            list(range(8)),
            global_batch_size=2,
            seed=0,
            max_length=3,
            process_index=0,
            process_count=1,
        )
    it = PromptIterator(
        list(range(8)), global_batch_size=2, seed=0, process_index=0, process_count=1
    )
    with pytest.raises(ValueError, match="multiple of the global batch"):
        it.restore({"epoch": 0, "position": 3, "seed": 0, "num_eligible": 8})
    with pytest.raises(ValueError, match="lacks"):
        it.restore({"epoch": 0})


def test_process_defaults_come_from_jax():
    it = PromptIterator(list(range(4)), global_batch_size=2, seed=0)
    assert (it.process_index, it.process_count) == (0, 1)
