"""A scaled-down tiny default for end-to-end tests that go through experiments/run.py.

The same sizes as tests/test_loop.py (a smaller tiny model, 300 synthetic training
problems, B=4 prompts x G=2, 24-token completions), expressed as run.py flags; the tiny
model is built once per test session (see the ``scaled_down_cache`` fixture in conftest.py)
and passed as ``--hf_dir``.
"""

from __future__ import annotations

import json
import os

from coderl_jax.models.tiny import TinyModelSpec, build_tiny_model

TINY = TinyModelSpec(
    vocab_size=600, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=2,
    num_kv_heads=1, num_corpus_problems=300,
)  # fmt: skip


def build_cache(directory: str) -> dict[str, str]:
    """Builds the tiny model under ``directory``; returns its hf_dir and a TFDS data_dir."""
    return {
        "hf_dir": build_tiny_model(os.path.join(directory, "tiny"), TINY),
        "data_dir": os.path.join(directory, "tfds"),
    }


def run_flags(cache: dict[str, str], workdir: str, steps: int = 2) -> list[str]:
    """experiments/run.py flags of a few-second-per-step run with a 1-step warm start."""
    return [
        f"--hf_dir={cache['hf_dir']}",
        f"--data_dir={cache['data_dir']}",
        f"--workdir={workdir}",
        f"--steps={steps}",
        "--mesh=-1,1,1",
        "--synthetic_sizes=300,20,16,8",
        "--max_prompt_tokens=192",
        "--prompt_buckets=96,128,192",
        "--max_new_tokens=24",
        "--prompts_per_step=4",
        "--num_samples=2",
        "--overlap_chunks=2",
        "--alpha=0.5",
        "--alignment_prompt_style=concise",
        "--learning_rate=1e-4",
        "--kl_coef=0.001",
        "--warm_start_steps=1",
        "--warm_start_batch_size=8",
        "--warm_start_num_problems=60",
        "--eval_num_problems=8",
        "--checkpoint_every=1",
        "--keep_checkpoints=2",
        "--samples_every=1",
        "--num_sandbox_workers=1",
    ]


def metrics_by_step(workdir) -> dict[int, dict]:
    """``{step: every metric logged at that step}`` from a run's metrics.jsonl."""
    steps: dict[int, dict] = {}
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        for line in f:
            row = json.loads(line)
            steps.setdefault(row.pop("step"), {}).update(row)
    return steps
