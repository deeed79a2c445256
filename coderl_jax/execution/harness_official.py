"""Child side of ``semantics="official"``: the official CodeRL+ code judge, in the sandbox.

The official reward of a code rollout is LiveCodeBench's ``run_test`` as CodeRL+ vendors it
(verl ``utils/reward_score/livecodebench``, called with a 6 s limit per test). This module
does to a program what that code does, inside this project's sandbox child
(``harness.run_program_child`` hands it every job with ``semantics="official"``). Expected
outputs never enter the child: the supervisor compares with ``compare.official_*``.

Before anything runs (the official reward does this in the trainer's process): the program
must ``ast.parse``; when the row has a ``fn_name`` key (call tests, or stdio tests from a row
with ``"fn_name": null``) and the text lacks ``class Solution``, the last top-level ``def`` of
that name is moved into a new ``class Solution`` at the end (``self`` first unless its first
parameter is named so) and the module is re-emitted by ``ast.unparse``; with no such ``def``
the program fails.

Then, as ``run_test`` does:

* Hardening (``reliability_guard``): ``quit``, ``help`` and the destructive ``os``,
  ``shutil`` and ``subprocess`` functions become ``None``; ``ipdb``, ``joblib``,
  ``resource``, ``psutil``, ``tkinter`` cannot be imported. The int/str digit limit is
  50 000 (the official process raises it on import).
* stdio: a final ``if __name__ == '__main__':`` is replaced by its body; top-level imports
  are hoisted and every other top-level statement becomes the body of ``wrapped_function``;
  ``PRELUDE``, the imports and the function run as module ``tmp_sol`` (a text holding
  ``class Solution`` also instantiates ``tmp_sol.Solution``). Each test calls the function
  with stdout a fresh ``StringIO`` (whose ``close`` wants one argument); the *original*
  ``sys.stdin`` object's ``read``, ``readlines`` and ``readline`` answer the whole input, its
  ``split("\\n")``, and its next piece (``StopIteration`` once exhausted); ``sys.stdin`` is a
  ``StringIO`` of the input and ``builtins.open`` a ``mock_open`` of it (made on first use).
  ``SystemExit`` ends a test normally. What went to that ``StringIO`` is the test's output.
* call: ``PRELUDE`` and the program run as ``tmp_sol``; the method is
  ``tmp_sol.Solution().<fn_name>`` if the text holds ``class Solution``, else
  ``tmp_sol.<fn_name>``; every test's arguments are decoded (official rows: one JSON value
  per line) before the first call; each call's return value is sent encoded (stdin and
  stdout untouched).
* A failure before the tests fails the first test (the official result is ``[-4]``, or no
  result when a ``BaseException`` other than an ``Exception`` ends the run); a failing test
  ends the job (the supervisor stops at the first wrong answer).
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import io
import os
import sys
import types

from .compare import OFFICIAL_INT_DIGITS
from .encoding import EncodeCaps, encode_value
from .spec import decode_arguments

OFFICIAL_TIMEOUT_S = 6.0  # the official reward's per-test limit (compute_score's default)
_STAR_MODULES = (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
    "statistics", "itertools", "functools", "operator", "io", "sys", "json",
)  # fmt: skip
# The official prelude, in its order: later bindings win (``copy`` is the module, not the
# function; ``open`` is the builtin; ``stdin``/``stdout`` are the process's own streams).
PRELUDE = (
    "".join(f"from {name} import *\n" for name in (*_STAR_MODULES, "builtins", "typing"))
    + "".join(f"import {name}\n" for name in _STAR_MODULES)
    + "sys.setrecursionlimit(50000)\n"
)
# The official judge caps no output; a test's captured stdout may reach this here (the
# result channel of one program carries 64 MiB at most, supervisor.py).
OFFICIAL_MAX_TEST_OUTPUT = 16 << 20
# Return values cross the sandbox as data; these caps are far above what a test returns.
RETURN_CAPS = EncodeCaps(
    max_depth=100, max_items=1_000_000, max_str_chars=16_000_000, max_nodes=2_000_000
)
_DISABLED_OS = (
    "kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork",
    "forkpty", "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod",
    "fchown", "chmod", "chown", "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir",
)  # fmt: skip
_BLOCKED_MODULES = ("ipdb", "joblib", "resource", "psutil", "tkinter")


class ProgramFails(Exception):
    """The program fails before its first test (official result ``[-4]`` or no run)."""


def solution_class_program(code: str, fn_name: str | None) -> str:
    """``code`` with its top-level ``def fn_name`` moved into a new ``class Solution``."""
    tree = ast.parse(code)
    target, body = None, []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == fn_name:
            target = node
        else:
            body.append(node)
    if target is None:
        raise ProgramFails(f"no top-level function {fn_name!r} to wrap into class Solution")
    if not (target.args.args and target.args.args[0].arg == "self"):
        target.args.args.insert(0, ast.arg(arg="self", annotation=None))
    body.append(
        ast.ClassDef(name="Solution", bases=[], keywords=[], body=[target], decorator_list=[])
    )
    tree.body = body
    return ast.unparse(tree)


def _without_final_main_guard(code: str) -> str:
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            code = ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:  # the official step keeps the text on any failure
        pass
    return code


def stdio_module_text(code: str) -> str:
    """What the official stdio judge executes for ``code`` (module docstring)."""
    code = _without_final_main_guard(code)
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        others = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        no_arguments = ast.arguments(
            posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]
        )
        function = ast.FunctionDef(
            name="wrapped_function", args=no_arguments, body=others, decorator_list=[], lineno=-1
        )
        return PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(function)
    except Exception:  # the official step keeps the text on any failure
        return code


def _harden() -> None:
    import faulthandler
    import shutil
    import subprocess

    faulthandler.disable()
    builtins.quit = None
    builtins.help = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in _DISABLED_OS:
        setattr(os, name, None)
    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    for name in _BLOCKED_MODULES:
        sys.modules[name] = None
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(OFFICIAL_INT_DIGITS)


def _load(text: str):
    """Runs ``text`` as module ``tmp_sol``; returns it, or its ``Solution()`` when the text
    holds ``class Solution``."""
    module = types.ModuleType("tmp_sol", "")
    exec(text, module.__dict__)
    return module.Solution() if "class Solution" in text else module


class _MockOpen:
    """``builtins.open`` during a stdio test: the official ``mock_open(read_data=input)``,
    made when first used (making one costs about 4 ms; few programs ever look it up). Only
    ``type()`` and ``repr()`` of ``builtins.open`` itself tell the two apart."""

    def __init__(self, text: str):
        self._text, self._mock = text, None

    def _made(self):
        if self._mock is None:
            from unittest import mock

            self._mock = mock.mock_open(read_data=self._text)
        return self._mock

    def __call__(self, *args, **kwargs):
        return self._made()(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._made(), name)


@contextlib.contextmanager
def _official_stdin(text: str):
    """The official per-test stdin patches, entered and left in the official order."""
    original, pieces = sys.stdin, iter(text.split("\n"))
    patches = {
        "read": lambda *args: text,
        "readlines": lambda *args: text.split("\n"),
        "readline": lambda *args: next(pieces),
    }
    own = {name: original.__dict__[name] for name in patches if name in original.__dict__}
    saved_open = builtins.open
    for name, function in patches.items():
        setattr(original, name, function)
    sys.stdin = io.StringIO(text)
    builtins.open = _MockOpen(text)
    try:
        yield
    finally:
        builtins.open = saved_open
        sys.stdin = original
        for name in reversed(patches):
            if name in own:
                setattr(original, name, own[name])
            else:
                delattr(original, name)


def _stdio_test(method, text: str) -> tuple[str, str, str | None]:
    """One official stdio test: (status, captured output, error)."""
    from .harness import describe_exception

    captured = io.StringIO()
    captured.close = lambda x: 1  # as the official capture: close() without an argument fails
    saved_stdout, status, error = sys.stdout, "ok", None
    sys.stdout = captured
    try:
        with _official_stdin(text):
            try:
                method()
            except SystemExit:
                pass
    except BaseException as e:
        status, error = "runtime_error", describe_exception(e)
    finally:
        sys.stdout = saved_stdout
    return status, captured.getvalue(), error


def _prepare(job: dict):
    """The program's method to call per test, after the official preparation steps."""
    code, tests = job["code"], job["tests"]
    try:
        ast.parse(code)
    except BaseException as e:
        raise ProgramFails(f"the program does not parse: {e!r}"[:500]) from None
    if (tests["kind"] == "call" or tests["null_fn_name"]) and "class Solution" not in code:
        code = solution_class_program(code, tests["fn_name"])
    _harden()
    if tests["kind"] == "stdio":
        text, name = stdio_module_text(code), "wrapped_function"
    else:
        text, name = PRELUDE + "\n\n" + code, tests["fn_name"]
    program = _load(text)
    if not hasattr(program, name):
        raise ProgramFails(f"the program defines no {name}")
    return getattr(program, name)


