"""The sandbox pool: persistent workers that each fork a fresh, confined child per program.

``SandboxPool`` starts ``num_workers`` worker processes (``worker.py``), each a warm
interpreter that forks a fresh program child per job and supervises it (``supervisor.py``),
so no interpreter state survives between programs and start-up costs a fork, not an
interpreter. Data path of one job: ``Job`` -> worker -> forked, confined child running
``harness.py`` -> messages judged by ``judge.py`` -> ``Result`` (``Verdict`` for tests).
A program has finished when ``python prog.py`` would have exited: after its non-daemon
threads and ``atexit`` callbacks (``harness.py``), all within its time limit.
The isolation layers (``isolation.py``) are detected by the first worker and reported once;
layers named in ``required_isolation`` that are missing raise ``SandboxUnavailableError``,
other missing layers give a warning.

``run_batch(jobs)`` returns one ``Result`` per ``Job`` in order, work spread over the
workers by a thread per worker; ``check_batch`` runs programs against ``TestSpec``\\ s and
returns ``Verdict``\\ s. A worker that dies or stops answering is replaced and its job
reported as ``sandbox_error``. The pool is a context manager; ``close()`` ends the workers
and removes the pool's temporary directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import select
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

from . import isolation
from .harness import Channel, parse_messages
from .isolation import LAYERS, Limits, SandboxUnavailableError
from .spec import TestSpec
from .worker import BOOTSTRAP, _job_budget_s, sandbox_error

SEMANTICS = ("improved", "official")
STATUSES = (
    "ok", "runtime_error", "timeout", "memory_limit", "output_limit", "killed_by_signal",
    "sandbox_error",
)  # fmt: skip
_log = logging.getLogger("coderl_jax.execution")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class Job:
    """One program to run: plain (``tests=None``) or against a ``TestSpec``."""

    code: str
    stdin: bytes = b""
    timeout_s: float = 5.0  # wall clock for a plain run; per test for test jobs
    trace: bool = False  # record final variable values (tracer.py)
    call: tuple[str, str] | None = None  # (function name, JSON argument list) after the body
    tests: TestSpec | None = None
    stop_at_first_failure: bool = True
    # Test rules: "improved" (harness.py, compare.py) or "official" (harness_official.py).
    semantics: str = "improved"

    def __post_init__(self):
        if not isinstance(self.code, str):
            raise TypeError(f"Job.code must be str, got {type(self.code).__name__}")
        if not isinstance(self.stdin, bytes):
            raise TypeError(f"Job.stdin must be bytes, got {type(self.stdin).__name__}")
        if not self.timeout_s > 0:
            raise ValueError(f"Job.timeout_s must be > 0, got {self.timeout_s}")
        if self.call is not None:
            try:
                args_ok = len(self.call) == 2 and isinstance(json.loads(self.call[1]), list)
            except (TypeError, ValueError):
                args_ok = False
            if not args_ok:
                raise ValueError(
                    f"Job.call must be (fn_name, JSON list of args), got {self.call!r}"
                )
        if self.tests is not None and not isinstance(self.tests, TestSpec):
            raise TypeError(f"Job.tests must be a TestSpec, got {type(self.tests).__name__}")
        if self.tests is not None and (self.trace or self.call):
            raise ValueError("Job: trace/call apply to plain runs, not to jobs with tests")
        if self.semantics not in SEMANTICS:
            raise ValueError(f"Job.semantics must be one of {SEMANTICS}, got {self.semantics!r}")
        if self.semantics == "official" and (self.tests is None or self.tests.kind == "assert"):
            raise ValueError(
                "Job: semantics='official' judges stdio and call tests (the official judge "
                "has no assert tests, and plain runs have no judge)"
            )

    def to_wire(self, limits: Limits) -> dict:
        return {
            "code": self.code,
            "stdin": self.stdin.decode("latin-1"),
            "timeout_s": self.timeout_s,
            "trace": self.trace,
            "call": list(self.call) if self.call else None,
            "mode": self.tests.kind if self.tests else "run",
            "tests": self.tests.to_json() if self.tests else None,
            "stop_at_first_failure": self.stop_at_first_failure,
            "semantics": self.semantics,
            "limits": limits.to_json(),
        }


@dataclasses.dataclass(frozen=True)
class TestResult:
    """One test: ``status`` is how the program fared (``not_run`` after a stop)."""

    passed: bool
    status: str
    expected: object  # stdout text / JSON text of the value / None (assert)
    got: object  # stdout text / encoded value / None
    error: str | None


@dataclasses.dataclass(frozen=True)
class Result:
    """What one job did. ``status`` is one of ``STATUSES``."""

    status: str
    exit_code: int | None  # negative: killed by that signal
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    variables: dict | None = None  # qualified name -> encoded value (trace=True)
    return_value: object = None  # encoded return value (call jobs)
    error: str | None = None  # the program's exception, "Type: message"
    tests: list[TestResult] | None = None

    @classmethod
    def from_report(cls, report: dict) -> Result:
        tests = report.get("tests")
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in report.items() if k in fields}
        kwargs["tests"] = [TestResult(**t) for t in tests] if tests is not None else None
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A program judged against its tests. Without tests it fails, except under the official
    rules: there it fails only when the program raised while the judge prepared it (the
    official run of a row without tests that dies, exits or overruns leaves no result, and
    no result passes)."""

    passed: bool
    status: str  # the status of the first failing test, else "ok"
    tests: list[TestResult]
    first_failure: int | None
    result: Result

    @classmethod
    def from_result(cls, result: Result, semantics: str = "improved") -> Verdict:
        tests = result.tests or []
        first = next((i for i, t in enumerate(tests) if not t.passed), None)
        status = "ok" if first is None else tests[first].status
        if result.status == "sandbox_error":
            status = "sandbox_error"
        passed = bool(tests) and first is None and status == "ok"
        if not tests and semantics == "official":
            raised = result.error is not None and result.exit_code == 1
            passed = result.status != "sandbox_error" and not raised
            status = "ok" if passed else result.status
        return cls(passed=passed, status=status, tests=tests, first_failure=first, result=result)

    @classmethod
    def failed(cls, status: str, error: str) -> Verdict:
        """The verdict on a program that never ran (``status``, with ``error`` saying why)."""
        result = Result(status, None, "", "", 0.0, 0.0, error=error, tests=[])
        return cls(passed=False, status=status, tests=[], first_failure=None, result=result)


