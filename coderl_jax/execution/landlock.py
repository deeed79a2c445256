"""Landlock (Linux >= 5.13) through ctypes: confine file access, TCP and signals.

``restrict(read_only_fds, writable_fd)`` makes the calling process (and what it later
forks) unable to

* write, create, delete, rename, truncate anything outside the directory ``writable_fd``
  (the job's working directory);
* read or execute anything outside the ``read_only_fds`` directories (the interpreter's
  standard library and site-packages, ``/usr``, ``/lib``...) and the working directory;
* bind or connect TCP sockets (ABI >= 4), on top of the network namespace and seccomp;
* send signals to, or connect to abstract UNIX sockets of, processes outside its Landlock
  domain (ABI >= 6), so it cannot kill the worker even if it could see it.

Access rights unknown to the running kernel's ABI are left out, so older kernels get the
subset they support. The fds are ``O_PATH`` descriptors opened once by the worker (as root,
before the uid drop). A ruleset is built per job, since rules attach to a ruleset for its
whole life and each job has a fresh directory: ``create_ruleset`` runs in the worker
before the fork (so the child touches none of this Python code and memory), and the child
only calls ``restrict_self`` on the inherited ruleset fd, then closes it. ``restrict``
does both in the calling process.
"""

from __future__ import annotations

import ctypes
import os
import stat

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1, 2
_READ_ONLY = _EXECUTE | _READ_FILE | _READ_DIR

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    version = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    handled = _FS_ABI1
    if abi >= 2:
        handled |= _REFER
    if abi >= 3:
        handled |= _TRUNCATE
    if abi >= 5:
        handled |= _IOCTL_DEV
    return handled


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock: {what} failed: {os.strerror(err)}")
    return result


def _ruleset_attr(abi: int) -> tuple[_RulesetAttr, int]:
    attr = _RulesetAttr(_handled_fs(abi), 0, 0)
    size = 8
    if abi >= 4:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL
        size = 24
    return attr, size


def create_ruleset(read_only_fds: list[int], writable_fd: int, abi: int | None = None) -> int:
    """A ruleset fd (close-on-exec) holding the rules of the module docstring.

    Needs no privilege and confines nothing by itself: ``restrict_self(fd)`` enforces it on
    the calling process. Raises OSError when Landlock is unavailable or a rule is refused.
    """
    abi = abi_version() if abi is None else abi
    if abi < 1:
        raise OSError("landlock: not supported by this kernel")
    handled_fs = _handled_fs(abi)
    attr, size = _ruleset_attr(abi)
    ruleset = _check(
        _libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0),
        "create_ruleset",
    )
    try:
        rules = [(fd, _READ_ONLY) for fd in read_only_fds] + [(writable_fd, handled_fs)]
        for fd, access in rules:
            is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            # A rule on a file may only carry file rights.
            allowed = access if is_dir else access & (_EXECUTE | _WRITE_FILE | _READ_FILE)
            rule = _PathBeneathAttr(allowed & handled_fs, fd)
            result = _libc.syscall(
                _SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0
            )
            _check(result, f"add_rule(fd {fd})")
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def restrict_self(ruleset_fd: int) -> None:
    """Enforces the ruleset on the calling process. Needs no_new_privs or root."""
    _check(_libc.syscall(_SYS_RESTRICT_SELF, ruleset_fd, 0), "restrict_self")


def restrict(read_only_fds: list[int], writable_fd: int, abi: int | None = None) -> None:
    """Confines the calling process (see module docstring). Needs no_new_privs or root."""
    ruleset = create_ruleset(read_only_fds, writable_fd, abi)
    try:
        restrict_self(ruleset)
    finally:
        os.close(ruleset)
