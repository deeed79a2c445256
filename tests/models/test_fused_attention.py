"""The fused attention path (``attention_impl``) against the einsum path.

On CPU the fused branch runs as "xla_fused" (jax's XLA reference of the call that "cudnn"
makes on GPU): same lengths, same causal flag, same head grouping.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.fused_attention import fused_causal_attention
from coderl_jax.rl.batch import left_align_columns

# Jitted so that each test compiles once instead of dispatching op by op.
_forward = jax.jit(transformer.forward, static_argnums=1, static_argnames=("return_kv",))
_init = jax.jit(transformer.init_params, static_argnums=0)


def _config(num_heads: int, num_kv_heads: int, **changes) -> ModelConfig:
    return ModelConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        head_dim=8,
        **changes,
    )


def _right_aligned(lengths, width: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mask = (np.arange(width)[None, :] < np.asarray(lengths)[:, None]).astype(np.int32)
    tokens = rng.integers(1, 64, mask.shape).astype(np.int32) * mask
    return tokens, mask


@pytest.mark.parametrize("num_heads,num_kv_heads", [(4, 2), (4, 1), (4, 4)])
def test_fused_equals_einsum_on_right_aligned_rows(num_heads, num_kv_heads):
    config = _config(num_heads, num_kv_heads)
    params = _init(config, jax.random.key(0))
    tokens, mask = _right_aligned([9, 4, 1, 6], width=9)
    einsum = np.asarray(_forward(params, config, tokens, mask))
    fused_config = config.replace(attention_impl="xla_fused")
    fused = np.asarray(_forward(params, fused_config, tokens, mask))
    real = mask.astype(bool)
    np.testing.assert_allclose(fused[real], einsum[real], atol=1e-5, rtol=0)
    assert np.abs(einsum[real]).max() > 0.1  # not trivially small
    # Both return every layer's keys and values; they agree at real tokens (later layers'
    # keys at padding differ, as the padding queries' outputs do).
    _, (k_einsum, _) = _forward(params, config, tokens, mask, return_kv=True)
    _, (k_fused, _) = _forward(params, fused_config, tokens, mask, return_kv=True)
    np.testing.assert_allclose(
        np.asarray(k_fused)[:, real], np.asarray(k_einsum)[:, real], atol=1e-5
    )


@pytest.mark.parametrize("attention_impl", ["xla_fused", "xla_blocked"])
def test_model_gradients_equal_einsum_gradients_on_real_tokens(attention_impl):
    config = _config(4, 2)
    params = _init(config, jax.random.key(1))
    tokens, mask = _right_aligned([7, 3, 5], width=7, seed=1)

    def loss(p, cfg):
        logits = _forward(p, cfg, tokens, mask)
        return jnp.sum(jnp.where(mask[..., None] > 0, logits, 0.0) ** 2) / 1e3

    grad_einsum = jax.grad(loss)(params, config)
    grad_other = jax.grad(loss)(params, config.replace(attention_impl=attention_impl))
    for a, b in zip(jax.tree.leaves(grad_einsum), jax.tree.leaves(grad_other)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), atol=1e-5, rtol=1e-4)


def test_right_aligned_fused_equals_left_padded_einsum():
    config = _config(4, 2)
    params = _init(config, jax.random.key(2))
    # Rows padded on both sides, as the sampler returns them.
    mask = np.array(
        [
            [0, 0, 1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1, 1, 1, 1],
            [0, 0, 0, 0, 1, 1, 1, 0],
        ],
        np.int32,
    )
    tokens = np.random.default_rng(2).integers(1, 64, mask.shape).astype(np.int32) * mask
    einsum = np.asarray(_forward(params, config, tokens, mask))
    columns = left_align_columns(mask)
    aligned_tokens = np.take_along_axis(tokens, columns, axis=1)
    aligned_mask = np.take_along_axis(mask, columns, axis=1)
    fused_config = config.replace(attention_impl="xla_fused")
    fused = np.asarray(_forward(params, fused_config, aligned_tokens, aligned_mask))
    for row in range(mask.shape[0]):
        real = mask[row].astype(bool)
        n = int(real.sum())
        np.testing.assert_allclose(fused[row, :n], einsum[row, real], atol=1e-5, rtol=0)


def test_row_that_is_not_right_aligned_becomes_nan():
    config = _config(4, 2, attention_impl="xla_fused")
    params = _init(config, jax.random.key(0))
    tokens, mask = _right_aligned([5, 3, 4], width=6)
    mask[1] = [0, 1, 1, 1, 0, 0]  # left padding breaks the fused path's contract
    logits = np.asarray(_forward(params, config, tokens, mask))
    assert np.isnan(logits[1]).all()
    assert np.isfinite(logits[[0, 2]]).all()


def test_prefill_of_left_padded_prompts_ignores_the_fused_setting():
    config = _config(4, 2)
    params = _init(config, jax.random.key(0))
    tokens = np.array([[0, 0, 5, 6, 7], [1, 2, 3, 4, 5]], np.int32)
    mask = (tokens > 0).astype(np.int32)
    ref_logits, ref_cache = transformer.prefill(params, config, tokens, mask, 2, 4)
    fused_config = config.replace(attention_impl="xla_fused")
    logits, cache = transformer.prefill(params, fused_config, tokens, mask, 2, 4)
    np.testing.assert_array_equal(np.asarray(logits), np.asarray(ref_logits))
    np.testing.assert_array_equal(np.asarray(cache.prefix_k), np.asarray(ref_cache.prefix_k))


def test_attention_impl_is_validated():
    with pytest.raises(ValueError, match="attention_impl must be one of"):
        _config(4, 2, attention_impl="flash")
    with pytest.raises(ValueError, match="compute_dtype"):
        _config(4, 2, attention_impl="cudnn")  # float32 compute
    with pytest.raises(ValueError, match="head_dim"):
        ModelConfig(head_dim=12, compute_dtype="bfloat16", attention_impl="cudnn")
    _config(4, 2, attention_impl="cudnn", compute_dtype="bfloat16")  # valid


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="checks the error off GPU")
def test_cudnn_off_gpu_raises_a_clear_error():
    config = _config(4, 2, attention_impl="cudnn", compute_dtype="bfloat16")
    params = _init(config, jax.random.key(0))  # init runs anywhere
    tokens, mask = _right_aligned([3, 2], width=3)
    with pytest.raises(ValueError, match="needs a GPU"):
        _forward(params, config, tokens, mask)


def test_fused_attention_zeroes_padding_rows_and_their_gradients():
    rng = np.random.default_rng(3)
    q, k, v = (jnp.asarray(rng.normal(size=(2, 5, 4, 8)), jnp.float32) for _ in range(3))
    k, v = k[:, :, :2], v[:, :, :2]  # 2 kv heads for 4 query heads
    lengths = jnp.asarray([5, 2], jnp.int32)
    out = fused_causal_attention(q, k, v, lengths, "xla_fused")
    assert np.all(np.asarray(out)[1, 2:] == 0)
    # Query 1 of row 1, head 3 (kv head 1) by hand: softmax over keys 0..1.
    scores = np.asarray(k)[1, :2, 1] @ np.asarray(q)[1, 1, 3] / np.sqrt(8)
    probs = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    np.testing.assert_allclose(out[1, 1, 3], probs @ np.asarray(v)[1, :2, 1], atol=1e-6)
    grads = jax.grad(
        lambda q, k, v: jnp.sum(fused_causal_attention(q, k, v, lengths, "xla_fused") ** 2),
        argnums=(0, 1, 2),
    )(q, k, v)
    for grad in grads:
        assert np.all(np.asarray(grad)[1, 2:] == 0)
        assert np.abs(np.asarray(grad)[1, :2]).max() > 0


@pytest.mark.parametrize("block", [2, 3, 16])
def test_blocked_flash_attention_equals_xla_reference_with_gradients(block):
    """ "xla_blocked" (flash recurrence, blocks of 2 / 3 / more than T) vs "xla_fused": GQA,
    rows of every length including 1, T not a multiple of the block."""
    from coderl_jax.models.flash_attention import blocked_causal_attention

    rng = np.random.default_rng(4)
    q = jnp.asarray(rng.normal(size=(3, 7, 4, 8)), jnp.float32)
    k, v = (jnp.asarray(rng.normal(size=(3, 7, 2, 8)), jnp.float32) for _ in range(2))
    lengths = jnp.asarray([7, 4, 1], jnp.int32)
    weights = jnp.asarray(rng.normal(size=q.shape), jnp.float32)
    real = (np.arange(7)[None] < np.asarray(lengths)[:, None])[..., None, None]

    def loss(attend):
        return lambda q, k, v: jnp.sum(jnp.where(real, attend(q, k, v) * weights, 0.0))

    def blocked(q, k, v):
        return blocked_causal_attention(q, k, v, lengths, block)

    def reference(q, k, v):
        return fused_causal_attention(q, k, v, lengths, "xla_fused")

    out, expected = jax.jit(blocked)(q, k, v), jax.jit(reference)(q, k, v)
    np.testing.assert_allclose(np.where(real, out, 0), np.where(real, expected, 0), atol=1e-6)
    grads = jax.jit(jax.grad(loss(blocked), argnums=(0, 1, 2)))(q, k, v)
    expected_grads = jax.jit(jax.grad(loss(reference), argnums=(0, 1, 2)))(q, k, v)
    for got, want in zip(grads, expected_grads):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-6)
