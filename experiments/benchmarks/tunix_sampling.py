"""Tunix's rollout sampler on our config, weights and prompts: a column of sampling_long_tail.py.

Tunix (google-tunix) samples with ``tunix.generate.sampler.Sampler``: a dense KV cache of
``cache_size`` positions per row, a jitted prefill, then a `lax.while_loop` that decodes
every row until all rows hit an end id or the step limit. It takes strings and a
tokenizer; our prompts are token ids, so a minimal tokenizer maps "3 17 5" <-> ids, and
no end id is ever drawn (the end id is outside the vocabulary), so each batch decodes
exactly as many steps as its step limit.

Tunix has no per-row length limit and no shared prompt prefix: a batch of R rows (each
prompt repeated G times) runs until its longest drawn length. Its public ``__call__``
sizes the token buffer by ``max_generation_steps``, which would compile once per batch;
to compile once, the state is built for the longest possible run and its step limit set
to the batch's longest drawn length (the same while-loop bound ``__call__`` would give).
The weights are ours, written as a HF safetensors directory and read by Tunix's own Qwen2
loader (as in tunix_grpo.py).
"""

from __future__ import annotations

import dataclasses
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models import hf_io
from coderl_jax.models.config import ModelConfig
from experiments.benchmarks import tunix_grpo  # registers the tunix package (see there)


class IdsTokenizer:
    """Token ids written as text: what Tunix's sampler needs of a tokenizer."""

    def __init__(self, pad_id: int, eos_id: int):
        self._pad, self._eos = pad_id, eos_id

    def encode(self, text: str, **_) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids, **_) -> str:
        return " ".join(str(int(t)) for t in ids)

    def bos_id(self) -> int:
        return 0  # falsy: Tunix adds no BOS

    def eos_id(self) -> int:
        return self._eos

    def pad_id(self) -> int:
        return self._pad


def prepare(model_config: ModelConfig, params, prompt_width: int, max_new_tokens: int):
    """Tunix's sampler on our weights; returns ``run(rows, steps, seed)``.

    ``run`` samples ``steps`` tokens (temperature 1, no top-p filter: top_p=1.0) for each of
    ``rows`` (token-id lists) and blocks until done; it returns the generated ids [R, steps].
    Cache: prompt_width + max_new_tokens positions per row.
    """
    from tunix.generate import sampler as tunix_sampler  # after tunix_grpo's registration

    with tempfile.TemporaryDirectory() as hf_dir:
        device_params = jax.tree.map(jnp.asarray, params)
        hf_io.save_pretrained(hf_dir, model_config.replace(param_dtype="float32"), device_params)
        model = tunix_grpo.qwen2_params.create_model_from_safe_tensors(
            hf_dir, tunix_grpo.tunix_config(model_config)
        )
    cache = tunix_sampler.CacheConfig(
        cache_size=prompt_width + max_new_tokens,
        num_layers=model_config.num_layers,
        num_kv_heads=model_config.num_kv_heads,
        head_dim=model_config.head_dim,
    )
    tokenizer = IdsTokenizer(pad_id=0, eos_id=model_config.vocab_size)
    sampler = tunix_sampler.Sampler(model, tokenizer, cache)
    sampler.eos_ids = jnp.asarray([model_config.vocab_size])

    def run(rows: list[list[int]], steps: int, seed: int = 0) -> np.ndarray:
        ids = np.zeros((len(rows), prompt_width), np.int32)
        for r, row in enumerate(rows):
            ids[r, prompt_width - len(row) :] = row
        state = sampler.init_sample_state(
            jnp.asarray(ids),
            total_sampling_steps=prompt_width + max_new_tokens,
            include_logits=False,
            forbidden_token_ids=None,
            temperature=1.0,
            top_p=1.0,
            top_k=None,
            seed=jax.random.key(seed),
            beam_size=None,
        )
        state = dataclasses.replace(state, total_sampling_steps=prompt_width + steps)
        state = sampler._compiled_prefill_fn(sampler._flattened_transformer_state, state, None)
        state = sampler._compiled_decode_fn(sampler._flattened_transformer_state, state)
        tokens = np.asarray(state.token_buffer)
        return tokens[:, prompt_width : prompt_width + steps]

    return run


def cache_bytes(model_config: ModelConfig, rows: int, prompt_width: int, max_new: int) -> int:
    """Bytes of Tunix's dense KV cache for ``rows`` rows."""
    per_token = 2 * model_config.num_layers * model_config.num_kv_heads * model_config.head_dim
    itemsize = jnp.dtype(model_config.compute_dtype).itemsize
    return per_token * itemsize * rows * (prompt_width + max_new)
