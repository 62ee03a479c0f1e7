"""The tensor file the host and the native runner exchange (inputs in, outputs back).

Little-endian, so the same bytes work on x86 hosts and arm64 phones:

    header:  b"PBTF"  u32 version (=1)  u32 n_sets  u32 tensors_per_set
    n_sets * tensors_per_set records, set-major:
             u8 dtype (ExecuTorch ScalarType code)  u8 ndim  u16 reserved (=0)
             i64 dims[ndim]  u64 nbytes  raw row-major data[nbytes]

A "set" is one call's worth of tensors (a method's inputs, or its outputs). The rules a reader
enforces, and their codes, are written once in docs/tensor-file.md; the runner's C++ reader
enforces the same ones, and both are tested on the corpus in tests/data/tensorfile/.
"""

from __future__ import annotations

import math
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


HEADER_BYTES = 16
RECORD_MIN_BYTES = 12  # dtype, ndim, reserved, nbytes: a 0-d record with no data
MAX_DIMS = 16
MAX_DIM = 2**31 - 1  # ExecuTorch sizes are int32
MAX_BYTES = 2**63 - 1  # the non-zero dims times the element size


class TensorFileError(ValueError):
    """The bytes are not a valid PBTF tensor file; `code` names the rule (docs/tensor-file.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message


def encode(sets: Sequence[Sequence[np.ndarray]]) -> bytes:
    """Serialize sets of tensors; refuses anything `decode` would refuse."""
    per_set = len(sets[0]) if sets else 0
    if any(len(s) != per_set for s in sets):
        raise TensorFileError("unequal-sets", "every tensor set must hold the same number of tensors")
    if sets and per_set == 0:
        raise TensorFileError("zero-count", "a tensor set must hold at least one tensor")
    parts = [struct.pack("<4sIII", MAGIC, VERSION, len(sets), per_set)]
    for tensors in sets:
        for array in tensors:
            array = np.asarray(array, order="C")  # ascontiguousarray would make 0-d arrays 1-d
            code = _CODES.get(array.dtype)
            if code is None:
                raise TensorFileError("unknown-dtype", f"dtype {array.dtype} cannot be carried in a tensor file")
            if array.ndim > MAX_DIMS or any(d > MAX_DIM for d in array.shape):
                raise TensorFileError(
                    "too-many-dims" if array.ndim > MAX_DIMS else "dim-too-large",
                    f"shape {array.shape} cannot be carried in a tensor file (at most {MAX_DIMS} dims of 2^31 - 1)",
                )
            data = array.tobytes()
            parts.append(struct.pack("<BBH", code, array.ndim, 0))
            parts.append(struct.pack(f"<{array.ndim}q", *array.shape))
            parts.append(struct.pack("<Q", len(data)))
            parts.append(data)
    return b"".join(parts)


def decode(blob: bytes) -> list[TensorSet]:
    """Parse a tensor file, enforcing docs/tensor-file.md's rules in its order (as the runner does)."""
    view = memoryview(blob)
    size = len(view)
    if size < HEADER_BYTES:
        raise TensorFileError("short-header", f"it has {size} bytes, fewer than its 16-byte header")
    magic, version, n_sets, per_set = struct.unpack_from("<4sIII", view, 0)
    if magic != MAGIC:
        raise TensorFileError("bad-magic", f"it does not start with PBTF (magic {bytes(magic)!r})")
    if version != VERSION:
        raise TensorFileError("bad-version", f"it is PBTF version {version}, not {VERSION}")
    if (n_sets == 0) != (per_set == 0):
        raise TensorFileError(
            "zero-count", f"it claims {n_sets} sets of {per_set} tensors: both counts are 0 or neither is"
        )
    if n_sets * per_set * RECORD_MIN_BYTES > size - HEADER_BYTES:
        raise TensorFileError(
            "counts-exceed-bytes", f"it claims {n_sets} sets of {per_set} tensors, more than its {size} bytes can hold"
        )
    offset = HEADER_BYTES
    sets: list[TensorSet] = []
    for s in range(n_sets):
        tensors: TensorSet = []
        for t in range(per_set):
            array, offset = _record(view, s * per_set + t, offset)
            tensors.append(array)
        sets.append(tensors)
    if offset != size:
        raise TensorFileError("trailing-bytes", f"{size - offset} bytes follow its last record")
    return sets


def _record(view: memoryview, record: int, offset: int) -> tuple[np.ndarray, int]:
    """One record at `offset` → its tensor and the offset after it."""
    where = f"record {record} (byte {offset})"
    remaining = len(view) - offset
    if remaining < 4:
        raise TensorFileError("truncated-record", f"{where} is cut inside its header")
    code, ndim, reserved = struct.unpack_from("<BBH", view, offset)
    if reserved != 0:
        raise TensorFileError("reserved-nonzero", f"{where} has reserved field {reserved}, which must be 0")
    dtype = SCALAR_TYPES.get(code)
    if dtype is None:
        raise TensorFileError("unknown-dtype", f"{where} has dtype code {code}, which a tensor file does not carry")
    if ndim > MAX_DIMS:
        raise TensorFileError("too-many-dims", f"{where} has {ndim} dims, more than {MAX_DIMS}")
    header = RECORD_MIN_BYTES + 8 * ndim
    if remaining < header:
        raise TensorFileError("truncated-record", f"{where} is cut inside its header")
    dims = struct.unpack_from(f"<{ndim}q", view, offset + 4)
    for d, dim in enumerate(dims):
        if dim < 0:
            raise TensorFileError("negative-dim", f"{where} has dim {d} = {dim}")
        if dim > MAX_DIM:
            raise TensorFileError("dim-too-large", f"{where} has dim {d} = {dim}, more than 2^31 - 1")
    # numpy (like any sane reader) cannot shape an array whose non-zero dims span 2^63 bytes,
    # even when a zero dim leaves it empty.
    span = math.prod(d for d in dims if d) * dtype.itemsize  # exact: Python integers do not wrap
    if span > MAX_BYTES:
        raise TensorFileError(
            "too-many-elements", f"{where} has dims {list(dims)} spanning {span} bytes, more than 2^63 - 1"
        )
    (nbytes,) = struct.unpack_from("<Q", view, offset + 4 + 8 * ndim)
    expected = span if all(dims) else 0
    if nbytes != expected:
        raise TensorFileError(
            "size-mismatch", f"{where} says {nbytes} data bytes but its dims and dtype make {expected}"
        )
    offset += header
    if nbytes > len(view) - offset:
        raise TensorFileError(
            "truncated-data", f"{where} needs {nbytes} data bytes but only {len(view) - offset} remain"
        )
    data = np.frombuffer(view[offset : offset + nbytes], dtype=dtype).reshape(dims)
    return data.copy(), offset + nbytes


def write(path: Path, sets: Sequence[Sequence[np.ndarray]]) -> None:
    """Write a tensor file."""
    path.write_bytes(encode(sets))


def read(path: Path) -> list[TensorSet]:
    """Read a tensor file; a TensorFileError names the file."""
    try:
        return decode(path.read_bytes())
    except TensorFileError as exc:
        raise TensorFileError(exc.code, f"{path} is not a valid tensor file: {exc.message}") from None
