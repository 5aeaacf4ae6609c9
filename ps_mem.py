#!/usr/bin/env python3
"""ps_mem: how much RAM each *program* uses, not each process.

All processes running the same executable are summed into one row:

    Private  +   Shared  =  RAM used   Program

Private is memory only that program's processes map.  Shared is their
proportional share (PSS) of memory mapped by other processes too: a page
mapped by four processes counts a quarter to each.  Because the shares add
up, the rows sum to a meaningful total of RAM in use.

Accuracy depends on the kernel (see accuracy()):
  * PSS (smaps, Linux 2.6.23 and later): exact to within the kernel's
    truncation of each Pss line to whole KiB, for which 0.5 KiB is added
    back per line, the average error.
  * smaps without Pss: Shared is each process's Shared_* sum, and a program
    gets the largest of its processes' values: slightly over-estimated.
  * no smaps at all: statm's shared pages, over-estimated; on 2.6.1 to 2.6.9
    statm's shared column is the whole file-backed extent, so it is ignored.
Programs that use CLONE_VM without CLONE_THREAD share one address space;
where the kernel cannot say which processes do, a program all of whose
processes show the same memory file is counted once.

This is a rewrite of ps_mem 3.14 by Pádraig Brady, whose output, warnings and
exit statuses it keeps byte for byte when none of its own options is given.

The file reads in the order data flows.  Each section uses only the
sections above it, but for the last, which the others reach through the
small interface its heading describes:

  Preamble             the version; Record, the base of every record
  1. Errors            ProcessGone: leave this process out
  2. Proc access       ProcFS and its Reading (what may be done with a proc
                       root); Snapshot, a capture read back
  3. Parsers           text from /proc in, values out
  4. Records           what the stages pass each other: Options,
                       ProcessSample, Scan, ProgramUsage, Report, Accuracy
  5. Collection        pid -> sample by one reader; which processes share an
                       address space; accuracy; a capture taken
  6. Aggregation       samples -> report, without reading anything: the
                       groupings' rows, the CLONE_VM rule, sorting, totals
  7. Output            one function per view, each returning text
  8. Command line      arguments -> Options; main() owns stdout, stderr,
                       signals and exit statuses
  9. Child processes   forked readers, kcmp's helper, their messages

A new grouping is a name worked out in Namer (5) and a choice of
--group-by (8); a new view is a function in Output (7) that run() (8)
calls.

Licence: LGPL-2.1-or-later (see LICENSE).
"""

import errno
import os
import sys
import time

VERSION = "4.0"

# typing is imported for the type checker only: annotations that name its
# types are quoted, and ps_mem pays no import of typing at each start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import (IO, Any, Callable, Dict, FrozenSet, Hashable, Iterable, Iterator, List,
                        NamedTuple as Record, NoReturn, Optional, Set, Tuple)

    KernelVersion = Tuple[int, int, int]  # (major, minor, patch)
    # pid -> its address space (any hashable that is equal for the processes
    # of one space), for processes known to share theirs; every other
    # process is alone in its own.
    AddressSpaceMap = Dict[int, Hashable]
else:
    try:
        from _collections import _tuplegetter  # what namedtuple's fields are
    except ImportError:  # pragma: no cover - CPython 3.6 and 3.7
        def _tuplegetter(index, doc):
            return property(lambda record: record[index], doc=doc)

    class _RecordType(type):
        """Makes each class derived from Record a tuple of its annotated
        fields, as typing.NamedTuple does (which the type checker is shown
        instead): fields by name, trailing ones with defaults, _fields,
        _replace() and a repr.  Not NamedTuple itself, which would import
        typing and collections at every start."""

        def __new__(mcs, name, bases, namespace):
            if not bases:
                return super().__new__(mcs, name, bases, namespace)
            fields = tuple(namespace.get("__annotations__", ()))
            defaults = {field: namespace[field] for field in fields if field in namespace}
            size = len(fields)
            new_tuple = tuple.__new__

            def __new__(record_class, *values, **named):
                if len(values) != size or named:
                    values = _record_values(name, fields, defaults, values, named)
                return new_tuple(record_class, values)

            def _replace(self, **changes):
                values = [changes.pop(field, value) for field, value in zip(fields, self)]
                return __new__(type(self), *values, **changes)

            def __repr__(self):
                return "%s(%s)" % (name, ", ".join("%s=%r" % pair for pair in zip(fields, self)))

            # The class's own methods, then what makes it a record.
            body = {key: value for key, value in namespace.items()
                    if key not in fields and key not in ("__annotations__", "__qualname__")}
            body.update({"__slots__": (), "_fields": fields, "__new__": __new__,
                         "_replace": _replace, "__repr__": __repr__, "__getnewargs__": tuple})
            for index, field in enumerate(fields):
                body[field] = _tuplegetter(index, field)
            return type(name, (tuple,), body)

    class Record(metaclass=_RecordType):
        pass

    def _record_values(name, fields, defaults, values, named):
        """A record's values from its arguments, taken as a function with
        those parameters would take them; TypeError where they do not fit."""
        if not named and len(fields) - len(defaults) <= len(values) < len(fields):
            return values + tuple(defaults[field] for field in fields[len(values):])
        if len(values) > len(fields):
            raise TypeError("%s takes %d values, not %d" % (name, len(fields), len(values)))
        given = dict(zip(fields, values))
        for field, value in named.items():
            if field not in fields or field in given:
                raise TypeError("%s: unexpected or repeated value for %r" % (name, field))
            given[field] = value
        missing = [field for field in fields if field not in given and field not in defaults]
        if missing:
            raise TypeError("%s: missing %s" % (name, ", ".join(missing)))
        return tuple(given[field] if field in given else defaults[field] for field in fields)


# ----------------------------------------------------------------------------
# 1. Errors: what leaves a process out, and how a message quotes a value
# ----------------------------------------------------------------------------


class NotData(OSError):
    """A file of a tree that is not data to read: a link, a FIFO, a device
    or a directory where a file should be, or one past the size bound."""


class ProcessGone(Exception):
    """A process to leave out: it exited, is a kernel thread or a zombie,
    cannot be read, or what it shows cannot be parsed.

    Raised only while reading one pid's files; nothing outside a pid's
    directory is ever skipped this way.  `denied` tells a process we were
    not allowed to read (hidepid, another user's process, a container's
    pid 1) from one that is simply gone, and `unparsable` one whose files
    are not what the kernel writes: only those two are reported.
    """

    def __init__(self, pid: int, error: "Optional[OSError]" = None,
                 unparsable: bool = False) -> None:
        super().__init__(pid)
        self.denied = error is not None and error.errno in (errno.EACCES, errno.EPERM)
        self.unparsable = unparsable or isinstance(error, NotData)


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def escaped(text: str) -> str:
    """TEXT for a message: one line, showing what it holds.  Control and
    format characters become escapes (\\n, \\x1b, \\u202e), and so do
    bytes that were not UTF-8 (\\xff); a backslash is doubled only where
    something is escaped, so that a plain value reads as it was typed."""
    if text.isprintable():
        return text
    import unicodedata

    pieces = []
    for char in text:
        code = ord(char)
        category = unicodedata.category(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode() could not decode
            pieces.append("\\x%02x" % (code - 0xDC00))
        elif category in ("Cc", "Cf", "Cs") or char == "\\":
            pieces.append(_ESCAPES.get(char) or
                          ("\\x%02x" % code if code < 0x100 else "\\u%04x" % code))
        else:
            pieces.append(char)
    return "".join(pieces)



# ----------------------------------------------------------------------------
# 2. Proc access: every read of a proc root, a directory or a capture
# ----------------------------------------------------------------------------


class Reading(Record):
    """What may be done with a proc root: each field one decision, made in
    one place (Reading.of()), for its own reason."""

    # kcmp(2) may be asked which processes share an address space.  It
    # takes pids as this process sees them, so only the live /proc of our
    # own pid namespace names the processes it would be asked about.
    kcmp: bool
    # The reading may be shared by forked readers (see reader_count()): the
    # kernel builds different processes' smaps_rollup on several CPUs at
    # once, while a tree's files are only copied from the page cache.
    fork_readers: bool
    # Every file 3.14 reads is read, statm and the command line included,
    # so that a tree lacking one leaves the process out as 3.14 does.  The
    # kernel makes all of them for every process that has an exe link, so
    # the live /proc needs fewer reads for the same answer.
    as_3_14: bool
    # status's Name is read from comm and PPid from stat, both cheaper for
    # the kernel to make.  They are made from the same task as status, so
    # they agree on the live /proc; a tree need not have them, or may have
    # them disagree with its status.
    names_from_comm: bool
    # 3.14 wants root for the live /proc without -p: other users' memory
    # files are unreadable.  A tree's files are whoever's they are.
    root_only: bool
    # The root's files are data, from whoever made the tree: each is opened
    # without following links, read only if it is a regular file, up to a
    # bound, and a process whose files cannot be parsed is reported.  The
    # live /proc's files are the kernel's, and one that cannot be parsed
    # is a process that exited while it was read.
    as_data: bool = True

    @staticmethod
    def of(root: str) -> "Reading":
        """How the proc root at ROOT is read: as the live /proc of this pid
        namespace (whose `self` is this process), else as a tree."""
        try:
            live = os.path.samefile(root, default_proc_root())
            ours = live and os.readlink(os.path.join(root, "self")) == str(os.getpid())
        except OSError:
            live = ours = False
        if not live:
            return TREE
        return LIVE if ours else LIVE._replace(kcmp=False)


LIVE = Reading(kcmp=True, fork_readers=True, as_3_14=False, names_from_comm=True,
               root_only=True, as_data=False)
TREE = Reading(kcmp=False, fork_readers=False, as_3_14=True, names_from_comm=False,
               root_only=False, as_data=True)


_CHUNK = 65536
_FIRST_READ = 4096


def _read_file(path: str, one_record: bool = False) -> bytes:
    """The whole file, with the fewest system calls and objects: /proc files
    are made anew on each read, so most of a run is spent here.

    ONE_RECORD: the kernel makes the file as one record (status, statm,
    cmdline, smaps_rollup; regular files too), so a read that returns less
    than asked has reached the end.  smaps is made a mapping at a time and
    returns short reads long before its end.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        # A record is most often under a page: asking for more would make
        # each read allocate (and free) a large buffer.
        first = _FIRST_READ if one_record else _CHUNK
        data = os.read(fd, first)
        if one_record and len(data) < first:
            return data
        chunks = [data]
        while data:
            data = os.read(fd, _CHUNK)
            chunks.append(data)
        return b"".join(chunks)
    finally:
        os.close(fd)


# Files the kernel makes as a single record (see _read_file).
_ONE_RECORD = frozenset(("status", "statm", "cmdline", "smaps_rollup", "cgroup", "stat", "comm"))

# The largest file of a tree that is read.  Far above any file a kernel
# makes for a process but smaps of one with tens of thousands of mappings.
_MAX_TREE_FILE = 64 << 20

# O_PATH: a directory is walked through, as a path would be, with no need
# to read it (Linux; elsewhere it must be readable).
_DIRECTORY_FLAGS = (getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW
                    | os.O_CLOEXEC)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open_in_tree(root: str, relative: str, flags: int) -> int:
    """ROOT/RELATIVE opened with FLAGS, no part of RELATIVE a symbolic link
    (ROOT itself may be one: the user named it).  OSError as os.open()."""
    *directories, last = relative.split("/")
    fd = os.open(root, _DIRECTORY_FLAGS & ~os.O_NOFOLLOW)
    try:
        for directory in directories:
            inner = os.open(directory, _DIRECTORY_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
        return os.open(last, flags, dir_fd=fd)
    finally:
        os.close(fd)


def _read_tree_file(root: str, relative: str) -> bytes:
    """A tree's file as data (see Reading.as_data); NotData where it is not
    a regular file of at most _MAX_TREE_FILE bytes."""
    import stat

    try:
        fd = _open_in_tree(root, relative, _FILE_FLAGS)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENXIO):
            raise NotData(error.errno, "not a file ps_mem reads", relative) from error
        raise
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise NotData(errno.EINVAL, "not a regular file", relative)
        # A file's size, where it has one (a proc file says 0), is asked for
        # at once, and one byte more, to see the end.
        ask = min(status.st_size, _MAX_TREE_FILE) + 1 if status.st_size else _CHUNK
        chunks: List[bytes] = []
        total = 0
        while True:
            data = os.read(fd, ask)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
            total += len(data)
            if total > _MAX_TREE_FILE:
                raise NotData(errno.EFBIG, "larger than %d MiB" % (_MAX_TREE_FILE >> 20),
                              relative)
            ask = _CHUNK
    finally:
        os.close(fd)


def _unescape_mount_path(field: bytes) -> str:
    """A mount point as mountinfo writes it: space, tab, newline and
    backslash as octal escapes ("\\040")."""
    if b"\\" not in field:
        return os.fsdecode(field)
    parts = field.split(b"\\")
    unescaped = [parts[0]]
    for part in parts[1:]:
        code = part[:3]
        if len(code) == 3 and not code.strip(b"01234567") and int(code, 8) < 256:
            unescaped.append(bytes([int(code, 8)]) + part[3:])
        else:
            unescaped.append(b"\\" + part)
    return os.fsdecode(b"".join(unescaped))


def _pid_entries(names: "Iterable[str]") -> "List[int]":
    """The entries of a proc root that are pids: ASCII digits, as the
    kernel writes a pid (str.isdigit() is true for "²" too)."""
    return [int(name) for name in names
            if 0 < len(name) <= 10 and not name.strip("0123456789")]


def default_proc_root() -> str:
    # FreeBSD's linprocfs mounts a Linux-like /proc here.
    if os.uname().sysname == "FreeBSD":
        return "/compat/linux/proc"
    return "/proc"


class ProcFS:
    """Every read of a proc root goes through here.

    The root is a directory: the live /proc, a host's /proc mounted in a
    container, or a fixture tree; READING says how it may be read.  Reads
    of a pid's files turn every OS error into ProcessGone: the process may
    exit between any two reads, and on some kernels smaps_rollup answers
    ESRCH for a pid that is still listed.
    """

    def __init__(self, root: str, reading: "Optional[Reading]" = None) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")
        self.reading = Reading.of(root) if reading is None else reading

    def path(self, *parts: object) -> str:
        return os.path.join(self.root, *(str(part) for part in parts))

    def _read(self, relative: str, one_record: bool = False) -> bytes:
        if self.reading.as_data:
            return _read_tree_file(self.root, relative)
        return _read_file(self._prefix + relative, one_record)

    def read_global(self, name: str) -> bytes:
        """A file outside any pid directory; OSError propagates."""
        return self._read(name)

    def read(self, pid: int, name: str) -> bytes:
        try:
            return self._read("%d/%s" % (pid, name), name in _ONE_RECORD)
        except OSError as error:
            raise ProcessGone(pid, error) from error

    def read_optional(self, pid: int, name: str) -> "Optional[bytes]":
        """Like read(), but None when the file does not exist at all."""
        try:
            return self._read("%d/%s" % (pid, name), name in _ONE_RECORD)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ProcessGone(pid, error) from error

    def readlink(self, pid: int, name: str) -> str:
        # ENOENT here is how a kernel thread (no exe) or a gone pid answers.
        try:
            if self.reading.as_data:
                directory = _open_in_tree(self.root, str(pid), _DIRECTORY_FLAGS)
                try:
                    return os.readlink(name, dir_fd=directory)
                finally:
                    os.close(directory)
            return os.readlink("%s%d/%s" % (self._prefix, pid, name))
        except OSError as error:
            raise ProcessGone(pid, error) from error

    def exists(self, pid: int, name: str) -> bool:
        """Whether the pid has a file NAME (a regular one, in a tree)."""
        if not self.reading.as_data:
            return os.path.exists(self.path(pid, name))
        import stat

        try:
            directory = _open_in_tree(self.root, str(pid), _DIRECTORY_FLAGS)
        except OSError:
            return False
        try:
            return stat.S_ISREG(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
        except OSError:
            return False
        finally:
            os.close(directory)

    def pids(self) -> "List[int]":
        """The pid entries, in the directory's own order (which decides the
        order of rows with equal RAM, as in 3.14)."""
        return _pid_entries(os.listdir(self.root))

    def self_pid(self) -> "Optional[int]":
        """The pid the root's `self` entry names: ps_mem itself on the live
        /proc, the capturing process in a saved tree."""
        try:
            target = os.readlink(self.path("self"))
        except OSError:
            return None
        target = os.path.basename(target)
        return int(target) if target.isdigit() else None

    def path_exists(self, path: str) -> bool:
        """Whether a path named by a process still exists on this system
        (used to tell an updated executable from a deleted one)."""
        return os.path.exists(path)

    def user_name(self, uid: int) -> str:
        """The name of a uid, or the number where it has none."""
        import pwd

        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    def recorded_address_spaces(self) -> "Optional[AddressSpaceMap]":
        """Which processes share an address space, as recorded when the
        root was saved; None where nothing was recorded."""
        return None

    def hiding_option(self) -> "Optional[Tuple[str, str]]":
        """(root, option) where the root is a proc mount whose options hide
        other users' processes from this one (hidepid=, subset=pid: root
        sees them all); None elsewhere.  Those processes are simply absent,
        so nothing else would tell that the totals are not whole."""
        if os.geteuid() == 0:
            return None
        try:
            mounts = _read_file("/proc/self/mountinfo")
            where = os.path.realpath(self.root)
        except OSError:
            return None
        found = None
        for line in mounts.split(b"\n"):  # the last mount at a point is the one seen
            mount, _, superblock = line.partition(b" - ")
            fields, options = mount.split(), superblock.split()
            if len(fields) < 5 or options[:1] != [b"proc"] or len(options) < 3:
                continue
            if _unescape_mount_path(fields[4]) != where:
                continue
            found = None
            for option in options[2].decode("ascii", "replace").split(","):
                if (option.startswith("hidepid=") and option not in ("hidepid=0", "hidepid=off")
                        or option == "subset=pid"):
                    found = (self.root, option)
        return found

    def time(self) -> float:
        """When the sample is taken (a capture answers when it was)."""
        return time.time()


# A capture (--capture FILE) is a gzip-compressed tar: first the manifest,
# then the proc root's files under proc/, then an end record that counts
# them, so that a capture cut short is known for one.  It holds every file
# any option reads, per pid, and statm, which 3.14 reads too (a capture is
# read back as a tree is), whatever the capturing run's options, so that a
# later run with other options answers as a live run with them would have;
# and nothing else (no environ, no memory contents).
_CAPTURED_FILES = ("cmdline", "status", "smaps_rollup", "smaps", "statm", "cgroup", "stat")
# Besides the kernel's release and meminfo, which machine and which boot of
# it the capture comes from (see machine_of()): --diff matches processes by
# pid only within one boot, and compares with the live system only a
# capture of this machine.
_BOOT_ID = "sys/kernel/random/boot_id"
_HOSTNAME = "sys/kernel/hostname"
_CAPTURED_GLOBALS = ("sys/kernel/osrelease", "meminfo", _BOOT_ID, _HOSTNAME)
_MANIFEST = "ps_mem-capture.json"
_END = "ps_mem-capture.end"
_CAPTURE_FORMAT = 2

# What a capture may hold.  A capture of a large machine is far below each
# bound; each bounds what a crafted file can cost in memory and time.
_MAX_UNPACKED = 1 << 30  # bytes of tar inside the gzip stream
_MAX_KEPT = 256 << 20  # bytes of the files kept
_MAX_MEMBER = 64 << 20  # bytes of one file (as _MAX_TREE_FILE)
_MAX_MEMBERS = 2000000
_MAX_HEADER = 1 << 20  # bytes of one extended (PAX or GNU) tar header
_MAX_MANIFEST = 64 << 20
_MAX_PIDS = 1 << 22  # Linux's most (PID_MAX_LIMIT)


class Manifest(Record):
    """What a capture says of the proc root it saved, beside its files."""

    pids: "List[int]"  # in the root's order
    self_pid: "Optional[int]"  # the capturing ps_mem, left out of reports
    time: float  # when it was taken (seconds since the epoch)
    errors: "Dict[str, int]"  # file -> the errno its reading failed with
    path_exists: "Dict[str, bool]"  # deleted executables' paths then
    users: "Dict[str, str]"  # uid -> name then
    address_spaces: "Optional[AddressSpaceMap]"  # the kernel's word, if asked
    version: str = VERSION  # of the ps_mem that wrote it


class Snapshot(ProcFS):
    """A proc root held in memory: what a capture recorded, read back
    without unpacking it.  Answers exactly as the live /proc answered then,
    errors included."""

    def __init__(self, name: str, files: "Dict[str, bytes]", links: "Dict[str, str]",
                 manifest: Manifest) -> None:
        super().__init__(name, TREE)
        self.files = files
        self.links = links
        self.manifest = manifest

    def _error(self, relative: str) -> OSError:
        code = self.manifest.errors.get(relative, errno.ENOENT)
        return OSError(code, os.strerror(code), relative)

    def read_global(self, name: str) -> bytes:
        if name in self.files:
            return self.files[name]
        raise self._error(name)

    def read(self, pid: int, name: str) -> bytes:
        relative = "%d/%s" % (pid, name)
        if relative in self.files:
            return self.files[relative]
        raise ProcessGone(pid, self._error(relative))

    def read_optional(self, pid: int, name: str) -> "Optional[bytes]":
        relative = "%d/%s" % (pid, name)
        if relative not in self.files and relative not in self.manifest.errors:
            return None
        return self.read(pid, name)

    def readlink(self, pid: int, name: str) -> str:
        relative = "%d/%s" % (pid, name)
        if relative in self.links:
            return self.links[relative]
        raise ProcessGone(pid, self._error(relative))

    def exists(self, pid: int, name: str) -> bool:
        return "%d/%s" % (pid, name) in self.files

    def pids(self) -> "List[int]":
        return list(self.manifest.pids)

    def self_pid(self) -> "Optional[int]":
        return self.manifest.self_pid

    def path_exists(self, path: str) -> bool:
        return self.manifest.path_exists.get(path, False)

    def user_name(self, uid: int) -> str:
        return self.manifest.users.get(str(uid), str(uid))

    def recorded_address_spaces(self) -> "Optional[AddressSpaceMap]":
        return self.manifest.address_spaces

    def time(self) -> float:
        return self.manifest.time


class BadCapture(ValueError):
    """Why a file is not a usable capture."""


def load_capture(path: str) -> Snapshot:
    """Read a capture file: OSError where it cannot be read, BadCapture
    where it is not a whole capture of this format.  Only the files the
    manifest names are kept; the rest is read past, within the bounds."""
    with open(path, "rb") as file:
        stream = _Unpacked(file)
        members = _TarMembers(stream)
        first = members.next()
        if first is None or first[0] != _MANIFEST:
            raise BadCapture("it does not start with %s" % _MANIFEST)
        if first[1] != "file":
            raise BadCapture("its %s is not a file" % _MANIFEST)
        if first[3] > _MAX_MANIFEST:
            raise BadCapture("its manifest is larger than %d MiB" % (_MAX_MANIFEST >> 20))
        manifest = _parse_manifest(members.data())
        wanted = frozenset(manifest.pids)
        files: Dict[str, bytes] = {}
        links: Dict[str, str] = {}
        count = size = kept = 0
        while True:
            member = members.next()
            if member is None:
                raise BadCapture("it is cut short: no end record (%d files read)" % count)
            name, kind, target, length = member
            if name == _END:
                break
            count += 1
            size += length
            if count > _MAX_MEMBERS:
                raise BadCapture("it holds more than %d files" % _MAX_MEMBERS)
            relative = name[len("proc/"):] if name.startswith("proc/") else None
            if relative is None or not _named(relative, kind, wanted):
                continue  # not named by the manifest: not kept
            if relative in files or relative in links:
                raise BadCapture("it holds %s twice" % escaped(name))
            if kind == "link":
                links[relative] = target
                continue
            if length > _MAX_MEMBER:
                raise BadCapture("its %s is larger than %d MiB"
                                 % (escaped(name), _MAX_MEMBER >> 20))
            kept += length
            if kept > _MAX_KEPT:
                raise BadCapture("its files come to more than %d MiB" % (_MAX_KEPT >> 20))
            files[relative] = members.data()
        if kind != "file" or length > 4096:
            raise BadCapture("its end record is not one")
        _check_end(members.data(), count, size)
        stream.finish()
    return Snapshot(path, files, links, manifest)


def _named(relative: str, kind: str, pids: "FrozenSet[int]") -> bool:
    """Whether the manifest names proc/RELATIVE, a file or a link KIND."""
    if relative in _CAPTURED_GLOBALS:
        return kind == "file"
    pid, _, name = relative.partition("/")
    if not pid or len(pid) > 10 or pid.strip("0123456789") or int(pid) not in pids:
        return False
    return kind == "link" if name == "exe" else kind == "file" and name in _CAPTURED_FILES


def _check_end(data: bytes, count: int, size: int) -> None:
    import json

    try:
        end = json.loads(data.decode("ascii"))
    except (ValueError, UnicodeError, RecursionError) as error:
        raise BadCapture("its end record is not JSON") from error
    if not isinstance(end, dict) or end.get("files") != count or end.get("bytes") != size:
        raise BadCapture("it is not whole: %d files of %d bytes where its end record says %s"
                         % (count, size, escaped(repr(end))[:200]))


class _Unpacked:
    """The bytes a gzip file unpacks to, read as they are asked for and at
    most _MAX_UNPACKED of them; BadCapture for a file that is not gzip, is
    damaged, or ends early."""

    def __init__(self, file: "IO[bytes]") -> None:
        import zlib

        self._file = file
        self._zlib = zlib
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._buffer = bytearray()
        self._start = 0  # of what is not yet read in _buffer
        self._unpacked = 0

    def _more(self) -> bool:
        """Unpack a little more; False at the end of the data."""
        inflate = self._inflate
        if inflate.eof:
            rest = inflate.unused_data or self._file.read(_CHUNK)
            if not rest:
                return False
            inflate = self._inflate = self._zlib.decompressobj(16 + self._zlib.MAX_WBITS)
        else:
            rest = inflate.unconsumed_tail or self._file.read(_CHUNK)
            if not rest:
                raise BadCapture("it is cut short (its gzip stream ends early)")
        try:
            # At most a chunk out at a time, however much it would unpack to.
            data = inflate.decompress(rest, _CHUNK)
        except self._zlib.error as error:
            raise BadCapture("it is not gzip data, or damaged: %s" % error) from error
        self._unpacked += len(data)
        if self._unpacked > _MAX_UNPACKED:
            raise BadCapture("it unpacks to more than %d MiB" % (_MAX_UNPACKED >> 20))
        if self._start:  # what was read goes first, at most once a chunk
            del self._buffer[:self._start]
            self._start = 0
        self._buffer += data
        return True

    def read(self, size: int) -> bytes:
        """The next SIZE bytes; BadCapture if there are not as many."""
        while len(self._buffer) - self._start < size:
            if not self._more():
                raise BadCapture("it is cut short")
        start = self._start
        self._start += size
        return bytes(self._buffer[start:start + size])

    def skip(self, size: int) -> None:
        while size:
            if self._start == len(self._buffer) and not self._more():
                raise BadCapture("it is cut short")
            step = min(size, len(self._buffer) - self._start)
            self._start += step
            size -= step

    def finish(self) -> None:
        """Read to the end of the gzip stream, whose check is then made."""
        while self._more():
            self._start = len(self._buffer)


_TAR_BLOCK = 512
# A tar header's type flag: what ps_mem keeps of each.
_TAR_KINDS = {b"0": "file", b"\0": "file", b"7": "file", b"2": "link"}


class _TarMembers:
    """The members of a tar stream (ustar, with PAX or GNU long names), as
    (name, "file" | "link" | "other", link target, size), read one at a
    time; BadCapture for anything that is not a tar archive."""

    def __init__(self, stream: _Unpacked) -> None:
        self._stream = stream
        self._size = 0  # of the current member's data
        self._unread = 0  # of its data and padding, once it is read past

    def next(self) -> "Optional[Tuple[str, str, str, int]]":
        """The next member, past the rest of this one; None at the end."""
        self._stream.skip(self._unread)
        self._unread = 0
        extended: Dict[str, str] = {}
        while True:
            header = self._stream.read(_TAR_BLOCK)
            if not header.strip(b"\0"):
                return None  # the end-of-archive block
            if _tar_number(header[148:156]) != sum(header[:148]) + 256 + sum(header[156:]):
                raise BadCapture("it is not a tar archive (a header's checksum is wrong)")
            kind, size = header[156:157], _tar_number(header[124:136])
            if kind in (b"x", b"g", b"L", b"K"):  # a header of the member that follows
                if size > _MAX_HEADER:
                    raise BadCapture("a tar header of %d bytes" % size)
                data = self._stream.read(size)
                self._stream.skip(-size % _TAR_BLOCK)
                if kind == b"x":
                    extended.update(_pax_records(data))
                elif kind == b"L":
                    extended["path"] = os.fsdecode(data.split(b"\0", 1)[0])
                elif kind == b"K":
                    extended["linkpath"] = os.fsdecode(data.split(b"\0", 1)[0])
                continue
            name = header[:100].split(b"\0", 1)[0]
            if header[257:263] == b"ustar\0" and header[345:346] != b"\0":
                name = header[345:500].split(b"\0", 1)[0] + b"/" + name
            target = header[157:257].split(b"\0", 1)[0]
            if "size" in extended:
                try:
                    size = int(extended["size"])
                except ValueError as error:
                    raise BadCapture("a tar header's size is not a number") from error
            if size < 0:
                raise BadCapture("a tar member of negative size")
            self._size, self._unread = size, size + -size % _TAR_BLOCK
            return (extended.get("path", os.fsdecode(name)), _TAR_KINDS.get(kind, "other"),
                    extended.get("linkpath", os.fsdecode(target)), size)

    def data(self) -> bytes:
        """The current member's data (its size was bounded by the caller)."""
        data = self._stream.read(self._size)
        self._unread -= self._size
        self._size = 0
        return data


