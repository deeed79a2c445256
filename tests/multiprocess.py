"""Local multi-process tests: N processes joined by jax.distributed on one machine.

The test side starts worker scripts (``start_worker``); a worker script calls
``worker_arguments()`` before it imports jax, which reads its command line
``PROCESS_ID NUM_PROCESSES PORT OUT`` and gives each process 4 // NUM_PROCESSES CPU devices,
so one process and two processes see the same 4-device mesh. Imports nothing from jax.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    """A TCP port that was free a moment ago, for the jax.distributed coordinator."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def start_worker(
    worker: str, process_id: int, num_processes: int, port: int, out: str
) -> subprocess.Popen:
    """Starts ``worker`` as one of ``num_processes``; the repository and the worker's own
    directory are on its import path. Its stdout and stderr come back together."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.path.dirname(worker)]))
    cmd = [sys.executable, worker, str(process_id), str(num_processes), str(port), out]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def worker_arguments() -> tuple[int, int, int, str]:
    """(process_id, num_processes, port, out) from the worker's command line; sets the CPU
    device count, so call it before jax is imported."""
    process_id, num_processes, port, out = sys.argv[1:5]
    num_processes = int(num_processes)
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={4 // num_processes}"
    os.environ["JAX_PLATFORMS"] = "cpu"
    return int(process_id), num_processes, int(port), out
