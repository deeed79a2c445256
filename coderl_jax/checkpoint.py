"""Training checkpoints: an orbax ``CheckpointManager`` wrapper and a preemption guard.

A checkpoint for step ``s`` is the directory ``<workdir>/checkpoints/<s>/`` holding three
orbax items:

- ``state/``: a pytree of (possibly sharded, multi-host) jax arrays -- params, optimizer
  state, step, RNG key. Typed PRNG keys (``jax.random.key``) are supported by orbax itself,
  so any pytree that ``jax.eval_shape`` can describe round-trips.
- ``extras/``: one JSON object (iterator state, config dict, metric bookkeeping, ...).
- ``alignment_buffer/alignment_buffer.jsonl`` (optional; process ``i > 0`` writes
  ``alignment_buffer.process_<i>.jsonl``): a file written by a caller-supplied callable,
  e.g. ``AlignmentBuffer.save_jsonl``. It is written synchronously inside
  :meth:`Checkpointer.save` (the buffer keeps changing while the async array write runs)
  and each process writes its own file, so per-host buffers survive multi-host runs.

Atomicity: orbax writes a step into a temporary directory and renames it only once every
item (on every host) is complete, and this wrapper starts orbax with
``cleanup_tmp_directories=True``, so a save interrupted by a crash or ``kill -9`` is never
listed as a step and is deleted on the next start. A step that *was* finalised but later
damaged (a deleted file, a truncated JSON) is detected at restore time: an explicit
``restore(step=s)`` raises :class:`CheckpointError` naming the directory, while restoring
the latest step logs a warning and falls back to the newest older step that restores.

Preemption: :class:`PreemptionGuard` turns SIGTERM into a flag the training loop polls
once per step (``guard.should_stop(step)``); on multi-host runs it uses JAX's preemption
sync point instead, so every host agrees on the step at which to save and exit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

logger = logging.getLogger(__name__)

_STATE, _EXTRAS, _BUFFER = "state", "extras", "alignment_buffer"


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or unreadable."""


@dataclasses.dataclass(frozen=True)
class Restored:
    """What :meth:`Checkpointer.restore` returns.

    Attributes:
      step: the restored step number.
      state: the state pytree, laid out with the target shardings.
      extras: the JSON object saved with the step.
      buffer_path: this process's alignment-buffer file inside the step directory, or None
        if the step was saved without one. Read it right away (e.g.
        ``AlignmentBuffer.load_jsonl(path)``): keep-last-K deletes old step directories.
    """

    step: int
    state: Any
    extras: dict
    buffer_path: str | None


# --- A checkpoint item that is one file written by a callable -----------------------------


class _FileItemHandler(ocp.CheckpointHandler):
    """Saves an item by calling ``write(path)``; restoring returns the file's path."""

    def save(self, directory, args: _FileSave) -> None:
        args.write(os.path.join(os.fspath(directory), _buffer_filename()))

    def restore(self, directory, args: _FileRestore | None = None) -> str:
        path = os.path.join(os.fspath(directory), _buffer_filename())
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: alignment-buffer file missing")
        return path

    def metadata(self, directory) -> None:
        return None


@ocp.args.register_with_handler(_FileItemHandler, for_save=True)
@dataclasses.dataclass
class _FileSave(ocp.args.CheckpointArgs):
    write: Callable[[str], None]


@ocp.args.register_with_handler(_FileItemHandler, for_restore=True)
@dataclasses.dataclass
class _FileRestore(ocp.args.CheckpointArgs):
    pass


def _buffer_filename() -> str:
    index = jax.process_index()
    return "alignment_buffer.jsonl" if index == 0 else f"alignment_buffer.process_{index}.jsonl"


# --- The checkpointer --------------------------------------------------------------------


