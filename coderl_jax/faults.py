"""Hard-kill points for fault tests: ``CODERL_KILL_AT`` makes a run SIGKILL itself.

``CODERL_KILL_AT=rollouts@1`` (several: comma-separated) kills the process, with no
clean-up of any kind, when it reaches that point of that step. Unset (every normal run)
each hook is one dictionary lookup. The points, all in `coderl_jax.loop`:

- ``rollouts@s``: step ``s``'s first sandbox batch, while its rollouts are generated and
  executed (the pool given to the RL step is wrapped by `instrument_pool`);
- ``update@s``: step ``s`` has returned with its update dispatched asynchronously (it may
  still run on the device) and its metrics written, before anything else is saved;
- ``checkpoint@s``: the asynchronous write of checkpoint ``s`` has started, not finished.

tests/test_faults.py kills a real ``experiments/run.py`` at each and checks the restarted
run ends exactly where an uninterrupted one does.
"""

from __future__ import annotations

import os
import signal
from typing import Any

ENV = "CODERL_KILL_AT"
_current_step: int | None = None


def _points() -> set[str]:
    return {p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()}


def kill_point(name: str, step: int) -> None:
    """SIGKILLs this process if ``CODERL_KILL_AT`` names ``name@step``."""
    if ENV in os.environ and f"{name}@{step}" in _points():
        os.kill(os.getpid(), signal.SIGKILL)


def begin_step(step: int) -> None:
    """Tells the hooks which step runs now (for the ``rollouts`` point)."""
    global _current_step
    _current_step = step


def instrument_pool(pool: Any) -> Any:
    """``pool``, or when a ``rollouts`` point is set, a proxy whose ``check_batch`` (called
    while rollouts run) first passes the ``rollouts`` point of the current step."""
    if not any(point.startswith("rollouts@") for point in _points()):
        return pool
    return _KillingPool(pool)


class _KillingPool:
    def __init__(self, pool: Any):
        self._pool = pool

    def check_batch(self, *args, **kwargs):
        if _current_step is not None:
            kill_point("rollouts", _current_step)
        return self._pool.check_batch(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)
