r"""Micro-batches cut to their rows' length vs uncut: one RL update of the tiny default, timed
side by side in one process, with the difference of their results.

The update is the embedded default's (``experiments/configs/tiny_cpu.flags``): the tiny
model's shape, B = 32 prompts x G = 8 rows, 4 micro-batches, T = 0.7, lr 3e-4, k3 KL
0.001. The rows' lengths are those of a real rollout of that run
(``tiny_rollout_lengths.json``: prompt and completion length of every row of RL steps
0-2 after the default's warm start, recorded where the RL step packs its batch); tokens,
rewards and reference log-probs are random (the cost of an update does not depend on
them). Rows are left-aligned, as the RL step packs them. Two variants of the same update:

- **uncut**: ``--micro_batch_width_multiple=0``: every micro-batch runs all T columns;
- **cut**: ``--micro_batch_width_multiple=32`` (the default's): rows grouped by length
  (`coderl_jax.rl.batch.group_rows_by_length`, as the RL step does) and each micro-batch
  run up to its last real token, rounded up to 32 columns.

Both start from the same weights and optimizer state; their calls alternate (uncut, cut,
uncut, ...) so both see the same machine load, and each variant's fastest call counts. The
update is exact either way (`coderl_jax.train.step`): the script prints the largest
difference of the metrics, of the accumulated gradients (per leaf, relative to its largest
entry) and of the parameters after one update, next to the size of that update.

Measured on this project's shared 2-core VM (load average ~9 from other jobs, so times
vary between runs; the ratio of alternating calls is what counts), 2026-12-03,
``--steps=5``:

    rollout step  rows (code/align)  real tokens  cut widths          uncut    cut   ratio
    0             256 / 0            37% of BxT   96, 96, 128, 160    15.9 s   5.5 s  2.91
    1             152 / 104          47%          96, 128, 160, 192   35.9 s  17.6 s  2.04
    2             152 / 104          47%          96, 128, 160, 224   32.2 s  17.4 s  1.85

Same result: metrics within 1e-6 (entropy 9.5e-7; loss 6e-9; grad norm equal), gradient
leaves within 9e-7 of their largest entry; parameters after the update within 2.5e-5 (of
an update of 3e-4: Adam's first step moves an entry whose gradient is near adam_eps by up
to lr whatever its rounding).

Run from the repository root:

    python -m experiments.benchmarks.micro_batch_cut             # steps 0-2, 5 timed calls
    python -m experiments.benchmarks.micro_batch_cut --rollout_step=2 --steps=10
"""

from __future__ import annotations

import functools
import json
import math
import os
import time

import jax
import numpy as np
from absl import app, flags

from coderl_jax.models import tiny, transformer
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.rl.batch import (
    TaskKind,
    TrainBatch,
    device_put_batch,
    group_rows_by_length,
    row_ends,
)
from coderl_jax.train import state as state_lib
from coderl_jax.train import step as step_lib
from coderl_jax.train.config import TrainConfig

LENGTHS_FILE = os.path.join(os.path.dirname(__file__), "tiny_rollout_lengths.json")

_STEPS = flags.DEFINE_integer("steps", 5, "Timed calls per variant (after a compile call).")
_ROLLOUT_STEPS = flags.DEFINE_list(
    "rollout_step", ["0", "1", "2"], "RL steps of tiny_rollout_lengths.json to time."
)
_MULTIPLE = flags.DEFINE_integer(
    "micro_batch_width_multiple", 32, "The cut variant's column multiple (the default's)."
)


# Compiled once per variant; the rollout steps share one batch shape.
_train_step = functools.cache(step_lib.make_train_step)
_gradient = jax.jit(step_lib._accumulated_gradient, static_argnums=(2, 3, 4))


