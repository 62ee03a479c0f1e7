"""Just enough ELF reading to assemble a runner bundle: machine, loader, needed libraries, .comment.

Pure functions over bytes (64-bit little-endian ELF only: aarch64 and x86_64, the two ABIs the
bundle targets), so the bundle builder needs no binutils and the parser is tested on real files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pocketbench.errors import PocketbenchError

MACHINES = {62: "x86_64", 183: "aarch64"}
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NULL, _DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 0, 1, 5, 15, 29


@dataclass(frozen=True)
class ElfInfo:
    machine: str  # x86_64 | aarch64 | em<number>
    interpreter: str | None  # PT_INTERP, e.g. /lib/ld-linux-aarch64.so.1
    needed: tuple[str, ...]  # DT_NEEDED, in order
    comment: tuple[str, ...]  # strings of the .comment section (compiler versions)
    runpath: tuple[str, ...] = ()  # DT_RUNPATH and DT_RPATH strings


def _cstr(data: bytes, offset: int) -> str:
    end = data.index(b"\0", offset)
    return data[offset:end].decode("utf-8", "replace")


def _file_offset(loads: list[tuple[int, int, int]], vaddr: int) -> int:
    for offset, start, size in loads:
        if start <= vaddr < start + size:
            return offset + vaddr - start
    raise ValueError(f"address {vaddr:#x} is in no loaded segment")


def parse_elf(data: bytes, name: str = "file") -> ElfInfo:
    """The facts the bundle needs from a 64-bit little-endian ELF file; a clear error otherwise."""
    if data[:4] != b"\x7fELF":
        raise PocketbenchError(f"{name} is not an ELF file")
    if data[4] != 2 or data[5] != 1:
        raise PocketbenchError(f"{name} is not a 64-bit little-endian ELF file")
    try:
        return _parse(data)
    except (struct.error, ValueError, IndexError) as exc:
        raise PocketbenchError(f"{name} is a damaged ELF file ({exc})") from None


def _dynamic(data: bytes) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]], int | None, str | None]:
    """(loads, dynamic entries as (tag, value), the string table's file offset, PT_INTERP)."""
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    loads: list[tuple[int, int, int]] = []
    interpreter, dynamic = None, None
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == _PT_LOAD:
            loads.append((p_offset, p_vaddr, p_filesz))
        elif p_type == _PT_INTERP:
            interpreter = _cstr(data, p_offset)
        elif p_type == _PT_DYNAMIC:
            dynamic = (p_offset, p_filesz)
    entries: list[tuple[int, int]] = []
    if dynamic is not None:
        offset, size = dynamic
        for pos in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == _DT_NULL:
                break
            entries.append((tag, value))
    strtab = next((_file_offset(loads, v) for t, v in entries if t == _DT_STRTAB), None)
    return loads, entries, strtab, interpreter


def _parse(data: bytes) -> ElfInfo:
    (machine,) = struct.unpack_from("<H", data, 18)
    shoff = struct.unpack_from("<Q", data, 40)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    _, entries, strtab, interpreter = _dynamic(data)
    # Without a string table there are no names (and no offsets to add them to).
    strings = {
        t: [_cstr(data, strtab + v) for tag, v in entries if tag == t] if strtab is not None else []
        for t in (_DT_NEEDED, _DT_RUNPATH, _DT_RPATH)
    }
    return ElfInfo(
        MACHINES.get(machine, f"em{machine}"),
        interpreter,
        tuple(strings[_DT_NEEDED]),
        _comment(data, shoff, shentsize, shnum, shstrndx),
        tuple(strings[_DT_RUNPATH] + strings[_DT_RPATH]),
    )


def with_runpath(data: bytes, runpath: str, name: str = "file") -> bytes:
    """`data` with every DT_RUNPATH/DT_RPATH string overwritten in place by `runpath` (which must
    not be longer). A bundle's files must not search the build machine's folders on a phone."""
    parse_elf(data, name)
    _, entries, strtab, _ = _dynamic(data)
    out = bytearray(data)
    for tag, value in entries:
        if tag in (_DT_RUNPATH, _DT_RPATH) and strtab is not None:
            start = strtab + value
            old = data.index(b"\0", start) - start
            new = runpath.encode()
            if len(new) > old:
                raise PocketbenchError(f"{name}: cannot shorten its runpath to {runpath!r} (only {old} bytes)")
            out[start : start + old] = new + b"\0" * (old - len(new))
    return bytes(out)


def _comment(data: bytes, shoff: int, shentsize: int, shnum: int, shstrndx: int) -> tuple[str, ...]:
    if not shoff or shstrndx >= shnum:
        return ()
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names_offset = headers[shstrndx][4]
    for sh_name, _, _, _, sh_offset, sh_size in headers:
        if _cstr(data, names_offset + sh_name) == ".comment":
            raw = data[sh_offset : sh_offset + sh_size]
            return tuple(dict.fromkeys(s.decode("utf-8", "replace") for s in raw.split(b"\0") if s))
    return ()
