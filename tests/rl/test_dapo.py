"""DAPO dynamic sampling accumulator and overlong shaping against hand-computed numbers."""

import numpy as np
import pytest

from coderl_jax.rl.dapo import (
    DynamicSamplingBatch,
    apply_overlong_penalty,
    informative_groups,
    overlong_penalty,
)


def test_informative_groups():
    # Groups: [1 1] equal, [0 1] mixed, [0 0] equal, [.5 .5001] differ by 1e-4.
    rewards = np.array([1, 1, 0, 1, 0, 0, 0.5, 0.5001])
    np.testing.assert_array_equal(informative_groups(rewards, 2), [False, True, False, True])
    np.testing.assert_array_equal(
        informative_groups(rewards, 2, atol=1e-3), [False, True, False, False]
    )
    # Singleton groups are always kept (verl).
    np.testing.assert_array_equal(informative_groups(np.array([1.0, 1.0]), 1), [True, True])


def test_informative_groups_rejects_bad_input():
    with pytest.raises(ValueError, match="group_size=3"):
        informative_groups(np.zeros(4), 3)
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        informative_groups(np.array([0.0, np.nan]), 2)


def test_accumulator_fills_over_rounds_and_drops_surplus():
    batch = DynamicSamplingBatch(num_groups=3, group_size=2, max_rounds=5)
    # Round 0: groups [0 1] kept, [1 1] dropped, [1 0] kept -> 2 kept.
    assert batch.add(np.array([0, 1, 1, 1, 1, 0]), payload=np.array([10, 11, 12, 13, 14, 15])) == 2
    assert not batch.is_full
    # Round 1: [0 0] dropped, [1 0] kept (fills the batch), [0 1] kept but surplus.
    assert batch.add(np.array([0, 0, 1, 0, 0, 1]), payload=np.array([20, 21, 22, 23, 24, 25])) == 1
    assert batch.is_full
    assert batch.stats == {
        "rounds": 2,
        "groups_seen": 6,
        "groups_all_equal": 2,
        "groups_surplus": 1,
    }
    with pytest.raises(RuntimeError, match="full"):
        batch.add(np.array([0, 1]))
    kept = batch.take()
    np.testing.assert_array_equal(kept.rewards, [0, 1, 1, 0, 1, 0])
    np.testing.assert_array_equal(kept.payload, [10, 11, 14, 15, 22, 23])
    np.testing.assert_array_equal(kept.round_index, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(kept.sample_index, [0, 1, 4, 5, 2, 3])
    assert kept.rewards.dtype == np.float32
    # take() resets for the next batch.
    assert batch.num_kept_groups == 0 and batch.stats["rounds"] == 0


def test_accumulator_default_payload_and_multidim_payload():
    batch = DynamicSamplingBatch(num_groups=1, group_size=3, max_rounds=None)
    batch.add(np.array([1, 1, 1, 0, 0.5, 1]))
    np.testing.assert_array_equal(batch.take().payload, [3, 4, 5])
    batch.add(np.array([0, 1, 0]), payload=np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(batch.take().payload, [[0, 1], [2, 3], [4, 5]])


def test_accumulator_round_cap_and_partial_take():
    batch = DynamicSamplingBatch(num_groups=2, group_size=2, max_rounds=2)
    batch.add(np.array([1, 1, 0, 1]))  # 1 kept
    batch.add(np.array([0, 0, 1, 1]))  # 0 kept
    assert batch.exhausted and not batch.is_full
    with pytest.raises(RuntimeError, match="max_rounds=2 .* 1/2 informative groups"):
        batch.add(np.array([0, 1, 0, 1]))
    with pytest.raises(RuntimeError, match="allow_partial"):
        batch.take()
    kept = batch.take(allow_partial=True)
    np.testing.assert_array_equal(kept.rewards, [0, 1])
    np.testing.assert_array_equal(kept.round_index, [0, 0])


def test_accumulator_validation():
    with pytest.raises(ValueError, match="max_rounds"):
        DynamicSamplingBatch(num_groups=2, group_size=2, max_rounds=0)
    batch = DynamicSamplingBatch(num_groups=2, group_size=2, max_rounds=3)
    with pytest.raises(ValueError, match="leading dimension B=4"):
        batch.add(np.array([0, 1, 0, 1]), payload=np.arange(3))
    with pytest.raises(RuntimeError, match="before any add"):
        batch.take(allow_partial=True)


def test_overlong_penalty_piecewise():
    # L_max 10, L_cache 4: free up to 6 tokens, then (6 - |y|) / 4, -1 at and beyond 10.
    # |y| = 0, 6, 7, 8, 10, 12 -> 0, 0, -.25, -.5, -1, -1.
    lengths = np.array([0, 6, 7, 8, 10, 12])
    out = overlong_penalty(lengths, max_response_len=10, overlong_buffer_len=4)
    np.testing.assert_allclose(out, [0, 0, -0.25, -0.5, -1, -1])
    assert out.dtype == np.float32
    # penalty_factor scales it: 0.5 * -.25 = -.125.
    np.testing.assert_allclose(overlong_penalty(np.array([7]), 10, 4, 0.5), [-0.125])


def test_apply_overlong_penalty_and_validation():
    shaped = apply_overlong_penalty(np.array([1.0, 1.0, 0.0]), np.array([5, 9, 10]), 10, 4)
    np.testing.assert_allclose(shaped, [1.0, 0.25, -1.0])  # 1 + 0, 1 - .75, 0 - 1
    with pytest.raises(ValueError, match="overlong_buffer_len"):
        overlong_penalty(np.array([1]), 10, 0)
    with pytest.raises(ValueError, match="overlong_buffer_len"):
        overlong_penalty(np.array([1]), 10, 11)
    with pytest.raises(ValueError, match="differ"):
        apply_overlong_penalty(np.zeros(2), np.zeros(3, int), 10, 4)
