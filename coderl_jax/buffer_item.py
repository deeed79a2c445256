"""The alignment buffer as an orbax checkpoint item: one file per process, written by a
callable (e.g. ``AlignmentBuffer.save_jsonl``); restoring gives the file's path.

Process 0 writes ``alignment_buffer.jsonl``, process ``i > 0``
``alignment_buffer.process_<i>.jsonl``, so per-host buffers survive multi-host runs
(`coderl_jax.checkpoint` stores the item as ``alignment_buffer/``). The step directory may
be on an object store (``gs://``): the callable gets that path.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import jax
import orbax.checkpoint as ocp
from etils import epath


class BufferFileHandler(ocp.CheckpointHandler):
    """Saves an item by calling ``write(path)``; restoring returns the file's path."""

    def save(self, directory, args: SaveBufferFile) -> None:
        args.write(os.fspath(epath.Path(directory) / buffer_filename()))

    def restore(self, directory, args: RestoreBufferFile | None = None) -> str:
        path = epath.Path(directory) / buffer_filename()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: alignment-buffer file missing")
        return os.fspath(path)

    def metadata(self, directory) -> None:
        return None


@ocp.args.register_with_handler(BufferFileHandler, for_save=True)
@dataclasses.dataclass
class SaveBufferFile(ocp.args.CheckpointArgs):
    write: Callable[[str], None]


@ocp.args.register_with_handler(BufferFileHandler, for_restore=True)
@dataclasses.dataclass
class RestoreBufferFile(ocp.args.CheckpointArgs):
    pass


def buffer_filename() -> str:
    index = jax.process_index()
    return "alignment_buffer.jsonl" if index == 0 else f"alignment_buffer.process_{index}.jsonl"
