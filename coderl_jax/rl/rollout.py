"""One RL step's rollouts: prompts -> samples -> execution -> rewards -> advantages.

Host side of the CodeRL+ loop. A step's prompts (code-generation problems first, then
alignment tasks; see `coderl_jax.rl.mixture`) are sampled G times each. Code completions
are executed against their tests in the sandbox pool (reward 1/0); alignment completions
are parsed and scored per variable (`coderl_jax.rl.rewards`). Advantages are computed
within each prompt's group of G, for both kinds alike, and everything is packed into one
fixed-shape `TrainBatch` whose rows are left-aligned (`coderl_jax.rl.batch.left_align`).

Overlap of generation and execution, two ways:

* Continuous decoder (`Sampler.decodes_continuously`; any mesh, any number of processes,
  each process scoring its own rows): one sampler call for all prompts; each batch of
  samples that finishes is handed over between decode segments and scored
  (decoded, executed in the sandbox pool, rewarded) on a background thread while the
  device decodes the rest. Only the scoring of the last samples to finish, beside the
  reference forward, is not overlapped.
* Static decoder: the prompts are split into ``overlap_chunks`` chunks; chunk k+1 is
  dispatched to the device (JAX dispatches asynchronously) before the host executes chunk
  k's programs.

Either way the reference model's log-probs are dispatched as soon as every sample exists.
Everything stays on-policy: all samples are drawn from the same parameters.

Failed code rollouts become alignment candidates (`code_candidates`); the loop converts
them after dispatching the train step, so tracing overlaps the update too.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import numpy as np

from coderl_jax.data.problems import Problem, code_generation_messages, render_prompt
from coderl_jax.models.sampler import FINISH_STOP, FinishedSamples, Sampler, SamplingConfig
from coderl_jax.parallel import mesh as mesh_lib
from coderl_jax.parallel import multihost
from coderl_jax.rl import dapo, rewards
from coderl_jax.rl.advantages import ADVANTAGE_ESTIMATORS, AdvantageEstimator
from coderl_jax.rl.alignment import AlignmentTask, CodeRollout, code_rollout
from coderl_jax.rl.batch import (
    Sequences,
    TaskKind,
    TrainBatch,
    device_put_batch,
    left_align,
    shared_response_start,
)
from coderl_jax.settings import Semantics, check_choices, require


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """Sampling, execution and rewards of one RL step."""

    prompts_per_step: int = 16  # B: prompts per step (code + alignment)
    num_samples: int = 8  # G: completions per prompt (one GRPO group)
    sampling: SamplingConfig = SamplingConfig(max_new_tokens=96, temperature=1.0)
    advantage_estimator: AdvantageEstimator = "grpo"  # how rewards become advantages
    exec_timeout_s: float = 5.0  # wall-clock limit per test / program run (official judge: 6 s)
    float_tolerance: float | None = None  # stdio tests: compare float tokens within this
    num_sandbox_workers: int | None = None  # sandbox pool size (None: CPU count)
    overlap_chunks: int = 2  # split generation so execution of chunk k overlaps chunk k+1
    # Alignment reward (rl/rewards.py): "official" (the official code's, for official tasks),
    # "improved" (0.1 + 0.9 * fraction right), "paper" (fraction of variables); None: the
    # semantics' own ("official" or "improved").
    alignment_reward_mode: Literal["official", "improved", "paper"] | None = None
    overlong_buffer_len: int = 0  # DAPO soft overlong punishment window (0: off)
    dynamic_sampling: bool = False  # DAPO: keep only groups whose rewards differ
    max_sampling_rounds: int = 3  # dynamic sampling: rollout rounds per step at most
    semantics: Semantics = "improved"  # code judge, code extraction and alignment reward rules

    def __post_init__(self):
        check_choices(self)
        require(self.prompts_per_step >= 1, "prompts_per_step", "must be >= 1")
        require(self.num_samples >= 1, "num_samples", "must be >= 1")
        require(self.exec_timeout_s > 0, "exec_timeout_s", "must be > 0")
        require(self.overlap_chunks >= 1, "overlap_chunks", "must be >= 1")
        require(self.max_sampling_rounds >= 1, "max_sampling_rounds", "must be >= 1")
        require(self.overlong_buffer_len >= 0, "overlong_buffer_len", "must be >= 0")


@dataclasses.dataclass(frozen=True)
class PromptItem:
    """One prompt of a step: its kind, token ids and the problem or task it came from."""

    kind: TaskKind
    token_ids: tuple[int, ...]
    source: Problem | AlignmentTask


def _encode(tokenizer, messages: list[dict[str, str]]) -> tuple[int, ...]:
    text = render_prompt(messages, tokenizer)
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def code_prompt(problem: Problem, tokenizer, semantics: str = "improved") -> PromptItem:
    """The problem's code-generation prompt. Official: the dataset row's own chat messages
    when it has them (``metadata["messages"]``: the official run feeds the row's prompt as
    given); otherwise, and improved, rendered from the statement
    (`coderl_jax.data.problems.code_generation_messages`)."""
    messages = problem.metadata.get("messages") if semantics == "official" else None
    messages = messages or code_generation_messages(problem)
    return PromptItem(TaskKind.CODE, _encode(tokenizer, messages), problem)


def alignment_prompt(task: AlignmentTask, tokenizer, style: str = "full") -> PromptItem:
    messages = [{"role": "user", "content": task.prompt(style)}]
    return PromptItem(TaskKind.ALIGNMENT, _encode(tokenizer, messages), task)


def prompt_token_count(tokenizer, user_message: str) -> int:
    """Tokens of a one-message prompt as sampled (chat template included)."""
    return len(_encode(tokenizer, [{"role": "user", "content": user_message}]))


@dataclasses.dataclass
class Rollouts:
    """A step's rollouts: the train batch (host numpy) and what the host learned."""

    batch: TrainBatch
    completions: list[str]  # [N] decoded completions (stop token removed)
    items: list[PromptItem]  # [P] prompts; row n belongs to items[n // G]
    code_candidates: list[CodeRollout]  # failed code rollouts, for alignment conversion
    metrics: dict[str, float]
    phase_seconds: dict[str, float]