def tiny_default_train_config(multiple: int) -> TrainConfig:
    """tiny_cpu.flags' update settings, with micro-batches cut to ``multiple`` columns, but
    no learning-rate warm-up: the compared first update then moves the weights (warm-up
    changes no cost)."""
    return TrainConfig(
        learning_rate=3e-4,
        warmup_steps=0,
        kl_coef=0.001,
        kl_kind="k3",
        temperature=0.7,
        num_micro_batches=4,
        micro_batch_width_multiple=multiple,
    )


def rollout_batch(record: dict, vocab: int, group_size: int = 8, seed: int = 0) -> TrainBatch:
    """Left-aligned rows with a recorded rollout's lengths; random tokens, rewards and
    reference log-probs."""
    rng = np.random.default_rng(seed)
    prompts = np.asarray(record["prompt_lengths"])
    completions = np.asarray(record["completion_lengths"])
    rows, width = len(prompts), record["width"]
    columns = np.arange(width)
    attention = columns < (prompts + completions)[:, None]
    loss_mask = attention & (columns >= prompts[:, None])
    rewards = (rng.random(rows) < 0.4).astype(np.float32)
    groups = rewards.reshape(-1, group_size)
    advantages = (groups - groups.mean(-1, keepdims=True)) / (groups.std(-1, keepdims=True) + 1e-6)
    ref = -math.log(vocab) + 0.5 * rng.standard_normal((rows, width))
    return TrainBatch(
        tokens=np.where(attention, rng.integers(1, vocab, (rows, width)), 0).astype(np.int32),
        attention_mask=attention.astype(np.int32),
        positions=np.where(attention, columns, 0).astype(np.int32),
        loss_mask=loss_mask.astype(np.float32),
        advantages=advantages.reshape(rows).astype(np.float32),
        rewards=rewards,
        task_kind=np.asarray(record["task_kind"], np.int32),
        ref_logprobs=np.where(loss_mask, ref, 0.0).astype(np.float32),
        response_start=record["response_start"],
    )


def prepare(model_config, train_config, params, batch, mesh):
    """Compiles the update and makes it once from ``params``.

    Returns:
      ``(compile_s, metrics, params after it, run_once)``; ``run_once()`` makes one more
      update (from the state it left) and blocks until it is done.
    """
    state = state_lib.create_train_state(params, model_config, train_config, mesh)
    step_fn = _train_step(model_config, train_config, mesh)
    device_batch = device_put_batch(batch, mesh)
    start = time.perf_counter()
    state, metrics = step_fn(state, device_batch)
    metrics, new_params = jax.device_get((metrics, state.params))
    compile_s = time.perf_counter() - start
    holder = {"state": state}

    def run_once():
        holder["state"], metrics = step_fn(holder["state"], device_batch)
        jax.block_until_ready(metrics)

    return compile_s, metrics, new_params, run_once


def gradient(model_config, train_config, params, batch, mesh):
    """The update's accumulated fp32 gradient (the train step's own function, over its
    micro-batches, cut or not), on the host."""
    train_model = state_lib.training_model_config(model_config, train_config)
    grads, _ = _gradient(params, device_put_batch(batch, mesh), train_model, train_config, mesh)
    return jax.device_get(grads)


def max_relative_leaf_difference(ours, reference) -> float:
    """Largest per-leaf max |difference| / max |reference entry|."""
    return max(
        float(np.max(np.abs(x - y)) / max(np.max(np.abs(y)), np.finfo(np.float32).tiny))
        for x, y in zip(jax.tree.leaves(ours), jax.tree.leaves(reference))
    )


