"""`Config`: every setting of a CodeRL+ run, as frozen dataclasses validated on construction.

A run's config is the sections below; `experiments/run.py` builds it from flags (the
library never reads flags) and `coderl_jax.loop.run(config)` runs it. Sections owned by a
module are defined there and gathered here: `TrainConfig` (optimizer, loss, update
schedule; `coderl_jax.train.config`), `SamplingConfig` (`coderl_jax.models.sampler`),
`AlignmentConfig` (failure -> task conversion; `coderl_jax.rl.alignment`) and
`MixtureConfig` (α and buffer sampling; `coderl_jax.rl.mixture`).

The config is saved as JSON in the workdir (`to_json`) and read back by `loop.load`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import typing
from typing import Any

from coderl_jax.data.synthetic import check_trained_families
from coderl_jax.models.sampler import SamplingConfig
from coderl_jax.models.tiny import TinyModelSpec
from coderl_jax.rl.alignment import AlignmentConfig
from coderl_jax.rl.mixture import MixtureConfig
from coderl_jax.rl.rewards import ALIGNMENT_REWARD_MODES
from coderl_jax.train.config import TrainConfig

ADVANTAGE_ESTIMATORS = ("grpo", "drgrpo", "rloo", "reinforce_pp", "reinforce_pp_baseline")
DEFAULT_CACHE = os.path.join("~", ".cache", "coderl_jax")


def _check(condition: bool, field: str, message: str) -> None:
    if not condition:
        raise ValueError(f"{field}: {message}")


@dataclasses.dataclass(frozen=True)
class ModelSourceConfig:
    """Where the policy comes from."""

    hf_dir: str | None = None  # HF checkpoint directory; None: build/use the tiny model
    tiny_dir: str = os.path.join(DEFAULT_CACHE, "tiny_model")  # tiny model cache directory
    tiny: TinyModelSpec = TinyModelSpec()  # shape and seed of the tiny model
    param_dtype: str | None = None  # override the checkpoint's weight dtype
    compute_dtype: str | None = None  # override the compute dtype (default: from weights)
    scan_unroll: int = 0  # decoder layers per scan iteration (0: all, fully unrolled)
    # Training/scoring attention: "xla" (einsum, anywhere) or "cudnn" (fused, GPU, bf16/fp16).
    attention_impl: str = "xla"
    init_from: str | None = None  # previous run's workdir: start from its latest params


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Code-generation problems."""

    dataset: str = "coderl_synthetic"  # TFDS builder name (see coderl_jax.data.builders)
    data_dir: str = os.path.join(DEFAULT_CACHE, "tensorflow_datasets")  # TFDS data_dir
    manual_dir: str | None = None  # for builders whose data the user provides (prime_code, ...)
    train_split: str = "train"  # split that RL draws prompts from
    max_prompt_tokens: int = 512  # prompts longer than this are skipped (counted)
    skip_bad_rows: bool = False  # skip (count, log) malformed rows instead of raising
    seed: int = 0  # shuffling seed of the prompt iterator
    # coderl_synthetic only: (train, validation, test, test_heldout_families) problem counts.
    synthetic_sizes: tuple[int, int, int, int] = (20000, 500, 500, 200)
    # coderl_synthetic only: trained families to draw problems from (empty: all).
    synthetic_families: tuple[str, ...] = ()

    def __post_init__(self):
        _check(self.max_prompt_tokens >= 8, "max_prompt_tokens", "must be >= 8")
        _check(len(self.synthetic_sizes) == 4, "synthetic_sizes", "needs 4 counts")
        try:
            check_trained_families(self.synthetic_families)
        except ValueError as e:
            raise ValueError(f"synthetic_families: {e}") from None


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """Sampling, execution and rewards of one RL step."""

    prompts_per_step: int = 16  # B: prompts per step (code + alignment)
    num_samples: int = 8  # G: completions per prompt (one GRPO group)
    sampling: SamplingConfig = SamplingConfig(max_new_tokens=96, temperature=1.0)
    advantage_estimator: str = "grpo"  # one of ADVANTAGE_ESTIMATORS
    exec_timeout_s: float = 5.0  # wall-clock limit per program (all its tests)
    float_tolerance: float | None = None  # stdio tests: compare float tokens within this
    num_sandbox_workers: int | None = None  # sandbox pool size (None: CPU count)
    overlap_chunks: int = 2  # split generation so execution of chunk k overlaps chunk k+1
    alignment_reward_mode: str = "official"  # "official" (0.1 + 0.9 * frac) or "paper"
    overlong_buffer_len: int = 0  # DAPO soft overlong punishment window (0: off)
    dynamic_sampling: bool = False  # DAPO: keep only groups whose rewards differ
    max_sampling_rounds: int = 3  # dynamic sampling: rollout rounds per step at most

    def __post_init__(self):
        _check(self.prompts_per_step >= 1, "prompts_per_step", "must be >= 1")
        _check(self.num_samples >= 1, "num_samples", "must be >= 1")
        _check(
            self.advantage_estimator in ADVANTAGE_ESTIMATORS,
            "advantage_estimator",
            f"must be one of {ADVANTAGE_ESTIMATORS}, got {self.advantage_estimator!r}",
        )
        _check(self.exec_timeout_s > 0, "exec_timeout_s", "must be > 0")
        _check(self.overlap_chunks >= 1, "overlap_chunks", "must be >= 1")
        _check(
            self.prompts_per_step % self.overlap_chunks == 0,
            "overlap_chunks",
            f"must divide prompts_per_step ({self.prompts_per_step})",
        )
        _check(
            self.alignment_reward_mode in ALIGNMENT_REWARD_MODES,
            "alignment_reward_mode",
            f"must be one of {ALIGNMENT_REWARD_MODES}",
        )
        _check(self.max_sampling_rounds >= 1, "max_sampling_rounds", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class AlignmentTaskConfig:
    """The execution-semantics-alignment task (CodeRL+'s contribution)."""

    mixture: MixtureConfig = MixtureConfig()  # α and the buffer's sampling strategy
    conversion: AlignmentConfig = AlignmentConfig()  # failure -> task rules
    buffer_capacity: int = 20000  # tasks kept (official: 20k)
    pool_files: tuple[str, ...] = ()  # alignment_only (α=0): buffer JSONL files of earlier runs

    def __post_init__(self):
        _check(self.buffer_capacity >= 1, "buffer_capacity", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class WarmStartConfig:
    """Optional supervised phase before RL (reference solutions and alignment answers)."""

    steps: int = 0  # optimizer steps; 0 skips the warm start (real checkpoints)
    batch_size: int = 16  # examples per step
    learning_rate: float = 3e-3  # peak (linear warmup 10% of steps, cosine to 10%)
    alignment_fraction: float = 0.3  # share of examples that are alignment answers
    num_problems: int = 0  # training problems whose references are used (0: all)

    def __post_init__(self):
        _check(self.steps >= 0, "warm_start_steps", "must be >= 0")
        _check(self.batch_size >= 1, "warm_start_batch_size", "must be >= 1")
        _check(
            0 <= self.alignment_fraction <= 1, "warm_start_alignment_fraction", "must be in [0, 1]"
        )


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Periodic evaluation (`coderl_jax.evals`)."""

    every_steps: int = 0  # evaluate every N RL steps (0: only before and after RL)
    # Names in coderl_jax.evals.BENCHMARKS, e.g. ("synthetic", "synthetic_reasoning").
    benchmarks: tuple[str, ...] = ("synthetic",)
    num_problems: int = 200  # problems per benchmark (reasoning: items per source; 0: all)
    max_new_tokens: int | None = None  # generation limit (None: the rollout's)
    # Besides greedy pass@1 (the paper's protocol): pass@1 of this many samples per problem
    # at `sampled_temperature`, as `eval/<benchmark>/sampled/pass@1` (0: off).
    sampled_num_samples: int = 0
    sampled_temperature: float = 1.0

    def __post_init__(self):
        _check(self.sampled_num_samples >= 0, "eval_sampled_num_samples", "must be >= 0")
        _check(self.sampled_temperature > 0, "eval_sampled_temperature", "must be > 0")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The run as a whole."""

    workdir: str = "runs/tiny_cpu"  # checkpoints, metrics, samples; reused to resume
    steps: int = 100  # RL steps
    seed: int = 0  # PRNG seed of sampling and initialisation
    mesh: tuple[int, int, int] = (-1, 1, 1)  # (data, fsdp, tensor); -1: remaining devices
    log_every: int = 1  # console line every N steps
    samples_every: int = 10  # write sample generations every N steps
    checkpoint_every: int = 25  # save every N steps (and at the end, and on SIGTERM)
    keep_checkpoints: int = 2  # keep the last K checkpoints
    export_hf: bool = False  # write an HF directory of the final policy (workdir/hf)

    def __post_init__(self):
        _check(self.steps >= 0, "steps", "must be >= 0")
        _check(len(self.mesh) == 3, "mesh", "must be (data, fsdp, tensor)")
        _check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole CodeRL+ run."""

    run: RunConfig = RunConfig()
    model: ModelSourceConfig = ModelSourceConfig()
    data: DataConfig = DataConfig()
    rollout: RolloutConfig = RolloutConfig()
    alignment: AlignmentTaskConfig = AlignmentTaskConfig()
    train: TrainConfig = TrainConfig()
    warm_start: WarmStartConfig = WarmStartConfig()
    eval: EvalConfig = EvalConfig()

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_json(), f, indent=2)

    @classmethod
    def from_json(cls, d: dict) -> Config:
        return _from_dict(cls, d)

    @classmethod
    def load(cls, path: str) -> Config:
        with open(path) as f:
            return cls.from_json(json.load(f))


def _from_dict(cls, d: dict):
    """Rebuilds nested frozen dataclasses from `dataclasses.asdict` output."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name not in d:
            continue
        value, hint = d[field.name], hints[field.name]
        if dataclasses.is_dataclass(hint):
            value = _from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[field.name] = value
    unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
    return cls(**kwargs)
