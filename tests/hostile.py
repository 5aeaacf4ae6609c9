"""Hostile captures, trees and runs: what a stranger can hand ps_mem (issue 10).

Captures.  A capture is what `ps_mem --capture FILE` writes: a gzip-compressed
tar of a JSON manifest (ps_mem-capture.json) and the proc files it read,
under proc/.  The hostile ones are made from a seed capture written by
ps_mem.py itself, so that they follow its format as that changes: the seed
is read into a list of members, changed, and written back.

    members = read_members(seed)
    write_capture(path, with_manifest(members, dict(manifest_of(members), time=1e30)))
    write_capture(path, members, cut=4096)  # the tar cut short, the gzip closed

Huge members never exist whole, in memory or on disk.  A member's data may
be a Stream of pieces, and a piece may be a Repeat: a chunk compressed once,
after a full flush, whose compressed block is then written as many times as
it repeats.  So a 4 GiB member of zeros costs 4 MiB on disk and one MiB of
memory here (write_gzip()).

Trees.  Small helpers that make a fixture tree (tests/procfs_builder.py)
hostile in place: fifo(), symlink(), a stand-in for /etc/shadow, pid
directories whose names Python calls digits, garbled numbers, a huge smaps,
a cgroup path that spoofs another, names with Unicode format characters.

Bounded runs.  run_bounded() runs ps_mem.py as a command under an
address-space limit (512 MiB) and a wall-clock timeout, and tells its exit
status, output, peak RSS and time; a run that passes the timeout is killed
with its whole process group.
"""

import contextlib
import copy
import gzip
import io
import itertools
import json
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path
from typing import (
    Callable, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union,
)

from tests.harness import Result, child_env, ours_command

MIB = 1 << 20
GIB = 1 << 30
MANIFEST = "ps_mem-capture.json"

# ----------------------------------------------------------------------------
# Bounded runs of ps_mem.py
# ----------------------------------------------------------------------------

LIMIT_AS = 512 * MIB
# Far above what any of these runs needs once ps_mem bounds its work, and
# far below what 3.14's successor took on the same inputs (issue 10).
TIMEOUT = 60.0


