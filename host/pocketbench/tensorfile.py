"""The tensor file the host and the native runner exchange (inputs in, outputs back).

Little-endian, so the same bytes work on x86 hosts and arm64 phones:

    header:  b"PBTF"  u32 version (=1)  u32 n_sets  u32 tensors_per_set
    n_sets * tensors_per_set records, set-major:
             u8 dtype (ExecuTorch ScalarType code)  u8 ndim  u16 reserved (=0)
             i64 dims[ndim]  u64 nbytes  raw row-major data[nbytes]

A "set" is one call's worth of tensors (a method's inputs, or its outputs).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAGIC = b"PBTF"
VERSION = 1

# ExecuTorch ScalarType codes (runtime/core/portable_type/scalar_type.h) for the dtypes we carry.
SCALAR_TYPES: dict[int, np.dtype] = {
    0: np.dtype(np.uint8),
    1: np.dtype(np.int8),
    2: np.dtype(np.int16),
    3: np.dtype(np.int32),
    4: np.dtype(np.int64),
    5: np.dtype(np.float16),
    6: np.dtype(np.float32),
    7: np.dtype(np.float64),
    11: np.dtype(np.bool_),
}
_CODES = {dtype: code for code, dtype in SCALAR_TYPES.items()}

TensorSet = list[np.ndarray]


class TensorFileError(ValueError):
    """The bytes are not a valid PBTF tensor file."""


def encode(sets: Sequence[Sequence[np.ndarray]]) -> bytes:
    """Serialize sets of tensors; every set must hold the same number of tensors."""
    per_set = len(sets[0]) if sets else 0
    if any(len(s) != per_set for s in sets):
        raise TensorFileError("every tensor set must hold the same number of tensors")
    parts = [struct.pack("<4sIII", MAGIC, VERSION, len(sets), per_set)]
    for tensors in sets:
        for array in tensors:
            array = np.asarray(array, order="C")  # ascontiguousarray would make 0-d arrays 1-d
            code = _CODES.get(array.dtype)
            if code is None:
                raise TensorFileError(f"dtype {array.dtype} cannot be carried in a tensor file")
            data = array.tobytes()
            parts.append(struct.pack("<BBH", code, array.ndim, 0))
            parts.append(struct.pack(f"<{array.ndim}q", *array.shape))
            parts.append(struct.pack("<Q", len(data)))
            parts.append(data)
    return b"".join(parts)


def decode(blob: bytes) -> list[TensorSet]:
    """Parse a tensor file; raises TensorFileError on anything truncated or malformed."""
    view = memoryview(blob)
    if len(view) < 16:
        raise TensorFileError("tensor file is shorter than its 16-byte header")
    magic, version, n_sets, per_set = struct.unpack_from("<4sIII", view, 0)
    if magic != MAGIC or version != VERSION:
        raise TensorFileError(f"not a PBTF v{VERSION} tensor file (magic {bytes(magic)!r})")
    offset = 16
    sets: list[TensorSet] = []
    for _ in range(n_sets):
        tensors: TensorSet = []
        for _ in range(per_set):
            try:
                code, ndim, _reserved = struct.unpack_from("<BBH", view, offset)
                dims = struct.unpack_from(f"<{ndim}q", view, offset + 4)
                (nbytes,) = struct.unpack_from("<Q", view, offset + 4 + 8 * ndim)
            except struct.error as exc:
                raise TensorFileError("tensor file is truncated inside a tensor header") from exc
            offset += 12 + 8 * ndim
            dtype = SCALAR_TYPES.get(code)
            if dtype is None:
                raise TensorFileError(f"unknown dtype code {code} in tensor file")
            expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            if nbytes != expected or offset + nbytes > len(view):
                raise TensorFileError("tensor file is truncated or its sizes disagree")
            data = np.frombuffer(view[offset : offset + nbytes], dtype=dtype).reshape(dims)
            tensors.append(data.copy())
            offset += nbytes
        sets.append(tensors)
    return sets


def write(path: Path, sets: Sequence[Sequence[np.ndarray]]) -> None:
    """Write a tensor file."""
    path.write_bytes(encode(sets))


def read(path: Path) -> list[TensorSet]:
    """Read a tensor file."""
    return decode(path.read_bytes())
