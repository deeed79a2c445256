"""Code-reasoning scoring: judge each completion's answer against the item's label, pass@k.

Code execution (program + input -> output) and test-output prediction (statement + input
-> output) have a value to predict, not a program to run: each completion is judged by
``answers.judge`` (answer found in ``[ANSWER]`` tags or a fenced block, read as a literal,
compared with the alignment reward's equality rules). With n samples per item, pass@k uses
the same unbiased estimator as code generation; greedy decoding gives pass@1 = accuracy.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

from coderl_jax.data.reasoning import ReasoningItem
from coderl_jax.evals.answers import judge
from coderl_jax.evals.codegen import PROMPT_TOO_LONG, pass_at_k_metrics


def score_reasoning(
    items: Sequence[ReasoningItem],
    completions: Sequence[Sequence[str | None]],
    ks: Sequence[int] = (1,),
) -> tuple[dict[str, float], list[dict]]:
    """pass@k of ``completions`` (n per item) on ``items``.

    Returns ``(metrics, records)``: metrics ``pass@k`` over all items and, when the items
    come from several sources, ``<source>/pass@k`` for each; ``verdict/<verdict>`` fractions
    over samples (``answers.VERDICTS`` plus ``prompt_too_long``). One record
    per sample (item id, source, sample index, completion, answer found, verdict, label).
    """
    if len(completions) != len(items):
        raise ValueError(f"{len(completions)} completion lists for {len(items)} items")
    n = len(completions[0]) if completions else 1
    correct_I = [0] * len(items)
    verdicts = collections.Counter()
    records = []
    for i, (item, samples) in enumerate(zip(items, completions)):
        if len(samples) != n:
            raise ValueError(f"every item needs the same number of completions ({n})")
        for sample, completion in enumerate(samples):
            if completion is None:
                answer, verdict, ok = None, PROMPT_TOO_LONG, False
            else:
                judgement = judge(item, completion)
                answer, verdict, ok = judgement.answer, judgement.verdict, judgement.correct
            correct_I[i] += ok
            verdicts[verdict] += 1
            records.append(
                {
                    "id": item.id,
                    "source": item.source,
                    "sample": sample,
                    "completion": completion,
                    "extracted": answer,
                    "expected": item.expected_output,
                    "verdict": verdict,
                    "passed": ok,
                }
            )
    metrics = pass_at_k_metrics(correct_I, n, ks)
    sources = sorted({item.source for item in items})
    if len(sources) > 1:
        for source in sources:
            these = [c for c, item in zip(correct_I, items) if item.source == source]
            for name, value in pass_at_k_metrics(these, n, ks).items():
                metrics[f"{source}/{name}"] = value
    total = max(sum(verdicts.values()), 1)
    metrics.update({f"verdict/{v}": c / total for v, c in sorted(verdicts.items())})
    return metrics, records
