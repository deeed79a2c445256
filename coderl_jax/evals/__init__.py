"""Evaluation: code generation (pass@k, executed in the sandbox) and code reasoning (code
execution and test-output prediction, answers judged with the alignment reward's value
rules) on the benchmarks of ``benchmarks.BENCHMARKS``.

One module per step: ``benchmarks`` (registry, loading, ``evaluate``), ``prompts`` (what
the model sees; oracle answers), ``completions`` (sampling through our sampler),
``codegen`` / ``reasoning`` (scoring, pass@k), ``answers`` (reasoning answer parser),
``derived`` (HumanEval- and synthetic-derived reasoning sets), ``leetcode`` (LeetCode
harness conventions). The trainer's periodic evaluation and ``experiments/evaluate.py`` use
the same functions.
"""

from coderl_jax.evals.benchmarks import (
    BENCHMARKS,
    DataOptions,
    LoadedBenchmark,
    NoReferenceError,
    check_names,
    evaluate,
    load_benchmark,
)
from coderl_jax.evals.codegen import pass_at_k
from coderl_jax.evals.completions import ModelCompleter

__all__ = [
    "BENCHMARKS",
    "DataOptions",
    "LoadedBenchmark",
    "ModelCompleter",
    "NoReferenceError",
    "check_names",
    "evaluate",
    "load_benchmark",
    "pass_at_k",
]
