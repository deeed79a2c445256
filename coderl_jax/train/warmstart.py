"""Supervised warm start: reference solutions and reference alignment answers.

Used by the tiny default so the randomly initialised model starts RL with a non-zero pass
rate and knows the alignment answer format; real checkpoints skip it (``steps = 0``).

Examples are (prompt, response) pairs rendered exactly as RL prompts are:
* code: the problem's code-generation prompt -> "```python\\n<reference>\\n```" + end of turn;
* alignment: tasks made from reference solutions by the same traced conversion as failed
  rollouts (`rl.alignment.failures_to_tasks`) -> the task's reference JSON answer line.

The update is the RL train step itself with every advantage 1, no KL and a single update
per batch (so the importance ratio is exp(logp - stop_gradient(logp)) = 1): its gradient
is then exactly the gradient of the token-mean log-likelihood of the responses. One code
path, one set of shardings; only the optimizer settings differ (own AdamW state and
schedule: warmup + cosine by default).

The same phase continues an earlier run (``init_from``) as a supervised control for RL
(`experiments/study.py`, arm ``sft_continue``): its batch size, steps, schedule, data mix
(per batch with ``mix_per_batch``) and batch order are settings, and the last logged record carries the phase's totals
(``warm_start/updates``, ``sequences``, ``alignment_sequences``, ``tokens`` (loss tokens),
``tokens_total`` (all non-pad tokens)), counted as the RL step counts ``train/tokens`` and
``train/tokens_total``, so the two phases' compute can be compared.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from jax.sharding import Mesh

from coderl_jax.data.problems import Problem
from coderl_jax.models.config import ModelConfig
from coderl_jax.parallel import multihost
from coderl_jax.rl.alignment import AlignmentConfig, reference_tasks
from coderl_jax.rl.batch import (
    TaskKind,
    TrainBatch,
    device_put_batch,
    with_response_start,
)
from coderl_jax.rl.rollout import alignment_prompt, code_prompt
from coderl_jax.settings import check_choices, require
from coderl_jax.train import state as state_lib
from coderl_jax.train.config import TrainConfig
from coderl_jax.train.step import make_logprobs_fn, make_train_step

# (prompt token ids, response token ids, task kind)
Example = tuple[tuple[int, ...], tuple[int, ...], int]


@dataclasses.dataclass(frozen=True)
class WarmStartConfig:
    """Optional supervised phase before RL (reference solutions and alignment answers)."""

    steps: int = 0  # optimizer steps; 0 skips the warm start (real checkpoints)
    batch_size: int = 16  # examples (rows) per optimizer step
    learning_rate: float = 3e-3  # peak learning rate (after the warmup)
    # After the warmup: "cosine" decays to final_lr_ratio x the peak, "constant" holds it.
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: int | None = None  # linear warmup steps from 0 to the peak (None: 10%)
    decay_steps: int | None = None  # cosine: steps from the peak to the floor (None: the rest)
    final_lr_ratio: float = 0.1  # cosine: the floor as a fraction of the peak
    num_micro_batches: int = 1  # gradient-accumulation steps per optimizer step
    alignment_fraction: float = 0.3  # share of examples that are alignment answers
    # Every batch holds round(alignment_fraction x batch_size) alignment answers, as an RL
    # batch holds its share of alignment prompts; False: batches of the shuffled pool,
    # where length bucketing tends to put the two kinds in different batches.
    mix_per_batch: bool = False
    num_problems: int = 0  # training problems whose references are used (0: all)
    # Seed of the batch order (None: the run's seed). A continuation of an earlier warm
    # start (init_from) sets its own, so it does not replay that warm start's order.
    data_seed: int | None = None

    def __post_init__(self):
        check_choices(self)
        require(self.steps >= 0, "steps", "must be >= 0")
        require(self.batch_size >= 1, "batch_size", "must be >= 1")
        require(self.learning_rate > 0, "learning_rate", "must be > 0")
        require(self.warmup_steps is None or self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        require(self.decay_steps is None or self.decay_steps >= 1, "decay_steps", "must be >= 1")
        require(0 <= self.final_lr_ratio <= 1, "final_lr_ratio", "must be in [0, 1]")
        require(self.num_micro_batches >= 1, "num_micro_batches", "must be >= 1")
        require(
            self.batch_size % self.num_micro_batches == 0,
            "batch_size",
            f"must be a multiple of num_micro_batches ({self.num_micro_batches}), "
            f"got {self.batch_size}",
        )
        require(0 <= self.alignment_fraction <= 1, "alignment_fraction", "must be in [0, 1]")
        require(self.num_problems >= 0, "num_problems", "must be >= 0")


def code_response(reference: str) -> str:
    return f"```python\n{reference.strip()}\n```"


def warm_start_examples(
    problems: Sequence[Problem],
    tokenizer,
    end_of_turn: str,
    run_batch: Callable,
    alignment_fraction: float,
    conversion: AlignmentConfig,
    rng: np.random.Generator,
) -> tuple[list[Example], dict[str, int]]:
    """Code examples from every problem's reference, plus alignment examples so that they
    make up ``alignment_fraction`` of the total (fewer if conversion drops tasks; at most
    one per problem, so 1 gives alignment answers only, one per problem that converts)."""

    def encode(text: str) -> tuple[int, ...]:
        return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

    # No prompt-length filter: it bounds the RL batch's prompt width, which supervised
    # batches (sized to their rows) do not share.
    conversion = dataclasses.replace(conversion, max_prompt_tokens=None)

    with_refs = [p for p in problems if p.reference_solution]
    examples: list[Example] = []
    wanted = len(with_refs)
    if alignment_fraction < 1:
        examples = [
            (
                code_prompt(p, tokenizer).token_ids,
                encode(code_response(p.reference_solution) + end_of_turn),
                TaskKind.CODE,
            )
            for p in with_refs
        ]
        wanted = int(round(len(examples) * alignment_fraction / (1 - alignment_fraction)))
    counts = {"code_examples": len(examples)}
    if wanted:
        chosen = rng.choice(len(with_refs), size=min(wanted, len(with_refs)), replace=False)
        tasks, conversion_counts = reference_tasks(
            [with_refs[int(i)] for i in chosen], run_batch, step=-1, config=conversion
        )
        for task in tasks:
            response = encode(task.reference_answer() + end_of_turn)
            prompt = alignment_prompt(task, tokenizer, conversion.prompt_style)
            examples.append((prompt.token_ids, response, TaskKind.ALIGNMENT))
        counts["alignment_examples"] = len(tasks)
        counts.update({f"alignment_{k}": v for k, v in conversion_counts.items() if k != "tasks"})
    return examples, counts


def pack_examples(examples: Sequence[Example], width: int, pad_id: int) -> TrainBatch:
    """Right-padded rows [prompt | response | pad] with the loss on response tokens."""
    n = len(examples)
    tokens = np.full((n, width), pad_id, np.int32)
    attention = np.zeros((n, width), np.int32)
    loss_mask = np.zeros((n, width), np.float32)
    kinds = np.zeros((n,), np.int32)
    for row, (prompt, response, kind) in enumerate(examples):
        seq = (list(prompt) + list(response))[:width]
        tokens[row, : len(seq)] = seq
        attention[row, : len(seq)] = 1
        loss_mask[row, len(prompt) : len(seq)] = 1.0
        kinds[row] = kind
    positions = np.maximum(np.cumsum(attention, axis=1) - 1, 0).astype(np.int32)
    return TrainBatch(
        tokens=tokens,
        attention_mask=attention,
        positions=positions,
        loss_mask=loss_mask,
        advantages=np.ones((n,), np.float32),
        rewards=np.ones((n,), np.float32),
        task_kind=kinds,
    )


def length_bucketed_batches(
    examples: Sequence[Example], batch_size: int, num_batches: int, seed: int
) -> list[list[Example]]:
    """``num_batches`` batches over shuffled epochs, each of similar-length examples.

    Each epoch is shuffled, cut into windows of 16 batches, and each window sorted by
    length before it is split into batches (whose order is shuffled again), so that little
    of a batch is padding while every batch still mixes problems at random.
    """
    rng = np.random.default_rng(seed)
    batches: list[list[Example]] = []
    window = 16 * batch_size
    while len(batches) < num_batches:
        order = rng.permutation(len(examples))
        epoch = []
        for lo in range(0, len(order) - batch_size + 1, window):
            chunk = sorted(
                order[lo : lo + window], key=lambda i: len(examples[i][0]) + len(examples[i][1])
            )
            epoch += [
                chunk[b : b + batch_size] for b in range(0, len(chunk) - batch_size + 1, batch_size)
            ]
        if not epoch:
            raise ValueError(
                f"warm start: {len(examples)} examples cannot fill a batch of {batch_size}"
            )
        rng.shuffle(epoch)
        batches += [[examples[i] for i in b] for b in epoch]
    return batches[:num_batches]


def mixed_batches(
    examples: Sequence[Example], batch_size: int, num_batches: int, seed: int, fraction: float
) -> list[list[Example]]:
    """`length_bucketed_batches` of each kind, joined: every batch holds
    ``round(fraction * batch_size)`` alignment examples and the rest code examples."""
    align_rows = int(round(fraction * batch_size))
    parts = []
    for kind, rows in ((TaskKind.CODE, batch_size - align_rows), (TaskKind.ALIGNMENT, align_rows)):
        if rows:
            of_kind = [e for e in examples if e[2] == kind]
            parts.append(length_bucketed_batches(of_kind, rows, num_batches, seed + int(kind)))
    return [[e for part in batch_parts for e in part] for batch_parts in zip(*parts)]


def sft_train_config(config: WarmStartConfig, base: TrainConfig) -> TrainConfig:
    """The run's train config (AdamW settings, clipping, loss aggregation, temperature) with
    the supervised phase's schedule (by default 10% linear warmup, then cosine decay to 10%
    of the peak over the remaining steps), one update per batch, no KL and no entropy term."""
    warmup = max(1, config.steps // 10) if config.warmup_steps is None else config.warmup_steps
    return base.replace(
        learning_rate=config.learning_rate,
        warmup_steps=warmup,
        lr_schedule=config.lr_schedule,
        decay_steps=config.decay_steps or max(1, config.steps - warmup),
        final_lr_ratio=config.final_lr_ratio,
        kl_coef=0.0,
        entropy_coef=0.0,
        log_entropy=False,
        ppo_epochs=1,
        num_mini_batches=1,
        num_micro_batches=config.num_micro_batches,
    )


def phase_totals(batches: Sequence[Sequence[Example]]) -> dict[str, int]:
    """What a supervised phase trains on, counted as the RL step counts its batches
    (`train.metrics.rollout_metrics`): optimizer updates, rows, alignment rows, loss
    (response) tokens and all non-pad tokens."""
    rows = [example for batch in batches for example in batch]
    return {
        "warm_start/updates": len(batches),
        "warm_start/sequences": len(rows),
        "warm_start/alignment_sequences": sum(k == TaskKind.ALIGNMENT for _, _, k in rows),
        "warm_start/tokens": sum(len(r) for _, r, _ in rows),
        "warm_start/tokens_total": sum(len(p) + len(r) for p, r, _ in rows),
    }


def _device_batch(rows: Sequence[Example], pad_id: int, mesh: Mesh):
    # Width rounded up to a multiple of 32: a handful of compiled shapes in all.
    width = -(-max(len(p) + len(r) for p, r, _ in rows) // 32) * 32
    return device_put_batch(with_response_start(pack_examples(rows, width, pad_id)), mesh)


def run_warm_start(
    params,
    model_config: ModelConfig,
    mesh: Mesh,
    examples: Sequence[Example],
    config: WarmStartConfig,
    base_train_config: TrainConfig,
    seed: int,
    pad_id: int,
    log: Callable[[str], None] = print,
) -> tuple[object, list[dict]]:
    """Trains ``params`` for ``config.steps`` steps; returns (params, logged metrics: every
    tenth of the steps, the response NLL of a fixed random sample of ``batch_size`` examples;
    the last record also holds the `phase_totals`)."""
    if not examples:
        raise ValueError("warm start: no examples (no problem has a reference solution)")
    train_config = sft_train_config(config, base_train_config)
    state = state_lib.create_train_state(params, model_config, train_config, mesh)
    step_fn = make_train_step(model_config, train_config, mesh)
    logprobs_fn = make_logprobs_fn(model_config, train_config, mesh)
    data_seed = seed if config.data_seed is None else config.data_seed
    if config.mix_per_batch:
        batches = mixed_batches(
            examples, config.batch_size, config.steps, data_seed, config.alignment_fraction
        )
    else:
        batches = length_bucketed_batches(examples, config.batch_size, config.steps, data_seed)
    # The NLL is logged on one fixed random sample of the examples (a batch's worth, drawn
    # with the run's seed), the same rows every time and whatever the batch order: batches
    # are grouped by length, so the NLL of whichever batch comes next jumps between short
    # and long examples and hides the trend.
    probe_rows = np.random.default_rng(seed).choice(
        len(examples), config.batch_size, replace=len(examples) < config.batch_size
    )
    probe = _device_batch([examples[i] for i in probe_rows], pad_id, mesh)
    history, start = [], time.perf_counter()
    log_every = max(1, config.steps // 10)
    for step, rows in enumerate(batches):
        if step % log_every == 0 or step == config.steps - 1:
            logp = multihost.local_rows(logprobs_fn(state.params, probe))
            mask = multihost.local_rows(probe.loss_mask)
            nll = float(-(logp * mask).sum() / mask.sum())
            history.append({"warm_start/step": step, "warm_start/nll": nll})
            elapsed = time.perf_counter() - start
            log(f"warm start {step}/{config.steps}: nll {nll:.3f} ({elapsed:.0f}s)")
        state, _ = step_fn(state, _device_batch(rows, pad_id, mesh))
    history[-1].update(phase_totals(batches))
    return state.params, history
