"""The embedded synthetic dataset: procedurally generated coding problems that a model of a few
million parameters can learn (short statements, 2-6 line solutions, stdin/stdout and
call-based tests).

``generate_problems(split, num_problems, seed)`` is the entry point; ``list_families()`` names
the task families. Families live in ``numbers`` (integer arithmetic, loops), ``conditionals``,
``sequences`` (lists), ``simulation``, ``text`` (strings), ``counting`` and ``functions``
(call-based); ``family`` says what a family is; ``generate`` holds the splits, which are
disjoint by program (a test program never occurs in train); ``overlap`` measures that.
"""

from coderl_jax.data.synthetic.family import Family, Instance, draw_instance
from coderl_jax.data.synthetic.generate import (
    ALL_FAMILIES,
    DEFAULT_NUM_TESTS,
    HELDOUT_FAMILIES,
    SPLITS,
    VERSION,
    check_trained_families,
    families_of_split,
    generate_problems,
    get_family,
    list_families,
    program_key,
    program_split,
)
from coderl_jax.data.synthetic.overlap import split_overlap

__all__ = [
    "ALL_FAMILIES",
    "DEFAULT_NUM_TESTS",
    "HELDOUT_FAMILIES",
    "SPLITS",
    "VERSION",
    "Family",
    "Instance",
    "draw_instance",
    "check_trained_families",
    "families_of_split",
    "generate_problems",
    "get_family",
    "list_families",
    "program_key",
    "program_split",
    "split_overlap",
]