def _tar_number(field: bytes) -> int:
    """A tar header's number: octal, or base-256 where its first bit is set."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    digits = field.replace(b"\0", b" ").strip()
    if not digits or digits.strip(b"01234567"):
        raise BadCapture("it is not a tar archive (a header's number is not one)")
    return int(digits, 8)


def _pax_records(data: bytes) -> "Dict[str, str]":
    """The records of a PAX extended header: "LENGTH key=value\\n" each."""
    records = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + 12)
        if space < 0 or not data[position:space].isdigit():
            raise BadCapture("it is not a tar archive (a PAX header is garbled)")
        end = position + int(data[position:space])
        record = data[space + 1:end]
        if end > len(data) or end <= space or not record.endswith(b"\n") or b"=" not in record:
            raise BadCapture("it is not a tar archive (a PAX header is garbled)")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("ascii", "replace")] = os.fsdecode(value)
        position = end
    return records


def _parse_manifest(data: bytes) -> Manifest:
    """A capture's manifest, every field checked; BadCapture naming the
    first that is not as ps_mem writes it."""
    import json

    def refuse(constant: str) -> None:
        raise ValueError("%s is not a number JSON has" % constant)

    try:
        document = json.loads(data.decode("utf-8"), parse_constant=refuse)
    except RecursionError as error:
        raise BadCapture("its manifest is nested too deeply") from error
    except (UnicodeError, ValueError) as error:
        raise BadCapture("its manifest is not JSON: %s" % escaped(str(error))[:200]) from error
    if not isinstance(document, dict):
        raise BadCapture("its manifest is not a JSON object")
    if document.get("format") != _CAPTURE_FORMAT:
        raise BadCapture("its format is %s, not %d" % (escaped(repr(document.get("format")))[:40],
                                                       _CAPTURE_FORMAT))

    def field(name: str, check: "Callable[[Any], bool]", what: str, default: "Any") -> "Any":
        value = document.get(name, default)
        if not check(value):
            raise BadCapture("its manifest's %s is not %s" % (name, what))
        return value

    def number(value: "Any", low: int, high: int) -> bool:
        return type(value) is int and low <= value < high

    def table(value: "Any", key: "Callable[[str], bool]", item: "Callable[[Any], bool]") -> bool:
        return isinstance(value, dict) and all(key(k) and item(v) for k, v in value.items())

    def decimal(text: str) -> bool:
        return 0 < len(text) <= 10 and not text.strip("0123456789")

    def space(value: "Any") -> bool:  # an address space: a pid, or ["same text", id]
        return (number(value, 0, 2 ** 32) or isinstance(value, list) and len(value) == 2
                and value[0] == "same text" and number(value[1], -2 ** 63, 2 ** 63))

    pids = field("pids", lambda value: isinstance(value, list) and len(value) <= _MAX_PIDS
                 and all(number(pid, 0, 2 ** 32) for pid in value), "a list of pids", None)
    if len(set(pids)) != len(pids):
        raise BadCapture("its manifest lists a pid twice")
    when = field("time", lambda value: type(value) in (int, float)
                 and 0 <= value < 2 ** 40, "a time", 0)
    recorded = field("address_spaces", lambda value: value is None or table(value, decimal, space),
                     "a table of address spaces", None)
    return Manifest(
        pids=pids,
        self_pid=field("self", lambda value: value is None or number(value, 0, 2 ** 32),
                       "a pid", None),
        time=float(when),
        errors=field("errors", lambda value: table(value, lambda key: True,
                                                   lambda code: number(code, 1, 4096)),
                     "a table of errno values", {}),
        path_exists=field("path_exists", lambda value: table(
            value, lambda key: True, lambda known: type(known) is bool),
            "a table of paths", {}),
        users=field("users", lambda value: table(value, decimal,
                                                 lambda name: isinstance(name, str)),
                    "a table of user names", {}),
        address_spaces=None if recorded is None else {
            int(pid): tuple(mm) if isinstance(mm, list) else mm for pid, mm in recorded.items()},
        version=field("ps_mem", lambda value: isinstance(value, str), "a version", ""))


def _manifest_json(manifest: Manifest) -> bytes:
    """MANIFEST as a capture holds it (see _parse_manifest())."""
    import json

    recorded = manifest.address_spaces
    return json.dumps({
        "format": _CAPTURE_FORMAT, "ps_mem": manifest.version, "time": manifest.time,
        "self": manifest.self_pid, "pids": manifest.pids, "errors": manifest.errors,
        "path_exists": manifest.path_exists, "users": manifest.users,
        "address_spaces": None if recorded is None else {
            str(pid): mm for pid, mm in recorded.items()},
    }, indent=1, sort_keys=True).encode("utf-8")


# ----------------------------------------------------------------------------
# 3. Parsers: text from /proc in, values out
# ----------------------------------------------------------------------------


def kernel_version(osrelease: bytes) -> "KernelVersion":
    """(major, minor, patch) of e.g. "6.1.0-13-amd64" or "2.6.9-5.EL_smp".

    Suffixes after '-' or '_' are dropped and a part that is still not a
    number counts as 0; a missing patch level is 0.
    """
    first_line = osrelease.decode("ascii", "ignore").split("\n", 1)[0]
    parts = first_line.split(".")[:3]
    parts += ["0"] * (3 - len(parts))
    numbers = []
    for part in parts:
        part = part.split("-")[0].split("_")[0]
        try:
            numbers.append(int(part))
        except ValueError:
            numbers.append(0)
    return numbers[0], numbers[1], numbers[2]


class MemoryCounters(Record):
    """Sums over a process's smaps (or smaps_rollup) lines, in KiB."""

    private: int  # Private_Clean + Private_Dirty (+ any other Private*)
    shared: int  # Shared_Clean + Shared_Dirty (+ any other Shared*)
    private_hugetlb: int
    shared_hugetlb: int
    pss: float  # with 0.5 KiB added back per Pss line
    swap: int
    swap_pss: int
    has_pss: bool
    has_swap_pss: bool


