"""The CodeRL+ training loop: `run(config)`, and `load(workdir)` for notebooks.

Per RL step (reads top to bottom in `run`):

1. draw the mixed prompt batch: round(α·B) code-generation problems from the iterator and
   the rest alignment tasks from the buffer (code fills in while the buffer is short);
2. sample G completions per prompt; execute code in the sandbox pool while the next chunk
   generates; score alignment answers; reference log-probs (`rl.rollout`);
3. optional DAPO dynamic sampling: more rounds until enough groups carry signal;
4. dispatch the jitted train step (asynchronous), then, while it runs, convert this step's
   failed programs into alignment tasks (one traced sandbox batch) for later steps;
5. metrics (read one step late), samples, periodic evaluation, checkpoint.

Timing metrics (``time/*``) are host wall-clock per phase. ``time/device_wait_fraction`` is
an estimate: the share of the step spent executing the last chunk's programs, the one phase
where only the (short) reference forward can run on the device; it does not count host work
that outlasts the asynchronous update.

Before RL: build/load the model, optional supervised warm start (tiny default), and an
evaluation; after: evaluation, summary table, reward plot, optional HF export. A run
restarted on the same workdir resumes from its latest checkpoint (warm start and the
initial evaluation are not repeated). Randomness derives from (seed, step), so a resumed
run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import jax
import numpy as np

from coderl_jax.checkpoint import PreemptionGuard
from coderl_jax.config import Config
from coderl_jax.data.iterator import PromptIterator
from coderl_jax.data.problems import render_prompt
from coderl_jax.evals import ModelCompleter, evaluate, load_benchmark
from coderl_jax.execution import SandboxPool
from coderl_jax.learner import (
    CONFIG_FILE,
    REFERENCE_DIR,
    Learner,
    eval_data_options,
    load,
    load_problems,
    model_overrides,
    setup,
)
from coderl_jax.metrics import METRICS_FILENAME, MetricsWriter, plot_curves, summary_table
from coderl_jax.models import hf_io
from coderl_jax.models.sampler import Sampler
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.parallel import multihost
from coderl_jax.rl import dapo
from coderl_jax.rl.alignment import failures_to_tasks, reference_tasks, select_candidates
from coderl_jax.rl.alignment_buffer import task_ages
from coderl_jax.rl.batch import TrainBatch, device_put_batch, group_rows_by_length
from coderl_jax.rl.mixture import draw_mixed_batch, load_alignment_pool
from coderl_jax.rl.rollout import RolloutRunner, Rollouts, alignment_prompt, code_prompt
from coderl_jax.train import state as state_lib
from coderl_jax.train import warmstart
from coderl_jax.train.metrics import MetricsOneStepLate
from coderl_jax.train.step import make_logprobs_fn, make_train_step

__all__ = ["load", "run"]  # load: the notebook entry, defined in coderl_jax.learner

log = logging.getLogger(__name__)


def run(config: Config) -> dict[str, float]:
    """Runs (or resumes) a CodeRL+ run; returns the final evaluation metrics."""
    workdir = config.run.workdir
    os.makedirs(workdir, exist_ok=True)
    learner = setup(config)
    if jax.process_index() == 0:
        config.save(os.path.join(workdir, CONFIG_FILE))
    pool = SandboxPool(num_workers=config.rollout.num_sandbox_workers)
    writer = MetricsWriter(
        workdir,
        max(1, config.run.steps),
        start_step=learner.next_step,
        samples_every=config.run.samples_every,
        console_every=config.run.log_every,
    )
    try:
        return _train(learner, pool, writer)
    finally:
        writer.close()
        learner.checkpointer.close()
        pool.close()


def _eval_samplers(learner: Learner) -> dict[str, tuple[Sampler, int]]:
    """``{metric prefix: (sampler, samples per problem)}``: greedy decoding (the paper's
    protocol) and, when configured, temperature sampling; all prompt buckets of the run."""
    config = learner.config
    greedy = dataclasses.replace(
        learner.sampler.config,
        greedy=True,
        max_new_tokens=config.eval.max_new_tokens or learner.sampler.config.max_new_tokens,
        prompt_buckets=config.rollout.sampling.prompt_buckets,
    )
    samplers = {"": (Sampler(learner.model_config, greedy, learner.mesh), 1)}
    if config.eval.sampled_num_samples:
        sampled = dataclasses.replace(
            greedy, greedy=False, temperature=config.eval.sampled_temperature
        )
        samplers["sampled/"] = (
            Sampler(learner.model_config, sampled, learner.mesh),
            config.eval.sampled_num_samples,
        )
    return samplers


def _evaluate(learner: Learner, pool, benchmarks, samplers, step: int, writer) -> dict[str, float]:
    """pass@1 on each loaded benchmark: greedy as ``eval/<benchmark>/<metric>``, sampled (if
    configured) as ``eval/<benchmark>/sampled/<metric>``.

    Multi-process: every process evaluates all the problems (each call's prompts are its
    share of the sampler's rows), so every process gets the same metrics."""
    config = learner.config
    out = {}
    for prefix, (sampler, num_samples) in samplers.items():
        complete = ModelCompleter(
            learner.state.params,
            sampler,
            learner.tokenizer,
            num_samples=num_samples,
            prompts_per_call=_eval_prompts_per_call(learner),
        )
        for loaded in benchmarks:
            start = time.perf_counter()
            metrics, _ = evaluate(
                loaded,
                complete,
                pool.check_batch,
                jax.random.key(config.run.seed),  # the same draws at every evaluation
                timeout_s=config.rollout.exec_timeout_s,
            )
            name = f"eval/{loaded.name}/{prefix}"
            out.update({f"{name}{k}": v for k, v in metrics.items()})
            out[f"{name}seconds"] = time.perf_counter() - start
    writer.write(step, out)
    return out


def _eval_prompts_per_call(learner: Learner) -> int:
    divisor = mesh_lib.batch_divisor(learner.mesh)
    return max(divisor, (32 // divisor) * divisor)


def _train(learner: Learner, pool, writer) -> dict[str, float]:
    config = learner.config
    rollout_cfg, g = config.rollout, config.rollout.num_samples
    mesh, tokenizer = learner.mesh, learner.tokenizer

    # ------------------------------------------------------------------ data
    def prompt_length(problem) -> int:
        return len(code_prompt(problem, tokenizer).token_ids)

    conversion = dataclasses.replace(
        config.alignment.conversion, max_prompt_tokens=config.data.max_prompt_tokens
    )

    def count_tokens(user_message: str) -> int:  # the prompt as sampled: chat template included
        text = render_prompt([{"role": "user", "content": user_message}], tokenizer)
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    train_problems = load_problems(config, config.data.train_split)
    iterator = PromptIterator(
        train_problems,
        rollout_cfg.prompts_per_step,
        config.data.seed,
        length_fn=prompt_length,
        max_length=config.data.max_prompt_tokens,
    )
    if learner.iterator_state:
        iterator.restore(learner.iterator_state)
    eval_data = eval_data_options(config)
    eval_benchmarks = [load_benchmark(n, eval_data, pool.run_batch) for n in config.eval.benchmarks]
    eval_samplers = _eval_samplers(learner)
    alignment_only = config.alignment.mixture.alpha == 0
    pool_source = None
    if alignment_only:  # fixed pool: earlier runs' failures plus the training references
        references, _ = reference_tasks(
            train_problems, pool.run_batch, step=-1, config=conversion, count_tokens=count_tokens
        )
        pool_source = load_alignment_pool(config.alignment.pool_files, references)

    # ------------------------------------------------------------------ warm start, initial eval
    initial = None
    if learner.next_step == 0 and learner.checkpointer.latest_step() is None:
        if config.warm_start.steps:
            _warm_start(learner, pool, train_problems, writer)
        if config.train.uses_reference and (config.warm_start.steps or config.model.init_from):
            hf_io.save_pretrained(
                os.path.join(learner.workdir, REFERENCE_DIR),
                learner.model_config,
                learner.state.params,
                tokenizer,
            )
        initial = _evaluate(learner, pool, eval_benchmarks, eval_samplers, 0, writer)
        _save(learner, 0, iterator, force=True)

    # ------------------------------------------------------------------ jitted functions
    train_step = make_train_step(learner.model_config, config.train, mesh)
    reference = None
    if config.train.uses_reference:
        multihost.sync_processes("reference_hf written")  # process 0 wrote it
        ref_dir = os.path.join(learner.workdir, REFERENCE_DIR)
        ref_dir = ref_dir if os.path.isdir(ref_dir) else learner.hf_dir
        _, ref_params = hf_io.load_pretrained(
            ref_dir,
            shardings=mesh_lib.param_shardings(learner.model_config, mesh),
            **model_overrides(config),
        )
        ref_logprobs = make_logprobs_fn(learner.model_config, config.train, mesh)

        def reference(tokens, attention_mask, positions, response_start):
            batch = _scoring_batch(tokens, attention_mask, positions, response_start)
            return ref_logprobs(ref_params, device_put_batch(batch, mesh))

    behaviour_logprobs = None
    if config.train.updates_per_batch > 1:
        behaviour_logprobs = make_logprobs_fn(learner.model_config, config.train, mesh)
    runner = RolloutRunner(rollout_cfg, tokenizer, learner.sampler, pool.check_batch, reference)
    late = MetricsOneStepLate()
    base_key = jax.random.key(config.run.seed)

    # ------------------------------------------------------------------ RL loop
    with PreemptionGuard() as guard:
        for step in range(learner.next_step, config.run.steps):
            step_start = time.perf_counter()
            rng = np.random.default_rng([config.run.seed, step])
            key = jax.random.fold_in(base_key, step)
            mixed = draw_mixed_batch(
                iterator.local_batch_size,  # this process's share of the B prompts
                config.alignment.mixture,
                lambda n: next(iterator)[:n],
                pool_source if alignment_only else learner.buffer,
                rng,
            )
            items = [code_prompt(p, tokenizer) for p in mixed.code]
            items += [alignment_prompt(t, tokenizer, conversion.prompt_style) for t in mixed.align]
            rollouts = _rollouts(runner, learner, items, key, iterator, rng)
            batch = rollouts.batch
            if config.train.micro_batch_width_multiple:  # short rows share micro-batches
                batch = group_rows_by_length(
                    batch, config.train.num_mini_batches, config.train.num_micro_batches
                )
            batch = device_put_batch(batch, mesh)
            if behaviour_logprobs is not None:
                batch = batch.replace(old_logprobs=behaviour_logprobs(learner.state.params, batch))
            t0 = time.perf_counter()
            learner.state, device_metrics = train_step(learner.state, batch)  # asynchronous

            # While the update runs: this step's failures -> alignment tasks for later steps.
            candidates, selection_counts = select_candidates(
                rollouts.code_candidates, config.alignment.conversion.complexity_window
            )
            tasks, conversion_counts = failures_to_tasks(
                candidates, pool.run_batch, step=step, config=conversion, count_tokens=count_tokens
            )
            if not alignment_only:
                learner.buffer.add(tasks)
            convert_seconds = time.perf_counter() - t0
            previous = late.push(device_metrics)
            if previous is not None:
                writer.write(step - 1, previous)
            update_seconds = time.perf_counter() - t0 - convert_seconds
            host = dict(rollouts.metrics)
            host.update(mixed.plan.metrics())
            host.update({f"rollout/align/selection/{k}": v for k, v in selection_counts.items()})
            host.update({f"rollout/align/conversion/{k}": v for k, v in conversion_counts.items()})
            host["rollout/align/buffer_size"] = len(learner.buffer)
            host.update(learner.sampler.metrics())
            if mixed.align:
                host["rollout/align/task_age_mean"] = float(task_ages(mixed.align, step).mean())
            host.update({f"time/{k}": v for k, v in rollouts.phase_seconds.items()})
            host["time/convert"] = convert_seconds
            host["time/update_wait"] = update_seconds
            host["time/step"] = time.perf_counter() - step_start
            host["time/device_wait_fraction"] = (
                rollouts.phase_seconds.get("execute_unoverlapped", 0.0) / host["time/step"]
            )
            writer.write(step, host)
            _write_samples(writer, step, rollouts, g, tokenizer)

            if (
                config.eval.every_steps
                and (step + 1) % config.eval.every_steps == 0
                and step + 1 < config.run.steps
            ):
                _evaluate(learner, pool, eval_benchmarks, eval_samplers, step + 1, writer)
            stop = guard.should_stop(step)
            if (
                (step + 1) % config.run.checkpoint_every == 0
                or stop
                or step + 1 == config.run.steps
            ):
                _save(learner, step + 1, iterator, force=True)
            if stop:
                log.warning("stop requested (SIGTERM): saved step %d and exiting", step + 1)
                last = late.flush()
                if last is not None:
                    writer.write(step, last)
                return {}
        last = late.flush()
        if last is not None:
            writer.write(config.run.steps - 1, last)

    # ------------------------------------------------------------------ final evaluation, reports
    if config.run.steps == 0 and initial is not None:  # a warm-start-only run: evaluated
        final = initial
    else:
        final = _evaluate(learner, pool, eval_benchmarks, eval_samplers, config.run.steps, writer)
    learner.checkpointer.wait()
    if jax.process_index() == 0:
        metrics_path = os.path.join(learner.workdir, METRICS_FILENAME)
        with open(os.path.join(learner.workdir, "summary.md"), "w") as f:
            f.write(summary_table(metrics_path) + "\n")
        plot_curves(metrics_path, os.path.join(learner.workdir, "curves.png"))
    if config.run.export_hf:
        hf_io.save_pretrained(
            os.path.join(learner.workdir, "hf"),
            learner.model_config,
            learner.state.params,
            tokenizer,
        )
    return final


def _rollouts(runner, learner, items, key, iterator, rng) -> Rollouts:
    """One rollout round, or DAPO dynamic sampling over several rounds."""
    rollout_cfg = learner.config.rollout
    rollouts = runner.run(learner.state.params, items, key)
    if not rollout_cfg.dynamic_sampling:
        return rollouts
    g, num_groups = rollout_cfg.num_samples, len(items)
    accumulator = dapo.DynamicSamplingBatch(num_groups, g, rollout_cfg.max_sampling_rounds)
    rounds = [rollouts]
    accumulator.add(rollouts.batch.rewards)
    while not accumulator.is_full and not accumulator.exhausted:
        # Fresh code prompts for the new round; alignment tasks are drawn again.
        more = draw_mixed_batch(
            num_groups,
            learner.config.alignment.mixture,
            lambda n: next(iterator)[:n],
            learner.buffer,
            rng,
        )
        extra = [code_prompt(p, learner.tokenizer) for p in more.code]
        extra += [
            alignment_prompt(t, learner.tokenizer, learner.config.alignment.conversion.prompt_style)
            for t in more.align
        ]
        rounds.append(runner.run(learner.state.params, extra, jax.random.fold_in(key, len(rounds))))
        accumulator.add(rounds[-1].batch.rewards)
    filled = accumulator.num_kept_groups
    kept = accumulator.take(allow_partial=True)
    rows = list(zip(kept.round_index.tolist(), kept.sample_index.tolist()))
    # Short of informative groups after the last round: fill with the first round's groups in
    # order (their advantages are zero, so they add no gradient, only tokens to the mean).
    used = set(rows)
    for n in range(len(rollouts.completions)):
        if len(rows) >= num_groups * g:
            break
        if (0, n) not in used:
            rows.append((0, n))
    # Rounds drew different prompts: the batch's response start is the earliest of theirs.
    response_start = min(r.batch.response_start for r in rounds)
    batch = jax.tree.map(
        lambda *xs: np.stack([xs[r][i] for r, i in rows]),
        *[r.batch.replace(response_start=response_start) for r in rounds],
    )
    metrics = dict(rounds[0].metrics)
    metrics["rollout/dynamic_sampling/rounds"] = len(rounds)
    metrics["rollout/dynamic_sampling/informative_groups"] = filled
    return dataclasses.replace(rollouts, batch=batch, metrics=metrics)


def _scoring_batch(tokens, attention_mask, positions, response_start: int) -> TrainBatch:
    n, t = tokens.shape
    zeros = np.zeros((n, t), np.float32)
    return TrainBatch(
        tokens=tokens,
        attention_mask=attention_mask,
        positions=positions,
        loss_mask=zeros,
        advantages=np.zeros((n,), np.float32),
        rewards=np.zeros((n,), np.float32),
        task_kind=np.zeros((n,), np.int32),
        response_start=response_start,
    )


def _warm_start(learner: Learner, pool, problems, writer) -> None:
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


def _save(learner: Learner, next_step: int, iterator, force: bool) -> None:
    extras = {"next_step": next_step, "iterator": iterator.state()}
    learner.checkpointer.save(
        next_step, learner.state, extras, write_buffer=learner.buffer.save_jsonl, force=force
    )


def _write_samples(writer, step: int, rollouts: Rollouts, g: int, tokenizer) -> None:
    by_kind: dict[str, list] = {}
    for p, item in enumerate(rollouts.items):
        if len(by_kind.setdefault(item.kind, [])) >= 2:
            continue
        n = p * g
        prompt = tokenizer.decode(list(item.token_ids), skip_special_tokens=False)
        by_kind[item.kind].append(
            (prompt, rollouts.completions[n], float(rollouts.batch.rewards[n]), {})
        )
    for kind, samples in by_kind.items():
        writer.write_samples(step, kind, samples)
