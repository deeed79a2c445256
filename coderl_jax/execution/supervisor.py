"""One job, start to finish: fork the program, feed and drain it, enforce time, reap.

``supervise(job, ...)`` runs in the worker (or a throwaway fork of it, see
``worker.run_job``); call that process ``A``. ``A`` creates the job's directory, pipes and
Landlock ruleset, then forks the program ``B`` as PID 1 of a new PID namespace; for assert
tests ``B`` forks the checker ``C`` before confining itself. ``B`` and ``C`` only *apply*
what ``A`` prepared (``isolation.confine_child``): every page of Python state a child
touches costs it a copy-on-write fault, so work that can happen before the fork does.
``A`` then polls until ``B`` exits, which it does when its interpreter would (after the
program's non-daemon threads and ``atexit`` callbacks, see ``harness.py``):

* stdout/stderr pipes (kept up to ``max_output_bytes`` each; more kills the job:
  ``output_limit``, except under the official rules, which ignore these streams: the rest
  is dropped), the program's result channel and the checker's marker channel;
* stdin, fed from the job without blocking;
* the deadline: ``timeout_s`` for a plain run; for tests, ``timeout_s`` per test, restarted
  at each test's start message but never past ``timeout_s * (num_tests + 1)`` in total;
* test verdicts, judged outside the sandbox as they arrive (``judge.Judge``), so the job stops at
  the first failure.

Killing: SIGKILL to ``B``; as PID 1 of its namespace its death makes the kernel kill every
process left in it. ``A`` also kills ``B``'s process group and, when the worker has its own
uid, every process of that uid (helper ``kill(-1)`` after ``setresuid``), which covers
machines without PID namespaces. ``B`` is reaped with ``wait4`` (CPU time from its
rusage), and the working directory is removed.
"""

from __future__ import annotations

import math
import os
import select
import shutil
import signal
import time

from . import isolation
from .harness import Channel, parse_messages, run_checker_child, run_program_child
from .judge import Judge, build_report, num_tests

_CHUNK = 1 << 16
_MAX_CHANNEL_BYTES = 64 << 20
_PR_SET_DUMPABLE = 4


def _close_all_except(keep: set[int]) -> None:
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _checker_main(job, iso, limits, workdir, cpu_seconds, fds) -> None:
    try:
        _close_all_except({fds["marker_w"], fds["c2u_w"], fds["u2c_r"]} | _ruleset_fds(fds))
        isolation.confine_child(iso, limits, workdir, cpu_seconds, fds.get("ruleset"))
        isolation._prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        _close_all_except({fds["marker_w"], fds["c2u_w"], fds["u2c_r"]})
        calls = Channel(write_fd=fds["c2u_w"], read_fd=fds["u2c_r"])
        run_checker_child(job, Channel(fds["marker_w"]), calls)
    finally:
        os._exit(121)


def _program_main(job, iso, limits, workdir, cpu_seconds, fds) -> None:
    try:
        os.setsid()
        for src, dst in ((fds["stdin_r"], 0), (fds["out_w"], 1), (fds["err_w"], 2)):
            os.dup2(src, dst)
        requests = None
        if job["mode"] == "assert":
            if os.fork() == 0:
                _checker_main(job, iso, limits, workdir, cpu_seconds, fds)
            requests = Channel(write_fd=fds["u2c_w"], read_fd=fds["c2u_r"])
        keep = {fds["res_w"]} | ({fds["u2c_w"], fds["c2u_r"]} if requests else set())
        _close_all_except(keep | _ruleset_fds(fds))
        isolation.confine_child(iso, limits, workdir, cpu_seconds, fds.get("ruleset"))
        _close_all_except(keep)
        run_program_child(job, Channel(fds["res_w"]), requests)
    except BaseException as e:
        try:
            Channel(fds["res_w"]).send({"t": "sandbox_error", "error": repr(e)[:500]})
        finally:
            os._exit(120)
    os._exit(120)


def _make_workdir(base_dir: str) -> str:
    """A new, empty directory (mode 0700) for one job inside the worker's ``base_dir``.

    Named by a per-worker counter: the worker runs one job at a time and every job
    directory is private (0700, its own uid or Landlock), so the name needs no randomness.
    """
    global _next_workdir
    while True:
        path = os.path.join(base_dir, f"job{_next_workdir}")
        _next_workdir += 1
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:  # left over from a job whose directory could not be removed
            continue


