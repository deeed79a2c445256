"""From a finished job's messages and wait status to its report: statuses and verdicts.

Runs in the supervisor, outside the sandbox. ``Judge`` compares each test result the
harness sends with the expected output as it arrives, by the job's rules (``compare.py``:
``stdout_matches``/``return_value_matches``, or their ``official_*`` counterparts). ``build_report``
then decides the job's status: a sandbox failure before program code ran
(``sandbox_error``), the supervisor's kill reason (``timeout``, ``output_limit``; a
corrupted channel counts as ``runtime_error`` and voids every reported test), the signal
that ended the program (``SIGXCPU``/CPU-limit ``SIGKILL`` -> ``timeout``, ``SIGXFSZ`` ->
``output_limit``, others ``killed_by_signal``), else its exit status (``MemoryError`` ->
``memory_limit``, ``EFBIG`` -> ``output_limit``). Tests without a result get the job's
failure (the first) or ``not_run`` (the rest).
"""

from __future__ import annotations

import json
import os
import signal

from .compare import (
    official_return_matches,
    official_stdout_matches,
    return_value_matches,
    stdout_matches,
)

# What the harness may report for a test it ran (anything else is a forged message).
TEST_STATUSES = ("ok", "runtime_error", "memory_limit", "output_limit")


def num_tests(job: dict) -> int:
    if job["mode"] == "run":
        return 0
    return 1 if job["mode"] == "assert" else len(job["tests"]["inputs"])


class Judge:
    """Per-test verdicts from the child's messages, with the expected values."""

    def __init__(self, job: dict):
        self.tests = job.get("tests")
        self.mode = job["mode"]
        self.official = job.get("semantics") == "official"
        self.results: dict[int, dict] = {}
        self.current: int | None = None

    def on_test(self, message: dict) -> bool:
        """Records a test result; returns whether it passed."""
        i = message["i"]
        if not isinstance(i, int) or not 0 <= i < len(self.tests["inputs"]) or i in self.results:
            raise ValueError(f"unexpected test index {i!r}")
        expected = self.tests["outputs"][i]
        status = message.get("status", "runtime_error")
        got = message.get("stdout") if self.mode == "stdio" else message.get("value")
        if status not in TEST_STATUSES or (self.mode == "stdio" and not isinstance(got, str)):
            raise ValueError(f"malformed result for test {i}")
        passed = status == "ok" and self._matches(got, expected)
        self.results[i] = {
            "passed": passed, "status": status, "expected": expected, "got": got,
            "error": message.get("error"),
        }  # fmt: skip
        return passed

    def _matches(self, got, expected: str) -> bool:
        if self.mode == "stdio" and self.official:
            return official_stdout_matches(got, expected)
        if self.mode == "stdio":
            return stdout_matches(got, expected, self.tests["float_tolerance"])
        try:
            if self.official:
                return official_return_matches(got, expected)
            return return_value_matches(got, json.loads(expected))
        except (ValueError, RecursionError):  # expected text not JSON; nesting past the stack
            return False


def _process_status(job, watch, status, rusage, kill_reason, cpu_limit) -> tuple[str, str | None]:
    exit_message = next((m for m in reversed(watch.messages) if m.get("t") == "exit"), None)
    error = exit_message.get("error") if exit_message else None
    for m in watch.messages:
        if m.get("t") == "sandbox_error":
            return "sandbox_error", m.get("error")
    if not watch.ready and kill_reason != "timeout":
        return "sandbox_error", "the sandboxed child died while being set up"
    if kill_reason in ("timeout", "output_limit"):
        return kill_reason, error
    if kill_reason == "bad_channel":
        return "runtime_error", "the program corrupted its result channel"
    if kill_reason == "first_failure":
        return "ok", error
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        cpu_s = rusage.ru_utime + rusage.ru_stime
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu_s >= cpu_limit - 0.5):
            return "timeout", error
        if sig == signal.SIGXFSZ:
            return "output_limit", error
        return "killed_by_signal", error or f"killed by {signal.Signals(sig).name}"
    if os.WEXITSTATUS(status) == 0:
        return "ok", error
    if error and "[Errno 27]" in error:  # EFBIG: a file grew past RLIMIT_FSIZE
        return "output_limit", error
    if error and error.startswith("MemoryError"):
        return "memory_limit", error
    return "runtime_error", error


def _missing_reason(job: dict, status: str) -> str:
    if status == "timeout":
        return f"time limit of {job['timeout_s']}s exceeded"
    if status == "output_limit":
        return "output limit exceeded"
    if job["mode"] == "assert":
        return "the checker did not confirm completion"
    return "the program ended before this test finished"


def _test_results(watch, proc_status: str, error: str | None) -> list[dict]:
    judge = watch.judge
    if watch.kill_reason == "bad_channel":  # forged or garbled messages: trust none of them
        judge.results.clear()
    tests, failure_assigned = [], False
    for i in range(num_tests(watch.job)):
        if i in judge.results:
            tests.append(judge.results[i])
            failure_assigned |= not judge.results[i]["passed"]
            continue
        expected = None if watch.job["mode"] == "assert" else watch.job["tests"]["outputs"][i]
        if failure_assigned:
            entry = {"status": "not_run", "error": None}
        else:
            failure_assigned = True
            status = "runtime_error" if proc_status == "ok" else proc_status
            entry = {"status": status, "error": error or _missing_reason(watch.job, status)}
        tests.append({"passed": False, "expected": expected, "got": None, **entry})
    return tests


def build_report(job, watch, status, rusage, kill_reason, cpu_limit) -> dict:
    proc_status, error = _process_status(job, watch, status, rusage, kill_reason, cpu_limit)
    by_kind = {m.get("t"): m for m in watch.messages}
    return {
        "status": proc_status,
        "exit_code": os.waitstatus_to_exitcode(status),
        "stdout": bytes(watch.streams[watch.fds["out_r"]]).decode("utf-8", errors="replace"),
        "stderr": bytes(watch.streams[watch.fds["err_r"]]).decode("utf-8", errors="replace"),
        "cpu_s": rusage.ru_utime + rusage.ru_stime,
        "variables": by_kind["vars"].get("variables") if "vars" in by_kind else None,
        "return_value": by_kind["return"].get("value") if "return" in by_kind else None,
        "error": error,
        "tests": _test_results(watch, proc_status, error) if watch.judge else None,
    }
