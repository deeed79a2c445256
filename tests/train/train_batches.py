"""Builders shared by the train-step tests: a very small decoder and rollout batches."""

from __future__ import annotations

import numpy as np

from coderl_jax.models.config import ModelConfig
from coderl_jax.rl.batch import TaskKind, TrainBatch


def small_model_config() -> ModelConfig:
    # Small enough to compile in seconds; heads/kv heads/MLP width divisible by tensor=2
    # and the embedding by fsdp=4, so every sharding rule is exercised.
    return ModelConfig(
        vocab_size=96,
        hidden_size=32,
        intermediate_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=8,
    )


def rollout_batch(rows: int = 8, length: int = 16, seed: int = 0, vocab: int = 96) -> TrainBatch:
    """Left-padded prompts + right-padded responses of varied lengths, one empty response.

    Row i: ``i % 3`` padding tokens, then a prompt up to column 5, then a response of
    ``2 + (3 * i) % 9`` tokens (cut at T); row 3 has no response at all.
    """
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, vocab, (rows, length)).astype(np.int32)
    attention = np.zeros((rows, length), np.int32)
    loss_mask = np.zeros((rows, length), np.float32)
    for i in range(rows):
        response = 0 if i == 3 else 2 + (3 * i) % 9
        end = min(length, 6 + response)
        attention[i, i % 3 : end] = 1
        loss_mask[i, 6:end] = 1
    tokens = tokens * attention
    positions = np.maximum(np.cumsum(attention, axis=1) - 1, 0).astype(np.int32)
    return TrainBatch(
        tokens=tokens,
        attention_mask=attention,
        positions=positions,
        loss_mask=loss_mask,
        advantages=rng.normal(size=rows).astype(np.float32),
        rewards=(rng.random(rows) > 0.5).astype(np.float32),
        task_kind=np.where(np.arange(rows) % 4 == 0, TaskKind.ALIGNMENT, TaskKind.CODE).astype(
            np.int32
        ),
    )