# How 3.14 classifies a line, kept exactly: the hugetlb counters are not
# part of Pss so they are kept apart; every other key starting "Private" or
# "Shared" (Private_Clean, Shared_Dirty, ...) adds to its kind; Pss must be
# exactly "Pss", since Pss_Anon, Pss_File, Pss_Dirty and the like are parts
# of it.  Any other line (mapping headers, Rss, VmFlags, keys of newer
# kernels) does not count.
_PRIVATE, _SHARED, _PRIVATE_HUGE, _SHARED_HUGE, _PSS, _SWAP, _SWAP_PSS = range(7)
_KNOWN_KEYS = {
    b"Private_Clean": _PRIVATE,
    b"Private_Dirty": _PRIVATE,
    b"Shared_Clean": _SHARED,
    b"Shared_Dirty": _SHARED,
    b"Private_Hugetlb": _PRIVATE_HUGE,
    b"Shared_Hugetlb": _SHARED_HUGE,
    b"Pss": _PSS,
    b"Swap": _SWAP,
    b"SwapPss": _SWAP_PSS,
}
# A counted line and its value; a counted line whose value is not a number
# makes the text unparsable.  The pattern starts with a newline, not ^
# under re.M, so that the regex engine skips from one newline to the next.
_COUNTER = rb"\n(Private\w*|Shared\w*|Pss|Swap|SwapPss):[ \t]*(\S*)"

# No kernel counts past this (8 ZiB in KiB); a float holds any integer
# below it exactly, so a larger number is garbage, not memory.
_MAX_KIB = 2 ** 53
# Longer numbers are refused before int() reads them: a number no kernel
# writes, and which an old CPython would take quadratic time to convert.
_MAX_DIGITS = 32


def _number(text: bytes) -> int:
    """int() of a field of /proc text; ValueError for what no kernel writes."""
    if len(text) > _MAX_DIGITS:
        raise ValueError("number too long")
    return int(text)


def _key_kind(key: bytes) -> "Optional[int]":
    """The kind of a counted line's key, as the regex above finds keys;
    None for a key that does not count."""
    kind = _KNOWN_KEYS.get(key)
    if kind is None and key.startswith((b"Private", b"Shared")):
        kind = _SHARED if key.startswith(b"Shared") else _PRIVATE
    return kind


def _counters(sums: "List[int]", pss_lines: int, swap_pss_lines: int) -> MemoryCounters:
    # Each Pss line is truncated to whole KiB: add back the average error,
    # 0.5 KiB a line (exact in a float, as 3.14's running sum is).
    return MemoryCounters(sums[_PRIVATE], sums[_SHARED], sums[_PRIVATE_HUGE],
                          sums[_SHARED_HUGE], sums[_PSS] + 0.5 * pss_lines, sums[_SWAP],
                          sums[_SWAP_PSS], pss_lines > 0, swap_pss_lines > 0)


def _smaps_by_lines(text: bytes) -> MemoryCounters:
    """The counters of any smaps text, a counted line at a time: the
    general reading, which every other must agree with."""
    import re  # only here: a kernel that makes smaps_rollup never needs it

    whole = b"\n" + text  # the first line too starts after a newline
    sums = [0, 0, 0, 0, 0, 0, 0]
    pss_lines = swap_pss_lines = 0
    for match in re.finditer(_COUNTER, whole):  # one line at a time: no list of them all
        key, number = match.groups()
        kind = _key_kind(key)
        assert kind is not None  # every key the regex finds counts
        sums[kind] += _number(number)
        if kind == _PSS:
            pss_lines += 1
        elif kind == _SWAP_PSS:
            swap_pss_lines += 1
    if max(sums) > _MAX_KIB or min(sums) < -_MAX_KIB:
        raise ValueError("smaps counter out of range")
    return _counters(sums, pss_lines, swap_pss_lines)


# The fast path, for smaps_rollup.  A rollup's layout is its text from the
# first newline on (its lines, less the address range) with every digit and
# space made "#".  The kernel pads each number to a fixed width, so the
# rollups of one kernel share a few layouts, and the texts of one layout
# differ only where the "#"s are: a rollup of a known layout is read by
# slicing its numbers out, with no search for its lines.
_NUMBER_OR_SPACE = bytes(35 if byte in b"0123456789 " else byte for byte in range(256))
_MAX_LAYOUTS = 32  # a scan's; more than a kernel makes


class RollupLayout(Record):
    """Where the counted numbers of a rollup layout are."""

    fields: "Tuple[Tuple[int, int, int], ...]"  # (start, end, kind) in the lines
    line_ends: int  # lines ending " kB\n": all of them
    pss_lines: int
    swap_pss_lines: int


def _learn_layout(text: bytes) -> "Optional[Tuple[bytes, RollupLayout]]":
    """TEXT's layout, if TEXT is a rollup as the kernel makes it: after the
    first line, only lines "Key:", a number padded with spaces, " kB", of
    keys made of letters and "_".  None for any other text.

    For such a text, slicing the numbers out reads exactly what the regex
    reads: a key of letters only is matched by the regex's `Private\\w*:`
    (or the other alternatives) exactly when _key_kind() counts it, and
    the field after the colon holds the number and the padding before it.
    Digits may run into a key only where the layout would then differ.
    """
    start = text.find(b"\n")
    if start < 0 or not text.endswith(b"\n") or text[:1] in (b"P", b"S"):
        return None  # the first line, the one a layout leaves free, must not count
    if b"\r" in text or b"\x0b" in text or b"\x0c" in text:
        return None  # whitespace int() skips before a number, and the regex does not
    lines = text[start:]
    fields = []
    pss_lines = swap_pss_lines = 0
    line_start = 1
    for line in lines[1:-1].split(b"\n"):
        key, colon, number = line.partition(b":")
        if not colon or not number.endswith(b" kB") or not key.replace(b"_", b"").isalpha():
            return None
        kind = _key_kind(key)
        if kind is not None:
            if len(number) - 3 > _MAX_DIGITS:
                return None  # the general reading refuses the longer numbers
            fields.append((line_start + len(key) + 1, line_start + len(line) - 3, kind))
            pss_lines += kind == _PSS
            swap_pss_lines += kind == _SWAP_PSS
        line_start += len(line) + 1
    layout = RollupLayout(tuple(fields), lines.count(b" kB\n"), pss_lines, swap_pss_lines)
    return lines.translate(_NUMBER_OR_SPACE), layout


def _rollup_by_layout(text: bytes, layouts: "Dict[bytes, RollupLayout]"
                      ) -> "Optional[MemoryCounters]":
    """The counters of TEXT if it is a rollup whose layout is in LAYOUTS
    (or can be learnt, see _learn_layout(), and is then added); else None,
    for the general reading.

    A layout fixes every byte but the digits and spaces, so the same keys
    start the same lines, and a counted number's field holds only digits
    and spaces: int() reads it as the regex does when it is one run of
    digits, and refuses it otherwise.  All lines still ending " kB" means
    no number ran into its unit; and the first line must not start with a
    counted key.
    """
    start = text.find(b"\n")
    if start < 0 or text[:1] in (b"P", b"S"):
        return None
    lines = text[start:]
    layout = layouts.get(lines.translate(_NUMBER_OR_SPACE))
    if layout is None:
        if len(layouts) >= _MAX_LAYOUTS:
            return None
        learnt = _learn_layout(text)
        if learnt is None:
            return None
        layouts[learnt[0]] = layout = learnt[1]
    if lines.count(b" kB\n") != layout.line_ends:
        return None
    sums = [0, 0, 0, 0, 0, 0, 0]
    try:
        for field_start, field_end, kind in layout.fields:
            sums[kind] += int(lines[field_start:field_end])
    except ValueError:
        return None
    if max(sums) > _MAX_KIB or min(sums) < -_MAX_KIB:
        return None  # for the general reading to refuse
    return _counters(sums, layout.pss_lines, layout.swap_pss_lines)


def parse_smaps(text: bytes, layouts: "Optional[Dict[bytes, RollupLayout]]" = None
                ) -> MemoryCounters:
    """Sum the counters of /proc/PID/smaps or smaps_rollup.

    Lines that do not count are ignored, so new kernel fields do no harm; a
    counted line without a number raises ValueError.

    LAYOUTS, kept by the caller from one text to the next, lets a rollup be
    read by its layout (see _rollup_by_layout()); the text alone decides
    whether it can be, and the answer is the same either way.
    """
    if layouts is not None:
        counters = _rollup_by_layout(text, layouts)
        if counters is not None:
            return counters
    return _smaps_by_lines(text)


def parse_statm(text: bytes) -> "Tuple[int, int]":
    """(resident pages, shared pages) from /proc/PID/statm."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError("statm has fewer than 3 fields")
    resident, shared = _number(fields[1]), _number(fields[2])
    if max(abs(resident), abs(shared)) > _MAX_KIB:
        raise ValueError("statm counter out of range")
    return resident, shared


def _proc_text(data: bytes) -> str:
    """Text of a /proc file as ps_mem shows it: undecodable bytes dropped,
    and \\r or \\r\\n read as a newline, as Python's text mode reads them."""
    text = data.decode("utf-8", "ignore")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def printable(text: str) -> str:
    """TEXT as the table shows it: each control character (C0 including
    tab and newline, DEL, C1) and each format character (bidi overrides,
    zero-width spaces and joiners) as "?", as ps shows the first kind.
    Whoever starts a process chooses its name: ps_mem, run as root, must
    not send a terminal escape sequences, nor show one program's row under
    another's name spelt backwards or with invisible characters."""
    # Most names hold no character of any kind Python will not print, and
    # the check is much cheaper than the translation.
    if text.isprintable():
        return text
    import unicodedata

    return "".join("?" if unicodedata.category(char) in ("Cc", "Cf") else char
                   for char in text)



def parse_status(data: bytes) -> "Tuple[str, Optional[int]]":
    """(Name, PPid) from /proc/PID/status.

    The name is the first line after "Name:\\t"; PPid is looked for in the
    first ten lines and is 0 when absent (so no parent is consulted), or
    None when the file is shorter than that: 3.14 then leaves the process
    out if it needs the parent.
    """
    if b"\r" in data:
        data = _proc_text(data).encode("utf-8")
    # The first ten lines, each with its newline where it has one.
    parts = data.split(b"\n", 10)
    lines = [part + b"\n" for part in parts[:-1]]
    if parts[-1] and len(parts) <= 10:
        lines.append(parts[-1])
    if not lines:
        raise ValueError("empty status")
    name = lines[0][6:-1].decode("utf-8", "ignore")
    for line in lines[:10]:
        if line.startswith(b"PPid:"):
            return name, _number(line[6:-1].strip())
    return name, 0 if len(lines) >= 10 else None


def parse_stat_ppid(stat: bytes) -> int:
    """The parent's pid from /proc/PID/stat: the second field after the
    name's closing parenthesis (the name itself may hold any byte)."""
    try:
        return _number(stat[stat.rindex(b")") + 2:].split(b" ", 2)[1])
    except IndexError as error:
        raise ValueError("stat too short") from error


def parse_stat_start(stat: bytes) -> int:
    """When the process started, from /proc/PID/stat: field 22, in clock
    ticks since boot.  With the pid it names one process for the whole
    boot: a pid is reused, but not at the same tick."""
    try:
        start = _number(stat[stat.rindex(b")") + 2:].split(b" ", 20)[19])
    except IndexError as error:
        raise ValueError("stat too short") from error
    if start < 0:
        raise ValueError("negative start time")
    return start


def parse_identity(data: bytes) -> "Optional[str]":
    """A boot id or host name as /proc/sys/kernel has it: its first line,
    at most 64 characters (a host name's most), None where it is empty."""
    line = data[:256].split(b"\n", 1)[0].strip().decode("utf-8", "replace")[:64]
    return line or None


def parse_uid(status: bytes) -> int:
    """The real uid from /proc/PID/status ("Uid:\treal\teffective...")."""
    start = status.index(b"\nUid:") + 5
    fields = status[start:status.index(b"\n", start)].split()
    if not fields:
        raise ValueError("status has an empty Uid line")
    return _number(fields[0])


def parse_cgroup(data: bytes) -> str:
    """The cgroup a process is in: its unified-hierarchy (v2) path, else the
    path under cgroup v1's memory controller (also where v2's is only "/"
    beside it); "-" where there is neither."""
    unified_path = memory_path = None
    # Lines end at "\n" only: the kernel takes "\r" in a cgroup's name, and
    # whoever may make cgroups could otherwise add a line of their own.
    for line in data.decode("utf-8", "ignore").split("\n"):
        hierarchy, _, rest = line.partition(":")
        controllers, colon, path = rest.partition(":")
        if not colon:
            continue
        if hierarchy == "0" and controllers == "":
            unified_path = path
        elif "memory" in controllers.split(","):
            memory_path = path
    # On a hybrid system whose unified hierarchy holds every process at its
    # root, the memory controller's path is the one that tells them apart.
    if unified_path is not None and (unified_path != "/" or memory_path is None):
        return unified_path
    return memory_path if memory_path is not None else "-"


def parse_cmdline(data: bytes) -> "List[str]":
    """The arguments of /proc/PID/cmdline, without trailing empty ones."""
    args = _proc_text(data).split("\0")
    while len(args) > 1 and args[-1] == "":
        args.pop()
    return args


# ----------------------------------------------------------------------------
# 4. Records: what the stages pass each other
# ----------------------------------------------------------------------------


class Options(Record):
    """What the command line asked for (see parse_options())."""

    split_args: bool = False  # -s, --group-by cmdline
    only_total: bool = False
    by_pid: bool = False  # -d, --group-by pid
    show_swap: bool = False
    pids: "Tuple[int, ...]" = ()  # empty: every process
    watch: "Optional[int]" = None
    procfs: "Optional[str]" = None
    # Since 3.14, behind long options only:
    json: bool = False
    sort: str = "ram"
    reverse: bool = False
    top: "Optional[int]" = None
    group_by: str = "program"  # or "user", "cgroup" (pid and cmdline set the above)
    capture: "Optional[str]" = None
    diff: "Optional[str]" = None  # a capture to compare with (--diff BEFORE)
    delta: bool = False  # -w --delta: each row's change since the first sample


class ProcessSample(Record):
    """One process's memory, in KiB, under the name it is grouped by."""

    pid: int
    name: str
    private_kib: float  # hugetlb included
    shared_kib: float  # PSS share, or Shared_* sum without PSS
    shared_hugetlb_kib: float
    swap_kib: float
    # Equal for processes whose memory file text is equal; None where only
    # statm could be read (no text: the process is alone).
    mem_id: "Optional[int]"
    has_pss: bool
    has_swap_pss: bool
    # The program (3.14's grouping) where rows group by something else
    # (--group-by user or cgroup); None where the name is the program.
    program: "Optional[str]" = None
    # When it started (stat's start time), read only where a row is one
    # process that must not be taken for another given its pid later (see
    # identifies_processes()); None elsewhere.
    start: "Optional[int]" = None


class Scan(Record):
    """One sample of the processes to report."""

    samples: "List[ProcessSample]"  # in the proc root's order
    unreadable: int  # processes we were not allowed to read
    # Which share an address space; None where only 3.14's rule can tell
    # (see shared_address_spaces()).
    address_spaces: "Optional[AddressSpaceMap]" = None
    unparsable: int = 0  # processes of a tree whose files could not be parsed


class ProgramUsage(Record):
    """One row of a report."""

    name: str  # without the " (N)" count
    processes: int
    pids: "Tuple[int, ...]"
    private_kib: float
    shared_kib: float  # hugetlb included
    ram_kib: float
    swap_kib: float


class Report(Record):
    programs: "List[ProgramUsage]"  # rows to print, ascending by RAM
    total_ram_kib: float
    total_swap_kib: float
    pss_seen: bool  # some process showed Pss: RAM can be totalled
    swap_pss_seen: bool  # some process showed SwapPss: swap can be totalled
    unreadable: int = 0  # processes left out because reading them was denied
    unparsable: int = 0  # processes of a tree left out: files not the kernel's


class Accuracy(Record):
    """2 accurate, can total; 1 over-estimated per program; 0 shared memory
    not reported accurately; -1 not reported at all."""

    ram: int
    swap: int


class Shown(Record):
    """What a view is given of one sample, beside its report (see
    render())."""

    acc: Accuracy  # of RAM and of swap, whether or not -S asked for it
    # Whether totals can be shown: learnt from every process seen so far,
    # over all samples of a watch.
    pss_seen: bool
    swap_pss_seen: bool
    release: str  # the kernel's
    when: float  # when the sample was taken (a capture's own time)
    notes: "List[str]"  # the warnings, as stderr will have them
    seconds: float  # how long the scan took
    delta: "Optional[Delta]" = None  # -w --delta: the changes since the first sample


# What --diff and --delta compare: rows of two reports matched by their
# name, or where each row is one process, by the process (see row_keys()).


class Change(Record):
    """One row of a comparison (--diff): the rows of the same name, or of
    the same process, in the two reports; a new row has no `before`, a
    gone one no `after`."""

    name: str  # AFTER's where the row is in both (a process may rename itself)
    before: "Optional[ProgramUsage]"
    after: "Optional[ProgramUsage]"
    # after - before, a missing side counting as nothing
    private_kib: float
    shared_kib: float
    ram_kib: float
    swap_kib: float
    processes: int


class Comparison(Record):
    """Two reports compared row by row (see compare())."""

    changes: "List[Change]"
    before_ram_kib: float  # the totals of the rows compared
    after_ram_kib: float
    before_swap_kib: float
    after_swap_kib: float
    pss_seen: bool  # on both sides: RAM can be totalled
    swap_pss_seen: bool  # on both sides: swap can be totalled


class Baseline(Record):
    """A watch's first sample, as --delta compares the later ones with it."""

    rows: "Dict[Hashable, Tuple[float, float]]"  # row key -> (RAM used, swap)
    total_ram_kib: float
    total_swap_kib: float


class Delta(Record):
    """--delta: a sample's changes since the watch's first sample."""

    rows: "List[Optional[float]]"  # RAM used, for each row shown; None: a new row
    total_ram_kib: float  # of the whole (with --top, of the rows shown)
    total_swap_kib: float


