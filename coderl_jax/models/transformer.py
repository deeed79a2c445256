"""Qwen2 / Llama-family decoder (Flax Linen) with an explicit, shared-prefix KV cache.

One implementation covers Qwen2/Qwen2.5(-Coder) (q/k/v biases) and Llama 3.x (llama3 RoPE
scaling): RMSNorm, rotary embeddings, grouped-query attention, SwiGLU MLP, tied or untied
embeddings. Layers are stacked with ``nn.scan`` (one compiled layer, a leading ``layers``
axis on every layer weight); every weight carries logical axis names that `coderl_jax.parallel.mesh`
maps to mesh axes.

Shape letters: B batch rows, T new tokens, S key positions, D hidden, H query heads, K kv
heads, Q = H // K query heads per kv head, Dh head dim, F MLP width, V vocab, L layers,
P prompt rows, G samples per prompt, N = P * G sampled rows.

Two ways to call the model (`Transformer.__call__`):

* No cache (training, scoring, prefill): causal self-attention over ``tokens_BxT`` with a
  padding mask, so left-padded batches work; ``return_kv=True`` also returns every layer's
  keys and values, which become the *prefix* of a `KVCache`.
* With a `KVCache` (static decoding): the new tokens of N = P * G rows attend to the prompt
  keys of their prompt row (stored once per prompt and shared by its G samples, never
  copied G times) and to the rows' own generated keys, which are written at ``cache.index``.
* With a `coderl_jax.models.paged_kv.PagedKVCache` and a ``PageWork`` (continuous decoding):
  one new token per slot; each slot reads only the pages it has filled (prompt pages
  shared), so a step costs the slots' real lengths (`paged_decode_step`).

No-cache attention has two implementations (``ModelConfig.attention_impl``): "xla", an
einsum with an explicit [B, T, S] mask and fp32 softmax (any padding, any backend; saves
the T x S probabilities for the backward), and the fused path ("cudnn": cuDNN flash
attention on GPU; "xla_fused": the same contract on jax's XLA reference, for CPU tests).
cuDNN takes row lengths, not a mask, so the fused path requires *right-aligned* rows: each
row's real tokens are columns ``[0, length)`` (`coderl_jax.rl.batch.right_align`
converts a left-padded batch). A row that breaks this contract gets NaN hidden states
rather than silently wrong ones. The fused path's padding queries output 0, unlike the
einsum's (which attend to the real keys before them); only real positions agree, and
only those are ever read. `prefill` (left-padded prompts) always uses the einsum.

Decode performance: the generated-token cache travels through the layer scan as part of
the carry and each layer writes only its T new slots in place (as xs -> ys it would be
rewritten whole every step), and caches keep kv heads before slots ([..., K, S, Dh]) so
the attention matmuls batch over (row, kv head) without transposing the cache.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models.config import ModelConfig
from coderl_jax.models.fused_attention import fused_causal_attention, right_aligned_lengths
from coderl_jax.models.paged_kv import (
    PagedKVCache,
    PageWork,
    ragged_decode_attention,
    write_token,
)

Params = Any
_MASKED = float(np.finfo(np.float32).min)


@flax.struct.dataclass
class KVCache:
    """Keys/values for decoding: a prompt prefix shared by G samples plus per-row suffix.

    Memory: 2 * L * (P * Sp + N * Ss) * K * Dh * bytes(compute dtype).
    """

    prefix_k: jax.Array  # [L, P, K, Sp, Dh]
    prefix_v: jax.Array  # [L, P, K, Sp, Dh]
    prefix_mask: jax.Array  # [P, Sp] bool: real (non-padding) prompt tokens
    k: jax.Array  # [L, N, K, Ss, Dh]: keys of generated tokens
    v: jax.Array  # [L, N, K, Ss, Dh]
    index: jax.Array  # int32 scalar: next slot of k/v to write

    @property
    def num_samples(self) -> int:
        return self.k.shape[1] // self.prefix_k.shape[1]


def dtype_of(name: str) -> jnp.dtype:
    return jnp.dtype(name)


def positions_from_mask(mask_BxT: jax.Array) -> jax.Array:
    """RoPE positions of a left-padded batch: 0 at each row's first real token."""
    return jnp.maximum(jnp.cumsum(mask_BxT.astype(jnp.int32), axis=-1) - 1, 0)


