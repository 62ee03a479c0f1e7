"""Writes the shared tensor-file corpus (docs/tensor-file.md): valid/*.pbtf and invalid/<code>--<what>.pbtf.

Both readers are tested on these exact bytes (tests/test_tensorfile_corpus.py) and the runner's
fuzzer starts from them. Run it again only to add cases: `python tests/data/tensorfile/make_corpus.py`.
Invalid files are built byte by byte, not with tensorfile.encode, which refuses to write them.
"""

from __future__ import annotations

import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def header(n_sets: int, per_set: int, magic: bytes = b"PBTF", version: int = 1) -> bytes:
    return magic + struct.pack("<III", version, n_sets, per_set)


def record(code: int, dims: list[int], data: bytes, reserved: int = 0, nbytes: int | None = None) -> bytes:
    size = len(data) if nbytes is None else nbytes
    return struct.pack(f"<BBH{len(dims)}qQ", code, len(dims), reserved, *dims, size) + data


F32 = 6
ONE_F32 = struct.pack("<f", 1.5)

VALID: dict[str, bytes] = {
    "no-sets": header(0, 0),
    "scalar-f32": header(1, 1) + record(F32, [], ONE_F32),
    "empty-dim": header(1, 1) + record(F32, [2, 0, 3], b""),
    "zero-dim-with-big-dims": header(1, 1) + record(F32, [2**31 - 1, 2**30, 0], b""),
    "every-dtype": header(1, 9)
    + b"".join(
        record(code, [2], bytes(range(2 * size)))
        for code, size in [(0, 1), (1, 1), (2, 2), (3, 4), (4, 8), (5, 2), (6, 4), (7, 8), (11, 1)]
    ),
    "two-sets-two-tensors": header(2, 2)
    + record(F32, [1, 2], ONE_F32 * 2)
    + record(4, [3], struct.pack("<3q", -1, 0, 7))
    + record(F32, [1, 2], ONE_F32 * 2)
    + record(4, [3], struct.pack("<3q", 5, 6, 7)),
    "sixteen-dims": header(1, 1) + record(0, [1] * 16, b"\x07"),
    "max-dim": header(1, 1) + record(0, [2**31 - 1, 0], b""),
}

HUGE_F32 = header(1, 1) + record(F32, [2**31 - 1] * 3, b"", nbytes=0)

INVALID: dict[str, bytes] = {
    "short-header--empty": b"",
    "short-header--15-bytes": header(1, 1)[:15],
    "bad-magic--pbtx": header(1, 1, magic=b"PBTX") + record(F32, [], ONE_F32),
    "bad-version--2": header(1, 1, version=2) + record(F32, [], ONE_F32),
    "zero-count--issue-15-16-bytes": header(0xFFFFFFFF, 0),
    "zero-count--with-junk": header(0xFFFFFFFF, 0) + b"junk" * 4,
    # Found by fuzz_tensor_file: no sets of 0x5b0000 tensors read back as no sets of 0 tensors.
    "zero-count--fuzz-no-sets-of-5963776": bytes.fromhex("504254460100000000000000") + bytes.fromhex("00005b00"),
    "counts-exceed-bytes--max-counts": header(0xFFFFFFFF, 0xFFFFFFFF) + bytes(64),
    "counts-exceed-bytes--one-record-short": header(2, 1) + record(F32, [], ONE_F32)[:-4] + bytes(7),
    "truncated-record--3-bytes": header(1, 2) + record(0, [], b"\x01") + bytes([F32, 0, 0]) + bytes(8),
    "truncated-record--dims-cut": header(1, 2) + record(0, [], b"\x01") + record(0, [1, 1, 1], b"\x01")[:20],
    "reserved-nonzero--1": header(1, 1) + record(F32, [], ONE_F32, reserved=1),
    "unknown-dtype--8": header(1, 1) + record(8, [], bytes(4)),
    "unknown-dtype--255": header(1, 1) + record(255, [], bytes(4)),
    "too-many-dims--17": header(1, 1) + record(0, [1] * 17, b"\x01"),
    "too-many-dims--255": header(1, 1) + struct.pack("<BBH", 0, 255, 0) + bytes(8),
    "negative-dim--minus-one": header(1, 1) + record(F32, [-1], b"", nbytes=0),
    "negative-dim--int64-min": header(1, 1) + record(F32, [2, -(2**63)], bytes(16), nbytes=16),
    "dim-too-large--2-pow-31": header(1, 1) + record(0, [2**31], b"", nbytes=0),
    "dim-too-large--int64-max": header(1, 1) + record(0, [2**63 - 1], b"", nbytes=0),
    "size-mismatch--one-byte-short": header(1, 1) + record(F32, [2], ONE_F32 + b"\x00\x00\x00", nbytes=7),
    "too-many-elements--product-wraps-64-bits": HUGE_F32,
    "too-many-elements--wrapped-product-claimed": header(1, 1)
    + record(0, [2**31 - 1, 2**31 - 1, 2**31 - 1, 8], b"", nbytes=((2**31 - 1) ** 3 * 8) % 2**64),
    "too-many-elements--zero-dim-with-huge-dims": header(1, 1) + record(F32, [2**31 - 1, 2**31 - 1, 2**31 - 1, 0], b""),
    "too-many-elements--just-over-2-pow-63": header(1, 1) + record(F32, [2**31 - 1, 2**30 + 1, 0], b""),
    "size-mismatch--claims-2-pow-64-minus-1": header(1, 1) + record(F32, [2], bytes(8), nbytes=2**64 - 1),
    "truncated-data--last-byte": header(1, 1) + record(F32, [2], ONE_F32 * 2)[:-1],
    "truncated-data--claims-300-mb": header(1, 1) + record(F32, [75_000_000], b"", nbytes=300_000_000) + bytes(8),
    "trailing-bytes--one": header(1, 1) + record(F32, [], ONE_F32) + b"\x00",
    "trailing-bytes--second-file": (header(1, 1) + record(F32, [], ONE_F32)) * 2,
}


def main() -> None:
    for folder, cases in (("valid", VALID), ("invalid", INVALID)):
        (HERE / folder).mkdir(exist_ok=True)
        for name, blob in cases.items():
            (HERE / folder / f"{name}.pbtf").write_bytes(blob)
    print(f"wrote {len(VALID)} valid and {len(INVALID)} invalid tensor files under {HERE}")


if __name__ == "__main__":
    main()
