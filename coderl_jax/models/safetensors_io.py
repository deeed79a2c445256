"""Minimal streaming reader/writer of the safetensors format (bf16 included, via ml_dtypes).

Format: an 8-byte little-endian header length, a JSON header mapping tensor names to
``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the end of the
header) plus an optional ``__metadata__`` dict of strings, then the raw little-endian data.

Why our own: reading one tensor at a time with ``readinto`` into a fresh buffer keeps host
memory at one tensor (no memory map whose touched pages stay resident), bf16 works without
torch, and a truncated or corrupt file gets an error that names the file and the tensor.
Files may be local or on an object store (``gs://...``: `coderl_jax.storage`).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Sequence

import ml_dtypes
import numpy as np

from coderl_jax import storage

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_NAMES = {v: k for k, v in DTYPES.items()}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A safetensors file is missing, truncated or malformed."""


class SafetensorsFile:
    """Index of one safetensors file; `read` loads one tensor into a fresh numpy array."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        try:
            size = storage.as_path(self.path).stat().length
        except OSError as e:
            raise SafetensorsError(f"cannot open safetensors file {self.path}: {e}") from e
        with storage.as_path(self.path).open("rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise SafetensorsError(f"{self.path}: file is truncated ({size} bytes, no header)")
            (header_len,) = struct.unpack("<Q", raw)
            if header_len > min(size - 8, _MAX_HEADER_BYTES):
                raise SafetensorsError(
                    f"{self.path}: header length {header_len} exceeds the file size {size} "
                    "(truncated or not a safetensors file)"
                )
            try:
                header = json.loads(f.read(header_len))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise SafetensorsError(f"{self.path}: header is not valid JSON ({e})") from e
        self.metadata = header.pop("__metadata__", None) or {}
        self.data_start = 8 + header_len
        self.entries: dict[str, tuple[np.dtype, tuple[int, ...], int, int]] = {}
        for name, info in header.items():
            try:
                dtype = DTYPES[info["dtype"]]
                shape = tuple(int(d) for d in info["shape"])
                begin, end = (int(x) for x in info["data_offsets"])
            except (KeyError, TypeError, ValueError) as e:
                raise SafetensorsError(
                    f"{self.path}: tensor {name!r} has a bad header entry {info!r}"
                ) from e
            expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if end - begin != expected:
                raise SafetensorsError(
                    f"{self.path}: tensor {name!r} of shape {shape} {info['dtype']} needs "
                    f"{expected} bytes but its offsets span {end - begin}"
                )
            if self.data_start + end > size:
                raise SafetensorsError(
                    f"{self.path} is truncated: tensor {name!r} ends at byte "
                    f"{self.data_start + end} but the file has {size} bytes"
                )
            self.entries[name] = (dtype, shape, begin, end)

    def keys(self) -> list[str]:
        return list(self.entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name][1]

    def read(self, name: str) -> np.ndarray:
        dtype, shape, begin, end = self.entries[name]
        out = np.empty(shape, dtype)
        with storage.as_path(self.path).open("rb") as f:
            f.seek(self.data_start + begin)
            got = _read_into(f, memoryview(out.reshape(-1).view(np.uint8)))
        if got != end - begin:
            raise SafetensorsError(f"{self.path}: short read of tensor {name!r}")
        return out


def _read_into(f, out: memoryview) -> int:
    """``f.readinto(out)``; files without it (TensorFlow's GFile) read a copy."""
    if hasattr(f, "readinto"):
        return f.readinto(out)
    data = f.read(len(out))
    out[: len(data)] = data
    return len(data)


# A tensor to write: (name, shape, dtype, producer of the array).
TensorEntry = tuple[str, Sequence[int], np.dtype, Callable[[], np.ndarray]]


def write_safetensors(
    path: str | os.PathLike, entries: Sequence[TensorEntry], metadata: dict | None = None
) -> None:
    """Writes tensors one at a time (each producer is called once, right before its write),
    through `coderl_jax.storage.atomic_writer` (a crash leaves no part of a file)."""
    header: dict = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    for name, shape, dtype, _ in entries:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        header[name] = {
            "dtype": _NAMES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # keep tensor data 8-byte aligned
    with storage.atomic_writer(path) as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name, shape, dtype, produce in entries:
            arr = np.ascontiguousarray(produce(), dtype=dtype)
            if arr.shape != tuple(shape):
                raise ValueError(
                    f"tensor {name!r}: producer gave shape {arr.shape}, declared {tuple(shape)}"
                )
            f.write(memoryview(arr.reshape(-1).view(np.uint8)))