# ----------------------------------------------------------------------------
# 5. Collection: pid -> sample, skipping what vanished
# ----------------------------------------------------------------------------

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024


def read_memory(procfs: ProcFS, pid: int, kernel: "KernelVersion",
                layouts: "Optional[Dict[bytes, RollupLayout]]" = None
                ) -> "Tuple[float, float, float, float, Optional[int], bool, bool]":
    """The memory fields of a ProcessSample (all after `name`) for one
    process, from the best memory file its kernel offers.

    LAYOUTS: kept from one process to the next (see parse_smaps())."""
    statm = None
    if procfs.reading.as_3_14:
        # 3.14 reads statm first, whatever it uses: without it, no process.
        statm = _statm_pages(procfs, pid)
    text = procfs.read_optional(pid, "smaps_rollup")  # Linux 4.14+, cheapest
    if text is None:
        text = procfs.read_optional(pid, "smaps")
    if text is not None:
        try:
            counters = parse_smaps(text, layouts)
        except ValueError as error:
            raise ProcessGone(pid, unparsable=True) from error
        if counters.has_pss:
            shared = counters.pss - counters.private
        else:
            shared = counters.shared
        swap = counters.swap_pss if counters.has_swap_pss else counters.swap
        # The text identifies the address space for 3.14's CLONE_VM rule
        # (compared as 3.14 decodes it, undecodable bytes dropped) and picks
        # the processes worth asking the kernel about (see _Twins).
        return (
            counters.private + counters.private_hugetlb,
            shared,
            counters.shared_hugetlb,
            swap,
            hash(text.decode("utf-8", "ignore")),
            counters.has_pss,
            counters.has_swap_pss,
        )
    resident, shared_pages = statm or _statm_pages(procfs, pid)
    resident_kib = resident * PAGE_KIB
    shared_kib = shared_pages * PAGE_KIB
    if (2, 6, 1) <= kernel <= (2, 6, 9):
        # statm's shared column is the whole file-backed extent here:
        # ignore it and over-estimate instead (the accuracy warning says so).
        return resident_kib, 0, 0, 0, None, False, False
    return resident_kib - shared_kib, shared_kib, 0, 0, None, False, False


def _statm_pages(procfs: ProcFS, pid: int) -> "Tuple[int, int]":
    try:
        return parse_statm(procfs.read(pid, "statm"))
    except ValueError as error:
        raise ProcessGone(pid, unparsable=True) from error


class Namer:
    """Works out the name a process is grouped under, for one sample.

    Parents' executables are looked up once per sample, however many
    children ask for them.  Files are read only as far as the name needs
    them, unless the proc root is read as 3.14 reads it (see Reading).
    """

    def __init__(self, procfs: ProcFS, options: Options) -> None:
        self.procfs = procfs
        self.options = options
        self._reading = procfs.reading
        self._parent_exe: Dict[int, Optional[str]] = {}
        self._copies: Dict[str, str] = {}
        # The name is the program, read from exe and the status name alone:
        # the common case, which names() takes the shortest way.
        self._program_only = (not self._reading.as_3_14 and not options.split_args
                              and not options.by_pid and options.group_by == "program")

    def one_copy(self, text: str) -> str:
        """The one copy of TEXT kept for the scan: the many processes of a
        program share one name.  (Not sys.intern(), whose table would grow
        with every name ps_mem ever saw.)"""
        return self._copies.setdefault(text, text)

    def _cmdline(self, pid: int) -> "List[str]":
        return parse_cmdline(self.procfs.read(pid, "cmdline"))

    def _exe(self, pid: int, cmdline: "Optional[List[str]]") -> str:
        """The executable's basename; a replaced or removed one is marked
        " [updated]" or " [deleted]"."""
        path = self.procfs.readlink(pid, "exe")
        if "\0" in path:  # some kernels (RHEL 5) were seen to put NULs there
            path = path[:path.index("\0")]
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
            if self.procfs.path_exists(path):
                path += " [updated]"
            else:
                if cmdline is None:
                    cmdline = self._cmdline(pid)
                if self.procfs.path_exists(cmdline[0]):
                    # Prelink renames the binary it rewrites, e.g.
                    # /usr/libexec/applet.#prelink#.fX7LCT (deleted), while
                    # the command line still has the real path.
                    path = cmdline[0] + " [updated]"
                else:
                    path += " [deleted]"
        return path[path.rfind("/") + 1:]  # os.path.basename(), without posixpath

    def parent_exe(self, ppid: int) -> "Optional[str]":
        if ppid not in self._parent_exe:
            try:
                cmdline = self._cmdline(ppid) if self._reading.as_3_14 else None
                exe: Optional[str] = self._exe(ppid, cmdline)
            except ProcessGone:
                exe = None
            self._parent_exe[ppid] = exe
        return self._parent_exe[ppid]

    def names(self, pid: int) -> "Tuple[str, Optional[str]]":
        """(The name to group by, the program too where rows group by
        something else: --group-by user or cgroup, else None.)"""
        if self._program_only:
            return self._program(pid, self._exe(pid, None)), None
        # 3.14 reads the command line first and leaves out a process whose
        # command line cannot be read.  On the live /proc that only happens
        # to a process whose exe link cannot be read either, so there the
        # command line is read only where it is needed.
        cmdline = None
        if self.options.split_args or self._reading.as_3_14:
            cmdline = self._cmdline(pid)
        # Read even for -s: a process without an exe link (a kernel thread,
        # or one that just exited) is never shown.
        exe = self._exe(pid, cmdline)
        if self.options.split_args:
            assert cmdline is not None
            return " ".join(cmdline).replace("\n", " "), None
        program = self._program(pid, exe)
        also: Optional[str] = program
        if self.options.group_by == "user":
            name = self._user(pid)
        elif self.options.group_by == "cgroup":
            name = parse_cgroup(self.procfs.read_optional(pid, "cgroup") or b"")
        else:
            name, also = program, None
        if self.options.by_pid:
            name = "%s [%d]" % (name, pid)
        return name, also

    def _user(self, pid: int) -> str:
        try:
            uid = parse_uid(self.procfs.read(pid, "status"))
        except ValueError as error:
            raise ProcessGone(pid, unparsable=True) from error
        return self.procfs.user_name(uid)

    def _status(self, pid: int) -> "Tuple[str, Optional[int]]":
        try:
            return parse_status(self.procfs.read(pid, "status"))
        except ValueError as error:
            raise ProcessGone(pid, unparsable=True) from error

    def _comm(self, pid: int) -> "Optional[str]":
        """status's Name, from the comm file, where the two are sure to
        agree: status escapes a backslash or newline in the name, and a
        carriage return would end 3.14's line early."""
        comm = self.procfs.read_optional(pid, "comm")
        if not comm or comm[-1:] != b"\n":
            return None
        comm = comm[:-1]
        if b"\\" in comm or b"\n" in comm or b"\r" in comm:
            return None
        return comm.decode("utf-8", "ignore")

    def _ppid(self, pid: int, status: "Optional[Tuple[str, Optional[int]]]") -> "Optional[int]":
        if status is not None:
            return status[1]
        if self._reading.names_from_comm:
            try:
                return parse_stat_ppid(self.procfs.read(pid, "stat"))
            except ValueError as error:
                raise ProcessGone(pid, unparsable=True) from error
        return self._status(pid)[1]

    def _program(self, pid: int, exe: str) -> str:
        status = None
        name = self._comm(pid) if self._reading.names_from_comm else None
        if name is None:
            status = self._status(pid)
            name = status[0]
        if not exe.startswith(name):
            ppid = self._ppid(pid, status)
            if ppid is None:
                raise ProcessGone(pid, unparsable=True)  # 3.14 fails to find PPid
            if not ppid or self.parent_exe(ppid) != exe:
                return name  # decoded without the bytes that are not UTF-8
            # A child that renamed itself joins its parent's program
            # (firefox's "Web Content" processes join firefox).
        # Else the name is cut to 15 characters: show the executable's whole
        # name.  Bytes of its path that are not UTF-8 show as "?".
        return exe.encode("utf-8", "replace").decode("utf-8")


def collect(procfs: ProcFS, options: Options, kernel: "KernelVersion",
            self_pid: "Optional[int]", readers: "Optional[int]" = None,
            kcmp: "Optional[KcmpHelper]" = None) -> Scan:
    """A sample of every process to report, and which of them share an
    address space.

    Names are worked out anew at every sample of a watch, as 3.14 does: a
    process may rename itself, exec, or have its executable replaced, and
    telling that needs its exe link and comm, which is all a name costs.

    READERS processes share the reading (default: see reader_count()).
    KCMP: the run's helper for kcmp (see shared_address_spaces()).
    """
    wanted = set(options.pids)
    pids = [pid for pid in procfs.pids()
            if pid != self_pid and (not wanted or pid in wanted)]
    if readers is None:
        readers = reader_count(procfs, len(pids), options)
    helper = KcmpHelper() if kcmp is None else kcmp
    try:
        asks_kcmp = procfs.reading.kcmp
        if asks_kcmp and (readers > 1 or options.watch) and len(pids) > 1:
            helper.start()  # forked now, it loads what it needs while we read
        twins = None
        if min(readers, len(pids)) > 1:
            # Readers tell kcmp's helper of alike processes as they are
            # read, rather than all at the end.
            twins = _Twins(helper) if asks_kcmp else None
            scan = read_forked(procfs, options, kernel, pids, readers,
                               twins.see if twins is not None else None)
        else:
            scan = _scan(procfs, options, kernel, pids)
        return scan._replace(address_spaces=shared_address_spaces(
            procfs, scan.samples, helper, twins))
    finally:
        if kcmp is None:
            helper.close()


def _scan(procfs: ProcFS, options: Options, kernel: "KernelVersion", pids: "List[int]",
          namer: "Optional[Namer]" = None,
          layouts: "Optional[Dict[bytes, RollupLayout]]" = None) -> Scan:
    """The samples of PIDS, read by this process; NAMER and LAYOUTS are kept
    by a caller that scans more pids of the same sample."""
    if namer is None:
        namer = Namer(procfs, options)
    if layouts is None:
        layouts = {}
    samples = []
    unreadable = unparsable = 0
    as_data = procfs.reading.as_data
    starts = identifies_processes(options) and (options.diff is not None or options.delta)
    start = None
    for pid in pids:
        try:
            name, program = namer.names(pid)
            memory = read_memory(procfs, pid, kernel, layouts)
            if starts:
                start = _start_time(procfs, pid)
        except ProcessGone as gone:
            unreadable += gone.denied
            unparsable += gone.unparsable and as_data
            continue
        samples.append(ProcessSample(pid, namer.one_copy(name), *memory,
                                     program and namer.one_copy(program), start))
    return Scan(samples, unreadable, unparsable=unparsable)


def identifies_processes(options: Options) -> bool:
    """Whether each row is one process (-d, --group-by pid), which a
    comparison must tell from another that took its pid later, rather
    than a name that any process may have.  (-s with -d groups by the
    command line, as in 3.14.)"""
    return options.by_pid and not options.split_args


def _start_time(procfs: ProcFS, pid: int) -> "Optional[int]":
    """stat's start time of PID; None where a tree has no stat."""
    stat = procfs.read_optional(pid, "stat")
    if stat is None:
        return None
    try:
        return parse_stat_start(stat)
    except ValueError as error:
        raise ProcessGone(pid, unparsable=True) from error


# Fewer processes than this to a reader, and forking one costs more than
# it saves.
_PIDS_PER_READER = 250
_MAX_READERS = 8


def reader_count(procfs: ProcFS, pid_count: int, options: "Optional[Options]" = None) -> int:
    """How many processes should read this many pids: one per CPU we may
    run on where the proc root allows it (see Reading), and one in a
    watch, which runs for hours: there CPU time counts, and readers spend
    some to save wall time."""
    if not procfs.reading.fork_readers or not hasattr(os, "fork") or (options and options.watch):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_READERS, pid_count // _PIDS_PER_READER))


def shared_address_spaces(procfs: ProcFS, samples: "List[ProcessSample]",
                          kcmp: "KcmpHelper", twins: "Optional[_Twins]" = None
                          ) -> "Optional[AddressSpaceMap]":
    """Which processes share an address space: the kernel's answer where it
    may be asked (see Reading), what a capture recorded, or None: then
    3.14's rule applies (see aggregate()).

    Only processes whose memory text is another's are asked about (see
    AddressSpaces): the others are alone in theirs.  TWINS: the processes
    already told to KCMP as they were read; else all are told now.
    """
    if not procfs.reading.kcmp:
        return procfs.recorded_address_spaces()
    if twins is None:
        _Twins(kcmp).see(samples)
    return kcmp.spaces()


def exact_address_spaces(samples: "List[ProcessSample]") -> "Optional[AddressSpaceMap]":
    """shared_address_spaces() of the live /proc, asked with a helper made
    for this question alone."""
    helper = KcmpHelper()
    try:
        _Twins(helper).see(samples)
        return helper.spaces()
    finally:
        helper.close()


class _Twins:
    """Tells the kcmp helper of each process whose memory text is another's,
    as samples come: while forked readers still read (see read_forked()),
    its answer is then ready soon after the scan ends."""

    def __init__(self, helper: "KcmpHelper") -> None:
        self._helper = helper
        self._first: Dict[object, int] = {}  # mem_id -> first pid, or -1 once told

    def see(self, samples: "List[ProcessSample]") -> None:
        alike: List[Tuple[int, object]] = []
        first_of = self._first
        for sample in samples:
            mem_id = sample.mem_id
            if mem_id is None:
                continue
            first = first_of.setdefault(mem_id, sample.pid)
            if first == sample.pid:
                continue
            if first > 0:
                alike.append((first, mem_id))
                first_of[mem_id] = -1
            alike.append((sample.pid, mem_id))
        self._helper.place(alike)


def accuracy(procfs: ProcFS, kernel: "KernelVersion", probe_pid: "Optional[int]",
             show_swap: bool) -> Accuracy:
    """How far this system's numbers can be trusted, judged from ps_mem's own
    smaps (the `self` of the proc root)."""
    has_smaps = probe_pid is not None and procfs.exists(probe_pid, "smaps")

    def probe_has(marker: bytes) -> bool:
        try:
            return probe_pid is not None and marker in procfs.read(probe_pid, "smaps")
        except ProcessGone:
            return False

    if kernel[:2] == (2, 4):
        try:
            meminfo = procfs.read_global("meminfo")
        except OSError:
            meminfo = b""
        # rmap 2.4 kernels (Red Hat's) have Inact_ lines; there shared pages
        # cannot be told apart at all.
        return Accuracy(0 if b"Inact_" in meminfo else 1, -1)
    if kernel[:2] == (2, 6):
        if has_smaps:
            return Accuracy(2 if probe_has(b"Pss:") else 1, 1)
        if (2, 6, 1) <= kernel <= (2, 6, 9):
            return Accuracy(-1, -1)
        return Accuracy(0, -1)
    if kernel[0] > 2 and has_smaps:
        return Accuracy(2, 2 if show_swap and probe_has(b"SwapPss:") else 1)
    return Accuracy(1, -1)


class Machine(Record):
    """Which machine, and which boot of it, a proc root shows."""

    boot_id: "Optional[str]"  # the kernel's random id of this boot
    host: "Optional[str]"  # the host name (of the reader's UTS namespace)


def machine_of(procfs: ProcFS) -> Machine:
    """What PROCFS says of its machine; None for what it does not say (a
    tree, or a capture made before captures recorded it)."""
    def identity(name: str) -> "Optional[str]":
        try:
            return parse_identity(procfs.read_global(name))
        except OSError:
            return None

    return Machine(identity(_BOOT_ID), identity(_HOSTNAME))


def how_related(before: Machine, after: Machine) -> str:
    """"same": one boot of one machine, or nothing tells them apart;
    "boot": another boot (of the same machine, or of one whose name is not
    known), whose pids name other processes; "host": another machine.  A
    host may be renamed, but a boot id is the kernel's for its whole boot,
    so it decides first."""
    if before.boot_id and after.boot_id and before.boot_id == after.boot_id:
        return "same"
    if before.host and after.host and before.host != after.host:
        return "host"
    if before.boot_id and after.boot_id:
        return "boot"
    return "same"


def capture(procfs: ProcFS, self_pid: "Optional[int]") -> Snapshot:
    """Everything any run would read from PROCFS now, held in memory."""
    if isinstance(procfs, Snapshot):
        return procfs  # a capture of a capture is the same capture
    files: Dict[str, bytes] = {}
    links: Dict[str, str] = {}
    errors: Dict[str, int] = {}
    path_exists: Dict[str, bool] = {}
    users: Dict[str, str] = {}

    def keep(relative: str, reader: "Callable[[str], object]", table: "Dict[str, Any]"
             ) -> object:
        try:
            table[relative] = value = reader(os.path.join(procfs.root, relative))
            return value
        except OSError as error:
            if error.errno is not None and error.errno != errno.ENOENT:
                errors[relative] = error.errno
            return None

    for name in _CAPTURED_GLOBALS:
        keep(name, _read_file, files)
    pids = procfs.pids()
    for pid in pids:
        target = keep("%d/exe" % pid, os.readlink, links)
        # Without an exe link (kernel threads) a process is left out once
        # its cmdline is read: nothing more of it is needed.
        for name in _CAPTURED_FILES if target is not None else ("cmdline",):
            if name == "smaps" and "%d/smaps_rollup" % pid in files and pid != self_pid:
                continue  # smaps is read only where there is no smaps_rollup
            keep("%d/%s" % (pid, name), _read_file, files)
        cmdline = parse_cmdline(files.get("%d/cmdline" % pid, b""))
        if isinstance(target, str) and target.split("\0")[0].endswith(" (deleted)"):
            path = target.split("\0")[0][: -len(" (deleted)")]
            for candidate in (path, cmdline[0]):
                path_exists[candidate] = procfs.path_exists(candidate)
        status = files.get("%d/status" % pid)
        if status:
            try:
                uid = parse_uid(status)
                users[str(uid)] = procfs.user_name(uid)
            except ValueError:
                pass
    manifest = Manifest(pids, self_pid, procfs.time(), errors, path_exists, users, None)
    snapshot = Snapshot(procfs.root, files, links, manifest)
    if procfs.reading.kcmp:
        # What the kernel says of shared address spaces cannot be read back
        # from files: ask it now, for every process, and keep the answer.
        kernel = kernel_version(files.get("sys/kernel/osrelease", b""))
        samples = collect(snapshot, Options(), kernel, self_pid).samples
        snapshot.manifest = manifest._replace(address_spaces=exact_address_spaces(samples))
    return snapshot


