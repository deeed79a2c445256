"""Shared sandbox pools for the execution tests (started once per session)."""

import os

import pytest

from coderl_jax.execution import Limits, SandboxPool


def sandbox_uid_processes(uid_low: int, uid_high: int) -> list[int]:
    """Pids of live processes whose real uid is in [uid_low, uid_high)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if uid_low <= int(line.split()[1]) < uid_high:
                            pids.append(int(entry))
                        break
        except OSError:
            continue
    return pids


@pytest.fixture
def uid_processes():
    return sandbox_uid_processes


@pytest.fixture(scope="session")
def pool():
    with SandboxPool(num_workers=2, limits=Limits(memory_bytes=512 << 20)) as p:
        yield p
