"""One decoder layer of the Qwen2 / Llama family, and the modules it is made of.

`DecoderLayer`: pre-norm attention then a pre-norm SwiGLU MLP, each added to the residual
stream. `Attention` projects, rotates (`coderl_jax.models.rope`) and hands the queries to
the attention of the calling mode (`coderl_jax.models.attention`, `.fused_attention`,
`.paged_kv`); `transformer.Transformer` stacks the layers with ``nn.scan``. Every weight
carries logical axis names (`coderl_jax.parallel.mesh` maps them to mesh axes), is stored
in ``param_dtype`` and cast to ``compute_dtype`` where it is used.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from coderl_jax.models.attention import cached_attention, self_attention
from coderl_jax.models.config import ModelConfig
from coderl_jax.models.fused_attention import fused_causal_attention
from coderl_jax.models.paged_kv import PageWork, paged_attention
from coderl_jax.models.rope import apply_rope
from coderl_jax.parallel.mesh import BATCH_AXES


def dtype_of(name: str) -> jnp.dtype:
    return jnp.dtype(name)


def _param(module: nn.Module, name, init, shape, axes, dtype):
    return module.param(name, nn.with_logical_partitioning(init, axes), shape, dtype)


weight_init = nn.initializers.normal(stddev=0.02)


def _kernel(module: nn.Module, config: ModelConfig, shape, axes) -> jax.Array:
    """The module's ``kernel`` parameter, cast to the compute dtype."""
    kernel = _param(module, "kernel", weight_init, shape, axes, dtype_of(config.param_dtype))
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


class Attention(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x_BTD, rope, mask, prefix, suffix, index):
        """Returns (output [B, T, D], this layer's (k, v) without a cache, the new suffix)."""
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
        new_kv, new_suffix = None, None
        if suffix is None and c.attention_impl != "xla":  # fused; `mask` holds row lengths
            out = fused_causal_attention(q, kk, vv, mask, c.attention_impl)
            new_kv = (kk, vv)
        else:
            q = q.reshape(b, t, k, h // k, dh) * jnp.asarray(dh**-0.5, q.dtype)
            if isinstance(mask, PageWork):  # paged decode: one new token per slot
                out, new_suffix = paged_attention(q[:, 0], kk[:, 0], vv[:, 0], suffix, mask)
            elif suffix is None:  # self-attention over the given tokens
                out, new_kv = self_attention(q, kk, vv, mask), (kk, vv)
            else:
                out, new_suffix = cached_attention(q, kk, vv, prefix, suffix, index, mask)
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


def rows_over_batch_axes(x_BTD: jax.Array) -> jax.Array:
    """Rows of no-cache activations over the mesh's batch axes, when traced under a mesh
    (`jax.set_mesh`; the train step and the scorers are). Weights sharded over ``fsdp``
    (the batch axis that also splits the rows) leave XLA two ways to compute a layer: gather
    each layer's weights, or gather every row's activations to every device; the second,
    which it picks unconstrained, makes every device hold the whole micro-batch's
    activations (measured at the 7B shape on 8 devices: 8x the activations). Decoding
    (one token per row) is left to XLA: there gathering the small activations is right."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or not set(BATCH_AXES) <= set(mesh.axis_names):
        return x_BTD
    if x_BTD.shape[0] % math.prod(mesh.shape[a] for a in BATCH_AXES):
        return x_BTD  # rows that do not split evenly: XLA's choice
    return jax.lax.with_sharding_constraint(x_BTD, PartitionSpec(BATCH_AXES))


class DecoderLayer(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, carry, context, prefix):
        """carry = (x [B, T, D], suffix cache (all layers' k, v and this layer's index) or None);
        returns (carry, this layer's (k, v) in no-cache mode else None)."""
        x_BTD, suffix = carry
        rope, mask, index = context
        no_cache = suffix is None
        if no_cache:
            x_BTD = rows_over_batch_axes(x_BTD)
        attn_out, new_kv, suffix = Attention(self.config, name="attn")(
            RMSNorm(self.config, name="input_norm")(x_BTD), rope, mask, prefix, suffix, index
        )
        x_BTD = x_BTD + attn_out
        if no_cache:
            x_BTD = rows_over_batch_axes(x_BTD)
        x_BTD = x_BTD + MLP(self.config, name="mlp")(
            RMSNorm(self.config, name="post_attn_norm")(x_BTD)
        )
        return (x_BTD, suffix), new_kv