# ----------------------------------------------------------------------------
# 6. Aggregation: samples -> report, reading nothing
# ----------------------------------------------------------------------------


def aggregate(samples: "Iterable[ProcessSample]", unreadable: int = 0,
              address_spaces: "Optional[AddressSpaceMap]" = None, unparsable: int = 0) -> Report:
    """Sum samples per name, count each address space once, sort, total."""
    samples = list(samples)
    pss_seen = any(sample.has_pss for sample in samples)
    swap_pss_seen = any(sample.has_swap_pss for sample in samples)
    # Rows by user or cgroup mix programs: the rules 3.14 applies to a
    # program are applied to each program, and its processes' shares then
    # summed into their rows, so that the totals are those of the default.
    regroup = any(sample.program is not None for sample in samples)
    if regroup and address_spaces is None:
        address_spaces = _rule_as_address_spaces(samples)
    hugetlb = _hugetlb_per_program(samples) if regroup else {}
    # Where the kernel told us which processes share an address space, each
    # is counted once (divided among its processes, so that rows still add
    # up to the total, with -d too); where it could not, 3.14's rule.
    exact = address_spaces is not None
    mm_size: Dict[object, int] = {}
    mapped = []
    if address_spaces is not None:
        for sample in samples:  # processes absent from the map are alone
            mm = address_spaces.get(sample.pid)
            if mm is not None:
                mm_size[mm] = mm_size.get(mm, 0) + 1
                mapped.append((mm, sample.name))
    # The rows with a process that shares its space; in the others, each
    # process is alone.
    sharing_names = {name for mm, name in mapped if mm_size[mm] > 1}
    groups: Dict[str, List[ProcessSample]] = {}
    for sample in samples:
        members = groups.get(sample.name)
        if members is None:
            groups[sample.name] = [sample]
        else:
            members.append(sample)

    programs = []
    total_ram: float = 0
    total_swap: float = 0
    for name, members in groups.items():  # first-seen order, as 3.14 sums
        if name in sharing_names:
            assert address_spaces is not None  # a name shares a space only by the map
            private, shared, swap = _sum_address_spaces(members, address_spaces, mm_size,
                                                        pss_seen)
        elif exact:  # the usual case
            private, shared, swap = _sums(members, pss_seen)
        else:
            private, shared, swap = _sum_processes(members, pss_seen)
        # Shared hugetlb pages are in no Pss; a program's largest mapping is
        # added (each of its processes shows the whole of it).
        shared_huge: float = 0
        if regroup:
            shared_huge = sum(hugetlb.get(sample.pid, 0) for sample in members)
        else:
            for sample in members:
                if not shared_huge or sample.shared_hugetlb_kib > shared_huge:
                    shared_huge = sample.shared_hugetlb_kib
        shared += shared_huge
        ram = private + shared
        total_ram += ram
        total_swap += swap
        pids = tuple(sample.pid for sample in members)
        programs.append(ProgramUsage(name, len(members), pids, ram - shared, shared, ram, swap))

    programs.sort(key=lambda program: program.ram_kib)
    programs = [program for program in programs if program.ram_kib]
    return Report(programs, total_ram, total_swap, pss_seen, swap_pss_seen, unreadable,
                  unparsable)


def _by_program(samples: "List[ProcessSample]") -> "Dict[Optional[str], List[ProcessSample]]":
    programs: Dict[Optional[str], List[ProcessSample]] = {}
    for sample in samples:
        programs.setdefault(sample.program, []).append(sample)
    return programs


def _rule_as_address_spaces(samples: "List[ProcessSample]") -> "AddressSpaceMap":
    """3.14's CLONE_VM rule (see _sum_processes) as an address-space map:
    a program of several processes all showing the same memory text is one
    address space, a guessed one (its swap is not divided, as in 3.14)."""
    guessed: AddressSpaceMap = {}
    for members in _by_program(samples).values():
        mem_ids = {sample.mem_id for sample in members}
        if len(members) > 1 and len(mem_ids) == 1 and None not in mem_ids:
            for sample in members:
                guessed[sample.pid] = ("same text", sample.mem_id)
    return guessed


def _hugetlb_per_program(samples: "List[ProcessSample]") -> "Dict[int, float]":
    """pid -> the shared hugetlb memory it brings: each program's largest
    mapping, brought by the first process that shows it."""
    owners = {}
    for members in _by_program(samples).values():
        largest = max(members, key=lambda sample: sample.shared_hugetlb_kib)
        owners[largest.pid] = largest.shared_hugetlb_kib
    return owners


def _add_shared(shared: float, sample_shared: float, pss_seen: bool) -> float:
    # With PSS the shares add up; without it a program gets the largest
    # Shared of its processes, since their shared pages overlap.
    if not shared:
        return sample_shared
    return shared + sample_shared if pss_seen else max(shared, sample_shared)


def _sums(members: "List[ProcessSample]", pss_seen: bool) -> "Tuple[float, float, float]":
    """Private, shared and swap of processes as if each had its own address
    space, summed in their order (as 3.14 sums, so that every float is the
    same to the last bit)."""
    private: float = 0
    shared: float = 0
    swap: float = 0
    if pss_seen:
        for sample in members:  # _add_shared(), made cheap for the usual case
            private += sample.private_kib
            shared += sample.shared_kib
            swap += sample.swap_kib
        return private, shared, swap
    for sample in members:
        private += sample.private_kib
        shared = _add_shared(shared, sample.shared_kib, pss_seen)
        swap += sample.swap_kib
    return private, shared, swap


def _sum_processes(members: "List[ProcessSample]", pss_seen: bool) -> "Tuple[float, float, float]":
    """3.14's rule: a program all of whose processes show identical memory
    text is taken as one address space shared with CLONE_VM."""
    private, shared, swap = _sums(members, pss_seen)
    count = len(members)
    mem_ids = {sample.mem_id for sample in members}
    if count > 1 and len(mem_ids) == 1 and None not in mem_ids:
        private /= count
        if pss_seen:
            shared /= count
    return private, shared, swap


def _sum_address_spaces(members: "List[ProcessSample]", address_spaces: "AddressSpaceMap",
                        mm_size: "Dict[object, int]",
                        pss_seen: bool) -> "Tuple[float, float, float]":
    """Each address space counted once: its processes' figures are the same
    memory seen k times, so each of the k brings 1/k of it."""
    in_program: Dict[object, List[ProcessSample]] = {}
    for sample in members:
        in_program.setdefault(address_spaces.get(sample.pid, sample.pid), []).append(sample)
    private: float = 0
    shared: float = 0
    swap: float = 0
    for mm, sharing in in_program.items():
        part_private, part_shared, part_swap = _sums(sharing, pss_seen)
        size = mm_size.get(mm, 1)
        if size > 1:
            part_private /= size
            if not isinstance(mm, tuple):  # the kernel's word, not a guess
                part_swap /= size
            if pss_seen:
                part_shared /= size
        private += part_private
        shared = _add_shared(shared, part_shared, pss_seen)
        swap += part_swap
    return private, shared, swap


_SORT_KEYS = {
    "ram": lambda program: program.ram_kib,
    "private": lambda program: program.private_kib,
    "shared": lambda program: program.shared_kib,
    "swap": lambda program: program.swap_kib,
    "count": lambda program: program.processes,
    "name": lambda program: printable(program.name),
}


def select(report: Report, options: Options) -> Report:
    """The rows in the order asked for (--sort, --reverse), and only the
    --top N of them, whose totals then cover just the rows shown."""
    if options.sort == "ram" and not options.reverse and options.top is None:
        return report  # 3.14's order, already made by aggregate()
    programs = report.programs
    if options.sort != "ram":
        programs = sorted(programs, key=_SORT_KEYS[options.sort])
    if options.top is not None:
        # The N largest: the last N of the ascending order (the first N for
        # names), so that a tie at the cut is settled as the full listing
        # shows it, whether or not reversed.
        if options.sort == "name":
            programs = programs[:options.top]
        else:
            programs = programs[-options.top:]
        report = report._replace(
            total_ram_kib=sum(program.ram_kib for program in programs),
            total_swap_kib=sum(program.swap_kib for program in programs))
    if options.reverse:
        programs = programs[::-1]
    return report._replace(programs=programs)


def row_keys(programs: "List[ProgramUsage]", starts: "Optional[Dict[int, Optional[int]]]"
             ) -> "List[Hashable]":
    """What tells each row from the others across two samples: its name,
    or where each row is one process (STARTS given: pid -> start time, see
    identifies_processes()), its pid and start time, since a pid is reused
    and a process may rename itself."""
    if starts is None:
        return [program.name for program in programs]
    return [(program.pids[0], starts.get(program.pids[0])) for program in programs]


def compare(before: Report, after: Report, before_keys: "List[Hashable]",
            after_keys: "List[Hashable]") -> Comparison:
    """BEFORE's rows matched with AFTER's by their keys (see row_keys()):
    AFTER's rows in its order, each with its match if any, then the rows
    that are gone, in BEFORE's order."""
    earlier = dict(zip(before_keys, before.programs))
    changes = [_change(earlier.pop(key, None), row) for key, row in zip(after_keys,
                                                                        after.programs)]
    changes.extend(_change(row, None) for row in earlier.values())
    # A total is true where each side's is, or where a side has no rows to
    # tell (-p naming only processes that started, or stopped, between).
    before_has_rows, after_has_rows = bool(before.programs), bool(after.programs)
    return Comparison(changes, before.total_ram_kib, after.total_ram_kib,
                      before.total_swap_kib, after.total_swap_kib,
                      _both(before.pss_seen, after.pss_seen, before_has_rows, after_has_rows),
                      _both(before.swap_pss_seen, after.swap_pss_seen, before_has_rows,
                            after_has_rows))


def _both(before_seen: bool, after_seen: bool, before_has_rows: bool,
          after_has_rows: bool) -> bool:
    """Whether a total is true for the two sides together (see compare())."""
    return ((before_seen or after_seen) and (before_seen or not before_has_rows)
            and (after_seen or not after_has_rows))


_NO_ROW = ProgramUsage("", 0, (), 0, 0, 0, 0)


def _change(before: "Optional[ProgramUsage]", after: "Optional[ProgramUsage]") -> Change:
    old = before or _NO_ROW
    new = after or _NO_ROW
    return Change((after or old).name, before, after, new.private_kib - old.private_kib,
                  new.shared_kib - old.shared_kib, new.ram_kib - old.ram_kib,
                  new.swap_kib - old.swap_kib, new.processes - old.processes)


# --sort in a comparison orders by the change of what it names.
_CHANGE_SORT_KEYS = {
    "ram": lambda change: change.ram_kib,
    "private": lambda change: change.private_kib,
    "shared": lambda change: change.shared_kib,
    "swap": lambda change: change.swap_kib,
    "count": lambda change: change.processes,
    "name": lambda change: printable(change.name),
}


def select_changes(comparison: Comparison, options: Options) -> Comparison:
    """select() for a comparison: the rows by their change (of RAM used,
    or of what --sort names), growth last; --reverse and --top as there,
    the totals then covering the rows shown."""
    changes = sorted(comparison.changes, key=_CHANGE_SORT_KEYS[options.sort])
    if options.top is not None:
        changes = changes[:options.top] if options.sort == "name" else changes[-options.top:]
        befores = [change.before for change in changes if change.before is not None]
        afters = [change.after for change in changes if change.after is not None]
        comparison = comparison._replace(
            before_ram_kib=sum(row.ram_kib for row in befores),
            after_ram_kib=sum(row.ram_kib for row in afters),
            before_swap_kib=sum(row.swap_kib for row in befores),
            after_swap_kib=sum(row.swap_kib for row in afters))
    if options.reverse:
        changes = changes[::-1]
    return comparison._replace(changes=changes)


def baseline(report: Report, keys: "List[Hashable]") -> Baseline:
    """What --delta compares a watch's later samples with: REPORT, whole
    (before select()), the first sample's."""
    return Baseline({key: (program.ram_kib, program.swap_kib)
                     for key, program in zip(keys, report.programs)},
                    report.total_ram_kib, report.total_swap_kib)


def since(first: Baseline, whole: Report, shown: Report, keys: "List[Hashable]",
          top: bool) -> Delta:
    """The changes since FIRST of the rows SHOWN (of KEYS), and of the
    total: WHOLE's, or with TOP that of the rows shown, as the footer's
    total is theirs."""
    before = first.rows
    rows = [program.ram_kib - before[key][0] if key in before else None
            for key, program in zip(keys, shown.programs)]
    if not top:
        return Delta(rows, whole.total_ram_kib - first.total_ram_kib,
                     whole.total_swap_kib - first.total_swap_kib)
    ram: float = 0
    swap: float = 0
    for key, program in zip(keys, shown.programs):
        ram_then, swap_then = before.get(key, (0, 0))
        ram += program.ram_kib - ram_then
        swap += program.swap_kib - swap_then
    return Delta(rows, ram, swap)


def watch_delta(first: "Optional[Baseline]", samples: "List[ProcessSample]", whole: Report,
                shown: Report, options: Options) -> "Tuple[Baseline, Delta]":
    """-w --delta: the watch's first sample (this one's WHOLE report, if
    there is none yet), and the changes since it of the rows SHOWN."""
    starts = ({sample.pid: sample.start for sample in samples}
              if identifies_processes(options) else None)
    if first is None:
        first = baseline(whole, row_keys(whole.programs, starts))
    return first, since(first, whole, shown, row_keys(shown.programs, starts),
                        options.top is not None)


# ----------------------------------------------------------------------------
# 7. Output: one function per view, each returning text
# ----------------------------------------------------------------------------


def human(kib: float) -> str:
    """KiB as du -h shows it: at most 4 digits, "1.0 MiB" for 1000 KiB."""
    units = ("Ki", "Mi", "Gi", "Ti")
    step = 0
    while kib >= 1000 and step < len(units) - 1:
        kib /= 1024.0
        step += 1
    return "%.1f %sB" % (kib, units[step])


def total_bytes(kib: float) -> str:
    return "%.f" % (kib * 1024)


def header(options: Options) -> str:
    text = " Private  +   Shared  =  RAM used"
    if options.show_swap:
        text += "   Swap used"
    text += "\tProgram"
    if options.by_pid:
        text += "[pid]"
    return text + "\n\n"


def display_name(program: ProgramUsage) -> str:
    name = printable(program.name)
    if program.processes > 1:
        return "%s (%d)" % (name, program.processes)
    return name


def _sizes(program: ProgramUsage, show_swap: bool) -> str:
    """A row's sizes, as 3.14 prints them before the name."""
    line = "%9s + %9s = %9s" % (
        human(program.private_kib), human(program.shared_kib), human(program.ram_kib))
    if show_swap:
        line += "   %9s" % human(program.swap_kib)
    return line


def rows(report: Report, options: Options) -> str:
    return "".join("%s\t%s\n" % (_sizes(program, options.show_swap), display_name(program))
                   for program in report.programs)


def footer(options: Options, pss_seen: bool, swap_pss_seen: bool,
           report: Report) -> str:
    """The totals, only where they mean something."""
    if options.show_swap and swap_pss_seen:
        return "%s\n%s%9s%s%9s\n%s\n" % (
            "-" * 45, " " * 24, human(report.total_ram_kib), " " * 3,
            human(report.total_swap_kib), "=" * 45)
    if pss_seen:
        return "%s\n%s%9s\n%s\n" % ("-" * 33, " " * 24, human(report.total_ram_kib), "=" * 33)
    return ""


def only_total(options: Options, pss_seen: bool, swap_pss_seen: bool,
               report: Report) -> str:
    """-t: the total in bytes, or nothing where it would not be meaningful."""
    if options.show_swap:
        return total_bytes(report.total_swap_kib) + "\n" if swap_pss_seen else ""
    return total_bytes(report.total_ram_kib) + "\n" if pss_seen else ""


def _processes(count: int) -> str:
    return "%d %s" % (count, "process" if count == 1 else "processes")


def warnings(acc: Accuracy, options: Options, unreadable: int = 0, unparsable: int = 0,
             hidden: "Optional[Tuple[str, str]]" = None) -> "List[str]":
    """The warnings for stderr, each a text ending in a newline.  HIDDEN:
    (proc root, mount option) where the mount hides other users'
    processes (see ProcFS.hiding_option())."""
    level = "Error" if options.only_total else "Warning"
    ram, swap = acc
    # Only what bears on what was asked for.
    if not options.show_swap:
        swap = 2
    elif options.only_total:
        ram = 2
    texts = []
    if ram == -1:
        texts.append("%s: Shared memory is not reported by this system.\n"
                     "Values reported will be too large, and totals are not reported\n" % level)
    elif ram == 0:
        texts.append("%s: Shared memory is not reported accurately by this system.\n"
                     "Values reported could be too large, and totals are not reported\n" % level)
    elif ram == 1:
        texts.append("%s: Shared memory is slightly over-estimated by this system\n"
                     "for each program, so totals are not reported.\n" % level)
    if swap == -1:
        texts.append("%s: Swap is not reported by this system.\n" % level)
    elif swap == 1:
        texts.append("%s: Swap is over-estimated by this system for each program,\n"
                     "so totals are not reported.\n" % level)
    # 3.14 leaves out processes it may not read without a word, so its
    # totals look complete when they are not.
    if hidden is not None:
        texts.append("Warning: %s is mounted with %s: other users' processes are hidden, "
                     "and their memory is not included.\n" % hidden)
    if unreadable:
        texts.append("Warning: %s could not be read (permission denied); "
                     "their memory is not included.\n" % _processes(unreadable))
    if unparsable:
        texts.append("Warning: %s could not be parsed (their files are not what a kernel "
                     "writes); their memory is not included.\n" % _processes(unparsable))
    return texts


