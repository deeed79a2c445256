"""Training checkpoints: an orbax ``CheckpointManager`` wrapper.

A checkpoint for step ``s`` is the directory ``<workdir>/checkpoints/<s>/`` holding these
orbax items:

- ``params/``: the model parameters (the state's ``params`` field or key), on their own so
  that evaluation, export and ``--init_from`` read them without the optimizer's moments
  (`Checkpointer.restore_params`).
- ``train_state/``: the rest of the state pytree (optimizer state, step, RNG key, ...); the
  whole state when it has no ``params``. Arrays may be sharded over several hosts; typed
  PRNG keys (``jax.random.key``) round-trip.
- ``extras/``: one JSON object (iterator state, metric-file positions, ...).
- ``alignment_buffer/alignment_buffer.jsonl`` (optional; process ``i > 0`` writes
  ``alignment_buffer.process_<i>.jsonl``): a file written by a caller-supplied callable,
  e.g. ``AlignmentBuffer.save_jsonl``. It is written synchronously inside
  :meth:`Checkpointer.save` (the buffer keeps changing while the async array write runs)
  and each process writes its own file, so per-host buffers survive multi-host runs.

Checkpoints written before params had their own item hold one ``state/`` item (params and
optimizer state together); they still restore, in full or params only.

Atomicity: orbax writes a step into a temporary directory and renames it only once every
item (on every host) is complete, and this wrapper starts orbax with
``cleanup_tmp_directories=True``, so a save interrupted by a crash or ``kill -9`` is never
listed as a step and is deleted on the next start.

Restore failures come in two kinds. A step whose arrays do not have the shapes or tree
structure of the state asked for (the run's model or optimizer settings differ from those
it was saved with) raises :class:`CheckpointMismatchError` at once: older steps would not
fit either. A step that cannot be read (a deleted file, a truncated JSON) raises
:class:`CheckpointDamagedError` for an explicit ``restore(step=s)``, while restoring the
latest step logs a warning and falls back to the newest older step that restores.

Retention: the newest ``keep_last`` steps are kept, and with ``keep_period`` every step
that is a multiple of it is kept for good.

Storage: the workdir may be any ``etils.epath`` path (``gs://bucket/run``: orbax writes
there itself, and on GCS marks a finished step with ``commit_success.txt`` instead of a
rename); this module reads the step directories through epath too.

Preemption (SIGTERM -> save and exit at a step boundary): `coderl_jax.preemption`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import jax
import orbax.checkpoint as ocp

from coderl_jax import storage
from coderl_jax.buffer_item import BufferFileHandler, RestoreBufferFile, SaveBufferFile

logger = logging.getLogger(__name__)

_PARAMS, _TRAIN_STATE, _EXTRAS, _BUFFER = "params", "train_state", "extras", "alignment_buffer"
_LEGACY_STATE = "state"  # the one array item of checkpoints written before params had theirs
# What orbax says when the requested tree or shapes differ from the saved ones.
_MISMATCH_MESSAGES = ("tree structures do not match", "not compatible with the stored shape")


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete, unreadable or does not fit."""


class CheckpointDamagedError(CheckpointError):
    """A step's files are missing or unreadable (the checkpoint itself is broken)."""


class CheckpointMismatchError(CheckpointError):
    """A step is readable but its arrays do not fit the state asked for: the run's model or
    optimizer settings differ from those it was saved with."""


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


def _split(state: Any) -> tuple[Any, dict]:
    """``(params or None, the other top-level fields as a dict)`` of a dict or dataclass."""
    if isinstance(state, Mapping):
        fields = dict(state)
    elif dataclasses.is_dataclass(state):
        fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    else:
        return None, {"state": state}
    return fields.pop("params", None), fields


def _join(like: Any, params: Any, rest: dict) -> Any:
    """The inverse of `_split`, shaped like ``like``."""
    if isinstance(like, Mapping):
        return {**rest, "params": params} if params is not None else rest
    if dataclasses.is_dataclass(like):
        return dataclasses.replace(like, **rest, **({} if params is None else {"params": params}))
    return rest["state"]


def _path_text(path) -> str:
    names = (getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)
    return "/".join(map(str, names))


