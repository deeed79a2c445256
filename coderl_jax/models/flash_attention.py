"""Causal attention by the flash-attention recurrence in plain XLA ("xla_blocked").

The [T, S] scores are never stored: queries and keys are cut into blocks of ``block``
positions, each query block folds the key blocks at or before it into a running softmax
(max, sum, weighted values), and the backward recomputes the scores block by block from
the saved log-sum-exp (a `jax.custom_vjp`). What it keeps for the backward is what cuDNN's
flash attention keeps: q, k, v, the output and one log-sum-exp per query; its working
memory is a few [B, K, Q, block, block] blocks. It runs on any backend, slower than a
fused kernel, and it is what a CPU compile of a cuDNN run uses to plan its memory
(`experiments/benchmarks/memory_plan.py`).

Contract (that of `coderl_jax.models.fused_attention.fused_causal_attention`): row ``b``'s
real tokens are columns ``[0, lengths_B[b])`` (``lengths_B >= 1``), query ``t`` attends to
keys ``s <= t`` with ``s < length``; heads are grouped as in the einsum path.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_MASKED = float(jnp.finfo(jnp.float32).min)


def _blocks(x_BTKxD: jax.Array, block: int) -> jax.Array:
    """[B, T, ...] -> [T / block, B, block, ...] (T padded to a multiple of block)."""
    b, t = x_BTKxD.shape[:2]
    pad = -t % block
    x = jnp.pad(x_BTKxD, ((0, 0), (0, pad)) + ((0, 0),) * (x_BTKxD.ndim - 2))
    return jnp.moveaxis(x.reshape(b, (t + pad) // block, block, *x.shape[2:]), 1, 0)


def _scores(q_BxCxKxQxD, k_BxCxKxD, i, j, lengths_B, block):
    """Scaled scores of query block i against key block j, masked: [B, K, Q, Cq, Ck] fp32."""
    dh = q_BxCxKxQxD.shape[-1]
    s = jnp.einsum(
        "bckqd,bskd->bkqcs", q_BxCxKxQxD, k_BxCxKxD, preferred_element_type=jnp.float32
    ) * (dh**-0.5)
    query = i * block + jnp.arange(block)
    key = j * block + jnp.arange(block)
    allowed = (key[None, :] <= query[:, None])[None] & (key < lengths_B[:, None])[:, None, :]
    return jnp.where(allowed[:, None, None], s, _MASKED)


def _forward(q, k, v, lengths_B, block):
    """(out [B, T, K, Q, Dh] in q's dtype, log-sum-exp [nq, B, K, Q, block] fp32)."""
    t = q.shape[1]
    qb, kb, vb = _blocks(q, block), _blocks(k, block), _blocks(v, block)
    n, b, _, kh, qh, dh = qb.shape
    f32 = jnp.float32

    def query_block(i):
        def fold(j, state):
            m, total, acc = state
            s = _scores(qb[i], kb[j], i, j, lengths_B, block)
            m_new = jnp.maximum(m, s.max(-1))
            p = jnp.exp(s - m_new[..., None])
            scale = jnp.exp(m - m_new)
            pv = jnp.einsum(
                "bkqcs,bskd->bkqcd", p.astype(vb.dtype), vb[j], preferred_element_type=f32
            )
            return m_new, total * scale + p.sum(-1), acc * scale[..., None] + pv

        state = (
            jnp.full((b, kh, qh, block), _MASKED, f32),
            jnp.zeros((b, kh, qh, block), f32),
            jnp.zeros((b, kh, qh, block, dh), f32),
        )
        m, total, acc = jax.lax.fori_loop(0, i + 1, fold, state)  # causal: key blocks <= i
        out = jnp.moveaxis(acc / total[..., None], 3, 1)  # [B, block, K, Q, Dh]
        return out.astype(q.dtype), m + jnp.log(total)

    out, lse = jax.lax.map(query_block, jnp.arange(n))
    out = jnp.moveaxis(out, 0, 1).reshape(b, n * block, kh, qh, dh)[:, :t]
    return out, lse


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _attention(q, k, v, lengths_B, block):
    return _forward(q, k, v, lengths_B, block)[0]


def _attention_fwd(q, k, v, lengths_B, block):
    out, lse = _forward(q, k, v, lengths_B, block)
    return out, (q, k, v, lengths_B, out, lse)


def _attention_bwd(block, residuals, d_out):
    q, k, v, lengths_B, out, lse = residuals
    t, dh = q.shape[1], q.shape[-1]
    qb, kb, vb, ob, gb = (_blocks(x, block) for x in (q, k, v, out, d_out))
    n = qb.shape[0]
    f32 = jnp.float32
    # D_t = sum_d dO * O: the softmax's Jacobian term, per query.
    delta = jnp.einsum("nbckqd,nbckqd->nbkqc", gb.astype(f32), ob.astype(f32))

    def probs_and_ds(i, j):
        p = jnp.exp(_scores(qb[i], kb[j], i, j, lengths_B, block) - lse[i][..., None])
        dp = jnp.einsum("bckqd,bskd->bkqcs", gb[i], vb[j], preferred_element_type=f32)
        return p, p * (dp - delta[i][..., None]) * (dh**-0.5)

    def dq_block(i):
        def fold(j, dq):
            _, ds = probs_and_ds(i, j)
            return dq + jnp.einsum("bkqcs,bskd->bckqd", ds, kb[j].astype(f32))

        return jax.lax.fori_loop(0, i + 1, fold, jnp.zeros(qb.shape[1:], f32))

    def dkv_block(j):
        def fold(i, grads):
            dk, dv = grads
            p, ds = probs_and_ds(i, j)
            dv = dv + jnp.einsum("bkqcs,bckqd->bskd", p, gb[i].astype(f32))
            return dk + jnp.einsum("bkqcs,bckqd->bskd", ds, qb[i].astype(f32)), dv

        zeros = jnp.zeros(kb.shape[1:], f32)
        return jax.lax.fori_loop(j, n, fold, (zeros, zeros))  # causal: query blocks >= j

    def unblock(x, like):
        x = jnp.moveaxis(x, 0, 1)
        return x.reshape(x.shape[0], -1, *x.shape[3:])[:, :t].astype(like.dtype)

    dq = unblock(jax.lax.map(dq_block, jnp.arange(n)), q)
    dk, dv = jax.lax.map(dkv_block, jnp.arange(n))
    return dq, unblock(dk, k), unblock(dv, v), None


_attention.defvjp(_attention_fwd, _attention_bwd)


def blocked_causal_attention(
    q_BTHD: jax.Array,
    k_BSKD: jax.Array,
    v_BSKD: jax.Array,
    lengths_B: jax.Array,
    block: int = 512,
) -> jax.Array:
    """Causal attention of left-aligned rows without a [T, S] matrix (module docstring).

    Args:
      q_BTHD: [B, T, H, Dh] queries (unscaled); k_BSKD, v_BSKD: [B, T, K, Dh].
      lengths_B: [B] int32 real tokens per row (>= 1).
      block: positions per query and key block (shorter sequences use one block).

    Returns [B, T, H, Dh] in q's dtype (padding queries: defined, never read).
    """
    b, t, h, dh = q_BTHD.shape
    kh = k_BSKD.shape[2]
    block = min(block, t)
    q = q_BTHD.reshape(b, t, kh, h // kh, dh)
    return _attention(q, k_BSKD, v_BSKD, lengths_B.astype(jnp.int32), block).reshape(b, t, h, dh)
