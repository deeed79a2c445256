"""The synthetic dataset: family contract, program spaces, determinism, splits disjoint by
program, held-out families."""

import collections
import dataclasses
import hashlib
import json
import random
from pathlib import Path

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
    program_key,
    program_split,
    split_overlap,
)
from coderl_jax.data.synthetic.family import (
    Family,
    letter_string,
    render_solution,
    signed_spread,
    spread_int,
    to_text,
)

# sha256 of what generate_problems("train", 40, seed=0) generates (statements, references,
# tests, parameters; not how TestSpec serialises its options). Generation changed on purpose?
# Bump VERSION and update this digest.
GOLDEN_VERSION = "2.0.0"
GOLDEN_TRAIN_DIGEST = "182b59516cb569d1cec543c9564e61805b2985adea9e3e693e3383e9c5f6b679"
TINY_CPU_FLAGS = Path(__file__).parents[2] / "experiments" / "configs" / "tiny_cpu.flags"


def _flag_families() -> tuple[str, ...]:
    """The embedded default's family subset, read from its flagfile."""
    for line in TINY_CPU_FLAGS.read_text().splitlines():
        if line.startswith("--synthetic_families="):
            return tuple(line.split("=", 1)[1].split(","))
    raise AssertionError(f"no --synthetic_families in {TINY_CPU_FLAGS}")


TINY_CPU_FAMILIES = _flag_families()


def _digest(problems):
    generated = [
        [
            p.id,
            p.family,
            p.statement,
            p.reference_solution,
            p.starter_code,
            p.metadata,
            p.tests.fn_name,
            p.tests.inputs,
            p.tests.outputs,
        ]
        for p in problems
    ]
    return hashlib.sha256(json.dumps(generated, sort_keys=True).encode()).hexdigest()


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


def test_program_split_fractions():
    programs = [f"n = int(input())\nprint(n + {i})\n" for i in range(20000)]
    counts = collections.Counter(program_split("add_constant", p) for p in programs)
    assert set(counts) == {"train", "validation", "test"}
    assert abs(counts["train"] / 20000 - 0.8) < 0.01
    assert abs(counts["validation"] / 20000 - 0.1) < 0.01
    assert abs(counts["test"] / 20000 - 0.1) < 0.01
    assert program_split("clip_list", programs[0]) == "test_heldout_families"


def test_program_split_ignores_wording_formatting_and_family():
    family = get_family("repeat_word")
    rng = random.Random(0)
    for _ in range(20):
        params = family.sample_params(rng)
        program = render_solution(family, params)
        split = program_split(family.name, program)
        # Every wording of these parameters is the same program: one split for all of them.
        wordings = {t.format(**params) for t in family.templates}
        assert len(wordings) == 4
        # Comments, blank lines, spacing and quote style do not change the program.
        restyled = "# reference\n" + program.replace('"', "'").replace(" * ", "*") + "\n\n"
        assert restyled != program and program_key(restyled) == program_key(program)
        assert program_split(family.name, restyled) == split
        assert program_split("count_char", program) == split  # the family is not hashed
    with pytest.raises(SyntaxError):
        program_key("print(")


def test_spread_and_letter_helpers():
    rng = random.Random(0)
    values = [spread_int(rng, 2, 9999) for _ in range(4000)]
    assert min(values) >= 2 and max(values) <= 9999
    # Digit counts are drawn uniformly: each of 1..4 digits about a quarter of the time.
    digits = collections.Counter(len(str(v)) for v in values)
    assert all(abs(digits[d] / 4000 - 0.25) < 0.03 for d in (1, 2, 3, 4)), digits
    signed = [signed_spread(rng, 99) for _ in range(2000)]
    assert min(signed) >= -99 and max(signed) <= 99 and min(signed) < 0 < max(signed)
    pieces = {letter_string(rng, 3) for _ in range(3000)}
    assert {len(p) for p in pieces} == {1, 2, 3}
    assert not any(p[:i] == p[-i:] for p in pieces for i in range(1, len(p)))


@pytest.mark.parametrize("family", ALL_FAMILIES, ids=lambda f: f.name)
def test_family_program_space_is_wide(family):
    """Far more programs than the training split draws from a family: the old parameter spaces
    held at most 2,600 programs (most under 100), so 1000 draws found at most a few hundred."""
    rng = random.Random(f"space:{family.name}")
    programs = {render_solution(family, family.sample_params(rng)) for _ in range(1000)}
    small = {"shift_letters", "remove_char"}  # 675 / 676 programs: their structure is narrow
    minimum = 500 if family.name in TINY_CPU_FAMILIES else 300 if family.name in small else 450
    assert len(programs) >= minimum


def test_no_program_belongs_to_two_families():
    owners: dict[str, str] = {}
    for family in ALL_FAMILIES:
        rng = random.Random(f"owners:{family.name}")
        for _ in range(60):
            key = program_key(render_solution(family, family.sample_params(rng)))
            assert owners.setdefault(key, family.name) == family.name


