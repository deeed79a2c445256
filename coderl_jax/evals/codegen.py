"""Code-generation scoring: run each completion's program against its problem's tests, pass@k.

Greedy pass@1 (the paper's protocol, temperature 0) uses one greedy sample per problem;
sampled pass@k uses n >= k samples per problem and the unbiased estimator of Chen et al.
(2021, "Evaluating Large Language Models Trained on Code"):
``pass@k = E_problems[1 - C(n - c, k) / C(n, k)]`` with c correct samples out of n.

A completion is judged like a rollout's (``rl.rewards``): the program is extracted from the
last fenced block, optionally prepared by the benchmark's harness (``prepare``, e.g. the
LeetCode import header and ``class Solution``), and run against every test in the sandbox.
A prompt the sampler could not take (``None`` completion: longer than its largest bucket)
counts as a failure with outcome ``prompt_too_long``.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

import numpy as np

from coderl_jax.data.problems import Problem
from coderl_jax.execution.extract import extract_code
from coderl_jax.rl import rewards

PROMPT_TOO_LONG = "prompt_too_long"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with c of n samples correct (needs k <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k / i), a numerically stable form of the binomial ratio.
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_metrics(correct_P: Sequence[int], n: int, ks: Sequence[int]) -> dict[str, float]:
    """``{"pass@k": mean over problems}`` for each k, from [P] counts of correct samples."""
    if any(k > n for k in ks):
        raise ValueError(f"pass@k needs k <= the number of samples ({n}), got ks={list(ks)}")
    if not len(correct_P):
        return {f"pass@{k}": 0.0 for k in ks}
    return {f"pass@{k}": float(np.mean([pass_at_k(n, int(c), k) for c in correct_P])) for k in ks}


def score_code_generation(
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str | None]],
    check_batch: Callable,
    ks: Sequence[int] = (1,),
    timeout_s: float = 5.0,
    prepare: Callable[[str, Problem], str] | None = None,
) -> tuple[dict[str, float], list[dict]]:
    """pass@k of ``completions`` (n per problem, the same n for all) on ``problems``.

    Returns ``(metrics, records)``: metrics ``pass@k`` for each k and ``outcome/<outcome>``
    fractions over samples; one record per sample (problem id, sample
    index, completion, program as run, outcome, passed).
    """
    if len(completions) != len(problems):
        raise ValueError(f"{len(completions)} completion lists for {len(problems)} problems")
    n = len(completions[0]) if completions else 1
    rows = [(p, s, c) for p, cs in zip(problems, completions) for s, c in enumerate(cs)]
    if len(rows) != n * len(problems):
        raise ValueError(f"every problem needs the same number of completions ({n})")
    programs = []
    for problem, _, completion in rows:
        program = None if completion is None else extract_code(completion)
        if program is not None and prepare is not None:
            program = prepare(program, problem)
        programs.append(program)
    _, outcomes, _ = rewards.judge_programs(
        programs, [p.tests for p, _, _ in rows], check_batch, timeout_s
    )
    outcomes = [PROMPT_TOO_LONG if c is None else o for (_, _, c), o in zip(rows, outcomes)]
    correct_P = np.reshape([o == "passed" for o in outcomes], (len(problems), n)).sum(axis=1)
    metrics = pass_at_k_metrics(correct_P, n, ks)
    counts = collections.Counter(outcomes)
    metrics.update({f"outcome/{o}": v / max(len(rows), 1) for o, v in sorted(counts.items())})
    records = [
        {
            "id": problem.id,
            "sample": sample,
            "completion": completion,
            "extracted": program,
            "verdict": outcome,
            "passed": outcome == "passed",
        }
        for (problem, sample, completion), program, outcome in zip(rows, programs, outcomes)
    ]
    return metrics, records
