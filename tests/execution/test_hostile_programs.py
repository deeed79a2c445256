"""Hostile programs: each ends with the right status, the pool survives, canaries intact.

Every dangerous program bounds itself (at most 256 processes, 3 GB, 64 MB of disk, 100 MB
of output) so that a broken sandbox cannot take the machine down with it. Each program and
test names the isolation layers it relies on (``needs_isolation``, see ``conftest.py``):
without them it skips and its program is not run; the rest runs whichever layers are off.
"""

import os
import shutil
import socket
import tempfile
import time

import pytest

from coderl_jax.execution import Job, Limits, SandboxPool
from coderl_jax.execution import TestSpec as Spec

CANARY_TEXT = "canary: must stay unchanged\n"
SECRET_TEXT = "secret-4f1c9e"

WRITE_OUTSIDE = """
import os, shutil
blocked = 0
attempts = [
    lambda: open(CANARY + "/new.txt", "w").write("x"),
    lambda: open(CANARY + "/canary.txt", "a").write("x"),
    lambda: open(CANARY + "/canary.txt", "w"),
    lambda: os.remove(CANARY + "/canary.txt"),
    lambda: os.rename(CANARY + "/canary.txt", CANARY + "/moved.txt"),
    lambda: os.mkdir(CANARY + "/dir"),
    lambda: shutil.rmtree(CANARY),
    lambda: open("/tmp/escaped.txt", "w").write("x"),
]
for attempt in attempts:
    try:
        attempt()
    except OSError:
        blocked += 1
with open("inside.txt", "w") as f:  # the working directory is writable
    f.write("fine")
print(blocked, open("inside.txt").read())
"""

READ_OUTSIDE = """
found = []
for path in (SECRET, "/etc/passwd", "/proc/1/environ"):
    try:
        found.append(open(path).read()[:100])
    except OSError as e:
        found.append(type(e).__name__)
print(found)
"""

NETWORK = """
import socket
outcomes = []
for family, address in ((socket.AF_INET, ("127.0.0.1", PORT)), (socket.AF_INET6, ("::1", PORT))):
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(1)
        s.connect(address)
        outcomes.append("connected")
    except OSError as e:
        outcomes.append(type(e).__name__)
print(outcomes)
"""

KILL_PARENT = """
import os, signal
outcomes = []
for pid in PIDS + [os.getppid()]:
    if pid == 0:  # getppid() in a PID namespace: the parent is invisible
        continue
    try:
        os.kill(pid, signal.SIGKILL)
        outcomes.append("sent")
    except OSError as e:
        outcomes.append(type(e).__name__)
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
print(outcomes)
"""

RAISE_RLIMITS = """
import resource
out = []
for which in (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC, resource.RLIMIT_NOFILE):
    try:
        resource.setrlimit(which, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        out.append("raised")
    except (ValueError, OSError):
        out.append("denied")
print(" ".join(out))
"""

DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(60)
    os._exit(0)
print("parent done")
"""

FORK_BOMB_BOUNDED = """
import os, time
for _ in range(8):  # at most 2**8 processes even with no limit at all
    try:
        os.fork()
    except OSError:
        pass
time.sleep(30)
"""

# A program must not be able to pass its failure off as the sandbox's.
FORGE_SANDBOX_ERROR = """
import json, os, struct
msg = json.dumps({"t": "sandbox_error", "error": "not me"}).encode()
for fd in range(3, 64):
    try:
        os.write(fd, struct.pack(">I", len(msg)) + msg)
    except OSError:
        pass
