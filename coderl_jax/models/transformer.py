"""Qwen2 / Llama-family decoder (Flax Linen) with an explicit, shared-prefix KV cache.

One implementation covers Qwen2/Qwen2.5(-Coder) (q/k/v biases) and Llama 3.x (llama3 RoPE
scaling): RMSNorm, rotary embeddings, grouped-query attention, SwiGLU MLP, tied or untied
embeddings. The layer itself is `coderl_jax.models.layers.DecoderLayer`; the layers are
stacked here with ``nn.scan`` (one compiled layer, a leading ``layers`` axis on every layer
weight); every weight carries logical axis names that `coderl_jax.parallel.mesh` maps to
mesh axes.

Shape letters: B batch rows, T new tokens, S key positions, D hidden, H query heads, K kv
heads, Q = H // K query heads per kv head, Dh head dim, F MLP width, V vocab, L layers,
P prompt rows, G samples per prompt, N = P * G sampled rows.

Three ways to call the model (`Transformer.__call__`; the attention of each is in
`coderl_jax.models.attention`):

* No cache (training, scoring, prefill): causal self-attention over ``tokens_BxT`` with a
  padding mask, so left-padded batches work; ``return_kv=True`` also returns every layer's
  keys and values, which become the *prefix* of a `KVCache`.
* With a `KVCache` (static decoding): T new tokens per row over a shared prompt prefix and
  the rows' own generated keys (`prefill`, `decode_step`).
* With a `coderl_jax.models.paged_kv.PagedKVCache` and a ``PageWork`` (continuous decoding):
  one new token per slot; each slot reads only the pages it has filled (prompt pages
  shared), so a step costs the slots' real lengths (`paged_decode_step`).

No-cache attention has several implementations (``ModelConfig.attention_impl``): "xla", an
einsum with an explicit [B, T, S] mask and fp32 softmax (any padding, any backend; saves
the T x S probabilities for the backward), and the fused path ("cudnn": cuDNN flash
attention on GPU; "xla_fused": the same contract on jax's XLA reference, for CPU tests;
"xla_blocked": the flash recurrence in plain XLA, cuDNN's memory on any backend).
The fused path takes row lengths, not a mask, so it requires *right-aligned* rows: each
row's real tokens are columns ``[0, length)`` (`coderl_jax.rl.batch.right_align`
converts a left-padded batch). A row that breaks this contract gets NaN hidden states
rather than silently wrong ones. The fused path's padding queries output 0, unlike the
einsum's (which attend to the real keys before them); only real positions agree, and
only those are ever read. `prefill` (left-padded prompts) always uses the einsum.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from coderl_jax.models.attention import KVCache
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.fused_attention import right_aligned_lengths
from coderl_jax.models.layers import DecoderLayer, RMSNorm, dtype_of, weight_init
from coderl_jax.models.paged_kv import PagedKVCache, PageWork
from coderl_jax.models.rope import (  # noqa: F401 (re-exported: callers use them from here)
    positions_from_mask,
    rope_inverse_frequencies,
    rope_tables,
)

Params = Any


_REMAT_POLICIES = {
    "full": None,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Transformer(nn.Module):
    """The decoder: embedding, the scanned `DecoderLayer` stack, final norm, unembedding.
    See the module docstring for the calling modes."""

    config: ModelConfig

    def setup(self):
        c = self.config
        pdt = dtype_of(c.param_dtype)
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(weight_init, ("vocab", "embed")),
            (c.vocab_size, c.hidden_size),
            pdt,
        )
        layer_cls = DecoderLayer
        if c.remat_policy != "none":
            layer_cls = nn.remat(
                DecoderLayer, prevent_cse=False, policy=_REMAT_POLICIES[c.remat_policy]
            )
        self.layers = nn.scan(
            layer_cls,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=(nn.broadcast, 0),
            length=c.num_layers,
            unroll=c.scan_unroll or c.num_layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )(c, name="layers")
        self.final_norm = RMSNorm(c)
        if not c.tie_word_embeddings:
            self.lm_head = self.param(
                "lm_head",
                nn.with_logical_partitioning(weight_init, ("embed", "vocab")),
                (c.hidden_size, c.vocab_size),
                pdt,
            )

    def unembedding(self) -> jax.Array:
        """[D, V] output projection (the embedding's transpose when tied)."""
        return self.embedding.T if self.config.tie_word_embeddings else self.lm_head

    def __call__(
        self,
        tokens_BxT: jax.Array,
        positions_BxT: jax.Array,
        mask_BxT: jax.Array | None = None,
        cache: KVCache | PagedKVCache | None = None,
        output: str = "logits",
        return_kv: bool = False,
        page_work: PageWork | None = None,
    ):
        """Runs the decoder.

        Args:
          tokens_BxT: int token ids.
          positions_BxT: RoPE positions (`positions_from_mask` for a left-padded batch).
          mask_BxT: 1 for real tokens, 0 for padding (no-cache mode only; default all 1).
            With a fused ``attention_impl`` rows must be right-aligned (module docstring).
          cache: decode mode when given (see module docstring).
          output: "logits" ([B, T, V] float32) or "hidden" (final-normed hidden [B, T, D]).
          return_kv: no-cache mode: also return (k, v), each [L, B, T, K, Dh].
          page_work: with a `PagedKVCache`: this step's addressing (T must be 1).

        Returns:
          ``out`` alone; ``(out, (k, v))`` with return_kv; ``(out, new_cache)`` with a cache.
        """
        c = self.config
        cdt = dtype_of(c.compute_dtype)
        x = jnp.take(self.embedding, tokens_BxT, axis=0).astype(cdt)
        rope = rope_tables(c, positions_BxT)
        t = tokens_BxT.shape[1]
        causal_TxT = jnp.tril(jnp.ones((t, t), bool))
        if cache is None:
            if mask_BxT is None:
                mask_BxT = jnp.ones(tokens_BxT.shape, bool)
            if c.attention_impl == "xla":
                mask = causal_TxT[None] & mask_BxT.astype(bool)[:, None, :]  # [B, T(q), S(k)]
            else:
                if c.attention_impl == "cudnn" and jax.default_backend() != "gpu":
                    raise ValueError(
                        f"attention_impl='cudnn' needs a GPU, but jax's backend is "
                        f"{jax.default_backend()!r}; use attention_impl='xla'"
                    )
                mask, aligned_B = right_aligned_lengths(mask_BxT)
            (x, _), kv = self.layers((x, None), (rope, mask, None), None)
            if c.attention_impl != "xla":
                # Contract of the fused path: a row that is not right-aligned would be
                # silently wrong, so its hidden states become NaN, which the train step's
                # finite check (train/nonfinite) reports. Aligned rows are untouched.
                x = jnp.where(aligned_B[:, None, None], x, jnp.asarray(jnp.nan, x.dtype))
        elif isinstance(cache, PagedKVCache):
            if page_work is None or t != 1:
                raise ValueError("a PagedKVCache needs page_work and one new token per row")
            suffix = (cache.k, cache.v, jnp.zeros((), jnp.int32))
            (x, (new_k, new_v, _)), _ = self.layers((x, suffix), (rope, page_work, None), None)
            kv = None
            cache = cache.replace(k=new_k, v=new_v)
        else:
            g = cache.num_samples
            prefix_mask = jnp.repeat(cache.prefix_mask, g, axis=0)[:, None, None, None, :]
            slots = jnp.arange(cache.k.shape[3])
            suffix_mask = slots[None, :] <= cache.index + jnp.arange(t)[:, None]  # [T, Ss]
            mask = (prefix_mask, suffix_mask[None, None, None])
            suffix = (cache.k, cache.v, jnp.zeros((), jnp.int32))
            (x, (new_k, new_v, _)), _ = self.layers(
                (x, suffix), (rope, mask, cache.index), (cache.prefix_k, cache.prefix_v)
            )
            kv = None
            cache = cache.replace(k=new_k, v=new_v, index=cache.index + t)
        x = self.final_norm(x)
        if output == "hidden":
            out = x
        elif output == "logits":
            out = jnp.einsum(
                "btd,dv->btv", x, self.unembedding().astype(cdt), preferred_element_type=jnp.float32
            )
        else:
            raise ValueError(f"output must be 'logits' or 'hidden', got {output!r}")
        if cache is not None:
            return out, cache
        return (out, kv) if return_kv else out


def init_params(config: ModelConfig, rng: jax.Array) -> Params:
    """Random parameters (unboxed pytree). Use `jax.eval_shape` on it for abstract shapes."""
    tokens = jnp.zeros((1, 1), jnp.int32)
    # Parameters do not depend on the attention implementation; the einsum runs anywhere.
    variables = Transformer(config.replace(attention_impl="xla")).init(rng, tokens, tokens)
    return nn.meta.unbox(variables["params"])


def param_logical_axes(config: ModelConfig) -> Params:
    """Pytree (like the params) of `jax.sharding.PartitionSpec` of logical axis names."""
    tokens = jnp.zeros((1, 1), jnp.int32)
    model = Transformer(config.replace(attention_impl="xla"))
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), tokens, tokens))
    return nn.get_partition_spec(abstract)["params"]


