"""Test-session setup shared by every test directory.

JAX reads ``XLA_FLAGS`` once, at its first import, so the fake 8-device CPU platform that
the sharding tests need is requested here, before any test module imports jax. An
``XLA_FLAGS`` already set by the caller is left untouched.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
