"""What a sampler call returns: `SampleOutput` (all rows) and `FinishedSamples` (some rows,
handed to the host as soon as they finish).

Row n of a call is sample n % G of prompt n // G. The train-step layout (``tokens`` ..
``loss_mask``, width W = bucket + M) is the left-padded prompt followed by the completion
and its padding; ``loss_mask`` marks completion tokens (the stop token included, the
padding after it not).
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from coderl_jax.models.sampler.config import FINISH_LENGTH, FINISH_STOP


@flax.struct.dataclass
class SampleOutput:
    """Fixed-shape sampler output (device arrays from the static decoder, numpy otherwise)."""

    completion_tokens: jax.Array  # [N, M] int32, pad_id after the end
    completion_lengths: jax.Array  # [N] int32, stop token included
    logprobs: jax.Array  # [N, M] float32 log-prob of each sampled token (0 on padding)
    finish_reason: jax.Array  # [N] int32: FINISH_STOP or FINISH_LENGTH
    tokens: jax.Array  # [N, W] int32
    attention_mask: jax.Array  # [N, W] int32: 1 on real prompt and completion tokens
    positions: jax.Array  # [N, W] int32 RoPE positions (0 at the first real token)
    loss_mask: jax.Array  # [N, W] int32: 1 on completion tokens

    @property
    def prompt_width(self) -> int:
        """The bucket width: column of ``tokens`` where the completions start."""
        return self.tokens.shape[1] - self.completion_tokens.shape[1]

    def token_logprobs(self):
        """[N, W] behaviour log-probs aligned with ``tokens`` (0 on prompt columns)."""
        xp = np if isinstance(self.logprobs, np.ndarray) else jnp
        n = self.logprobs.shape[0]
        prompt = xp.zeros((n, self.prompt_width), self.logprobs.dtype)
        return xp.concatenate([prompt, self.logprobs], axis=1)


@flax.struct.dataclass
class FinishedSamples:
    """Samples that have just finished (host numpy), in no particular order."""

    index: np.ndarray  # [k] int: row n of the call (prompt n // G)
    completion_tokens: np.ndarray  # [k, M] int32, pad_id after the end
    completion_lengths: np.ndarray  # [k] int32
    logprobs: np.ndarray  # [k, M] float32
    finish_reason: np.ndarray  # [k] int32


def assemble(xp, tokens_PxS, mask_PxS, num_samples, completion, lengths, logprobs, stopped):
    """The `SampleOutput` of completions [N, M] of left-padded prompts ([P, S], G each).

    ``xp`` is numpy (host assembly) or jax.numpy (inside a jitted decoder).
    """
    n, m = completion.shape
    completion_mask = (xp.arange(m)[None, :] < lengths[:, None]).astype(xp.int32)
    prompt_mask = xp.repeat(mask_PxS.astype(xp.int32), num_samples, axis=0)
    attention_mask = xp.concatenate([prompt_mask, completion_mask], axis=1)
    prompt_tokens = xp.repeat(tokens_PxS.astype(xp.int32), num_samples, axis=0)
    return SampleOutput(
        completion_tokens=completion.astype(xp.int32),
        completion_lengths=lengths.astype(xp.int32),
        logprobs=logprobs.astype(xp.float32),
        finish_reason=xp.where(stopped, FINISH_STOP, FINISH_LENGTH).astype(xp.int32),
        tokens=xp.concatenate([prompt_tokens, completion.astype(xp.int32)], axis=1),
        attention_mask=attention_mask,
        positions=xp.maximum(xp.cumsum(attention_mask, axis=-1) - 1, 0).astype(xp.int32),
        loss_mask=xp.concatenate([xp.zeros(prompt_mask.shape, xp.int32), completion_mask], axis=1),
    )
