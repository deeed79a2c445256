"""The lifecycle of a CodeRL+ run: `run(config)`, and `load(workdir)` for notebooks.

`run` sets the run up (`coderl_jax.learner.setup`: mesh, model, sampler, state, restored
from the workdir's latest checkpoint when there is one), prepares the data, runs the
supervised warm start and the first evaluation on a fresh run, then calls the RL step
(`coderl_jax.rl.step.RLStep`, where one step reads top to bottom) once per step, with
the evaluation, checkpoint and preemption cadence around it, and ends with the final
evaluation, the summary table, the reward plot and an optional HF export.

`run` first checks everything the run needs (`coderl_jax.preflight`: settings, paths,
data, devices, and that a workdir's saved run has this config), so a bad run stops before
anything loads, then records the config (and the command line) in the workdir
(`coderl_jax.workdir`).

A run restarted on the same workdir resumes from its latest checkpoint (the warm start
and the first evaluation are not repeated); randomness derives from (seed, step), so it
continues exactly as an uninterrupted run would. A checkpoint is written after all of its
steps' metrics (the update's metrics included), and records how far the metric files had
got, so a restart after a crash or ``kill -9`` -- even one in the middle of a step or of
an asynchronous checkpoint write -- cuts them back to it and ends with the same metrics
and parameters as an uninterrupted run (tests/test_faults.py kills a real run at such
points: `coderl_jax.faults`). SIGTERM saves and exits.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import jax
import numpy as np

from coderl_jax import faults, preflight, storage
from coderl_jax import workdir as workdir_lib
from coderl_jax.data.iterator import PromptIterator
from coderl_jax.evals.periodic import PeriodicEvaluation
from coderl_jax.execution import SandboxPool
from coderl_jax.learner import (
    REFERENCE_DIR,
    Learner,
    eval_data_options,
    load,
    load_problems,
    reference_params,
    setup,
)
from coderl_jax.metrics import METRICS_FILENAME, MetricsWriter
from coderl_jax.models import hf_io
from coderl_jax.preemption import PreemptionGuard
from coderl_jax.reports import plot_curves, summary_table
from coderl_jax.rl.alignment import reference_tasks
from coderl_jax.rl.alignment_buffer import AlignmentBuffer
from coderl_jax.rl.mixture import load_alignment_pool
from coderl_jax.rl.rollout import Rollouts, code_prompt, prompt_token_count
from coderl_jax.rl.step import RLStep
from coderl_jax.settings import require
from coderl_jax.train import state as state_lib
from coderl_jax.train import warmstart

if TYPE_CHECKING:
    from coderl_jax.config import Config

__all__ = ["RunConfig", "load", "run"]  # load: the notebook entry, defined in learner

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The run as a whole: where it writes, how long, and its cadences."""

    # Checkpoints, metrics, samples; a run started again on it resumes it. A local directory
    # or any etils.epath path, e.g. gs://bucket/runs/x (coderl_jax.storage). run.py without
    # --workdir: runs/<name> for --flagfile=<dir>/<name>.flags, else this default.
    workdir: str = "runs/default"
    steps: int = 100  # RL steps
    seed: int = 0  # PRNG seed of sampling and initialisation (and data order, by default)
    mesh: tuple[int, int, int] = (-1, 1, 1)  # (data, fsdp, tensor); -1: remaining devices
    log_every: int = 1  # console line every N steps
    samples_every: int = 10  # write sample generations every N steps
    checkpoint_every: int = 25  # save every N steps (and at the end, and on SIGTERM)
    keep_checkpoints: int = 2  # keep the last K checkpoints
    keep_period: int = 0  # also keep every checkpoint whose step is a multiple of N (0: none)
    export_hf: bool = False  # write an HF directory of the final policy (workdir/hf)
    # Resume a workdir whose run was saved with other settings (they are listed and the old
    # config is kept as config.before_step_<s>.json); without it such a start stops.
    allow_config_change: bool = False

    def __post_init__(self):
        require(self.steps >= 0, "steps", "must be >= 0")
        require(len(self.mesh) == 3, "mesh", "must be (data, fsdp, tensor)")
        require(
            all(size == -1 or size >= 1 for size in self.mesh) and list(self.mesh).count(-1) <= 1,
            "mesh",
            "sizes must be >= 1, one of them may be -1 (the remaining devices)",
        )
        for name in ("log_every", "samples_every", "checkpoint_every", "keep_checkpoints"):
            require(getattr(self, name) >= 1, name, "must be >= 1")
        require(self.keep_period >= 0, "keep_period", "must be >= 0 (0: none)")


