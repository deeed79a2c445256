"""Shared fixtures of the evaluation tests: one sandbox pool, small synthetic data."""

from pathlib import Path

import pytest

from coderl_jax.data.builders import synthetic_config
from coderl_jax.evals import DataOptions
from coderl_jax.execution import SandboxPool

MANUAL = Path(__file__).parent.parent / "fixtures" / "manual"


@pytest.fixture(scope="session")
def pool():
    with SandboxPool(num_workers=2) as sandbox:
        yield sandbox


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> DataOptions:
    """Benchmark data in a fresh TFDS dir: the manual fixtures and 12 synthetic test problems."""
    return DataOptions(
        data_dir=str(tmp_path_factory.mktemp("tfds")),
        manual_dir=str(MANUAL),
        synthetic=synthetic_config(20, 4, 12, 4),
    )
