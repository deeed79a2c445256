"""Preemption: :class:`PreemptionGuard` turns SIGTERM into a flag the training loop polls
once per step (``guard.should_stop(step)``), so the run saves a checkpoint and exits at a
step boundary; on multi-host runs it uses JAX's preemption sync point instead, so every
host agrees on the step at which to save and exit.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

import jax
from jax.experimental import multihost_utils


class PreemptionGuard:
    """Turns a preemption notice (SIGTERM) into "save now and exit" at a step boundary.

    Single process: installs a SIGTERM handler that only sets a flag, so the signal never
    interrupts a half-finished step. Multi-process (``jax.process_count() > 1``): leaves
    SIGTERM to JAX's preemption service (started by ``jax.distributed.initialize``) and
    asks its sync point, so all hosts stop at the same step; every host must then call
    :meth:`should_stop` at every step.

    Use as a context manager (restores the previous handler on exit) or call
    :meth:`install` / :meth:`uninstall`.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
        self._signals = signals
        self._flag = threading.Event()
        self._previous: dict[int, Any] = {}
        self.received_signal: int | None = None

    def install(self) -> PreemptionGuard:
        """Installs the signal handlers (single process only; call from the main thread)."""
        if jax.process_count() == 1:
            for sig in self._signals:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def uninstall(self) -> None:
        """Puts back the handlers that were installed before :meth:`install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> PreemptionGuard:
        return self.install()

    def __exit__(self, *exc_info) -> None:
        self.uninstall()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.received_signal = signum
        self._flag.set()

    def request_stop(self) -> None:
        """Sets the flag by hand (tests, or a loop that wants to stop early). On multi-host
        runs every host must call it at the same step, or the hosts will disagree."""
        self._flag.set()

    def should_stop(self, step: int) -> bool:
        """True once the run should save a checkpoint of ``step`` and exit."""
        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step) or self._flag.is_set()
        return self._flag.is_set()
