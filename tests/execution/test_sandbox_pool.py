"""Pool behaviour, statuses, and the three test kinds (including faking attempts)."""

import os
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from coderl_jax.execution import (
    Job,
    Limits,
    SandboxPool,
    SandboxUnavailableError,
    Verdict,
    check_solution,
    run_program,
)
from coderl_jax.execution import (
    TestSpec as Spec,
)

STDIO = Spec("stdio", inputs=("1 2\n", "3 4\n", "5 5\n"), outputs=("3\n", "7", "10"))
CALL = Spec("call", inputs=("[1, 2]", "[3, 4]"), outputs=("3", "7"), fn_name="add")
ASSERT = Spec(
    "assert",
    check_code="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n",
    entry_point="add",
)


def test_statuses_of_plain_runs(pool):
    jobs = [
        Job("print(input()[::-1])", stdin=b"abc\n"),
        Job("import sys\nprint('oops', file=sys.stderr)\n1 / 0"),
        Job("while True:\n    pass", timeout_s=0.5),
        Job("import sys\nsys.exit(3)"),
        Job("x = bytearray(2 << 30)"),
        Job("def f(a, b):\n    return {'s': a + b}", call=("f", "[1, 2]")),
        Job(
            "class Solution:\n    def f(self, xs):\n        return tuple(xs)",
            call=("f", "[[1, 2]]"),
        ),
        Job("def broken(:\n    pass"),
        Job("print(open('/dev/stdin').read().upper())", stdin=b"pipe"),
    ]
    r = pool.run_batch(jobs)
    assert (r[0].status, r[0].stdout, r[0].exit_code) == ("ok", "cba\n", 0)
    assert (r[1].status, r[1].error) == ("runtime_error", "ZeroDivisionError: division by zero")
    assert r[1].stderr.startswith("oops\n") and "ZeroDivisionError" in r[1].stderr
    assert r[2].status == "timeout" and 0.5 <= r[2].wall_s < 3
    assert (r[3].status, r[3].exit_code) == ("runtime_error", 3)
    assert r[4].status == "memory_limit"
    assert (r[5].status, r[5].return_value) == ("ok", {"s": 3})
    assert r[6].return_value == {"__tuple__": [1, 2]}
    assert r[7].status == "runtime_error" and r[7].error.startswith("SyntaxError")
    assert (r[8].status, r[8].stdout) == ("ok", "PIPE\n")
    assert all(x.variables is None for x in r)


def test_stdio_tests_pass_fail_and_stop_at_first_failure(pool):
    good = "a, b = map(int, input().split())\nprint(a + b)"
    fast_io = "import os, sys\nfor line in sys.stdin:\n    a, b = map(int, line.split())\n    os.write(1, f'{a + b}\\n'.encode())"
    wrong_second = "a, b = map(int, input().split())\nprint(a + b if a < 3 else 0)"
    # Moving away from the working directory or closing stdout must not break later tests.
    wanders = "import os, sys\na, b = map(int, input().split())\nprint(a + b)\nos.chdir('/')\nsys.stdout.close()"
    programs = [good, fast_io, wrong_second, wanders]
    verdicts = pool.check_batch([(p, STDIO) for p in programs])
    assert [v.passed for v in verdicts] == [True, True, False, True]
    bad = verdicts[2]
    assert bad.first_failure == 1 and bad.status == "ok"
    assert (bad.tests[1].expected, bad.tests[1].got) == ("7", "0\n")
    assert bad.tests[2].status in ("not_run", "ok")
    everything = pool.check_batch([(wrong_second, STDIO)], stop_at_first_failure=False)[0]
    assert [t.passed for t in everything.tests] == [True, False, False]
    assert [t.status for t in everything.tests] == ["ok", "ok", "ok"]


def test_stdio_float_tolerance_and_per_test_timeout(pool):
    spec = Spec("stdio", inputs=("1\n",), outputs=("0.333333\n",), float_tolerance=1e-4)
    assert pool.check_batch([("input()\nprint(round(1 / 3, 5))", spec)])[0].passed
    slow = "n = int(input().split()[0])\nif n == 3:\n    while True: pass\nprint(n + 2 if n == 1 else 10)"
    v = pool.check_batch([(slow, STDIO)], timeout_s=0.5)[0]
    assert [t.status for t in v.tests] == ["ok", "timeout", "not_run"]
    assert v.status == "timeout" and v.first_failure == 1


