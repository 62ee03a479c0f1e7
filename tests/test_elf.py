"""The bundle's ELF reader on hand-made files: pure bytes in, facts or one clear error out."""

import struct

from pocketbench.devices.bundle.elf import parse_elf

_DT_NEEDED, _PT_DYNAMIC = 1, 2


def _elf_with_dynamic(entries: list[tuple[int, int]]) -> bytes:
    """A 64-bit little-endian x86_64 ELF: header, one PT_DYNAMIC program header, its entries."""
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in [*entries, (0, 0)])
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<H", header, 18, 62)  # e_machine: x86_64
    struct.pack_into("<Q", header, 32, 64)  # e_phoff
    struct.pack_into("<HH", header, 54, 56, 1)  # e_phentsize, e_phnum
    program = struct.pack("<IIQQQQQQ", _PT_DYNAMIC, 0, 64 + 56, 0, 0, len(dynamic), len(dynamic), 8)
    return bytes(header) + program + dynamic


def test_needed_entries_without_a_string_table_name_no_libraries():
    info = parse_elf(_elf_with_dynamic([(_DT_NEEDED, 1)]), "odd.so")
    assert (info.machine, info.needed, info.runpath, info.interpreter) == ("x86_64", (), (), None)
