"""Hard-kill points for fault tests: ``CODERL_KILL_AT`` makes a run SIGKILL itself.

``CODERL_KILL_AT=rollouts@1`` (several: comma-separated) kills the process, with no
clean-up of any kind, when it reaches that point of that step. Unset (every normal run)
each hook is one dictionary lookup. The points, all in `coderl_jax.loop`:

- ``rollouts@s``: in step ``s``'s rollouts, as soon as the sampler has returned its first
  samples (the rollout sampler is wrapped by `instrument_sampler`);
- ``update@s``: step ``s`` has returned with its update dispatched asynchronously (it may
  still run on the device) and its metrics written, before anything else is saved;
- ``checkpoint@s``: right after `Checkpointer.save` of step ``s`` returned, while orbax
  still writes it in the background.

tests/test_run_process.py kills a real ``experiments/run.py`` at each and checks the restarted
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


def instrument_sampler(sampler: Any) -> Any:
    """``sampler``, or when a ``rollouts`` point is set, a proxy whose sampling methods
    pass the ``rollouts`` point of the current step once they have returned."""
    if not any(point.startswith("rollouts@") for point in _points()):
        return sampler
    return _KillingSampler(sampler)


class _KillingSampler:
    def __init__(self, sampler: Any):
        self._sampler = sampler

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._sampler, name)
        if not (name.startswith("sample") and callable(attribute)):
            return attribute

        def sample(*args, **kwargs):
            out = attribute(*args, **kwargs)
            if _current_step is not None:
                kill_point("rollouts", _current_step)
            return out

        return sample
