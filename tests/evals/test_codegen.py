"""pass@k estimator against hand-computed values; scoring programs in the sandbox."""

import math

import pytest

from coderl_jax.data.problems import Problem
from coderl_jax.evals.codegen import pass_at_k, pass_at_k_metrics, score_code_generation
from coderl_jax.execution import TestSpec


def test_pass_at_k_matches_the_binomial_formula():
    # n=5, c=2, k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    # n=10, c=3, k=1: c/n
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # n=20, c=4, k=5: 1 - C(16,5)/C(20,5)
    assert pass_at_k(20, 4, 5) == pytest.approx(1 - math.comb(16, 5) / math.comb(20, 5))


def test_edge_cases():
    assert pass_at_k(4, 0, 4) == 0.0  # nothing correct
    assert pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(3, 1, 3) == 1.0  # n = k with one correct: some draw holds it
    assert pass_at_k(3, 0, 3) == 0.0  # n = k, c = 0
    assert pass_at_k(1, 0, 1) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)


def test_pass_at_k_metrics_average_over_problems():
    # n=4: c=(0, 2, 4). pass@1 = (0 + 0.5 + 1)/3; pass@2 = (0 + (1 - 1/6) + 1)/3.
    metrics = pass_at_k_metrics([0, 2, 4], 4, (1, 2))
    assert metrics["pass@1"] == pytest.approx(0.5)
    assert metrics["pass@2"] == pytest.approx((5 / 6 + 1) / 3)
    with pytest.raises(ValueError, match="k <= the number of samples"):
        pass_at_k_metrics([1], 2, (3,))


def test_score_code_generation_runs_each_sample(pool):
    double = Problem(
        id="p/0", source="p", statement="Print twice the input.",
        tests=TestSpec(kind="stdio", inputs=("2\n", "5\n"), outputs=("4\n", "10\n")),
    )  # fmt: skip
    right = "```python\nprint(2 * int(input()))\n```"
    wrong = "```python\nprint(int(input()) + 2)\n```"  # right on the first test only
    completions = [[right, wrong], [wrong, "no code here"], [None, None]]
    problems = [double, double, double]  # the third prompt was too long to sample
    metrics, records = score_code_generation(problems, completions, pool.check_batch, (1, 2))
    assert metrics["pass@1"] == pytest.approx(0.5 / 3)
    assert metrics["pass@2"] == pytest.approx(1 / 3)
    assert metrics["outcome/wrong_answer"] == pytest.approx(2 / 6)
    assert metrics["outcome/no_code"] == pytest.approx(1 / 6)
    assert metrics["outcome/prompt_too_long"] == pytest.approx(2 / 6)
    assert [r["verdict"] for r in records[:2]] == ["passed", "wrong_answer"]
    assert records[0]["extracted"] == "print(2 * int(input()))\n"