_next_workdir = 0


def _remove_workdir(path: str) -> None:
    """Removes a job's directory: a quick pass for the usual flat one, else ``rmtree``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        raise IsADirectoryError(entry.name)
                    os.unlink(entry.name, dir_fd=fd)
        finally:
            os.close(fd)
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _ruleset_fds(fds: dict[str, int]) -> set[int]:
    return {fds["ruleset"]} if "ruleset" in fds else set()


def _sweep_uid(uid: int) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _has_exited(pid: int) -> bool:
    """Whether ``pid`` has exited, leaving it unreaped (so its pid cannot be reused yet)."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def supervise(job: dict, iso, limits: isolation.Limits, base_dir: str) -> dict:
    """Runs one job (dict from ``sandbox.Job.to_wire``) and returns its report dict."""
    start = time.monotonic()
    timeout = float(job["timeout_s"])
    hard_end = start + timeout * (num_tests(job) + 1)
    cpu_seconds = math.ceil(hard_end - start) + 1
    workdir = _make_workdir(base_dir)
    fds: dict[str, int] = {}
    pid = None  # the program while it is not yet reaped
    try:
        if iso.uid is not None:
            os.chown(workdir, iso.uid, iso.uid)
        names = ("stdin", "out", "err", "res")
        if job["mode"] == "assert":
            names += ("marker", "c2u", "u2c")
        for name in names:
            fds[f"{name}_r"], fds[f"{name}_w"] = os.pipe()
        if iso.on("landlock"):  # built here so that the child only enforces it
            fds["ruleset"] = isolation.job_landlock_ruleset(iso, workdir)
        if iso.uid is not None:  # so the program may reopen them, e.g. open("/dev/stdin")
            for name in ("stdin_r", "out_w", "err_w"):
                os.fchown(fds[name], iso.uid, iso.uid)
        pid = _fork_in_new_pid_namespace(iso)
        if pid == 0:
            _program_main(job, iso, limits, workdir, cpu_seconds, fds)
        for name in _CHILD_ENDS:
            if name in fds:
                os.close(fds.pop(name))
        watch = _Watch(job, fds, limits, timeout, start, hard_end)
        kill_reason = watch.run(pid)
        _kill_everything(pid, iso)
        _, status, rusage = os.wait4(pid, 0)
        pid = None
        watch.drain_after_exit()
    finally:
        if pid:  # something above failed: never leave the program running or unreaped
            _kill_everything(pid, iso)
            os.wait4(pid, 0)
        for fd in fds.values():
            os.close(fd)
        _remove_workdir(workdir)
    report = build_report(job, watch, status, rusage, kill_reason, cpu_seconds)
    report["wall_s"] = time.monotonic() - start
    return report


_CHILD_ENDS = (
    "stdin_r", "out_w", "err_w", "res_w", "marker_w", "c2u_w", "c2u_r", "u2c_w", "u2c_r",
    "ruleset",
)  # fmt: skip


def _fork_in_new_pid_namespace(iso) -> int:
    """``os.fork()``, the child being PID 1 of a new PID namespace when ``pidns`` is on.

    ``unshare(CLONE_NEWPID)`` only affects later children and cannot be repeated while it is
    pending, so the caller's namespace-for-children is reset with ``setns`` after the fork
    (when the worker could open its own namespace; otherwise this runs in a throwaway
    process, see ``worker.run_job``).
    """
    if iso.on("pidns"):
        isolation.unshare(isolation.CLONE_NEWPID)
    pid = None
    try:
        pid = os.fork()
    finally:
        if pid != 0 and iso.own_pidns_fd is not None:
            isolation.setns(iso.own_pidns_fd, isolation.CLONE_NEWPID)
    return pid


def _kill_everything(pid: int, iso) -> None:
    for kill in (os.kill, os.killpg):
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if iso.uid is not None and not iso.on("pidns"):
        _sweep_uid(iso.uid)


