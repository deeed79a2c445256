"""Building every dataset a run needs before the run starts: no model, no TensorFlow.

A run reads its training split (``config.data``) and the data of each evaluation benchmark
(``config.eval.benchmarks``; `coderl_jax.evals.BENCHMARKS` says which datasets those are).
On a cluster those are best built once, on a login node, into a shared ``data_dir``
(``$TFDS_DATA_DIR``), so that jobs only read them. The builders write array_record files
through ``tensorflow-datasets`` alone (`coderl_jax.data.builders.base`), so this needs
neither TensorFlow nor an accelerator::

    needs = datasets_needed(config)          # what the run will load, merged per dataset
    for result in prepare_needed(needs, config.data):
        print(result.line())

Manual datasets (LiveCodeBench, LeetCode, PRIME) whose files are absent are reported, not
raised: a benchmark with several sources (``code_reasoning``) runs without its missing
manual source, so that source is *optional*; any other missing dataset makes the run fail
and is *required*. ``experiments/prepare_data.py`` is the command.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING

from coderl_jax.data import builders, sources
from coderl_jax.data.builders import BadRowError, ManualDataMissingError, synthetic_config
from coderl_jax.evals.benchmarks import BENCHMARKS

if TYPE_CHECKING:
    from coderl_jax.config import Config
    from coderl_jax.data.sources import DataConfig

# Benchmark sources that are not datasets of their own: their items are derived, when the
# benchmark loads, by running programs of the named dataset's test split.
DERIVED_SOURCES = {
    "humaneval_exec": "humaneval",
    "humaneval_testoutput": "humaneval",
    "synthetic_reasoning": "coderl_synthetic",
}


@dataclasses.dataclass
class DatasetNeed:
    """One dataset (and builder config) that a run loads, and who loads it."""

    name: str  # TFDS builder name (coderl_jax.data.builders)
    builder_config: builders.SyntheticConfig | None  # coderl_synthetic's sizes; else None
    used_by: list[str]  # "training", "eval humaneval", ... (for messages)
    optional: bool  # every user runs without it (a missing source is left out)
    split: str | None = None  # a split that must exist (training's), checked after the build

    @property
    def key(self) -> str:
        return f"{self.name}/{self.builder_config.name}" if self.builder_config else self.name


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What happened to one `DatasetNeed`."""

    need: DatasetNeed
    status: str  # "ready", "missing" (manual files absent) or "failed"
    splits: dict[str, int]  # examples per split (ready only)
    path: str  # the built dataset's directory (ready only)
    message: str = ""  # why it is missing or failed
    seconds: float = 0.0

    @property
    def blocks_the_run(self) -> bool:
        return self.status == "failed" or (self.status == "missing" and not self.need.optional)

    def line(self) -> str:
        """One line for the console."""
        users = ", ".join(self.need.used_by)
        if self.status == "ready":
            sizes = ", ".join(f"{split} {n}" for split, n in sorted(self.splits.items()))
            return (
                f"ready    {self.need.key}: {sizes} ({users}) in {self.path} [{self.seconds:.1f} s]"
            )
        kind = "optional" if self.status == "missing" and self.need.optional else "required"
        what = "missing" if self.status == "missing" else "FAILED "
        return f"{what}  {self.need.key} ({users}; {kind}): {self.message}"


def datasets_needed(config: Config) -> list[DatasetNeed]:
    """The datasets that ``coderl_jax.loop.run(config)`` loads, one entry per dataset and
    builder config, in first-use order (training first)."""
    data = config.data
    if data.dataset not in builders.PROBLEM_DATASETS:
        raise ValueError(
            f"dataset {data.dataset!r} is not a code-generation dataset; expected one of "
            f"{', '.join(builders.PROBLEM_DATASETS)}"
        )
    synthetic = synthetic_config(*data.synthetic_sizes, families=data.synthetic_families)
    needs: dict[str, DatasetNeed] = {}

    def need(dataset: str, user: str, optional: bool, split: str | None = None) -> None:
        builder_config = synthetic if dataset == "coderl_synthetic" else None
        new = DatasetNeed(dataset, builder_config, [user], optional, split)
        old = needs.setdefault(new.key, new)
        if old is not new:
            old.used_by.append(user)
            old.optional = old.optional and optional
            old.split = old.split or split

    need(data.dataset, f"training (split {data.train_split})", False, data.train_split)
    for name in config.eval.benchmarks:
        benchmark = BENCHMARKS[name]
        several = len(benchmark.sources) > 1
        for source in benchmark.sources:
            dataset = DERIVED_SOURCES.get(source, source)
            manual = dataset in builders.MANUAL_DATASETS
            need(dataset, f"eval {name}", optional=several and manual)
    return list(needs.values())


def prepare_needed(needs: list[DatasetNeed], data: DataConfig):
    """Builds each need into ``data.data_dir`` (manual files from ``data.manual_dir``);
    yields a `Prepared` per need as it finishes. Missing manual files, malformed rows and a
    missing split are reported in the `Prepared`, not raised."""
    for need in needs:
        start = time.perf_counter()
        try:
            builder = sources.prepare(
                need.name,
                data.data_dir,
                manual_dir=data.manual_dir,
                config=need.builder_config,
                skip_bad_rows=data.skip_bad_rows,
            )
        except ManualDataMissingError as e:
            yield Prepared(need, "missing", {}, "", str(e))
            continue
        except BadRowError as e:
            yield Prepared(need, "failed", {}, "", f"{e} (--skip_bad_rows skips such rows)")
            continue
        splits = {name: info.num_examples for name, info in builder.info.splits.items()}
        if need.split and need.split not in splits:
            message = f"no split {need.split!r} (--train_split); it has {sorted(splits)}"
            yield Prepared(need, "failed", splits, builder.data_dir, message)
            continue
        seconds = time.perf_counter() - start
        yield Prepared(need, "ready", splits, os.fspath(builder.data_dir), seconds=seconds)
