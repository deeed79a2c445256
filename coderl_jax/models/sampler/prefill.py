"""Prefill for the continuous decoder: prompts into KV pages, and every sample's first token.

Pool layout (page ids): prompt p owns pages ``[p * B, (p + 1) * B)`` with B =
ceil(bucket / page_size) (`PoolLayout.prompt_pages`); generated tokens use pages
``[P * B, P * B + generated_pages)``, handed out by the host scheduler; the last page is a
scratch page that idle slots write into and nobody reads. A prompt's left-padded
[bucket] columns are padded on the left to B whole pages, so every prompt ends exactly at a
page boundary: prompt page j holds real keys at offsets ``[lo, page_size)``,
lo = clip(B * page_size - prompt_length - j * page_size, 0, page_size) (`prompt_pieces`).

On a mesh each batch shard has a pool of this layout (`paged_kv` module docstring) holding
the prompts of its own rows: the prompt rows passed in are laid out shard by shard
(``num_prompts`` per shard), and the pages are cut from each shard's keys under
`jax.shard_map`, so no key crosses devices.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, PartitionSpec

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.paged_kv import PagedKVCache, pool_spec, to_storage
from coderl_jax.models.sampler.config import SamplingConfig
from coderl_jax.models.sampler.sampling import sample_tokens, sample_uniforms
from coderl_jax.parallel.mesh import BATCH_AXES


@dataclasses.dataclass(frozen=True)
class PoolLayout:
    """Static page-pool geometry of one call shape."""

    num_prompts: int  # P: prompts in the pool (of one shard, on a mesh)
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


def prompt_pieces(layout: PoolLayout, prompts_S: jax.Array, prompt_lengths_S: jax.Array):
    """Each slot's prompt pages: (page ids, lo, hi), each [S, B] (hi <= lo: nothing to read)."""
    b, size = layout.prompt_pages, layout.page_size
    j = jnp.arange(b, dtype=jnp.int32)
    pages = prompts_S[:, None] * b + j
    first_real = b * size - prompt_lengths_S  # column of the first real token
    lo = jnp.clip(first_real[:, None] - j * size, 0, size)
    return pages, lo, jnp.full(pages.shape, size, jnp.int32)


def prefill(
    params,
    model_config: ModelConfig,
    config: SamplingConfig,
    layout: PoolLayout,
    tokens_PxS: jax.Array,
    mask_PxS: jax.Array,
    prompt_N: jax.Array,
    sample_N: jax.Array,
    key: jax.Array,
    mesh: Mesh | None = None,
):
    """Runs the prompts once (pure; jit it).

    Args:
      tokens_PxS, mask_PxS: left-padded prompts, ``layout.num_prompts`` per shard.
      prompt_N: each sample's prompt, as its place among its shard's prompts.
      sample_N: each sample's global row n (its randomness).
      mesh: with a mesh, P and N are split into equal blocks over the batch axes (one per
        shard) and the cache holds one pool per shard.

    Returns ``(cache, first_tokens [N], first_logprobs [N])``: the page pool with every
    prompt's keys in its pages (generated pages zero), and each sample's first token, drawn
    with the uniform of (key, sample n, position 0).
    """
    last_logits_PxV, k, v = transformer.prefill_kv(params, model_config, tokens_PxS, mask_PxS)
    size, b = layout.page_size, layout.prompt_pages

    def to_pages(x):  # [L, P, S, K, Dh] -> [L, pages, K, page_size, Dh]
        layers, p, s, heads, dh = x.shape
        x = jnp.pad(x, ((0, 0), (0, 0), (b * size - s, 0), (0, 0), (0, 0)))
        x = x.reshape(layers, p * b, size, heads, dh).swapaxes(2, 3)
        x = to_storage(x)
        free = jnp.zeros((layers, layout.generated_pages + 1, heads, size, dh), x.dtype)
        return jnp.concatenate([x, free], axis=1)

    def local(logits_PxV, k, v, prompt_N, sample_N, key):
        n = prompt_N.shape[0]
        first, first_logprob = sample_tokens(
            logits_PxV[prompt_N],
            sample_uniforms(key, sample_N, jnp.zeros((n,), jnp.int32)),
            config,
        )
        return to_pages(k), to_pages(v), first, first_logprob

    args = (last_logits_PxV, k, v, prompt_N, sample_N, key)
    if mesh is None:
        k, v, first, first_logprob = local(*args)
    else:
        pool = pool_spec(mesh, model_config.num_kv_heads)
        keys = PartitionSpec(None, BATCH_AXES, None, pool[2])  # [L, P, S, K, Dh]
        rows = PartitionSpec(BATCH_AXES)
        k, v, first, first_logprob = jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(rows, keys, keys, rows, rows, PartitionSpec()),
            out_specs=(pool, pool, rows, rows),
            check_vma=False,
        )(*args)
    return PagedKVCache(k=k, v=v), first, first_logprob
