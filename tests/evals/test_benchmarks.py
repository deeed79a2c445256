"""The benchmark registry end to end with the oracle (reference answers) and wrong answers,
the manual-format fixtures, missing data, and the LeetCode harness."""

import dataclasses
import json

import pytest

from coderl_jax.data.builders import ManualDataMissingError
from coderl_jax.data.builders.leetcode import SOLUTION_CALL_SOURCE
from coderl_jax.evals import BENCHMARKS, NoReferenceError, evaluate, load_benchmark
from coderl_jax.evals.alignment import score_alignment
from coderl_jax.evals.leetcode import leetcode_program
from coderl_jax.rl.alignment import AlignmentConfig


def fixed(completions_per_item):
    """A completer that answers with the given texts (as a model would)."""
    return lambda conversations, key: [list(c) for c in completions_per_item]


def test_oracle_passes_all_164_humaneval_problems_and_wrong_solutions_fail(pool, data):
    humaneval = load_benchmark("humaneval", data, pool.run_batch)
    assert len(humaneval.items) == 164
    metrics, records = evaluate(humaneval, None, pool.check_batch)
    assert metrics["pass@1"] == 1.0 and sum(r["passed"] for r in records) == 164
    assert records[0]["prompt"].startswith("Complete the Python function `has_close_elements`")

    first = humaneval.items[:4]
    wrong = [  # a body left empty; a function that returns its first argument
        p.starter_code if i % 2 else f"def {p.tests.entry_point}(x, *args):\n    return x\n"
        for i, p in enumerate(first)
    ]
    subset = type(humaneval)(humaneval.benchmark, first, {}, {})
    right = [f"```python\n{p.reference_solution}```" for p in first]
    both = [[f"```python\n{w}```", r] for w, r in zip(wrong, right)]
    metrics, records = evaluate(subset, fixed(both), pool.check_batch, ks=(1, 2))
    assert [r["passed"] for r in records] == [False, True] * 4
    assert metrics["pass@1"] == 0.5 and metrics["pass@2"] == 1.0


@pytest.mark.parametrize(
    "name",
    ["code_reasoning", "test_output", "synthetic_reasoning", "synthetic_alignment", "synthetic"],
)
def test_oracle_scores_full_marks_on_reasoning_and_synthetic_sets(pool, data, name):
    loaded = load_benchmark(name, data, pool.run_batch)
    metrics, records = evaluate(loaded, None, pool.check_batch)
    assert metrics["pass@1"] == 1.0
    assert loaded.missing == {}
    if BENCHMARKS[name].kind == "reasoning":
        assert all(r["verdict"] == "correct" for r in records)
        wrong = [["[ANSWER]\nassert f() == 'definitely not it'\n[/ANSWER]"]] * len(loaded.items)
        metrics, _ = evaluate(loaded, fixed(wrong), pool.check_batch)
        assert metrics["pass@1"] == 0.0
    if BENCHMARKS[name].kind == "alignment":
        assert metrics["output_accuracy"] == metrics["variable_accuracy"] == 1.0
        assert metrics["reward"] == pytest.approx(1.0) and metrics["parse/ok"] == 1.0
    if len(BENCHMARKS[name].sources) > 1:  # one manual and one derived source
        assert set(metrics) >= {f"{s}/pass@1" for s in BENCHMARKS[name].sources}


