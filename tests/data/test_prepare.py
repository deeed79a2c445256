"""Data at scale: the default data_dir follows $TFDS_DATA_DIR, and experiments/prepare_data.py
builds exactly what a run loads (without TensorFlow and without a model), reporting missing
manual data in one line per dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coderl_jax import config as config_lib
from coderl_jax.data import prepare, sources
from coderl_jax.data.builders import ManualDataMissingError
from coderl_jax.evals import benchmarks
from coderl_jax.evals.periodic import EvalConfig

ROOT = Path(__file__).resolve().parents[2]
SIZES = "24,4,6,4"


def test_default_data_dir_follows_tfds_data_dir(monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    cache = os.path.join("~", ".cache", "coderl_jax", "tensorflow_datasets")
    assert config_lib.DataConfig().data_dir == cache
    monkeypatch.setenv("TFDS_DATA_DIR", "/shared/tfds")
    assert config_lib.DataConfig().data_dir == "/shared/tfds"
    assert config_lib.DataConfig(data_dir="/mine").data_dir == "/mine"  # the flag wins
    monkeypatch.setenv("TFDS_DATA_DIR", "")
    assert config_lib.DataConfig().data_dir == cache
    restored = config_lib.Config.from_json(config_lib.Config().to_json())
    assert restored.data.data_dir == cache  # a saved config keeps the directory it used


class _Recorded(ManualDataMissingError):
    """Stops a load right after it asked for a dataset (benchmarks with several sources go
    on to the next source, as with missing manual files)."""


def _loaded_by_the_run(config, monkeypatch) -> set[str]:
    """The datasets (name/builder config) that the run's own loading code asks for."""
    from coderl_jax import learner

    asked = set()

    def record(name, data_dir=None, manual_dir=None, config=None, skip_bad_rows=False):
        asked.add(f"{name}/{config.name}" if config else name)
        raise _Recorded(name)

    monkeypatch.setattr(sources, "prepare", record)
    with pytest.raises(ManualDataMissingError):
        learner.load_problems(config, config.data.train_split)
    options = learner.eval_data_options(config)
    for name in config.eval.benchmarks:
        with pytest.raises((ManualDataMissingError, ValueError)):  # ValueError: no items
            benchmarks.load_benchmark(name, options, run_batch=None)
    return asked


@pytest.mark.parametrize("dataset", ["coderl_synthetic", "prime_code", "humaneval"])
def test_needs_are_what_the_run_loads(dataset, monkeypatch):
    config = config_lib.Config(
        data=config_lib.DataConfig(dataset=dataset, synthetic_sizes=(24, 4, 6, 4)),
        eval=EvalConfig(benchmarks=tuple(benchmarks.BENCHMARKS)),  # every benchmark
    )
    needs = prepare.datasets_needed(config)
    assert {need.key for need in needs} == _loaded_by_the_run(config, monkeypatch)
    assert needs[0].name == dataset and needs[0].used_by[0] == "training (split train)"
    assert len({need.key for need in needs}) == len(needs)  # one entry per dataset


def test_a_manual_source_is_optional_only_where_its_benchmark_can_leave_it_out():
    def needs(*names):
        config = config_lib.Config(eval=EvalConfig(benchmarks=names))
        return {n.name: n.optional for n in prepare.datasets_needed(config)}

    assert needs("code_reasoning") == {
        "coderl_synthetic": False,
        "lcb_code_execution": True,  # code_reasoning runs on humaneval_exec alone
        "humaneval": False,
    }
    assert needs("code_reasoning", "lcb_code_execution")["lcb_code_execution"] is False
    with pytest.raises(ValueError, match="'nope' is not a code-generation dataset"):
        prepare.datasets_needed(config_lib.Config(data=config_lib.DataConfig(dataset="nope")))


# Runs experiments/prepare_data.py as `python experiments/prepare_data.py` would, then says
# whether TensorFlow was imported (a build that never imports it works where it is not
# installed) and whether any JAX array (a model) was made.
RUN_AND_REPORT = """
import runpy, sys

script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, script.rsplit("/", 1)[0])
try:
    runpy.run_path(script, run_name="__main__")
finally:
    import jax
    print("tensorflow loaded:", "tensorflow" in sys.modules, "arrays:", len(jax.live_arrays()))
"""


def prepare_data(*flags: str, env: dict | None = None) -> subprocess.CompletedProcess:
    script = str(ROOT / "experiments" / "prepare_data.py")
    return subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, script, *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )


@pytest.mark.slow
def test_prepare_data_builds_a_flagfiles_datasets_into_tfds_data_dir(tmp_path):
    shared = tmp_path / "shared_tfds"
    flags = [
        f"--flagfile={ROOT / 'experiments' / 'configs' / 'tiny_cpu.flags'}",
        f"--synthetic_sizes={SIZES}",
        "--eval_benchmarks=synthetic,synthetic_alignment,code_reasoning",
        f"--manual_dir={tmp_path / 'no_manual_files'}",
        f"--tiny_dir={tmp_path / 'tiny'}",
    ]
    first = prepare_data(*flags, env={"TFDS_DATA_DIR": str(shared)})
    assert first.returncode == 0, first.stderr[-2000:]
    lines = first.stdout.splitlines()
    assert lines[-1] == "tensorflow loaded: False arrays: 0"  # no TensorFlow, no model
    assert not (tmp_path / "tiny").exists()
    ready = [line for line in lines if line.startswith("ready ")]
    assert len(ready) == 2 and all(str(shared) in line for line in ready)
    assert "train 24, validation 4" in ready[0] and "humaneval: test 164" in ready[1]
    (missing,) = [line for line in lines if line.startswith("missing ")]
    assert "lcb_code_execution (eval code_reasoning; optional)" in missing
    assert f"in the manual directory {tmp_path / 'no_manual_files'}" in missing
    assert "the run's data is ready (2 of 3 datasets built)" in lines[-2]

    # The run finds what was built (here through the library, under the same variable).
    data = config_lib.DataConfig(data_dir=str(shared), synthetic_sizes=(24, 4, 6, 4))
    assert len(sources.load_problems("humaneval", "test", data.data_dir)) == 164
    again = prepare_data(*flags, env={"TFDS_DATA_DIR": str(shared)})
    assert again.returncode == 0
    rebuilt = [line for line in again.stdout.splitlines() if "Downloading and preparing" in line]
    assert len(rebuilt) == 1 and "lcb_code_execution" in rebuilt[0]  # only the missing one


@pytest.mark.slow
def test_prepare_data_stops_on_missing_manual_training_data_in_one_line(tmp_path):
    empty = tmp_path / "manual"
    empty.mkdir()
    result = prepare_data(
        "--dataset=prime_code",
        f"--manual_dir={empty}",
        f"--data_dir={tmp_path / 'tfds'}",
        "--eval_benchmarks=humaneval",
        "--train_split=train",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "prepare_data: the run would stop: not ready: prime_code"
    )
    (missing,) = [line for line in result.stdout.splitlines() if line.startswith("missing ")]
    assert "prime_code (training (split train); required)" in missing
    assert str(empty) in missing and "parquet" in missing
    assert any(line.startswith("ready    humaneval") for line in result.stdout.splitlines())

    bad = prepare_data(f"--data_dir={tmp_path / 'tfds'}", "--train_split=trian")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "no split 'trian' (--train_split)" in bad.stdout
    flag = prepare_data("--synthetic_sizes=1,2")
    assert flag.returncode == 1 and "Traceback" not in flag.stderr
    assert "--synthetic_sizes=1,2: needs 4 comma-separated values" in flag.stderr