def test_call_tests_solution_class_and_faking(pool):
    programs = [
        "def add(a, b):\n    return a + b",
        "class Solution:\n    def add(self, a, b):\n        return a + b",
        # __eq__ always True: the value is encoded in the child, compared outside.
        "class Eq:\n    def __eq__(self, o): return True\ndef add(a, b):\n    return Eq()",
        # monkeypatched print and a fake success line on stdout and stderr.
        "import builtins, sys\nbuiltins.print = lambda *a, **k: None\nsys.stdout.write('PASSED 2/2\\n')\ndef add(a, b):\n    return 0",
        "import os\ndef add(a, b):\n    return a + b\nos._exit(0)",  # exits before tests
        "def add(a, b):\n    return float(a + b)",  # 3.0 == 3 numerically
        "def add(a, b):\n    return True",
    ]
    verdicts = pool.check_batch([(p, CALL) for p in programs])
    assert [v.passed for v in verdicts] == [True, True, False, False, False, True, False]
    assert verdicts[2].tests[0].got["__unrepresentable__"] == "Eq"
    assert verdicts[4].tests[0].error == "the program ended before this test finished"


def test_assert_tests_need_the_checker_marker(pool):
    forge_marker = (
        "import json, os, struct\n"
        "msg = json.dumps({'t': 'assert', 'passed': True}).encode()\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, struct.pack('>I', len(msg)) + msg)\n"
        "    except OSError:\n"
        "        pass\n"
        "def add(a, b):\n    return 0\n"
    )
    programs = [
        "def add(a, b):\n    return a + b",
        "def add(a, b):\n    return a - b",
        "class Eq:\n    def __eq__(self, o): return True\ndef add(a, b):\n    return Eq()",
        "def add(a, b):\n    return a + b\nimport os\nos._exit(0)",
        "def add(a, b):\n    return a + b\nimport sys\nsys.exit(0)",
        forge_marker,
        "import builtins\nbuiltins.AssertionError = None\ndef add(a, b):\n    return 0",
    ]
    verdicts = pool.check_batch([(p, ASSERT) for p in programs])
    assert [v.passed for v in verdicts] == [True, False, False, False, True, False, False]
    assert verdicts[1].tests[0].error == "AssertionError"
    assert "not plain data" in verdicts[2].tests[0].error
    # Racy by nature: the checker either sees the program gone or is killed with it.
    assert verdicts[3].tests[0].error in (
        "the checker did not confirm completion",
        "CandidateError: the program stopped before answering",
    )


@pytest.mark.needs_isolation("uid|pidns")  # else kill(-1) reaches far beyond the checker
def test_assert_tests_fail_when_the_program_kills_the_checker(pool):
    killer = "import os, signal\ndef add(a, b):\n    os.kill(-1, signal.SIGKILL)\n    return 0"
    assert not pool.check_batch([(killer, ASSERT)])[0].passed


LATE_THREAD = (
    "import threading, time\n"
    "def late():\n"
    "    time.sleep(0.2)\n"
    "    print('from the thread')\n"
    "threading.Thread(target=late).start()\n"
    "print('main done')\n"
)


def test_a_program_ends_when_its_interpreter_would(pool):
    """Non-daemon threads are waited for within the time limit, then atexit callbacks run."""
    never_ends = "import threading, time\nthreading.Thread(target=time.sleep, args=(1000,)).start()\nprint('main done')"
    daemon = never_ends.replace("args=(1000,))", "args=(1000,), daemon=True)")
    at_exit = "import atexit\natexit.register(print, 'bye')\natexit.register(lambda: 1 / 0)\nprint('main done')"
    exits_3 = LATE_THREAD.replace("print('main done')", "raise SystemExit(3)")
    jobs = [LATE_THREAD, never_ends, daemon, at_exit, exits_3]
    late, never, quick, bye, three = pool.run_batch([Job(code, timeout_s=1) for code in jobs])
    assert (late.status, late.stdout) == ("ok", "main done\nfrom the thread\n")
    assert 0.2 <= late.wall_s < 1
    # A real interpreter would not exit: a timeout, with what the main thread printed.
    assert (never.status, never.stdout) == ("timeout", "main done\n")
    assert 1 <= never.wall_s < 3
    assert (quick.status, quick.stdout) == ("ok", "main done\n") and quick.wall_s < 0.5
    # A callback that raises is printed and ignored, as by the interpreter.
    assert (bye.status, bye.exit_code, bye.stdout) == ("ok", 0, "main done\nbye\n")
    assert "Exception ignored in atexit callback" in bye.stderr
    assert "ZeroDivisionError" in bye.stderr
    # The exit status is the main thread's, given once the threads are done.
    assert (three.status, three.exit_code) == ("runtime_error", 3)
    assert three.stdout == "from the thread\n"


