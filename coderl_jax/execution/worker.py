"""The persistent worker process: a warm interpreter that runs one job at a time.

Started by ``sandbox.SandboxPool`` as ``python -I -c BOOTSTRAP <package dir>`` (the package
is loaded under a private name, so the worker imports nothing but this standard-library-only
subpackage). Protocol over its stdin/stdout (moved to private fds at start-up), one
``harness.Channel`` message each way per job:

1. parent -> worker: ``{"index", "limits", "disabled", "base_dir"}`` (the worker's own
   directory for job directories); worker -> parent:
   ``{"t": "ready", "isolation": {layer: state}, "python": ..., "pid": ...}``.
2. parent -> worker: a job dict; worker -> parent: its report dict. EOF ends the worker.

Per job the worker runs ``supervisor.supervise`` itself (its failures become a
``sandbox_error`` report), or, where it cannot reuse PID namespaces, in a forked throwaway
supervisor whose report it awaits with a deadline. A worker that dies or hangs anyway is
detected and replaced by the pool. The worker dies with its parent (PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import gc
import os
import select
import signal
import sys
import time

from . import isolation
from .harness import Channel, parse_messages
from .supervisor import supervise

BOOTSTRAP = """
import importlib.util, sys
path = sys.argv[1]
spec = importlib.util.spec_from_file_location(
    "_coderl_sandbox", path + "/__init__.py", submodule_search_locations=[path])
module = importlib.util.module_from_spec(spec)
sys.modules["_coderl_sandbox"] = module
spec.loader.exec_module(module)
from _coderl_sandbox.worker import main
main()
"""
# Imported once here so that programs importing them pay nothing and need no file access.
PRELOADED_MODULES = (
    "array", "bisect", "collections", "copy", "dataclasses", "datetime", "decimal", "enum",
    "fractions", "functools", "heapq", "itertools", "json", "math", "operator", "queue",
    "random", "re", "statistics", "string", "threading", "typing", "unittest", "ctypes",
    "resource", "socket", "subprocess", "hashlib", "textwrap", "numbers", "cmath", "struct",
)  # fmt: skip
# What the official judge's children use (``mock_open`` for stdin tests), imported by the
# worker at its first official job (about 50 ms: unittest.mock imports asyncio).
OFFICIAL_MODULES = ("unittest.mock",)
_PR_SET_PDEATHSIG = 1


def sandbox_error(message: str) -> dict:
    return {
        "status": "sandbox_error", "exit_code": None, "stdout": "", "stderr": "", "cpu_s": 0.0,
        "wall_s": 0.0, "variables": None, "return_value": None, "error": message, "tests": None,
    }  # fmt: skip


def _job_budget_s(job: dict, limits: isolation.Limits) -> float:
    tests = job.get("tests") or {}
    n = 1 if job["mode"] == "assert" else len(tests.get("inputs", ()))
    return float(job["timeout_s"]) * (n + 1) + limits.kill_grace_s + 5.0


def run_job(job: dict, iso, limits: isolation.Limits, base_dir: str) -> dict:
    """Runs ``job``; always returns a report.

    The worker supervises the job itself, unless it needs a fresh PID namespace and cannot
    return to its own afterwards (unprivileged user namespace): then a throwaway forked
    supervisor does it, at the cost of one more fork per job.
    """
    if iso.own_pidns_fd is not None or not iso.on("pidns"):
        try:
            return supervise(job, iso, limits, base_dir)
        except Exception as e:
            return sandbox_error(f"supervisor failed: {e!r}"[:500])
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        try:
            try:
                report = supervise(job, iso, limits, base_dir)
            except BaseException as e:
                report = sandbox_error(f"supervisor failed: {e!r}"[:500])
            Channel(write_fd).send(report)
        finally:
            os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + _job_budget_s(job, limits)
    data = bytearray()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([read_fd], [], [], remaining)[0]:
                os.kill(pid, signal.SIGKILL)
                return sandbox_error("supervisor did not report in time")
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_fd)
        os.waitpid(pid, 0)
    messages = parse_messages(data)
    return messages[0] if messages else sandbox_error("supervisor died without a report")


def main() -> None:
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    channel = Channel(write_fd=os.dup(1), read_fd=os.dup(0))
    for fd in (channel.write_fd, channel.read_fd):
        os.set_inheritable(fd, False)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    config = channel.receive()
    limits = isolation.Limits(**config["limits"])
    iso = isolation.setup_worker(config["index"], limits, tuple(config["disabled"]))
    base_dir = config["base_dir"]  # created by the pool, which also removes it
    for name in PRELOADED_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    # Everything the worker holds now lives as long as it does: keep it out of the garbage
    # collector's generations, so that a collection in a child never walks (and so never
    # copies on write) the worker's objects.
    gc.freeze()
    channel.send(
        {"t": "ready", "isolation": iso.report, "python": sys.executable, "pid": os.getpid()}
    )
    official_loaded = False
    while (job := channel.receive()) is not None:
        if job.get("semantics") == "official" and not official_loaded:
            for name in OFFICIAL_MODULES:
                __import__(name)
            gc.freeze()  # as above, for what these imports added
            official_loaded = True
        channel.send(run_job(job, iso, limits, base_dir))