def in_bytes(kib: float) -> int:
    return int(round(kib * 1024))


def json_document(report: Report, acc: Accuracy, pss_seen: bool, swap_pss_seen: bool,
                  release: str, when: float, notes: "List[str]",
                  delta: "Optional[Delta]" = None) -> str:
    """--json: the report as one line of JSON (schema in README.md)."""
    import json

    document: Dict[str, Any] = {
        "ps_mem_version": VERSION,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "kernel": release,
        "programs": [{
            "name": printable(program.name),
            "count": program.processes,
            "pids": list(program.pids),
            "private": in_bytes(program.private_kib),
            "shared": in_bytes(program.shared_kib),
            "ram": in_bytes(program.ram_kib),
            "swap": in_bytes(program.swap_kib),
        } for program in report.programs],
        "total": {
            "ram": in_bytes(report.total_ram_kib) if pss_seen else None,
            "swap": in_bytes(report.total_swap_kib) if swap_pss_seen else None,
        },
        "accuracy": {"ram": acc.ram, "swap": acc.swap},
        "warnings": [text.rstrip("\n") for text in notes],
    }
    if delta is not None:
        _add_delta(document, report, delta, pss_seen)
    return json.dumps(document) + "\n"


def _add_delta(document: "Dict[str, Any]", report: Report, delta: Delta,
               pss_seen: bool) -> None:
    """--delta in JSON: each row's change of RAM since the first sample (a
    new row's from nothing) and whether it is new; the total's change."""
    for entry, program, change in zip(document["programs"], report.programs, delta.rows):
        entry["delta"] = in_bytes(program.ram_kib if change is None else change)
        entry["new"] = change is None
    document["total"]["delta"] = in_bytes(delta.total_ram_kib) if pss_seen else None


def exit_status(acc: Accuracy, options: Options) -> int:
    """-t fails when the number it printed (or did not) is not a true total."""
    if options.only_total:
        return 0 if (acc.swap if options.show_swap else acc.ram) == 2 else 1
    return 0


def signed(kib: float) -> str:
    """A change as human() shows a size, with its sign ("+1.2 MiB",
    "-300.0 KiB"); "0.0 KiB" where it rounds to nothing."""
    text = human(abs(kib))
    if text == "0.0 KiB":
        return text
    return ("-" if kib < 0 else "+") + text


def signed_bytes(change: int) -> str:
    """-t's change, in bytes with its sign."""
    return "%+d\n" % change


# --delta: a column after 3.14's, and the footer's total's change under it.
_DELTA_COLUMN = "  %10s"


def delta_header(options: Options) -> str:
    text = " Private  +   Shared  =  RAM used"
    if options.show_swap:
        text += "   Swap used"
    text += _DELTA_COLUMN % "Delta" + "\tProgram"
    if options.by_pid:
        text += "[pid]"
    return text + "\n\n"


def delta_rows(report: Report, options: Options, delta: Delta) -> str:
    """The rows, each with its change of RAM used since the first sample,
    or "new" where it was not in it."""
    return "".join("%s%s\t%s\n" % (
        _sizes(program, options.show_swap),
        _DELTA_COLUMN % ("new" if change is None else signed(change)), display_name(program))
        for program, change in zip(report.programs, delta.rows))


def delta_footer(options: Options, pss_seen: bool, swap_pss_seen: bool, report: Report,
                 delta: Delta) -> str:
    """footer(), and under the column, the total's change since the first
    sample."""
    change = _DELTA_COLUMN % signed(delta.total_ram_kib)
    if options.show_swap and swap_pss_seen:
        return "%s\n%s%9s%s%9s%s\n%s\n" % (
            "-" * 57, " " * 24, human(report.total_ram_kib), " " * 3,
            human(report.total_swap_kib), change, "=" * 57)
    if pss_seen:
        gap = " " * 12 if options.show_swap else ""
        width = 45 + len(gap)
        return "%s\n%s%9s%s%s\n%s\n" % ("-" * width, " " * 24, human(report.total_ram_kib),
                                          gap, change, "=" * width)
    return ""


def delta_total(options: Options, pss_seen: bool, swap_pss_seen: bool, delta: Delta) -> str:
    """-t with --delta: the change of the total since the first sample."""
    if options.show_swap:
        return signed_bytes(in_bytes(delta.total_swap_kib)) if swap_pss_seen else ""
    return signed_bytes(in_bytes(delta.total_ram_kib)) if pss_seen else ""


# --diff: the changes of Private and Shared, then RAM used before, after
# and its change (and the change of swap with -S); on 100 columns the name
# still has 28 (20 with -S).  JSON has every before and after.
_DIFF_COLUMNS = "%14s  %13s  %10s  %10s  %10s"
_DIFF_SWAP = "  %11s"
_DIFF_WIDTH = 65  # of the columns: the rules of the footer


def diff_header(options: Options) -> str:
    text = _DIFF_COLUMNS % ("Private change", "Shared change", "RAM before", "RAM after",
                            "RAM change")
    if options.show_swap:
        text += _DIFF_SWAP % "Swap change"
    text += "\tProgram"
    if options.by_pid:
        text += "[pid]"
    return text + "\n\n"


def _change_name(change: Change) -> str:
    """The name as the table shows it, with its count of processes, or
    both counts where they differ ("nginx (3->5)")."""
    name = printable(change.name)
    counts = [row.processes for row in (change.before, change.after) if row is not None]
    if len(counts) == 2 and counts[0] != counts[1]:
        return "%s (%d->%d)" % (name, counts[0], counts[1])
    if counts[-1] > 1:
        return "%s (%d)" % (name, counts[-1])
    return name


def diff_rows(comparison: Comparison, options: Options) -> str:
    """A row for each change: a new row's RAM before says "new", a gone
    row's RAM after "gone"."""
    lines = []
    for change in comparison.changes:
        line = _DIFF_COLUMNS % (
            signed(change.private_kib), signed(change.shared_kib),
            "new" if change.before is None else human(change.before.ram_kib),
            "gone" if change.after is None else human(change.after.ram_kib),
            signed(change.ram_kib))
        if options.show_swap:
            line += _DIFF_SWAP % signed(change.swap_kib)
        lines.append("%s\t%s\n" % (line, _change_name(change)))
    return "".join(lines)


def diff_footer(options: Options, comparison: Comparison) -> str:
    """The totals before and after, and the change of the whole, where
    totals mean something (as footer())."""
    before, after = comparison.before_ram_kib, comparison.after_ram_kib
    totals = " " * 31 + "%10s  %10s  %10s" % (human(before), human(after),
                                               signed(after - before))
    if options.show_swap and comparison.swap_pss_seen:
        width = _DIFF_WIDTH + 13
        totals += _DIFF_SWAP % signed(comparison.after_swap_kib - comparison.before_swap_kib)
    elif comparison.pss_seen:
        width = _DIFF_WIDTH
    else:
        return ""
    return "%s\n%s\n%s\n" % ("-" * width, totals, "=" * width)


def diff_total(options: Options, comparison: Comparison) -> str:
    """-t with --diff: the change of the total, in bytes, where there is
    a true total on both sides."""
    if options.show_swap:
        if not comparison.swap_pss_seen:
            return ""
        return signed_bytes(in_bytes(comparison.after_swap_kib)
                            - in_bytes(comparison.before_swap_kib))
    if not comparison.pss_seen:
        return ""
    return signed_bytes(in_bytes(comparison.after_ram_kib) - in_bytes(comparison.before_ram_kib))


def diff_json(comparison: Comparison, shown: Shown, before_when: float,
              before_release: str) -> str:
    """--diff --json: the comparison as one line of JSON (schema in
    README.md): before, after and change of each measure, in bytes."""
    import json

    def measure(before: float, after: float) -> "Dict[str, int]":
        before_bytes, after_bytes = in_bytes(before), in_bytes(after)
        return {"before": before_bytes, "after": after_bytes,
                "change": after_bytes - before_bytes}

    def utc(when: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))

    programs = []
    for change in comparison.changes:
        old, new = change.before or _NO_ROW, change.after or _NO_ROW
        programs.append({
            "name": printable(change.name),
            "new": change.before is None,
            "gone": change.after is None,
            "count": {"before": old.processes, "after": new.processes,
                      "change": change.processes},
            "pids": {"before": list(old.pids), "after": list(new.pids)},
            "private": measure(old.private_kib, new.private_kib),
            "shared": measure(old.shared_kib, new.shared_kib),
            "ram": measure(old.ram_kib, new.ram_kib),
            "swap": measure(old.swap_kib, new.swap_kib),
        })
    document = {
        "ps_mem_version": VERSION,
        "time": utc(shown.when),
        "before_time": utc(before_when),
        "kernel": shown.release,
        "before_kernel": before_release,
        "programs": programs,
        "total": {
            "ram": measure(comparison.before_ram_kib, comparison.after_ram_kib)
            if comparison.pss_seen else None,
            "swap": measure(comparison.before_swap_kib, comparison.after_swap_kib)
            if comparison.swap_pss_seen else None,
        },
        "accuracy": {"ram": shown.acc.ram, "swap": shown.acc.swap},
        "warnings": [text.rstrip("\n") for text in shown.notes],
    }
    return json.dumps(document) + "\n"


def render_diff(comparison: Comparison, options: Options, shown: Shown, before_when: float,
                before_release: str) -> str:
    """--diff: the comparison as the options ask to show it, header and
    all (it is one sample, written once the two are read)."""
    if options.json:
        return diff_json(comparison, shown, before_when, before_release)
    if options.only_total:
        return diff_total(options, comparison)
    return diff_header(options) + diff_rows(comparison, options) + diff_footer(options,
                                                                             comparison)


def render(report: Report, options: Options, shown: Shown) -> str:
    """One sample as the options ask to show it: the text to write.  Each
    view is a function of its own; the table's header is header()'s, made
    once before the first sample."""
    if options.json:
        return json_document(report, shown.acc, shown.pss_seen, shown.swap_pss_seen,
                             shown.release, shown.when, shown.notes, shown.delta)
    if shown.delta is not None:
        if options.only_total:
            return delta_total(options, shown.pss_seen, shown.swap_pss_seen, shown.delta)
        return (delta_rows(report, options, shown.delta)
                + delta_footer(options, shown.pss_seen, shown.swap_pss_seen, report,
                               shown.delta))
    if options.only_total:
        return only_total(options, shown.pss_seen, shown.swap_pss_seen, report)
    return (rows(report, options)
            + footer(options, shown.pss_seen, shown.swap_pss_seen, report))


def opening(options: Options) -> str:
    """What is written once, before the first sample: the table's header."""
    if options.only_total or options.json or options.diff is not None:
        return ""  # --diff writes its header with its rows (render_diff())
    if options.delta:
        return delta_header(options)
    return header(options)


class Terminated(BaseException):
    """SIGTERM or SIGHUP came while a file was being written (see
    write_atomically()): raised there so that no half file remains, and
    main() then ends by that signal, as it would have."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def write_atomically(path: str, write: "Callable[[IO[bytes]], None]", mode: int) -> int:
    """Write PATH whole or not at all, where others may write too, and
    return its size.  WRITE fills a file made for this run alone beside
    PATH (O_EXCL, never through a link, MODE at most 0600 while it is
    written), which then replaces PATH: a link planted there is replaced,
    never followed, and a reader sees the old file or the new one, never
    half of one.  Ctrl-C, SIGTERM, SIGHUP or a full disk leave nothing
    behind.  The name made is a dot file not ending in PATH's suffix, so a
    reader of the directory that takes *.prom does not read it early."""
    import contextlib
    import signal

    directory, name = os.path.split(path)
    if not name:
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)

    def terminated(number: int, _frame: object) -> None:
        raise Terminated(number)

    handlers = {number: signal.signal(number, terminated)
                for number in (signal.SIGTERM, signal.SIGHUP)}
    temp = None
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _attempt in range(100):
            candidate = os.path.join(directory, ".%s.%s~" % (name[:200], os.urandom(6).hex()))
            try:
                fd = os.open(candidate, flags, 0o600)
            except FileExistsError:
                continue
            temp = candidate
            break
        else:
            raise FileExistsError(errno.EEXIST, "no free temporary name", path)
        with os.fdopen(fd, "wb") as file:
            os.fchmod(fd, mode & 0o600)
            write(file)
            file.flush()
            size = file.tell()
            os.fchmod(fd, mode)
            os.fsync(fd)
        os.rename(temp, path)
        temp = None
        return size
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        for number, handler in handlers.items():
            signal.signal(number, handler)


def write_capture(snapshot: Snapshot, path: str) -> int:
    """Write SNAPSHOT as a gzip-compressed tar, with write_atomically(),
    mode 0600: it holds every command line, which can hold secrets.  Its
    size in bytes.  Unpacked, its proc/ folder is itself a proc root for
    --procfs (not for 3.14, which wants smaps beside smaps_rollup, where a
    capture keeps only the one it reads)."""
    import io
    import json
    import tarfile

    mtime = int(snapshot.time())

    def add(archive: "tarfile.TarFile", name: str, data: bytes = b"",
            link: "Optional[str]" = None) -> None:
        member = tarfile.TarInfo(name)
        member.mtime = mtime
        if link is not None:
            member.type = tarfile.SYMTYPE
            member.linkname = link
            archive.addfile(member)
        else:
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))

    def write(file: "IO[bytes]") -> None:
        with tarfile.open(fileobj=file, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
            add(archive, _MANIFEST, _manifest_json(snapshot.manifest))
            count = size = 0
            self_pid = snapshot.self_pid()
            if self_pid is not None:
                add(archive, "proc/self", link=str(self_pid))
                count += 1
            for relative, data in sorted(snapshot.files.items()):
                add(archive, "proc/" + relative, data)
                count, size = count + 1, size + len(data)
            for relative, target in sorted(snapshot.links.items()):
                add(archive, "proc/" + relative, link=target)
                count += 1
            add(archive, _END, json.dumps({"files": count, "bytes": size}).encode("ascii"))

    return write_atomically(path, write, 0o600)


# ----------------------------------------------------------------------------
# 8. Command line
# ----------------------------------------------------------------------------

# Long options as 3.14 has them.  An abbreviation that matches any of these
# means what it meant in 3.14 (`--t` is --total, `--s` is ambiguous between
# --split-args and --swap), whatever newer options share its prefix.
_LEGACY_LONG = ("--help", "--version", "--split-args", "--total",
                "--discriminate-by-pid", "--swap")
_GROUPINGS = ("program", "pid", "cmdline", "user", "cgroup")


def _int_value(text: str) -> int:
    """int() of an option's value, for argparse: ValueError (its "invalid
    int value") for more digits than any count ps_mem takes, which int()
    would read slowly, or refuse with its own message, on some Pythons."""
    if len(text.strip()) > 20:
        raise ValueError(text)
    return int(text)


_int_value.__name__ = "int"  # argparse names the type in its message


def _add_legacy_options(parser: "argparse.ArgumentParser") -> None:
    """3.14's options, in its order and its words."""
    parser.add_argument("--version", action="version", version=VERSION)
    parser.add_argument("-s", "--split-args", action="store_true",
                        help="Show and separate by, all command line arguments")
    parser.add_argument("-t", "--total", dest="only_total", action="store_true",
                        help="Show only the total value")
    parser.add_argument("-d", "--discriminate-by-pid", action="store_true",
                        help="Show by process rather than by program")
    parser.add_argument("-S", "--swap", dest="show_swap", action="store_true",
                        help="Show swap information")
    parser.add_argument("-p", dest="pids", metavar="<pid>[,pid2,...pidN]",
                        help="Only show memory usage PIDs in the specified list")
    parser.add_argument("-w", dest="watch", metavar="<N>", type=_int_value,
                        help="Measure and show process memory every N seconds")