class Bounded(NamedTuple):
    result: Result  # status: the exit code, or -SIGNAL when killed
    timed_out: bool  # killed by us at the timeout
    seconds: float
    max_rss_kib: int  # the peak of ps_mem.py itself (not of its children)

    def describe(self) -> str:
        """One line for a failure message or a report."""
        last = self.result.err.strip().splitlines()[-1:] or [""]
        return "status %d%s, %.1f s, %d MiB RSS, stderr ends %r" % (
            self.result.status, " (timed out)" if self.timed_out else "", self.seconds,
            self.max_rss_kib // 1024, last[0][:200])


def _limits(address_space: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def run_bounded(*args: str, procfs: Optional[os.PathLike] = None,
                timeout: float = TIMEOUT, address_space: int = LIMIT_AS,
                cwd: Optional[os.PathLike] = None, prefix: Sequence[str] = (),
                python: str = sys.executable) -> Bounded:
    """`python ps_mem.py [--procfs PROCFS] ARGS` (after PREFIX, e.g. setpriv;
    on a tree or capture, as harness.ours_command() runs it)
    under RLIMIT_AS = ADDRESS_SPACE, killed with its process group after
    TIMEOUT seconds.  Output goes to files, so a huge one cannot block it."""
    cmd = list(prefix) + ours_command(procfs, args, python)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 cwd=cwd, env=child_env(), start_new_session=True,
                                 preexec_fn=_limits(address_space))
        status, rusage, timed_out = _wait(popen, timeout)
        seconds = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        result = Result(out.read(), err.read(), status)
    return Bounded(result, timed_out, seconds, rusage.ru_maxrss if rusage else 0)


def _wait(popen: subprocess.Popen, timeout: float
          ) -> Tuple[int, Optional[resource.struct_rusage], bool]:
    """Wait for POPEN with wait4 (for its rusage); at TIMEOUT, kill its group.
    Whatever it forked and left is killed too."""
    pidfd = os.pidfd_open(popen.pid)
    try:
        timed_out = not select.select([pidfd], [], [], timeout)[0]
    finally:
        os.close(pidfd)
    if timed_out:
        _kill_group(popen.pid)
    _pid, wait_status, rusage = os.wait4(popen.pid, 0)
    popen.returncode = status = os.waitstatus_to_exitcode(wait_status)
    _kill_group(popen.pid)
    return status, rusage, timed_out


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


# ----------------------------------------------------------------------------
# Capture members
# ----------------------------------------------------------------------------


class Repeat(NamedTuple):
    """CHUNK, COUNT times over, in a Stream."""

    chunk: bytes
    count: int


Piece = Union[bytes, Repeat]


class Stream(NamedTuple):
    """A member's data given as pieces (bytes and Repeats) of SIZE bytes in all."""

    size: int
    pieces: Iterable[Piece]


class Member(NamedTuple):
    info: tarfile.TarInfo
    data: Union[bytes, Stream] = b""


def member(name: str, data: Union[bytes, Stream] = b"", *, type: bytes = tarfile.REGTYPE,
           linkname: str = "", devmajor: int = 0, devminor: int = 0,
           mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.type = type
    info.linkname = linkname
    info.devmajor, info.devminor = devmajor, devminor
    info.mode = mode
    info.mtime = 1700000000
    return Member(info, data)


def read_members(path: os.PathLike) -> List[Member]:
    """The members of a capture ps_mem.py wrote (our own seed: trusted)."""
    with tarfile.open(os.fspath(path), "r:gz") as archive:
        return [Member(info, archive.extractfile(info).read() if info.isfile() else b"")
                for info in archive]


def names(members: Sequence[Member]) -> List[str]:
    return [item.info.name for item in members]


def find(members: Sequence[Member], name: str) -> int:
    for index, item in enumerate(members):
        if item.info.name == name:
            return index
    raise KeyError("no member %s in the seed (has the capture format changed?)" % name)


def manifest_of(members: Sequence[Member]) -> dict:
    data = members[find(members, MANIFEST)].data
    assert isinstance(data, bytes)
    return json.loads(data)


def replacing(members: Sequence[Member], name: str, new: Optional[Member]) -> List[Member]:
    """MEMBERS with member NAME replaced by NEW (in its place), or left out."""
    index = find(members, name)
    return list(members[:index]) + ([new] if new is not None else []) + list(members[index + 1:])


def with_data(members: Sequence[Member], name: str, data: Union[bytes, Stream]) -> List[Member]:
    item = members[find(members, name)]
    info = copy.copy(item.info)
    info.type = tarfile.REGTYPE
    return replacing(members, name, Member(info, data))


def with_manifest(members: Sequence[Member], document: Union[dict, bytes, Stream]) -> List[Member]:
    """MEMBERS with the manifest's text replaced (a dict is written as JSON)."""
    if isinstance(document, dict):
        document = json.dumps(document, indent=1, sort_keys=True).encode()
    return with_data(members, MANIFEST, document)


def data_size(item: Member) -> int:
    if not (item.info.isfile() or item.info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE)):
        return 0
    return item.data.size if isinstance(item.data, Stream) else len(item.data)


def _header(item: Member) -> bytes:
    info = copy.copy(item.info)
    info.size = data_size(item)
    if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE):
        # A raw extended header: written as it is, not made into another.
        return info.tobuf(tarfile.USTAR_FORMAT)
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


# A stand-in member whose data is raw tar stream, headers and all (see
# many_tiny_members()).
_RAW = tarfile.TarInfo("(raw tar stream)")


def tar_pieces(members: Sequence[Member], end: bool = True) -> Iterator[Piece]:
    """The tar stream of MEMBERS, as pieces; END: with the two zero blocks."""
    for item in members:
        if item.info is _RAW:
            assert isinstance(item.data, Stream)
            yield from item.data.pieces
            continue
        yield _header(item)
        size = data_size(item)
        if size:
            if isinstance(item.data, Stream):
                yield from item.data.pieces
            else:
                yield item.data
            yield bytes(-size % tarfile.BLOCKSIZE)
    if end:
        yield bytes(2 * tarfile.BLOCKSIZE)


