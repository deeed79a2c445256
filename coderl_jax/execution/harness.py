"""Child side of the sandbox: runs one program (and its tests) after confinement.

Everything here runs in the sandboxed process ``U`` (the program) or, for assert tests, in
the checker process ``C``. Results leave through *channels*: pipes whose read end only the
supervisor holds, carrying length-prefixed JSON messages (``Channel``), separate from
stdout/stderr, so printing can never forge them.

Modes (``job["mode"]``), under ``semantics="improved"`` (``"official"``: the official judge's
own rules, ``harness_official.py``):

* ``run``: execute the program as ``__main__`` with the job's stdin; then, with ``call``,
  invoke the function on the decoded arguments and send its encoded return value; with
  ``trace``, send the traced variables (``tracer.py``).
* ``stdio``: for each test, point fds 0 and 1 at fresh files in the working directory
  (input written there first; output capped by ``RLIMIT_FSIZE`` and ``max_output_bytes``),
  run the program body in fresh globals, end the test as a fresh interpreter would end
  (below) and send the output text.
* ``call``: run the body once, then for each test call the function (or a fresh
  ``Solution()``'s method) and send the encoded return value. Expected values never enter
  the sandbox: the comparison happens in the supervisor (``compare.py``).
* ``assert``: ``U`` runs the body then serves calls of the entry point; ``C``, forked before
  ``U`` is confined and never running program code, runs ``check(candidate)`` where
  ``candidate`` forwards encoded arguments to ``U`` and decodes the encoded reply into plain
  builtins (an object with a rigged ``__eq__``/``__bool__`` arrives as an unrepresentable
  marker and raises). Only ``C`` holds the checker channel that carries the pass marker.

Ending like ``python prog.py``: the program process exits only when its interpreter would.
As in ``Py_FinalizeEx``, ``threading._shutdown()`` runs threading's exit hooks and joins
every non-daemon thread (when another thread is alive at all), then the ``atexit``
callbacks run (one that raises is printed and ignored), then stdout/stderr are flushed;
daemon threads end with the process. The supervisor's time limit runs until then, so a
thread that never ends makes a ``timeout``, and what threads print counts. A stdio test
ends the same way before its output is read, except that the main thread stays alive for
the next test (non-daemon threads are joined one by one, and ``concurrent.futures`` may
schedule work again). The callbacks the worker registered are dropped before program code
runs.

Threat model: program code shares ``U`` with this harness, so it can find ``U``'s channel
fd and write well-formed messages to it. That buys nothing: for stdio/call tests the
messages carry what the program could have printed or returned anyway, and the verdict is
computed outside from expected values the child never sees; the assert marker comes from
``C``, which the program cannot write to (separate process, no ptrace/process_vm by
seccomp, not dumpable, Landlock). What the program can do is kill ``C`` or exit early,
which only makes the test fail.
"""

from __future__ import annotations

import atexit
import builtins
import errno
import json
import os
import signal
import struct
import sys
import traceback

from .encoding import DEFAULT_CAPS, _type_name, decode_value, encode_value, holds_marker
from .harness_official import run_official_job
from .spec import decode_arguments
from .tracer import PROGRAM_FILENAME, VariableTracer

_HEADER = struct.Struct(">I")
_encode_json = json.JSONEncoder(allow_nan=False).encode  # = json.dumps(..., allow_nan=False)


