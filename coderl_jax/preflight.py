"""Checks that a run can start, made before any model or dataset loads.

`check(config)` looks at everything a `Config` names outside itself -- the device count,
the model directory, the datasets and their manual files, the files of other runs, the
workdir -- and at rules that span sections, and raises `ConfigError` naming the setting
(its dotted path; `experiments/config_flags.py` turns it into the flag) and what to do,
so a bad run stops in a second rather than after minutes of loading a 7B model. Each
section validates its own values in ``__post_init__`` already; this module adds what needs
the machine or the filesystem. `coderl_jax.loop.run` calls it first.

The workdir, ``init_from`` and ``alignment.pool_files`` are looked at through
`coderl_jax.storage` (local or ``gs://...``); the model directory and the data
directories are local (transformers and TFDS read them).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax

from coderl_jax import storage
from coderl_jax import workdir as workdir_lib
from coderl_jax.data import builders
from coderl_jax.evals.benchmarks import BENCHMARKS
from coderl_jax.models import hf_io
from coderl_jax.models.config import ModelConfig
from coderl_jax.settings import ConfigError, require

if TYPE_CHECKING:
    from coderl_jax.config import Config

log = logging.getLogger(__name__)

# Estimators whose baseline is the prompt's group: one sample per prompt makes every
# advantage 0 (coderl_jax.rl.advantages).
GROUP_ESTIMATORS = ("grpo", "drgrpo", "rloo", "reinforce_pp_baseline")
# The files each manual dataset's builder reads, relative to the manual directory (the
# globs of the builders' `manual_files`; any one matching is enough).
MANUAL_FILES = {
    "prime_code": ("prime_code/train.parquet", "prime_code/train-*.parquet"),
    **{
        name: (f"{name}/*.jsonl", f"{name}/*.jsonl.gz")
        for name in (
            "lcb_code_generation",
            "lcb_code_execution",
            "lcb_test_output",
            "leetcode_contest",
        )
    },
}


def check(config: Config, num_devices: int | None = None) -> None:
    """Raises `ConfigError` for the first setting this run cannot start with.

    Args:
      config: the run.
      num_devices: devices the mesh spans (default: ``jax.device_count()``).
    """
    _check_workdir(config)
    _check_mesh(config, jax.device_count() if num_devices is None else num_devices)
    _check_rollout(config)
    _check_model(config)
    _check_data(config)
    workdir_lib.check_resume(config)


def _path(path: str) -> str:
    return os.path.expanduser(path)


def _check_workdir(config: Config) -> None:
    workdir = storage.as_path(config.run.workdir)
    require(
        not workdir.exists() or workdir.is_dir(),
        "run.workdir",
        f"{workdir} is a file; give a directory (created if missing)",
    )


def _check_mesh(config: Config, num_devices: int) -> None:
    data, fsdp, tensor = config.run.mesh
    known = data * fsdp * tensor * (-1 if -1 in config.run.mesh else 1)
    require(
        num_devices % known == 0 and (-1 in config.run.mesh or known == num_devices),
        "run.mesh",
        f"data x fsdp x tensor must use all {num_devices} devices of this machine "
        f"(use -1 for one axis to take the rest, e.g. -1,1,1)",
    )
    batch_devices = num_devices // tensor if -1 in (data, fsdp) else data * fsdp
    rows = config.rollout.prompts_per_step * config.rollout.num_samples
    splits = config.train.num_mini_batches * config.train.num_micro_batches
    require(
        rows % (batch_devices * splits) == 0,
        "rollout.prompts_per_step",
        f"prompts_per_step x num_samples = {rows} rows must divide over {batch_devices} "
        f"data-parallel devices x {splits} mini/micro-batches",
    )


def _check_rollout(config: Config) -> None:
    rollout = config.rollout
    require(
        rollout.num_samples >= 2 or rollout.advantage_estimator not in GROUP_ESTIMATORS,
        "rollout.num_samples",
        f"must be >= 2 with advantage_estimator={rollout.advantage_estimator} (its baseline "
        "is the prompt's group, so one sample makes every advantage 0); or use reinforce_pp",
    )
    require(
        rollout.num_sandbox_workers is None or rollout.num_sandbox_workers >= 1,
        "rollout.num_sandbox_workers",
        "must be >= 1 (or none: one per CPU)",
    )


def _check_model(config: Config) -> None:
    model = config.model
    if model.hf_dir:
        hf_dir = _path(model.hf_dir)
        require(os.path.isdir(hf_dir), "model.hf_dir", f"{hf_dir} does not exist")
        try:
            ModelConfig.from_hf(hf_io.read_hf_config(hf_dir))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError("model.hf_dir", f"not a supported HF model directory: {e}") from None
        weights = glob.glob(os.path.join(hf_dir, "*.safetensors"))
        require(
            bool(weights),
            "model.hf_dir",
            f"{hf_dir} has no *.safetensors weights (convert PyTorch .bin files first)",
        )
        tokenizer = ("tokenizer.json", "tokenizer_config.json")
        require(
            any(os.path.isfile(os.path.join(hf_dir, name)) for name in tokenizer),
            "model.hf_dir",
            f"{hf_dir} has no tokenizer (tokenizer.json or tokenizer_config.json)",
        )
    if model.init_from:
        other = _path(model.init_from)
        require(
            bool(workdir_lib.checkpoint_steps(other)),
            "model.init_from",
            f"{other} holds no finished checkpoint (expected a run workdir with checkpoints/<step>)",
        )


def _check_data(config: Config) -> None:
    data = config.data
    require(
        data.dataset in builders.PROBLEM_DATASETS,
        "data.dataset",
        f"unknown dataset {data.dataset!r}; expected one of {', '.join(builders.PROBLEM_DATASETS)}",
    )
    data_dir = _path(data.data_dir)
    require(
        not os.path.exists(data_dir) or os.path.isdir(data_dir),
        "data.data_dir",
        f"{data_dir} is a file; give a directory (created if missing)",
    )
    if data.manual_dir:
        manual = _path(data.manual_dir)
        require(os.path.isdir(manual), "data.manual_dir", f"{manual} does not exist")
    missing = _missing_manual_files(data.dataset, data_dir, data.manual_dir)
    require(missing is None, "data.dataset", f"the training dataset needs {missing}")
    problems = missing_benchmark_data(config.eval.benchmarks, data_dir, data.manual_dir)
    require(not problems, "eval.benchmarks", "; ".join(problems))
    for path in map(storage.as_path, config.alignment.pool_files):
        require(path.is_file(), "alignment.pool_files", f"{path} does not exist")


def missing_benchmark_data(
    benchmarks: Sequence[str], data_dir: str, manual_dir: str | None
) -> list[str]:
    """What the named benchmarks lack to load: one sentence per benchmark whose every source
    is a manual dataset that is neither built in ``data_dir`` nor has its files in
    ``manual_dir`` (a benchmark with another source loads without it and says so)."""
    problems = []
    for name in benchmarks:
        sources = BENCHMARKS[name].sources
        if not all(source in MANUAL_FILES for source in sources):
            continue
        for source in sources:
            missing = _missing_manual_files(source, _path(data_dir), manual_dir)
            if missing:
                problems.append(f"benchmark {name} needs {missing}")
    return problems


def _missing_manual_files(dataset: str, data_dir: str, manual_dir: str | None) -> str | None:
    """What a manual dataset that is not built yet lacks, or None."""
    built = glob.glob(os.path.join(data_dir, dataset, "**", "dataset_info.json"), recursive=True)
    if dataset not in MANUAL_FILES or built:
        return None
    manual = _path(manual_dir) if manual_dir else os.path.join(data_dir, "downloads", "manual")
    patterns = MANUAL_FILES[dataset]
    if any(glob.glob(os.path.join(manual, pattern)) for pattern in patterns):
        return None
    return (
        f"its files ({' or '.join(patterns)}) in {manual} (set manual_dir; the builder in "
        f"coderl_jax/data/builders says where they come from)"
    )
