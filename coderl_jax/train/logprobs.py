"""Token log-probabilities and entropy from final hidden states, chunked along the sequence.

The policy loss needs ``log pi(y_t | y_<t)`` of the sampled tokens (and optionally the
entropy of ``pi(. | y_<t)``), both in float32. Materialising the logits ``[B, T, V]`` in fp32
for a 152k vocabulary costs ``B * T * 608 KB`` (1.2 GB per 2048-token sequence), and autodiff
would keep it (or the softmax) alive until the backward pass. Instead a ``lax.scan`` walks
over chunks of ``C`` positions: each step computes ``[B, C, V]`` logits and reduces them to
``[B, C]`` outputs. The gradient is a hand-written ``custom_vjp`` (the effect of
``jax.checkpoint`` per chunk: only the inputs are saved, the backward scan recomputes each
chunk's logits) that also keeps the running unembedding gradient in fp32, which autodiff
through a scan would sum in the parameter dtype. Peak extra memory is a few ``[B, C, V]``
fp32 buffers plus one fp32 ``[D, V]`` accumulator, independent of ``T``;
``experiments/benchmarks/logprobs_memory.py`` measures it.

Per position (``z = h @ W / temperature``, fp32):

- ``logp_t = z[y_t] - logsumexp(z)``
- ``entropy_t = logsumexp(z) - sum_v softmax(z)_v z_v  ( = -sum_v p_v log p_v )``

The temperature must match the sampler's so that ``logp`` equals the behaviour policy's
log-probability of the sampled token (verl divides logits by ``rollout.temperature`` too).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

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


def _scaled_logits(
    hidden_BxCxD: jax.Array, unembed_DxV: jax.Array, temperature: jax.Array
) -> jax.Array:
    """``[B, C, V]`` fp32 logits / temperature; bf16 operands are multiplied exactly and
    accumulated in fp32 (``preferred_element_type``), so tensor cores stay usable."""
    logits = jnp.einsum(
        "bcd,dv->bcv", hidden_BxCxD, unembed_DxV, preferred_element_type=jnp.float32
    )
    return logits / temperature


def _logprobs_and_entropy_from_logits(
    logits_BxCxV: jax.Array, targets_BxC: jax.Array, compute_entropy: bool
) -> tuple[jax.Array, ...]:
    log_normalizer = jax.nn.logsumexp(logits_BxCxV, axis=-1)
    target_logits = jnp.take_along_axis(logits_BxCxV, targets_BxC[..., None], axis=-1)[..., 0]
    logp = target_logits - log_normalizer
    if not compute_entropy:
        return (logp,)
    probs = jnp.exp(logits_BxCxV - log_normalizer[..., None])
    entropy = log_normalizer - jnp.sum(probs * logits_BxCxV, axis=-1)
    return logp, entropy


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _chunked_logprobs(
    hidden_NxBxCxD: jax.Array,
    unembed_DxV: jax.Array,
    targets_NxBxC: jax.Array,
    temperature: jax.Array,
    compute_entropy: bool,
) -> tuple[jax.Array, ...]:
    """Outputs ``(logp_NxBxC[, entropy_NxBxC])``, one ``[B, C, V]`` logits block at a time."""

    def step(carry, chunk):
        hidden_BxCxD, targets_BxC = chunk
        logits = _scaled_logits(hidden_BxCxD, unembed_DxV, temperature)
        return carry, _logprobs_and_entropy_from_logits(logits, targets_BxC, compute_entropy)

    _, outputs = jax.lax.scan(step, None, (hidden_NxBxCxD, targets_NxBxC))
    return outputs


def _chunked_logprobs_fwd(hidden_NxBxCxD, unembed_DxV, targets_NxBxC, temperature, compute_entropy):
    outputs = _chunked_logprobs(
        hidden_NxBxCxD, unembed_DxV, targets_NxBxC, temperature, compute_entropy
    )
    # Only the inputs are saved; the backward pass recomputes each chunk's logits.
    return outputs, (hidden_NxBxCxD, unembed_DxV, targets_NxBxC, temperature)


def _chunked_logprobs_bwd(compute_entropy, residuals, output_cotangents):
    """Backward scan over chunks with the unembedding gradient accumulated in fp32.

    With ``z = h W / tau``, ``p = softmax(z)`` and ``y`` the target:
    ``d logp / dz = onehot(y) - p`` and ``d entropy / dz = -p * (z - sum_v p_v z_v)``;
    then ``dh = (g_z / tau) W^T``, ``dW = sum_chunks h^T (g_z / tau)`` and
    ``dtau = -sum g_z z / tau``. Autodiff through a scan would sum the per-chunk ``dW`` in
    the parameter dtype (bf16: ~1% relative error over 100 chunks); here the running sum is
    fp32 and rounded once.
    """
    hidden_NxBxCxD, unembed_DxV, targets_NxBxC, temperature = residuals
    # Matmul operands in the forward's compute dtype (bf16 stays bf16), fp32 accumulation.
    compute_dtype = jnp.result_type(hidden_NxBxCxD.dtype, unembed_DxV.dtype)
    vocab = unembed_DxV.shape[1]

    def step(carry, chunk):
        d_unembed_DxV, d_temperature = carry
        hidden_BxCxD, targets_BxC, g_logp_BxC, g_entropy_BxC = chunk
        logits = _scaled_logits(hidden_BxCxD, unembed_DxV, temperature)
        probs = jax.nn.softmax(logits, axis=-1)
        is_target = targets_BxC[..., None] == jnp.arange(vocab, dtype=targets_BxC.dtype)
        g_logits = g_logp_BxC[..., None] * (is_target.astype(jnp.float32) - probs)
        if g_entropy_BxC is not None:
            mean_logit = jnp.sum(probs * logits, axis=-1, keepdims=True)
            g_logits = g_logits - g_entropy_BxC[..., None] * probs * (logits - mean_logit)
        d_temperature = d_temperature - jnp.sum(g_logits * logits) / temperature
        g_raw = (g_logits / temperature).astype(compute_dtype)
        d_hidden = jnp.einsum("bcv,dv->bcd", g_raw, unembed_DxV, preferred_element_type=jnp.float32)
        d_unembed_DxV = d_unembed_DxV + jnp.einsum(
            "bcd,bcv->dv", hidden_BxCxD, g_raw, preferred_element_type=jnp.float32
        )
        return (d_unembed_DxV, d_temperature), d_hidden.astype(hidden_NxBxCxD.dtype)

    g_logp = output_cotangents[0]
    g_entropy = output_cotangents[1] if compute_entropy else None
    init = (jnp.zeros(unembed_DxV.shape, jnp.float32), jnp.zeros((), jnp.float32))
    (d_unembed, d_temperature), d_hidden = jax.lax.scan(
        step, init, (hidden_NxBxCxD, targets_NxBxC, g_logp, g_entropy)
    )
    d_targets = np.zeros(targets_NxBxC.shape, jax.dtypes.float0)
    return (
        d_hidden,
        d_unembed.astype(unembed_DxV.dtype),
        d_targets,
        d_temperature.astype(temperature.dtype),
    )


_chunked_logprobs.defvjp(_chunked_logprobs_fwd, _chunked_logprobs_bwd)


def token_logprobs_and_entropy(
    hidden_BxTxD: jax.Array,
    unembed_DxV: jax.Array,
    targets_BxT: jax.Array,
    temperature: float | jax.Array = 1.0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    compute_entropy: bool = True,
) -> tuple[jax.Array, jax.Array | None]:
    """Log-prob of each target token and the entropy at each position, chunk by chunk.

    Differentiable (reverse mode) w.r.t. ``hidden_BxTxD``, ``unembed_DxV`` and
    ``temperature``; values and gradients equal those of
    ``token_logprobs_and_entropy_unchunked`` up to float32 summation order. ``T`` need not
    be a multiple of ``chunk_size`` (padded internally, padding sliced off).

    Args:
      hidden_BxTxD: final hidden states (after the final norm); position ``t`` predicts
        ``targets_BxT[:, t]`` (the caller shifts tokens by one). Any float dtype.
      unembed_DxV: output projection (for tied embeddings pass ``embedding_VxD.T``); bf16
        or fp32. Logits are accumulated and normalised in fp32.
      targets_BxT: integer token ids.
      temperature: logits are divided by it (the sampling temperature).
      chunk_size: positions per chunk ``C``; peak memory scales with ``B * C * V``.
      compute_entropy: also return the entropy (skip it to save work).

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
    outputs = _chunked_logprobs(
        hidden_NxBxCxD,
        unembed_DxV,
        targets_NxBxC,
        jnp.asarray(temperature, jnp.float32),
        compute_entropy,
    )

    def unchunk(x_NxBxC: jax.Array) -> jax.Array:
        return x_NxBxC.swapaxes(0, 1).reshape(batch, num_chunks * chunk)[:, :length]

    entropy = unchunk(outputs[1]) if compute_entropy else None
    return unchunk(outputs[0]), entropy


def token_logprobs_and_entropy_unchunked(
    hidden_BxTxD: jax.Array,
    unembed_DxV: jax.Array,
    targets_BxT: jax.Array,
    temperature: float | jax.Array = 1.0,
    compute_entropy: bool = True,
) -> tuple[jax.Array, jax.Array | None]:
    """Reference: the same outputs from the full ``[B, T, V]`` fp32 logits in one piece.

    Plain autodiff, simple and fast for small vocabularies, memory-hungry for large ones.
    Used by tests and by the memory benchmark as the baseline. Arguments as in
    ``token_logprobs_and_entropy``.
    """
    hidden_BxTxD = jnp.asarray(hidden_BxTxD)
    unembed_DxV = jnp.asarray(unembed_DxV)
    targets_BxT = jnp.asarray(targets_BxT)
    _check_inputs(hidden_BxTxD, unembed_DxV, targets_BxT, temperature)
    logits = _scaled_logits(hidden_BxTxD, unembed_DxV, temperature)
    outputs = _logprobs_and_entropy_from_logits(logits, targets_BxT, compute_entropy)
    return outputs[0], outputs[1] if compute_entropy else None
