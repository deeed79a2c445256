"""What a sampler call does: `SamplingConfig`, finish reasons and the prompt layout.

Prompts are left-padded into the smallest configured bucket that holds the longest one
(`SamplingConfig.prompt_buckets`), so each (P, bucket, G) shape compiles once.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Literal

import numpy as np

from coderl_jax.settings import check_choices, require

FINISH_LENGTH = 0  # ran out of max_new_tokens (or of the sample's own length limit)
FINISH_STOP = 1  # emitted a stop id (the stop token is part of the completion)

Decoder = Literal["continuous", "static"]
DECODERS = typing.get_args(Decoder)


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How to sample. Static: each distinct config compiles its own sampler."""

    max_new_tokens: int = 256  # completion length limit M (tokens)
    temperature: float = 1.0  # sampling temperature (0: greedy)
    top_p: float = 1.0  # nucleus sampling: probability mass kept (1: off)
    top_k: int = 0  # top-k sampling: the k most likely tokens kept (0: off)
    greedy: bool = False  # argmax decoding (ignores temperature/top-k/top-p)
    stop_ids: tuple[int, ...] = ()  # ids that end a completion (kept in it)
    pad_id: int = 0  # emitted after a completion ends, and left-pads prompts
    # Prompt widths that compile; a batch uses the smallest one >= its longest prompt.
    prompt_buckets: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096, 8192)
    # "continuous": paged KV cache, a fixed number of decode slots refilled as samples
    # finish (`continuous.py`); "static": all P * G rows decode together until the last one
    # ends, each with a dense cache of max_new_tokens columns (`static.py`).
    decoder: Decoder = "continuous"
    # Continuous decoder only. Decode slots (rows computed per step) of each batch shard
    # (each device on the mesh's data x fsdp axes; the whole call without a mesh); 0 = all
    # of the shard's samples at once, refilling nothing.
    num_slots: int = 0
    # Tokens per KV page. Attention reads whole pages, so a row's cost is its length
    # rounded up to a page.
    page_size: int = 16
    # Pages for generated tokens shared by a batch shard's slots (its KV budget beyond its
    # prompts); 0 = enough for every slot to reach max_new_tokens (nothing is preempted).
    num_pages: int = 0
    # Decode steps per device call; between calls the host refills slots, allocates pages
    # and hands finished samples to ``on_finished``.
    segment_steps: int = 16
    # (slot, page) pairs per iteration of the ragged attention loop.
    attention_chunk: int = 256

    def __post_init__(self):
        check_choices(self)
        require(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        require(self.temperature >= 0, "temperature", "must be >= 0 (0: greedy)")
        require(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1]")
        require(self.top_k >= 0, "top_k", "must be >= 0 (0 disables)")
        require(
            bool(self.prompt_buckets) and all(b >= 1 for b in self.prompt_buckets),
            "prompt_buckets",
            f"must be positive widths, got {self.prompt_buckets}",
        )
        for name in ("page_size", "segment_steps", "attention_chunk"):
            require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        require(self.num_slots >= 0, "num_slots", "must be >= 0 (0 = all samples at once)")
        require(self.num_pages >= 0, "num_pages", "must be >= 0 (0 = automatic)")
        require(
            not self.num_pages or self.num_pages >= self.pages_per_row,
            "num_pages",
            f"{self.num_pages} pages cannot hold one completion of max_new_tokens="
            f"{self.max_new_tokens} ({self.pages_per_row} pages of {self.page_size})",
        )
        object.__setattr__(self, "stop_ids", tuple(int(i) for i in self.stop_ids))
        object.__setattr__(self, "prompt_buckets", tuple(sorted(self.prompt_buckets)))

    @property
    def is_greedy(self) -> bool:
        return self.greedy or self.temperature == 0.0

    @property
    def pages_per_row(self) -> int:
        """Pages one sample can fill: keys of its first M - 1 tokens (the last is never fed)."""
        return max(-(-(self.max_new_tokens - 1) // self.page_size), 1)

    def bucket_for(self, longest_prompt: int) -> int:
        """The smallest bucket that holds ``longest_prompt`` tokens."""
        for width in self.prompt_buckets:
            if width >= longest_prompt:
                return width
        raise ValueError(
            f"a prompt has {longest_prompt} tokens, more than the largest prompt bucket "
            f"{self.prompt_buckets[-1]}; add a larger bucket or truncate the prompt"
        )


def left_pad(
    token_lists: Sequence[Sequence[int]], width: int, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligns each list in a [P, width] int32 array; returns (tokens, 0/1 mask)."""
    tokens = np.full((len(token_lists), width), pad_id, np.int32)
    mask = np.zeros((len(token_lists), width), np.int32)
    for row, ids in enumerate(token_lists):
        if len(ids) > width:
            raise ValueError(f"prompt {row} has {len(ids)} tokens, more than the width {width}")
        tokens[row, width - len(ids) :] = ids
        mask[row, width - len(ids) :] = 1
    return tokens, mask
