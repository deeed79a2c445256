"""Prefill for the continuous decoder: prompts into KV pages, and every sample's first token.

Pool layout (page ids): prompt p owns pages ``[p * B, (p + 1) * B)`` with B =
ceil(bucket / page_size) (`PoolLayout.prompt_pages`); generated tokens use pages
``[P * B, P * B + generated_pages)``, handed out by the host scheduler; the last page is a
scratch page that idle slots write into and nobody reads. A prompt's left-padded
[bucket] columns are padded on the left to B whole pages, so every prompt ends exactly at a
page boundary: prompt page j holds real keys at offsets ``[lo, page_size)``,
lo = clip(B * page_size - prompt_length - j * page_size, 0, page_size) (`prompt_pieces`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.paged_kv import PagedKVCache
from coderl_jax.models.sampler.config import SamplingConfig
from coderl_jax.models.sampler.sampling import sample_tokens, sample_uniforms


@dataclasses.dataclass(frozen=True)
class PoolLayout:
    """Static page-pool geometry of one call shape."""

    num_prompts: int  # P
    prompt_pages: int  # B: pages per prompt
    generated_pages: int  # pages shared by the slots for generated tokens
    page_size: int

    @property
    def first_generated(self) -> int:
        return self.num_prompts * self.prompt_pages

    @property
    def scratch(self) -> int:
        return self.first_generated + self.generated_pages

    @property
    def num_pages(self) -> int:
        return self.scratch + 1


def pool_bytes(model_config: ModelConfig, num_pages: int, page_size: int) -> int:
    """Bytes of ``num_pages`` pages of keys and values (all layers)."""
    per_token = 2 * model_config.num_layers * model_config.num_kv_heads * model_config.head_dim
    return per_token * jnp.dtype(model_config.compute_dtype).itemsize * num_pages * page_size


def prompt_pieces(layout: PoolLayout, prompts_S: jax.Array, prompt_lengths_P: jax.Array):
    """Each slot's prompt pages: (page ids, lo, hi), each [S, B] (hi <= lo: nothing to read)."""
    b, size = layout.prompt_pages, layout.page_size
    j = jnp.arange(b, dtype=jnp.int32)
    pages = prompts_S[:, None] * b + j
    first_real = b * size - prompt_lengths_P[prompts_S]  # column of the first real token
    lo = jnp.clip(first_real[:, None] - j * size, 0, size)
    return pages, lo, jnp.full(pages.shape, size, jnp.int32)


def prefill(
    params,
    model_config: ModelConfig,
    config: SamplingConfig,
    layout: PoolLayout,
    tokens_PxS: jax.Array,
    mask_PxS: jax.Array,
    key: jax.Array,
    num_samples: int,
):
    """Runs the prompts once (pure; jit it).

    Returns ``(cache, first_tokens [N], first_logprobs [N])``: the page pool with every
    prompt's keys in its pages (generated pages zero), and each sample's first token, drawn
    with the uniform of (key, sample n, position 0).
    """
    p, s = tokens_PxS.shape
    last_logits_PxV, k, v = transformer.prefill_kv(params, model_config, tokens_PxS, mask_PxS)
    size, b = layout.page_size, layout.prompt_pages

    def to_pages(x):  # [L, P, S, K, Dh] -> [L, pages, K, page_size, Dh]
        layers, _, _, heads, dh = x.shape
        x = jnp.pad(x, ((0, 0), (0, 0), (b * size - s, 0), (0, 0), (0, 0)))
        x = x.reshape(layers, p * b, size, heads, dh).swapaxes(2, 3)
        free = jnp.zeros((layers, layout.generated_pages + 1, heads, size, dh), x.dtype)
        return jnp.concatenate([x, free], axis=1)

    cache = PagedKVCache(k=to_pages(k), v=to_pages(v))
    n = p * num_samples
    first, first_logprob = sample_tokens(
        jnp.repeat(last_logits_PxV, num_samples, axis=0),
        sample_uniforms(key, jnp.arange(n, dtype=jnp.int32), jnp.zeros((n,), jnp.int32)),
        config,
    )
    return cache, first, first_logprob