def tar_bytes(members: Sequence[Member]) -> bytes:
    pieces = list(tar_pieces(members))
    if any(isinstance(piece, Repeat) for piece in pieces):
        raise ValueError("a huge member cannot be made into bytes")
    return b"".join(pieces)  # type: ignore[arg-type]


class Extent(NamedTuple):
    name: str
    header: int  # where its header starts in the tar stream
    data: int  # where its data starts
    end: int  # where its data ends (before the padding)


def extents(members: Sequence[Member]) -> List[Extent]:
    """Where each member lies in tar_bytes(MEMBERS)."""
    found, offset = [], 0
    for item in members:
        header = len(_header(item))
        size = data_size(item)
        found.append(Extent(item.info.name, offset, offset + header, offset + header + size))
        offset += header + size + (-size % tarfile.BLOCKSIZE)
    return found


def write_gzip(path: os.PathLike, pieces: Iterable[Piece]) -> int:
    """A gzip file of PIECES; its size.

    A Repeat is compressed once, by a compressor of its own that starts
    afresh and ends in a full flush: its block refers to nothing before it
    and ends on a byte, so it is valid wherever it is written, and written
    again.  The stream around it is full-flushed before it, so that what
    follows refers to nothing before the repeats either.  The rest is
    compressed fast: some of these streams are gigabytes."""
    crc = size = 0
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")  # no name, no mtime
        for piece in pieces:
            if isinstance(piece, Repeat):
                if not piece.count:
                    continue
                out.write(compressor.flush(zlib.Z_FULL_FLUSH))
                alone = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
                block = alone.compress(piece.chunk) + alone.flush(zlib.Z_FULL_FLUSH)
                for _ in range(piece.count):
                    out.write(block)
                    crc = zlib.crc32(piece.chunk, crc)
                size += len(piece.chunk) * piece.count
            elif piece:
                out.write(compressor.compress(piece))
                crc = zlib.crc32(piece, crc)
                size += len(piece)
        out.write(compressor.flush())
        out.write(struct.pack("<II", crc, size & 0xFFFFFFFF))
    return os.path.getsize(path)


def write_capture(path: os.PathLike, members: Sequence[Member], cut: Optional[int] = None) -> Path:
    """MEMBERS as a capture at PATH.  CUT: only the first CUT bytes of the
    tar stream, in a gzip stream closed properly, which is what an
    interrupted tarfile writer leaves (its gzip file is closed on the way
    out, the tar never finished)."""
    if cut is None:
        write_gzip(path, tar_pieces(members))
    else:
        write_gzip(path, [tar_bytes(members)[:cut]])
    return Path(path)


def cut_file(path: os.PathLike, size: int, to: os.PathLike) -> Path:
    """The first SIZE bytes of file PATH, at TO: a write stopped dead
    (SIGKILL, a full disk), the gzip stream without its end."""
    with open(path, "rb") as source:
        Path(to).write_bytes(source.read(size))
    return Path(to)


# ----------------------------------------------------------------------------
# Hostile captures
# ----------------------------------------------------------------------------


