"""The synthetic dataset: family contract, determinism, split disjointness, held-out families."""

import collections
import hashlib
import json
import random

import pytest

from coderl_jax.data.problems import Problem
from coderl_jax.data.synthetic import (
    ALL_FAMILIES,
    HELDOUT_FAMILIES,
    SPLITS,
    VERSION,
    draw_instance,
    families_of_split,
    generate_problems,
    get_family,
    list_families,
    statement_split,
)
from coderl_jax.data.synthetic.family import Family, to_text

# sha256 of the JSON of generate_problems("train", 40, seed=0). Generation changed on purpose?
# Bump VERSION and update this digest.
GOLDEN_VERSION = "1.0.0"
GOLDEN_TRAIN_DIGEST = "766b1f2ca9830f8b9585b8409dc082d35a4f914c90ec7659b3c9ae19f4619ec8"


def _digest(problems):
    text = "\n".join(p.to_json_str() for p in problems)
    return hashlib.sha256(text.encode()).hexdigest()


def test_registry_has_at_least_40_families_of_both_kinds():
    names = list_families()
    assert len(names) == len(set(names)) == len(ALL_FAMILIES) >= 40
    kinds = collections.Counter(get_family(n).kind for n in names)
    assert kinds["stdio"] > kinds["call"] >= 10
    topics = {get_family(n).topic for n in names}
    assert {"arithmetic", "loops", "conditionals", "lists", "strings", "counting"} <= topics
    assert {"simulation", "functions"} <= topics
    assert len(HELDOUT_FAMILIES) == 4 and set(HELDOUT_FAMILIES) <= set(names)
    with pytest.raises(KeyError, match="unknown synthetic family 'nope'"):
        get_family("nope")


@pytest.mark.parametrize("family", ALL_FAMILIES, ids=lambda f: f.name)
def test_family_instances_are_well_formed(family):
    rng = random.Random(f"well-formed:{family.name}")
    statements = set()
    for _ in range(5):
        inst = draw_instance(family, rng, num_tests=6)
        statements.add(inst.statement)
        tests = inst.tests
        assert tests.kind == family.kind and tests.num_tests == 6
        assert len(set(tests.inputs)) == 6, "test inputs must be distinct"
        assert len(set(tests.outputs)) >= 2, "a constant-output program must not pass"
        assert 8 <= len(inst.statement.split()) <= 45, inst.statement
        assert 2 <= inst.solution.count("\n") <= 6, inst.solution
        assert "{" not in inst.statement.replace("{letter: count}", "")
        compile(inst.solution, family.name, "exec")
        json.dumps(inst.params)
        for inp, out in zip(tests.inputs, tests.outputs):
            if family.kind == "call":
                assert isinstance(json.loads(inp), list)
                json.loads(out)
                assert f"def {family.fn_name}(" in inst.solution
                assert family.fn_name in inst.statement
            else:
                assert inp.endswith("\n") and out.endswith("\n") and out.strip()
                assert "input()" in inst.solution and "print(" in inst.solution
    assert len(statements) >= 2, "wording or parameters must vary"


def test_stdio_rendering():
    assert to_text(5) == "5\n"
    assert to_text([1, -2, 3]) == "1 -2 3\n"
    assert to_text((3, "ab", [4, 5])) == "3\nab\n4 5\n"
    with pytest.raises(TypeError, match="stdio values"):
        to_text(True)


def _family(**overrides):
    fields = dict(
        name="echo",
        topic="arithmetic",
        kind="stdio",
        templates=("Print n plus {k}.",) * 4,
        solution="print(int(input()) + {k})",
        sample_params=lambda r: {"k": 1},
        sample_input=lambda r, p: r.randint(0, 100),
        answer=lambda p, n: n + p["k"],
    )
    fields.update(overrides)
    return Family(**fields)


def test_family_contract_is_enforced():
    with pytest.raises(ValueError, match="needs 4 templates, got 3"):
        _family(templates=("a", "b", "c"))
    with pytest.raises(ValueError, match="fn_name is required exactly for call kind"):
        _family(kind="call")
    with pytest.raises(ValueError, match="could not draw 6 distinct test inputs"):
        draw_instance(_family(sample_input=lambda r, p: 5), random.Random(0), 6)
    # Outputs that never vary cannot make a test set a constant program fails.
    with pytest.raises(ValueError, match="family echo: could not draw"):
        draw_instance(_family(answer=lambda p, n: 0), random.Random(0), 6)