def unembedding(params: Params, config: ModelConfig) -> jax.Array:
    """[D, V] output projection from a params pytree."""
    return params["embedding"].T if config.tie_word_embeddings else params["lm_head"]


def forward(params: Params, config: ModelConfig, tokens_BxT, mask_BxT=None, **kwargs):
    """Convenience: no-cache call with positions derived from the mask (0 at each row's first
    real token; right-aligned rows as a fused ``attention_impl`` requires are fine too)."""
    if mask_BxT is None:
        mask_BxT = jnp.ones(tokens_BxT.shape, jnp.int32)
    positions = positions_from_mask(mask_BxT)
    return Transformer(config).apply({"params": params}, tokens_BxT, positions, mask_BxT, **kwargs)


def prefill_kv(
    params: Params, config: ModelConfig, tokens_PxT: jax.Array, mask_PxT: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Runs left-padded prompts once: (last-position logits [P, V] float32, k, v), k and v
    [L, P, T, K, Dh] in the compute dtype (padding columns hold unused values)."""
    positions = positions_from_mask(mask_PxT)
    # Prompts are left-padded (the last column is every prompt's last token), which the fused
    # path's length-based masking cannot express; prefill is one pass, decoding dominates.
    config = config.replace(attention_impl="xla")
    # Logits of the last position only: [P, T, V] logits would dwarf the cache at a 150k vocab.
    hidden, (k, v) = Transformer(config).apply(
        {"params": params}, tokens_PxT, positions, mask_PxT, output="hidden", return_kv=True
    )
    cdt = dtype_of(config.compute_dtype)
    last_logits = jnp.einsum(
        "pd,dv->pv",
        hidden[:, -1],
        unembedding(params, config).astype(cdt),
        preferred_element_type=jnp.float32,
    )
    return last_logits, k, v


def prefill(
    params: Params,
    config: ModelConfig,
    tokens_PxT: jax.Array,
    mask_PxT: jax.Array,
    num_samples: int,
    max_new_tokens: int,
) -> tuple[jax.Array, KVCache]:
    """Runs the prompts once and builds a dense cache for ``num_samples`` continuations each.

    Returns the logits of each prompt's last position [P, V] (float32) and a `KVCache` with
    N = P * num_samples rows and room for ``max_new_tokens`` generated tokens.
    """
    last_logits, k, v = prefill_kv(params, config, tokens_PxT, mask_PxT)
    n = tokens_PxT.shape[0] * num_samples
    suffix_shape = (config.num_layers, n, config.num_kv_heads, max_new_tokens, config.head_dim)
    cache = KVCache(
        prefix_k=jnp.swapaxes(k, 2, 3),  # [L, P, T, K, Dh] -> [L, P, K, T, Dh]
        prefix_v=jnp.swapaxes(v, 2, 3),
        prefix_mask=mask_PxT.astype(bool),
        k=jnp.zeros(suffix_shape, k.dtype),
        v=jnp.zeros(suffix_shape, v.dtype),
        index=jnp.zeros((), jnp.int32),
    )
    return last_logits, cache


def decode_step(
    params: Params,
    config: ModelConfig,
    tokens_NxT: jax.Array,
    positions_NxT: jax.Array,
    cache: KVCache,
) -> tuple[jax.Array, KVCache]:
    """Feeds T new tokens per row (usually T = 1); returns logits [N, T, V] and the cache."""
    return Transformer(config).apply({"params": params}, tokens_NxT, positions_NxT, cache=cache)


def paged_decode_step(
    params: Params,
    config: ModelConfig,
    tokens_S: jax.Array,
    positions_S: jax.Array,
    cache: PagedKVCache,
    work: PageWork,
) -> tuple[jax.Array, PagedKVCache]:
    """Feeds one token per slot through a paged cache; returns logits [S, V] and the cache."""
    logits, cache = Transformer(config).apply(
        {"params": params}, tokens_S[:, None], positions_S[:, None], cache=cache, page_work=work
    )
    return logits[:, 0], cache