def _shapes(tree) -> dict[str, tuple[int, ...] | None]:
    """``{leaf path: shape}`` of a state or a saved tree's metadata (None: a PRNG key)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        dtype = getattr(leaf, "dtype", None)
        is_key = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
        out[_path_text(path)] = None if is_key else tuple(getattr(leaf, "shape", ()))
    return out


def _misfits(abstract, saved) -> list[str]:
    """How the arrays asked for differ from the saved ones (empty when they fit)."""
    want, have = _shapes(abstract), _shapes(saved)
    problems = [f"{p} is not in the checkpoint" for p in sorted(want.keys() - have.keys())]
    problems += [f"{p} is saved but not in this state" for p in sorted(have.keys() - want.keys())]
    for p in sorted(want.keys() & have.keys()):
        if None not in (want[p], have[p]) and want[p] != have[p]:
            problems.append(f"{p} is saved with shape {have[p]}, this state has {want[p]}")
    return problems


def _is_mismatch(error: BaseException | None) -> bool:
    while error is not None:
        if any(m in str(error) for m in _MISMATCH_MESSAGES):
            return True
        error = error.__cause__ or error.__context__
    return False


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
        keep_period: int = 0,
    ):
        """Opens (and creates) ``<workdir>/checkpoints``.

        Args:
          workdir: the run directory; checkpoints go to its ``checkpoints/`` subdirectory.
          save_every: :meth:`save` writes only steps that are multiples of this (>= 1).
          keep_last: how many finalised steps to keep on disk (>= 1); older ones are deleted.
          async_save: write arrays in a background thread; :meth:`wait` blocks until done.
          read_only: only restore (e.g. ``--init_from`` another run): the directory must
            exist and is never created, cleaned up or written to.
          keep_period: also keep, for good, every step that is a multiple of this (0: none).
        """
        if save_every < 1:
            raise ValueError(f"save_every must be >= 1, got {save_every}")
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        if keep_period < 0:
            raise ValueError(f"keep_period must be >= 0, got {keep_period}")
        workdir = storage.as_path(workdir)
        workdir = os.path.abspath(workdir) if storage.is_local(workdir) else os.fspath(workdir)
        self.directory = os.path.join(workdir, "checkpoints")
        self.save_every = save_every
        self.read_only = read_only
        if read_only and not storage.as_path(self.directory).is_dir():
            raise CheckpointError(f"{self.directory}: no checkpoint directory to read from")
        options = ocp.CheckpointManagerOptions(  # read-only: orbax warns unless unset
            save_interval_steps=0 if read_only else save_every,
            max_to_keep=None if read_only else keep_last,
            keep_period=None if read_only else (keep_period or None),
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=not read_only,
            create=not read_only,
            read_only=read_only,
        )
        self._manager = ocp.CheckpointManager(
            storage.as_path(self.directory),
            options=options,
            item_handlers={
                _PARAMS: ocp.StandardCheckpointHandler(),
                _TRAIN_STATE: ocp.StandardCheckpointHandler(),
                _LEGACY_STATE: ocp.StandardCheckpointHandler(),
                _EXTRAS: ocp.JsonCheckpointHandler(),
                _BUFFER: BufferFileHandler(),
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
          state: pytree of jax arrays (typed PRNG keys allowed); a dict or dataclass with a
            ``params`` entry has it saved as the ``params`` item. Arrays are copied off
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
        params, rest = _split(state)
        items = {
            _TRAIN_STATE: ocp.args.StandardSave(rest),
            _EXTRAS: ocp.args.JsonSave(dict(extras)),
        }
        if params is not None:
            items[_PARAMS] = ocp.args.StandardSave(params)
        if write_buffer is not None:
            items[_BUFFER] = SaveBufferFile(write_buffer)
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
          CheckpointMismatchError: the saved arrays do not fit ``abstract_state``.
          CheckpointDamagedError: ``step`` cannot be read (for ``step=None``: no step can).
          CheckpointError: there is no checkpoint, or ``step`` does not exist.
        """
        return self._restore(lambda s: self._restore_state(abstract_state, s), step)

    def restore_params(self, abstract_params: Any, step: int | None = None) -> Restored:
        """Restores only the ``params`` of a step (no optimizer state is read), as
        `restore` does the whole state; ``Restored.state`` holds the params."""
        return self._restore(lambda s: self._restore_params(abstract_params, s), step)

    def _restore(self, restore_step: Callable[[int], Restored], step: int | None) -> Restored:
        self.wait()
        if step is not None:
            if step not in self.all_steps():
                raise CheckpointError(
                    f"{self.step_dir(step)}: no finalised checkpoint for step {step} "
                    f"(available: {self.all_steps()})"
                )
            return restore_step(step)
        steps = self.all_steps()
        if not steps:
            raise CheckpointError(f"{self.directory}: no finalised checkpoint to restore")
        failures = []
        for candidate in reversed(steps):
            try:
                return restore_step(candidate)
            except CheckpointDamagedError as e:
                failures.append(str(e))
                logger.warning("Skipping damaged checkpoint: %s", e)
        raise CheckpointDamagedError("no checkpoint could be restored:\n" + "\n".join(failures))

    def _items(self, step: int) -> set[str]:
        return {p.name for p in storage.as_path(self.step_dir(step)).iterdir() if p.is_dir()}

    def _read(self, step: int, items: dict[str, Any]) -> dict[str, Any]:
        """Restores ``items`` of ``step``, turning orbax's errors into ours: arrays that do
        not fit the state asked for (checked against the saved metadata first) are a
        mismatch, anything else that fails is damage."""
        step_dir = self.step_dir(step)
        try:
            metadata = self._manager.item_metadata(step)
            misfits = [
                f"{name}/{problem}"
                for name, args in items.items()
                if isinstance(args, ocp.args.StandardRestore)
                for problem in _misfits(args.item, metadata[name].tree)
            ]
            if not misfits:
                restored = self._manager.restore(step, args=ocp.args.Composite(**items))
                out = {name: restored[name] for name in items}
        except Exception as e:  # orbax raises many types
            if not _is_mismatch(e):
                raise CheckpointDamagedError(
                    f"{step_dir}: cannot restore step {step}: the checkpoint is damaged "
                    f"(missing or unreadable files): {e!r}"
                ) from e
            misfits = [" ".join(str(e).split())[:300]]
        if misfits:
            shown = "; ".join(misfits[:3]) + (
                f"; and {len(misfits) - 3} more" if len(misfits) > 3 else ""
            )
            raise CheckpointMismatchError(
                f"{step_dir}: the checkpoint does not fit this run's state: the model or "
                f"optimizer settings differ from those it was saved with ({shown})"
            )
        if _EXTRAS in out and not isinstance(out[_EXTRAS], dict):
            raise CheckpointDamagedError(
                f"{step_dir}: cannot restore step {step}: extras is a "
                f"{type(out[_EXTRAS]).__name__}, expected a JSON object"
            )
        return out

    def _restore_state(self, abstract_state: Any, step: int) -> Restored:
        present = self._items(step)
        buffer = {_BUFFER: RestoreBufferFile()} if _BUFFER in present else {}
        if _LEGACY_STATE in present:
            items = {_LEGACY_STATE: ocp.args.StandardRestore(abstract_state)}
            restored = self._read(step, {**items, _EXTRAS: ocp.args.JsonRestore(), **buffer})
            state = restored[_LEGACY_STATE]
        else:
            params, rest = _split(abstract_state)
            items = {_TRAIN_STATE: ocp.args.StandardRestore(rest)}
            if params is not None:
                items[_PARAMS] = ocp.args.StandardRestore(params)
            restored = self._read(step, {**items, _EXTRAS: ocp.args.JsonRestore(), **buffer})
            state = _join(abstract_state, restored.get(_PARAMS), restored[_TRAIN_STATE])
        return Restored(step, state, restored[_EXTRAS], restored.get(_BUFFER))

    def _restore_params(self, abstract_params: Any, step: int) -> Restored:
        if _LEGACY_STATE not in self._items(step):
            restored = self._read(
                step,
                {
                    _PARAMS: ocp.args.StandardRestore(abstract_params),
                    _EXTRAS: ocp.args.JsonRestore(),
                },
            )
            return Restored(step, restored[_PARAMS], restored[_EXTRAS], None)
        # An old checkpoint: read the params out of its one state item.
        item = {"params": abstract_params}
        path = os.path.join(self.step_dir(step), _LEGACY_STATE)
        try:
            with ocp.Checkpointer(ocp.PyTreeCheckpointHandler()) as reader:
                restored = reader.restore(
                    storage.as_path(path),
                    args=ocp.args.PyTreeRestore(
                        item=item,
                        restore_args=ocp.checkpoint_utils.construct_restore_args(item),
                        partial_restore=True,
                    ),
                )
        except Exception as e:
            kind = CheckpointMismatchError if _is_mismatch(e) else CheckpointDamagedError
            raise kind(f"{path}: cannot restore the params of step {step}: {e!r}") from e
        extras = self._read(step, {_EXTRAS: ocp.args.JsonRestore()})[_EXTRAS]
        return Restored(step, restored["params"], extras, None)

    def wait(self) -> None:
        """Blocks until every started save is finalised on disk (or raises its error)."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Waits for pending saves and releases orbax's background threads."""
        self._manager.close()
