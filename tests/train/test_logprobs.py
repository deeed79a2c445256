"""Chunked token logprobs/entropy: hand-computed values, parity with the full-logits path."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.train.logprobs import (
    token_logprobs_and_entropy,
    token_logprobs_and_entropy_unchunked,
)

# W picks the two hidden coordinates as the first two logits; the third logit is always 0.
W_2x3 = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _close(actual, expected, tol=1e-6):
    assert np.asarray(actual).dtype == np.float32
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected, np.float32), atol=tol)


def test_hand_computed_logprobs_and_entropy():
    # Position 0: logits [ln 2, 0, 0] -> exp [2, 1, 1] / 4 -> p [.5, .25, .25].
    #   target 0: ln .5; target 2: ln .25; entropy -(.5 ln .5 + 2 * .25 ln .25) = 1.5 ln 2.
    # Position 1: logits [0, 0, 0] -> p = 1/3 each: logp -ln 3, entropy ln 3.
    hidden = jnp.array([[[np.log(2.0), 0.0], [0.0, 0.0]], [[np.log(2.0), 0.0], [0.0, 0.0]]])
    targets = jnp.array([[0, 1], [2, 2]])
    logp, entropy = token_logprobs_and_entropy(hidden, W_2x3, targets, chunk_size=1)
    _close(logp, [[np.log(0.5), -np.log(3.0)], [np.log(0.25), -np.log(3.0)]])
    _close(entropy, [[1.5 * np.log(2.0), np.log(3.0)]] * 2)


def test_temperature_divides_logits():
    # T = 2: logits [ln 2 / 2, 0, 0] -> exp [sqrt 2, 1, 1]; p0 = sqrt 2 / (2 + sqrt 2).
    hidden = jnp.array([[[np.log(2.0), 0.0]]])
    logp, entropy = token_logprobs_and_entropy(hidden, W_2x3, jnp.array([[0]]), temperature=2.0)
    p = np.array([np.sqrt(2.0), 1.0, 1.0]) / (2.0 + np.sqrt(2.0))
    _close(logp, [[np.log(p[0])]])
    _close(entropy, [[-np.sum(p * np.log(p))]])


def _random_inputs(batch=2, length=13, dim=8, vocab=50, seed=0):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    hidden = jax.random.normal(k1, (batch, length, dim), jnp.float32)
    unembed = jax.random.normal(k2, (dim, vocab), jnp.float32) * 0.5
    targets = jax.random.randint(k3, (batch, length), 0, vocab)
    return hidden, unembed, targets


def _weighted_objective(fn, hidden, unembed, targets):
    # Distinct weights per position so a misplaced chunk would change the gradient.
    logp, entropy = fn(hidden, unembed, targets)
    positions = jnp.arange(logp.shape[1], dtype=jnp.float32)
    return jnp.sum(logp * (1.0 + positions)) + jnp.sum(entropy * (0.5 - positions / 7.0))


@pytest.mark.parametrize("chunk_size", [3, 5, 13, 64])  # 3, 5: T = 13 needs padding
def test_chunked_matches_unchunked_values_and_gradients(chunk_size):
    hidden, unembed, targets = _random_inputs()
    chunked = functools.partial(token_logprobs_and_entropy, temperature=0.7, chunk_size=chunk_size)
    full = functools.partial(token_logprobs_and_entropy_unchunked, temperature=0.7)
    for a, b in zip(chunked(hidden, unembed, targets), full(hidden, unembed, targets)):
        _close(a, b, tol=1e-5)
    grad = jax.grad(_weighted_objective, argnums=(1, 2))
    chunked_grads = jax.jit(grad, static_argnums=0)(chunked, hidden, unembed, targets)
    full_grads = grad(full, hidden, unembed, targets)
    for a, b in zip(chunked_grads, full_grads):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)


def test_bf16_unembed_computes_in_float32():
    # bf16 x bf16 products are exact in fp32, so fp32 accumulation of bf16 operands must equal
    # the fp32 computation on the upcast values.
    hidden, unembed, targets = _random_inputs(vocab=40)
    hidden_bf16, unembed_bf16 = hidden.astype(jnp.bfloat16), unembed.astype(jnp.bfloat16)
    logp, entropy = token_logprobs_and_entropy(hidden_bf16, unembed_bf16, targets, chunk_size=4)
    ref_logp, ref_entropy = token_logprobs_and_entropy_unchunked(
        hidden_bf16.astype(jnp.float32), unembed_bf16.astype(jnp.float32), targets
    )
    _close(logp, ref_logp, tol=1e-5)
    _close(entropy, ref_entropy, tol=1e-5)
    grad = jax.grad(lambda w: jnp.sum(token_logprobs_and_entropy(hidden, w, targets, 1.0, 4)[0]))
    assert grad(unembed_bf16).dtype == jnp.bfloat16


def test_bf16_unembed_gradient_accumulates_in_float32():
    # 128 chunks: summing per-chunk dW in bf16 would give ~1% relative error; an fp32 running
    # sum rounded once is as accurate as the one-matmul full-logits gradient (~0.2%).
    hidden, unembed, targets = _random_inputs(batch=2, length=512, dim=32, vocab=64, seed=3)
    hidden_bf16, unembed_bf16 = hidden.astype(jnp.bfloat16), unembed.astype(jnp.bfloat16)

    def unembed_grad(fn, h, w):
        return jax.jit(jax.grad(lambda w: jnp.sum(fn(h, w, targets)[0])))(w).astype(jnp.float32)

    exact = unembed_grad(
        token_logprobs_and_entropy_unchunked,
        hidden_bf16.astype(jnp.float32),
        unembed_bf16.astype(jnp.float32),
    )
    chunked = unembed_grad(
        functools.partial(token_logprobs_and_entropy, chunk_size=4), hidden_bf16, unembed_bf16
    )
    full = unembed_grad(token_logprobs_and_entropy_unchunked, hidden_bf16, unembed_bf16)

    def rel_err(g):
        return float(jnp.linalg.norm(g - exact) / jnp.linalg.norm(exact))

    assert rel_err(chunked) < 1.5 * rel_err(full) + 1e-4, (rel_err(chunked), rel_err(full))


def test_temperature_gradient_matches_unchunked():
    hidden, unembed, targets = _random_inputs()

    def objective(fn, temperature):
        logp, entropy = fn(hidden, unembed, targets, temperature)
        return jnp.sum(logp) + 0.3 * jnp.sum(entropy)

    chunked = functools.partial(token_logprobs_and_entropy, chunk_size=5)
    grad_chunked = jax.grad(functools.partial(objective, chunked))(0.8)
    grad_full = jax.grad(functools.partial(objective, token_logprobs_and_entropy_unchunked))(0.8)
    np.testing.assert_allclose(grad_chunked, grad_full, rtol=1e-5)


def test_no_entropy_and_traced_temperature():
    hidden, unembed, targets = _random_inputs()
    fn = jax.jit(
        lambda h, w, y, t: token_logprobs_and_entropy(h, w, y, t, 4, compute_entropy=False)
    )
    logp, entropy = fn(hidden, unembed, targets, jnp.float32(0.5))
    assert entropy is None
    _close(logp, token_logprobs_and_entropy_unchunked(hidden, unembed, targets, 0.5)[0], tol=1e-5)


def test_chunked_gradient_never_holds_full_logits():
    # Compile loss+grad for a [B, T, V] = [2, 256, 4096] head: the full-logits version needs
    # several [B, T, V] fp32 buffers (8 MiB each); the chunked one only [B, C, V] ones.
    batch, length, dim, vocab, chunk = 2, 256, 32, 4096, 16
    shapes = (
        jax.ShapeDtypeStruct((batch, length, dim), jnp.float32),
        jax.ShapeDtypeStruct((dim, vocab), jnp.float32),
        jax.ShapeDtypeStruct((batch, length), jnp.int32),
    )
    full_logits_bytes = batch * length * vocab * 4

    def temp_bytes(fn):
        grad = jax.jit(jax.grad(functools.partial(_weighted_objective, fn), argnums=(0, 1)))
        return grad.lower(*shapes).compile().memory_analysis().temp_size_in_bytes

    chunked = temp_bytes(functools.partial(token_logprobs_and_entropy, chunk_size=chunk))
    full = temp_bytes(token_logprobs_and_entropy_unchunked)
    assert full >= full_logits_bytes
    assert chunked < full_logits_bytes / 2, (chunked, full)


def test_bad_inputs_raise():
    hidden, unembed, targets = _random_inputs()
    with pytest.raises(ValueError, match="matching D"):
        token_logprobs_and_entropy(hidden, unembed.T, targets)
    with pytest.raises(ValueError, match=r"targets must be \[B, T\]"):
        token_logprobs_and_entropy(hidden, unembed, targets[:, :3])
    with pytest.raises(ValueError, match="integer"):
        token_logprobs_and_entropy(hidden, unembed, targets.astype(jnp.float32))
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs_and_entropy(hidden, unembed, targets, temperature=0.0)
    with pytest.raises(ValueError, match="chunk_size"):
        token_logprobs_and_entropy(hidden, unembed, targets, chunk_size=0)
