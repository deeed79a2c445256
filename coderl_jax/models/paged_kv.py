"""Paged KV cache and ragged decode attention: decode cost that follows the real lengths.

The cache is a pool of fixed-size pages shared by all decode rows ("slots"):
``k, v: [L, num_pages, K, page_size, Dh]``. A slot's keys are a list of (page, lo, hi)
pieces -- the pages of its prompt (stored once, shared by the prompt's samples) and the
pages it has generated into -- and only those pieces are read. Memory therefore grows
with the tokens actually stored, and a decode step's attention costs the sum of the slots'
real lengths (rounded up to pages), not slots x the longest possible length.

`PageWork` is one step's addressing: where each slot writes its new token, and the list of
(slot, page, lo, hi) work items, compacted so the valid ones come first. The attention
(`ragged_decode_attention`) walks that list in chunks of ``chunk`` items inside a
`lax.while_loop` that stops after the last valid item, so empty pages cost nothing; per
chunk it gathers the pages, computes each item's partial softmax (max, sum, weighted
values) and folds them into the slots' running softmax (the flash-decoding recurrence).
This is a blocked einsum that runs on any backend; a fused GPU/TPU kernel could take the
same `PageWork`.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

_MASKED = float(np.finfo(np.float32).min)


@flax.struct.dataclass
class PagedKVCache:
    """The page pool. Memory: 2 * L * num_pages * page_size * K * Dh * bytes(dtype)."""

    k: jax.Array  # [L, num_pages, K, page_size, Dh]
    v: jax.Array  # [L, num_pages, K, page_size, Dh]

    @property
    def page_size(self) -> int:
        return self.k.shape[3]


@flax.struct.dataclass
class PageWork:
    """One decode step's addressing of the pool for S slots (T = 1 new token each).

    Work items ``[0, count)`` are real: item i lets slot ``slot[i]`` attend to positions
    ``[lo[i], hi[i])`` of page ``page[i]``; the rest is padding (never read).
    """

    write_page: jax.Array  # [S] int32: page receiving the slot's new key/value
    write_offset: jax.Array  # [S] int32: its position in that page
    page: jax.Array  # [W] int32
    slot: jax.Array  # [W] int32
    lo: jax.Array  # [W] int32
    hi: jax.Array  # [W] int32
    count: jax.Array  # int32 scalar: number of real items
    chunk: int = flax.struct.field(pytree_node=False, default=64)


def compact_work(
    page_SxJ: jax.Array,
    lo_SxJ: jax.Array,
    hi_SxJ: jax.Array,
    write_page_S: jax.Array,
    write_offset_S: jax.Array,
    chunk: int,
) -> PageWork:
    """Builds a `PageWork` from each slot's J candidate pieces; pieces with hi <= lo drop out.

    The valid pieces keep their (slot, j) order. W = S * J rounded up to a multiple of chunk.
    """
    s, j = page_SxJ.shape
    width = -(-s * j // chunk) * chunk
    valid = (hi_SxJ > lo_SxJ).reshape(-1)
    target = jnp.where(valid, jnp.cumsum(valid) - 1, width)  # invalid -> dropped

    def pack(x_SxJ):
        flat = x_SxJ.reshape(-1).astype(jnp.int32)
        return jnp.zeros((width,), jnp.int32).at[target].set(flat, mode="drop")

    slots = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32)[:, None], (s, j))
    return PageWork(
        write_page=write_page_S.astype(jnp.int32),
        write_offset=write_offset_S.astype(jnp.int32),
        page=pack(page_SxJ),
        slot=pack(slots),
        lo=pack(lo_SxJ),
        hi=pack(hi_SxJ),
        count=jnp.sum(valid, dtype=jnp.int32),
        chunk=chunk,
    )


def write_token(pool: jax.Array, layer, work: PageWork, new_SxKxD: jax.Array) -> jax.Array:
    """Stores each slot's new key (or value) at its write position of layer ``layer``."""
    return pool.at[layer, work.write_page, :, work.write_offset, :].set(
        new_SxKxD.astype(pool.dtype)
    )


def ragged_decode_attention(
    q_SxKxQxD: jax.Array, k_pool: jax.Array, v_pool: jax.Array, layer, work: PageWork
) -> jax.Array:
    """Attention of one query per slot over its work items (see the module docstring).

    Args:
      q_SxKxQxD: queries, already scaled by Dh**-0.5 (Q query heads per kv head).
      k_pool, v_pool: [L, num_pages, K, page_size, Dh].
      layer: int32 scalar, the layer whose keys are read.

    Returns [S, K, Q, Dh] in the pool's dtype; a slot without work items gets 0.
    """
    s, kh, qh, dh = q_SxKxQxD.shape
    page_size = k_pool.shape[3]
    chunk = work.chunk
    f32 = jnp.float32
    offsets = jnp.arange(page_size, dtype=jnp.int32)

    def fold_chunk(state):
        c, m_S, l_S, o_S = state
        take = lambda x: jax.lax.dynamic_slice_in_dim(x, c * chunk, chunk)
        page, slot, lo, hi = take(work.page), take(work.slot), take(work.lo), take(work.hi)
        real = c * chunk + jnp.arange(chunk) < work.count
        keys = k_pool[layer, page]  # [C, K, page, Dh]
        values = v_pool[layer, page]
        scores = jnp.einsum("ckqd,ckpd->ckqp", q_SxKxQxD[slot], keys, preferred_element_type=f32)
        inside = (offsets >= lo[:, None]) & (offsets < hi[:, None]) & real[:, None]  # [C, page]
        inside = inside[:, None, None, :]
        scores = jnp.where(inside, scores, _MASKED)
        m_C = jnp.max(scores, axis=-1)  # [C, K, Q]; _MASKED for padding items
        weights = jnp.where(inside, jnp.exp(scores - m_C[..., None]), 0.0)
        l_C = jnp.sum(weights, axis=-1)
        o_C = jnp.einsum(
            "ckqp,ckpd->ckqd", weights.astype(values.dtype), values, preferred_element_type=f32
        )
        m_new = m_S.at[slot].max(m_C)
        scale_C = jnp.exp(m_C - m_new[slot])
        scale_S = jnp.exp(m_S - m_new)
        l_S = l_S * scale_S + jnp.zeros_like(l_S).at[slot].add(l_C * scale_C)
        o_S = o_S * scale_S[..., None] + jnp.zeros_like(o_S).at[slot].add(o_C * scale_C[..., None])
        return c + 1, m_new, l_S, o_S

    state = (
        jnp.zeros((), jnp.int32),
        jnp.full((s, kh, qh), _MASKED, f32),
        jnp.zeros((s, kh, qh), f32),
        jnp.zeros((s, kh, qh, dh), f32),
    )
    _, _, l_S, o_S = jax.lax.while_loop(lambda st: st[0] * chunk < work.count, fold_chunk, state)
    return (o_S / jnp.where(l_S > 0, l_S, 1.0)[..., None]).astype(v_pool.dtype)
