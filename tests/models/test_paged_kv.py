"""Ragged decode attention over a page pool vs a plain masked einsum over gathered keys."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.models import paged_kv

L, PAGES, K, Q, PAGE, DH = 2, 12, 2, 3, 4, 8


def _pieces():
    """4 slots: pages, lo, hi per candidate (J = 3); slot 2 reads nothing (idle)."""
    page = np.asarray([[0, 5, 7], [3, 3, 9], [1, 2, 4], [10, 6, 11]], np.int32)
    lo = np.asarray([[1, 0, 0], [0, 2, 0], [0, 0, 0], [3, 0, 0]], np.int32)
    hi = np.asarray([[4, 4, 2], [2, 4, 0], [0, 0, 0], [4, 1, 4]], np.int32)
    return page, lo, hi


def _reference(q, k_pool, v_pool, layer, page, lo, hi):
    """softmax(q . keys) . values over each slot's listed positions, slot by slot."""
    out = np.zeros(q.shape, np.float32)
    for s in range(q.shape[0]):
        keys, values = [], []
        for p, a, b in zip(page[s], lo[s], hi[s]):
            keys += [k_pool[layer, p, :, i] for i in range(a, b)]
            values += [v_pool[layer, p, :, i] for i in range(a, b)]
        if not keys:
            continue
        keys, values = np.stack(keys, 1), np.stack(values, 1)  # [K, S, Dh]
        scores = np.einsum("kqd,ksd->kqs", q[s], keys)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        out[s] = np.einsum("kqs,ksd->kqd", probs, values)
    return out


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_ragged_attention_equals_masked_einsum(chunk):
    rng = np.random.default_rng(0)
    k_pool = rng.standard_normal((L, PAGES, K, PAGE, DH)).astype(np.float32)
    v_pool = rng.standard_normal((L, PAGES, K, PAGE, DH)).astype(np.float32)
    q = rng.standard_normal((4, K, Q, DH)).astype(np.float32)
    page, lo, hi = _pieces()
    zeros = jnp.zeros(4, jnp.int32)
    work = paged_kv.compact_work(*map(jnp.asarray, (page, lo, hi)), zeros, zeros, chunk)
    assert int(work.count) == 8 and work.page.shape[0] % chunk == 0
    for layer in range(L):
        got = paged_kv.ragged_decode_attention(
            jnp.asarray(q), jnp.asarray(k_pool), jnp.asarray(v_pool), jnp.int32(layer), work
        )
        expected = _reference(q, k_pool, v_pool, layer, page, lo, hi)
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(got)[2] == 0)  # the idle slot reads nothing


def test_compact_work_keeps_valid_pieces_in_slot_order():
    page, lo, hi = _pieces()
    zeros = jnp.zeros(4, jnp.int32)
    work = paged_kv.compact_work(*map(jnp.asarray, (page, lo, hi)), zeros, zeros, 4)
    count = int(work.count)
    listed = list(zip(*(np.asarray(x)[:count] for x in (work.slot, work.page, work.lo, work.hi))))
    assert listed == [
        (0, 0, 1, 4), (0, 5, 0, 4), (0, 7, 0, 2), (1, 3, 0, 2), (1, 3, 2, 4),
        (3, 10, 3, 4), (3, 6, 0, 1), (3, 11, 0, 4),
    ]  # fmt: skip


def test_write_token_stores_at_page_and_offset():
    pool = jnp.zeros((L, PAGES, K, PAGE, DH))
    new = jnp.arange(2 * K * DH, dtype=jnp.float32).reshape(2, K, DH) + 1
    work = paged_kv.compact_work(
        jnp.zeros((2, 1), jnp.int32),
        jnp.zeros((2, 1), jnp.int32),
        jnp.zeros((2, 1), jnp.int32),
        jnp.asarray([5, 8]),
        jnp.asarray([3, 0]),
        1,
    )
    out = np.asarray(paged_kv.write_token(pool, jnp.int32(1), work, new))
    np.testing.assert_array_equal(out[1, 5, :, 3], np.asarray(new[0]))
    np.testing.assert_array_equal(out[1, 8, :, 0], np.asarray(new[1]))
    assert np.count_nonzero(out) == np.count_nonzero(np.asarray(new))
