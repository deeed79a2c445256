"""Completions for evaluation prompts, from a model through our sampler.

``ModelCompleter(params, sampler, tokenizer)`` turns chat conversations into ``n`` decoded
completions each: every conversation goes through the tokenizer's chat template (assistant
turn opened), prompts are sampled in fixed-size calls (the last call padded by repeating its
first prompt, whose extra samples are discarded) so each shape compiles once, and
completions are decoded without special tokens. Greedy or sampled is the sampler's
``SamplingConfig``. A prompt longer than the sampler's largest prompt bucket is not sampled:
its completions are ``None`` (scored as failures, counted).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from coderl_jax.data.problems import render_prompt
from coderl_jax.models.sampler import Sampler
from coderl_jax.parallel import multihost

Messages = list[dict[str, str]]


class ModelCompleter:
    """Samples ``num_samples`` completions per conversation (see the module docstring)."""

    def __init__(
        self,
        params,
        sampler: Sampler,
        tokenizer,
        num_samples: int = 1,
        prompts_per_call: int = 32,
    ):
        """
        Args:
          params: the policy's parameter pytree.
          sampler: a `Sampler` whose config holds the stop and pad ids and decoding settings.
          tokenizer: a HF tokenizer with a chat template.
          num_samples: completions per prompt (n of pass@k).
          prompts_per_call: prompts per sampler call (a multiple of the mesh's batch divisor).
        """
        if num_samples < 1 or prompts_per_call < 1:
            raise ValueError(
                f"need num_samples, prompts_per_call >= 1: {num_samples}, {prompts_per_call}"
            )
        self.params, self.sampler, self.tokenizer = params, sampler, tokenizer
        self.num_samples, self.prompts_per_call = num_samples, prompts_per_call

    def token_ids(self, conversation: Messages) -> list[int]:
        text = render_prompt(conversation, self.tokenizer)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def __call__(self, conversations: Sequence[Messages], key: jax.Array) -> list[list[str | None]]:
        """``num_samples`` completions per conversation, in order."""
        prompts = [self.token_ids(c) for c in conversations]
        limit = self.sampler.config.prompt_buckets[-1]
        fits = [i for i, ids in enumerate(prompts) if len(ids) <= limit]
        n = self.num_samples
        out: list[list[str | None]] = [[None] * n for _ in prompts]
        for start in range(0, len(fits), self.prompts_per_call):
            chunk = fits[start : start + self.prompts_per_call]
            padded = chunk + [chunk[0]] * (self.prompts_per_call - len(chunk))
            key, sub = jax.random.split(key)
            sampled = self.sampler.sample(self.params, [prompts[i] for i in padded], n, sub)
            tokens = multihost.local_rows(sampled.completion_tokens)
            lengths = multihost.local_rows(sampled.completion_lengths)
            for row in range(len(chunk) * n):
                text = self.tokenizer.decode(tokens[row, : lengths[row]], skip_special_tokens=True)
                out[chunk[row // n]][row % n] = text
        return out
