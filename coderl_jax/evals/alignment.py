"""``synthetic_alignment``: the alignment task itself, on programs the policy never trained on.

Items are ``AlignmentTask``s made from the reference solutions of the ``coderl_synthetic``
test split (run on their first test input, traced: ``rl.alignment.reference_tasks``), shown
with the training prompt (``rl.alignment_prompt``, the run's prompt style) and judged with
the training reward's rules (``rl.rewards``). So it measures what alignment training
teaches, on held-out programs, in the format the policy was trained on -- which is what a
tiny model can be asked; the LiveCodeBench-style ``synthetic_reasoning`` needs an
instruction-following model.

Metrics (over samples unless noted):

* ``pass@k``: an answer with the right final output and every variable right (per item);
* ``output_accuracy``: the right final output -- code execution (program + input -> output);
* ``variable_accuracy``: variables right / variables asked;
* ``reward``: the mean alignment reward (``improved`` mode: 0.1 format bonus + 0.9 * share
  right);
* ``parse/<reason>``: how answers parsed (``ok``, ``invalid_json``, ...), plus
  ``prompt_too_long``.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

from coderl_jax.evals.codegen import pass_at_k_metrics
from coderl_jax.rl.alignment import AlignmentConfig, AlignmentTask, reference_tasks
from coderl_jax.rl.alignment_prompt import render_prompt
from coderl_jax.rl.rewards import alignment_reward, parse_alignment_answer, score_alignment_answer

PROMPT_TOO_LONG = "prompt_too_long"


def load_tasks(
    problems: Sequence, run_batch: Callable, conversion: AlignmentConfig
) -> tuple[list[AlignmentTask], dict[str, int]]:
    """Alignment tasks from ``problems``' references; counts of what conversion dropped.
    Prompt length is not filtered here: the completer counts prompts beyond its largest
    bucket as ``prompt_too_long``."""
    conversion = dataclasses.replace(conversion, max_prompt_tokens=None)
    tasks, counts = reference_tasks(problems, run_batch, step=-1, config=conversion)
    counts = {k: v for k, v in counts.items() if k != "tasks"}
    return tasks, {**counts, "items": len(tasks)}


def messages(task: AlignmentTask, style: str) -> list[dict[str, str]]:
    """The chat messages of one task, as in training."""
    return [{"role": "user", "content": render_prompt(task, style)}]


def score_alignment(
    tasks: Sequence[AlignmentTask],
    completions: Sequence[Sequence[str | None]],
    ks: Sequence[int] = (1,),
) -> tuple[dict[str, float], list[dict]]:
    """Metrics of the module docstring, and one record per sample (task id, sample index,
    completion, expected answer, verdict, reward)."""
    if len(completions) != len(tasks):
        raise ValueError(f"{len(completions)} completion lists for {len(tasks)} tasks")
    n = len(completions[0]) if completions else 1
    if any(len(samples) != n for samples in completions):
        raise ValueError(f"every task needs the same number of completions ({n})")
    correct_T = np.zeros((len(tasks),), np.int64)
    verdicts: collections.Counter = collections.Counter()
    totals = collections.Counter()
    records, rewards = [], []
    for t, (task, samples) in enumerate(zip(tasks, completions)):
        labels = {name: task.labels[name] for name in task.variables}
        for sample, completion in enumerate(samples):
            output_ok, variables_ok, reward = False, 0, 0.0
            if completion is None:
                verdict = PROMPT_TOO_LONG
            else:
                answer, verdict = parse_alignment_answer(completion)
                if answer is not None:
                    output_ok, variables_ok = score_alignment_answer(
                        answer, task.expected_output, labels, task.output_kind
                    )
                reward = alignment_reward(
                    completion, task.expected_output, labels, "improved", task.output_kind
                )
            passed = output_ok and variables_ok == len(labels)
            correct_T[t] += passed
            verdicts[verdict] += 1
            totals.update(
                output_correct=int(output_ok),
                variables_correct=variables_ok,
                variables_asked=len(task.variables),
            )
            rewards.append(reward)
            records.append(
                {
                    "id": task.problem_id,
                    "sample": sample,
                    "completion": completion,
                    "expected": task.reference_answer(),
                    "verdict": verdict,
                    "passed": passed,
                    "reward": reward,
                }
            )
    metrics = pass_at_k_metrics(correct_T, n, ks)
    samples_total = max(len(records), 1)
    metrics["output_accuracy"] = totals["output_correct"] / samples_total
    metrics["variable_accuracy"] = totals["variables_correct"] / max(totals["variables_asked"], 1)
    metrics["reward"] = float(np.mean(rewards)) if rewards else 0.0
    metrics.update({f"parse/{k}": v / samples_total for k, v in sorted(verdicts.items())})
    return metrics, records