def run(
    config: Config, flags: Sequence[str] | None = None, command: str | None = None
) -> dict[str, float]:
    """Runs (or resumes) a CodeRL+ run; returns the final evaluation metrics.

    Args:
      config: the run.
      flags, command: the command line that started it, for ``flags.txt``
        (`coderl_jax.workdir.record`): its flags (flagfiles expanded) and as typed.

    Raises:
      ConfigError: the run cannot start (`coderl_jax.preflight`); nothing was written.
    """
    preflight.check(config)
    if jax.process_index() == 0:
        workdir_lib.record(config, flags, command)
    learner = setup(config)
    pool = SandboxPool(num_workers=config.rollout.num_sandbox_workers)
    resumed = learner.checkpointer.latest_step() is not None
    writer = MetricsWriter(
        config.run.workdir,
        max(1, config.run.steps),
        start_step=learner.next_step,
        samples_every=config.run.samples_every,
        console_every=config.run.log_every,
        # A fresh run starts the files anew; checkpoints of older runs lack positions.
        resume_at=learner.metrics_positions if resumed else {},
    )
    try:
        return _run(learner, pool, writer)
    finally:
        writer.close()
        learner.checkpointer.close()
        pool.close()


def _run(learner: Learner, pool: SandboxPool, writer: MetricsWriter) -> dict[str, float]:
    config = learner.config
    # ------------------------------------------------------------------ data, evaluation
    train_problems = load_problems(config, config.data.train_split)
    iterator = PromptIterator(
        train_problems,
        config.rollout.prompts_per_step,
        config.data.seed,
        length_fn=lambda problem: len(
            code_prompt(problem, learner.tokenizer, config.semantics).token_ids
        ),
        max_length=config.data.max_prompt_tokens,
    )
    if learner.iterator_state:
        iterator.restore(learner.iterator_state)
    evaluate = PeriodicEvaluation(
        config.eval,
        eval_data_options(config),
        learner.model_config,
        learner.sampling,
        learner.mesh,
        learner.tokenizer,
        pool,
        seed=config.run.seed,
        timeout_s=config.rollout.exec_timeout_s,
    )

    # ------------------------------------------------------------------ warm start, first eval
    initial = None
    if learner.next_step == 0 and learner.checkpointer.latest_step() is None:
        if config.warm_start.steps:
            _warm_start(learner, pool, train_problems, writer)
        if config.train.uses_reference and (config.warm_start.steps or config.model.init_from):
            _export(learner, storage.as_path(learner.workdir) / REFERENCE_DIR)
        if config.eval.at_start or config.run.steps == 0:
            initial = _evaluate(evaluate, learner, 0, writer)
        _save(learner, 0, iterator, writer)

    # ------------------------------------------------------------------ RL steps
    learner.sampler = faults.instrument_sampler(learner.sampler)
    rl_step = RLStep(
        learner,
        pool,
        iterator,
        _alignment_source(learner, pool, train_problems),
        reference_params(learner) if config.train.uses_reference else None,
    )
    with PreemptionGuard() as guard:
        for step in range(learner.next_step, config.run.steps):
            faults.begin_step(step)
            learner.state, out = rl_step(learner.state, step)
            if out.previous_update_metrics is not None:
                writer.write(step - 1, out.previous_update_metrics)
                writer.end_step(step - 1)
            writer.write(step, out.metrics)
            _write_samples(writer, step, out.rollouts, learner.tokenizer)
            faults.kill_point("update", step)
            done = step + 1 == config.run.steps
            stop = guard.should_stop(step)
            save = (step + 1) % config.run.checkpoint_every == 0 or stop or done
            every = config.eval.every_steps
            evaluate_now = every and (step + 1) % every == 0 and not done
            if save or evaluate_now:  # both need the update; a checkpoint, all its metrics
                last = rl_step.flush()
                if last is not None:
                    writer.write(step, last)
                    writer.end_step(step)
            if evaluate_now:
                _evaluate(evaluate, learner, step + 1, writer)
            if save:
                _save(learner, step + 1, iterator, writer)
            if stop:
                log.warning("stop requested (SIGTERM): saved step %d and exiting", step + 1)
                return {}

    # ------------------------------------------------------------------ final eval, reports
    if config.run.steps == 0 and initial is not None:  # a warm-start-only run: evaluated
        final = initial
    else:
        final = _evaluate(evaluate, learner, config.run.steps, writer)
    learner.checkpointer.wait()
    if jax.process_index() == 0:
        writer.flush()
        workdir = storage.as_path(learner.workdir)
        metrics_path = workdir / METRICS_FILENAME
        storage.write_atomically(workdir / "summary.md", summary_table(metrics_path) + "\n")
        plot_curves(metrics_path, workdir / "curves.png")
    if config.run.export_hf:
        _export(learner, storage.as_path(learner.workdir) / "hf")
    return final