def test_threads_of_a_stdio_test_are_joined_before_its_output_is_read(pool):
    # The common competitive-programming idiom: main() in a thread with a bigger stack.
    thread_main = (
        "import sys, threading\n"
        "threading.stack_size(1 << 26)\n"
        "def main():\n"
        "    a, b = map(int, input().split())\n"
        "    print(a + b)\n"
        "threading.Thread(target=main).start()\n"
    )
    # An executor never shut down: its idle workers must not hold the test (nor the next one).
    executor = (
        "from concurrent.futures import ThreadPoolExecutor\n"
        "def add():\n"  # a function in the globals: a cycle keeps the executor alive
        "    a, b = map(int, input().split())\n"
        "    print(a + b)\n"
        "pool = ThreadPoolExecutor(2)\n"
        "pool.submit(add)\n"
    )
    stuck = (
        "import threading\nthreading.Thread(target=threading.Event().wait).start()\n" + thread_main
    )
    verdicts = pool.check_batch([(thread_main, STDIO), (executor, STDIO), (stuck, STDIO)], 0.5)
    assert [v.passed for v in verdicts] == [True, True, False]
    assert [t.got for t in verdicts[0].tests] == ["3\n", "7\n", "10\n"]
    assert [t.status for t in verdicts[2].tests] == ["timeout", "not_run", "not_run"]


def test_one_shot_functions_use_the_shared_pool():
    result = run_program("print(sum(range(10)))")
    assert (result.status, result.stdout) == ("ok", "45\n")
    traced = run_program("x = 2 ** 10", trace=True)
    assert traced.variables == {"x": 1024}
    verdict = check_solution("def add(a, b):\n    return a + b", CALL)
    assert isinstance(verdict, Verdict) and verdict.passed


def test_order_preserved_and_dead_worker_replaced(pool):
    jobs = [Job(f"print({i} * {i})") for i in range(40)]
    results = pool.run_batch(jobs)
    assert [r.stdout for r in results] == [f"{i * i}\n" for i in range(40)]
    victim = pool.worker_pids[0]
    os.kill(victim, signal.SIGKILL)
    # Jobs that take a while keep both workers busy, so the dead one is certainly used.
    results = pool.run_batch([Job("import time\ntime.sleep(0.2)") for _ in range(6)])
    statuses = [r.status for r in results]
    assert statuses.count("sandbox_error") == 1 and statuses.count("ok") == 5
    assert "worker 0" in next(r.error for r in results if r.status == "sandbox_error")
    assert victim not in pool.worker_pids
    assert [r.status for r in pool.run_batch([Job("print(2)")] * 4)] == ["ok"] * 4


def test_isolation_report_and_required_layers(pool, disabled_isolation):
    assert set(pool.isolation) == {"rlimits", "uid", "netns", "pidns", "landlock", "seccomp"}
    assert all(pool.isolation[layer] is None for layer in disabled_isolation)
    if os.geteuid() == 0 and "uid" not in disabled_isolation:
        assert pool.isolation["uid"] == "61000"
    with pytest.raises(ValueError, match="unknown isolation layer 'chroot'"):
        SandboxPool(num_workers=1, required_isolation=("chroot",))
    with pytest.raises(SandboxUnavailableError, match="seccomp"):
        SandboxPool(num_workers=1, required_isolation=("seccomp",), disabled_isolation=("seccomp",))
    with pytest.raises(ValueError, match="timeout_s"):
        Job("print(1)", timeout_s=0)
    with pytest.raises(ValueError, match="JSON list of args"):
        Job("def f(x): pass", call=("f", "not json"))
    with pytest.raises(ValueError, match="max_open_files"):
        Limits(max_open_files=0)


def test_pool_directories_of_killed_owners_are_removed():
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = os.path.join(tempfile.gettempdir(), f"coderl_sandbox_{dead.pid}_stale")
    os.makedirs(os.path.join(stale, "worker0_x", "job"))
    with SandboxPool(num_workers=1) as pool:
        live_dir = pool._base_dir
        assert not os.path.exists(stale)
        assert os.path.isdir(live_dir)
    assert not os.path.exists(live_dir)


def test_pool_made_on_a_short_lived_thread_keeps_its_workers(disabled_isolation):
    # A worker dies with the thread that started it (PR_SET_PDEATHSIG): the pool starts
    # them on a thread that lives as long as the process.
    made = {}
    thread = threading.Thread(
        target=lambda: made.setdefault(
            "pool", SandboxPool(num_workers=1, disabled_isolation=disabled_isolation)
        )
    )
    thread.start()
    thread.join()
    with made["pool"] as pool:
        time.sleep(0.2)
        assert pool._workers[0].process.poll() is None
        assert pool.run_batch([Job("print(1)")])[0].stdout == "1\n"