def test_add_constant_instance_matches_hand_computed_outputs():
    family = get_family("add_constant")
    rng = random.Random(0)
    ops = set()
    for _ in range(10):
        inst = draw_instance(family, rng, num_tests=6)
        k, op = inst.params["k"], inst.params["op"]
        ops.add(op)
        assert inst.solution == f"n = int(input())\nprint(n {op} {k})\n"
        assert f"{k}" in inst.statement
        for inp, out in zip(inst.tests.inputs, inst.tests.outputs):
            assert int(out) == (int(inp) + k if op == "+" else int(inp) - k)
    assert ops == {"+", "-"}


def test_generation_is_deterministic_and_prefix_stable():
    a = generate_problems("train", 60, seed=3)
    assert [p.to_json() for p in a] == [p.to_json() for p in generate_problems("train", 60, 3)]
    assert generate_problems("train", 25, seed=3) == a[:25]
    assert [p.statement for p in generate_problems("train", 60, seed=4)] != [p.statement for p in a]
    assert [Problem.from_json(json.loads(p.to_json_str())) for p in a] == a


def test_golden_digest_pins_generation_to_version():
    assert VERSION == GOLDEN_VERSION, "VERSION bumped: update GOLDEN_TRAIN_DIGEST too"
    assert _digest(generate_problems("train", 40, seed=0)) == GOLDEN_TRAIN_DIGEST


def test_splits_share_no_program_across_seeds():
    # On the old statement split, these sizes put most test programs in train (in other words).
    train = generate_problems("train", 3000, seed=0, families=TINY_CPU_FAMILIES)
    others = {
        "validation": generate_problems("validation", 300, seed=1, families=TINY_CPU_FAMILIES),
        "test": generate_problems("test", 300, seed=0, families=TINY_CPU_FAMILIES),
    }
    report = split_overlap({"train": train, **others})
    assert report["programs_in_train"] == {"validation": 0, "test": 0}
    assert report["alignment_pairs_in_train"] == {"validation": 0, "test": 0}
    train_programs = {program_key(p.reference_solution) for p in train}
    for split, problems in others.items():
        keys = {program_key(p.reference_solution) for p in problems}
        assert not keys & train_programs, split
    validation_keys = {program_key(p.reference_solution) for p in others["validation"]}
    assert not validation_keys & {program_key(p.reference_solution) for p in others["test"]}
    for split, problems in [("train", train), *others.items()]:
        assert all(program_split(p.family, p.reference_solution) == split for p in problems)
        # Programs are as distinct as the split's share of each family allows.
        assert len({program_key(p.reference_solution) for p in problems}) == len(problems)


def test_split_overlap_finds_a_reworded_program():
    train = generate_problems("train", 30, seed=0, families=TINY_CPU_FAMILIES)
    test = generate_problems("test", 30, seed=0, families=TINY_CPU_FAMILIES)
    leaked = train[3]
    family = get_family(leaked.family)
    reworded = dataclasses.replace(
        leaked,
        statement=family.templates[(leaked.metadata["template_index"] + 1) % 4].format(
            **leaked.metadata["params"]
        ),
        reference_solution="# same program\n" + leaked.reference_solution.replace(" ", "  "),
    )
    assert reworded.statement != leaked.statement
    report = split_overlap({"train": train, "test": [*test, reworded]})
    assert report["programs_in_train"] == {"test": 1}
    assert report["alignment_pairs_in_train"] == {"test": 1}
    assert report["distinct_programs"] == {"train": 30, "test": 31}


@pytest.mark.slow
def test_default_splits_hold_unseen_distinct_programs():
    """The embedded default's data (tiny_cpu.flags: its families, 20000/500/500, seed 0): no
    test or validation program in train, and every evaluation program distinct."""
    problems = {
        split: generate_problems(split, size, seed=0, families=TINY_CPU_FAMILIES)
        for split, size in [("train", 20000), ("validation", 500), ("test", 500)]
    }
    report = split_overlap(problems)
    assert report["programs_in_train"] == {"validation": 0, "test": 0}
    assert report["alignment_pairs_in_train"] == {"validation": 0, "test": 0}
    assert report["distinct_programs"]["test"] >= 400
    assert report["distinct_programs"]["validation"] >= 400


def test_no_duplicate_instance_within_a_split():
    # shift_letters has 675 programs, about 540 of them in train: 700 problems must repeat
    # programs, each time with new test inputs.
    problems = generate_problems("train", 700, seed=0, families=("shift_letters",))
    keys = [(program_key(p.reference_solution), p.tests.inputs) for p in problems]
    assert len(set(keys)) == len(keys)
    programs = collections.Counter(k for k, _ in keys)
    # Without the preference for new programs, about 390 of the 540 would appear.
    assert 450 <= len(programs) < 700


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
    assert all(program_split(p.family, p.reference_solution) == "test" for p in problems)
    assert generate_problems("test", 9, seed=0, families=subset) == problems
    # The held-out split ignores the subset: its families are never trained anyway.
    heldout = generate_problems("test_heldout_families", 8, seed=0, families=subset)
    assert heldout == generate_problems("test_heldout_families", 8, seed=0)
    for bad in [("no_such_family",), ("water_tank",), ("clamp", "clamp")]:
        with pytest.raises(ValueError, match="distinct names of trained families"):
            generate_problems("train", 1, seed=0, families=bad)
