"""Every synthetic family's reference solution passes its own tests in the real sandbox.

Skip note: ``coderl_jax.execution.check_solution`` (the sandbox) is built on another branch.
Until that branch is merged this module skips; after the merge the skip never triggers and
the check runs in CI. Do not add any other skip condition here.
"""

import collections

import pytest

import coderl_jax.execution as _execution  # a broken package must fail here, not skip
from coderl_jax.data.synthetic import SPLITS, families_of_split, generate_problems

if not hasattr(_execution, "check_solution"):
    pytest.skip(
        "coderl_jax.execution.check_solution not present yet (sandbox branch not merged)",
        allow_module_level=True,
    )
check_solution = _execution.check_solution


@pytest.mark.parametrize("split", SPLITS)
def test_reference_solutions_pass_their_tests(split):
    # One full cycle over the split's families (two for the small held-out split), so every
    # family is checked on at least one instance of every split it appears in.
    num_families = len(families_of_split(split))
    cycles = 2 if split == "test_heldout_families" else 1
    problems = generate_problems(split, cycles * num_families, seed=7)
    assert len({p.family for p in problems}) == num_families
    failures = collections.defaultdict(list)
    for p in problems:
        verdict = check_solution(p.reference_solution, p.tests)
        if not verdict.passed:
            failures[p.family].append((p.id, verdict))
    assert not failures, f"reference solutions failing in split {split}: {dict(failures)}"
