"""A seccomp-BPF filter against process control and networking, installed with ctypes.

Installed in the sandbox child right before user code runs (after ``PR_SET_NO_NEW_PRIVS``,
so it needs no privilege). What it does to each system call:

* ``clone`` without ``CLONE_THREAD`` (``fork``/``vfork``/``posix_spawn``), ``fork``,
  ``vfork``, ``execve``, ``execveat``: fail with ``EPERM``. Threads still work: ``clone``
  with ``CLONE_THREAD`` is allowed, and ``clone3`` (whose flags live in memory a filter
  cannot read) fails with ``ENOSYS`` so the C library falls back to ``clone``.
* ``socket`` for any family but ``AF_UNIX``: ``EACCES``.
* ``ptrace``, ``process_vm_readv/writev``, namespace and mount calls, module loading,
  ``bpf``, ``perf_event_open``, ``userfaultfd``, ``io_uring_setup``, keyrings, ``reboot``,
  ``kexec_load``, ``setrlimit``/``prlimit64`` (the hard limits already stop raising them;
  this also stops lowering them for the harness): ``EPERM``.
* A call from another architecture (e.g. the x32 ABI on x86-64) kills the process.

Supported architectures: x86-64 and aarch64 (``supported()`` says whether this machine is
one of them).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import platform
import struct

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_X32_SYSCALL_BIT = 0x40000000

# Syscall numbers per architecture: name -> number (absent names do not exist there).
_SYSCALLS = {
    "x86_64": {
        "clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435,
        "socket": 41, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "setns": 308,
        "unshare": 272, "reboot": 169, "kexec_load": 246, "init_module": 175,
        "finit_module": 313, "delete_module": 176, "bpf": 321, "perf_event_open": 298,
        "userfaultfd": 323, "io_uring_setup": 425, "keyctl": 250, "add_key": 248,
        "request_key": 249, "setrlimit": 160, "prlimit64": 302,
    },
    "aarch64": {
        "clone": 220, "execve": 221, "execveat": 281, "clone3": 435,
        "socket": 198, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51, "setns": 268,
        "unshare": 97, "reboot": 142, "kexec_load": 104, "init_module": 105,
        "finit_module": 273, "delete_module": 106, "bpf": 280, "perf_event_open": 241,
        "userfaultfd": 282, "io_uring_setup": 425, "keyctl": 219, "add_key": 217,
        "request_key": 218, "setrlimit": 164, "prlimit64": 261,
    },
}  # fmt: skip
_DENIED_EPERM = (
    "fork", "vfork", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot", "setns", "unshare", "reboot", "kexec_load",
    "init_module", "finit_module", "delete_module", "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "keyctl", "add_key", "request_key", "setrlimit", "prlimit64",
)  # fmt: skip

_CLONE_THREAD = 0x00010000
_AF_UNIX = 1
# BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def supported() -> bool:
    return platform.machine() in _SYSCALLS


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jt, jf, k)


@functools.cache
def build_filter(machine: str | None = None) -> bytes:
    """The BPF program (``struct sock_filter[]`` bytes) for ``machine``."""
    machine = machine or platform.machine()
    if machine not in _SYSCALLS:
        raise ValueError(f"seccomp filter: unsupported architecture {machine!r}")
    nr = _SYSCALLS[machine]
    eperm, eacces, enosys = (_RET_ERRNO | e for e in (errno.EPERM, errno.EACCES, errno.ENOSYS))
    prog = [
        _insn(_LD_W_ABS, 0, 0, _OFFSET_ARCH),
        _insn(_JEQ_K, 1, 0, _AUDIT_ARCH[machine]),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, _OFFSET_NR),
    ]
    if machine == "x86_64":
        prog += [_insn(_JGE_K, 0, 1, _X32_SYSCALL_BIT), _insn(_RET_K, 0, 0, _RET_KILL_PROCESS)]
    # clone: allowed only when creating a thread.
    prog += [
        _insn(_JEQ_K, 0, 4, nr["clone"]),
        _insn(_LD_W_ABS, 0, 0, _OFFSET_ARG0),
        _insn(_JSET_K, 1, 0, _CLONE_THREAD),
        _insn(_RET_K, 0, 0, eperm),
        _insn(_RET_K, 0, 0, _RET_ALLOW),
    ]
    # socket: AF_UNIX only.
    prog += [
        _insn(_JEQ_K, 0, 4, nr["socket"]),
        _insn(_LD_W_ABS, 0, 0, _OFFSET_ARG0),
        _insn(_JEQ_K, 0, 1, _AF_UNIX),
        _insn(_RET_K, 0, 0, _RET_ALLOW),
        _insn(_RET_K, 0, 0, eacces),
    ]
    prog += [_insn(_JEQ_K, 0, 1, nr["clone3"]), _insn(_RET_K, 0, 0, enosys)]
    for name in _DENIED_EPERM:
        if name in nr:
            prog += [_insn(_JEQ_K, 0, 1, nr[name]), _insn(_RET_K, 0, 0, eperm)]
    prog.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    return b"".join(prog)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_prepared: tuple | None = None  # (prctl, filter buffer, sock_fprog, prctl argument tuples)


def _program_args() -> tuple:
    libc = _libc()
    program = build_filter()
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    prctl = libc.prctl
    nnp = tuple(ctypes.c_ulong(a) for a in (_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
    mode = _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0
    return prctl, buffer, fprog, (nnp, tuple(ctypes.c_ulong(a) for a in mode))


def prepare() -> None:
    """Builds the filter, its ``sock_fprog`` and the prctl arguments ahead of time.

    Call in the worker before forking: the children then only make the two ``prctl``
    calls, instead of each rebuilding the ctypes objects in copied-on-write memory.
    """
    global _prepared
    _prepared = _program_args()


def install() -> None:
    """Sets no_new_privs and installs the filter on the calling thread. Raises OSError."""
    prctl, _buffer, _fprog, calls = _prepared or _program_args()  # buffer kept alive here
    for args in calls:
        if prctl(*args) != 0:
            err = ctypes.get_errno()
            what = (args[0].value, args[1].value)
            raise OSError(err, f"seccomp: prctl{what} failed: {errno.errorcode.get(err)}")
