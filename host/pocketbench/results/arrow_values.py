"""Arrow arrays of Python values, built from their buffers.

pyarrow's converter of Python values (`pa.array`, `pa.scalar`, a Python value in a compute call)
imports pandas the first time it runs, to check whether the values are pandas objects: a third
of a second, more than a filtered history export needs for everything else. These builders
hand Arrow finished buffers (numpy's, imported with pyarrow anyway) and never go through it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def int64_array(values: Sequence[int] | np.ndarray) -> pa.Array:
    """Integers, none missing."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bool_array(values: Sequence[bool | None]) -> pa.Array:
    """True / False, None where missing."""
    bits = np.packbits(np.array([v is True for v in values], dtype=bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(values), [_validity(values), pa.py_buffer(bits)])


def string_array(values: Sequence[str | None]) -> pa.Array:
    """Text, None where missing."""
    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    kind, width = (pa.string(), np.int32) if offsets[-1] < 2**31 else (pa.large_string(), np.int64)
    buffers = [_validity(values), pa.py_buffer(offsets.astype(width)), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(kind, len(values), buffers)


def _validity(values: Sequence[object]) -> pa.Buffer | None:
    """The validity bitmap (None: no value is missing)."""
    present = np.array([v is not None for v in values], dtype=bool)
    return None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little"))


def int64_values(values: pa.Array) -> np.ndarray:
    """The integers of an array with none missing, as numpy's, read from its buffer (to_numpy
    imports pandas, even for a copy-free conversion)."""
    data = values.cast(pa.int64())
    return np.frombuffer(data.buffers()[1], dtype=np.int64)[data.offset : data.offset + len(data)]
