"""Rotary position embeddings (RoPE) of Qwen2 / Llama checkpoints, with llama3 scaling.

Positions count real tokens: 0 at each row's first real token (`positions_from_mask`), so
left-padded prompts and right-aligned training rows get the positions HF gives them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models.config import ModelConfig


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
