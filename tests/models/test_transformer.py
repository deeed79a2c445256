"""Our decoder against transformers (logits), and the KV cache against the full forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.models import hf_io, transformer
from coderl_jax.models.config import PRESETS, ModelConfig
from tests.models import hf_fixtures


@pytest.fixture(scope="module", params=["qwen2_tied", "qwen2_untied", "llama"])
def hf_checkpoint(request, tmp_path_factory):
    path = tmp_path_factory.mktemp(request.param)
    model = hf_fixtures.save_hf_model(request.param, path)
    return request.param, model, str(path)


def test_logits_match_transformers_with_left_padding(hf_checkpoint):
    kind, model, path = hf_checkpoint
    config, params = hf_io.load_pretrained(path)
    assert config.model_type == ("llama" if kind == "llama" else "qwen2")
    assert config.tie_word_embeddings == (kind == "qwen2_tied")
    tokens, mask = hf_fixtures.left_padded_batch()
    ours = np.asarray(transformer.forward(params, config, jnp.asarray(tokens), jnp.asarray(mask)))
    theirs = hf_fixtures.torch_logits(model, tokens, mask)
    real = mask.astype(bool)
    assert np.abs(ours - theirs)[real].max() <= 1e-4
    assert np.abs(theirs[real]).max() > 1.0  # logits are not trivially small


def test_llama3_rope_scaling_changes_frequencies():
    base = ModelConfig(model_type="llama", attention_bias=False, head_dim=16, rope_theta=500000.0)
    scaled = base.replace(rope_scaling=PRESETS["llama-3.2-1b"].rope_scaling)
    plain, slow = (
        transformer.rope_inverse_frequencies(base),
        transformer.rope_inverse_frequencies(scaled),
    )
    np.testing.assert_array_equal(plain[:2], slow[:2])  # short wavelengths are kept
    np.testing.assert_allclose(slow[-1], plain[-1] / 32.0, rtol=1e-6)  # long ones / factor


# Jitted once per module: each test compiles instead of dispatching op by op.
_init = jax.jit(transformer.init_params, static_argnums=0)
_forward = jax.jit(transformer.forward, static_argnums=1)
_prefill = jax.jit(transformer.prefill, static_argnums=(1, 4, 5))
_decode_step = jax.jit(transformer.decode_step, static_argnums=1)


def _decode_all(params, config, tokens, mask, prompt_len, num_samples):
    """Prefill `prompt_len` tokens, then feed the rest one by one (same tokens per sample)."""
    _, cache = _prefill(
        params, config, tokens[:, :prompt_len], mask[:, :prompt_len], num_samples, tokens.shape[1]
    )
    positions = jnp.repeat(transformer.positions_from_mask(mask), num_samples, axis=0)
    rows = jnp.repeat(tokens, num_samples, axis=0)
    step_logits = []
    for t in range(prompt_len, tokens.shape[1]):
        logits, cache = _decode_step(
            params, config, rows[:, t : t + 1], positions[:, t : t + 1], cache
        )
        step_logits.append(logits[:, 0])
    return jnp.stack(step_logits, axis=1), cache


@pytest.mark.parametrize("num_samples", [1, 3])
def test_cached_decode_equals_full_forward(num_samples):
    config = ModelConfig(vocab_size=97, num_layers=2)
    params = _init(config, jax.random.key(1))
    tokens, mask = hf_fixtures.left_padded_batch(seed=3)
    tokens = jnp.asarray(tokens % 97)
    mask = jnp.asarray(mask)
    full = _forward(params, config, tokens, mask)
    prompt_len = 10  # the last row has 1 real prompt token; every row gets 2 decoded tokens
    decoded, cache = _decode_all(params, config, tokens, mask, prompt_len, num_samples)
    expected = jnp.repeat(full[:, prompt_len:], num_samples, axis=0)
    np.testing.assert_allclose(decoded, expected, atol=2e-5)
    assert int(cache.index) == tokens.shape[1] - prompt_len
    assert cache.prefix_k.shape[1] == 3 and cache.k.shape[1] == 3 * num_samples


def test_multi_token_decode_step_equals_single_steps():
    config = ModelConfig(vocab_size=97, num_layers=2, model_type="llama", attention_bias=False)
    params = _init(config, jax.random.key(2))
    tokens, mask = hf_fixtures.left_padded_batch(seed=4)
    tokens, mask = jnp.asarray(tokens % 97), jnp.asarray(mask)
    full = _forward(params, config, tokens, mask)
    _, cache = _prefill(params, config, tokens[:, :9], mask[:, :9], 1, 8)
    positions = transformer.positions_from_mask(mask)
    logits, _ = _decode_step(params, config, tokens[:, 9:], positions[:, 9:], cache)
    np.testing.assert_allclose(logits, full[:, 9:], atol=2e-5)


def test_bf16_compute_stays_close_to_fp32():
    config = ModelConfig(vocab_size=97, num_layers=2)
    params = _init(config, jax.random.key(0))
    tokens = jnp.arange(24).reshape(2, 12) % 97
    fp32 = _forward(params, config, tokens)
    bf16 = _forward(params, config.replace(compute_dtype="bfloat16"), tokens)
    assert bf16.dtype == jnp.float32  # logits are always fp32
    assert np.abs(np.asarray(bf16) - np.asarray(fp32)).max() < 0.05 * np.abs(np.asarray(fp32)).max()


@pytest.mark.parametrize("policy", ["full", "dots"])
def test_remat_keeps_values_and_gradients(policy):
    config = ModelConfig(vocab_size=97, num_layers=2)
    params = _init(config, jax.random.key(0))
    tokens = jnp.arange(16).reshape(2, 8) % 97

    def loss(p, c):
        return _forward(p, c, tokens).mean()

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    g0 = grad(params, config)
    g1 = grad(params, config.replace(remat_policy=policy))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g0, g1)


@pytest.mark.parametrize("scan_unroll", [1, 2])
def test_layer_unrolling_changes_no_value(scan_unroll):
    """Unrolled (0, the default), rolled (1) and partly unrolled (2 of 3 layers) scans give
    the same logits, gradients and cached decode."""
    unrolled = ModelConfig(vocab_size=97, num_layers=3)
    rolled = unrolled.replace(scan_unroll=scan_unroll)
    params = _init(unrolled, jax.random.key(5))
    tokens, mask = hf_fixtures.left_padded_batch(seed=6)
    tokens, mask = jnp.asarray(tokens % 97), jnp.asarray(mask)

    def loss(p, c):
        return _forward(p, c, tokens, mask).mean()

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    for a, b in [
        (_forward(params, unrolled, tokens, mask), _forward(params, rolled, tokens, mask)),
        (
            _decode_all(params, unrolled, tokens, mask, 9, 2)[0],
            _decode_all(params, rolled, tokens, mask, 9, 2)[0],
        ),
    ]:
        np.testing.assert_allclose(a, b, atol=2e-5)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6),
        grad(params, unrolled),
        grad(params, rolled),
    )
    with pytest.raises(ValueError, match="scan_unroll"):
        unrolled.replace(scan_unroll=4)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_have_the_published_sizes(name):
    config = PRESETS[name]
    abstract = jax.eval_shape(lambda: transformer.init_params(config, jax.random.key(0)))
    count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract))
    assert count == config.num_params
    expected_millions = {
        "qwen2.5-coder-0.5b": 494,
        "qwen2.5-coder-1.5b": 1544,
        "qwen2.5-coder-7b": 7616,
        "llama-3.2-1b": 1236,
    }[name]
    assert abs(count / 1e6 - expected_millions) < 0.01 * expected_millions
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(abstract))
