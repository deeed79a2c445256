"""Where a run's files go: a local directory or any `etils.epath` path (``gs://``, ``s3://``).

A run's workdir -- ``config.json``, ``flags.txt``, ``checkpoints/``, ``metrics.jsonl``,
``samples.txt``, ``tensorboard/``, ``summary.md``, ``curves.png``, ``reference_hf/``,
``hf/`` -- and experiments/evaluate.py's output directory may be a bucket
(``gs://bucket/runs/x``): that is how the processes of a Cloud TPU pod share one workdir,
as orbax's multi-host checkpoints need. Their reads and writes go through `as_path` (an
``epath.Path``); a local path gives the same files, names and contents as plain ``open``
and ``os`` calls. ``gs://`` needs gcsfs (``pip install coderl_jax[gcs]``) or TensorFlow
(etils then uses ``tf.io.gfile``).

An object store is not a disk in two ways this module hides:

- no rename: `atomic_writer` writes a local file into a temporary file and renames it over
  the target; an object it writes directly, as a store replaces an object in one step
  when its upload completes (readers see the old object or the new one).
- no append, no truncate: `AppendFile` appends to a local file opened for appending, and
  for an object keeps the file's bytes in memory and writes the whole object again
  (see its docstring); `cut` truncates a local file in place and rewrites an object.

What stays on the local filesystem (plain os and pathlib): the model a run starts from
(``model.hf_dir``, and evaluate.py's ``--checkpoint`` when it is an HF directory: read
by transformers), the tiny-model cache and its lock, TFDS's ``data_dir`` and
``manual_dir``, the sandbox's temporary directories and the study launcher's files
(experiments/study*.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

from etils import epath


def is_local(path: str | os.PathLike) -> bool:
    """Whether ``path`` names this machine's filesystem (no ``scheme://`` prefix)."""
    return "://" not in os.fspath(path)


def as_path(path: str | os.PathLike) -> epath.Path:
    """``path`` as an ``epath.Path``; a local one with ``~`` expanded."""
    return epath.Path(os.path.expanduser(os.fspath(path)) if is_local(path) else path)


def read_text(path: str | os.PathLike) -> str:
    """The file's text, read as UTF-8."""
    return as_path(path).read_bytes().decode("utf-8")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file whose bytes become ``path`` when the block ends without an error.

    A local file is written to ``<path>.tmp<pid>``, fsynced and renamed over ``path``: a
    crash leaves the old file or the new one, never a part of one. An object is written
    directly: the store replaces it when the upload completes at the end of the block (a
    crash before then leaves the old object); an error in the block removes the object.
    """
    path = as_path(path)
    if not is_local(path):
        try:
            with path.open("wb") as f:
                yield f
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
            raise
        return
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_atomically(path: str | os.PathLike, data: str | bytes) -> None:
    """Writes ``data`` (text as UTF-8) to ``path`` through `atomic_writer`."""
    with atomic_writer(path) as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def cut(path: str | os.PathLike, size: int) -> None:
    """Cuts the file at ``path`` back to its first ``size`` bytes (local: truncated in
    place; an object: written again)."""
    path = as_path(path)
    if is_local(path):
        with open(path, "r+b") as f:
            f.truncate(size)
    else:
        path.write_bytes(path.read_bytes()[:size])


class AppendFile:
    """A file that grows by appending, as ``metrics.jsonl`` and ``samples.txt`` do.

    Local: an ordinary file opened for appending; `flush_soon` and `flush` flush it. On an
    object store, which cannot append, the file's bytes stay in memory (read at open) and
    the whole object is written again by `flush` and `close`, and by `flush_soon` when it
    changed and ``upload_every_s`` seconds have passed since the last write (GCS takes
    about one write a second to an object). `tell` is the file's size in bytes.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        upload_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.path = as_path(path)
        self._every, self._clock = upload_every_s, clock
        self._file: BinaryIO | None = None
        if is_local(self.path):
            self._file = open(self.path, "ab")  # noqa: SIM115 - closed in close()
            return
        exists = self.path.exists()
        self._data = bytearray(self.path.read_bytes() if exists else b"")
        self._written_at: float | None = None  # never yet: the first flush_soon writes
        self._changed = not exists  # a missing file is created, as a local one would be

    def write(self, data: str | bytes) -> None:
        data = data.encode("utf-8") if isinstance(data, str) else data
        if self._file is not None:
            self._file.write(data)
        else:
            self._data += data
            self._changed = True

    def tell(self) -> int:
        return self._file.tell() if self._file is not None else len(self._data)

    def flush_soon(self) -> None:
        """Local: flushes. Object: writes it if it changed and is due (see the class)."""
        if self._file is not None:
            self._file.flush()
        elif self._written_at is None or self._clock() - self._written_at >= self._every:
            self.flush()

    def flush(self) -> None:
        """Pushes everything written to the file (the object, if it changed)."""
        if self._file is not None:
            self._file.flush()
        elif self._changed:
            self.path.write_bytes(bytes(self._data))
            self._written_at, self._changed = self._clock(), False

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