def manifest_as(members: Sequence[Member], kind: str) -> List[Member]:
    """The manifest's member as a directory, a FIFO, a device, a symlink
    (to a member, to itself, out of the archive) or a hard link."""
    kinds = {
        "directory": dict(type=tarfile.DIRTYPE),
        "fifo": dict(type=tarfile.FIFOTYPE),
        "char device": dict(type=tarfile.CHRTYPE, devmajor=1, devminor=5),
        "symlink to a member": dict(type=tarfile.SYMTYPE, linkname="proc/sys/kernel/osrelease"),
        "symlink to itself": dict(type=tarfile.SYMTYPE, linkname=MANIFEST),
        "symlink out of the archive": dict(type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        "hard link to a member": dict(type=tarfile.LNKTYPE, linkname="proc/sys/kernel/osrelease"),
        "hard link to itself": dict(type=tarfile.LNKTYPE, linkname=MANIFEST),
    }
    return replacing(members, MANIFEST, member(MANIFEST, **kinds[kind]))


def nested_brackets(depth: int, inside_object: bool) -> bytes:
    """A manifest of DEPTH nested lists: the whole text, or one field's value."""
    nest = b"[" * depth + b"]" * depth
    if inside_object:
        return b'{"format": 1, "pids": [], "users": ' + nest + b"}"
    return nest


def huge_member(name: str, size: int, chunk: bytes = bytes(MIB)) -> Member:
    """Member NAME of SIZE bytes (a multiple of CHUNK's size) of CHUNK repeated."""
    if size % len(chunk):
        raise ValueError("size must be a multiple of the chunk")
    return member(name, Stream(size, [Repeat(chunk, size // len(chunk))]))


def huge_pax_header(size: int) -> Member:
    """An extended (PAX) header of SIZE bytes: one "comment" record, which
    applies to the member that follows it."""
    keyword = b" comment="
    value = size - len(str(size)) - len(keyword) - 1
    # The record's length counts its own digits; SIZE keeps the same digits.
    record_start = str(size).encode() + keyword
    pieces: List[Piece] = [record_start, Repeat(b"x" * MIB, value // MIB),
                           b"x" * (value % MIB), b"\n"]
    return member("././@PaxHeader", Stream(size, pieces), type=tarfile.XHDTYPE)


def pax_record(key: bytes, value: bytes) -> bytes:
    """One "LENGTH key=value\\n" record of a PAX extended header."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def pax_header(data: Union[bytes, Stream]) -> Member:
    """An extended (PAX) header of DATA's records, for the member after it."""
    return member("././@PaxHeader", data, type=tarfile.XHDTYPE)


def distinct_pax_headers(count: int, size: int = MIB) -> List[Member]:
    """COUNT extended headers of SIZE bytes each (about), of short records
    whose keys all differ: merged, each is a dict entry."""
    headers, key = [], 0
    for _ in range(count):
        records = []
        length = 0
        while length < size - 32:
            record = pax_record(b"k%d" % key, b"")
            records.append(record)
            length += len(record)
            key += 1
        headers.append(pax_header(b"".join(records)))
    return headers


def _json_list_pieces(numbers: Callable[[], Iterator[range]]) -> Tuple[int, Iterator[bytes]]:
    """The text of a JSON list's items from the ranges NUMBERS gives, and
    its length (worked out without the text)."""
    length = 0
    count = 0
    for part in numbers():
        for digits in range(1, 21):
            low, high = max(part.start, 10 ** (digits - 1) if digits > 1 else 0), \
                min(part.stop, 10 ** digits)
            if low < high:
                length += (high - low) * digits
                count += high - low
    length += 2 * max(count - 1, 0)  # ", " between items

    def text() -> Iterator[bytes]:
        first = True
        for part in numbers():
            for start in range(part.start, part.stop, 100000):
                chunk = ", ".join(map(str, range(start, min(start + 100000, part.stop))))
                yield (chunk if first else ", " + chunk).encode()
                first = False
    return length, text()


def manifest_with_pids(members: Sequence[Member], pids: Callable[[], Iterator[range]]
                       ) -> List[Member]:
    """The manifest's pids list made of the ranges PIDS gives (20 million
    of them cost a few MiB of memory here)."""
    document = manifest_of(members)
    document["pids"] = "@PIDS@"
    before, after = json.dumps(document, sort_keys=True).encode().split(b'"@PIDS@"')
    length, text = _json_list_pieces(pids)
    pieces = itertools.chain([before + b"["], text, [b"]" + after])
    return with_manifest(members, Stream(len(before) + len(after) + 2 + length, pieces))


def manifest_pid_repeated(members: Sequence[Member], pid: int, times: int) -> List[Member]:
    document = manifest_of(members)
    document["pids"] = list(document["pids"]) + [pid] * times
    return with_manifest(members, json.dumps(document, separators=(",", ":")).encode())


def many_tiny_members(count: int, prefix: str = "proc/junk") -> Member:
    """COUNT one-byte members named PREFIX/N, as raw tar stream (one
    Member); made from one header whose name and checksum are patched, so
    that a million take seconds.  Its Stream can be written once."""
    template = tarfile.TarInfo("%s/%09d" % (prefix, 0))
    template.size, template.mtime, template.mode = 1, 1700000000, 0o644
    block = bytearray(template.tobuf(tarfile.USTAR_FORMAT))
    assert len(block) == tarfile.BLOCKSIZE
    name_at = block.index(b"%s/" % prefix.encode()) + len(prefix) + 1
    block[148:156] = b" " * 8
    base_sum = sum(block) - sum(block[name_at:name_at + 9])
    data = b"x" + bytes(tarfile.BLOCKSIZE - 1)

    def pieces() -> Iterator[bytes]:
        out = bytearray()
        for number in range(count):
            digits = b"%09d" % number
            block[name_at:name_at + 9] = digits
            block[148:156] = b"%06o\0 " % (base_sum + sum(digits))
            out += block
            out += data
            block[148:156] = b" " * 8
            if len(out) >= MIB:
                yield bytes(out)
                out.clear()
        yield bytes(out)

    return Member(_RAW, Stream(2 * tarfile.BLOCKSIZE * count, pieces()))


def rollup_of_pss_lines(count: int) -> Stream:
    """An smaps_rollup of COUNT "Pss:" lines (the kernel writes one)."""
    line = b"Pss:                   1 kB\n"
    head = b"55d1c6a6b000-7ffd5b5fd000 ---p 00000000 00:00 0                          [rollup]\n"
    per_mib = MIB // len(line)
    pieces: List[Piece] = [head, Repeat(line * per_mib, count // per_mib),
                           line * (count % per_mib)]
    return Stream(len(head) + len(line) * count, pieces)


def pid_member_names(members: Sequence[Member], file: str) -> List[str]:
    """The names of the seed's members proc/PID/FILE, in order."""
    return [name for name in names(members)
            if name.startswith("proc/") and name.endswith("/" + file)
            and name[5:-len(file) - 1].isdigit()]


TRAVERSAL_NAMES = ("../../escaped-relative", "/tmp/ps_mem-hostile-escaped-absolute",
                   "proc/../../escaped-through-proc", "proc/1/../../../escaped-deep",
                   "proc/sys/kernel/../../../../escaped-kernel")


def special_member(name: str, kind: str) -> Member:
    """Member NAME as something a capture never holds: a hard link (to a
    member, to an absolute path), a device, a FIFO, a directory."""
    kinds = {
        "hard link to a member": dict(type=tarfile.LNKTYPE, linkname="proc/sys/kernel/osrelease"),
        "hard link to /etc/shadow": dict(type=tarfile.LNKTYPE, linkname="/etc/shadow"),
        "char device": dict(type=tarfile.CHRTYPE, devmajor=1, devminor=5),
        "block device": dict(type=tarfile.BLKTYPE, devmajor=7, devminor=0),
        "fifo": dict(type=tarfile.FIFOTYPE),
        "directory": dict(type=tarfile.DIRTYPE),
        "symlink to /dev/zero": dict(type=tarfile.SYMTYPE, linkname="/dev/zero"),
    }
    return member(name, **kinds[kind])


SPECIAL_KINDS = ("hard link to a member", "hard link to /etc/shadow", "char device",
                 "block device", "fifo", "directory", "symlink to /dev/zero")


# ----------------------------------------------------------------------------
# Unpacking a capture safely (for --procfs DIR runs on what a capture holds)
# ----------------------------------------------------------------------------


def unpack_safely(capture: os.PathLike, where: os.PathLike) -> Path:
    """Unpack CAPTURE's regular files and symlinks under WHERE, and nothing
    else: no absolute name, no "..", nothing under a symlink, no hard link
    or device, no member bigger than 64 MiB, nothing that the tar stream
    does not hold whole.  Returns WHERE/proc (which may not exist)."""
    root = Path(where)
    root.mkdir(parents=True, exist_ok=True)
    links = set()
    try:
        archive = tarfile.open(os.fspath(capture), "r:gz")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        return root / "proc"
    try:
        for info in archive:
            parts = info.name.split("/")
            if (info.name.startswith("/") or ".." in parts or "" in parts or "." in parts
                    or any("/".join(parts[:n]) in links for n in range(1, len(parts)))):
                continue
            target = root.joinpath(*parts)
            if not (info.isfile() or info.issym()) or info.size > 64 * MIB:
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if info.issym():
                    os.symlink(info.linkname, target)
                    links.add(info.name)
                else:
                    source = archive.extractfile(info)
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o644)
                    with os.fdopen(fd, "wb") as out:
                        out.write(source.read())
            except (OSError, ValueError):
                continue
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError):
        pass
    finally:
        archive.close()
    return root / "proc"


# ----------------------------------------------------------------------------
# Hostile trees
# ----------------------------------------------------------------------------


def fifo(path: os.PathLike) -> None:
    """PATH (a tree's file) becomes a FIFO no one writes to: open() blocks."""
    if os.path.lexists(path):
        os.unlink(path)
    os.mkfifo(path)


def symlink(path: os.PathLike, target: os.PathLike) -> None:
    """PATH (a tree's file) becomes a symlink to TARGET."""
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)


# What the stand-in for /etc/shadow holds: no line of it may be printed.
SHADOW_SECRET = "Hostile-Shadow-Secret"
SHADOW_TEXT = ("root:$6$%s$Q0aq2vPSEVHZ3x8cQ6lH1:19700:0:99999:7:::\n"
               "daemon:*:19700:0:99999:7:::\n" % SHADOW_SECRET)


def shadow_standin(directory: os.PathLike) -> Path:
    """A file of ours standing in for /etc/shadow (root's, mode 0600)."""
    path = Path(directory) / "shadow"
    path.write_text(SHADOW_TEXT)
    path.chmod(0o600)
    return path


# Names that str.isdigit() calls digits and the kernel never makes: int()
# refuses "²" and reads the others as pids ("５" is 5, "١٢" is 12).
PID_LOOKALIKES = ("²", "³⁴", "١٢", "５", "𝟗", "߁", "٣")


def garbled_number(number: bytes, how: str) -> bytes:
    """NUMBER (a field of a /proc file) made unparsable, as a broken or
    hostile proc root shows it: 40 digits, or a NUL inside."""
    if how == "40 digits":
        return b"1" * 40
    if how == "NUL inside":
        return number[:1] + b"\0" + number[1:]
    raise ValueError(how)


def huge_smaps(mappings: int) -> bytes:
    """An smaps of MAPPINGS small private mappings (4 KiB each, Pss 4 KiB),
    each with a line for every counted field and no other, the numbers not
    padded: about 100 bytes a mapping, and the most lines a parser keeps."""
    block = ("%x-%x rw-p 0 0:0 0\nPss: 4 kB\nShared_Clean: 0 kB\nShared_Dirty: 0 kB\n"
             "Private_Clean: 0 kB\nPrivate_Dirty: 4 kB\nSwap: 0 kB\nSwapPss: 0 kB\n")
    parts = []
    for index in range(mappings):
        address = 0x10000 + index * 0x2000  # a gap between: separate mappings
        parts.append(block % (address, address + 0x1000))
    return "".join(parts).encode()


# A cgroup that a user with a delegated subtree may name: \r in it, and
# what follows looks like another line of /proc/PID/cgroup.
CGROUP_SPOOF = b"0::/user.slice/x\r0::/system.slice/sshd.service\n"
CGROUP_SPOOF_SHOWN = "/user.slice/x?0::/system.slice/sshd.service"

# Unicode format characters (category Cf): bidi controls, zero-width ones,
# a byte-order mark, a soft hyphen, a tag; each would print invisibly.
FORMAT_CHARACTERS = ("\u202e", "\u202d", "\u2066", "\u200b", "\u200d", "\u200e", "\ufeff",
                     "\u00ad", "\u061c", "\U000e0001")


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def stream_bytes(stream: Stream) -> bytes:
    """A small Stream's bytes (for checks)."""
    out = io.BytesIO()
    for piece in stream.pieces:
        if isinstance(piece, Repeat):
            out.write(piece.chunk * piece.count)
        else:
            out.write(piece)
    return out.getvalue()


def garbled_field(text: bytes, key: bytes, how: str) -> bytes:
    """TEXT (smaps or smaps_rollup) with the number of its first KEY line
    garbled (see garbled_number())."""
    start = text.index(b"\n" + key + b":") + len(key) + 2
    end = text.index(b" kB\n", start)
    number = text[start:end].strip()
    padding = text[start:end][:len(text[start:end]) - len(number)]
    return text[:start] + padding + garbled_number(number, how) + text[end:]