def build_parser() -> "argparse.ArgumentParser":
    """The whole command line.  -h lists 3.14's options first, in its
    words, then those added since; the usage line is 3.14's, so that its
    usage errors read as they did."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def _get_option_tuples(self, option_string: str) -> "List[Any]":
            # argparse's prefix matching, with 3.14's abbreviations first.
            matches = super()._get_option_tuples(option_string)
            legacy = [match for match in matches if match[1] in _LEGACY_LONG]
            return legacy or matches

        def error(self, message: str) -> "NoReturn":
            # A value typed with a newline (or an escape sequence) in it
            # must not break the message into lines of its choosing.
            super().error(escaped(message))

    description = "Show program core memory usage."
    legacy = argparse.ArgumentParser(prog="ps_mem", description=description)
    _add_legacy_options(legacy)
    usage = legacy.format_usage()
    parser = Parser(prog="ps_mem", description=description,
                    usage=usage[len("usage: "):].rstrip("\n"))
    _add_legacy_options(parser)

    shown = parser.add_argument_group("what to show (since 3.14)")
    shown.add_argument("--group-by", choices=_GROUPINGS, default="program", metavar="KEY",
                       help="rows per program (the default), pid (as -d), cmdline (as -s),"
                            " user or cgroup")
    shown.add_argument("--sort", choices=sorted(_SORT_KEYS), default="ram", metavar="KEY",
                       help="order rows by ram (the default), private, shared, swap,"
                            " count or name")
    shown.add_argument("--reverse", action="store_true", help="largest first")
    shown.add_argument("--top", metavar="N", type=_int_value,
                       help="only the N rows with the largest sort key; totals cover them")
    shown.add_argument("--show-cmdline", dest="split_args", action="store_true",
                       help="the same as -s")
    shown.add_argument("--diff", metavar="BEFORE",
                       help="compare with BEFORE, a file made by --capture: each row's change"
                            " from then to now (or to --procfs AFTER)")
    shown.add_argument("--delta", action="store_true",
                       help="with -w: each row's change of RAM used since the first sample")
    printed = parser.add_argument_group("how to print it (since 3.14)")
    printed.add_argument("--json", action="store_true",
                         help="one JSON document instead of the table (JSON Lines with -w)")
    source = parser.add_argument_group("what to read (since 3.14)")
    source.add_argument("--procfs", metavar="PATH",
                        help="read this proc root or capture file instead of /proc")
    source.add_argument("--capture", metavar="FILE",
                        help="also save everything read, for --procfs FILE later")
    return parser


# The longest watch interval: the most seconds a sleep may be asked for on
# every platform (a C int), and more than anyone waits between samples.
_MAX_WATCH = 2 ** 31 - 1
# A pid has at most this many digits (Linux's are below 2**22); a longer
# "pid" is refused before int() reads it.
_MAX_PID_DIGITS = 20

# 3.14's flags, as plain_options() reads them.
_PLAIN_FLAGS = {"-s": "split_args", "-t": "only_total", "-d": "by_pid", "-S": "show_swap"}


def plain_options(argv: "List[str]") -> "Optional[Options]":
    """The options of the arguments scripts and people pass most (3.14's
    flags, each alone; -p and -w with a valid value as the next argument),
    read as argparse reads them; None for any others.

    Not importing argparse (and the modules it loads) for these keeps a
    run with them as small and quick as a run without arguments.  argparse
    still reads everything else, and answers help, usage and every error.
    """
    fields: Dict[str, Any] = {}
    position = 0
    while position < len(argv):
        arg = argv[position]
        if arg in _PLAIN_FLAGS:
            fields[_PLAIN_FLAGS[arg]] = True
        elif arg in ("-p", "-w") and position + 1 < len(argv):
            position += 1
            value = argv[position]
            numbers = value.split(",") if arg == "-p" else [value]
            # Plain ASCII digits: int() may read more ("+1", " 1", "١"),
            # which is left to argparse, as are 0 and too many seconds for
            # -w, and numbers longer than any pid.
            if not all(number and len(number) <= 10 and not number.strip("0123456789")
                       for number in numbers):
                return None
            if arg == "-p":
                fields["pids"] = tuple(int(number) for number in numbers)
            elif 0 < int(value) <= _MAX_WATCH:
                fields["watch"] = int(value)
            else:
                return None
        else:
            return None
        position += 1
    return Options(**fields)


def parse_options(argv: "List[str]") -> Options:
    options = plain_options(argv)
    if options is None:
        options = parse_options_with_argparse(argv)
    return options


def parse_options_with_argparse(argv: "List[str]") -> Options:
    """Any arguments' options; help, usage and errors as 3.14 prints them."""
    parser = build_parser()
    args = parser.parse_args(argv)
    pids: Tuple[int, ...] = ()
    if args.pids:
        try:
            if any(len(pid.strip()) > _MAX_PID_DIGITS for pid in args.pids.split(",")):
                raise ValueError("too long")
            pids = tuple(int(pid) for pid in args.pids.split(","))
        except ValueError:
            parser.error("Invalid PID(s): %s" % args.pids)
    if args.watch is not None and args.watch <= 0:
        parser.error("Seconds must be positive! (%s)" % args.watch)
    if args.watch is not None and args.watch > _MAX_WATCH:
        parser.error("Seconds must be at most %d! (%s)" % (_MAX_WATCH, args.watch))
    for option, path in (("--procfs", args.procfs), ("--capture", args.capture),
                         ("--diff", args.diff)):
        if path == "":
            parser.error("argument %s: the file name is empty" % option)
    if args.top is not None and args.top <= 0:
        parser.error("argument --top: must be a positive number of rows (%s)" % args.top)
    if args.group_by in ("user", "cgroup") and args.split_args:
        parser.error("--group-by %s cannot be combined with -s" % args.group_by)
    if args.capture is not None and args.watch is not None:
        parser.error("--capture takes one sample; it cannot be combined with -w")
    if args.diff is not None and args.watch is not None:
        parser.error("--diff compares two samples; it cannot be combined with -w"
                     " (see --delta)")
    if args.delta and args.watch is None:
        parser.error("--delta needs -w: it shows the change since the watch's first sample")
    return Options(
        split_args=args.split_args or args.group_by == "cmdline",
        only_total=args.only_total,
        by_pid=args.discriminate_by_pid or args.group_by == "pid",
        show_swap=args.show_swap,
        pids=pids,
        watch=args.watch,
        procfs=args.procfs,
        json=args.json,
        sort=args.sort,
        reverse=args.reverse,
        top=args.top,
        group_by=args.group_by,
        capture=args.capture,
        diff=args.diff,
        delta=args.delta,
    )


# A shell's status for a process that died by SIGINT, SIGTERM or SIGHUP
# (2, 15 and 1 on every Linux).
EXIT_SIGINT, EXIT_SIGTERM, EXIT_SIGHUP = 128 + 2, 128 + 15, 128 + 1


class _Output:
    """stdout as 3.14 writes it: every piece flushed at once, so that a
    watching reader sees each sample as it is made.  A character the
    stream's encoding lacks becomes "?" instead of an error."""

    def __init__(self, stream: "IO[str]") -> None:
        self.stream = stream
        self.binary: Optional[IO[bytes]] = getattr(stream, "buffer", None)
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> None:
        if not text:
            return
        if self.binary is None:
            self.stream.write(text)
            self.stream.flush()
        else:
            self.stream.flush()
            self.binary.write(text.encode(self.encoding, "replace"))
            self.binary.flush()

    def flush(self) -> None:
        self.stream.flush()
        if self.binary is not None:
            self.binary.flush()


def open_procfs(path: "Optional[str]") -> ProcFS:
    """The proc root to read: the live one, a directory, or a capture file."""
    if path is None:
        return ProcFS(default_proc_root())
    if os.path.isfile(path):
        return load_capture(path)
    return ProcFS(path)


class Before(Record):
    """--diff's BEFORE, read and checked against what it is compared with."""

    snapshot: Snapshot
    same_processes: bool  # its pids name the same processes as AFTER's
    notes: "List[str]"  # warnings on how the two relate


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


def open_before(path: str, after: ProcFS, err: "IO[str]") -> "Optional[Before]":
    """The capture at PATH, to compare AFTER with; None, said on ERR in
    one line, where it cannot be read or compared with AFTER.

    Against the live system only a capture of this machine makes sense: a
    capture of another would show every row changed, most likely a file
    mixed up.  Two captures may be of two machines on purpose (a server
    against its twin), so there it is a warning.  Either way, and after a
    reboot, pids name other processes: no process is taken for the same.
    A BEFORE later than AFTER is refused: its changes would all be turned
    around, and the likely cause is two files given the wrong way round.
    """
    name = escaped(path)
    try:
        if os.path.isdir(path):
            raise BadCapture("it is a directory, not a file made by --capture")
        if os.path.exists(path) and not os.path.isfile(path):
            # A FIFO or a device would be read forever, or block.
            raise BadCapture("it is not a regular file")
        snapshot = load_capture(path)
        if "sys/kernel/osrelease" not in snapshot.files:
            raise BadCapture("it holds no kernel release")
    except BadCapture as error:
        err.write("ps_mem: cannot read %s: not a usable capture: %s\n" % (name, error))
        return None
    except OSError as error:
        err.write("ps_mem: cannot read %s: %s\n" % (name, error.strerror or error))
        return None
    live = not after.reading.as_data
    then, now = machine_of(snapshot), machine_of(after)
    relation = how_related(then, now)
    notes = []
    if relation == "host":
        hosts = (escaped(str(then.host)), escaped(str(now.host)))
        if live:
            err.write("ps_mem: cannot compare with %s: it was captured on host '%s', and this"
                      " is host '%s' (to compare two machines, give the other's capture to"
                      " --procfs)\n" % ((name,) + hosts))
            return None
        notes.append("Warning: %s was captured on host '%s', %s on host '%s': rows are"
                     " matched by name only, never as the same process.\n"
                     % (name, hosts[0], escaped(after.root), hosts[1]))
    elif relation == "boot":
        notes.append("Warning: %s was captured in another boot (its boot_id differs): rows"
                     " are matched by name only, never as the same process.\n" % name)
    if relation != "host" and snapshot.time() > after.time():
        err.write("ps_mem: cannot compare with %s: it was captured later (%s) than %s (%s);"
                  " --diff takes the earlier\n"
                  % (name, _utc(snapshot.time()),
                     "the system now" if live else escaped(after.root), _utc(after.time())))
        return None
    return Before(snapshot, relation == "same", notes)


def run_diff(options: Options, before: Before, after: ProcFS, kernel: "KernelVersion",
             release: str, self_pid: "Optional[int]", out: _Output, err: "IO[str]") -> int:
    """--diff: BEFORE and AFTER read with the same options, their rows
    compared (see compare()), the comparison written, then the warnings."""
    started = time.monotonic()
    snapshot = before.snapshot
    before_release = snapshot.read_global("sys/kernel/osrelease")
    before_kernel = kernel_version(before_release)
    probe_swap = options.show_swap or options.json
    after_acc = accuracy(after, kernel, self_pid, probe_swap)
    before_acc = accuracy(snapshot, before_kernel, snapshot.self_pid(), probe_swap)
    # What one side cannot tell, the comparison cannot.
    acc = Accuracy(min(after_acc.ram, before_acc.ram), min(after_acc.swap, before_acc.swap))
    per_process = identifies_processes(options)
    sides = []
    for procfs, side_kernel, side_self in ((snapshot, before_kernel, snapshot.self_pid()),
                                           (after, kernel, self_pid)):
        scan = collect(procfs, options, side_kernel, side_self)
        report = aggregate(scan.samples, scan.unreadable, scan.address_spaces, scan.unparsable)
        starts = ({sample.pid: sample.start for sample in scan.samples} if per_process
                  else None)
        sides.append((report, row_keys(report.programs, starts)))
    (before_report, before_keys), (after_report, after_keys) = sides
    if per_process and not before.same_processes:
        before_keys = [("before", key) for key in before_keys]  # matching none of AFTER's
    comparison = select_changes(compare(before_report, after_report, before_keys, after_keys),
                                options)
    notes = (before.notes
             + warnings(acc, options, after_report.unreadable, after_report.unparsable,
                        after.hiding_option()))
    for text in warnings(Accuracy(2, 2), options._replace(only_total=False),
                         before_report.unreadable, before_report.unparsable):
        notes.append("Warning: %s: %s" % (escaped(options.diff or ""),
                                          text[len("Warning: "):]))
    shown = Shown(acc, comparison.pss_seen, comparison.swap_pss_seen, release, after.time(),
                  notes, time.monotonic() - started)
    out.write(render_diff(comparison, options, shown, snapshot.time(),
                          before_release.decode("utf-8", "replace").strip()))
    out.flush()
    err.write("".join(notes))
    return exit_status(acc, options)


def run(options: Options, out: _Output, err: "IO[str]") -> int:
    try:
        procfs = open_procfs(options.procfs)
    except BadCapture as error:
        err.write("ps_mem: cannot read %s: not a usable capture: %s\n"
                  % (escaped(str(options.procfs)), error))
        return 2
    except OSError as error:
        err.write("ps_mem: cannot read %s: %s\n"
                  % (escaped(str(options.procfs)), error.strerror or error))
        return 2
    if procfs.reading.root_only and os.geteuid() != 0 and not options.pids:
        err.write("Sorry, root permission required, or specify pids with -p\n")
        return 1
    try:
        release = procfs.read_global("sys/kernel/osrelease")
    except OSError:
        err.write("Couldn't access %s\n"
                  "Only GNU/Linux and FreeBSD (with linprocfs) are supported\n"
                  % escaped(procfs.path("")))
        return 2
    kernel = kernel_version(release)
    release_text = release.decode("utf-8", "replace").strip()
    self_pid = procfs.self_pid()
    before = None
    if options.diff is not None:
        before = open_before(options.diff, procfs, err)
        if before is None:
            return 2
    if options.capture is not None:
        procfs = capture(procfs, self_pid)
        try:
            write_capture(procfs, options.capture)
        except OSError as error:
            err.write("ps_mem: cannot write %s: %s\n"
                      % (escaped(options.capture), error.strerror or error))
            return 2
    if before is not None:
        return run_diff(options, before, procfs, kernel, release_text, self_pid, out, err)

    out.write(opening(options))
    # Judged once.  Swap's is worth the probe only where it is shown: with
    # -S, and in the views that tell it whatever -S says (JSON).
    acc = accuracy(procfs, kernel, self_pid, options.show_swap or options.json)
    pss_seen = swap_pss_seen = False
    unreadable = unparsable = 0
    hidden = procfs.hiding_option()
    first: Optional[Baseline] = None  # --delta's first sample
    kcmp = KcmpHelper()
    try:
        while True:
            started = time.monotonic()
            scan: Optional[Scan] = collect(procfs, options, kernel, self_pid, kcmp=kcmp)
            assert scan is not None
            if options.watch is None:
                kcmp.hang_up()
            report: Optional[Report] = aggregate(scan.samples, scan.unreadable,
                                                 scan.address_spaces, scan.unparsable)
            assert report is not None
            seconds = time.monotonic() - started
            unreadable, unparsable = report.unreadable, report.unparsable
            pss_seen = pss_seen or report.pss_seen
            swap_pss_seen = swap_pss_seen or report.swap_pss_seen
            selected = select(report, options)
            delta = None
            if options.delta:
                first, delta = watch_delta(first, scan.samples, report, selected, options)
            report = selected
            del selected
            shown = Shown(acc, pss_seen, swap_pss_seen, release_text, procfs.time(),
                          warnings(acc, options, unreadable, unparsable, hidden), seconds,
                          delta)
            out.write(render(report, options, shown))
            if options.watch is None:
                break
            if not report.programs:
                if not options.json:
                    out.write("Process does not exist anymore.\n")
                break
            # Let this sample go before the next is taken: kept, it would
            # double a watch's memory at its peak.
            scan = report = None
            time.sleep(options.watch)
    except KeyboardInterrupt:
        if options.watch is None:
            raise
        # Ctrl-C is how a watch ends: finish normally.
    finally:
        kcmp.close()
    out.flush()

    err.write("".join(warnings(acc, options, unreadable, unparsable, hidden)))
    return exit_status(acc, options)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; pointed at /dev/null that cannot fail.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def main(argv: "Optional[List[str]]" = None) -> int:
    """Run ps_mem with these arguments; the exit status is returned.

    EXIT_SIGINT means Ctrl-C interrupted a one-shot run: the caller should
    die by SIGINT, as 3.14 does (see _entry_point()).
    """
    if argv is None:
        argv = sys.argv[1:]
    try:
        options = parse_options(argv)
    except SystemExit as done:  # argparse: --help, --version, usage errors
        return done.code if isinstance(done.code, int) else 1
    try:
        return run(options, _Output(sys.stdout), sys.stderr)
    except BrokenPipeError:
        # The reader went away (ps_mem | head): stop quietly, as 3.14 does.
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except Terminated as terminated:
        return 128 + terminated.signal_number


def _entry_point() -> None:
    status = main()
    if status in (EXIT_SIGINT, EXIT_SIGTERM, EXIT_SIGHUP):
        import signal  # only now: most runs never need it

        # Die by the signal that ended the run, as its sender expects.
        sys.stdout.flush()
        signal.signal(status - 128, signal.SIG_DFL)
        os.kill(os.getpid(), status - 128)
    raise SystemExit(status)


# ----------------------------------------------------------------------------
# 9. Work in child processes
# ----------------------------------------------------------------------------
#
# The sections above use two things of this one:
#
#   read_forked(procfs, options, kernel, pids, readers, seen) -> Scan
#       The samples _scan() would take of PIDS, read by READERS processes
#       at once: this one and forked readers.  SEEN, if given, is called
#       with each chunk's samples as they come.
#
#   KcmpHelper()
#       kcmp(2)'s answers on which processes share an address space, from
#       a child kept for the run: start() forks it early, place(alike)
#       tells it of processes whose memory looks alike, spaces() asks for
#       their address spaces, hang_up() lets it go, close() reaps it.
#
# Below them: one forked child and its two pipes (_Child), the messages on
# them (_send, _receive), the two roles (_Reader; KcmpHelper and the
# server it runs), and kcmp itself (AddressSpaces).


class ChildFailed(Exception):
    """A child gave no (more) answers: it raised, was killed, or sent
    garbage."""


# A message between a child and its parent: its length, then that many
# bytes of marshal data.
_LENGTH_BYTES = 8


def _send(fd: int, value: "Any") -> None:
    import marshal

    data = marshal.dumps(value)
    message = memoryview(len(data).to_bytes(_LENGTH_BYTES, "little") + data)
    while message:
        message = message[os.write(fd, message):]


def _receive(fd: int) -> object:
    """The next message's value; ChildFailed at the end of the pipe or on
    anything but a whole message."""
    import marshal

    length = int.from_bytes(_read_exactly(fd, _LENGTH_BYTES), "little")
    try:
        return marshal.loads(_read_exactly(fd, length))
    except (ValueError, EOFError, TypeError) as error:
        raise ChildFailed(error) from error


def _read_exactly(fd: int, size: int) -> bytearray:
    received = bytearray()  # grown in place: no second copy to join
    while len(received) < size:
        data = os.read(fd, min(size - len(received), 1 << 20))
        if not data:
            raise ChildFailed("the pipe ended after %d of %d bytes" % (len(received), size))
        received += data
    return received


# This process's ends of the pipes of every child it has.  A child closes
# all of them as soon as it is forked, so that it keeps no other child's
# pipe open: each child then sees its own pipes end the moment its parent
# is gone, killed or not, and ends too.
_PARENT_ENDS: "Set[int]" = set()


