"""Sandboxed execution of generated programs: pool, test runner, variable tracer.

Public API (stdlib only, so the sandbox worker can import this package on its own):

* ``SandboxPool`` (context manager) with ``run_batch(list[Job]) -> list[Result]`` and
  ``check_batch(list[(code, TestSpec)]) -> list[Verdict]``; ``Limits`` for its resources.
* ``run_program`` / ``check_solution``: one-shot conveniences backed by a shared pool that
  starts on first use (``shared_pool()``) and is closed at interpreter exit.
* ``compare``: every comparison that decides a reward (test runner and alignment answers,
  improved and official rules side by side).
* ``plain_variable_names``: traced qualified names -> plain names.
"""

from __future__ import annotations

import atexit
import threading

from .compare import normalize_stdout, return_value_matches, stdout_matches
from .encoding import EncodeCaps, decode_value, encode_value
from .isolation import LAYERS, Limits, SandboxUnavailableError
from .sandbox import STATUSES, Job, Result, SandboxPool, TestResult, Verdict
from .spec import TestSpec
from .tracer import plain_variable_names

__all__ = [
    "LAYERS", "STATUSES", "EncodeCaps", "Job", "Limits", "Result", "SandboxPool",
    "SandboxUnavailableError", "TestResult", "TestSpec", "Verdict", "check_solution",
    "decode_value", "encode_value", "normalize_stdout", "plain_variable_names",
    "return_value_matches", "run_program", "shared_pool", "stdout_matches",
]  # fmt: skip

_shared: SandboxPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> SandboxPool:
    """The process-wide pool behind ``run_program``/``check_solution`` (started lazily)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SandboxPool()
            atexit.register(_shared.close)
        return _shared


def run_program(
    code: str,
    stdin: bytes = b"",
    timeout_s: float = 5.0,
    trace: bool = False,
    call: tuple[str, str] | None = None,
) -> Result:
    """Runs ``code`` once in the sandbox (``call``: (function name, JSON argument list))."""
    job = Job(code=code, stdin=stdin, timeout_s=timeout_s, trace=trace, call=call)
    return shared_pool().run_batch([job])[0]


def check_solution(
    code: str, tests: TestSpec, timeout_s: float = 5.0, stop_at_first_failure: bool = True
) -> Verdict:
    """Runs ``code`` against ``tests`` in one sandboxed child; ``timeout_s`` is per test."""
    return shared_pool().check_batch([(code, tests)], timeout_s, stop_at_first_failure)[0]