def _export(learner: Learner, hf_dir: str | os.PathLike) -> None:
    """The current policy as an HF directory, with the source model's generation config."""
    generation = hf_io.generation_config_for(
        learner.hf_dir,
        learner.model_config,
        learner.special.stop_ids,
        learner.special.pad_id,
        learner.sampling,
    )
    hf_io.save_pretrained(
        hf_dir,
        learner.model_config,
        learner.state.params,
        learner.tokenizer,
        generation_config=generation,
    )


def _alignment_source(learner: Learner, pool: SandboxPool, train_problems) -> AlignmentBuffer:
    """The learner's buffer, or for alignment_only (α = 0) a fixed pool: earlier runs'
    buffer files plus tasks traced from the training references."""
    config = learner.config
    if config.alignment.mixture.mode != "alignment_only":
        return learner.buffer
    references, _ = reference_tasks(
        train_problems,
        pool.run_batch,
        step=-1,
        config=config.alignment.conversion,
        count_tokens=lambda message: prompt_token_count(learner.tokenizer, message),
    )
    return load_alignment_pool(config.alignment.pool_files, references)


def _evaluate(evaluate: PeriodicEvaluation, learner: Learner, step: int, writer) -> dict:
    start = time.perf_counter()
    metrics = evaluate(learner.state.params)
    writer.write(step, {**metrics, "time/eval": time.perf_counter() - start})
    return metrics


def _warm_start(learner: Learner, pool: SandboxPool, problems, writer) -> None:
    config = learner.config
    ws = config.warm_start
    examples, counts = warmstart.warm_start_examples(
        problems[: ws.num_problems or None],
        learner.tokenizer,
        learner.tokenizer.decode([learner.special.stop_ids[0]]),
        pool.run_batch,
        ws.alignment_fraction,
        config.alignment.conversion,
        np.random.default_rng(config.run.seed),
    )
    log.info("warm start examples: %s", counts)
    params, history = warmstart.run_warm_start(
        learner.state.params,
        learner.model_config,
        learner.mesh,
        examples,
        ws,
        config.train,
        config.run.seed,
        learner.special.pad_id,
    )
    learner.state = state_lib.create_train_state(
        params, learner.model_config, config.train, learner.mesh
    )
    writer.write(0, {**history[-1], **{f"warm_start/{k}": v for k, v in counts.items()}})


def _save(learner: Learner, next_step: int, iterator: PromptIterator, writer) -> None:
    extras = {"next_step": next_step, "iterator": iterator.state(), "metrics": writer.positions()}
    started = learner.checkpointer.save(
        next_step, learner.state, extras, write_buffer=learner.buffer.save_jsonl, force=True
    )
    if started:
        faults.kill_point("checkpoint", next_step)


def _write_samples(writer: MetricsWriter, step: int, rollouts: Rollouts, tokenizer) -> None:
    """The first two prompts of each kind with their first completion and its reward."""
    g = len(rollouts.completions) // len(rollouts.items)
    by_kind: dict[str, list] = {}
    for p, item in enumerate(rollouts.items):
        samples = by_kind.setdefault(item.kind.metric_name, [])
        if len(samples) < 2:
            prompt = tokenizer.decode(list(item.token_ids), skip_special_tokens=False)
            reward = float(rollouts.batch.rewards[p * g])
            samples.append((prompt, rollouts.completions[p * g], reward, {}))
    for kind, samples in by_kind.items():
        writer.write_samples(step, kind, samples)
