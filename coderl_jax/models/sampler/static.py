"""Static decoding: all N = P * G rows decode together until the last one ends.

`transformer.prefill` runs each prompt once; its last logits give the first token of each
of its G samples. A `lax.while_loop` over a `StaticState` then feeds one token per row per
step until every row has emitted a stop id or reached its length limit; rows that are
done emit ``pad_id``. Every step attends over the whole preallocated suffix, so this
decoder suits short, equal-length completions (one compiled loop, no host round trips);
long-tailed lengths want the continuous decoder.

KV cache memory, preallocated per shape, in the compute dtype:
``2 * L * (P * bucket + N * (max_new_tokens - 1)) * K * Dh * bytes(compute_dtype)``.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from coderl_jax.models import transformer
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.sampler import output as output_lib
from coderl_jax.models.sampler.config import SamplingConfig
from coderl_jax.models.sampler.sampling import is_stop, sample_tokens, sample_uniforms


@flax.struct.dataclass
class StaticState:
    """The `lax.while_loop` carry. Column ``step - 1`` of ``tokens`` is fed next."""

    step: jax.Array  # int32 scalar: tokens generated so far
    tokens: jax.Array  # [N, M] int32 completion tokens (pad where not generated)
    logprobs: jax.Array  # [N, M] float32 (0 where not generated)
    done: jax.Array  # [N] bool: row has ended (stop id or its length limit)
    stopped: jax.Array  # [N] bool: row emitted a stop id
    lengths: jax.Array  # [N] int32 completion lengths so far (stop token included)
    cache: transformer.KVCache


def cache_bytes(model_config: ModelConfig, prompts: int, bucket: int, rows: int, m: int) -> int:
    """Bytes of the static decoder's KV cache (module docstring)."""
    per_token = 2 * model_config.num_layers * model_config.num_kv_heads * model_config.head_dim
    itemsize = jnp.dtype(model_config.compute_dtype).itemsize
    return per_token * itemsize * (prompts * bucket + rows * max(m - 1, 1))


def generate(
    params,
    model_config: ModelConfig,
    config: SamplingConfig,
    tokens_PxS: jax.Array,
    mask_PxS: jax.Array,
    key: jax.Array,
    num_samples: int,
    limits_N: jax.Array,
    row_sharding: NamedSharding | None = None,
) -> output_lib.SampleOutput:
    """Samples ``num_samples`` completions per left-padded prompt (pure; jit it).

    Args:
      tokens_PxS: left-padded prompt ids; mask_PxS: 1 on real prompt tokens.
      limits_N: [N] int32 length limit of each row (<= max_new_tokens).
      row_sharding: optional sharding of [N, ...] arrays (rows over the batch mesh axes).
    """
    p, _ = tokens_PxS.shape
    g, m = num_samples, config.max_new_tokens
    n = p * g

    def constrain_rows(x, axis=0):
        if row_sharding is None:
            return x
        spec = [None] * x.ndim
        spec[axis] = row_sharding.spec[0]
        return jax.lax.with_sharding_constraint(
            x, NamedSharding(row_sharding.mesh, PartitionSpec(*spec))
        )

    last_logits_PxV, cache = transformer.prefill(
        params, model_config, tokens_PxS, mask_PxS, g, max(m - 1, 1)
    )
    cache = cache.replace(k=constrain_rows(cache.k, 1), v=constrain_rows(cache.v, 1))
    prompt_lengths_N = jnp.repeat(mask_PxS.astype(jnp.int32).sum(-1), g)
    rows = jnp.arange(n, dtype=jnp.int32)
    first, first_logprob = sample_tokens(
        constrain_rows(jnp.repeat(last_logits_PxV, g, axis=0)),
        sample_uniforms(key, rows, jnp.zeros((n,), jnp.int32)),
        config,
    )
    stopped = is_stop(first, config.stop_ids)
    state = StaticState(
        step=jnp.ones((), jnp.int32),
        tokens=constrain_rows(jnp.full((n, m), config.pad_id, jnp.int32).at[:, 0].set(first)),
        logprobs=jnp.zeros((n, m), jnp.float32).at[:, 0].set(first_logprob),
        done=stopped | (limits_N <= 1),
        stopped=stopped,
        lengths=jnp.ones((n,), jnp.int32),
        cache=cache,
    )

    def not_finished(state: StaticState) -> jax.Array:
        return (state.step < m) & ~jnp.all(state.done)

    def decode_one(state: StaticState) -> StaticState:
        fed = jax.lax.dynamic_slice_in_dim(state.tokens, state.step - 1, 1, axis=1)
        positions = (prompt_lengths_N + state.step - 1)[:, None]
        logits, cache = transformer.decode_step(params, model_config, fed, positions, state.cache)
        uniforms = sample_uniforms(key, rows, jnp.full((n,), state.step, jnp.int32))
        token, logprob = sample_tokens(logits[:, 0], uniforms, config)
        token = jnp.where(state.done, config.pad_id, token)
        logprob = jnp.where(state.done, 0.0, logprob)
        stop = ~state.done & is_stop(token, config.stop_ids)
        lengths = state.lengths + (~state.done).astype(jnp.int32)
        return state.replace(
            step=state.step + 1,
            tokens=jax.lax.dynamic_update_slice_in_dim(
                state.tokens, token[:, None], state.step, axis=1
            ),
            logprobs=jax.lax.dynamic_update_slice_in_dim(
                state.logprobs, logprob[:, None], state.step, axis=1
            ),
            done=state.done | stop | (lengths >= limits_N),
            stopped=state.stopped | stop,
            lengths=lengths,
            cache=cache,
        )

    state = jax.lax.while_loop(not_finished, decode_one, state)
    return output_lib.assemble(
        jnp, tokens_PxS, mask_PxS, g, state.tokens, state.lengths, state.logprobs, state.stopped
    )
