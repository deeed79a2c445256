"""Code-generation evaluation: sample, execute in the sandbox, pass@k.

Greedy pass@1 (the paper's protocol, temperature 0) uses one greedy sample per problem;
sampled pass@k uses n >= k samples per problem and the unbiased estimator of Chen et al.
(2021, "Evaluating Large Language Models Trained on Code"):
``pass@k = E_problems[1 - C(n - c, k) / C(n, k)]`` with c correct samples out of n.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

import jax
import numpy as np

from coderl_jax import mesh as mesh_lib
from coderl_jax.data.problems import Problem
from coderl_jax.rl import rewards
from coderl_jax.rl.rollout import code_prompt
from coderl_jax.sampler import Sampler


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with c of n samples correct (needs k <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k / i), a numerically stable form of the binomial ratio.
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def evaluate_code_generation(
    problems: Sequence[Problem],
    params,
    sampler: Sampler,
    tokenizer,
    check_batch: Callable,
    key: jax.Array,
    num_samples: int = 1,
    ks: Sequence[int] = (1,),
    prompts_per_call: int = 32,
    timeout_s: float = 5.0,
) -> tuple[dict[str, float], list[dict]]:
    """pass@k of ``sampler`` (greedy or sampled) on ``problems``.

    Returns ``(metrics, records)``: metrics ``pass@k`` for each k and outcome fractions;
    one record per sample (problem id, completion, extracted program, outcome, passed).
    Prompts go through the sampler in fixed-size calls (the last one padded by repeating
    its first prompt, whose extra samples are discarded) so each shape compiles once.
    """
    if any(k > num_samples for k in ks):
        raise ValueError(f"pass@k needs k <= num_samples ({num_samples}), got ks={list(ks)}")
    items = [code_prompt(p, tokenizer) for p in problems]
    correct = np.zeros(len(problems), np.int64)
    outcomes = collections.Counter()
    records: list[dict] = []
    for start in range(0, len(items), prompts_per_call):
        chunk = items[start : start + prompts_per_call]
        padded = chunk + [chunk[0]] * (prompts_per_call - len(chunk))
        key, sub = jax.random.split(key)
        out = sampler.sample(params, [i.token_ids for i in padded], num_samples, sub)
        tokens, lengths = (
            mesh_lib.local_rows(x) for x in (out.completion_tokens, out.completion_lengths)
        )
        n_real = len(chunk) * num_samples
        completions = [
            tokenizer.decode(tokens[r, : lengths[r]], skip_special_tokens=True)
            for r in range(n_real)
        ]
        specs = [chunk[r // num_samples].source.tests for r in range(n_real)]
        r, outs, programs, _ = rewards.code_generation_rewards(
            completions, specs, check_batch, timeout_s
        )
        outcomes.update(outs)
        for row in range(n_real):
            p = start + row // num_samples
            correct[p] += int(r[row] > 0)
            records.append(
                {
                    "problem_id": problems[p].id,
                    "completion": completions[row],
                    "program": programs[row],
                    "outcome": outs[row],
                    "passed": bool(r[row] > 0),
                }
            )
    metrics = {
        f"pass@{k}": float(np.mean([pass_at_k(num_samples, int(c), k) for c in correct]))
        for k in ks
    }
    total = max(sum(outcomes.values()), 1)
    metrics.update({f"outcome/{o}": v / total for o, v in sorted(outcomes.items())})
    return metrics, records
