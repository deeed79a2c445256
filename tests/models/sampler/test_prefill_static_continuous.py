"""Device parts of the sampler on a tiny random decoder: prompt pages, one continuous
segment (vs a full forward over prompt + tokens), and the static cache size."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.sampler import SamplingConfig, continuous, left_pad, prefill, static

CONFIG = ModelConfig(
    vocab_size=64, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
    num_kv_heads=2, head_dim=8,
)  # fmt: skip
PROMPTS = [[5, 6, 7, 8, 9], [10, 11]]
WIDTH, PAGE = 8, 4


@pytest.fixture(scope="module")
def params():
    return transformer.init_params(CONFIG, jax.random.key(0))


def _layout(generated_pages=6):
    return prefill.PoolLayout(len(PROMPTS), -(-WIDTH // PAGE), generated_pages, PAGE)


def _prefill(params, cfg, layout, tokens, mask, g):
    rows = jnp.arange(len(PROMPTS) * g, dtype=jnp.int32)
    return prefill.prefill(
        params, CONFIG, cfg, layout, jnp.asarray(tokens), jnp.asarray(mask), rows // g, rows,
        jax.random.key(0),
    )  # fmt: skip


def test_prompt_pages_hold_the_prefill_keys_right_aligned_to_a_page(params):
    tokens, mask = left_pad(PROMPTS, WIDTH, 0)
    layout = _layout()
    cfg = SamplingConfig(8, greedy=True, page_size=PAGE)
    cache, first, _ = _prefill(params, cfg, layout, tokens, mask, 3)
    logits, k, _ = transformer.prefill_kv(params, CONFIG, jnp.asarray(tokens), jnp.asarray(mask))
    assert cache.k.shape == (2, layout.num_pages, 2, PAGE, 8)
    pages, lo, hi = prefill.prompt_pieces(layout, jnp.asarray([0, 1]), jnp.asarray([5, 2]))
    np.testing.assert_array_equal(pages, [[0, 1], [2, 3]])
    np.testing.assert_array_equal(lo, [[3, 0], [4, 2]])  # 5 tokens end page 1; 2 tokens too
    for p, ids in enumerate(PROMPTS):
        for i in range(len(ids)):  # token i of prompt p: column WIDTH - len + i
            column = 2 * PAGE - len(ids) + i
            np.testing.assert_array_equal(
                cache.k[:, p * 2 + column // PAGE, :, column % PAGE],
                k[:, p, WIDTH - len(ids) + i],
            )
    np.testing.assert_array_equal(np.asarray(cache.k[:, layout.first_generated :]), 0)
    np.testing.assert_array_equal(first, np.repeat(np.argmax(logits, -1), 3))


def test_segment_greedy_tokens_equal_argmax_of_full_forward(params):
    """Two slots on different prompts, one idle: each step's token is the argmax of a plain
    forward over prompt + tokens so far; the idle slot writes nothing that is read."""
    tokens, mask = left_pad(PROMPTS, WIDTH, 0)
    layout = _layout()
    cfg = SamplingConfig(9, greedy=True, page_size=PAGE, segment_steps=6)
    cache, first, _ = _prefill(params, cfg, layout, tokens, mask, 1)
    first = np.asarray(first)
    pages = np.full((3, cfg.pages_per_row), layout.scratch, np.int32)
    pages[0, :2], pages[2, :2] = [4, 6], [7, 5]  # out of order on purpose
    slots = continuous.SlotState(
        sample=jnp.asarray([0, 0, 1]),
        prompt=jnp.asarray([0, 0, 1]),
        prompt_length=jnp.asarray([5, 5, 2]),
        length=jnp.ones(3, jnp.int32),
        token=jnp.asarray([first[0], 0, first[1]]),
        limit=jnp.asarray([9, 9, 5]),
        active=jnp.asarray([True, False, True]),
        stopped=jnp.zeros(3, bool),
        pages=jnp.asarray(pages),
    )
    _, slots, seg, _ = continuous.decode_segment(
        params, CONFIG, cfg, layout, cache, slots, jax.random.key(0)
    )
    np.testing.assert_array_equal(slots.length, [7, 1, 5])  # slot 2 stopped at its limit
    np.testing.assert_array_equal(slots.active, [True, False, False])
    for slot, prompt, n in ((0, 0, 6), (2, 1, 4)):
        sequence = list(PROMPTS[prompt]) + [int(first[prompt])]
        for t in range(n):
            logits = transformer.forward(params, CONFIG, jnp.asarray([sequence]))
            sequence.append(int(jnp.argmax(logits[0, -1])))
            assert int(seg[slot, t]) == sequence[-1], (slot, t)
    assert np.all(np.asarray(seg[1]) == 0) and np.all(np.asarray(seg[2, 4:]) == 0)


def test_static_cache_bytes_formula(params):
    _, cache = transformer.prefill(
        params, CONFIG, jnp.zeros((2, WIDTH), jnp.int32), jnp.ones((2, WIDTH)), 3, 9
    )
    allocated = sum(x.nbytes for x in (cache.prefix_k, cache.prefix_v, cache.k, cache.v))
    assert static.cache_bytes(CONFIG, 2, WIDTH, 6, 10) == allocated
    assert prefill.pool_bytes(CONFIG, 5, PAGE) == 2 * 2 * 5 * PAGE * 2 * 8 * 4
