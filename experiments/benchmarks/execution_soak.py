"""Soak test of the sandbox pool: many jobs, ~10% hostile, nothing may leak.

Run through ``execution.py --soak`` (or directly: ``python execution_soak.py 10000``).
Checks: every job has a result with a known status; afterwards no process of a sandbox uid
is alive, no worker has children left, no job directory is left behind, and each worker's
RSS and open-fd count are flat between the first and the last sample.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

from coderl_jax.execution import STATUSES, Job, SandboxPool

HOSTILE = [
    ("while True:\n    pass", 0.3),
    ("x = bytearray(2 << 30)", 5),
    ("import os\nfor _ in range(8):\n    os.fork()", 5),
    ("import sys\nsys.stdout.write('x' * (4 << 20))", 5),
    ("import ctypes\nctypes.string_at(0)", 5),
    ("files = []\nwhile True:\n    files.append(open('/dev/null'))", 5),
    ("open('/tmp/soak_escape.txt', 'w').write('escaped')", 5),
    ("import threading, time\nthreading.Thread(target=time.sleep, args=(100,)).start()", 5),
    ("import os, signal\nos.kill(-1, signal.SIGKILL)", 5),
    ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))", 5),
]
NORMAL = "n = int(input())\nprint(sum(i * i for i in range(n)))"


def _worker_sample(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open fds) of a worker process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def _processes(predicate) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/status") as f:
                    fields = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue
            if predicate(fields):
                found.append(int(entry))
    return found


def soak(num_jobs: int, concurrency: int | None = None, chunk: int = 500) -> bool:
    jobs = []
    for i in range(num_jobs):
        if i % 10 == 5:
            code, timeout = HOSTILE[(i // 10) % len(HOSTILE)]
            jobs.append(Job(code, timeout_s=timeout))
        else:
            jobs.append(Job(NORMAL, stdin=f"{i % 1000}\n".encode()))
    ok = True
    with SandboxPool(num_workers=concurrency) as pool:
        print(f"soak: {num_jobs} jobs on {pool.num_workers} workers; isolation {pool.isolation}")
        pids = list(pool.worker_pids)
        samples, statuses, wrong = [], Counter(), 0
        start = time.perf_counter()
        for offset in range(0, num_jobs, chunk):
            batch = jobs[offset : offset + chunk]
            results = pool.run_batch(batch)
            for i, (job, result) in enumerate(zip(batch, results), start=offset):
                statuses[result.status] += 1
                if (
                    job.code == NORMAL
                    and result.stdout != f"{sum(k * k for k in range(i % 1000))}\n"
                ):
                    wrong += 1
            samples.append([_worker_sample(pid) for pid in pool.worker_pids])
            done = offset + len(batch)
            rate = done / (time.perf_counter() - start)
            print(f"  {done}/{num_jobs} jobs, {rate:.0f}/s, workers (rss KiB, fds): {samples[-1]}")
        uid_low = pool.limits.uid_base
        uid_high = uid_low + pool.num_workers
        strays = _processes(lambda f: uid_low <= int(f["Uid"].split()[0]) < uid_high)
        children = _processes(lambda f: int(f["PPid"]) in pool.worker_pids)
        leftover_dirs = (
            sum(len(files) for _, _, files in os.walk(pool._base_dir))
            + sum(len(dirs) for _, dirs, _ in os.walk(pool._base_dir))
            - pool.num_workers
        )
        print(f"statuses: {dict(statuses)}; wrong outputs of normal jobs: {wrong}")
        print(f"stray sandbox processes: {strays}; worker children: {children}; ")
        print(
            f"leftover job dirs/files: {leftover_dirs}; workers replaced: {pool.worker_pids != pids}"
        )
        rss_growth = [last[0] - first[0] for first, last in zip(samples[0], samples[-1])]
        fd_growth = [last[1] - first[1] for first, last in zip(samples[0], samples[-1])]
        print(f"worker RSS growth first->last sample (KiB): {rss_growth}; fd growth: {fd_growth}")
        ok = (
            sum(statuses.values()) == num_jobs
            and set(statuses) <= set(STATUSES)
            and statuses["sandbox_error"] == 0
            and wrong == 0
            and not strays
            and not children
            and leftover_dirs == 0
            and all(g < 8 * 1024 for g in rss_growth)
            and all(g == 0 for g in fd_growth)
            and not os.path.exists("/tmp/soak_escape.txt")
        )
    print("soak:", "PASS" if ok else "FAIL")
    return ok


if __name__ == "__main__":
    sys.exit(0 if soak(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000) else 1)
