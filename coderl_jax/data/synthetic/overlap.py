"""How much of the evaluation splits' programs occur in train: what the program split
guarantees (``generate``), measured on the generated problems.

Programs are compared as parsed ASTs (``generate.program_key``). Two overlaps count:

* ``programs_in_train``: instances of a split whose reference program is also the reference of
  some train instance (a code-generation test that memorising train could pass);
* ``alignment_pairs_in_train``: instances of a split whose alignment evaluation task, the
  (reference program, first test input) pair that ``synthetic_alignment`` traces, is a
  (program, test input) pair of some train instance (any of its tests, not only the first).

``distinct_programs`` counts the different reference programs of each split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coderl_jax.data.problems import Problem
from coderl_jax.data.synthetic.generate import program_key


def split_overlap(problems_by_split: Mapping[str, Sequence[Problem]]) -> dict[str, dict[str, int]]:
    """``{"distinct_programs": {split: n}, "programs_in_train": {split: n},
    "alignment_pairs_in_train": {split: n}}``; the overlaps cover every split but ``train``
    (against an empty train when ``problems_by_split`` has none)."""
    train = problems_by_split.get("train", ())
    train_programs = {program_key(p.reference_solution) for p in train}
    train_pairs = {
        (program_key(p.reference_solution), test_input)
        for p in train
        for test_input in p.tests.inputs
    }
    report: dict[str, dict[str, int]] = {
        "distinct_programs": {},
        "programs_in_train": {},
        "alignment_pairs_in_train": {},
    }
    for split, problems in problems_by_split.items():
        keys = [program_key(p.reference_solution) for p in problems]
        report["distinct_programs"][split] = len(set(keys))
        if split == "train":
            continue
        report["programs_in_train"][split] = sum(key in train_programs for key in keys)
        report["alignment_pairs_in_train"][split] = sum(
            (key, p.tests.inputs[0]) in train_pairs for key, p in zip(keys, problems)
        )
    return report
