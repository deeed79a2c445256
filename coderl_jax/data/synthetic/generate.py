"""Deterministic generation of the synthetic problem splits.

Splits (``SPLITS``):

* ``train`` / ``validation`` / ``test``: instances of every family except the held-out ones.
  Each *program* belongs to exactly one of the three, decided by a hash of its parsed AST
  (``program_key``: ``ast.dump(ast.parse(reference))``, so whitespace, comments and quoting do
  not matter): 80% / 10% / 10% of the program space, independent of the seed. So a test or
  validation instance never shares its reference program with a training instance -- in any
  generation, with any seed, size or family subset -- and a model can only solve it by reading
  its constants and structure from the statement. All wordings of a program belong to the same
  split. The hash ignores the family, so even two families that happened to share a program
  could not leak it. Because of it, every (program, test input) pair of a test or validation
  instance (what ``synthetic_alignment`` evaluates) is absent from train too.
* ``test_heldout_families``: instances of the ``HELDOUT_FAMILIES`` only, which no other split
  contains (generalisation to unseen tasks built from seen skills).

Within a split, problem ``i`` is drawn from its own ``random.Random`` seeded with
``(VERSION, seed, split, i)`` and the family order is a seed-dependent cycle over the split's
families, so families are balanced, and ``generate_problems(s, n, seed)`` is a prefix of
``generate_problems(s, n + m, seed)``. A split prefers programs it does not hold yet (up to
``FRESH_PROGRAM_TRIES`` candidates of the split per problem), so it is as diverse as the
family allows, and never holds the same (program, test inputs) twice. Changing any family or
this procedure must bump ``VERSION``.

``families=`` restricts the instance splits to a subset of the trained families (a smaller
curriculum, as the tiny CPU default uses); a program still belongs to the same split, so
subsets never leak test programs into training. The held-out split ignores it.
``overlap.split_overlap`` measures what the rules guarantee (the dataset build records it).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import random

from coderl_jax.data.problems import Problem
from coderl_jax.data.synthetic.conditionals import CONDITIONAL_FAMILIES
from coderl_jax.data.synthetic.counting import COUNTING_FAMILIES
from coderl_jax.data.synthetic.family import Family, draw_instance, render_solution
from coderl_jax.data.synthetic.functions import FUNCTION_FAMILIES
from coderl_jax.data.synthetic.numbers import NUMBER_FAMILIES
from coderl_jax.data.synthetic.sequences import LIST_FAMILIES
from coderl_jax.data.synthetic.simulation import SIMULATION_FAMILIES
from coderl_jax.data.synthetic.text import STRING_FAMILIES

VERSION = "2.0.0"
SOURCE = "synthetic"
SPLITS: tuple[str, ...] = ("train", "validation", "test", "test_heldout_families")
# Fractions of the program space for the instance splits, in this order.
INSTANCE_SPLIT_FRACTIONS: tuple[tuple[str, float], ...] = (
    ("train", 0.8),
    ("validation", 0.1),
    ("test", 0.1),
)
# One family per kind of skill (lists, strings, simulation, call-based), each a recombination
# of skills that trained families teach.
HELDOUT_FAMILIES: tuple[str, ...] = ("count_in_range", "remove_char", "water_tank", "clip_list")
DEFAULT_NUM_TESTS = 6
# A split's share of a family can be small; this many draws without a fresh instance of the
# right split means the family cannot supply it.
MAX_DRAWS_PER_PROBLEM = 5000
# Candidates of the right split drawn per problem before a program the split already holds is
# accepted (with new test inputs): splits hold as many distinct programs as families allow.
FRESH_PROGRAM_TRIES = 20

ALL_FAMILIES: tuple[Family, ...] = (
    NUMBER_FAMILIES
    + CONDITIONAL_FAMILIES
    + LIST_FAMILIES
    + SIMULATION_FAMILIES
    + STRING_FAMILIES
    + COUNTING_FAMILIES
    + FUNCTION_FAMILIES
)
_BY_NAME = {f.name: f for f in ALL_FAMILIES}
if len(_BY_NAME) != len(ALL_FAMILIES):
    raise RuntimeError("synthetic family names must be unique")
if not set(HELDOUT_FAMILIES) <= set(_BY_NAME):
    raise RuntimeError(f"unknown held-out families: {set(HELDOUT_FAMILIES) - set(_BY_NAME)}")


def list_families() -> tuple[str, ...]:
    """Names of all families, held-out ones included, in registry order."""
    return tuple(_BY_NAME)


def get_family(name: str) -> Family:
    """The family called ``name``; raises listing the known names otherwise."""
    if name not in _BY_NAME:
        raise KeyError(f"unknown synthetic family {name!r}; known: {sorted(_BY_NAME)}")
    return _BY_NAME[name]


def families_of_split(split: str) -> tuple[Family, ...]:
    """The families whose instances ``split`` holds."""
    _check_split(split)
    held_out = split == "test_heldout_families"
    return tuple(f for f in ALL_FAMILIES if (f.name in HELDOUT_FAMILIES) == held_out)


@functools.lru_cache(maxsize=4096)
def program_key(program: str) -> str:
    """``program`` as its parsed AST (``ast.dump``): the identity of a program for splitting and
    overlap counts, blind to whitespace, comments and string quoting. Raises ``SyntaxError``."""
    return ast.dump(ast.parse(program))


def program_split(family_name: str, program: str) -> str:
    """The split that owns ``program`` (a reference solution) of a family: the held-out split
    for a held-out family, else by a hash of ``program_key(program)`` (module docstring)."""
    if family_name in HELDOUT_FAMILIES:
        return "test_heldout_families"
    digest = hashlib.sha256(program_key(program).encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    for split, fraction in INSTANCE_SPLIT_FRACTIONS:
        if u < fraction:
            return split
        u -= fraction
    return INSTANCE_SPLIT_FRACTIONS[-1][0]


def generate_problems(
    split: str,
    num_problems: int,
    seed: int,
    num_tests: int = DEFAULT_NUM_TESTS,
    families: tuple[str, ...] = (),
) -> list[Problem]:
    """``num_problems`` synthetic problems of ``split``, deterministic in all arguments.

    Args:
      split: one of ``SPLITS``.
      num_problems: how many problems (>= 0).
      seed: generation seed; the split a program belongs to does not depend on it.
      num_tests: tests per problem (>= 6 keeps the dataset contract).
      families: names of trained (not held-out) families to draw the train/validation/test
        splits from; empty: all of them. ``test_heldout_families`` ignores it.

    Returns:
      Problems with ids ``synthetic/<split>/<index>``, a reference solution, ``family`` set and
      metadata ``{"version", "seed", "topic", "params", "template_index"}``.
    """
    _check_split(split)
    if num_problems < 0:
        raise ValueError(f"num_problems must be >= 0, got {num_problems}")
    if num_tests < 1:
        raise ValueError(f"num_tests must be >= 1, got {num_tests}")
    split_families = list(families_of_split(split))
    if families and split != "test_heldout_families":
        check_trained_families(families)
        split_families = [f for f in split_families if f.name in families]
    random.Random(f"{VERSION}:{seed}:{split}:family-order").shuffle(split_families)
    problems: list[Problem] = []
    programs: set[str] = set()  # program keys of the split so far
    instances: set[tuple] = set()  # (program key, test inputs) of the split so far
    for index in range(num_problems):
        family = split_families[index % len(split_families)]
        rng = random.Random(f"{VERSION}:{seed}:{split}:{index}")
        inst = _draw_for_split(family, split, rng, num_tests, programs, instances)
        if inst is None:
            raise RuntimeError(
                f"family {family.name}: no new instance for split {split} in "
                f"{MAX_DRAWS_PER_PROBLEM} draws (seed {seed}, problem {index})"
            )
        key = program_key(inst.solution)
        programs.add(key)
        instances.add((key, inst.tests.inputs))
        problems.append(
            Problem(
                id=f"{SOURCE}/{split}/{index:06d}",
                source=SOURCE,
                statement=inst.statement,
                tests=inst.tests,
                reference_solution=inst.solution,
                family=family.name,
                metadata={
                    "version": VERSION,
                    "seed": seed,
                    "topic": family.topic,
                    "params": inst.params,
                    "template_index": inst.template_index,
                },
            )
        )
    return problems


def _draw_for_split(
    family: Family,
    split: str,
    rng: random.Random,
    num_tests: int,
    programs: set[str],
    instances: set[tuple],
):
    """An instance of ``family`` whose program ``split`` owns and whose (program, test inputs)
    it does not hold, preferring a program it does not hold; None after
    ``MAX_DRAWS_PER_PROBLEM`` draws."""
    candidates = 0
    for _ in range(MAX_DRAWS_PER_PROBLEM):
        params = family.sample_params(rng)
        solution = render_solution(family, params)
        if program_split(family.name, solution) != split:
            continue
        candidates += 1
        key = program_key(solution)
        if key in programs and candidates <= FRESH_PROGRAM_TRIES:
            continue
        inst = draw_instance(family, rng, num_tests, params)
        if (key, inst.tests.inputs) not in instances:
            return inst
    return None


def check_trained_families(names: tuple[str, ...]) -> None:
    """Raises unless ``names`` are distinct, known and not held out."""
    unknown = sorted(set(names) - set(_BY_NAME))
    held_out = sorted(set(names) & set(HELDOUT_FAMILIES))
    if unknown or held_out or len(set(names)) != len(names):
        raise ValueError(
            f"synthetic families must be distinct names of trained families; unknown: {unknown}, "
            f"held out: {held_out}, given: {list(names)}"
        )


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown synthetic split {split!r}; expected one of {SPLITS}")
