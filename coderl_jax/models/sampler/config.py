"""What a sampler call does: `SamplingConfig`, finish reasons and the prompt layout.

Prompts are left-padded into the smallest configured bucket that holds the longest one
(`SamplingConfig.prompt_buckets`), so each (P, bucket, G) shape compiles once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

FINISH_LENGTH = 0  # ran out of max_new_tokens (or of the sample's own length limit)
FINISH_STOP = 1  # emitted a stop id (the stop token is part of the completion)

DECODERS = ("continuous", "static")


@dataclasses.dataclass(frozen=True)
class SamplingConfig:
    """How to sample. Static: each distinct config compiles its own sampler."""

    max_new_tokens: int = 256  # completion length limit M
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0  # nucleus mass kept; 1.0 disables
    top_k: int = 0  # keep the k most likely tokens; 0 disables
    greedy: bool = False  # argmax decoding (ignores temperature/top-k/top-p)
    stop_ids: tuple[int, ...] = ()  # ids that end a completion (kept in it)
    pad_id: int = 0  # emitted after a completion ends, and left-pads prompts
    # Prompt widths that compile; a batch uses the smallest one >= its longest prompt.
    prompt_buckets: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048, 4096, 8192)
    # "continuous": paged KV cache, a fixed number of decode slots refilled as samples
    # finish (`continuous.py`); "static": all P * G rows decode together until the last one
    # ends, each with a dense cache of max_new_tokens columns (`static.py`).
    decoder: str = "continuous"
    # Continuous decoder only. Decode slots (rows computed per step); 0 = P * G (all
    # samples at once, refilling nothing).
    num_slots: int = 0
    # Tokens per KV page. Attention reads whole pages, so a row's cost is its length
    # rounded up to a page.
    page_size: int = 16
    # Pages for generated tokens shared by all slots (the KV budget beyond the prompts);
    # 0 = enough for every slot to reach max_new_tokens (nothing is ever preempted).
    num_pages: int = 0
    # Decode steps per device call; between calls the host refills slots, allocates pages
    # and hands finished samples to ``on_finished``.
    segment_steps: int = 16
    # (slot, page) pairs per iteration of the ragged attention loop.
    attention_chunk: int = 256

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables), got {self.top_k}")
        if not self.prompt_buckets or any(b < 1 for b in self.prompt_buckets):
            raise ValueError(f"prompt_buckets must be positive widths, got {self.prompt_buckets}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        for name in ("page_size", "segment_steps", "attention_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_slots < 0 or self.num_pages < 0:
            raise ValueError("num_slots and num_pages must be >= 0 (0 = automatic)")
        if self.num_pages and self.num_pages < self.pages_per_row:
            raise ValueError(
                f"num_pages={self.num_pages} cannot hold one completion of max_new_tokens="
                f"{self.max_new_tokens} ({self.pages_per_row} pages of {self.page_size})"
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