def rope_inverse_frequencies(config: ModelConfig) -> np.ndarray:
    """[Dh/2] inverse frequencies (float32), with llama3 scaling when configured."""
    dh = config.head_dim
    exponents = np.arange(0, dh, 2, dtype=np.int64).astype(np.float32) / dh
    inv_freq = (1.0 / (np.float32(config.rope_theta) ** exponents)).astype(np.float32)
    scaling = config.rope_scaling
    if scaling is None or scaling.get("rope_type", "default") == "default":
        return inv_freq
    # llama3: long wavelengths are slowed by `factor`, short ones kept, a smooth ramp between
    # (Meta's Llama 3.1 reference implementation).
    factor = scaling["factor"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_len = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = (wavelen >= old_len / high) & (wavelen <= old_len / low)
    return np.where(is_medium, smoothed, scaled).astype(np.float32)


def rope_tables(config: ModelConfig, positions_BxT: jax.Array) -> tuple[jax.Array, jax.Array]:
    """cos, sin tables [B, T, Dh/2] (float32) for the given positions: one angle per pair."""
    inv_freq = jnp.asarray(rope_inverse_frequencies(config))
    angles = positions_BxT.astype(jnp.float32)[..., None] * inv_freq
    return jnp.cos(angles), jnp.sin(angles)


def apply_rope(x_BTHD: jax.Array, cos_BTd: jax.Array, sin_BTd: jax.Array) -> jax.Array:
    """Rotates pairs (i, i + Dh/2) (the "rotate half" layout of HF Qwen2/Llama weights) by the
    half-width tables of `rope_tables` (half the trigonometry and multiplies of full-width
    tables with a rotated copy of x)."""
    x = x_BTHD.astype(jnp.float32)
    half = x.shape[-1] // 2
    first, second = x[..., :half], x[..., half:]
    cos, sin = cos_BTd[:, :, None, :], sin_BTd[:, :, None, :]
    out = jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return out.astype(x_BTHD.dtype)


def _param(module: nn.Module, name, init, shape, axes, dtype):
    return module.param(name, nn.with_logical_partitioning(init, axes), shape, dtype)


_weight_init = nn.initializers.normal(stddev=0.02)


def _kernel(module: nn.Module, config: ModelConfig, shape, axes) -> jax.Array:
    """The module's ``kernel`` parameter, cast to the compute dtype."""
    kernel = _param(module, "kernel", _weight_init, shape, axes, dtype_of(config.param_dtype))
    return kernel.astype(dtype_of(config.compute_dtype))


class RMSNorm(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = _param(
            self,
            "scale",
            nn.initializers.ones,
            (x.shape[-1],),
            ("norm",),
            dtype_of(self.config.param_dtype),
        )
        x32 = x.astype(jnp.float32)
        x32 = x32 * jax.lax.rsqrt(
            jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.config.rms_norm_eps
        )
        return (scale.astype(jnp.float32) * x32).astype(x.dtype)


class Projection(nn.Module):
    """x @ W (+ b) with W of shape ``in_shape + out_shape`` contracted over ``in_shape``."""

    config: ModelConfig
    shape: tuple[int, ...]
    axes: tuple[str, ...]
    num_in: int  # leading dims of `shape` that are contracted
    use_bias: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cdt = dtype_of(self.config.compute_dtype)
        kernel = _kernel(self, self.config, self.shape, self.axes)
        contract = tuple(range(x.ndim - self.num_in, x.ndim)), tuple(range(self.num_in))
        y = jax.lax.dot_general(x.astype(cdt), kernel, (contract, ((), ())))
        if self.use_bias:
            out_shape, out_axes = self.shape[self.num_in :], self.axes[self.num_in :]
            pdt = dtype_of(self.config.param_dtype)
            bias = _param(self, "bias", nn.initializers.zeros, out_shape, out_axes, pdt)
            y = y + bias.astype(cdt)
        return y


class Kernel(nn.Module):
    """A bare ``kernel`` parameter (compute dtype), for matmuls that use several at once."""

    config: ModelConfig
    shape: tuple[int, ...]
    axes: tuple[str, ...]

    @nn.compact
    def __call__(self) -> jax.Array:
        return _kernel(self, self.config, self.shape, self.axes)


def _kv_heads_last(out_BKQTD: jax.Array) -> jax.Array:
    # XLA:CPU runs probs @ values several times faster when the output keeps the batch dims
    # (row, kv head) leading; the transpose back is on the small output.
    return jnp.transpose(out_BKQTD, (0, 3, 1, 2, 4))


def _attention_probs(scores: jax.Array, mask: jax.Array) -> jax.Array:
    return jax.nn.softmax(jnp.where(mask, scores, _MASKED), axis=-1)


class Attention(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x_BTD, rope, mask, prefix, suffix, index):
        c = self.config
        d, h, k, dh = c.hidden_size, c.num_heads, c.num_kv_heads, c.head_dim
        q = Projection(
            c, (d, h, dh), ("embed", "heads", "head_dim"), 1, c.attention_bias, name="q_proj"
        )(x_BTD)
        kk = Projection(
            c, (d, k, dh), ("embed", "kv_heads", "head_dim"), 1, c.attention_bias, name="k_proj"
        )(x_BTD)
        vv = Projection(
            c, (d, k, dh), ("embed", "kv_heads", "head_dim"), 1, c.attention_bias, name="v_proj"
        )(x_BTD)
        cos, sin = rope
        q, kk = apply_rope(q, cos, sin), apply_rope(kk, cos, sin)
        b, t = x_BTD.shape[:2]
        if suffix is None and c.attention_impl != "xla":  # fused; `mask` holds row lengths
            out = fused_causal_attention(q, kk, vv, mask, c.attention_impl)
            y = Projection(c, (h, dh, d), ("heads", "head_dim", "embed"), 2, name="o_proj")(out)
            return y, (kk, vv), None
        q = q.reshape(b, t, k, h // k, dh) * jnp.asarray(dh**-0.5, q.dtype)
        f32 = jnp.float32
        if isinstance(mask, PageWork):  # paged decode: one new token per slot
            all_k, all_v, layer = suffix  # [L, pages, K, page_size, Dh]
            all_k = write_token(all_k, layer, mask, kk[:, 0])
            all_v = write_token(all_v, layer, mask, vv[:, 0])
            out = ragged_decode_attention(q[:, 0], all_k, all_v, layer, mask)
            y = Projection(c, (h, dh, d), ("heads", "head_dim", "embed"), 2, name="o_proj")(
                out.reshape(b, t, h, dh)
            )
            return y, None, (all_k, all_v, layer + 1)
        if suffix is None:  # self-attention over the given tokens
            scores = jnp.einsum("btkqd,bskd->bkqts", q, kk, preferred_element_type=f32)
            probs = _attention_probs(scores, mask[:, None, None]).astype(vv.dtype)
            out = _kv_heads_last(jnp.einsum("bkqts,bskd->bkqtd", probs, vv))
            new_kv, new_suffix = (kk, vv), None
        else:
            pk, pv = prefix  # [P, K, Sp, Dh]
            all_k, all_v, layer = suffix  # [L, N, K, Ss, Dh]
            start = (layer, 0, 0, index, 0)
            new_k = jnp.swapaxes(kk, 1, 2).astype(all_k.dtype)[None]  # [1, N, K, T, Dh]
            all_k = jax.lax.dynamic_update_slice(all_k, new_k, start)
            new_v = jnp.swapaxes(vv, 1, 2).astype(all_v.dtype)[None]
            all_v = jax.lax.dynamic_update_slice(all_v, new_v, start)
            ck = jax.lax.dynamic_index_in_dim(all_k, layer, keepdims=False)  # [N, K, Ss, Dh]
            cv = jax.lax.dynamic_index_in_dim(all_v, layer, keepdims=False)
            p, sp = pk.shape[0], pk.shape[2]
            g = b // p
            qg = q.reshape(p, g, t, k, h // k, dh)
            s_prefix = jnp.einsum("pgtkqd,pksd->pgkqts", qg, pk, preferred_element_type=f32)
            s_prefix = s_prefix.reshape(b, k, h // k, t, sp)
            s_suffix = jnp.einsum("btkqd,bksd->bkqts", q, ck, preferred_element_type=f32)
            prefix_mask, suffix_mask = mask
            probs = jax.nn.softmax(
                jnp.concatenate(
                    [
                        jnp.where(prefix_mask, s_prefix, _MASKED),
                        jnp.where(suffix_mask, s_suffix, _MASKED),
                    ],
                    axis=-1,
                ),
                axis=-1,
            ).astype(cv.dtype)
            pp = probs[..., :sp].reshape(p, g, k, h // k, t, sp)
            out = jnp.einsum("pgkqts,pksd->pgkqtd", pp, pv).reshape(b, k, h // k, t, dh)
            out = _kv_heads_last(out + jnp.einsum("bkqts,bksd->bkqtd", probs[..., sp:], cv))
            new_kv, new_suffix = None, (all_k, all_v, layer + 1)
        out = out.reshape(b, t, h, dh)
        y = Projection(c, (h, dh, d), ("heads", "head_dim", "embed"), 2, name="o_proj")(out)
        return y, new_kv, new_suffix


class MLP(nn.Module):
    """SwiGLU. The gate and up projections run as one matmul against their kernels stacked
    to [D, 2, F] (each kept as its own HF-layout parameter; the stack adds an unsharded
    axis, so tensor parallelism over F needs no communication): one pass over x in the
    forward and for each gradient (the decoder's forward+backward on the CPU benchmark's
    tiny and 5M configs: 1.12x two separate matmuls, together with the half-width RoPE)."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x_BTD):
        c = self.config
        d, f = c.hidden_size, c.intermediate_size
        gate_up_Dx2xF = jnp.stack(
            [
                Kernel(c, (d, f), ("embed", "mlp"), name="gate_proj")(),
                Kernel(c, (d, f), ("embed", "mlp"), name="up_proj")(),
            ],
            axis=1,
        )
        cdt = dtype_of(c.compute_dtype)
        gate_up = jnp.einsum("btd,dgf->btgf", x_BTD.astype(cdt), gate_up_Dx2xF)
        hidden = nn.silu(gate_up[..., 0, :]) * gate_up[..., 1, :]
        return Projection(c, (f, d), ("mlp", "embed"), 1, name="down_proj")(hidden)


class DecoderLayer(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, carry, context, prefix):
        """carry = (x [B, T, D], suffix cache (all layers' k, v and this layer's index) or None);
        returns (carry, this layer's (k, v) in no-cache mode else None)."""
        x_BTD, suffix = carry
        rope, mask, index = context
        attn_out, new_kv, suffix = Attention(self.config, name="attn")(
            RMSNorm(self.config, name="input_norm")(x_BTD), rope, mask, prefix, suffix, index
        )
        x_BTD = x_BTD + attn_out
        x_BTD = x_BTD + MLP(self.config, name="mlp")(
            RMSNorm(self.config, name="post_attn_norm")(x_BTD)
        )
        return (x_BTD, suffix), new_kv


_REMAT_POLICIES = {
    "full": None,
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Transformer(nn.Module):
    """The decoder. See the module docstring for the two calling modes."""

    config: ModelConfig

    def setup(self):
        c = self.config
        pdt = dtype_of(c.param_dtype)
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(_weight_init, ("vocab", "embed")),
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
                nn.with_logical_partitioning(_weight_init, ("embed", "vocab")),
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
