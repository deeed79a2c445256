"""Loading a dataset by name: the one place the trainer and evaluators touch TFDS.

``load_problems("humaneval", "test", data_dir)`` builds the dataset on first use (into
``data_dir``, array_record files; manual datasets read their input from ``manual_dir``) and
returns its records as ``Problem`` objects in source order (row ``index``).
``data_dir=None`` means `default_data_dir()`: ``$TFDS_DATA_DIR`` when set, else
``~/.cache/coderl_jax/tensorflow_datasets``.
``load_reasoning_items`` does the same for the code-reasoning datasets. A dataset already
built in ``data_dir`` is read without rebuilding.

`DataConfig` is the run's data section (`coderl_jax.config`).

Example::

    problems = load_problems("coderl_synthetic", "train", "~/tfds",
                             config=synthetic_config(2000, 100, 100, 50))
    evalset = load_problems("lcb_code_generation", "test", "~/tfds", manual_dir="~/lcb")
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any

import tensorflow_datasets as tfds

from coderl_jax.data import builders
from coderl_jax.data.problems import Problem
from coderl_jax.data.reasoning import ReasoningItem
from coderl_jax.data.synthetic import check_trained_families
from coderl_jax.settings import ConfigError, require

logger = logging.getLogger(__name__)

CACHE_DIR = os.path.join("~", ".cache", "coderl_jax")  # built models and datasets
DATA_DIR_ENV = "TFDS_DATA_DIR"  # TFDS's own variable (a cluster's shared or scratch disk)


def default_data_dir() -> str:
    """``$TFDS_DATA_DIR`` when it is set and not empty, else
    ``~/.cache/coderl_jax/tensorflow_datasets`` (``~`` not expanded)."""
    return os.environ.get(DATA_DIR_ENV) or os.path.join(CACHE_DIR, "tensorflow_datasets")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Code-generation problems."""

    dataset: str = "coderl_synthetic"  # TFDS builder name (see coderl_jax.data.builders)
    # TFDS data_dir. None: $TFDS_DATA_DIR if set, else ~/.cache/coderl_jax/tensorflow_datasets,
    # read when the config is built (the saved config names the directory the run used).
    data_dir: str | None = None
    manual_dir: str | None = None  # for builders whose data the user provides (prime_code, ...)
    train_split: str = "train"  # split that RL draws prompts from
    max_prompt_tokens: int = 512  # prompts longer than this are skipped (counted)
    skip_bad_rows: bool = False  # skip (count, log) malformed rows instead of raising
    seed: int | None = None  # order of the training prompts (None: the run's seed)
    # coderl_synthetic only: (train, validation, test, test_heldout_families) problem counts.
    synthetic_sizes: tuple[int, int, int, int] = (20000, 500, 500, 200)
    # coderl_synthetic only: trained families to draw problems from (empty: all).
    synthetic_families: tuple[str, ...] = ()

    def __post_init__(self):
        if self.data_dir is None:
            object.__setattr__(self, "data_dir", default_data_dir())
        require(self.max_prompt_tokens >= 8, "max_prompt_tokens", "must be >= 8")
        require(len(self.synthetic_sizes) == 4, "synthetic_sizes", "needs 4 counts")
        try:
            check_trained_families(self.synthetic_families)
        except ValueError as e:
            raise ConfigError("synthetic_families", str(e)) from None


def prepare(
    name: str,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    config: str | tfds.core.BuilderConfig | None = None,
    skip_bad_rows: bool = False,
) -> tfds.core.DatasetBuilder:
    """The builder of dataset ``name``, built into ``data_dir`` if it is not there yet.

    Args:
      name: one of ``builders.PROBLEM_DATASETS + builders.REASONING_DATASETS``.
      data_dir: TFDS data directory (created if missing); None: `default_data_dir()`.
      manual_dir: where manual datasets find their input files (default
        ``<data_dir>/downloads/manual``); each builder's docstring says which file goes where.
      config: a builder config or its name (``coderl_synthetic`` sizes; see
        ``builders.synthetic_config``); None for the default.
      skip_bad_rows: skip (count and log) malformed source rows instead of failing.

    Returns:
      The prepared builder. Rows skipped when it was built (by this call or an earlier one)
      are logged and given by ``skipped_rows(builder)``.
    """
    known = builders.PROBLEM_DATASETS + builders.REASONING_DATASETS
    if name not in known:
        raise ValueError(f"unknown dataset {name!r}; expected one of {known}")
    data_dir = os.path.expanduser(os.fspath(data_dir or default_data_dir()))
    builder = tfds.builder(name, data_dir=data_dir, config=config, skip_bad_rows=skip_bad_rows)
    download_config = tfds.download.DownloadConfig(
        manual_dir=os.path.expanduser(os.fspath(manual_dir)) if manual_dir else None
    )
    builder.download_and_prepare(download_config=download_config)
    skipped = skipped_rows(builder)
    if any(skipped.values()):
        logger.warning("%s: dataset built skipping bad rows, per split: %s", name, skipped)
    return builder


def skipped_rows(builder: tfds.core.DatasetBuilder) -> dict[str, int]:
    """``{split: number of malformed source rows skipped}`` recorded when the dataset was built
    (``skip_bad_rows=True``); all zeros for a clean build."""
    metadata = builder.info.metadata or {}
    return dict(metadata.get("skipped_rows", {}))


def load_records(builder: tfds.core.DatasetBuilder, split: str) -> list[dict[str, Any]]:
    """The decoded JSON records of ``split`` of a prepared builder, in source-row order."""
    if split not in builder.info.splits:
        raise ValueError(
            f"{builder.name} has no split {split!r}; available: {sorted(builder.info.splits)}"
        )
    source = builder.as_data_source(split)
    examples = source.__getitems__(list(range(len(source))))
    examples = sorted(examples, key=lambda example: int(example["index"]))
    return [json.loads(example["record"]) for example in examples]


def load_problems(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    config: str | tfds.core.BuilderConfig | None = None,
    skip_bad_rows: bool = False,
) -> list[Problem]:
    """``Problem``s of ``split`` of code-generation dataset ``name`` (arguments as ``prepare``),
    in source order."""
    if name not in builders.PROBLEM_DATASETS:
        raise ValueError(
            f"{name!r} is not a code-generation dataset; expected one of "
            f"{builders.PROBLEM_DATASETS} (reasoning sets: load_reasoning_items)"
        )
    builder = prepare(name, data_dir, manual_dir, config, skip_bad_rows)
    return [Problem.from_json(record) for record in load_records(builder, split)]


def load_reasoning_items(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    skip_bad_rows: bool = False,
) -> list[ReasoningItem]:
    """``ReasoningItem``s of ``split`` of code-reasoning dataset ``name``, in source order."""
    if name not in builders.REASONING_DATASETS:
        raise ValueError(
            f"{name!r} is not a code-reasoning dataset; expected one of "
            f"{builders.REASONING_DATASETS}"
        )
    builder = prepare(name, data_dir, manual_dir, None, skip_bad_rows)
    return [ReasoningItem.from_json(record) for record in load_records(builder, split)]
