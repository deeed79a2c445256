"""PromptIterator: per-epoch shuffles walked without gaps, draws of any size, host shares,
exact restore (old states included), the official filler's draws, length filter."""

from __future__ import annotations

import collections
import json
import logging

import numpy as np
import pytest

from coderl_jax.data.iterator import PromptIterator


def _iterator(items, batch=4, seed=3, index=0, count=1, **kwargs):
    return PromptIterator(items, batch, seed, process_index=index, process_count=count, **kwargs)


def test_walk_is_the_epochs_permutations_back_to_back():
    items = list(range(10))
    it = _iterator(items)
    drawn = [it.take([n]) for n in (4, 4, 4, 3, 5, 0, 7, 3)]  # 30 items: three epochs
    walk = [x for batch in drawn for x in batch]
    for epoch in range(3):
        assert walk[10 * epoch : 10 * (epoch + 1)] == (
            np.random.default_rng([3, epoch]).permutation(10).tolist()
        )
    assert drawn[2] == walk[8:12]  # a draw crossing the end of epoch 0 goes on into epoch 1
    assert it.state() == {"epoch": 3, "position": 0, "seed": 3, "num_eligible": 10}
    again = _iterator(items)
    assert [again.take([n]) for n in (4, 4, 4)] == drawn[:3]  # deterministic
    assert _iterator(items, seed=4).take([4]) != drawn[0]


@pytest.mark.parametrize("counts_per_step", [[4], [3, 5, 4, 4, 2], [1, 4, 4, 4, 4, 4]])
def test_every_problem_once_per_epoch_whatever_the_draw_sizes(counts_per_step):
    """The old iterator cut fixed batches and the step kept a prefix: ~40% never seen."""
    items = [f"p{i}" for i in range(37)]
    it = _iterator(items)
    visits = collections.Counter()  # (epoch, item) -> times handed out
    for step in range(60):
        n = counts_per_step[step % len(counts_per_step)]
        epoch, position = it.state()["epoch"], it.state()["position"]
        for k, item in enumerate(it.take([n])):
            crossed = position + k >= len(items)
            visits[(epoch + crossed, item)] += 1
    last = it.state()["epoch"]
    for epoch in range(last):
        assert sorted(item for e, item in visits if e == epoch) == sorted(items)
    assert set(visits.values()) == {1}


def test_hosts_take_their_counts_of_one_stretch_of_the_walk():
    items = [f"p{i}" for i in range(13)]
    whole = _iterator(items, batch=6)
    hosts = [_iterator(items, batch=6, index=i, count=3) for i in range(3)]
    assert hosts[0].local_batch_size == 2
    for counts in ([2, 2, 2], [3, 2, 1], [0, 2, 2], [2, 2, 2], [1, 1, 0], [2, 2, 2]):
        stretch = whole.take([sum(counts)])  # crosses two epoch boundaries
        local = [h.take(counts) for h in hosts]
        assert local[0] + local[1] + local[2] == stretch
        assert [len(x) for x in local] == counts
        assert all(h.state() == whole.state() for h in hosts)  # one state for all hosts
    with pytest.raises(ValueError, match="one count >= 0 per process"):
        hosts[0].take([2, 2])


def test_restore_continues_exactly_like_an_uninterrupted_run():
    items = list(range(23))
    kwargs = dict(batch=4, seed=11, index=1, count=2)
    counts = [[2, 3], [2, 2], [1, 2], [2, 2]] * 4
    uninterrupted = _iterator(items, **kwargs)
    expected = [uninterrupted.take(c) for c in counts]
    first = _iterator(items, **kwargs)
    head = [first.take(c) for c in counts[:7]]
    saved = json.loads(json.dumps(first.state()))
    assert saved == {"epoch": 1, "position": 5, "seed": 11, "num_eligible": 23}
    resumed = _iterator(items, **kwargs)
    resumed.restore(saved)
    assert head + [resumed.take(c) for c in counts[7:]] == expected


def test_old_states_restore_and_the_walk_goes_on_from_there():
    """A state saved by the fixed-batch iterator (position a multiple of the batch, the
    epoch's last partial batch skipped) continues the same permutation from that position,
    and now also visits the end of the epoch."""
    items = list(range(10))
    it = _iterator(items)
    it.restore({"epoch": 1, "position": 8, "seed": 3, "num_eligible": 10})
    order = np.random.default_rng([3, 1]).permutation(10).tolist()
    assert it.take([4]) == order[8:] + np.random.default_rng([3, 2]).permutation(10).tolist()[:2]
    end = _iterator(items)
    end.restore({"epoch": 0, "position": 10, "seed": 3, "num_eligible": 10})
    assert end.state()["epoch"] == 1 and end.take([2]) == order[:2]


def test_sample_draws_eligible_items_with_replacement_and_keeps_the_walk():
    items = ["a" * n for n in [3, 9, 1, 12, 5, 7, 2, 10]]
    it = _iterator(items, batch=2, length_fn=len, max_length=7)
    state = it.state()
    drawn = it.sample(50, np.random.default_rng(0))
    assert len(drawn) == 50 and set(drawn) == {"aaa", "a", "aaaaa", "aaaaaaa", "aa"}
    assert it.state() == state
    assert drawn == it.sample(50, np.random.default_rng(0))


def test_length_filter_drops_long_prompts_deterministically(caplog):
    items = ["a" * n for n in [3, 9, 1, 12, 5, 7, 2, 10]]
    kwargs = dict(batch=2, seed=0, length_fn=len, max_length=7)
    with caplog.at_level(logging.WARNING):
        it = _iterator(items, **kwargs)
    assert it.num_filtered == 3 and it.num_eligible == 5
    assert "dropped 3 of 8 items longer than 7" in caplog.text
    seen = it.take([10])
    assert sorted(seen[:5]) == sorted(seen[5:]) == ["a", "aa", "aaa", "aaaaa", "aaaaaaa"]
    # Same filter after a restart: the state restores; a different filter is refused.
    it2 = _iterator(items, **kwargs)
    it2.restore(it.state())
    assert it2.take([2]) == it.take([2])
    with pytest.raises(ValueError, match="another stream"):
        _iterator(items, batch=2, seed=0).restore(it.state())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="multiple of process_count"):
        _iterator(list(range(8)), batch=3, count=2)
    with pytest.raises(ValueError, match="cannot fill one global batch"):
        _iterator(["xx", "y"], batch=2, length_fn=len, max_length=1)
    with pytest.raises(ValueError, match="process_index"):
        _iterator(list(range(8)), batch=2, index=2, count=2)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        _iterator(list(range(8)), batch=2, seed=-1)
    with pytest.raises(ValueError, match="together"):
        _iterator(list(range(8)), batch=2, max_length=3)
    it = _iterator(list(range(8)), batch=2)
    with pytest.raises(ValueError, match="out of range"):
        it.restore({"epoch": 0, "position": 9, "seed": 3, "num_eligible": 8})
    with pytest.raises(ValueError, match="lacks"):
        it.restore({"epoch": 0})
    with pytest.raises(ValueError, match="cannot sample"):
        it.sample(-1, np.random.default_rng(0))


def test_process_defaults_come_from_jax():
    it = PromptIterator(list(range(4)), global_batch_size=2, seed=0)
    assert (it.process_index, it.process_count) == (0, 1)
