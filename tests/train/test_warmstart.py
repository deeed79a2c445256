"""Warm-start batching and packing (host side; the update is the tested RL step)."""

import numpy as np

from coderl_jax.train.config import TrainConfig
from coderl_jax.train.warmstart import (
    WarmStartConfig,
    length_bucketed_batches,
    pack_examples,
    sft_train_config,
)


def test_pack_examples_right_pads_with_loss_on_responses():
    examples = [((5, 6, 7), (8, 9), 0), ((5,), (8, 9, 10), 1)]
    batch = pack_examples(examples, width=6, pad_id=0)
    np.testing.assert_array_equal(batch.tokens, [[5, 6, 7, 8, 9, 0], [5, 8, 9, 10, 0, 0]])
    np.testing.assert_array_equal(batch.attention_mask, [[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(batch.loss_mask, [[0, 0, 0, 1, 1, 0], [0, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(batch.positions[:, :4], [[0, 1, 2, 3], [0, 1, 2, 3]])
    np.testing.assert_array_equal(batch.task_kind, [0, 1])
    np.testing.assert_array_equal(batch.advantages, [1.0, 1.0])
    batch.validate()


def test_length_bucketed_batches_cover_epochs_with_similar_lengths():
    rng = np.random.default_rng(0)
    examples = [(tuple(range(int(n))), (1,), 0) for n in rng.integers(1, 200, size=640)]
    batches = length_bucketed_batches(examples, batch_size=8, num_batches=100, seed=3)
    assert len(batches) == 100 and all(len(b) == 8 for b in batches)
    first_epoch = [id(e) for b in batches[:80] for e in b]
    assert len(set(first_epoch)) == 640  # one epoch = every example once
    spread = np.mean([np.ptp([len(p) for p, _, _ in b]) for b in batches])
    assert spread < 40  # random batches of 8 would spread ~150 tokens
    assert length_bucketed_batches(examples, 8, 100, seed=3) == batches  # deterministic


def test_sft_config_keeps_the_run_settings_but_drops_rl_terms():
    base = TrainConfig(logprob_chunk_size=64, kl_coef=0.001, ppo_epochs=2, remat_policy="full")
    sft = sft_train_config(WarmStartConfig(steps=100, learning_rate=2e-3), base)
    assert sft.logprob_chunk_size == 64 and sft.remat_policy == "full"
    assert sft.kl_coef == 0 and sft.entropy_coef == 0 and sft.updates_per_batch == 1
    assert sft.learning_rate == 2e-3 and sft.warmup_steps == 10 and sft.lr_schedule == "cosine"
