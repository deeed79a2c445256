"""The pool's default size: the CPUs this process may run on (its affinity mask, which a
SLURM allocation or ``taskset`` narrows), not every CPU of the machine."""

import os
import subprocess
import sys

import pytest

SIZE_UNDER_AFFINITY = """
import os, sys
os.sched_setaffinity(0, {int(sys.argv[1])})
from coderl_jax.execution import SandboxPool
pool = SandboxPool(disabled_isolation=tuple(a for a in sys.argv[2].split(",") if a))
print(pool.num_workers, len(pool.worker_pids), os.cpu_count())
pool.close()
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs to narrow to one")
def test_default_pool_size_follows_the_cpu_affinity(disabled_isolation):
    cpu = min(os.sched_getaffinity(0))
    out = subprocess.run(
        [sys.executable, "-c", SIZE_UNDER_AFFINITY, str(cpu), ",".join(disabled_isolation)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    num_workers, started, cpu_count = map(int, out)
    assert (num_workers, started) == (1, 1)
    assert cpu_count >= 2  # os.cpu_count() ignores the mask: the old default would be >= 2