class _Watch:
    """The poll loop of one job: stdin in, output and channels out, deadlines."""

    def __init__(self, job, fds, limits, timeout, start, hard_end):
        self.job, self.fds, self.limits = job, fds, limits
        self.timeout, self.deadline, self.hard_end = timeout, start + timeout, hard_end
        self.judge = Judge(job) if job["mode"] != "run" else None
        self.official = job.get("semantics") == "official"
        self.streams = {fds["out_r"]: bytearray(), fds["err_r"]: bytearray()}
        self.channels = {fds[n]: bytearray() for n in ("res_r", "marker_r") if n in fds}
        self.channel_bytes = 0
        self.messages: list[dict] = []
        self.marker: dict | None = None
        self.pending_stdin = memoryview(job["stdin"].encode("latin-1"))
        self.kill_reason: str | None = None
        self.ready = False  # the harness reached program code (see harness.run_program_child)

    def run(self, pid: int) -> str | None:
        """Polls until the program exits or must be killed; returns the kill reason."""
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # Python < 3.9 or Linux < 5.3: poll in 10 ms steps
            pidfd = None
        poller = select.poll()
        for fd in [*self.streams, *self.channels] + ([pidfd] if pidfd is not None else []):
            poller.register(fd, select.POLLIN)
        os.set_blocking(self.fds["stdin_w"], False)
        poller.register(self.fds["stdin_w"], select.POLLOUT)
        try:
            while self.kill_reason is None:
                remaining = min(self.deadline, self.hard_end) - time.monotonic()
                if remaining <= 0:
                    self.kill_reason = "timeout"
                    break
                wait_ms = int(remaining * 1000) + 1 if pidfd is not None else 10
                events = poller.poll(min(wait_ms, int(remaining * 1000) + 1))
                if pidfd is not None and any(fd == pidfd for fd, _ in events):
                    break
                for fd, _ in events:
                    if fd == self.fds.get("stdin_w"):
                        self._feed_stdin(poller)
                    elif not self._read(fd):
                        poller.unregister(fd)
                if pidfd is None and _has_exited(pid):
                    break
        finally:
            if pidfd is not None:
                os.close(pidfd)
        return self.kill_reason

    def _feed_stdin(self, poller) -> None:
        fd = self.fds["stdin_w"]
        try:
            written = os.write(fd, self.pending_stdin[:_CHUNK])
            self.pending_stdin = self.pending_stdin[written:]
        except BrokenPipeError:
            self.pending_stdin = self.pending_stdin[:0]
        if not self.pending_stdin:
            poller.unregister(fd)
            os.close(self.fds.pop("stdin_w"))

    def _read(self, fd: int) -> bool:
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            return True
        if not data:
            return False
        if fd in self.streams:
            buffer, cap = self.streams[fd], self.limits.max_output_bytes
            if len(buffer) + len(data) > cap and not self.official:
                self.kill_reason = self.kill_reason or "output_limit"
            buffer += data[: max(0, cap - len(buffer))]
            return True
        self.channel_bytes += len(data)
        if self.channel_bytes > _MAX_CHANNEL_BYTES:
            self.kill_reason = self.kill_reason or "output_limit"
            return True
        self.channels[fd] += data
        try:
            for message in parse_messages(self.channels[fd]):
                if fd == self.fds.get("marker_r"):
                    self._on_marker(message)
                else:
                    self._on_message(message)
        except Exception:  # malformed or forged messages: judged below, never a crash here
            self.kill_reason = self.kill_reason or "bad_channel"
        return True

    def _on_message(self, message: dict) -> None:
        kind = message["t"]
        if kind == "ready":
            self.ready = True
            return
        if kind == "sandbox_error" and self.ready:
            raise ValueError("sandbox_error message from program code")
        self.messages.append(message)
        if self.judge is None or kind not in ("start", "test"):
            return
        if kind == "start":
            self.judge.current = message["i"]
            self.deadline = time.monotonic() + self.timeout
        elif not self.judge.on_test(message) and self.job["stop_at_first_failure"]:
            self.kill_reason = self.kill_reason or "first_failure"

    def _on_marker(self, message: dict) -> None:
        if message.get("t") != "assert" or self.marker is not None:
            raise ValueError("bad checker message")
        self.marker = message
        passed = message.get("passed") is True
        self.judge.results[0] = {
            "passed": passed, "status": "ok", "expected": None, "got": None,
            "error": message.get("error"),
        }  # fmt: skip

    def drain_after_exit(self) -> None:
        """Reads what is left in the pipes once every writer is gone (or gone quiet)."""
        for fd in [*self.streams, *self.channels]:
            os.set_blocking(fd, False)
            while self._read(fd):
                if self.kill_reason == "bad_channel":
                    break
                try:
                    if not select.select([fd], [], [], 0)[0]:
                        break
                except OSError:
                    break
