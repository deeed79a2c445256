"""TrainConfig validation names the bad field."""

from __future__ import annotations

import pytest

from coderl_jax.train.config import TrainConfig


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"learning_rate": 0.0}, "^learning_rate: must be > 0"),
        ({"num_micro_batches": 0}, "^num_micro_batches: must be an int >= 1"),
        ({"loss_agg_mode": "mean"}, "^loss_agg_mode: must be one of"),
        ({"kl_kind": "k4"}, "^kl_kind: must be one of"),
        ({"policy_loss": "reinforce"}, "^policy_loss: must be one of"),
        ({"clip_ratio_c": 1.0}, "^clip_ratio_c: must be > 1"),
        ({"max_grad_norm": 0.0}, "^max_grad_norm: must be > 0 or None"),
        ({"remat_policy": "some"}, "^remat_policy: must be one of"),
        ({"final_lr_ratio": 2.0}, "^final_lr_ratio: must be in"),
        ({"temperature": -1.0}, "^temperature: must be > 0"),
        ({"logprob_chunk_size": -1}, "^logprob_chunk_size: must be >= 0"),
    ],
)
def test_invalid_values_raise(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_defaults_follow_the_paper_and_derived_properties():
    config = TrainConfig()
    assert (config.learning_rate, config.kl_coef, config.kl_kind) == (1e-6, 0.001, "k3")
    assert config.entropy_coef == 0.0 and config.uses_reference
    assert config.replace(ppo_epochs=2, num_mini_batches=4).updates_per_batch == 8
    assert not config.replace(kl_coef=0.0).uses_reference
