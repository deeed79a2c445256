"""Test-wide setup: 8 fake CPU devices so sharding tests run anywhere.

XLA reads the flag when jax initialises its backend, so it must be set before any test
module imports jax; conftest.py is imported first.
"""

import os

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def scaled_down_cache(tmp_path_factory):
    """The scaled-down tiny model (built once per session) and a shared TFDS data_dir."""
    from tests import scaled_down

    return scaled_down.build_cache(str(tmp_path_factory.mktemp("scaled_down_cache")))
