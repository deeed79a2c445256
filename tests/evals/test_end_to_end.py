"""The tiny model end to end: the trainer's periodic evaluation (code generation and code
reasoning on the synthetic test split) and experiments/evaluate.py on the run's checkpoint
and on an HF directory, writing results.json and the samples JSONL."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from coderl_jax import config as config_lib
from coderl_jax import loop
from coderl_jax.models.tiny import TinyModelSpec

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent.parent
TINY = TinyModelSpec(
    vocab_size=600, hidden_size=64, intermediate_size=96, num_layers=2, num_heads=2,
    num_kv_heads=1, num_corpus_problems=100,
)  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run of 0 RL steps: the initial and final evaluations only."""
    cache = tmp_path_factory.mktemp("cache")
    c = config_lib
    sampling = dataclasses.replace(
        c.RolloutConfig.sampling, max_new_tokens=8, prompt_buckets=(128, 512)
    )
    config = c.Config(
        run=c.RunConfig(workdir=str(cache / "run"), steps=0),
        model=c.ModelSourceConfig(tiny_dir=str(cache / "tiny"), tiny=TINY),
        data=c.DataConfig(
            data_dir=str(cache / "tfds"), synthetic_sizes=(24, 4, 6, 4), max_prompt_tokens=128
        ),
        rollout=c.RolloutConfig(prompts_per_step=4, num_samples=2, sampling=sampling),
        train=c.TrainConfig(kl_coef=0.0),
        eval=c.EvalConfig(benchmarks=("synthetic", "synthetic_reasoning"), num_problems=4),
    )
    final = loop.run(config)
    return config, final


def evaluate_cli(*flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, str(ROOT / "experiments" / "evaluate.py"), *flags]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def test_trainer_evaluates_every_configured_benchmark(run):
    config, final = run
    for name in ("synthetic", "synthetic_reasoning"):
        assert 0.0 <= final[f"eval/{name}/pass@1"] <= 1.0
        assert final[f"eval/{name}/seconds"] > 0
    # Each greedy sample has exactly one verdict / outcome.
    assert sum(v for k, v in final.items() if "/verdict/" in k) == pytest.approx(1.0)
    assert sum(v for k, v in final.items() if "/outcome/" in k) == pytest.approx(1.0)
    summary = Path(config.run.workdir, "summary.md").read_text()
    assert "eval/synthetic_reasoning/pass@1" in summary and "eval/synthetic/pass@1" in summary


@pytest.mark.parametrize("checkpoint", ["run", "hf"])
def test_cli_evaluates_a_checkpoint_and_writes_every_sample(run, tmp_path, checkpoint):
    config, _ = run
    path = config.run.workdir if checkpoint == "run" else os.path.join(config.model.tiny_dir)
    flags = [f"--checkpoint={path}", f"--output_dir={tmp_path}", "--num_problems=2"]
    flags += ["--max_new_tokens=8", "--prompt_buckets=512", "--prompts_per_call=8"]
    if checkpoint == "run":  # data settings come from the run's config
        flags.append("--benchmarks=synthetic,synthetic_reasoning,code_reasoning")
    else:
        flags += [f"--data_dir={config.data.data_dir}", "--synthetic_sizes=24,4,6,4"]
        flags.append("--benchmarks=synthetic")
    done = evaluate_cli(*flags)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())["benchmarks"]
    for name, result in results.items():
        assert 0.0 <= result["metrics"]["pass@1"] <= 1.0
        assert result["num_items"] == 2
        lines = (tmp_path / f"samples_{name}.jsonl").read_text().splitlines()
        assert len(lines) == 2
        sample = json.loads(lines[0])
        assert {"prompt", "completion", "extracted", "verdict", "passed"} <= set(sample)
        assert sample["benchmark"] == name and sample["prompt"]
    if checkpoint == "run":
        assert "lcb_code_execution" in results["code_reasoning"]["missing_sources"]
        assert "pass@1" in done.stdout and "note: code_reasoning left out" in done.stdout
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["settings"]["checkpoint"] == path and "overwrite" in written["settings"]
    assert (written["run_config"] is not None) == (checkpoint == "run")
    assert written["provenance"]["packages"]["jax"]
    again = evaluate_cli(*flags)  # the output directory is not empty now
    assert again.returncode == 2 and "pass --overwrite" in again.stderr, again.stderr


def test_cli_stops_on_missing_manual_data_and_names_the_files(tmp_path):
    done = evaluate_cli(
        "--oracle", "--benchmarks=humaneval,leetcode_contest", f"--data_dir={tmp_path / 'tfds'}",
        f"--manual_dir={tmp_path / 'nothing'}", f"--output_dir={tmp_path / 'out'}",
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "leetcode_contest/*.jsonl" in done.stderr and str(tmp_path / "nothing") in done.stderr
    assert not (tmp_path / "out" / "results.json").exists()
