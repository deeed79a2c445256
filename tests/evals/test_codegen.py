"""pass@k estimator against hand-computed values."""

import math

import pytest

from coderl_jax.evals.codegen import pass_at_k


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
    assert pass_at_k(1, 0, 1) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
