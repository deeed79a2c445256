"""The continuous decoder's device loop: up to ``segment_steps`` decode steps over S slots.

A slot holds one sample at a time. Its state (`SlotState`): the sample it decodes, that
sample's prompt, how many tokens it has generated (``length`` >= 1: the first token comes
from the prefill), the last token (fed next), its length limit, and its generated pages
(the host allocates them before each segment, enough for the segment's steps). Each step:

1. Every active slot feeds its last token at position prompt_length + length - 1 and
   writes that token's key/value at generated index length - 1 (page length // page_size).
2. Its attention reads its prompt pages and its generated pages up to the new token only
   (`paged_kv.compact_work` drops the empty pieces), so the step's cost follows the real
   lengths.
3. A token is drawn with the uniform of (key, sample, length) (`sampling.sample_uniforms`),
   so the result does not depend on the slot or on which other samples run beside it.
4. A slot that emits a stop id or reaches its limit becomes idle until the host refills it.

The loop ends after ``segment_steps`` steps or when every slot is idle; the host then reads
the new tokens, frees the finished slots' pages and refills them (`scheduler.py`).

On a mesh the slots are split into equal blocks over the batch axes, one per batch shard,
and each block reads and writes only its shard's page pool (`paged_kv` module docstring):
page ids and ``prompt`` are local to the shard, ``sample`` is the global row. The loop
runs while any slot of any shard is active, so every device runs the same steps.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.paged_kv import PagedKVCache, compact_work
from coderl_jax.models.sampler.config import SamplingConfig
from coderl_jax.models.sampler.prefill import PoolLayout, prompt_pieces
from coderl_jax.models.sampler.sampling import is_stop, sample_tokens, sample_uniforms


@flax.struct.dataclass
class SlotState:
    """Per-slot decode state (S slots; J = pages one sample can fill)."""

    sample: jax.Array  # [S] int32: global row n of the call (its randomness)
    prompt: jax.Array  # [S] int32: its prompt's place among the shard's prompts
    prompt_length: jax.Array  # [S] int32: real tokens of that prompt
    length: jax.Array  # [S] int32: tokens generated so far
    token: jax.Array  # [S] int32: last generated token
    limit: jax.Array  # [S] int32: the sample's length limit
    active: jax.Array  # [S] bool: decoding (False: idle, or finished during this segment)
    stopped: jax.Array  # [S] bool: finished by a stop id
    pages: jax.Array  # [S, J] int32 generated pages in order (scratch where unallocated)


def decode_segment(
    params,
    model_config: ModelConfig,
    config: SamplingConfig,
    layout: PoolLayout,
    cache: PagedKVCache,
    slots: SlotState,
    key: jax.Array,
    mesh: Mesh | None = None,
):
    """Runs up to ``config.segment_steps`` steps (pure; jit it, donating the cache).

    ``layout`` is one shard's pool; with a ``mesh`` the cache holds one such pool per batch
    shard and the slots are split over the shards (module docstring).

    Returns ``(cache, slots, tokens [S, T], logprobs [S, T])``: the tokens each slot drew in
    this segment, in order (pad_id / 0 after it went idle).
    """
    s, steps, size = slots.length.shape[0], config.segment_steps, layout.page_size
    prompt_pages, prompt_lo, prompt_hi = prompt_pieces(layout, slots.prompt, slots.prompt_length)
    generated = jnp.arange(slots.pages.shape[1], dtype=jnp.int32) * size

    def step(carry):
        t, cache, slots, tokens, logprobs = carry
        active = slots.active
        write = slots.length - 1  # generated index of the token fed now
        write_page = jnp.take_along_axis(slots.pages, (write // size)[:, None], axis=1)[:, 0]
        gen_hi = jnp.clip(slots.length[:, None] - generated, 0, size)
        work = compact_work(
            jnp.concatenate([prompt_pages, slots.pages], axis=1),
            jnp.concatenate([prompt_lo, jnp.zeros_like(gen_hi)], axis=1),
            jnp.where(active[:, None], jnp.concatenate([prompt_hi, gen_hi], axis=1), 0),
            jnp.where(active, write_page, layout.scratch),
            jnp.where(active, write % size, 0),
            config.attention_chunk,
            mesh,
        )
        positions = slots.prompt_length + write
        logits, cache = transformer.paged_decode_step(
            params, model_config, slots.token, positions, cache, work
        )
        token, logprob = sample_tokens(
            logits, sample_uniforms(key, slots.sample, slots.length), config
        )
        token = jnp.where(active, token, config.pad_id)
        logprob = jnp.where(active, logprob, 0.0)
        stop = active & is_stop(token, config.stop_ids)
        length = slots.length + active.astype(jnp.int32)
        slots = slots.replace(
            length=length,
            token=jnp.where(active, token, slots.token),
            active=active & ~stop & (length < slots.limit),
            stopped=slots.stopped | stop,
        )
        tokens = jax.lax.dynamic_update_slice_in_dim(tokens, token[:, None], t, axis=1)
        logprobs = jax.lax.dynamic_update_slice_in_dim(logprobs, logprob[:, None], t, axis=1)
        return t + 1, cache, slots, tokens, logprobs

    carry = (
        jnp.zeros((), jnp.int32),
        cache,
        slots,
        jnp.full((s, steps), config.pad_id, jnp.int32),
        jnp.zeros((s, steps), jnp.float32),
    )
    _, cache, slots, tokens, logprobs = jax.lax.while_loop(
        lambda c: (c[0] < steps) & jnp.any(c[2].active), step, carry
    )
    return cache, slots, tokens, logprobs
