"""One CodeRL+ RL step, top to bottom: `RLStep` (built once per run).

``state, out = rl_step(state, step)`` runs:

1. **draw** the mixed batch: code-generation problems from the prompt iterator's walk (each
   problem once per epoch), the rest alignment tasks from the buffer, in the counts of the
   run's semantics (code prompts fill in while the buffer is short; `coderl_jax.rl.mixture`);
2. **prompts**: each problem or task rendered with the chat template and tokenized;
3. **rollouts**: G samples per prompt, code executed in the sandbox pool while the next
   chunk generates, alignment answers scored, group advantages, reference log-probs
   (`coderl_jax.rl.rollout`); with DAPO dynamic sampling, more rounds until enough groups
   carry signal (`coderl_jax.rl.dapo`);
4. **pack** the `TrainBatch`: rows grouped by length (when micro-batches are cut to length),
   placed on the mesh, behaviour log-probs when a batch makes several updates; the
   sampler's log-probs checked against the trainer's on one micro-batch
   (``train/logprob_diff_max``);
5. **update**: the jitted train step, dispatched asynchronously;
6. **failures to tasks**, while the update runs: this step's failed programs are traced and
   become alignment tasks for later steps (`coderl_jax.rl.alignment`);
7. **metrics**: the step's host metrics now; the update's device metrics are fetched one
   step late (`coderl_jax.train.metrics.MetricsOneStepLate`) so the host never waits for it.

Randomness derives from (seed, step), so a resumed run continues exactly as an
uninterrupted one would. Timing metrics (``time/*``) are host wall-clock per phase;
``time/device_wait_fraction`` estimates the share of the step spent executing the last
chunk's programs, the one phase where only the (short) reference forward runs on the device.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from coderl_jax.rl import dapo
from coderl_jax.rl.alignment import failures_to_tasks, select_candidates
from coderl_jax.rl.alignment_buffer import AlignmentBuffer, task_ages
from coderl_jax.rl.batch import TrainBatch, device_put_batch, group_rows_by_length
from coderl_jax.rl.mixture import MixedBatch, draw_mixed_batch, plan_step
from coderl_jax.rl.rollout import (
    PromptItem,
    RolloutRunner,
    Rollouts,
    alignment_prompt,
    code_prompt,
    prompt_token_count,
)
from coderl_jax.train.metrics import MetricsOneStepLate, logprob_diff_max
from coderl_jax.train.state import TrainState
from coderl_jax.train.step import make_logprobs_fn, make_train_step, micro_batch_rows

if TYPE_CHECKING:
    from coderl_jax.config import Config
    from coderl_jax.data.iterator import PromptIterator
    from coderl_jax.learner import Learner


@dataclasses.dataclass
class StepOutput:
    """What one step produced, besides the new state."""

    metrics: dict[str, float]  # this step's host metrics (rollout/, time/, sampler/)
    previous_update_metrics: dict[str, float] | None  # step - 1's update (train/...), fetched
    rollouts: Rollouts


def tasks_per_process(num_tasks: int, process_count: int) -> list[int]:
    """Every process's alignment-source size (a collective with several processes), so all
    plan the step alike."""
    if process_count == 1:
        return [num_tasks]
    from jax.experimental import multihost_utils

    return [int(n) for n in multihost_utils.process_allgather(np.asarray(num_tasks))]


class RLStep:
    """One RL step of a run (see the module docstring)."""

    def __init__(
        self,
        learner: Learner,
        pool,
        iterator: PromptIterator,
        alignment_source: AlignmentBuffer,
        reference_params: Any = None,
    ):
        """
        Args:
          learner: the run (config, model, mesh, tokenizer, sampler, buffer).
          pool: the `SandboxPool` that runs and traces programs.
          iterator: the training problems, this process's share per step.
          alignment_source: where alignment prompts are drawn from: the learner's buffer,
            or a fixed pool (alignment_only).
          reference_params: the KL term's frozen reference policy (None: no KL).
        """
        config: Config = learner.config
        self.config, self.learner, self.pool = config, learner, pool
        self.iterator, self.alignment_source = iterator, alignment_source
        self.base_key = jax.random.key(config.run.seed)
        self.train_step = make_train_step(learner.model_config, config.train, learner.mesh)
        self.score = score = make_logprobs_fn(learner.model_config, config.train, learner.mesh)
        self.behaviour_score = score if config.train.updates_per_batch > 1 else None
        self.runner = RolloutRunner(
            config.rollout, learner.tokenizer, learner.sampler, pool.check_batch, score,
            reference_params,
        )  # fmt: skip
        self.late = MetricsOneStepLate()

    def __call__(self, state: TrainState, step: int) -> tuple[TrainState, StepOutput]:
        """Runs step ``step`` from ``state``; the returned state's update may still run."""
        start = time.perf_counter()
        rng = np.random.default_rng([self.config.run.seed, step])
        key = jax.random.fold_in(self.base_key, step)
        mixed = self.draw(rng)
        rollouts = self.rollouts(state.params, self.prompts(mixed), key, rng)
        batch, checks = self.pack(state.params, rollouts.batch)
        update_start = time.perf_counter()
        state, device_metrics = self.train_step(state, batch)  # asynchronous
        conversion = self.failures_to_tasks(rollouts, step)
        convert_seconds = time.perf_counter() - update_start
        previous = self.late.push({**device_metrics, **checks})  # waits for step - 1's only
        metrics = self.host_metrics(mixed, rollouts, conversion, step)
        metrics["time/convert"] = convert_seconds
        metrics["time/update_wait"] = time.perf_counter() - update_start - convert_seconds
        metrics["time/step"] = time.perf_counter() - start
        unoverlapped = rollouts.phase_seconds.get("execute_unoverlapped", 0.0)
        metrics["time/device_wait_fraction"] = unoverlapped / metrics["time/step"]
        return state, StepOutput(metrics, previous, rollouts)

    def flush(self) -> dict[str, float] | None:
        """The last step's update metrics (waits for the update)."""
        return self.late.flush()

    # ------------------------------------------------------------------ 1-2: batch, prompts
    def draw(self, rng: np.random.Generator) -> MixedBatch:
        """This process's share of the step's prompts: problems, then alignment tasks."""
        mixture, iterator = self.config.alignment.mixture, self.iterator
        sizes = tasks_per_process(len(self.alignment_source), iterator.process_count)
        plans = plan_step(iterator.global_batch_size, mixture.alpha, sizes, mixture.semantics)
        return draw_mixed_batch(
            plans, iterator.process_index, mixture, iterator, self.alignment_source, rng
        )

    def prompts(self, mixed: MixedBatch) -> list[PromptItem]:
        tokenizer, style = self.learner.tokenizer, self.config.alignment.conversion.prompt_style
        semantics = self.config.semantics
        items = [code_prompt(problem, tokenizer, semantics) for problem in mixed.code]
        return items + [alignment_prompt(task, tokenizer, style) for task in mixed.align]

    # ------------------------------------------------------------------ 3: rollouts
    def rollouts(
        self, params, items: Sequence[PromptItem], key: jax.Array, rng: np.random.Generator
    ) -> Rollouts:
        """One rollout round, or DAPO dynamic sampling over several rounds."""
        rollouts = self.runner.run(params, items, key)
        if not self.config.rollout.dynamic_sampling:
            return rollouts
        g, num_groups = self.config.rollout.num_samples, len(items)
        accumulator = dapo.DynamicSamplingBatch(
            num_groups, g, self.config.rollout.max_sampling_rounds
        )
        rounds = [rollouts]
        accumulator.add(rollouts.batch.rewards)
        while not accumulator.is_full and not accumulator.exhausted:
            # Fresh code prompts for the new round; alignment tasks are drawn again.
            more = self.prompts(self.draw(rng))
            rounds.append(self.runner.run(params, more, jax.random.fold_in(key, len(rounds))))
            accumulator.add(rounds[-1].batch.rewards)
        rows = dapo.kept_rows(accumulator, num_groups * g)
        # Rounds drew different prompts: the batch's response start is the earliest of theirs.
        response_start = min(r.batch.response_start for r in rounds)
        batch = jax.tree.map(
            lambda *xs: np.stack([xs[r][i] for r, i in rows]),
            *[r.batch.replace(response_start=response_start) for r in rounds],
        )
        metrics = dict(rounds[0].metrics)
        metrics["rollout/dynamic_sampling/rounds"] = len(rounds)
        metrics["rollout/dynamic_sampling/informative_groups"] = accumulator.num_kept_groups
        return dataclasses.replace(rollouts, batch=batch, metrics=metrics)

    # ------------------------------------------------------------------ 4: pack
    def pack(self, params, batch: TrainBatch) -> tuple[TrainBatch, dict[str, jax.Array]]:
        """The host batch as the train step takes it, on the mesh, and
        ``train/logprob_diff_max``: max |sampler - trainer| log-prob over the loss tokens of
        one micro-batch (the last of the first mini-batch: the longest rows when grouped by
        length), a device scalar fetched with the update's metrics. The loss never compares
        the two (one update: the ratio is against the trainer's own log-probs; several: the
        behaviour log-probs replace the sampler's), so a mismatch shows only here."""
        train, mesh = self.config.train, self.learner.mesh
        if train.micro_batch_width_multiple:  # short rows share micro-batches
            batch = group_rows_by_length(batch, train.num_mini_batches, train.num_micro_batches)
        host, batch = batch, device_put_batch(batch, mesh)
        if host.old_logprobs is None:  # no sampler log-probs to check
            return batch, {}
        rows = micro_batch_rows(
            len(host.tokens), train.num_mini_batches, train.num_micro_batches,
            mini=0, micro=train.num_micro_batches - 1,
        )  # fmt: skip
        if self.behaviour_score is not None:  # several updates: ratios against this policy
            behaviour = self.behaviour_score(params, batch.sequences)
            checked_mask = np.zeros(np.shape(host.loss_mask), np.float32)
            checked_mask[rows] = np.asarray(host.loss_mask)[rows]
            diff = logprob_diff_max(
                batch.old_logprobs, behaviour, device_put_batch(checked_mask, mesh)
            )
            batch = batch.replace(old_logprobs=behaviour)
        else:  # one update: the trainer's log-probs of that micro-batch alone
            micro = device_put_batch(jax.tree.map(lambda x: np.asarray(x)[rows], host), mesh)
            trainer = self.score(params, micro.sequences)
            diff = logprob_diff_max(micro.old_logprobs, trainer, micro.loss_mask)
        return batch, {"train/logprob_diff_max": diff}

    # ------------------------------------------------------------------ 6: failures -> tasks
    def failures_to_tasks(self, rollouts: Rollouts, step: int) -> dict[str, float]:
        """Converts this step's failed programs into alignment tasks (added to the buffer
        unless alignment_only draws from a fixed pool); returns the selection and
        conversion counts."""
        conversion = self.config.alignment.conversion
        candidates, selection_counts = select_candidates(
            rollouts.code_candidates, conversion.complexity_window, conversion.semantics
        )
        tasks, conversion_counts = failures_to_tasks(
            candidates, self.pool.run_batch, step=step, config=conversion,
            count_tokens=self.count_tokens,
        )  # fmt: skip
        if self.config.alignment.mixture.mode != "alignment_only":
            self.learner.buffer.add(tasks)
        counts = {f"rollout/align/selection/{k}": v for k, v in selection_counts.items()}
        counts.update({f"rollout/align/conversion/{k}": v for k, v in conversion_counts.items()})
        return counts

    def count_tokens(self, user_message: str) -> int:
        return prompt_token_count(self.learner.tokenizer, user_message)

    # ------------------------------------------------------------------ 7: metrics
    def host_metrics(
        self, mixed: MixedBatch, rollouts: Rollouts, conversion: dict[str, float], step: int
    ) -> dict[str, float]:
        metrics = dict(rollouts.metrics)
        metrics.update(mixed.plan.metrics())
        metrics.update(conversion)
        metrics["rollout/align/buffer_size"] = len(self.learner.buffer)
        metrics.update(self.learner.sampler.metrics())
        if mixed.align:
            metrics["rollout/align/task_age_mean"] = float(task_ages(mixed.align, step).mean())
        metrics.update({f"time/{k}": v for k, v in rollouts.phase_seconds.items()})
        return metrics