class RolloutRunner:
    """Turns a step's prompts into a `Rollouts` (see the module docstring)."""

    def __init__(
        self,
        config: RolloutConfig,
        tokenizer,
        sampler: Sampler,
        check_batch: Callable,
        score: Callable[[Any, Sequences], jax.Array] | None = None,
        reference_params: Any = None,
    ):
        """
        Args:
          config: rollout settings.
          tokenizer: decodes completions.
          sampler: a `Sampler` whose SamplingConfig holds the stop and pad ids.
          check_batch: ``SandboxPool.check_batch``.
          score: ``(params, Sequences) -> [N, T]`` token log-probs on the sampler's mesh
            (`coderl_jax.train.step.make_logprobs_fn`; asynchronous), used with
            ``reference_params`` for the KL term's reference log-probs.
          reference_params: the frozen reference policy, or None when kl_coef = 0.
        """
        self.config = config
        self.tokenizer = tokenizer
        self.sampler = sampler
        self.check_batch = check_batch
        self.score = score
        self.reference_params = reference_params

    def run(self, params, items: Sequence[PromptItem], key: jax.Array) -> Rollouts:
        cfg, g = self.config, self.config.num_samples
        times = collections.Counter()
        start = time.perf_counter()
        prompts = [item.token_ids for item in items]
        # Rows are left-aligned below: every response starts at or after the shortest prompt.
        response_start = shared_response_start(min(map(len, prompts)))
        tokens, mask = self.sampler.pad_prompts(prompts)
        if self.sampler.decodes_continuously:
            out, host, ref_future = self._sample_continuously(
                params, items, tokens, mask, key, response_start, times
            )
        else:
            out, host, ref_future = self._sample_in_chunks(
                params, items, tokens, mask, key, response_start, times
            )
        index = np.concatenate([h["index"] for h in host])
        order = np.argsort(index, kind="stable")
        if not np.array_equal(index[order], np.arange(len(items) * g)):
            raise RuntimeError("rollout scoring lost or repeated rows (a bug)")
        texts = [text for h in host for text in h["completions"]]
        completions = [texts[i] for i in order]
        rewards_N = np.concatenate([h["rewards"] for h in host])[order]
        kinds_N = np.repeat([item.kind for item in items], g)
        if cfg.overlong_buffer_len:
            code_rows = kinds_N == TaskKind.CODE
            rewards_N[code_rows] = dapo.apply_overlong_penalty(
                rewards_N[code_rows],
                out.completion_lengths[code_rows],
                self.sampler.config.max_new_tokens,
                cfg.overlong_buffer_len,
            )
        loss_mask = out.loss_mask.astype(np.float32)
        advantages = np.asarray(
            ADVANTAGE_ESTIMATORS[cfg.advantage_estimator](rewards_N, g, loss_mask)
        )
        old_logprobs = np.asarray(out.token_logprobs(), np.float32)
        ref = None
        if ref_future is not None:
            t0 = time.perf_counter()
            ref = multihost.local_rows(ref_future).astype(np.float32)
            times["reference"] += time.perf_counter() - t0
        batch = TrainBatch(
            tokens=out.tokens.astype(np.int32),
            attention_mask=out.attention_mask.astype(np.int32),
            positions=out.positions.astype(np.int32),
            loss_mask=loss_mask,
            advantages=advantages.astype(np.float32),
            rewards=rewards_N.astype(np.float32),
            task_kind=kinds_N.astype(np.int32),
            old_logprobs=old_logprobs,
        )
        # Left-aligned rows (the layout fused attention needs; exact for the einsum too);
        # the reference log-probs were computed on left-aligned rows already.
        batch = left_align(batch).replace(ref_logprobs=ref, response_start=response_start)
        metrics = _metrics(host, rewards_N, kinds_N, out, g)
        times["rollout_total"] = time.perf_counter() - start
        candidates = [c for _, c in sorted((c for h in host for c in h["candidates"]), key=_row)]
        return Rollouts(batch, completions, list(items), candidates, metrics, dict(times))

    def _reference(self, out, response_start):
        """Dispatches the reference policy's log-probs of every row (asynchronous)."""
        if self.reference_params is None:
            return None
        sequences = Sequences(out.tokens, out.attention_mask, out.positions, response_start)
        return self.score(
            self.reference_params, device_put_batch(left_align(sequences), self.sampler.mesh)
        )

    def _sample_continuously(self, params, items, tokens, mask, key, response_start, times):
        """One sampler call; finished samples are scored on a background thread meanwhile."""
        g = self.config.num_samples
        futures = []
        with concurrent.futures.ThreadPoolExecutor(1, "rollout-score") as scorer:

            def score(finished: FinishedSamples):
                t0 = time.perf_counter()
                result = self._score(
                    items, finished.index, finished.completion_tokens, finished.completion_lengths
                )
                result["seconds"] = time.perf_counter() - t0
                return result

            def on_finished(finished: FinishedSamples):
                futures.append(scorer.submit(score, finished))

            t0 = time.perf_counter()
            out = self.sampler.sample_padded(params, tokens, mask, g, key, on_finished=on_finished)
            times["generate"] += time.perf_counter() - t0
            ref_future = self._reference(out, response_start)
            t0 = time.perf_counter()
            host = [f.result() for f in futures]
            times["execute_unoverlapped"] = time.perf_counter() - t0
        times["execute"] += sum(h["seconds"] for h in host)
        return out, host, ref_future

    def _sample_in_chunks(self, params, items, tokens, mask, key, response_start, times):
        """Static decoder: chunk k+1 decodes on the device while chunk k is scored."""
        g = self.config.num_samples
        num_chunks = self._num_chunks(len(items))
        bounds = np.linspace(0, len(items), num_chunks + 1).astype(int)
        keys = jax.random.split(key, num_chunks)

        def dispatch(c):
            lo, hi = bounds[c], bounds[c + 1]
            return self.sampler.sample_padded(params, tokens[lo:hi], mask[lo:hi], g, keys[c])

        pending = dispatch(0)
        outputs, host = [], []
        ref_future = None
        for c in range(num_chunks):
            t0 = time.perf_counter()
            out = jax.tree.map(multihost.local_rows, pending)  # waits for chunk c only
            times["generate"] += time.perf_counter() - t0
            if c + 1 < num_chunks:
                pending = dispatch(c + 1)  # runs on the device while chunk c executes
            outputs.append(out)
            if c + 1 == num_chunks:
                ref_future = self._reference(_concat(outputs), response_start)
            t0 = time.perf_counter()
            rows = np.arange(bounds[c] * g, bounds[c + 1] * g)
            host.append(self._score(items, rows, out.completion_tokens, out.completion_lengths))
            times["execute"] += time.perf_counter() - t0
            if c + 1 == num_chunks:  # nothing but the reference forward runs meanwhile
                times["execute_unoverlapped"] = time.perf_counter() - t0
        return _concat(outputs), host, ref_future

    def _num_chunks(self, num_prompts: int) -> int:
        """``overlap_chunks`` when each chunk's rows still spread evenly over the mesh."""
        chunks = self.config.overlap_chunks
        divisor = 1 if self.sampler.mesh is None else mesh_lib.batch_divisor(self.sampler.mesh)
        rows_per_chunk = num_prompts // chunks * self.config.num_samples * jax.process_count()
        if num_prompts % chunks or rows_per_chunk % divisor:
            return 1
        return chunks

    def _score(
        self, items: Sequence[PromptItem], index_K, completion_tokens_KxM, completion_lengths_K
    ) -> dict[str, Any]:
        """Host work for rows ``index_K`` of the call (row n is a sample of items[n // G]):
        decode, execute / parse, reward. Returns their completions and rewards in the given
        order, (row, candidate) pairs of failed code rollouts and outcome counts."""
        g = self.config.num_samples
        index_K = np.asarray(index_K)
        completions = [
            self.tokenizer.decode(row[: int(n)], skip_special_tokens=True)
            for row, n in zip(completion_tokens_KxM, completion_lengths_K)
        ]
        rewards_N = np.zeros(len(completions), np.float32)
        kinds = [items[n // g].kind for n in index_K]
        code_rows = [k for k, kind in enumerate(kinds) if kind == TaskKind.CODE]
        align_rows = [k for k, kind in enumerate(kinds) if kind == TaskKind.ALIGNMENT]
        result: dict[str, Any] = {
            "index": index_K,
            "completions": completions,
            "candidates": [],
            "counts": collections.Counter(),
        }
        if code_rows:
            problems = [items[index_K[k] // g].source for k in code_rows]
            r, outcomes, programs, verdicts = rewards.code_generation_rewards(
                [completions[n] for n in code_rows],
                [p.tests for p in problems],
                self.check_batch,
                timeout_s=self.config.exec_timeout_s,
                float_tolerance=self.config.float_tolerance,
                semantics=self.config.semantics,
            )
            rewards_N[code_rows] = r
            result["counts"].update(f"code/outcome/{o}" for o in outcomes)
            for k, problem, reward, program, verdict in zip(
                code_rows, problems, r, programs, verdicts
            ):
                candidate = code_rollout(
                    problem.id, problem.tests, completions[k], program, reward, verdict,
                    self.config.semantics,
                )  # fmt: skip
                if candidate is not None:
                    result["candidates"].append((int(index_K[k]), candidate))
        if align_rows:
            tasks = [items[index_K[k] // g].source for k in align_rows]
            r, counts = rewards.alignment_rewards(
                [completions[n] for n in align_rows],
                [t.expected_output for t in tasks],
                [t.labels for t in tasks],
                [t.output_kind for t in tasks],
                mode=self.config.alignment_reward_mode or self.config.semantics,
            )
            rewards_N[align_rows] = r
            result["counts"].update({f"align/{k}": v for k, v in counts.items()})
        result["rewards"] = rewards_N
        return result


def _row(pair):
    return pair[0]


def _concat(outputs):
    return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *outputs)


def _metrics(host, rewards_N, kinds_N, out, group_size: int) -> dict[str, float]:
    counts = collections.Counter()
    for h in host:
        counts.update(h["counts"])
    metrics: dict[str, float] = {}
    for kind in TaskKind:
        name, rows = kind.metric_name, kinds_N == kind
        if not rows.any():
            continue
        signal = dapo.informative_groups(rewards_N[rows], group_size)
        metrics[f"rollout/{name}/groups_with_signal"] = float(signal.mean())
        metrics[f"rollout/{name}/completion_tokens_mean"] = float(
            out.completion_lengths[rows].mean()
        )
        metrics[f"rollout/{name}/finished_by_stop"] = float(
            (out.finish_reason[rows] == FINISH_STOP).mean()
        )
        total = rows.sum()
        for key, value in counts.items():
            if key.startswith(name + "/"):
                rest = key[len(name) + 1 :]
                # Outcome/parse counts become fractions of the kind's rollouts.
                metrics[f"rollout/{name}/{rest}"] = value / total if "/" in rest else float(value)
    if (kinds_N == TaskKind.CODE).any():
        metrics["rollout/code/pass_rate"] = float(rewards_N[kinds_N == TaskKind.CODE].mean())
    return metrics