class Channel:
    """Length-prefixed JSON messages over a pipe fd."""

    def __init__(self, write_fd: int = -1, read_fd: int = -1):
        self.write_fd, self.read_fd = write_fd, read_fd

    def send(self, message: dict) -> None:
        data = _encode_json(message).encode()
        view = memoryview(_HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    def _read_exact(self, n: int) -> bytes | None:
        chunks = []
        while n:
            chunk = os.read(self.read_fd, n)
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def receive(self) -> dict | None:
        header = self._read_exact(_HEADER.size)
        if header is None:
            return None
        data = self._read_exact(_HEADER.unpack(header)[0])
        return None if data is None else json.loads(data)


def parse_messages(buffer: bytearray) -> list[dict]:
    """Pops every complete message off the front of ``buffer`` (supervisor side)."""
    messages = []
    while len(buffer) >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer)
        if len(buffer) < _HEADER.size + size:
            break
        payload = bytes(buffer[_HEADER.size : _HEADER.size + size])
        del buffer[: _HEADER.size + size]
        messages.append(json.loads(payload))
    return messages


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` (at most 500 chars); survives a hostile ``__str__``."""
    name = _type_name(exc)
    try:
        message = str(exc)
        message = message if type(message) is str else ""
    except BaseException:
        message = "<unprintable>"
    return (f"{name}: {message}" if message else name)[:500]


def _exit_code_of(exc: SystemExit) -> int:
    """Exit status for ``sys.exit(code)``: 0 only for None/0, 1..255 kept, anything else 1."""
    code = exc.code
    if code is None or (type(code) is int and code == 0):
        return 0
    return code if type(code) is int and 0 < code < 256 else 1


def _fresh_globals() -> dict:
    return {"__name__": "__main__", "__builtins__": builtins}


def _run_body(code, globals_: dict) -> tuple[int, str | None]:
    """Executes the program body; (exit code, error text or None) like ``python prog.py``."""
    try:
        exec(code, globals_)
    except SystemExit as e:
        exit_code = _exit_code_of(e)
        return exit_code, (describe_exception(e) if exit_code else None)
    except BaseException as e:
        try:  # like the interpreter's report, without the harness's own frame
            traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        except BaseException:
            pass
        return 1, describe_exception(e)
    return 0, None


def _resolve_function(globals_: dict, name: str):
    solution = globals_.get("Solution")
    if isinstance(solution, type) and hasattr(solution, name):
        return getattr(solution(), name)
    if name in globals_ and callable(globals_[name]):
        return globals_[name]
    raise NameError(f"the program defines neither {name}() nor Solution.{name}()")


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _print_ignored(what: str) -> None:
    """Reports an exception the interpreter would print and ignore at exit."""
    try:
        print(f"Exception ignored in {what}:", file=sys.stderr)
        traceback.print_exc()
    except BaseException:
        pass


def _other_threads(threading) -> bool:
    """Whether a thread besides the main one is alive (or starting).

    If not (the usual program), ending like the interpreter has nothing to join and the
    standard library's threading exit hooks (``concurrent.futures``) nothing to wake, so it
    is skipped: that spares a child the copy-on-write faults of touching threading's state.
    """
    return threading.active_count() > 1


def _end_like_the_interpreter() -> None:
    """What ``Py_FinalizeEx`` does before the process ends (see the module docstring)."""
    _flush_std_streams()  # what the main thread printed, even if another never ends
    threading = sys.modules.get("threading")  # as CPython: only if the program has it
    more_output = False
    if threading is not None and _other_threads(threading):
        try:
            threading._shutdown()
        except BaseException:
            _print_ignored("threading._shutdown")
        more_output = True
    if atexit._ncallbacks():
        atexit._run_exitfuncs()
        more_output = True
    if more_output:
        _flush_std_streams()


def _end_test_like_the_interpreter() -> None:
    """``_end_like_the_interpreter`` for one stdio test, leaving the main thread alive."""
    threading = sys.modules.get("threading")
    if threading is not None and _other_threads(threading):
        try:
            for hook in reversed(getattr(threading, "_threading_atexits", ())):
                hook()  # e.g. concurrent.futures: wakes and joins idle executor workers
            current = threading.current_thread()
            while waiting := [
                t for t in threading.enumerate() if t is not current and not t.daemon
            ]:
                for thread in waiting:
                    try:
                        thread.join()
                    except Exception:  # not started yet (by another thread): next round
                        pass
        except BaseException:
            _print_ignored("the end of the test")
        futures = sys.modules.get("concurrent.futures.thread")
        if futures is not None:  # a fresh interpreter for the next test would allow it
            futures._shutdown = False
    if atexit._ncallbacks():
        atexit._run_exitfuncs()


def _open_test_files(workdir: str, text: str) -> int:
    """Points fds 0/1 at fresh input/output files; returns a private fd of the output."""
    stdin_path, stdout_path = os.path.join(workdir, ".stdin"), os.path.join(workdir, ".stdout")
    fd = os.open(stdin_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as f:
        f.write(text.encode())
    fd = os.open(stdin_path, os.O_RDONLY)
    os.dup2(fd, 0)
    os.close(fd)
    output_fd = os.open(stdout_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(output_fd, 1)
    sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    return output_fd


def _run_stdio_test(code, workdir: str, text: str, max_output: int) -> dict:
    """One stdin/stdout test in fresh globals: {"status", "stdout", "error"}."""
    output_fd = _open_test_files(workdir, text)
    try:
        exit_code, error = _run_body(code, _fresh_globals())
        _end_test_like_the_interpreter()
        try:
            if not sys.stdout.closed:  # closing stdout at the end is fine, as in CPython
                sys.stdout.flush()
        except BaseException as e:  # e.g. EFBIG, or a stdout replaced by something odd
            exit_code, error = 1, describe_exception(e)
        size = os.fstat(output_fd).st_size
        status = "ok" if exit_code == 0 else "runtime_error"
        if size > max_output or (error and f"[Errno {errno.EFBIG}]" in error):
            status, error = "output_limit", f"stdout exceeds {max_output} bytes"
        elif error and error.startswith("MemoryError"):
            status = "memory_limit"
        out = os.pread(output_fd, min(size, max_output), 0).decode("utf-8", errors="replace")
        return {"status": status, "stdout": out, "error": error}
    finally:
        os.close(output_fd)


def _run_stdio_tests(code, job: dict, channel: Channel) -> None:
    workdir = os.getcwd()  # before any program code can chdir away
    for i, text in enumerate(job["tests"]["inputs"]):
        channel.send({"t": "start", "i": i})
        try:
            outcome = _run_stdio_test(code, workdir, text, job["limits"]["max_output_bytes"])
        except OSError as e:  # the program broke the harness's files or fds
            outcome = {"status": "runtime_error", "stdout": "", "error": describe_exception(e)}
        channel.send({"t": "test", "i": i, **outcome})
        if outcome["status"] != "ok" and job["stop_at_first_failure"]:
            return


def _run_call_tests(globals_: dict, job: dict, channel: Channel) -> None:
    fn_name, argument_format = job["tests"]["fn_name"], job["tests"]["call_arguments"]
    for i, args_text in enumerate(job["tests"]["inputs"]):
        channel.send({"t": "start", "i": i})
        try:
            args = decode_value(decode_arguments(args_text, argument_format))
            value = encode_value(_resolve_function(globals_, fn_name)(*args))
            message = {"t": "test", "i": i, "status": "ok", "value": value}
        except BaseException as e:
            status = "memory_limit" if isinstance(e, MemoryError) else "runtime_error"
            message = {"t": "test", "i": i, "status": status, "error": describe_exception(e)}
        channel.send(message)


def _serve_candidate(globals_: dict, entry_point: str, requests: Channel) -> None:
    while (request := requests.receive()) is not None:
        try:
            args = decode_value(request["args"])
            kwargs = decode_value(request["kwargs"])
            reply = {"value": encode_value(globals_[entry_point](*args, **kwargs))}
        except BaseException as e:
            reply = {"error": describe_exception(e)}
        requests.send(reply)


def run_program_child(job: dict, channel: Channel, candidate_requests: Channel | None) -> None:
    """The program process ``U``: runs ``job`` and exits (never returns)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # oversized writes fail with EFBIG instead
    atexit._clear()  # the worker's callbacks; the program's own run at its end
    # From here on program code may write to the channel; the supervisor trusts no
    # "sandbox_error" message that arrives after this one.
    channel.send({"t": "ready"})
    if job.get("semantics") == "official":
        run_official_job(job, channel)
    exit_code, error = 0, None
    try:
        code = compile(job["code"], PROGRAM_FILENAME, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        channel.send({"t": "exit", "code": 1, "error": describe_exception(e)})
        os._exit(1)
    mode = job["mode"]
    if mode == "stdio":
        _run_stdio_tests(code, job, channel)
    else:
        globals_ = _fresh_globals()
        tracer = VariableTracer(DEFAULT_CAPS) if job.get("trace") else None
        if tracer:
            tracer.start()
        exit_code, error = _run_body(code, globals_)
        if error is None and mode == "call":
            _run_call_tests(globals_, job, channel)
        elif error is None and mode == "assert" and candidate_requests is not None:
            _serve_candidate(globals_, job["tests"]["entry_point"], candidate_requests)
        elif error is None and job.get("call"):
            fn_name, args_text = job["call"]
            try:
                value = _resolve_function(globals_, fn_name)(*decode_value(json.loads(args_text)))
                channel.send({"t": "return", "value": encode_value(value)})
            except BaseException as e:
                exit_code, error = 1, describe_exception(e)
        if tracer:
            tracer.stop()
            tracer.record("", globals_)
            channel.send({"t": "vars", "variables": tracer.variables})
    _end_like_the_interpreter()
    try:
        channel.send({"t": "exit", "code": exit_code, "error": error})
    except OSError:  # the program closed or clogged the channel: only its exit code is left
        pass
    os._exit(exit_code)


class CandidateError(Exception):
    """The program's entry point raised, or returned something that is not plain data."""


def run_checker_child(job: dict, marker: Channel, candidate_calls: Channel) -> None:
    """The checker process ``C`` of assert tests: runs ``check(candidate)``, never returns."""

    def candidate(*args, **kwargs):
        try:
            candidate_calls.send({"args": encode_value(list(args)), "kwargs": encode_value(kwargs)})
            reply = candidate_calls.receive()
        except OSError:  # the program is gone (BrokenPipeError) or broke the pipe
            reply = None
        if reply is None:
            raise CandidateError("the program stopped before answering")
        if "error" in reply:
            raise CandidateError(reply["error"])
        if holds_marker(reply["value"]):
            raise CandidateError(f"returned a value that is not plain data: {reply['value']}")
        return decode_value(reply["value"])

    try:
        globals_ = {"__name__": "__check__", "__builtins__": builtins}
        exec(compile(job["tests"]["check_code"], "<check>", "exec"), globals_)
        globals_["check"](candidate)
        result = {"t": "assert", "passed": True}
    except BaseException as e:
        result = {"t": "assert", "passed": False, "error": describe_exception(e)}
    marker.send(result)
    os._exit(0)
