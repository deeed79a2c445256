"""Fused causal self-attention of left-aligned rows (the no-cache path's cuDNN option).

`jax.nn.dot_product_attention` with ``implementation="cudnn"`` runs cuDNN's flash attention:
the [T, S] scores are never stored (the backward recomputes them from the saved
log-sum-exp), and with ``is_causal`` the blocks above the diagonal are skipped. Its padding
is given as row lengths (``query_seq_lengths`` / ``key_value_seq_lengths``), which mean
*right* padding: the real tokens of row ``b`` are columns ``[0, length_b)``. Batches whose
rows start with padding (the sampler's left-padded prompts) must first be left-aligned
(`coderl_jax.rl.batch.left_align`). An explicit ``mask`` or ``bias`` would express any
padding, but cuDNN then reads a materialised [B, 1, T, S] bias, which is what the fused
path exists to avoid.

What a kernel leaves in padding rows (outputs, and dQ/dK/dV in the backward) is not
relied on: padding rows of the inputs and the output are zeroed by selection, which costs a
few elementwise passes over [B, T, H, Dh] and makes NaN or garbage there harmless.

``"xla_fused"`` runs the same call on jax's XLA reference implementation: same semantics,
no memory saving; it lets the CPU tests cover this path. ``"xla_blocked"`` computes it by
the flash recurrence in plain XLA (`coderl_jax.models.flash_attention`): cuDNN's memory on
any backend (the memory plan's CPU stand-in for cuDNN), at plain-XLA speed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from coderl_jax.models.flash_attention import blocked_causal_attention

_IMPLEMENTATIONS = {"cudnn": "cudnn", "xla_fused": "xla", "xla_blocked": None}


def fused_causal_attention(
    q_BTHD: jax.Array,
    k_BSKD: jax.Array,
    v_BSKD: jax.Array,
    lengths_B: jax.Array,
    attention_impl: str,
) -> jax.Array:
    """Causal self-attention of left-aligned rows by `jax.nn.dot_product_attention`.

    Row ``b`` holds ``lengths_B[b]`` real tokens in columns ``[0, lengths_B[b])`` and padding
    after them (S = T). Query ``t`` attends to keys ``s <= t`` with ``s < lengths_B[b]``;
    padding queries return 0 (their gradient is 0). Heads are grouped as in the einsum path
    (query head ``kv * Q + j`` uses kv head ``kv``). ``attention_impl`` "cudnn" runs cuDNN's
    flash attention (bf16/fp16 only); "xla_fused" runs jax's XLA reference; "xla_blocked"
    the flash recurrence in XLA.

    Returns [B, T, H, Dh] in the dtype of ``q_BTHD``.
    """
    if attention_impl not in _IMPLEMENTATIONS:
        raise ValueError(
            f"attention_impl must be one of {sorted(_IMPLEMENTATIONS)} for the fused path, "
            f"got {attention_impl!r}"
        )
    implementation = _IMPLEMENTATIONS[attention_impl]
    valid_BT11 = (jnp.arange(q_BTHD.shape[1]) < lengths_B[:, None])[:, :, None, None]

    def real_only(x):
        # Forward: padding rows become 0. Backward: `where` selects (never multiplies) the
        # cotangent, so whatever a kernel writes into padding rows of dQ/dK/dV cannot
        # reach the projections' weight gradients, and no padding output is read.
        return jnp.where(valid_BT11, x, jnp.zeros((), x.dtype))

    if implementation is None:
        out_BTHD = blocked_causal_attention(
            real_only(q_BTHD), real_only(k_BSKD), real_only(v_BSKD), lengths_B
        )
        return real_only(out_BTHD)
    out_BTHD = jax.nn.dot_product_attention(
        real_only(q_BTHD),
        real_only(k_BSKD),
        real_only(v_BSKD),
        is_causal=True,
        query_seq_lengths=lengths_B,
        key_value_seq_lengths=lengths_B,
        implementation=implementation,
    )
    return real_only(out_BTHD)


def right_aligned_lengths(mask_BxT: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Row lengths [B] (int32, at least 1) and whether each row's mask is left-aligned [B]
    (its real tokens are exactly columns ``[0, length)``)."""
    mask = mask_BxT.astype(bool)
    lengths = jnp.sum(mask, axis=-1, dtype=jnp.int32)
    aligned = jnp.all(mask == (jnp.arange(mask.shape[-1]) < lengths[:, None]), axis=-1)
    # A row without tokens attends to its first (padding) key instead of to nothing, so the
    # kernel never normalises an empty softmax; its outputs are never used.
    return jnp.maximum(lengths, 1), aligned