class _Child:
    """A forked child that runs LIFE(questions, answers): it reads the
    parent's messages from QUESTIONS (-1 without ASKS) and sends its own to
    ANSWERS, then ends with os._exit(); it never returns into the parent's
    code, nor flushes the parent's buffered output.

    end() is the one place where a child ends, whichever way its life
    went: it is done, it died, it sent garbage, or the parent was
    interrupted while talking to it.
    """

    def __init__(self, life: "Callable[[int, int], None]", asks: bool = False) -> None:
        answers = os.pipe()
        questions = os.pipe() if asks else (-1, -1)
        try:
            pid = os.fork()
        except OSError:
            for fd in answers + questions:
                if fd >= 0:
                    os.close(fd)
            raise
        if pid == 0:
            _child_life(life, questions[0], answers[1], (answers[0], questions[1]))
        os.close(answers[1])
        if questions[0] >= 0:
            os.close(questions[0])
        self.pid = pid
        self._answers, self._questions = answers[0], questions[1]
        _PARENT_ENDS.update(fd for fd in (self._answers, self._questions) if fd >= 0)
        self._reaped = False

    def fileno(self) -> int:
        """The pipe the child's messages come through."""
        return self._answers

    def receive(self) -> object:
        """The child's next message; ChildFailed, the child ended, if none
        comes."""
        try:
            return _receive(self._answers)
        except BaseException:
            self.end(kill=True)
            raise

    def send(self, message: object) -> None:
        """ChildFailed, the child ended, if it is gone."""
        try:
            _send(self._questions, message)
        except OSError as error:  # EPIPE: the child is gone
            self.end(kill=True)
            raise ChildFailed(error) from error
        except BaseException:
            self.end(kill=True)
            raise

    def hang_up(self) -> None:
        """Close this process's ends: the child sees its pipes end, and
        ends by itself."""
        for fd in (self._questions, self._answers):
            if fd >= 0:
                os.close(fd)
                _PARENT_ENDS.discard(fd)
        self._questions = self._answers = -1

    def end(self, kill: bool = False) -> None:
        """Hang up and reap the child; with KILL, stop it first, wherever
        it is in its life."""
        self.hang_up()
        if self._reaped:
            return
        if kill:
            import signal

            os.kill(self.pid, signal.SIGKILL)  # not yet reaped: still our child
        os.waitpid(self.pid, 0)
        self._reaped = True


def _child_life(life: "Callable[[int, int], None]", questions: int, answers: int,
                parent_ends: "Tuple[int, int]") -> "NoReturn":
    """A forked child's whole life (see _Child); never returns.

    Ctrl-C reaches the whole process group: here it raises
    KeyboardInterrupt, which ends the child quietly, and the parent says
    so.  A parent that is gone ends the pipes: the child's next read or
    write fails, and it ends the same way.
    """
    status = 1
    try:
        for fd in _PARENT_ENDS.union(parent_ends):
            if fd >= 0:
                os.close(fd)
        _PARENT_ENDS.clear()
        life(questions, answers)
        status = 0
    finally:
        os._exit(status)


# Pids a reader takes at a time (see read_forked()).
_CHUNK_PIDS = 32
_TOKEN_BYTES = 4


def read_forked(procfs: ProcFS, options: Options, kernel: "KernelVersion",
                pids: "List[int]", readers: int,
                seen: "Optional[Callable[[List[ProcessSample]], None]]" = None) -> Scan:
    """_scan() by READERS processes at the same time: this one and forked
    children.

    Most of a run is the kernel making smaps_rollup, and for different
    processes it can do that on several CPUs at once.  Threads cannot use
    them: a name takes several short reads, and threads would spend on
    passing the GIL what they saved.  Forked readers share nothing.

    The pids are cut into chunks, whose numbers wait in a pipe; each reader
    takes the next number from it until there are none, so that a reader
    that starts late or runs on a busier CPU simply reads fewer.  The
    chunks are joined in the proc root's order; a chunk a failed child took
    is read here instead, so nothing is lost.
    """
    chunks = _chunks(pids, readers)
    readers = min(readers, len(chunks))
    tokens, tokens_end = os.pipe()
    try:
        numbers = b"".join(index.to_bytes(_TOKEN_BYTES, "little") for index in range(len(chunks)))
        while numbers:
            numbers = numbers[os.write(tokens_end, numbers):]
    finally:
        os.close(tokens_end)  # before any fork: the readers see the end
    children: List[_Reader] = []
    scans: Dict[int, Scan] = {}
    try:
        for _ in range(readers - 1):
            try:
                children.append(_Reader(procfs, options, kernel, chunks, tokens))
            except OSError:  # no fork now (EAGAIN, ENOMEM): fewer readers
                break
        inbox = _ChunkInbox(children, scans, seen)
        for index, scan in _read_chunks(procfs, options, kernel, chunks, tokens):
            scans[index] = scan
            if seen is not None:
                seen(scan.samples)
            inbox.take(wait=False)  # now, not all at the end
        inbox.take(wait=True)
    except BaseException:
        for child in children:
            child.end(kill=True)
        raise
    finally:
        os.close(tokens)
    for child in children:
        child.end()
    samples: List[ProcessSample] = []
    unreadable = unparsable = 0
    for index, chunk in enumerate(chunks):
        taken = scans.get(index)
        if taken is None:  # a chunk a failed child took
            taken = _scan(procfs, options, kernel, chunk)
            if seen is not None:
                seen(taken.samples)
        samples.extend(taken.samples)
        unreadable += taken.unreadable
        unparsable += taken.unparsable
    return Scan(samples, unreadable, unparsable=unparsable)


def _chunks(pids: "List[int]", readers: int) -> "List[List[int]]":
    """PIDS cut into the chunks READERS take one at a time, in order.

    At most 1024: their numbers are all written to a pipe before any
    reader starts, and a pipe holds at least a page.  The last chunks are
    a quarter of the others, so that no reader waits long for another's
    last one.
    """
    size = max(_CHUNK_PIDS, -(-len(pids) // (1024 - 3 * _MAX_READERS)))
    last = max(0, len(pids) - readers * size)
    chunks = [pids[start:min(start + size, last)] for start in range(0, last, size)]
    small = max(1, size // 4)
    return chunks + [pids[start:start + small] for start in range(last, len(pids), small)]


def _read_chunks(procfs: ProcFS, options: Options, kernel: "KernelVersion",
                 chunks: "List[List[int]]", tokens: int) -> "Iterator[Tuple[int, Scan]]":
    """(index, scan) of each chunk whose number this reader takes from the
    TOKENS pipe, as it is read."""
    namer = Namer(procfs, options)
    layouts: Dict[bytes, RollupLayout] = {}
    while True:
        token = os.read(tokens, _TOKEN_BYTES)  # whole: see read_forked()
        if len(token) < _TOKEN_BYTES:
            return
        index = int.from_bytes(token, "little")
        yield index, _scan(procfs, options, kernel, chunks[index], namer, layouts)


class _Reader:
    """A forked reader (see read_forked()): it sends each chunk it reads
    as (index, samples as plain tuples, unreadable, unparsable), then None."""

    def __init__(self, procfs: ProcFS, options: Options, kernel: "KernelVersion",
                 chunks: "List[List[int]]", tokens: int) -> None:
        def life(_questions: int, answers: int) -> None:
            for index, scan in _read_chunks(procfs, options, kernel, chunks, tokens):
                _send(answers, (index, [tuple(sample) for sample in scan.samples],
                                scan.unreadable, scan.unparsable))
            _send(answers, None)

        self._child = _Child(life)

    def fileno(self) -> int:
        return self._child.fileno()

    def next_chunk(self) -> "Optional[Tuple[int, Scan]]":
        """The next chunk it read; None once it has read all it will;
        ChildFailed, the child ended, if it sends what is not a chunk."""
        item = self._child.receive()
        if item is None:
            return None
        try:
            if not isinstance(item, tuple):
                raise TypeError("not a chunk: %r" % type(item))
            index, records, unreadable, unparsable = item
            for position, record in enumerate(records):  # in place: less memory
                records[position] = ProcessSample(*record)
            return index, Scan(records, unreadable, unparsable=unparsable)
        except (TypeError, ValueError) as error:  # not a chunk
            self._child.end(kill=True)
            raise ChildFailed(error) from error

    def end(self, kill: bool = False) -> None:
        self._child.end(kill)


class _ChunkInbox:
    """The chunks forked readers send, taken into SCANS as they come:
    between the chunks this process reads, the work of taking them is done
    while the children still read."""

    def __init__(self, children: "List[_Reader]", scans: "Dict[int, Scan]",
                 seen: "Optional[Callable[[List[ProcessSample]], None]]" = None) -> None:
        import select

        self._scans = scans
        self._seen = seen
        self._poll = select.poll()
        self._open: Dict[int, _Reader] = {}
        for child in children:
            self._poll.register(child.fileno(), select.POLLIN)
            self._open[child.fileno()] = child

    def take(self, wait: bool) -> None:
        """Take the chunks sent so far; with WAIT, all until every child
        has ended.  A child that fails is given up: its chunks are read
        again (see read_forked())."""
        while self._open:
            ready = self._poll.poll(None if wait else 0)
            if not ready:
                return
            for fd, _event in ready:
                child = self._open[fd]
                try:
                    chunk = child.next_chunk()
                except ChildFailed:
                    chunk = None
                if chunk is None:
                    self._poll.unregister(fd)  # it has ended, or failed
                    del self._open[fd]
                    continue
                index, scan = chunk
                self._scans[index] = scan
                if self._seen is not None:
                    self._seen(scan.samples)


class KcmpHelper:
    """kcmp's answers, from a child forked for them and kept for the run.

    In a child: a seccomp filter that kills on kcmp (as systemd's
    SystemCallFilter= does by default) kills only the child, and ps_mem
    goes on with 3.14's rule; and ctypes, which ps_mem needs for nothing
    else, is never loaded in ps_mem itself.  Kept for the run: a watch
    loads ctypes once, not each sample.
    """

    def __init__(self) -> None:
        self._child: Optional[_Child] = None
        self._ready = self._failed = self._placed = False

    def start(self) -> None:
        """Fork the child now: it loads ctypes while we go on."""
        if self._child is None and not self._failed:
            try:
                self._child = _Child(_serve_kcmp, asks=True)
            except OSError:
                self._failed = True

    def place(self, alike: "List[Tuple[int, object]]") -> None:
        """Have the child find the spaces of these processes, (pid, mem_id)
        each, whose memory texts are others' (no waiting for it)."""
        if not alike:
            return
        self._placed = True
        self.start()
        if self._child is not None:
            try:
                self._child.send(("place", alike))
            except ChildFailed:
                self._child, self._failed = None, True

    def spaces(self) -> "Optional[AddressSpaceMap]":
        """The address spaces of the processes placed since the last call;
        None where the kernel cannot tell."""
        placed, self._placed = self._placed, False
        if not placed:
            return {}  # a process whose memory looks like no other's is alone
        if self._child is None:
            return None
        try:
            if not self._ready:
                self._child.receive()  # sent once it has loaded ctypes
                self._ready = True
            self._child.send(("spaces",))
            answer = self._child.receive()
            if answer is None or isinstance(answer, dict):
                return answer
            self._child.end(kill=True)  # not an answer
        except ChildFailed:
            pass
        self._child, self._failed = None, True
        return None

    def hang_up(self) -> None:
        """No more questions: the child ends while ps_mem goes on."""
        if self._child is not None:
            self._child.hang_up()

    def close(self) -> None:
        if self._child is not None:
            self._child.end()
            self._child = None


def _serve_kcmp(questions: int, answers: int) -> None:
    """The kcmp helper's life: load ctypes, say so, then answer until the
    parent hangs up.  ("place", [(pid, mem_id), ...]) wants no answer;
    ("spaces",) is answered with AddressSpaces.spaces(), or None where
    kcmp cannot be used."""
    kcmp: Optional[AddressSpaces]
    try:
        kcmp = AddressSpaces()
        # A first answer, while ps_mem still reads: it brings in what
        # answering needs, and the real question is answered sooner.
        me = os.getpid()
        kcmp.classify([[(me, 0), (me, 0)]])
    except (KcmpUnavailable, OSError, AttributeError):
        kcmp = None
    _send(answers, None)
    while True:
        try:
            message = _receive(questions)
        except ChildFailed:
            return  # the parent hung up: no more questions
        if not isinstance(message, tuple) or not message:
            return  # not from ps_mem: end, and the parent learns no more
        if message[0] == "place":
            if kcmp is not None:
                try:
                    for pid, mem_id in message[1]:
                        kcmp.place(pid, mem_id)
                except (KcmpUnavailable, OSError, AttributeError):
                    kcmp = None  # no answer this run
        else:
            _send(answers, None if kcmp is None else kcmp.spaces())


# kcmp(2)'s number in each Linux syscall table (arch/*/syscall*.tbl; the
# generic table of arm64, riscv, loongarch and others has 272).  Keyed by
# platform.machine() and the width of this Python's pointers, since a 32-bit
# process on a 64-bit kernel uses the 32-bit table.
_KCMP_SYSCALL = {
    ("x86_64", 64): 312, ("x86_64", 32): 349, ("i386", 32): 349, ("i486", 32): 349,
    ("i586", 32): 349, ("i686", 32): 349,
    ("aarch64", 64): 272, ("aarch64", 32): 378, ("aarch64_be", 64): 272,
    ("riscv64", 64): 272, ("riscv32", 32): 272, ("loongarch64", 64): 272,
    ("ppc", 32): 354, ("ppc64", 64): 354, ("ppc64", 32): 354, ("ppc64le", 64): 354,
    ("s390", 32): 343, ("s390x", 64): 343, ("s390x", 32): 343,
    ("sparc", 32): 341, ("sparc64", 64): 341, ("sparc64", 32): 341,
    ("parisc", 32): 332, ("parisc64", 64): 332, ("parisc64", 32): 332,
    ("mips", 32): 4347, ("mips64", 64): 5306, ("alpha", 64): 506, ("m68k", 32): 347,
    ("microblaze", 32): 379, ("xtensa", 32): 331,
}
_KCMP_VM = 1


def _kcmp_number() -> "Optional[int]":
    machine = os.uname().machine
    bits = 64 if sys.maxsize > 2**32 else 32
    # The ABI this Python was built for, e.g. "x86_64-linux-gnux32" (what
    # sysconfig's MULTIARCH says, without importing sysconfig).
    multiarch = getattr(sys.implementation, "_multiarch", "") or ""
    if machine == "x86_64" and multiarch.endswith("gnux32"):
        return 0x40000000 + 312  # x32: the 64-bit table, flagged
    if machine == "mips64" and "gnuabin32" in multiarch:
        return 6311  # n32
    if machine == "mips64" and bits == 32:
        return 4347  # o32
    if machine.startswith("arm") and bits == 32:
        return 378
    if machine.startswith("sh"):
        return 367
    return _KCMP_SYSCALL.get((machine, bits))


class KcmpUnavailable(Exception):
    """The kernel cannot tell us (no kcmp, not permitted, not Linux)."""


class KcmpDenied(Exception):
    """Not permitted for one of these processes (not dumpable, say)."""


class AddressSpaces:
    """Tells exactly which processes share one address space, by asking the
    kernel with kcmp(2) KCMP_VM (in kcmp's helper: see KcmpHelper).

    3.14 guesses this from identical memory-file text, which merges
    independent processes whose maps happen to be alike (ASLR off, idle
    forked workers).  Exactly those processes, the ones 3.14 would take for
    one, are compared: each is placed among one process of each space
    already found for its text, kept in the kernel's own order, so that a
    binary search finds its space or its place with few calls.  (Like
    3.14, a clone whose memory changed between the reads of the two
    processes' files is not recognised.)
    """

    def __init__(self) -> None:
        import ctypes

        number = _kcmp_number()
        if number is None:
            raise KcmpUnavailable("no kcmp number known for this machine")
        self._number = number
        self._syscall = ctypes.CDLL(None, use_errno=True).syscall
        self._syscall.restype = ctypes.c_long
        self._get_errno = ctypes.get_errno
        # Seccomp filters (container defaults) and kernels built without
        # kcmp refuse every call: find out once, on ourselves.
        me = os.getpid()
        try:
            self.compare(me, me)
        except KcmpDenied as denied:
            raise KcmpUnavailable("kcmp not permitted") from denied
        self._forget()

    def _forget(self) -> None:
        # mem_id -> one pid of each space found, in the kernel's order
        self._spaces: Dict[object, List[int]] = {}
        self._members: Dict[object, List[int]] = {}  # mem_id -> pids placed
        self._mm_of: Dict[int, Hashable] = {}
        self._guessed: Set[object] = set()  # mem_ids that kcmp was refused for

    def compare(self, pid1: int, pid2: int) -> int:
        """0 same address space, -1 or 1 different (a stable order)."""
        result = self._syscall(self._number, pid1, pid2, _KCMP_VM, 0, 0)
        if result == 0:
            return 0
        if result == 1:
            return -1
        if result == 2:
            return 1
        error = self._get_errno()
        if result == -1 and error == errno.ESRCH:
            return -1 if pid1 < pid2 else 1  # gone: on its own
        if result == -1 and error in (errno.EPERM, errno.EACCES):
            raise KcmpDenied(pid1, pid2)
        raise KcmpUnavailable(os.strerror(error) if result == -1 else result)

    def place(self, pid: int, mem_id: object) -> None:
        """Find the space of process PID, whose memory text is MEM_ID."""
        self._members.setdefault(mem_id, []).append(pid)
        if mem_id in self._guessed:
            return
        found = self._spaces.setdefault(mem_id, [])
        low, high = 0, len(found)
        try:
            while low < high:
                middle = (low + high) // 2
                order = self.compare(pid, found[middle])
                if order == 0:
                    self._mm_of[pid] = self._mm_of[found[middle]]
                    return
                if order < 0:
                    high = middle
                else:
                    low = middle + 1
        except KcmpDenied:
            # Some of these may not be compared: for all processes of this
            # text, 3.14's guess from identical memory text.
            self._guessed.add(mem_id)
            return
        found.insert(low, pid)
        self._mm_of[pid] = pid

    def spaces(self) -> "AddressSpaceMap":
        """pid -> its address space (the pid of a process in it), for the
        processes placed since the last call."""
        mm_of = self._mm_of
        for mem_id in self._guessed:
            for pid in self._members[mem_id]:
                mm_of[pid] = ("same text", mem_id)
        self._forget()
        return mm_of

    def classify(self, groups: "Iterable[List[Tuple[int, object]]]") -> "AddressSpaceMap":
        """spaces() of the processes of these groups of (pid, mem_id)."""
        for group in groups:
            for pid, mem_id in group:
                self.place(pid, mem_id)
        return self.spaces()


if __name__ == "__main__":
    _entry_point()
