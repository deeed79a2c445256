"""Token log-probabilities and entropy from final hidden states, chunked along the sequence.

The policy loss needs ``log pi(y_t | y_<t)`` of the sampled tokens (and optionally the
entropy of ``pi(. | y_<t)``), both in float32. Materialising the logits ``[B, T, V]`` in fp32
for a 152k vocabulary costs ``B * T * 608 KB`` (1.2 GB per 2048-token sequence), and autodiff
would keep it (or the softmax) alive until the backward pass. Instead we scan over chunks of
``C`` positions: each step computes ``[B, C, V]`` logits, reduces them to ``[B, C]`` outputs,
and is wrapped in ``jax.checkpoint`` so the backward pass recomputes the chunk's logits
rather than storing them. Peak extra memory is a few ``[B, C, V]`` fp32 buffers, independent
of ``T``. ``experiments/benchmarks/logprobs_memory.py`` measures the saving.

Per position (``z = h @ W / temperature``, fp32):

- ``logp_t = z[y_t] - logsumexp(z)``
- ``entropy_t = logsumexp(z) - sum_v softmax(z)_v z_v  ( = -sum_v p_v log p_v )``

The temperature must match the sampler's so that ``logp`` equals the behaviour policy's
log-probability of the sampled token (verl divides logits by ``rollout.temperature`` too).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

DEFAULT_CHUNK_SIZE = 128


def _check_inputs(hidden: jax.Array, unembed: jax.Array, targets: jax.Array, temperature) -> None:
    if hidden.ndim != 3 or unembed.ndim != 2 or hidden.shape[-1] != unembed.shape[0]:
        raise ValueError(
            f"expected hidden [B, T, D] and unembed [D, V] with matching D; got hidden "
            f"{hidden.shape} and unembed {unembed.shape}"
        )
    if targets.shape != hidden.shape[:2]:
        raise ValueError(f"targets must be [B, T] = {hidden.shape[:2]}, got {targets.shape}")
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        raise ValueError(f"targets must hold integer token ids, got dtype {targets.dtype}")
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


def _logprobs_and_entropy_from_hidden(
    hidden_BxCxD: jax.Array,
    unembed_DxV: jax.Array,
    targets_BxC: jax.Array,
    temperature: float | jax.Array,
    compute_entropy: bool,
) -> tuple[jax.Array, jax.Array | None]:
    """One chunk: fp32 logits (matmul accumulates in fp32 even for bf16 operands)."""
    logits = jnp.einsum(
        "bcd,dv->bcv", hidden_BxCxD, unembed_DxV, preferred_element_type=jnp.float32
    )
    logits = logits / temperature
    log_normalizer = jax.nn.logsumexp(logits, axis=-1)
    target_logits = jnp.take_along_axis(logits, targets_BxC[..., None], axis=-1)[..., 0]
    logp = target_logits - log_normalizer
    if not compute_entropy:
        return logp, None
    probs = jnp.exp(logits - log_normalizer[..., None])
    entropy = log_normalizer - jnp.sum(probs * logits, axis=-1)
    return logp, entropy


def token_logprobs_and_entropy(
    hidden_BxTxD: jax.Array,
    unembed_DxV: jax.Array,
    targets_BxT: jax.Array,
    temperature: float | jax.Array = 1.0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compute_entropy: bool = True,
) -> tuple[jax.Array, jax.Array | None]:
    """Log-prob of each target token and the entropy at each position, chunk by chunk.

    Differentiable w.r.t. ``hidden_BxTxD`` and ``unembed_DxV``; values and gradients equal
    those of ``token_logprobs_and_entropy_unchunked`` up to float32 summation order. ``T``
    need not be a multiple of ``chunk_size`` (padded internally, padding sliced off).

    Args:
      hidden_BxTxD: final hidden states (after the final norm); position ``t`` predicts
        ``targets_BxT[:, t]`` (the caller shifts tokens by one). Any float dtype.
      unembed_DxV: output projection (for tied embeddings pass ``embedding_VxD.T``); bf16
        or fp32. Logits are accumulated and normalised in fp32.
      targets_BxT: integer token ids.
      temperature: logits are divided by it (the sampling temperature).
      chunk_size: positions per chunk ``C``; peak memory scales with ``B * C * V``.
      compute_entropy: also return the entropy (skip it to save one ``[B, C, V]`` pass).

    Returns:
      ``(logp_BxT, entropy_BxT)`` in float32; ``entropy_BxT`` is ``None`` when
      ``compute_entropy`` is False.
    """
    hidden_BxTxD = jnp.asarray(hidden_BxTxD)
    unembed_DxV = jnp.asarray(unembed_DxV)
    targets_BxT = jnp.asarray(targets_BxT)
    _check_inputs(hidden_BxTxD, unembed_DxV, targets_BxT, temperature)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    batch, length, dim = hidden_BxTxD.shape
    chunk = min(chunk_size, length)
    num_chunks = -(-length // chunk)
    pad = num_chunks * chunk - length
    if pad:
        hidden_BxTxD = jnp.pad(hidden_BxTxD, ((0, 0), (0, pad), (0, 0)))
        targets_BxT = jnp.pad(targets_BxT, ((0, 0), (0, pad)))
    # Chunk axis first so lax.scan slices one [B, C, D] block per step.
    hidden_NxBxCxD = hidden_BxTxD.reshape(batch, num_chunks, chunk, dim).swapaxes(0, 1)
    targets_NxBxC = targets_BxT.reshape(batch, num_chunks, chunk).swapaxes(0, 1)

    # Without checkpointing, autodiff would save every chunk's [B, C, V] softmax for the
    # backward pass, i.e. the full [B, T, V] tensor again; recomputing costs one extra matmul.
    @jax.checkpoint
    def chunk_outputs(unembed, hidden_BxCxD, targets_BxC):
        return _logprobs_and_entropy_from_hidden(
            hidden_BxCxD, unembed, targets_BxC, temperature, compute_entropy
        )

    def step(carry, chunk_inputs):
        return carry, chunk_outputs(unembed_DxV, *chunk_inputs)

    _, (logp_NxBxC, entropy_NxBxC) = jax.lax.scan(step, None, (hidden_NxBxCxD, targets_NxBxC))

    def unchunk(x_NxBxC: jax.Array) -> jax.Array:
        return x_NxBxC.swapaxes(0, 1).reshape(batch, num_chunks * chunk)[:, :length]

    entropy = None if entropy_NxBxC is None else unchunk(entropy_NxBxC)
    return unchunk(logp_NxBxC), entropy


def token_logprobs_and_entropy_unchunked(
    hidden_BxTxD: jax.Array,
    unembed_DxV: jax.Array,
    targets_BxT: jax.Array,
    temperature: float | jax.Array = 1.0,
    compute_entropy: bool = True,
) -> tuple[jax.Array, jax.Array | None]:
    """Reference: the same outputs from the full ``[B, T, V]`` fp32 logits in one piece.

    Simple and fast for small vocabularies; memory-hungry for large ones. Used by tests
    and by the memory benchmark as the baseline. Arguments as in
    ``token_logprobs_and_entropy``.
    """
    hidden_BxTxD = jnp.asarray(hidden_BxTxD)
    unembed_DxV = jnp.asarray(unembed_DxV)
    targets_BxT = jnp.asarray(targets_BxT)
    _check_inputs(hidden_BxTxD, unembed_DxV, targets_BxT, temperature)
    return _logprobs_and_entropy_from_hidden(
        hidden_BxTxD, unembed_DxV, targets_BxT, temperature, compute_entropy
    )
