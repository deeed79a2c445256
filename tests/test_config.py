"""Config validation (errors name the setting) and JSON round trip."""

import dataclasses

import pytest

from coderl_jax import config as config_lib


def test_json_round_trip_preserves_nested_sections(tmp_path):
    config = config_lib.Config(
        run=config_lib.RunConfig(workdir="w", steps=7, mesh=(2, 2, 2)),
        rollout=config_lib.RolloutConfig(prompts_per_step=4, num_samples=2, overlap_chunks=2),
        alignment=config_lib.AlignmentTaskConfig(pool_files=("a.jsonl",)),
    )
    config = dataclasses.replace(
        config, train=config.train.replace(learning_rate=3e-5, kl_coef=0.0)
    )
    path = tmp_path / "config.json"
    config.save(str(path))
    assert config_lib.Config.load(str(path)) == config


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: config_lib.RolloutConfig(advantage_estimator="ppo"), "advantage_estimator"),
        (lambda: config_lib.RolloutConfig(prompts_per_step=6, overlap_chunks=4), "overlap_chunks"),
        (lambda: config_lib.RolloutConfig(alignment_reward_mode="x"), "alignment_reward_mode"),
        (lambda: config_lib.DataConfig(max_prompt_tokens=2), "max_prompt_tokens"),
        (lambda: config_lib.DataConfig(synthetic_families=("water_tank",)), "synthetic_families"),
        (lambda: config_lib.RunConfig(mesh=(1, 2)), "mesh"),
        (
            lambda: config_lib.WarmStartConfig(alignment_fraction=2.0),
            "warm_start_alignment_fraction",
        ),
        (lambda: config_lib.MixtureConfig(alpha=1.5), "alpha"),
    ],
)
def test_bad_values_name_the_setting(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="unknown config keys"):
        config_lib.Config.from_json({"run": {"workdir": "w", "stepz": 3}})