class Checkpointer:
    """Periodic, asynchronous, keep-last-K checkpoints of one training run.

    Usage in a loop::

        ckpt = Checkpointer(workdir, save_every=50, keep_last=3)
        if ckpt.latest_step() is not None:
            r = ckpt.restore(abstract_state)          # state, extras, buffer_path
        for step in ...:
            ...
            ckpt.save(step, state, extras, write_buffer=buffer.save_jsonl,
                      force=guard.should_stop(step))
        ckpt.close()

    All processes of a multi-host run must make the same calls with the same steps.
    """

    def __init__(
        self,
        workdir: str | os.PathLike,
        save_every: int = 1,
        keep_last: int = 1,
        async_save: bool = True,
        read_only: bool = False,
    ):
        """Opens (and creates) ``<workdir>/checkpoints``.

        Args:
          workdir: the run directory; checkpoints go to its ``checkpoints/`` subdirectory.
          save_every: :meth:`save` writes only steps that are multiples of this (>= 1).
          keep_last: how many finalised steps to keep on disk (>= 1); older ones are deleted.
          async_save: write arrays in a background thread; :meth:`wait` blocks until done.
          read_only: only restore (e.g. ``--init_from`` another run): the directory must
            exist and is never created, cleaned up or written to.
        """
        if save_every < 1:
            raise ValueError(f"save_every must be >= 1, got {save_every}")
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.directory = os.path.join(os.path.abspath(os.fspath(workdir)), "checkpoints")
        self.save_every = save_every
        self.read_only = read_only
        if read_only and not os.path.isdir(self.directory):
            raise CheckpointError(f"{self.directory}: no checkpoint directory to read from")
        options = ocp.CheckpointManagerOptions(
            save_interval_steps=save_every,
            max_to_keep=keep_last,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=not read_only,
            create=not read_only,
            read_only=read_only,
        )
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                _STATE: ocp.StandardCheckpointHandler(),
                _EXTRAS: ocp.JsonCheckpointHandler(),
                _BUFFER: _FileItemHandler(),
            },
        )

    def step_dir(self, step: int) -> str:
        """The directory that holds (or will hold) step ``step``."""
        return os.path.join(self.directory, str(step))

    def all_steps(self) -> list[int]:
        """Finalised steps on disk, ascending (in-flight and interrupted saves excluded)."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        """The newest finalised step, or None if there is none."""
        return self._manager.latest_step()

    def save(
        self,
        step: int,
        state: Any,
        extras: Mapping[str, Any],
        write_buffer: Callable[[str], None] | None = None,
        force: bool = False,
    ) -> bool:
        """Starts saving ``step`` if it is due (``step % save_every == 0``) or ``force``.

        Args:
          step: the training step this state is the result of.
          state: pytree of jax arrays (typed PRNG keys allowed). Arrays are copied off
            the device before this returns, so the caller may donate them afterwards.
          extras: JSON-serialisable mapping (validated here, before anything is written).
          write_buffer: optional ``write(path)`` that writes the alignment buffer as a
            file at ``path`` (e.g. ``buffer.save_jsonl``); called before this returns.
          force: save even if the step is not a multiple of ``save_every`` (preemption,
            end of training).

        Returns:
          True if a save was started. Steps at or below the latest saved step are skipped.
        """
        if self.read_only:
            raise CheckpointError(f"{self.directory}: opened read-only, cannot save step {step}")
        try:
            json.dumps(extras, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"checkpoint extras for step {step} are not plain JSON: {e}") from e
        if not force and step % self.save_every != 0:
            return False
        latest = self.latest_step()
        if latest is not None and step <= latest:
            return False
        items = {
            _STATE: ocp.args.StandardSave(state),
            _EXTRAS: ocp.args.JsonSave(dict(extras)),
        }
        if write_buffer is not None:
            items[_BUFFER] = _FileSave(write_buffer)
        return self._manager.save(step, args=ocp.args.Composite(**items), force=True)

    def restore(self, abstract_state: Any, step: int | None = None) -> Restored:
        """Restores a step onto the shardings described by ``abstract_state``.

        Args:
          abstract_state: pytree of ``jax.ShapeDtypeStruct`` with ``sharding`` set (e.g.
            ``jax.eval_shape(init)`` with shardings attached), same structure as saved.
            Arrays are read straight into their target shards, never gathered on one
            device; dtypes and shardings may differ from the saved ones.
          step: the step to restore; None means the latest one, falling back (with a
            warning) to older steps if the latest is damaged.

        Raises:
          CheckpointError: there is no checkpoint, ``step`` does not exist or cannot be
            restored, or (for ``step=None``) no step can be restored.
        """
        self.wait()
        if step is not None:
            if step not in self.all_steps():
                raise CheckpointError(
                    f"{self.step_dir(step)}: no finalised checkpoint for step {step} "
                    f"(available: {self.all_steps()})"
                )
            return self._restore_step(abstract_state, step)
        steps = self.all_steps()
        if not steps:
            raise CheckpointError(f"{self.directory}: no finalised checkpoint to restore")
        failures = []
        for candidate in reversed(steps):
            try:
                return self._restore_step(abstract_state, candidate)
            except CheckpointError as e:
                failures.append(str(e))
                logger.warning("Skipping damaged checkpoint: %s", e)
        raise CheckpointError("no checkpoint could be restored:\n" + "\n".join(failures))

    def _restore_step(self, abstract_state: Any, step: int) -> Restored:
        step_dir = self.step_dir(step)
        has_buffer = os.path.isdir(os.path.join(step_dir, _BUFFER))
        items = {
            _STATE: ocp.args.StandardRestore(abstract_state),
            _EXTRAS: ocp.args.JsonRestore(),
        }
        if has_buffer:
            items[_BUFFER] = _FileRestore()
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**items))
            state = restored[_STATE]
            extras = restored[_EXTRAS]
            if not isinstance(extras, dict):
                raise ValueError(f"extras is a {type(extras).__name__}, expected a JSON object")
        except Exception as e:  # orbax raises many types; all mean "this step is unusable"
            raise CheckpointError(f"{step_dir}: cannot restore step {step}: {e!r}") from e
        return Restored(step, state, extras, restored[_BUFFER] if has_buffer else None)

    def wait(self) -> None:
        """Blocks until every started save is finalised on disk (or raises its error)."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases orbax's background threads."""
        self._manager.close()


# --- Preemption --------------------------------------------------------------------------


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
