"""Fixtures for the train-step tests (builders live in train_batches.py)."""

from __future__ import annotations

import pytest
from train_batches import rollout_batch, small_model_config

from coderl_jax.models.config import ModelConfig
from coderl_jax.rl.batch import TrainBatch


@pytest.fixture
def model_config() -> ModelConfig:
    return small_model_config()


@pytest.fixture
def batch() -> TrainBatch:
    return rollout_batch()