class _WorkerDied(Exception):
    pass


_spawn_requests: queue.Queue = queue.Queue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _serve_spawn_requests() -> None:
    while True:
        function, args, kwargs, done = _spawn_requests.get()
        try:
            done.put((True, function(*args, **kwargs)))
        except BaseException as e:
            done.put((False, e))


def _from_lasting_thread(function, *args, **kwargs):
    """``function(*args, **kwargs)`` called on one thread that lives as long as the process.

    A worker dies with the thread that started it (``PR_SET_PDEATHSIG`` follows the forking
    thread, not the process), so workers are started there: a pool made on a short-lived
    thread (an executor's, a test's) keeps its workers after that thread ends.
    """
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = threading.Thread(
                target=_serve_spawn_requests, name="sandbox-spawner", daemon=True
            )
            _spawner.start()
    done: queue.Queue = queue.Queue(maxsize=1)
    _spawn_requests.put((function, args, kwargs, done))
    ok, value = done.get()
    if not ok:
        raise value
    return value


class _Worker:
    """Parent-side handle of one worker process."""

    def __init__(self, index: int, python: str, limits: Limits, disabled, base_dir: str):
        self.index = index
        self.process = _from_lasting_thread(
            subprocess.Popen,
            [python, "-I", "-c", BOOTSTRAP, _PACKAGE_DIR],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True,
        )  # fmt: skip
        self.channel = Channel(self.process.stdin.fileno(), self.process.stdout.fileno())
        self.buffer = bytearray()
        config = {"index": index, "limits": limits.to_json(), "disabled": list(disabled)}
        self.channel.send({**config, "base_dir": base_dir})
        self.ready = self.receive(timeout_s=120.0)

    def receive(self, timeout_s: float) -> dict:
        fd = self.process.stdout.fileno()
        while True:
            messages = parse_messages(self.buffer)
            if messages:
                return messages[0]
            if not select.select([fd], [], [], timeout_s)[0]:
                raise _WorkerDied(f"worker {self.index} did not answer in {timeout_s:.0f}s")
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise _WorkerDied(f"worker {self.index} exited (code {self.process.poll()})")
            self.buffer += chunk

    def run(self, wire_job: dict, timeout_s: float) -> dict:
        try:
            self.channel.send(wire_job)
        except OSError as e:
            raise _WorkerDied(f"worker {self.index} is gone: {e}") from e
        return self.receive(timeout_s)

    def close(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SandboxPool:
    """``num_workers`` warm workers running jobs in confined, per-job forked children."""

    def __init__(
        self,
        num_workers: int | None = None,
        limits: Limits | None = None,
        required_isolation: tuple[str, ...] = (),
        disabled_isolation: tuple[str, ...] = (),
        python_executable: str | None = None,
    ):
        for layer in (*required_isolation, *disabled_isolation):
            if layer not in LAYERS:
                raise ValueError(f"unknown isolation layer {layer!r}; expected one of {LAYERS}")
        self.num_workers = num_workers or len(os.sched_getaffinity(0))  # SLURM/taskset cpuset
        self.limits = limits or Limits()
        self.disabled_isolation = tuple(disabled_isolation)
        drops_uid = os.geteuid() == 0 and "uid" not in disabled_isolation
        if python_executable:
            self.python, why = python_executable, "given"
        else:
            self.python, why = isolation.pick_interpreter(drops_uid)
        self._base_dir = isolation.make_base_dir(drops_uid)
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._closed = False
        try:
            for i in range(self.num_workers):
                self._workers.append(self._start_worker(i))
        except BaseException:
            self.close()
            raise
        self.isolation: dict[str, str | None] = self._workers[0].ready["isolation"]
        summary = " ".join(f"{k}={v or 'off'}" for k, v in self.isolation.items())
        _log.info("isolation: %s (python %s: %s)", summary, self.python, why)
        missing = [k for k, v in self.isolation.items() if v is None]
        missing_required = [k for k in required_isolation if k in missing]
        if missing_required:
            self.close()
            raise SandboxUnavailableError(
                f"required isolation layers unavailable on this machine: {missing_required} "
                f"(isolation: {summary})"
            )
        unexpected = [k for k in missing if k not in self.disabled_isolation]
        if unexpected:
            warnings.warn(f"sandbox runs without {unexpected} (isolation: {summary})", stacklevel=2)
        self._idle: queue.Queue[int] = queue.Queue()
        for i in range(self.num_workers):
            self._idle.put(i)
        self._threads = ThreadPoolExecutor(self.num_workers, thread_name_prefix="sandbox")

    def _start_worker(self, index: int) -> _Worker:
        work_dir = tempfile.mkdtemp(prefix=f"worker{index}_", dir=self._base_dir)
        os.chmod(work_dir, 0o711)  # the sandbox uid must traverse it to reach its job dirs
        return _Worker(index, self.python, self.limits, self.disabled_isolation, work_dir)

    @property
    def worker_pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def _run_one(self, job: Job) -> Result:
        index = self._idle.get()
        try:
            wire = job.to_wire(self.limits)
            try:
                report = self._workers[index].run(wire, _job_budget_s(wire, self.limits) + 30)
            except (_WorkerDied, ValueError) as e:
                self._workers[index].close(kill=True)
                self._workers[index] = self._start_worker(index)
                report = sandbox_error(f"{e}; worker replaced")
            return Result.from_report(report)
        finally:
            self._idle.put(index)

    def run_batch(self, jobs: list[Job]) -> list[Result]:
        """Runs ``jobs`` over the workers; results in the same order."""
        if self._closed:
            raise RuntimeError("SandboxPool is closed")
        for i, job in enumerate(jobs):
            if not isinstance(job, Job):
                raise TypeError(f"run_batch: jobs[{i}] must be a Job, got {type(job).__name__}")
        return list(self._threads.map(self._run_one, jobs))

    def check_batch(
        self,
        programs: list[tuple[str, TestSpec]],
        timeout_s: float = 5.0,
        stop_at_first_failure: bool = True,
        semantics: str = "improved",
    ) -> list[Verdict]:
        """Judges each ``(code, tests)`` by the ``semantics``' rules; ``timeout_s`` applies
        per test. The official judge always stops at the first failing test."""
        jobs = [
            Job(
                code=code,
                tests=tests,
                timeout_s=timeout_s,
                stop_at_first_failure=stop_at_first_failure or semantics == "official",
                semantics=semantics,
            )
            for code, tests in programs
        ]
        return [Verdict.from_result(r, semantics) for r in self.run_batch(jobs)]

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if hasattr(self, "_threads"):
            self._threads.shutdown(wait=True)
        for worker in self._workers:
            worker.close()
        shutil.rmtree(self._base_dir, ignore_errors=True)

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
