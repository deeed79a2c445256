"""``coderl_synthetic``: the embedded procedurally generated dataset as a TFDS dataset.

The examples are exactly ``coderl_jax.data.synthetic.generate_problems(split, size, seed,
num_tests, families)`` (row ``index`` = position in that list), so the dataset version is the
generator's ``VERSION``. Sizes, seed and family subset live in a ``SyntheticConfig``; each
distinct config is its own TFDS config directory. ``DEFAULT_CONFIG`` (train 20000 / validation
500 / test 500 / test_heldout_families 200, seed 0) is the tiny CPU run's dataset;
``synthetic_config(...)`` makes others (tests build a few dozen problems).

The splits are disjoint by program (``synthetic.generate``). The build measures it
(``synthetic.split_overlap``) and records it in the dataset's metadata (``metadata.json``,
``builder.info.metadata``): ``distinct_programs`` per split, and per evaluation split
``programs_in_train`` (instances whose reference program, as a parsed AST, occurs in train)
and ``alignment_pairs_in_train`` (instances whose alignment evaluation pair, reference program
and first test input, occurs in train). A build with any overlap fails.
"""

from __future__ import annotations

import dataclasses
import hashlib

import tensorflow_datasets as tfds

from coderl_jax.data import synthetic
from coderl_jax.data.builders.base import RecordBuilder


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
    """Split sizes, generation seed, tests per problem and family subset (empty: all) of one
    ``coderl_synthetic`` build."""

    train: int = 20000
    validation: int = 500
    test: int = 500
    test_heldout_families: int = 200
    seed: int = 0
    num_tests: int = synthetic.DEFAULT_NUM_TESTS
    families: tuple[str, ...] = ()

    def sizes(self) -> dict[str, int]:
        """``{split: number of problems}`` for every split in ``synthetic.SPLITS``."""
        return {split: getattr(self, split) for split in synthetic.SPLITS}


def synthetic_config(
    train: int,
    validation: int,
    test: int,
    test_heldout_families: int,
    seed: int = 0,
    num_tests: int = synthetic.DEFAULT_NUM_TESTS,
    families: tuple[str, ...] = (),
) -> SyntheticConfig:
    """A config named after its sizes and seed (``t<train>_v<val>_e<test>_h<heldout>_s<seed>``,
    plus ``_n<num_tests>`` when not the default and ``_f<count>x<hash>`` for a family subset),
    so different builds never share a directory."""
    for name, value in [("train", train), ("validation", validation), ("test", test)]:
        if value < 0:
            raise ValueError(f"synthetic_config: {name} size must be >= 0, got {value}")
    if test_heldout_families < 0:
        raise ValueError("synthetic_config: test_heldout_families must be >= 0")
    name = f"t{train}_v{validation}_e{test}_h{test_heldout_families}_s{seed}"
    if num_tests != synthetic.DEFAULT_NUM_TESTS:
        name += f"_n{num_tests}"
    if families:
        synthetic.check_trained_families(tuple(families))
        digest = hashlib.sha256(",".join(sorted(families)).encode()).hexdigest()[:8]
        name += f"_f{len(families)}x{digest}"
    return SyntheticConfig(
        name=name,
        version=synthetic.VERSION,
        description=f"synthetic problems, seed {seed}",
        train=train,
        validation=validation,
        test=test,
        test_heldout_families=test_heldout_families,
        seed=seed,
        num_tests=num_tests,
        families=tuple(families),
    )


DEFAULT_CONFIG = dataclasses.replace(synthetic_config(20000, 500, 500, 200, seed=0), name="default")


class CoderlSynthetic(RecordBuilder):
    """Procedurally generated coding problems (coderl_jax.data.synthetic); records are
    ``Problem`` JSON."""

    VERSION = tfds.core.Version(synthetic.VERSION)
    RELEASE_NOTES = {
        "2.0.0": "Splits by reference program (parsed AST), not statement: no test or validation "
        "program occurs in train; wider parameter spaces; overlap counts in the metadata.",
        "1.0.0": "Splits by statement.",
    }
    BUILDER_CONFIGS = [DEFAULT_CONFIG]
    DEFAULT_CONFIG_NAME = "default"

    def _split_generators(self, dl_manager):
        config: SyntheticConfig = self.builder_config
        problems = {
            split: synthetic.generate_problems(
                split, size, config.seed, config.num_tests, config.families
            )
            for split, size in config.sizes().items()
        }
        overlap = synthetic.split_overlap(problems)
        leaks = {
            name: counts
            for name, counts in overlap.items()
            if name != "distinct_programs" and any(counts.values())
        }
        if leaks:
            raise RuntimeError(
                f"{self.name}/{config.name}: evaluation splits overlap train: {leaks}"
            )
        self.info.metadata.update(overlap)
        return {
            split: self._generate_examples(_rows(split_problems), split)
            for split, split_problems in problems.items()
            if split_problems  # TFDS cannot write an empty split; a size-0 split is absent
        }


def program_overlap(builder: tfds.core.DatasetBuilder) -> dict[str, dict[str, int]]:
    """The overlap counts a built ``coderl_synthetic`` recorded (see the module docstring)."""
    metadata = builder.info.metadata or {}
    keys = ("distinct_programs", "programs_in_train", "alignment_pairs_in_train")
    return {key: dict(metadata.get(key, {})) for key in keys}


def _rows(problems):
    for index, problem in enumerate(problems):
        yield index, "<generator>", index, lambda p=problem: (p.id, p.to_json_str())
