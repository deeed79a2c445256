"""Deterministic generation of the synthetic problem splits.

Splits (``SPLITS``):

* ``train`` / ``validation`` / ``test``: instances of every family except the held-out ones.
  Each statement belongs to exactly one of the three, decided by a hash of
  ``(family, statement)`` (80% / 10% / 10% of the statement space, independent of the seed).
  So a test or validation statement never appears in training, in any generation with any seed
  and any size: instances (statement + tests) of different splits are disjoint by construction.
  The same parameters in another wording may fall in another split; the statement is what the
  model sees, so that is the unit held out.
* ``test_heldout_families``: instances of the ``HELDOUT_FAMILIES`` only, which no other split
  contains (generalisation to unseen tasks built from seen skills).

Within a split, problem ``i`` is drawn from its own ``random.Random`` seeded with
``(VERSION, seed, split, i)`` and the family order is a seed-dependent cycle over the split's
families, so families are balanced, and ``generate_problems(s, n, seed)`` is a prefix of
``generate_problems(s, n + m, seed)``. Duplicate instances (same statement and tests) within a
split are redrawn. Changing any family or this procedure must bump ``VERSION``.

``families=`` restricts the instance splits to a subset of the trained families (a smaller
curriculum, as the tiny CPU default uses); a statement still belongs to the same split, so
subsets never leak test statements into training. The held-out split ignores it.
"""

from __future__ import annotations

import hashlib
import random

from coderl_jax.data.problems import Problem
from coderl_jax.data.synthetic.conditionals import CONDITIONAL_FAMILIES
from coderl_jax.data.synthetic.family import Family, draw_instance
from coderl_jax.data.synthetic.functions import FUNCTION_FAMILIES
from coderl_jax.data.synthetic.numbers import NUMBER_FAMILIES
from coderl_jax.data.synthetic.sequences import LIST_FAMILIES, SIMULATION_FAMILIES
from coderl_jax.data.synthetic.text import COUNTING_FAMILIES, STRING_FAMILIES

VERSION = "1.0.0"
SOURCE = "synthetic"
SPLITS: tuple[str, ...] = ("train", "validation", "test", "test_heldout_families")
# Fractions of each family's statement space for the instance splits, in this order.
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


def statement_split(family_name: str, statement: str) -> str:
    """The split that owns ``statement`` of a family (see the module docstring)."""
    if family_name in HELDOUT_FAMILIES:
        return "test_heldout_families"
    digest = hashlib.sha256(f"{family_name}\n{statement}".encode()).digest()
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
      seed: generation seed; the split a statement belongs to does not depend on it.
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
    seen: set[tuple] = set()
    for index in range(num_problems):
        family = split_families[index % len(split_families)]
        rng = random.Random(f"{VERSION}:{seed}:{split}:{index}")
        for _ in range(MAX_DRAWS_PER_PROBLEM):
            inst = draw_instance(family, rng, num_tests)
            key = (inst.statement, inst.tests.inputs)
            if statement_split(family.name, inst.statement) == split and key not in seen:
                break
        else:
            raise RuntimeError(
                f"family {family.name}: no new instance for split {split} in "
                f"{MAX_DRAWS_PER_PROBLEM} draws (seed {seed}, problem {index})"
            )
        seen.add(key)
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
