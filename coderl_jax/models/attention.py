"""The decoder's attention, one function per way the model is called.

Queries arrive projected, rotated and grouped by kv head, ``q_BxTxKxQxD`` ([B, T, K, Q,
Dh], Q = H // K query heads per kv head, already scaled by Dh**-0.5); every function
returns [B, T, K, Q, Dh] (or [S, K, Q, Dh] for the paged pool) for the output projection.

* `self_attention`: no cache (training, scoring, prefill). An einsum with an explicit
  [B, T, S] mask and an fp32 softmax: any padding, any backend; it keeps the T x S
  probabilities for the backward. The fused alternatives (cuDNN flash attention, its XLA
  reference, a blocked flash recurrence) live in `coderl_jax.models.fused_attention`.
* `cached_attention`: a `KVCache` (static decoding). The new tokens of N = P * G rows attend
  to the prompt keys of their prompt row (stored once per prompt and shared by its G
  samples, never copied G times) and to the rows' own generated keys, which are written
  at ``cache.index``.
* the paged pool (continuous decoding): `coderl_jax.models.paged_kv.paged_attention`;
  each slot reads only the pages it has filled.

Decode performance: the generated-token cache travels through the layer scan as part of
the carry and each layer writes only its T new slots in place (as xs -> ys it would be
rewritten whole every step), and caches keep kv heads before slots ([..., K, S, Dh]) so
the attention matmuls batch over (row, kv head) without transposing the cache.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

_MASKED = float(np.finfo(np.float32).min)


@flax.struct.dataclass
class KVCache:
    """Keys/values for decoding: a prompt prefix shared by G samples plus per-row suffix.

    Memory: 2 * L * (P * Sp + N * Ss) * K * Dh * bytes(compute dtype).
    """

    prefix_k: jax.Array  # [L, P, K, Sp, Dh]
    prefix_v: jax.Array  # [L, P, K, Sp, Dh]
    prefix_mask: jax.Array  # [P, Sp] bool: real (non-padding) prompt tokens
    k: jax.Array  # [L, N, K, Ss, Dh]: keys of generated tokens
    v: jax.Array  # [L, N, K, Ss, Dh]
    index: jax.Array  # int32 scalar: next slot of k/v to write

    @property
    def num_samples(self) -> int:
        return self.k.shape[1] // self.prefix_k.shape[1]


def _kv_heads_last(out_BKQTD: jax.Array) -> jax.Array:
    # XLA:CPU runs probs @ values several times faster when the output keeps the batch dims
    # (row, kv head) leading; the transpose back is on the small output.
    return jnp.transpose(out_BKQTD, (0, 3, 1, 2, 4))


def self_attention(
    q_BxTxKxQxD: jax.Array, k_BxSxKxD: jax.Array, v_BxSxKxD: jax.Array, mask_BxTxS: jax.Array
) -> jax.Array:
    """Attention of T queries over S = T keys of the same rows; ``mask`` [B, T, S] bool
    (causal and padding). Returns [B, T, K, Q, Dh] in the values' dtype."""
    scores = jnp.einsum(
        "btkqd,bskd->bkqts", q_BxTxKxQxD, k_BxSxKxD, preferred_element_type=jnp.float32
    )
    masked = jnp.where(mask_BxTxS[:, None, None], scores, _MASKED)
    probs = jax.nn.softmax(masked, axis=-1).astype(v_BxSxKxD.dtype)
    return _kv_heads_last(jnp.einsum("bkqts,bskd->bkqtd", probs, v_BxSxKxD))


def cached_attention(q_BxTxKxQxD, k_BxTxKxD, v_BxTxKxD, prefix, suffix, index, masks):
    """Attention of T new tokens per row over a `KVCache`'s prefix and suffix.

    Args:
      k_BxTxKxD, v_BxTxKxD: the new tokens' keys and values, written at ``index``.
      prefix: this layer's (prompt keys, prompt values), each [P, K, Sp, Dh].
      suffix: (all layers' generated keys, values [L, N, K, Ss, Dh], this layer's index).
      masks: (prompt mask broadcastable to [N, K, Q, T, Sp], suffix mask to [.., T, Ss]).

    Returns ``(out [B, T, K, Q, Dh], suffix with the new keys and the next layer index)``.
    """
    f32 = jnp.float32
    b, t, k, qh, dh = q_BxTxKxQxD.shape
    pk, pv = prefix
    all_k, all_v, layer = suffix
    start = (layer, 0, 0, index, 0)
    new_k = jnp.swapaxes(k_BxTxKxD, 1, 2).astype(all_k.dtype)[None]  # [1, N, K, T, Dh]
    all_k = jax.lax.dynamic_update_slice(all_k, new_k, start)
    new_v = jnp.swapaxes(v_BxTxKxD, 1, 2).astype(all_v.dtype)[None]
    all_v = jax.lax.dynamic_update_slice(all_v, new_v, start)
    ck = jax.lax.dynamic_index_in_dim(all_k, layer, keepdims=False)  # [N, K, Ss, Dh]
    cv = jax.lax.dynamic_index_in_dim(all_v, layer, keepdims=False)
    p, sp = pk.shape[0], pk.shape[2]
    g = b // p
    qg = q_BxTxKxQxD.reshape(p, g, t, k, qh, dh)
    s_prefix = jnp.einsum("pgtkqd,pksd->pgkqts", qg, pk, preferred_element_type=f32)
    s_prefix = s_prefix.reshape(b, k, qh, t, sp)
    s_suffix = jnp.einsum("btkqd,bksd->bkqts", q_BxTxKxQxD, ck, preferred_element_type=f32)
    prefix_mask, suffix_mask = masks
    probs = jax.nn.softmax(
        jnp.concatenate(
            [jnp.where(prefix_mask, s_prefix, _MASKED), jnp.where(suffix_mask, s_suffix, _MASKED)],
            axis=-1,
        ),
        axis=-1,
    ).astype(cv.dtype)
    pp = probs[..., :sp].reshape(p, g, k, qh, t, sp)
    out = jnp.einsum("pgkqts,pksd->pgkqtd", pp, pv).reshape(b, k, qh, t, dh)
    out = _kv_heads_last(out + jnp.einsum("bkqts,bksd->bkqtd", probs[..., sp:], cv))
    return out, (all_k, all_v, layer + 1)
