"""Isolation layers of the sandbox: detection in the worker, application in each child.

Layers (names usable in ``required_isolation`` / ``disabled_isolation``):

* ``rlimits``: address space, CPU seconds, file size, open files, no core dumps, and
  (with ``uid``) processes. Hard limit = soft limit, so an unprivileged child cannot raise
  them. Always available.
* ``uid``: when the pool runs as root, each worker's children drop to their own uid
  (``uid_base + worker index``), so ``RLIMIT_NPROC`` (ignored for root) applies per worker
  and root-owned files are out of reach.
* ``netns``: the worker enters a private network namespace at start-up (as root, or inside
  a new user namespace otherwise), so children see no interface but a down loopback.
* ``pidns``: every job's program runs as PID 1 of its own PID namespace; when it ends or is
  killed the kernel kills every process left in the namespace, including daemons that
  double-forked and called ``setsid``. This is the kill mechanism; without it the
  supervisor kills the process group and, with ``uid``, sweeps the worker's uid
  (``kill(-1, SIGKILL)`` from a helper that has taken that uid).
* ``landlock``: writes confined to the job's directory, reads to the interpreter's
  directories and system library paths, no TCP, no signals out of the sandbox.
* ``seccomp``: no fork/exec, no non-UNIX sockets, no ptrace/namespace/mount syscalls.

Interpreter: workers are started by ``pick_interpreter``: ``sys.executable`` when the
sandbox uid can read its standard library (or no uid drop happens); otherwise the first of
``/usr/bin/python3``, ``/usr/local/bin/python3`` (Python >= 3.10) whose standard library
is world-readable. Children are forks of that worker, so only modules imported after the
fork must be readable; common standard-library modules are imported ahead of time.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

from . import landlock, seccomp

LAYERS = ("rlimits", "uid", "netns", "pidns", "landlock", "seccomp")
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x20000, 0x10000000, 0x20000000, 0x40000000
_PR_SET_NO_NEW_PRIVS = 38
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl  # looked up once here, not by dlsym in every child
_SYSTEM_READ_ONLY = (
    "/usr",
    "/lib",
    "/lib64",
    "/bin",
    "/etc/localtime",
    "/dev/null",
    "/dev/urandom",
)
_INTERPRETER_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3")


class SandboxUnavailableError(RuntimeError):
    """A required isolation layer is missing on this machine."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """Resource limits of each sandboxed program."""

    memory_bytes: int = 1 << 30  # RLIMIT_AS of the child
    max_output_bytes: int = 1 << 20  # per stream (stdout, stderr) and per test's stdout
    max_file_bytes: int = 16 << 20  # RLIMIT_FSIZE: largest file a program may write
    max_open_files: int = 64  # RLIMIT_NOFILE
    max_processes: int = 64  # RLIMIT_NPROC for the worker's uid (threads count); uid only
    uid_base: int = 61000  # worker i's children run as uid_base + i (root only)
    kill_grace_s: float = 2.0  # extra wall time before the worker gives up on a supervisor

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if getattr(self, field.name) <= 0:
                raise ValueError(
                    f"Limits.{field.name} must be > 0, got {getattr(self, field.name)}"
                )

    def to_json(self) -> dict:
        # Flat fields: no need for dataclasses.asdict's recursive deep copy (once per job).
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare({flags:#x}): {os.strerror(err)}")


def setns(fd: int, flags: int) -> None:
    if _libc.setns(ctypes.c_int(fd), ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns({flags:#x}): {os.strerror(err)}")


def _new_pid_namespace_twice(own_pidns_fd: int) -> None:
    for _ in range(2):
        unshare(CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        setns(own_pidns_fd, CLONE_NEWPID)
        os.waitpid(pid, 0)


def _enter_network_namespace() -> str:
    if os.geteuid() == 0:
        unshare(CLONE_NEWNET)
        return "on"
    uid, gid = os.geteuid(), os.getegid()
    unshare(CLONE_NEWUSER | CLONE_NEWNET)
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{gid} {gid} 1")
    return "on(userns)"


def _works_in_child(fn) -> bool:
    pid = os.fork()
    if pid == 0:
        try:
            fn()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def _read_only_paths() -> list[str]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p))
    paths.update(_SYSTEM_READ_ONLY)
    return sorted(p for p in paths if os.path.exists(p))


@dataclasses.dataclass
class WorkerIsolation:
    """What the worker set up; ``report`` maps each layer to its state (None: off)."""

    report: dict[str, str | None]
    uid: int | None
    landlock_abi: int
    read_only_fds: list[int]
    # The worker's own PID namespace, to return to after each job's namespace (pidns only;
    # None where setns is not permitted, e.g. inside an unprivileged user namespace).
    own_pidns_fd: int | None = None

    def on(self, layer: str) -> bool:
        return self.report.get(layer) is not None


def setup_worker(worker_index: int, limits: Limits, disabled: tuple[str, ...]) -> WorkerIsolation:
    """Detects and enters the worker-wide layers (call once, first thing in the worker)."""
    report: dict[str, str | None] = dict.fromkeys(LAYERS)
    report["rlimits"] = "on"
    uid = None
    if os.geteuid() == 0 and "uid" not in disabled:
        uid = limits.uid_base + worker_index
        report["uid"] = str(uid)
    if "netns" not in disabled:
        try:
            report["netns"] = _enter_network_namespace()
        except OSError:
            pass
    own_pidns_fd = None
    if "pidns" not in disabled and _works_in_child(lambda: unshare(CLONE_NEWPID)):
        report["pidns"] = "on"
        own_pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        if not _works_in_child(lambda: _new_pid_namespace_twice(own_pidns_fd)):
            os.close(own_pidns_fd)
            own_pidns_fd = None
            report["pidns"] = "on(supervisor fork per job)"
    abi, fds = 0, []
    if "landlock" not in disabled:
        abi = landlock.abi_version()
        if abi >= 1:
            fds = [os.open(p, os.O_PATH | os.O_CLOEXEC) for p in _read_only_paths()]
            report["landlock"] = f"abi{abi}"
    if "seccomp" not in disabled and seccomp.supported() and _works_in_child(seccomp.install):
        seccomp.prepare()
        report["seccomp"] = "on"
    return WorkerIsolation(report, uid, abi, fds, own_pidns_fd)


def confine_child(
    iso: WorkerIsolation,
    limits: Limits,
    workdir: str,
    cpu_seconds: int,
    landlock_ruleset_fd: int | None = None,
) -> None:
    """Applies rlimits, uid drop, Landlock and seccomp to the calling (child) process.

    ``landlock_ruleset_fd``: the job's ruleset, built by the worker before the fork
    (``job_landlock_ruleset``); it is enforced and closed here. Without it the ruleset is
    built here, which costs the child the same syscalls plus copy-on-write page faults.
    """
    os.chdir(workdir)
    for which, value in (
        (resource.RLIMIT_AS, limits.memory_bytes),
        (resource.RLIMIT_CPU, cpu_seconds),
        (resource.RLIMIT_FSIZE, limits.max_file_bytes),
        (resource.RLIMIT_NOFILE, limits.max_open_files),
        (resource.RLIMIT_CORE, 0),
    ):
        resource.setrlimit(which, (value, value))
    if iso.uid is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
        os.setgroups([])
        os.setresgid(iso.uid, iso.uid, iso.uid)
        os.setresuid(iso.uid, iso.uid, iso.uid)
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if iso.on("landlock"):
        if landlock_ruleset_fd is None:
            landlock_ruleset_fd = job_landlock_ruleset(iso, workdir)
        try:
            landlock.restrict_self(landlock_ruleset_fd)
        finally:
            os.close(landlock_ruleset_fd)
    if iso.on("seccomp"):
        seccomp.install()


def job_landlock_ruleset(iso: WorkerIsolation, workdir: str) -> int:
    """The Landlock ruleset of one job (read-only paths + ``workdir``), as a new fd."""
    workdir_fd = os.open(workdir, os.O_PATH | os.O_CLOEXEC)
    try:
        return landlock.create_ruleset(iso.read_only_fds, workdir_fd, iso.landlock_abi)
    finally:
        os.close(workdir_fd)


def traversable_by_others(directory: str) -> bool:
    """Whether every ancestor of ``directory`` lets other users pass (``o+x``)."""
    path = os.path.abspath(directory)
    while path != "/":
        path = os.path.dirname(path)
        if not os.stat(path).st_mode & 0o001:
            return False
    return True


def _world_readable(directory: str) -> bool:
    path = os.path.abspath(directory)
    return os.stat(path).st_mode & 0o005 == 0o005 and traversable_by_others(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _remove_stale_base_dirs(parent: str) -> None:
    """Removes pool directories whose owning process died without closing its pool."""
    for name in os.listdir(parent):
        match = re.fullmatch(r"coderl_sandbox_(\d+)_\w+", name)
        path = os.path.join(parent, name)
        try:
            if match and os.stat(path).st_uid == os.geteuid() and not _pid_alive(int(match[1])):
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def make_base_dir(will_drop_uid: bool) -> str:
    """The pool's temporary directory, somewhere the sandbox uid can reach its job dirs.

    Named after the owning pid, so that a later pool removes it if its owner was killed.
    """
    prefix = f"coderl_sandbox_{os.getpid()}_"
    base = tempfile.mkdtemp(prefix=prefix)
    if will_drop_uid and not traversable_by_others(base):
        os.rmdir(base)
        base = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(base, 0o711)
    _remove_stale_base_dirs(os.path.dirname(base))
    return base


def _stdlib_of(python: str) -> tuple[str, tuple[int, int]] | None:
    probe = "import os, sys; print(os.path.dirname(os.__file__)); print(*sys.version_info[:2])"
    try:
        out = subprocess.run(
            [python, "-I", "-c", probe], capture_output=True, text=True, timeout=30, check=True
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = map(int, out[1].split())
    return out[0], (major, minor)


def pick_interpreter(will_drop_uid: bool) -> tuple[str, str]:
    """(python executable for the workers, why it was chosen); see the module docstring."""
    own_stdlib = os.path.dirname(os.__file__)
    if not will_drop_uid or _world_readable(own_stdlib):
        return sys.executable, "current interpreter"
    for candidate in _INTERPRETER_CANDIDATES:
        found = _stdlib_of(candidate) if os.path.exists(candidate) else None
        if found and found[1] >= (3, 10) and _world_readable(found[0]):
            return candidate, f"{own_stdlib} is not readable by the sandbox uid"
    return sys.executable, "no interpreter readable by the sandbox uid; lazy imports may fail"