def test_manual_fixtures_load_and_leetcode_completions_are_wrapped(pool, data):
    lcb = load_benchmark("lcb_code_generation", data, pool.run_batch)
    assert [p.id for p in lcb.items] == ["lcb_code_generation/abc001_a", "lcb_code_generation/3001"]
    with pytest.raises(NoReferenceError, match="no reference solution"):
        evaluate(lcb, None, pool.check_batch)
    stdin = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    method = "```python\nclass Solution:\n    def maxPairSum(self, nums: List[int], k: int) -> int:\n        return sum(sorted(nums)[-2:])\n```"
    metrics, _ = evaluate(lcb, fixed([[stdin], [method]]), pool.check_batch)
    assert metrics["pass@1"] == 1.0  # List without an import: the LeetCode prelude

    contest = load_benchmark("leetcode_contest", data, pool.run_batch)
    pushes = (
        "def minimumPushes(self, word: str) -> int:\n"
        "    return sum((i // 8 + 1) for i in range(len(word)))\n"
    )  # a method written without its class: wrapped into class Solution
    pairs = "def countPairs(nums):\n    return len(nums) - len(set(nums))\n"
    completions = [[f"```python\n{pushes}```"], [f"```python\n{pairs}```"]]
    metrics, records = evaluate(contest, fixed(completions), pool.check_batch)
    assert metrics["pass@1"] == 1.0, [r["verdict"] for r in records]
    assert "class Solution:" in records[0]["extracted"]
    assert records[0]["prompt"] == contest.items[0].statement  # prompt_sft as published


def test_leetcode_program_keeps_an_existing_class():
    code = "class Solution:\n    def f(self):\n        return 1\n"
    program = leetcode_program(code, "f")
    assert program.count("class Solution") == 1 and code in program
    assert program.endswith(SOLUTION_CALL_SOURCE)
    assert leetcode_program("x = 1\n", None).endswith(
        "from typing import *\n\nsys.setrecursionlimit(100000)\n\nx = 1\n"
    )


def test_missing_manual_data_names_the_files(pool, data, tmp_path):
    empty = tmp_path / "manual"
    empty.mkdir()
    options = type(data)(data_dir=str(tmp_path / "tfds"), manual_dir=str(empty))
    for name in ("lcb_code_generation", "leetcode_contest", "lcb_test_output"):
        with pytest.raises(ManualDataMissingError, match=f"{name}/\\*.jsonl"):
            load_benchmark(name, options, pool.run_batch)
    # A two-source benchmark leaves the manual source out, says so, and keeps the derived one.
    loaded = load_benchmark(
        "code_reasoning",
        options.__class__(**{**options.__dict__, "num_problems": 5}),
        pool.run_batch,
    )
    assert {i.source for i in loaded.items} == {"humaneval_exec"} and len(loaded.items) == 5
    assert "lcb_code_execution/*.jsonl" in loaded.missing["lcb_code_execution"]
    with pytest.raises(ValueError, match="unknown benchmarks"):
        load_benchmark("mbpp", options, pool.run_batch)


def test_alignment_answers_score_per_variable_and_output(pool, data):
    """Hand-made answers to the first task: all right, one variable wrong, output wrong,
    unparseable; the metrics are the hand-computed shares."""
    # As the trainer passes it: the run's conversion, with its prompt-length limit.
    conversion = AlignmentConfig(prompt_style="concise", max_prompt_tokens=192)
    loaded = load_benchmark(
        "synthetic_alignment", dataclasses.replace(data, alignment=conversion), pool.run_batch
    )
    assert loaded.alignment_prompt_style == "concise"
    task = loaded.items[0]
    names = list(task.variables)
    right = json.loads(task.reference_answer())
    one_wrong = json.loads(task.reference_answer())
    one_wrong["variables"][names[0]] = "not this"
    bad_output = json.loads(task.reference_answer())
    bad_output["final_output"] = "not this"
    answers = [json.dumps(a) for a in (right, one_wrong, bad_output)] + ["no json here"]
    metrics, records = score_alignment([task], [answers])
    v = len(names)
    assert metrics["pass@1"] == pytest.approx(1 / 4)
    assert metrics["output_accuracy"] == pytest.approx(2 / 4)
    assert metrics["variable_accuracy"] == pytest.approx((v + (v - 1) + v) / (4 * v))
    assert metrics["parse/ok"] == 0.75 and metrics["parse/invalid_json"] == 0.25
    assert [r["passed"] for r in records] == [True, False, False, False]
    assert records[3]["reward"] == 0.0 and records[0]["reward"] == pytest.approx(1.0)