def run_official_job(job: dict, channel) -> None:
    """Runs an official stdio/call job in the program process ``U``; never returns."""
    from .harness import describe_exception

    tests = job["tests"]
    max_output = max(job["limits"]["max_output_bytes"], OFFICIAL_MAX_TEST_OUTPUT)
    sys.stdin = open(0, closefd=False)  # the process's own stdin (empty for test jobs)
    channel.send({"t": "start", "i": 0})  # preparing counts against the first test's time
    try:
        method = _prepare(job)
        if tests["kind"] == "call":
            arguments = [
                decode_arguments(text, tests["call_arguments"]) for text in tests["inputs"]
            ]
    except BaseException as e:
        error = e.args[0] if isinstance(e, ProgramFails) else describe_exception(e)
        if tests["inputs"]:
            channel.send({"t": "test", "i": 0, "status": "runtime_error", "error": error})
        if not isinstance(e, Exception):  # SystemExit...: the official run dies, no result
            os._exit(3)
        channel.send({"t": "exit", "code": 1, "error": error})  # officially: results [-4]
        os._exit(1)
    for i, text in enumerate(tests["inputs"]):
        channel.send({"t": "start", "i": i})
        if tests["kind"] == "stdio":
            status, output, error = _stdio_test(method, text)
            if len(output) > max_output:
                status, error = "output_limit", f"stdout exceeds {max_output} characters"
            message = {"status": status, "stdout": output, "error": error}
        else:
            try:
                value = encode_value(method(*arguments[i]), RETURN_CAPS)
                message = {"status": "ok", "value": value}
            except BaseException as e:
                message = {"status": "runtime_error", "error": describe_exception(e)}
        channel.send({"t": "test", "i": i, **message})
        if message["status"] != "ok":
            break
    channel.send({"t": "exit", "code": 0, "error": None})
    os._exit(0)
