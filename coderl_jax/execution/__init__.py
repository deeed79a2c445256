"""Sandboxed execution of generated programs: pool, test runner, variable tracer.

Public API (stdlib only, so the sandbox worker can import this package on its own):

* ``SandboxPool`` (context manager) with ``run_batch(list[Job]) -> list[Result]`` and
  ``check_batch(list[(code, TestSpec)]) -> list[Verdict]``; ``Limits`` for its resources.
* ``run_program`` / ``check_solution``: one-shot conveniences backed by a shared pool that
  starts on first use (``shared_pool()``) and is closed at interpreter exit;
  ``check_solution(..., semantics="official")`` is the official CodeRL+ code judge.
* ``compare``: every comparison that decides a reward (test runner and alignment answers,
  improved and official rules side by side).
* ``plain_variable_names``: traced qualified names -> plain names.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Mapping

from .compare import normalize_stdout, return_value_matches, stdout_matches
from .encoding import EncodeCaps, decode_value, encode_value
from .harness_official import OFFICIAL_TIMEOUT_S
from .isolation import LAYERS, Limits, SandboxUnavailableError
from .sandbox import STATUSES, Job, Result, SandboxPool, TestResult, Verdict
from .spec import OfficialRowFails, TestSpec
from .tracer import plain_variable_names

__all__ = [
    "LAYERS", "OFFICIAL_TIMEOUT_S", "STATUSES", "EncodeCaps", "Job", "Limits", "Result",
    "SandboxPool", "SandboxUnavailableError", "TestResult", "TestSpec", "Verdict",
    "check_solution",
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
    code: str,
    tests: TestSpec | Mapping | str,
    timeout_s: float | None = None,
    semantics: str = "improved",
    stop_at_first_failure: bool = True,
) -> Verdict:
    """Runs ``code`` against ``tests`` in one sandboxed child and judges it.

    Args:
      code: the program (already extracted from a completion).
      tests: a ``TestSpec``, or the ground truth of an official training row (a dict
        ``{"inputs", "outputs", "fn_name"?}`` or its JSON text, read by
        ``TestSpec.from_official``).
      timeout_s: wall-clock limit per test (None: 5 s improved, 6 s official).
      semantics: ``"improved"`` (this project's judge) or ``"official"`` (the official
        CodeRL+ judge, ``harness_official.py``; stdio and call tests only).
      stop_at_first_failure: skip the tests after a failing one (always, when official).
    """
    if timeout_s is None:
        timeout_s = OFFICIAL_TIMEOUT_S if semantics == "official" else 5.0
    if not isinstance(tests, TestSpec):
        try:
            tests = TestSpec.from_official(tests)
        except OfficialRowFails as e:
            return Verdict.failed("runtime_error", f"the official judge fails this row: {e}")
    pool = shared_pool()
    return pool.check_batch([(code, tests)], timeout_s, stop_at_first_failure, semantics)[0]
