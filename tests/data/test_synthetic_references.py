"""Every synthetic family's reference solution passes its own tests in the real sandbox.

The expected outputs come from each family's independent answer function, so this checks the
reference template against a second implementation, over the parameter variants (operators,
directions, widths) the wide parameter spaces draw.

Skip note: ``coderl_jax.execution.check_solution`` (the sandbox) is built on another branch.
Until that branch is merged this module skips; after the merge the skip never triggers and
the check runs in CI. Do not add any other skip condition here.
"""

import collections
import random

import pytest

import coderl_jax.execution as _execution  # a broken package must fail here, not skip
from coderl_jax.data.synthetic import (
    ALL_FAMILIES,
    SPLITS,
    draw_instance,
    families_of_split,
    generate_problems,
)

if not hasattr(_execution, "check_solution"):
    pytest.skip(
        "coderl_jax.execution.check_solution not present yet (sandbox branch not merged)",
        allow_module_level=True,
    )
check_solution = _execution.check_solution
DRAWS_PER_FAMILY = 12


@pytest.mark.parametrize("split", SPLITS)
def test_reference_solutions_pass_their_tests(split):
    # Two full cycles over the split's families (four for the small held-out split), so every
    # family is checked on instances of every split it appears in.
    num_families = len(families_of_split(split))
    cycles = 4 if split == "test_heldout_families" else 2
    problems = generate_problems(split, cycles * num_families, seed=7)
    assert len({p.family for p in problems}) == num_families
    verdicts = _execution.shared_pool().check_batch(
        [(p.reference_solution, p.tests) for p in problems], 5.0, True
    )
    failures = collections.defaultdict(list)
    for p, verdict in zip(problems, verdicts):
        if not verdict.passed:
            failures[p.family].append((p.id, verdict))
    assert not failures, f"reference solutions failing in split {split}: {dict(failures)}"


def test_reference_solutions_pass_across_parameter_variants():
    instances = []
    for family in ALL_FAMILIES:
        rng = random.Random(f"variants:{family.name}")
        instances += [(family, draw_instance(family, rng, 6)) for _ in range(DRAWS_PER_FAMILY)]
    verdicts = _execution.shared_pool().check_batch(
        [(inst.solution, inst.tests) for _, inst in instances], 5.0, True
    )
    failures = [
        (family.name, inst.params, verdict)
        for (family, inst), verdict in zip(instances, verdicts)
        if not verdict.passed
    ]
    assert not failures, failures[:5]
    assert check_solution(instances[0][1].solution, instances[0][1].tests).passed
