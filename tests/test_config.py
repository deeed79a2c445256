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
        (
            lambda: config_lib.Config(
                rollout=config_lib.RolloutConfig(prompts_per_step=6, overlap_chunks=4)
            ),
            "rollout.overlap_chunks",
        ),
        (lambda: config_lib.RolloutConfig(alignment_reward_mode="x"), "alignment_reward_mode"),
        (lambda: config_lib.DataConfig(max_prompt_tokens=2), "max_prompt_tokens"),
        (lambda: config_lib.DataConfig(synthetic_families=("water_tank",)), "synthetic_families"),
        (lambda: config_lib.RunConfig(mesh=(1, 2)), "mesh"),
        (lambda: config_lib.WarmStartConfig(alignment_fraction=2.0), "alignment_fraction"),
        (lambda: config_lib.MixtureConfig(alpha=1.5), "alpha"),
    ],
)
def test_bad_values_name_the_setting(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_unknown_keys_are_rejected():
    with pytest.raises(ValueError, match="unknown config keys"):
        config_lib.Config.from_json({"run": {"workdir": "w", "stepz": 3}})


def test_settings_that_follow_from_others_are_derived():
    config = config_lib.Config(
        run=config_lib.RunConfig(steps=10, seed=4),
        data=config_lib.DataConfig(max_prompt_tokens=300),
        train=config_lib.TrainConfig(num_mini_batches=2, ppo_epochs=3),
        rollout=config_lib.RolloutConfig(
            sampling=config_lib.SamplingConfig(temperature=0.7, max_new_tokens=8)
        ),
    )
    assert config.data.seed == 4  # data order follows the run's seed unless set
    assert config.train.decay_steps == 10 * 2 * 3  # every optimizer update of the run
    assert config.train.temperature == 0.7  # the loss scores what the sampler draws
    assert config.alignment.conversion.max_prompt_tokens == 300
    greedy = dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, seed=9),
        rollout=config_lib.RolloutConfig(sampling=config_lib.SamplingConfig(temperature=0.0)),
    )
    assert greedy.data.seed == 9 and greedy.train.temperature == 1.0
    assert config_lib.Config.from_json(config.to_json()) == config  # derivation is stable


def test_a_bad_value_in_a_saved_config_names_its_path():
    with pytest.raises(config_lib.ConfigError, match=r"^warm_start\.batch_size: must be >= 1"):
        config_lib.Config.from_json({"warm_start": {"batch_size": 0}})


def test_reward_mode_must_score_the_labels_the_semantics_makes():
    improved_mode = config_lib.RolloutConfig(alignment_reward_mode="improved")
    with pytest.raises(config_lib.ConfigError, match=r"^rollout\.alignment_reward_mode: improved"):
        config_lib.Config(semantics="official", rollout=improved_mode)
    official_mode = config_lib.RolloutConfig(alignment_reward_mode="official")
    with pytest.raises(config_lib.ConfigError, match="official labels need the official reward"):
        config_lib.Config(rollout=official_mode)
    assert config_lib.Config(rollout=config_lib.RolloutConfig(alignment_reward_mode="paper"))


def test_configs_saved_before_the_semantics_setting_keep_their_reward():
    saved = config_lib.Config().to_json()
    del saved["semantics"]
    saved["rollout"]["alignment_reward_mode"] = "official"  # then: the formula, our parser
    config = config_lib.Config.from_json(saved)
    assert config.semantics == "improved" and config.rollout.alignment_reward_mode == "improved"
    assert config_lib.Config().rollout.alignment_reward_mode == "improved"  # follows semantics
