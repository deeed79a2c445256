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

On a mesh (``PageWork.mesh``) every batch shard of the mesh (one device per data x fsdp
position) owns its own pool and its own slots: the pool's page axis and the slot axis are
split into equal blocks over the batch axes, and page and slot ids are local to a block.
`compact_work` and `paged_attention` then run per block under `jax.shard_map`, so a slot
only ever reads its own device's pages (kv heads split over ``tensor`` where it divides
them); the projections and the MLP around them stay in XLA's automatic sharding.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from coderl_jax.parallel.mesh import BATCH_AXES

_MASKED = float(np.finfo(np.float32).min)


@flax.struct.dataclass
class PagedKVCache:
    """The page pool. Memory: 2 * L * num_pages * page_size * K * Dh * bytes(dtype).

    Keys and values are stored in the compute dtype, a 16-bit one as its bit pattern
    (uint16, `to_storage`): XLA:CPU computes a bf16 scatter, or a gather from a
    loop-carried bf16 array, by converting the whole pool to float32 (pool-sized float32
    copies, which a CPU-compiled memory plan would count); on integers both are native
    everywhere, and the bitcasts of the pieces read or written are free.
    """

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
    count: jax.Array  # int32 scalar: number of real items ([shards] with a mesh)
    chunk: int = flax.struct.field(pytree_node=False, default=64)
    # With a mesh: one pool and one item list per batch shard (module docstring); the
    # [S] and [W] arrays are split into equal blocks over the batch axes.
    mesh: Mesh | None = flax.struct.field(pytree_node=False, default=None)


def compact_work(
    page_SxJ: jax.Array,
    lo_SxJ: jax.Array,
    hi_SxJ: jax.Array,
    write_page_S: jax.Array,
    write_offset_S: jax.Array,
    chunk: int,
    mesh: Mesh | None = None,
) -> PageWork:
    """Builds a `PageWork` from each slot's J candidate pieces; pieces with hi <= lo drop out.

    The valid pieces keep their (slot, j) order. W = S * J rounded up to a multiple of chunk
    (per batch shard with a mesh: each shard compacts its own slots, ids local to it).
    """
    if mesh is not None:
        rows = PartitionSpec(BATCH_AXES)

        def local(*args):
            work = compact_work(*args, chunk)
            return work.replace(count=work.count[None])

        work = jax.shard_map(local, mesh=mesh, in_specs=rows, out_specs=rows, check_vma=False)(
            page_SxJ, lo_SxJ, hi_SxJ, write_page_S, write_offset_S
        )
        return work.replace(mesh=mesh)
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


def to_storage(x: jax.Array) -> jax.Array:
    """Keys or values as the pool stores them: 16-bit floats as uint16 bit patterns."""
    return jax.lax.bitcast_convert_type(x, jnp.uint16) if x.dtype.itemsize == 2 else x


def from_storage(x: jax.Array, dtype) -> jax.Array:
    """Stored keys or values back in the compute ``dtype`` (the inverse of `to_storage`)."""
    return jax.lax.bitcast_convert_type(x, dtype) if x.dtype == jnp.uint16 else x


def write_token(pool: jax.Array, layer, work: PageWork, new_SxKxD: jax.Array) -> jax.Array:
    """Stores each slot's new key (or value, in the compute dtype) at its write position of
    layer ``layer``."""
    new = new_SxKxD if pool.dtype == jnp.uint16 else new_SxKxD.astype(pool.dtype)
    return pool.at[layer, work.write_page, :, work.write_offset, :].set(to_storage(new))


def ragged_decode_attention(
    q_SxKxQxD: jax.Array, k_pool: jax.Array, v_pool: jax.Array, layer, work: PageWork
) -> jax.Array:
    """Attention of one query per slot over its work items (see the module docstring).

    Args:
      q_SxKxQxD: queries, already scaled by Dh**-0.5 (Q query heads per kv head).
      k_pool, v_pool: [L, num_pages, K, page_size, Dh] (`PagedKVCache` storage).
      layer: int32 scalar, the layer whose keys are read.

    Returns [S, K, Q, Dh] in the queries' dtype; a slot without work items gets 0.
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
        keys = from_storage(k_pool[layer, page], q_SxKxQxD.dtype)  # [C, K, page, Dh]
        values = from_storage(v_pool[layer, page], q_SxKxQxD.dtype)
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
    return (o_S / jnp.where(l_S > 0, l_S, 1.0)[..., None]).astype(q_SxKxQxD.dtype)


def pool_spec(mesh: Mesh, num_kv_heads: int) -> PartitionSpec:
    """How a [L, pages, K, page_size, Dh] pool lies on ``mesh``: pages over the batch axes
    (each shard its own block), kv heads over ``tensor`` where it divides them."""
    tensor = mesh.shape["tensor"]
    heads = "tensor" if tensor > 1 and num_kv_heads % tensor == 0 else None
    return PartitionSpec(None, BATCH_AXES, heads)


def paged_attention(
    q_SxKxQxD: jax.Array, k_SxKxD: jax.Array, v_SxKxD: jax.Array, suffix, work: PageWork
):
    """One layer of paged decoding: writes each slot's new key and value, then attends.

    Args:
      q_SxKxQxD: queries, scaled by Dh**-0.5; k_SxKxD, v_SxKxD: the new token's key/value.
      suffix: (k pool, v pool, layer index), the pools [L, pages, K, page_size, Dh].

    Returns ``(out [S, K, Q, Dh], (k pool, v pool, layer + 1))``; per batch shard under
    `jax.shard_map` when ``work.mesh`` is set (module docstring).
    """
    k_pool, v_pool, layer = suffix

    def attend(q, k_new, v_new, k_pool, v_pool, layer, work):
        k_pool = write_token(k_pool, layer, work, k_new)
        v_pool = write_token(v_pool, layer, work, v_new)
        return ragged_decode_attention(q, k_pool, v_pool, layer, work), k_pool, v_pool

    if work.mesh is None:
        out, k_pool, v_pool = attend(q_SxKxQxD, k_SxKxD, v_SxKxD, k_pool, v_pool, layer, work)
        return out, (k_pool, v_pool, layer + 1)
    pool = pool_spec(work.mesh, k_pool.shape[2])
    heads = PartitionSpec(BATCH_AXES, pool[2])
    rows = PartitionSpec(BATCH_AXES)

    def local(q, k_new, v_new, k_pool, v_pool, layer, work):
        return attend(q, k_new, v_new, k_pool, v_pool, layer, work.replace(count=work.count[0]))

    out, k_pool, v_pool = jax.shard_map(
        local,
        mesh=work.mesh,
        in_specs=(heads, heads, heads, pool, pool, PartitionSpec(), rows),
        out_specs=(heads, pool, pool),
        check_vma=False,  # per-shard loops whose carries start as constants
    )(q_SxKxQxD, k_SxKxD, v_SxKxD, k_pool, v_pool, layer, work.replace(mesh=None))
    return out, (k_pool, v_pool, layer + 1)