raise SystemExit(1)
"""

# name -> (code, timeout_s, expected status, isolation layers the expectation relies on).
# Kills at the time limit, output caps and harness checks are the supervisor's, not layers.
# "uid|seccomp" for rlimits: a root child could raise its hard limits without one of them.
HOSTILE = {
    "infinite_loop": ("while True:\n    pass", 0.5, "timeout", ()),
    "ignores_sigterm": (
        "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass",
        0.5,
        "timeout",
        (),
    ),
    "sleeps_forever": ("import time\ntime.sleep(1000)", 0.5, "timeout", ()),
    "memory_bomb": ("chunks = []\nfor _ in range(30):\n    chunks.append(bytearray(100 << 20))", 5, "memory_limit", ("rlimits",)),
    "fork_bomb": (FORK_BOMB_BOUNDED, 1, "timeout", ()),
    "subprocess": ("import subprocess\nsubprocess.run(['sh', '-c', 'echo hi'])", 5, "runtime_error", ("seccomp",)),
    "disk_fill": ("with open('fill', 'wb') as f:\n    for _ in range(64):\n        f.write(b'x' * (1 << 20))", 5, "output_limit", ("rlimits",)),
    "stdout_100mb": ("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)", 5, "output_limit", ()),
    "deep_recursion": ("def f(n):\n    return f(n + 1)\nf(0)", 5, "runtime_error", ()),
    "ctypes_segfault": ("import ctypes\nctypes.string_at(0)", 5, "killed_by_signal", ()),
    "closes_all_fds": ("import os\nfor fd in range(256):\n    try:\n        os.close(fd)\n    except OSError:\n        pass", 5, "ok", ()),
    "exhausts_fds": ("files = []\nwhile True:\n    files.append(open('/dev/null'))", 5, "runtime_error", ("rlimits",)),
    "non_utf8_output": ("import sys\nsys.stdout.buffer.write(b'ok\\xff\\xfe\\n')\nsys.stderr.buffer.write(b'\\xc3\\x28')", 5, "ok", ()),
    # A real interpreter waits for a non-daemon thread: this one never lets it exit.
    "threads_never_finish": ("import threading, time\nthreading.Thread(target=time.sleep, args=(1000,)).start()\nprint('main done')", 0.5, "timeout", ()),
    "raise_rlimits": (RAISE_RLIMITS, 5, "ok", ("rlimits", "uid|seccomp")),
    "forges_sandbox_error": (FORGE_SANDBOX_ERROR, 5, "runtime_error", ()),
    "exit_256": ("import sys\nsys.exit(256)", 5, "runtime_error", ()),
    "hostile_exception_str": ("class E(Exception):\n    def __str__(self):\n        raise E()\nraise E()", 5, "runtime_error", ()),
}  # fmt: skip
# Escapes, judged by their own tests: name -> the layers that stop them (without those the
# program would really escape, so it is not run at all).
ESCAPES = {
    "write_outside": ("landlock",),  # world-writable canaries: no uid or permission guards them
    "read_outside": ("landlock",),  # a world-readable secret
    "network": ("netns|seccomp",),  # Landlock also refuses TCP, from ABI 4 on
    "kill_parent": ("uid|pidns",),  # signals to the worker: other uid, or invisible
}


def needs_isolation(*needs):
    return [pytest.mark.needs_isolation(*needs)] if needs else []


@pytest.fixture(scope="module")
def canaries():
    """A world-writable canary dir and a world-readable secret: only the sandbox guards them."""
    root = tempfile.mkdtemp(prefix="canary_", dir="/tmp")
    os.chmod(root, 0o777)
    path = os.path.join(root, "canary.txt")
    with open(path, "w") as f:
        f.write(CANARY_TEXT)
    os.chmod(path, 0o666)
    secret = os.path.join(root, "secret.txt")
    with open(secret, "w") as f:
        f.write(SECRET_TEXT)
    os.chmod(secret, 0o644)
    yield root
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def listener():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile_results(pool, canaries, listener, missing_isolation):
    """Every program whose layers are on, in one batch; pool worker pids before the batch."""
    workers_before = list(pool.worker_pids)
    jobs = {name: Job(code, timeout_s=t) for name, (code, t, _, _) in HOSTILE.items()}
    prelude = f"CANARY = {canaries!r}\nSECRET = {os.path.join(canaries, 'secret.txt')!r}\n"
    jobs["write_outside"] = Job(prelude + WRITE_OUTSIDE)
    jobs["read_outside"] = Job(prelude + READ_OUTSIDE)
    jobs["network"] = Job(f"PORT = {listener.getsockname()[1]}\n" + NETWORK)
    jobs["kill_parent"] = Job(f"PIDS = {[os.getpid(), *workers_before]!r}\n" + KILL_PARENT)
    needs = {**{name: entry[3] for name, entry in HOSTILE.items()}, **ESCAPES}
    jobs = {name: job for name, job in jobs.items() if not missing_isolation(*needs[name])}
    results = dict(zip(jobs, pool.run_batch(list(jobs.values()))))
    return results, workers_before


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=needs_isolation(*HOSTILE[n][3])) for n in sorted(HOSTILE)]
)
def test_hostile_program_status(hostile_results, name):
    result = hostile_results[0][name]
    assert result.status == HOSTILE[name][2], (name, result)


def test_hostile_details(hostile_results, pool):
    r, _ = hostile_results
    assert r["infinite_loop"].wall_s < 3 and r["sleeps_forever"].wall_s < 3
    assert len(r["stdout_100mb"].stdout) == pool.limits.max_output_bytes
    assert r["deep_recursion"].error.startswith("RecursionError")
    assert r["ctypes_segfault"].exit_code == -11
    assert r["non_utf8_output"].stdout == "ok\ufffd\ufffd\n"
    assert r["non_utf8_output"].stderr == "\ufffd("
    assert r["threads_never_finish"].stdout == "main done\n"
    assert r["threads_never_finish"].wall_s < 3


@pytest.mark.needs_isolation("rlimits")
def test_file_descriptors_are_limited(hostile_results):
    assert "Too many open files" in hostile_results[0]["exhausts_fds"].error


@pytest.mark.needs_isolation(*HOSTILE["raise_rlimits"][3])
def test_rlimits_cannot_be_raised(hostile_results):
    assert hostile_results[0]["raise_rlimits"].stdout == "denied denied denied denied\n"


@pytest.mark.needs_isolation("seccomp")
def test_subprocesses_are_refused(hostile_results):
    assert "PermissionError" in hostile_results[0]["subprocess"].error


@pytest.mark.needs_isolation(*ESCAPES["write_outside"])
def test_filesystem_is_confined(hostile_results, canaries):
    r, _ = hostile_results
    assert (r["write_outside"].status, r["write_outside"].stdout) == ("ok", "8 fine\n")
    assert sorted(os.listdir(canaries)) == ["canary.txt", "secret.txt"]
    with open(os.path.join(canaries, "canary.txt")) as f:
        assert f.read() == CANARY_TEXT
    assert not os.path.exists("/tmp/escaped.txt")
    assert r["read_outside"].status == "ok"
    assert SECRET_TEXT not in r["read_outside"].stdout
    assert r["read_outside"].stdout == "['PermissionError', 'PermissionError', 'PermissionError']\n"


@pytest.mark.needs_isolation(*ESCAPES["network"])
def test_network_is_unreachable(hostile_results, listener):
    r, _ = hostile_results
    assert r["network"].status == "ok"
    assert "connected" not in r["network"].stdout
    listener.settimeout(0.2)
    with pytest.raises(TimeoutError):
        listener.accept()


@pytest.mark.needs_isolation(*ESCAPES["kill_parent"])
def test_parent_and_workers_survive(hostile_results, pool):
    r, workers_before = hostile_results
    assert r["kill_parent"].status in ("ok", "killed_by_signal")
    assert "sent" not in r["kill_parent"].stdout
    assert pool.worker_pids == workers_before  # no worker died or was replaced
    assert pool.run_batch([Job("print('alive')")])[0].stdout == "alive\n"


def test_stdio_output_faking_and_oversized_output_in_tests(pool):
    spec = Spec("stdio", inputs=("2\n",), outputs=("4\n",))
    forge = (
        "import json, os, struct, sys\n"
        "msg = json.dumps({'t': 'test', 'i': 0, 'status': 'ok', 'stdout': '4'}).encode()\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, struct.pack('>I', len(msg)) + msg)\n"
        "    except OSError:\n"
        "        pass\n"
        "print('4', file=sys.stderr)\n"
        "print(5)\n"
    )
    flood = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)"
    forged, flooded = pool.check_batch([(forge, spec), (flood, spec)])
    assert not forged.passed
    assert not flooded.passed and flooded.tests[0].status == "output_limit"


@pytest.mark.needs_isolation("uid")  # the per-uid process check
@pytest.mark.parametrize(
    "disabled,uid_base", [(("seccomp",), 62000), (("seccomp", "pidns"), 63000)]
)
def test_daemons_and_fork_bombs_are_reaped(disabled, uid_base, uid_processes, disabled_isolation):
    limits = Limits(memory_bytes=512 << 20, uid_base=uid_base, max_processes=32)
    disabled = (*disabled, *disabled_isolation)
    with SandboxPool(num_workers=1, limits=limits, disabled_isolation=disabled) as pool:
        daemon, bomb = pool.run_batch([Job(DAEMON), Job(FORK_BOMB_BOUNDED, timeout_s=1)])
        assert (daemon.status, daemon.stdout) == ("ok", "parent done\n")
        assert bomb.status == "timeout"
        deadline = time.monotonic() + 2
        while uid_processes(uid_base, uid_base + 1) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uid_processes(uid_base, uid_base + 1) == []