def max_tree_difference(a, b) -> float:
    return max(
        float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def compare(record: dict, model_config, params, mesh, steps: int) -> None:
    uncut_config = tiny_default_train_config(0)
    cut_config = tiny_default_train_config(_MULTIPLE.value)
    batch = rollout_batch(record, model_config.vocab_size)
    cut_batch = group_rows_by_length(batch, 1, cut_config.num_micro_batches)
    uncut = prepare(model_config, uncut_config, params, batch, mesh)
    cut = prepare(model_config, cut_config, params, cut_batch, mesh)
    best = [math.inf, math.inf]
    for _ in range(steps):
        for i, (*_, run_once) in enumerate((uncut, cut)):
            start = time.perf_counter()
            run_once()
            best[i] = min(best[i], time.perf_counter() - start)
    rows, width = batch.tokens.shape
    real = int(batch.attention_mask.sum())
    kinds = np.bincount(batch.task_kind, minlength=len(TaskKind))
    ends = row_ends(cut_batch.attention_mask)
    widths = step_lib.micro_batch_widths(cut_config, cut_batch)
    cut_widths = [
        min(w for w in widths if w >= ends[r].max()) for r in micro_rows(cut_config, rows)
    ]
    print(
        f"rollout step {record['step']}: B={rows} ({kinds[TaskKind.CODE]} code, "
        f"{kinds[TaskKind.ALIGNMENT]} alignment rows) x T={width}, {real} real tokens "
        f"({real / (rows * width):.0%} of B x T); cut micro-batch widths {cut_widths}"
    )
    print(
        f"  update uncut {best[0]:.3f} s (first call {uncut[0]:.1f} s), cut {best[1]:.3f} s "
        f"(first call {cut[0]:.1f} s): uncut / cut = {best[0] / best[1]:.2f}"
    )
    metric_diffs = {
        name: abs(float(uncut[1][name]) - float(cut[1][name]))
        for name in sorted(uncut[1])
        if name.startswith("train/") and name != "train/step"
    }
    worst = max(metric_diffs, key=metric_diffs.get)
    print(
        "  same result: largest metric difference "
        f"{worst} {metric_diffs[worst]:.3e} (loss {float(uncut[1]['train/loss'])!r} vs "
        f"{float(cut[1]['train/loss'])!r}, grad_norm {metric_diffs['train/grad_norm']:.3e} "
        f"of {float(uncut[1]['train/grad_norm']):.4f})",
    )
    grads = [
        gradient(model_config, c, params, b, mesh)
        for c, b in ((uncut_config, batch), (cut_config, cut_batch))
    ]
    print(
        f"  gradients: largest per-leaf difference {max_relative_leaf_difference(grads[1], grads[0]):.3e}"
        f" of the leaf's largest entry; parameters after the update differ by at most "
        f"{max_tree_difference(uncut[2], cut[2]):.3e}, the update moved them by up to "
        f"{max_tree_difference(uncut[2], params):.3e} (Adam's first step divides every "
        "gradient entry by its own size, so entries near adam_eps move by up to lr whatever "
        "their rounding)",
        flush=True,
    )


def micro_rows(config: TrainConfig, rows: int) -> list[np.ndarray]:
    """Row indices of every micro-batch of the (single) mini-batch."""
    m = config.num_micro_batches
    return [step_lib.micro_batch_rows(rows, 1, m, 0, i) for i in range(m)]


def main(argv) -> None:
    del argv
    with open(LENGTHS_FILE) as f:
        records = {str(r["step"]): r for r in json.load(f)["steps"]}
    model_config = tiny.model_config(tiny.TinyModelSpec(), 2048, 2)
    params = jax.device_get(
        jax.jit(transformer.init_params, static_argnums=0)(model_config, jax.random.key(0))
    )
    mesh = mesh_lib.make_mesh(-1, 1, 1)
    print(
        f"CPU, {jax.device_count()} device(s); one update of the tiny default "
        f"({model_config.num_params / 1e6:.2f}M params, 4 micro-batches, fp32), uncut vs cut "
        f"to multiples of {_MULTIPLE.value} columns; fastest of {_STEPS.value} alternating calls",
        flush=True,
    )
    for step in _ROLLOUT_STEPS.value:
        compare(records[step], model_config, params, mesh, _STEPS.value)


if __name__ == "__main__":
    app.run(main)
