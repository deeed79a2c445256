"""End to end: a few CodeRL+ steps of a scaled-down tiny default, checkpoints, exact resume."""

import dataclasses
import math
import os

import pytest

from coderl_jax import config as config_lib
from coderl_jax import loop
from tests.scaled_down import TINY, metrics_by_step

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def small_config(cache, workdir, steps: int) -> config_lib.Config:
    c = config_lib
    sampling = dataclasses.replace(
        c.RolloutConfig.sampling, max_new_tokens=24, prompt_buckets=(96, 128, 192)
    )
    return c.Config(
        run=c.RunConfig(workdir=str(workdir), steps=steps, checkpoint_every=2, samples_every=2),
        model=c.ModelSourceConfig(tiny_dir=str(cache / "tiny"), tiny=TINY),
        data=c.DataConfig(
            data_dir=str(cache / "tfds"), synthetic_sizes=(300, 20, 16, 8), max_prompt_tokens=192
        ),
        rollout=c.RolloutConfig(
            prompts_per_step=4, num_samples=2, sampling=sampling, overlap_chunks=2
        ),
        alignment=c.AlignmentTaskConfig(
            mixture=c.MixtureConfig(alpha=0.5),
            conversion=c.AlignmentConfig(prompt_style="concise"),
        ),
        train=c.TrainConfig(learning_rate=1e-4, kl_coef=0.001),
        warm_start=c.WarmStartConfig(steps=4, batch_size=8, num_problems=60),
        eval=c.EvalConfig(num_problems=8, sampled_num_samples=2),
    )


@pytest.fixture(scope="module")
def straight(cache, tmp_path_factory):
    """An uninterrupted 3-step run."""
    workdir = tmp_path_factory.mktemp("straight")
    loop.run(small_config(cache, workdir, steps=3))
    return workdir


def test_run_writes_metrics_checkpoints_and_reports(cache, straight):
    metrics = metrics_by_step(straight)
    for step in range(3):
        assert math.isfinite(metrics[step]["train/loss"]), step
        assert "rollout/code/pass_rate" in metrics[step]
        assert metrics[step]["time/generate"] > 0
    assert "eval/synthetic/pass@1" in metrics[0] and "eval/synthetic/pass@1" in metrics[3]
    for step in (0, 3):  # 8 problems x 2 samples at temperature 1
        assert metrics[step]["eval/synthetic/sampled/pass@1"] * 16 in set(range(17))
    assert "warm_start/nll" in metrics[0]
    for name in ("summary.md", "curves.png", "samples.txt", "config.json"):
        assert os.path.getsize(straight / name) > 0, name
    assert sorted(os.listdir(straight / "checkpoints")) == ["2", "3"]  # keep_last=2
    assert config_lib.Config.load(str(straight / "config.json")) == small_config(cache, straight, 3)


def test_stopped_and_resumed_run_matches_the_uninterrupted_one(cache, straight, tmp_path):
    loop.run(small_config(cache, tmp_path, steps=1))
    loop.run(small_config(cache, tmp_path, steps=3))  # resumes at step 1
    expected, again = metrics_by_step(straight), metrics_by_step(tmp_path)
    for step in (1, 2):
        for key in (
            "train/loss",
            "train/kl",
            "rollout/code/pass_rate",
            "rollout/align/buffer_size",
        ):
            assert again[step][key] == expected[step][key], (step, key)
    for key in ("eval/synthetic/pass@1", "eval/synthetic/sampled/pass@1"):
        assert again[3][key] == expected[3][key], key


def test_notebook_entry_loads_the_run(straight):
    learner = loop.load(str(straight))
    assert learner.next_step == 3 and learner.config.run.steps == 3
    assert int(learner.state.step) == 3
    assert len(learner.buffer) == metrics_by_step(straight)[2]["rollout/align/buffer_size"]


def test_dapo_and_reinforce_pp_options_run(cache, tmp_path):
    """Dynamic sampling, overlong shaping, REINFORCE++ advantages, no reference model, and
    rows grouped by length into a micro-batch cut after its last real token."""
    config = small_config(cache, tmp_path, steps=1)
    config = dataclasses.replace(
        config,
        rollout=dataclasses.replace(
            config.rollout,
            dynamic_sampling=True,
            max_sampling_rounds=2,
            overlong_buffer_len=4,
            advantage_estimator="reinforce_pp_baseline",
        ),
        train=config.train.replace(
            kl_coef=0.0, clip_ratio_high=0.28, micro_batch_width_multiple=32
        ),
        # What this test checks is the step: no warm start, no evaluation (time).
        warm_start=config_lib.WarmStartConfig(steps=0),
        eval=config_lib.EvalConfig(benchmarks=()),
    )
    loop.run(config)
    metrics = metrics_by_step(tmp_path)[0]
    assert math.isfinite(metrics["train/loss"]) and "train/kl" not in metrics
    assert 1 <= metrics["rollout/dynamic_sampling/rounds"] <= 2
    assert 0 <= metrics["rollout/dynamic_sampling/informative_groups"] <= 4
    assert not os.path.exists(tmp_path / "reference_hf")


def test_alignment_only_draws_from_a_fixed_pool(cache, tmp_path):
    """alpha = 0: every prompt is an alignment task from the pool of traced references."""
    config = small_config(cache, tmp_path, steps=1)
    mixture = config_lib.MixtureConfig(alpha=0.0)
    config = dataclasses.replace(
        config,
        alignment=dataclasses.replace(config.alignment, mixture=mixture),
        warm_start=config_lib.WarmStartConfig(steps=0),
        train=config.train.replace(kl_coef=0.0),
    )
    loop.run(config)
    metrics = metrics_by_step(tmp_path)[0]
    assert metrics["rollout/mix/code_prompts"] == 0
    assert metrics["rollout/mix/align_prompts"] == 4
    assert math.isfinite(metrics["train/loss"])