def test_statement_split_fractions():
    counts = collections.Counter(statement_split("add_constant", f"s{i}") for i in range(20000))
    assert set(counts) == {"train", "validation", "test"}
    assert abs(counts["train"] / 20000 - 0.8) < 0.01
    assert abs(counts["validation"] / 20000 - 0.1) < 0.01
    assert abs(counts["test"] / 20000 - 0.1) < 0.01
    assert statement_split("clip_list", "anything") == "test_heldout_families"


def test_add_constant_instance_matches_hand_computed_outputs():
    family = get_family("add_constant")
    inst = draw_instance(family, random.Random(0), num_tests=6)
    k = inst.params["k"]
    assert inst.solution == f"n = int(input())\nprint(n + {k})\n"
    assert f"{k}" in inst.statement
    for inp, out in zip(inst.tests.inputs, inst.tests.outputs):
        assert int(out) == int(inp) + k


def test_generation_is_deterministic_and_prefix_stable():
    a = generate_problems("train", 60, seed=3)
    assert [p.to_json() for p in a] == [p.to_json() for p in generate_problems("train", 60, 3)]
    assert generate_problems("train", 25, seed=3) == a[:25]
    assert [p.statement for p in generate_problems("train", 60, seed=4)] != [p.statement for p in a]
    assert [Problem.from_json(json.loads(p.to_json_str())) for p in a] == a


def test_golden_digest_pins_generation_to_version():
    assert VERSION == GOLDEN_VERSION, "VERSION bumped: update GOLDEN_TRAIN_DIGEST too"
    assert _digest(generate_problems("train", 40, seed=0)) == GOLDEN_TRAIN_DIGEST


def test_splits_are_instance_disjoint_across_seeds():
    train = generate_problems("train", 2000, seed=0)
    others = {
        "validation": generate_problems("validation", 300, seed=1),
        "test": generate_problems("test", 300, seed=0),
    }
    train_statements = {p.statement for p in train}
    train_instances = {(p.statement, p.tests) for p in train}
    for split, problems in others.items():
        assert not {p.statement for p in problems} & train_statements, split
        assert not {(p.statement, p.tests) for p in problems} & train_instances, split
    assert not {p.statement for p in others["validation"]} & {p.statement for p in others["test"]}
    for split, problems in [("train", train), *others.items()]:
        assert all(statement_split(p.family, p.statement) == split for p in problems)
        assert len({(p.statement, p.tests) for p in problems}) == len(problems)


def test_heldout_families_appear_only_in_their_split():
    heldout = generate_problems("test_heldout_families", 40, seed=0)
    assert collections.Counter(p.family for p in heldout) == {f: 10 for f in HELDOUT_FAMILIES}
    for split in ("train", "validation", "test"):
        names = {f.name for f in families_of_split(split)}
        assert names == set(list_families()) - set(HELDOUT_FAMILIES)
        problems = generate_problems(split, 2 * len(names), seed=0)
        # Families cycle, so each appears exactly twice.
        assert collections.Counter(p.family for p in problems) == {n: 2 for n in names}


def test_problem_fields():
    p = generate_problems("validation", 1, seed=9)[0]
    assert p.id == "synthetic/validation/000000" and p.source == "synthetic"
    assert p.metadata["version"] == VERSION and p.metadata["seed"] == 9
    assert p.metadata["topic"] == get_family(p.family).topic
    assert 0 <= p.metadata["template_index"] < 4


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown synthetic split 'dev'"):
        generate_problems("dev", 1, seed=0)
    with pytest.raises(ValueError, match="num_problems must be >= 0"):
        generate_problems("train", -1, seed=0)
    assert generate_problems("test", 0, seed=0) == []
    assert set(SPLITS) == {"train", "validation", "test", "test_heldout_families"}


def test_family_subset_keeps_split_ownership_and_cycles_over_the_subset():
    subset = ("add_constant", "count_char", "clamp")
    problems = generate_problems("test", 9, seed=0, families=subset)
    assert collections.Counter(p.family for p in problems) == {f: 3 for f in subset}
    assert all(statement_split(p.family, p.statement) == "test" for p in problems)
    assert generate_problems("test", 9, seed=0, families=subset) == problems
    # The held-out split ignores the subset: its families are never trained anyway.
    heldout = generate_problems("test_heldout_families", 8, seed=0, families=subset)
    assert heldout == generate_problems("test_heldout_families", 8, seed=0)
    for bad in [("no_such_family",), ("water_tank",), ("clamp", "clamp")]:
        with pytest.raises(ValueError, match="distinct names of trained families"):
            generate_problems("train", 1, seed=0, families=bad)
