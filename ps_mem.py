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
                       groupings' rows, the CLONE_VM rule, sorting, totals;
                       --system's ledger of all of MemTotal
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
    # Pss_Anon, Pss_File, Pss_Shmem (None where the kernel does not split
    # Pss), Private_Hugetlb: in KiB (see ProcessSample).
    PssParts = Tuple[Optional[int], Optional[int], Optional[int], int]
    # A ProcessSample's fields from private_kib to pss_parts (see read_memory()).
    MemoryFields = Tuple[float, float, float, float, Optional[int], bool, bool,
                         Optional[PssParts]]
    # pid -> its address space (any hashable that is equal for the processes
    # of one space), for processes known to share theirs; every other
    # process is alone in its own.
    AddressSpaceMap = Dict[int, Hashable]
    # --group-by mapping: one process's rows, row name -> (private, shared,
    # shared_hugetlb, swap) in KiB (see ProcessSample.mappings).
    MappingRows = Dict[str, Tuple[float, float, float, float]]
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


class RootUnreadable(Exception):
    """The proc root's list of processes cannot be read (a tree whose
    directory this user may not list): the run cannot go on."""

    def __init__(self, path: str, error: OSError) -> None:
        super().__init__(path)
        self.path = path
        self.reason = error.strerror or str(error)


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
    # --system may ask the use of the tmpfs mounts now (statvfs, through
    # /proc/PID/root for other mount namespaces) and zram's of /sys: the
    # live /proc only.  A tree or a capture answers from what was recorded
    # when it was saved (its ps_mem-system.json), since a statvfs of its
    # mount points would answer for this machine's.
    statvfs: bool = False

    @staticmethod
    def of(root: str, self_pid: "Optional[int]") -> "Reading":
        """How the proc root at ROOT, whose `self` names SELF_PID, is read:
        as the live /proc of this pid namespace (whose `self` is this
        process), else as a tree."""
        try:
            live = os.path.samefile(root, default_proc_root())
        except OSError:
            live = False
        ours = live and self_pid == os.getpid()
        if not live:
            return TREE
        return LIVE if ours else LIVE._replace(kcmp=False)


LIVE = Reading(kcmp=True, fork_readers=True, as_3_14=False, names_from_comm=True,
               root_only=True, as_data=False, statvfs=True)
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


# The errno of each NotData _read_tree_file() raises: what a capture of a
# tree records of such a file, and answers again (no file of the live
# /proc fails so).
_NOT_DATA_ERRNOS = frozenset((errno.ELOOP, errno.ENOTDIR, errno.ENXIO, errno.EINVAL,
                              errno.EFBIG))


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


# Linux's pids are below PID_MAX_LIMIT.
_PID_LIMIT = 1 << 22


def _pid_number(name: str) -> "Optional[int]":
    """NAME's pid, if it is one as the kernel writes it: ASCII digits
    (str.isdigit() is true for "²" too), no leading zero ("01140" would be
    pid 1140 a second time), below PID_MAX_LIMIT."""
    if not 0 < len(name) <= 7 or name.strip("0123456789") or name[0] == "0":
        return None
    number = int(name)
    return number if number < _PID_LIMIT else None


def _pid_entries(names: "Iterable[str]") -> "List[int]":
    """The entries of a proc root that are pids (_pid_number())."""
    found = []
    for name in names:
        number = _pid_number(name)
        if number is not None:
            found.append(number)
    return found


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
        self._self_pid: Optional[int] = None
        self._self_read = False
        self.reading = Reading.of(root, self.self_pid()) if reading is None else reading

    def path(self, *parts: object) -> str:
        return os.path.join(self.root, *(str(part) for part in parts))

    def _read(self, relative: str, one_record: bool = False) -> bytes:
        if self.reading.as_data:
            return _read_tree_file(self.root, relative)
        return _read_file(self._prefix + relative, one_record)

    def read_global(self, name: str) -> bytes:
        """A file outside any pid directory; OSError propagates."""
        return self._read(name)

    def read_relative(self, relative: str) -> bytes:
        """The file at RELATIVE, read as read() reads it, but whole (see
        capture()); OSError propagates."""
        return self._read(relative)

    def readlink_relative(self, relative: str) -> str:
        """The link at RELATIVE (a pid's exe); OSError propagates."""
        if not self.reading.as_data:
            return os.readlink(self._prefix + relative)
        directory, _, name = relative.rpartition("/")
        fd = _open_in_tree(self.root, directory, _DIRECTORY_FLAGS)
        try:
            return os.readlink(name, dir_fd=fd)
        finally:
            os.close(fd)

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
            return self.readlink_relative("%d/%s" % (pid, name))
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
        try:
            return _pid_entries(os.listdir(self.root))
        except OSError as error:
            raise RootUnreadable(self.root, error) from None

    def self_pid(self) -> "Optional[int]":
        """The pid the root's `self` entry names: ps_mem itself on the live
        /proc, the capturing process in a saved tree.  Read once: it names
        the process that opened the root, for as long as that reads it."""
        if not self._self_read:
            self._self_read = True
            try:
                target = os.readlink(self.path("self"))
            except OSError:
                return None
            # The kernel's link is the pid alone: a tree's "1/../2" or
            # "/proc/2" names no process, rather than leave out pid 2.
            self._self_pid = _pid_number(target)
        return self._self_pid

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
# and nothing else (no environ, no memory contents).  Full smaps, many
# times a rollup's size, is the one exception: kept where there is no
# rollup, and for every process only when the capturing run shows
# --group-by mapping (see Manifest.full_smaps).
_CAPTURED_FILES = ("cmdline", "status", "smaps_rollup", "smaps", "statm", "cgroup", "stat")
# Besides the kernel's release and meminfo, which machine and which boot of
# it the capture comes from (see machine_of()): --diff matches processes by
# pid only within one boot, and compares with the live system only a
# capture of this machine.
_BOOT_ID = "sys/kernel/random/boot_id"
_HOSTNAME = "sys/kernel/hostname"
_PROC_GLOBALS = ("sys/kernel/osrelease", "meminfo", "sysvipc/shm", _BOOT_ID, _HOSTNAME)
# What --system reads that is not a file of /proc: each tmpfs mount's use as
# statvfs answered, and zram's (see _parse_system_record()).  It is kept in
# the proc/ folder, so that an unpacked capture, or a fixture tree, has it.
_SYSTEM_RECORD = "ps_mem-system.json"
_CAPTURED_GLOBALS = _PROC_GLOBALS + (_SYSTEM_RECORD,)
_MANIFEST = "ps_mem-capture.json"
_END = "ps_mem-capture.end"
_CAPTURE_FORMAT = 2

# What a capture may hold.  A capture of a large machine is far below each
# bound; each bounds what a crafted file can cost in memory and time.
_MAX_UNPACKED = 1 << 30  # bytes of tar inside the gzip stream
_MAX_KEPT = 256 << 20  # bytes of the files kept
_MAX_MEMBER = 64 << 20  # bytes of one file (as _MAX_TREE_FILE)
_MAX_MEMBERS = 2000000
# The extended (PAX or GNU) tar headers before one member: ps_mem's own
# hold a long name or link target, a size, a time.  Every record is parsed
# and kept, so both their bytes and their records are bounded, per member.
_MAX_HEADERS = 64 << 10  # bytes
_MAX_RECORDS = 64
# A manifest is read whole by json.loads(), which makes an object of each
# value however small its text ("[]" or "{}"): its values are bounded, as
# well as its bytes (see _json_values()).  A large machine's manifest holds
# a few values a process.
_MAX_MANIFEST = 8 << 20
_MAX_MANIFEST_VALUES = 1 << 20
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
    # Every process's full smaps is kept, as --group-by mapping reads it:
    # the capturing run asked for that view, or the kernel has no
    # smaps_rollup.  Else smaps is kept only for the accuracy probe.
    full_smaps: bool = False


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
        if code in _NOT_DATA_ERRNOS:  # not data in the tree captured
            return NotData(code, os.strerror(code), relative)
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
            raise BadCapture("its %s is larger than %d MiB" % (_MANIFEST, _MAX_MANIFEST >> 20))
        manifest = _parse_manifest(members.data())
        wanted = frozenset(manifest.pids)
        files: Dict[str, bytes] = {}
        links: Dict[str, str] = {}
        count = size = kept = 0
        while True:
            member = members.next()
            if member is None:
                raise BadCapture("it is truncated: no end record after its %d files" % count)
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
                # The kernel writes an exe link's target into a PATH_MAX
                # buffer; each one kept counts what it takes in memory.
                if len(os.fsencode(target)) > _MAX_PATH:
                    raise BadCapture("its %s links to more than %d bytes, which no kernel writes"
                                     % (escaped(name), _MAX_PATH))
                kept += sys.getsizeof(target)
                if kept > _MAX_KEPT:
                    raise BadCapture("its files come to more than %d MiB" % (_MAX_KEPT >> 20))
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
    if _SYSTEM_RECORD in files:
        try:
            _parse_system_record(files[_SYSTEM_RECORD])
        except ValueError as error:
            raise BadCapture("its %s is not as ps_mem writes it: %s"
                             % (_SYSTEM_RECORD, error)) from error
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
        raise BadCapture("its end record (%s) is not JSON" % _END) from error
    if not isinstance(end, dict) or end.get("files") != count or end.get("bytes") != size:
        raise BadCapture("it is incomplete: %d files of %d bytes where its end record says %s"
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
                if not self._file.tell():
                    raise BadCapture("the file is empty")
                raise BadCapture("it is truncated (its gzip stream ends early)")
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
                raise BadCapture("it is truncated")
        start = self._start
        self._start += size
        with memoryview(self._buffer) as buffer:  # one copy, not two
            return bytes(buffer[start:start + size])

    def skip(self, size: int) -> None:
        while size:
            if self._start == len(self._buffer) and not self._more():
                raise BadCapture("it is truncated")
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
        header_bytes = records = 0
        while True:
            header = self._stream.read(_TAR_BLOCK)
            if not header.strip(b"\0"):
                return None  # the end-of-archive block
            if _tar_number(header[148:156]) != sum(header[:148]) + 256 + sum(header[156:]):
                raise BadCapture("it is not a tar archive (a header's checksum is wrong)")
            kind, size = header[156:157], _tar_number(header[124:136])
            if kind in (b"x", b"g", b"L", b"K"):  # a header of the member that follows
                header_bytes += size
                if header_bytes > _MAX_HEADERS:
                    raise BadCapture("a tar member's extended headers come to more than %d KiB"
                                     % (_MAX_HEADERS >> 10))
                data = self._stream.read(size)
                self._stream.skip(-size % _TAR_BLOCK)
                if kind == b"x":
                    pairs = _pax_records(data, _MAX_RECORDS - records)
                    records += len(pairs)
                    extended.update(pairs)
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


def _pax_records(data: bytes, most: int) -> "List[Tuple[str, str]]":
    """The records of a PAX extended header: "LENGTH key=value\\n" each;
    BadCapture past MOST of them."""
    records: List[Tuple[str, str]] = []
    position = 0
    while position < len(data):
        if len(records) >= most:
            raise BadCapture("a tar member's extended headers hold more than %d records"
                             % _MAX_RECORDS)
        space = data.find(b" ", position, position + 12)
        if space < 0 or not data[position:space].isdigit():
            raise BadCapture("it is not a tar archive (a PAX header is garbled)")
        end = position + int(data[position:space])
        record = data[space + 1:end]
        if end > len(data) or end <= space or not record.endswith(b"\n") or b"=" not in record:
            raise BadCapture("it is not a tar archive (a PAX header is garbled)")
        key, _, value = record[:-1].partition(b"=")
        records.append((key.decode("ascii", "replace"), os.fsdecode(value)))
        position = end
    return records


def _parse_manifest(data: bytes) -> Manifest:
    """A capture's manifest, every field checked; BadCapture naming the
    first that is not as ps_mem writes it."""
    import json

    if _json_values(data) > _MAX_MANIFEST_VALUES:
        raise BadCapture("its %s holds more than %d JSON values"
                         % (_MANIFEST, _MAX_MANIFEST_VALUES))
    try:
        # NaN and Infinity, which JSON has not but json reads, are then
        # refused by the field they are in.
        document = json.loads(data.decode("utf-8"))
    except RecursionError as error:
        raise BadCapture("its %s is nested too deeply" % _MANIFEST) from error
    except (UnicodeError, ValueError) as error:
        raise BadCapture("its %s is not JSON: %s"
                         % (_MANIFEST, escaped(str(error))[:200])) from error
    if not isinstance(document, dict):
        raise BadCapture("its %s is not a JSON object" % _MANIFEST)
    if document.get("format") != _CAPTURE_FORMAT:
        raise BadCapture("its %s says format %s, not %d" % (
            _MANIFEST, escaped(repr(document.get("format")))[:40], _CAPTURE_FORMAT))

    def field(name: str, check: "Callable[[Any], bool]", what: str, default: "Any") -> "Any":
        value = document.get(name, default)
        if not check(value):
            raise BadCapture('bad "%s" in %s: not %s' % (name, _MANIFEST, what))
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
        raise BadCapture('bad "pids" in %s: a pid listed twice' % _MANIFEST)
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
        version=field("ps_mem", lambda value: isinstance(value, str), "a version", ""),
        full_smaps=field("full_smaps", lambda value: type(value) is bool, "true or false",
                         False))


def _json_values(data: bytes) -> int:
    """At least as many as the values JSON text DATA holds (an object's
    key and value counted once): each but the outermost follows a "[", a
    "{" or a ",", which are counted without parsing."""
    return data.count(b"[") + data.count(b"{") + data.count(b",") + 1


def _manifest_json(manifest: Manifest) -> bytes:
    """MANIFEST as a capture holds it (see _parse_manifest())."""
    import json

    recorded = manifest.address_spaces
    return json.dumps({
        "format": _CAPTURE_FORMAT, "ps_mem": manifest.version, "time": manifest.time,
        "self": manifest.self_pid, "pids": manifest.pids, "errors": manifest.errors,
        "path_exists": manifest.path_exists, "users": manifest.users,
        "full_smaps": manifest.full_smaps,
        "address_spaces": None if recorded is None else {
            str(pid): mm for pid, mm in recorded.items()},
    }, indent=1, sort_keys=True).encode("utf-8")


class ShmMount(Record):
    """A tmpfs (or devtmpfs) superblock and what statvfs said it used.

    Its files' pages are Shmem.  `used_bytes` is None where statvfs could
    not tell: a tmpfs without a size limit reports no blocks, and a mount
    point with another mount on top answers for that one."""

    mount_point: str  # as the mount namespace it is in sees it
    fs_type: str  # "tmpfs" or "devtmpfs"
    device: "Optional[str]"  # "major:minor": one per superblock
    used_bytes: "Optional[int]"
    size_bytes: "Optional[int]"
    # A process whose mount namespace it was found in; None for ps_mem's own.
    namespace_pid: "Optional[int]" = None


class SystemRecord(Record):
    """What --system reads that is not a /proc file (see _SYSTEM_RECORD)."""

    mounts: "List[ShmMount]"  # one per superblock
    ramfs: "List[str]"  # ramfs mount points: their use cannot be asked
    zram_used_bytes: "Dict[str, int]"  # zram device -> the RAM it uses


# Filesystems whose pages are Shmem: tmpfs, and devtmpfs, which is a tmpfs
# (a ramfs only in kernels built without CONFIG_TMPFS).
_SHMEM_TYPES = ("tmpfs", "devtmpfs")
_MAX_MOUNTS = 65536  # lines of a mount table read, and mounts recorded
_MAX_PATH = 4096  # PATH_MAX
_MAX_SIZE_BYTES = 2 ** 63
# A system record's bytes and values (see _MAX_MANIFEST_VALUES): as many
# as _MAX_MOUNTS mounts, each a few values.
_MAX_SYSTEM_RECORD = 16 << 20
_MAX_SYSTEM_VALUES = 1 << 20


def _parse_system_record(data: bytes) -> SystemRecord:
    """A proc root's ps_mem-system.json, as _system_record_json() writes
    it: ValueError naming the first thing that is not.  Keys it does not
    know are passed over, for what a later ps_mem may add."""
    import json

    if len(data) > _MAX_SYSTEM_RECORD:
        raise ValueError("larger than %d MiB" % (_MAX_SYSTEM_RECORD >> 20))
    if _json_values(data) > _MAX_SYSTEM_VALUES:
        raise ValueError("more than %d JSON values" % _MAX_SYSTEM_VALUES)
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=float)
    except RecursionError as error:
        raise ValueError("nested too deeply") from error
    except (UnicodeError, ValueError) as error:
        raise ValueError("not JSON: %s" % escaped(str(error))[:200]) from error
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")

    def size(value: "Any") -> bool:
        return value is None or type(value) is int and 0 <= value < _MAX_SIZE_BYTES

    def path(value: "Any") -> bool:
        return isinstance(value, str) and value.startswith("/") and len(value) <= _MAX_PATH

    def device(value: "Any") -> bool:
        if value is None:
            return True
        if not isinstance(value, str) or len(value) > 21:
            return False
        major, colon, minor = value.partition(":")
        return bool(colon and major and minor) and not (major + minor).strip("0123456789")

    entries = document.get("mounts", [])
    if not isinstance(entries, list) or len(entries) > _MAX_MOUNTS:
        raise ValueError("its mounts are not a list of at most %d" % _MAX_MOUNTS)
    mounts = []
    for entry in entries:
        if not (isinstance(entry, dict) and path(entry.get("mount_point"))
                and entry.get("fs_type") in _SHMEM_TYPES and device(entry.get("device"))
                and size(entry.get("used_bytes")) and size(entry.get("size_bytes"))):
            raise ValueError("a mount is not a tmpfs mount point with its use in bytes")
        used, total = entry.get("used_bytes"), entry.get("size_bytes")
        if used is not None and total is not None and used > total:
            raise ValueError("a mount uses more than its size")
        pid = entry.get("namespace_pid")
        if not (pid is None or type(pid) is int and 0 < pid < 2 ** 32):
            raise ValueError("a mount's namespace_pid is not a pid")
        mounts.append(ShmMount(entry["mount_point"], entry["fs_type"], entry.get("device"),
                               used, total, pid))
    ramfs = document.get("ramfs", [])
    if not (isinstance(ramfs, list) and len(ramfs) <= _MAX_MOUNTS
            and all(path(point) for point in ramfs)):
        raise ValueError("its ramfs are not a list of mount points")
    zram = document.get("zram_used_bytes", {})
    if not (isinstance(zram, dict) and len(zram) <= 256
            and all(len(name) <= 64 and size(used) and used is not None
                    for name, used in zram.items())):
        raise ValueError("its zram_used_bytes is not a table of byte counts")
    return SystemRecord(mounts, ramfs, zram)


def _system_record_json(record: SystemRecord) -> bytes:
    """RECORD as a proc root keeps it (see _parse_system_record())."""
    import json

    return json.dumps({
        "mounts": [{"mount_point": mount.mount_point, "fs_type": mount.fs_type,
                    "device": mount.device, "used_bytes": mount.used_bytes,
                    "size_bytes": mount.size_bytes, "namespace_pid": mount.namespace_pid}
                   for mount in record.mounts],
        "ramfs": record.ramfs,
        "zram_used_bytes": record.zram_used_bytes,
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
    # Pss_Anon, Pss_File and Pss_Shmem (smaps_rollup, Linux 5.3 and later),
    # read only where asked (--system); None where not, or not all there.
    pss_parts: "Optional[Tuple[int, int, int]]" = None


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
# The parts of Pss that --system asks for, in smaps_rollup only (a page is
# anon if PageAnon, else shmem if swap-backed, else file).
_PSS_ANON, _PSS_FILE, _PSS_SHMEM = range(7, 10)
_PART_KEYS = {b"Pss_Anon": _PSS_ANON, b"Pss_File": _PSS_FILE, b"Pss_Shmem": _PSS_SHMEM}
_PARTS = rb"\n(Pss_Anon|Pss_File|Pss_Shmem):[ \t]*(\S*)"
# A counted line and its value; a counted line whose value is not a number
# makes the text unparsable.  The pattern starts with a newline, not ^
# under re.M, so that the regex engine skips from one newline to the next;
# the text's first line is matched on its own.
_COUNTED = rb"(Private\w*|Shared\w*|Pss|Swap|SwapPss):[ \t]*(\S*)"
_COUNTER = b"\n" + _COUNTED

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


def _counters(sums: "List[int]", pss_lines: int, swap_pss_lines: int,
              parts: bool = False) -> MemoryCounters:
    # Each Pss line is truncated to whole KiB: add back the average error,
    # 0.5 KiB a line (exact in a float, as 3.14's running sum is).
    return MemoryCounters(sums[_PRIVATE], sums[_SHARED], sums[_PRIVATE_HUGE],
                          sums[_SHARED_HUGE], sums[_PSS] + 0.5 * pss_lines, sums[_SWAP],
                          sums[_SWAP_PSS], pss_lines > 0, swap_pss_lines > 0,
                          (sums[_PSS_ANON], sums[_PSS_FILE], sums[_PSS_SHMEM]) if parts else None)


def _smaps_by_lines(text: bytes, split: bool = False) -> MemoryCounters:
    """The counters of any smaps text, a counted line at a time: the
    general reading, which every other must agree with.  SPLIT: with
    Pss_Anon, Pss_File and Pss_Shmem, where each is there once."""
    import itertools
    import re  # only here: a kernel that makes smaps_rollup never needs it

    sums = [0, 0, 0, 0, 0, 0, 0]
    pss_lines = swap_pss_lines = 0
    first = re.match(_COUNTED, text)
    # One line at a time, with no list of them all, nor a copy of the text.
    for match in itertools.chain([first] if first else [], re.finditer(_COUNTER, text)):
        key, number = match.groups()
        kind = _key_kind(key)
        assert kind is not None  # every key the regex finds counts
        sums[kind] += _number(number)
        if kind == _PSS:
            pss_lines += 1
        elif kind == _SWAP_PSS:
            swap_pss_lines += 1
    parts = False
    if split and b"Pss_Anon:" in text:
        sums += [0, 0, 0]
        found = []
        first = re.match(_PARTS[1:], text)  # the pattern less its newline
        for match in itertools.chain([first] if first else [], re.finditer(_PARTS, text)):
            key, number = match.groups()
            sums[_PART_KEYS[key]] += _number(number)
            found.append(key)
        parts = sorted(found) == sorted(_PART_KEYS)
    if max(sums) > _MAX_KIB or min(sums) < -_MAX_KIB:
        raise ValueError("smaps counter out of range")
    return _counters(sums, pss_lines, swap_pss_lines, parts)


# The fast path, for smaps_rollup.  A rollup's layout is its text from the
# first newline on (its lines, less the address range) with every digit and
# space made "#".  The kernel pads each number to a fixed width, so the
# rollups of one kernel share a few layouts, and the texts of one layout
# differ only where the "#"s are: a rollup of a known layout is read by
# slicing its numbers out, with no search for its lines.
_NUMBER_OR_SPACE = bytes(35 if byte in b"0123456789 " else byte for byte in range(256))
_MAX_LAYOUTS = 32  # a scan's; more than a kernel makes
_MAX_ROLLUP = 4096  # bytes: a rollup is a few dozen short lines


class RollupLayout(Record):
    """Where the counted numbers of a rollup layout are."""

    fields: "Tuple[Tuple[int, int, int], ...]"  # (start, end, kind) in the lines
    line_ends: int  # lines ending " kB\n": all of them
    pss_lines: int
    swap_pss_lines: int
    parts: bool = False  # Pss_Anon, Pss_File and Pss_Shmem each once (split only)


def _learn_layout(text: bytes, split: bool = False) -> "Optional[Tuple[bytes, RollupLayout]]":
    """TEXT's layout, if TEXT is a rollup as the kernel makes it: after the
    first line, only lines "Key:", a number padded with spaces, " kB", of
    keys made of letters and "_".  None for any other text.

    For such a text, slicing the numbers out reads exactly what the regex
    reads: a key of letters only is matched by the regex's `Private\\w*:`
    (or the other alternatives) exactly when _key_kind() counts it, and
    the field after the colon holds the number and the padding before it.
    Digits may run into a key only where the layout would then differ.
    SPLIT: Pss_Anon, Pss_File and Pss_Shmem are read too.
    """
    start = text.find(b"\n")
    if start < 0 or not text.endswith(b"\n") or text[:1] in (b"P", b"S"):
        return None  # the first line, the one a layout leaves free, must not count
    if b"\r" in text or b"\x0b" in text or b"\x0c" in text:
        return None  # whitespace int() skips before a number, and the regex does not
    lines = text[start:]
    fields = []
    pss_lines = swap_pss_lines = 0
    parts = []
    line_start = 1
    for line in lines[1:-1].split(b"\n"):
        key, colon, number = line.partition(b":")
        if not colon or not number.endswith(b" kB") or not key.replace(b"_", b"").isalpha():
            return None
        kind = _key_kind(key)
        if kind is None and split:
            kind = _PART_KEYS.get(key)
            if kind is not None:
                parts.append(kind)
        if kind is not None:
            if len(number) - 3 > _MAX_DIGITS:
                return None  # the general reading refuses the longer numbers
            fields.append((line_start + len(key) + 1, line_start + len(line) - 3, kind))
            pss_lines += kind == _PSS
            swap_pss_lines += kind == _SWAP_PSS
        line_start += len(line) + 1
    layout = RollupLayout(tuple(fields), lines.count(b" kB\n"), pss_lines, swap_pss_lines,
                          sorted(parts) == [_PSS_ANON, _PSS_FILE, _PSS_SHMEM])
    return lines.translate(_NUMBER_OR_SPACE), layout


def _rollup_by_layout(text: bytes, layouts: "Dict[bytes, RollupLayout]", split: bool = False
                      ) -> "Optional[MemoryCounters]":
    """The counters of TEXT if it is a rollup whose layout is in LAYOUTS
    (or can be learnt, see _learn_layout(), and is then added); else None,
    for the general reading.

    A layout fixes every byte but the digits and spaces, so the same keys
    start the same lines, and a counted number's field holds only digits
    and spaces: int() reads it as the regex does when it is one run of
    digits, and refuses it otherwise.  All lines still ending " kB" means
    no number ran into its unit; and the first line must not start with a
    counted key.  SPLIT: see _learn_layout(); a layout learnt for it is
    kept apart from the one learnt without.
    """
    start = text.find(b"\n")
    if start < 0 or text[:1] in (b"P", b"S") or len(text) > _MAX_ROLLUP:
        return None
    lines = text[start:]
    key = lines.translate(_NUMBER_OR_SPACE)
    if split:
        key += b"split"  # no layout ends so: its last line ends with a newline
    layout = layouts.get(key)
    if layout is None:
        if len(layouts) >= _MAX_LAYOUTS:
            return None
        learnt = _learn_layout(text, split)
        if learnt is None:
            return None
        layouts[key] = layout = learnt[1]
    if lines.count(b" kB\n") != layout.line_ends:
        return None
    sums = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0] if split else [0, 0, 0, 0, 0, 0, 0]
    try:
        for field_start, field_end, kind in layout.fields:
            sums[kind] += int(lines[field_start:field_end])
    except ValueError:
        return None
    if max(sums) > _MAX_KIB or min(sums) < -_MAX_KIB:
        return None  # for the general reading to refuse
    return _counters(sums, layout.pss_lines, layout.swap_pss_lines, layout.parts)


def parse_smaps(text: bytes, layouts: "Optional[Dict[bytes, RollupLayout]]" = None,
                split: bool = False) -> MemoryCounters:
    """Sum the counters of /proc/PID/smaps or smaps_rollup.

    Lines that do not count are ignored, so new kernel fields do no harm; a
    counted line without a number raises ValueError.

    LAYOUTS, kept by the caller from one text to the next, lets a rollup be
    read by its layout (see _rollup_by_layout()); the text alone decides
    whether it can be, and the answer is the same either way.  SPLIT: read
    Pss_Anon, Pss_File and Pss_Shmem too, into pss_parts (for --system: the
    default report needs none of them).
    """
    if layouts is not None:
        counters = _rollup_by_layout(text, layouts, split)
        if counters is not None:
            return counters
    return _smaps_by_lines(text, split)


# Full smaps summed per mapping, for --group-by mapping.  The rows are what
# processes map: each file, the heap, the stacks, anonymous memory and the
# kernel's other named areas, each summed over its mappings.
#
# Each row keeps the seven sums above, counted by the same rules as
# parse_smaps() counts a whole process, then two counts of Pss lines: all
# of them, and those of mappings with shared pages, the only ones whose Pss
# the kernel truncates (see _ROUNDING_KIB).
_PSS_LINES, _ROUNDED_LINES = 7, 8
_MAPPING_SUMS = 9
# What a regex's \w matches in bytes: a counted key is "Private" or
# "Shared" and then these only, as _COUNTER reads it.
_WORD = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
# A mapping's header starts with its address range, in lowercase hex; every
# other line the kernel writes starts with a key, whose first letter is a
# capital.  No name can start a line: the kernel writes a newline in one
# as "\012".
_HEX_FIRST = tuple(byte in b"0123456789abcdef" for byte in range(256))

# The Pss of a mapping is the sum of its pages' shares, which the kernel
# keeps to a 4096th of a byte and prints truncated to whole KiB.  A private
# page (mapped once) brings a whole 4 KiB, so a mapping without shared pages
# has an exact Pss, and one with some is short by 0 to 1 KiB, 0.5 on
# average, which is added back to it alone.  Added to every Pss line, as
# 3.14 adds it to each line of a whole process's smaps, it would also count
# half a KiB for every private or empty mapping, thousands of them in a big
# process.  The default report adds it once a process, to smaps_rollup's
# one Pss (the same shares summed before truncating): the totals of the two
# views differ by at most (k - 1) / 2 KiB a process with k mappings with
# shared pages.
_ROUNDING_KIB = 0.5


class MappingCounters(Record):
    """One process's full smaps, summed per row name (see mapping_name())."""

    # name -> (private, shared, private_hugetlb, shared_hugetlb, pss, swap,
    # swap_pss, pss_lines, rounded_pss_lines), in KiB and lines, as read
    rows: "Dict[str, Tuple[int, ...]]"
    has_pss: bool  # some mapping shows Pss
    has_swap_pss: bool


def _counted_value(rest: bytes) -> int:
    # A counted line's number as _COUNTER finds it: after spaces and tabs,
    # the run of non-whitespace (empty, and so refused, where other
    # whitespace comes first).
    rest = rest.lstrip(b" \t")
    if not rest or rest[:1].isspace():
        raise ValueError("smaps counter without a number")
    return _number(rest.split(None, 1)[0])


# The longest mapping header read.  The kernel's name of a mapping is a
# path (at most PATH_MAX, 4096 bytes, each newline in it written as four)
# or a short [name]: a longer header is not the kernel's, and its copies
# would cost several times its size.
_MAX_MAPPING_HEADER = 1 << 16


def _raw_key(header: bytes) -> bytes:
    """A mapping header's fields from its device on ("fe:00 260131    /usr/
    bin/cat"): what tells one mapped object from another.  The address
    range, permissions and offset differ between the mappings of one file,
    so they are left out; mapping_name() makes the row name of it."""
    if len(header) > _MAX_MAPPING_HEADER:
        raise ValueError("smaps mapping header too long")
    fields = header.split(None, 3)
    if len(fields) < 4:
        raise ValueError("smaps mapping header without a device")
    return fields[3]


def _read_lines(lines: "List[bytes]", raw: "Dict[bytes, List[int]]", state: "List[Any]") -> None:
    """Add LINES (whole lines of smaps, headers or counters) to RAW, the sums
    by raw key, continuing the mapping STATE says: [its sums (None before
    the first header), its Pss lines so far, whether it has shared pages].

    A line that does not count is skipped, as in parse_smaps(); a counted
    line without a number, or one before any header, raises ValueError.
    """
    sums, block_pss, block_shared = state
    known = _KNOWN_KEYS
    hex_first = _HEX_FIRST
    for line in lines:
        if not line:
            continue
        first = line[0]
        if hex_first[first]:
            if block_shared and block_pss:
                sums[_ROUNDED_LINES] += block_pss
            key = _raw_key(line)
            sums = raw.get(key)
            if sums is None:
                sums = raw[key] = [0] * _MAPPING_SUMS
            block_pss = block_shared = 0
            continue
        if first != 80 and first != 83:  # "P" and "S" start every counted key
            continue
        key, colon, rest = line.partition(b":")
        if not colon:
            continue
        kind = known.get(key)
        if kind is None:
            if key.startswith(b"Private"):
                kind, tail = _PRIVATE, key[7:]
            elif key.startswith(b"Shared"):
                kind, tail = _SHARED, key[6:]
            else:
                continue
            if tail.translate(None, _WORD):
                continue
        value = _counted_value(rest)
        if sums is None:
            raise ValueError("smaps counter before any mapping")
        sums[kind] += value
        if kind == _PSS:
            sums[_PSS_LINES] += 1
            block_pss += 1
        elif kind == _SHARED and value:
            block_shared = 1
    state[:] = sums, block_pss, block_shared


def _end_mapping(state: "List[Any]") -> None:
    sums, block_pss, block_shared = state
    if block_shared and block_pss:
        sums[_ROUNDED_LINES] += block_pss


# The fast path, for full smaps.  One kernel prints every mapping's lines
# after the header alike: the same keys in the same order, each number
# padded to a fixed width.  With every digit and space made "#", the lines
# of all mappings (but those with a number too wide for its field) are one
# text, the mapping layout, and the counted numbers sit at fixed offsets in
# it.
#
# The reader translates the text once and splits it at its VmFlags lines
# (the last line of a mapping since Linux 3.8; no name can hold the newline
# before one).  A piece that ends with the layout holds one mapping's
# lines, checked byte for byte by one comparison; before them are the rest
# of the previous VmFlags line and, normally, the header alone.  Anything
# else (a mapping of another layout, lines of a newer kernel, a cut end) is
# read by _read_lines(), so the answer is always the general reader's.
#
# The counted numbers lie together, from Pss to SwapPss, and their text
# repeats from one mapping to the next (all zero, one private page, ...):
# it maps to its values in a cache, which spares most int() calls.
_MAX_MAPPING_LAYOUTS = 8  # a scan's; one kernel makes one
_MAX_CACHED = 4096  # texts of counted numbers a layout keeps, whatever the input
_MAX_CACHED_NAMES = 65536  # row names by raw key a layout keeps
_PIECE = 1 << 18  # bytes of text translated or split at once, at least


class MappingLayout(Record):
    """How to read the lines of a mapping (after its header) of one layout,
    and what a scan has learnt reading them."""

    ending: bytes  # "\n" + the lines, digits and spaces as "#"
    size: int  # of the lines, without the newline that ends the last
    numbers: "Tuple[int, int]"  # where the counted numbers lie, in the lines
    fields: "Tuple[Tuple[int, int, int], ...]"  # (kind, start, end) in that text
    pss_lines: int
    cache: "Dict[bytes, Tuple[Tuple[Tuple[int, int], ...], bool]]"  # see _values()
    names: "Dict[bytes, str]"  # raw key -> row name (see _by_name())


def _learn_mapping_layout(text: bytes) -> "Optional[MappingLayout]":
    """The layout of the first mapping of smaps TEXT, if its lines after the
    header are all "Key:", digits and spaces, and for counted keys " kB",
    and read by it they give what _read_lines() reads; else None."""
    end = text.find(b"\nVmFlags:")
    start = text.find(b"\n")
    if end < 0 or start >= end or not _HEX_FIRST[text[0]]:
        return None
    lines = text[start + 1:end]
    fields = []
    line_start = 0
    for line in lines.split(b"\n"):
        key, colon, rest = line.partition(b":")
        if (not colon or not key[:1].isupper() or not key.replace(b"_", b"").isalpha()
                or rest.translate(_NUMBER_OR_SPACE).strip(b"#") not in (b"", b"kB")):
            return None
        kind = _key_kind(key)
        if kind is not None:
            if not rest.endswith(b" kB") or len(rest) - 3 > _MAX_DIGITS:
                return None
            fields.append((kind, line_start + len(key) + 1, line_start + len(line) - 3))
        line_start += len(line) + 1
    if not fields:
        return None
    first, last = fields[0][1], fields[-1][2]
    layout = MappingLayout(
        b"\n" + lines.translate(_NUMBER_OR_SPACE), len(lines), (first, last),
        tuple((kind, start - first, end - first) for kind, start, end in fields),
        sum(1 for field in fields if field[0] == _PSS), {}, {})
    # The first mapping alone, ended as the reader expects a mapping of the
    # layout to end: read by the layout, it must read as read generally.
    block = text[:end] + b"\nVmFlags:\n"
    try:
        if _read_by_layout(block, layout) != _read_generally(block):
            return None
    except ValueError:
        return None
    return layout


def _values(numbers: bytes, fields: "Tuple[Tuple[int, int, int], ...]"
            ) -> "Tuple[Tuple[Tuple[int, int], ...], bool]":
    """The counted values in NUMBERS, as ((kind, value), ...) for those not
    zero, and whether they show shared pages; ValueError if a field is not
    one number (the general reader then reads the lines)."""
    values = []
    shared = False
    for kind, start, end in fields:
        value = int(numbers[start:end])  # digits and spaces only: the layout says so
        if value:
            values.append((kind, value))
            shared = shared or kind == _SHARED
    return tuple(values), shared


def _read_by_layout(text: bytes, layout: MappingLayout) -> "Dict[bytes, List[int]]":
    """Sums by raw key of smaps TEXT, the mappings of LAYOUT read by it and
    the rest by _read_lines()."""
    if b"\nVmFlags:" not in text:  # Linux before 3.8: no layout to read by
        return _read_generally(text)
    raw: Dict[bytes, List[int]] = {}
    ending = layout.ending
    size = layout.size
    numbers_start, numbers_end = layout.numbers
    fields = layout.fields
    cache = layout.cache
    pss_lines = layout.pss_lines
    hex_first = _HEX_FIRST
    state: List[Any] = [None, 0, 0]  # for _read_lines(), which continues the next three
    sums: Optional[List[int]] = None  # of the mapping being read
    block_pss = block_shared = 0
    # A chunk is the rest of a VmFlags line (none in the first), a newline,
    # then normally one mapping's header and lines.  Its offsets are the
    # same in TEXT and in its translation.  The text is translated and split
    # a piece at a time, each ended before a VmFlags line, so that what
    # they make stays small beside the text, whatever the text.
    offset = piece_start = 0
    while True:
        piece_end = text.find(b"\nVmFlags:", piece_start + _PIECE)
        last = piece_end < 0
        chunks = text[piece_start:None if last else piece_end].translate(
            _NUMBER_OR_SPACE).split(b"\nVmFlags:")
        if last:
            chunks.pop()  # after the last VmFlags line: read below
        for chunk in chunks:
            chunk_end = offset + len(chunk)
            first = chunk.find(b"\n") if offset else -1  # the end of the VmFlags line
            if not chunk.endswith(ending):  # not a mapping of the layout
                if first >= 0 or not offset:
                    state[:] = sums, block_pss, block_shared
                    _read_span(text, offset + first + 1, chunk_end, raw, state)
                    sums, block_pss, block_shared = state
                offset = chunk_end + 9
                continue
            before = len(chunk) - size - 1  # the newline that ends the header
            lines_at = chunk_end - size
            if first != before:  # else the lines follow a VmFlags line: odd, but one mapping's
                header_at = chunk.rfind(b"\n", 0, before) + 1
                if header_at != first + 1:  # lines between: read as they come
                    state[:] = sums, block_pss, block_shared
                    _read_span(text, offset + first + 1, offset + header_at - 1, raw, state)
                    sums, block_pss, block_shared = state
                header = text[offset + header_at:offset + before]
                if header and hex_first[header[0]]:
                    if sums is not None and block_shared and block_pss:
                        sums[_ROUNDED_LINES] += block_pss
                    key = _raw_key(header)
                    sums = raw.get(key)
                    if sums is None:
                        sums = raw[key] = [0] * _MAPPING_SUMS
                    block_pss = block_shared = 0
                else:
                    state[:] = sums, block_pss, block_shared
                    _read_lines([header], raw, state)
                    sums, block_pss, block_shared = state
            numbers = text[lines_at + numbers_start:lines_at + numbers_end]
            values = cache.get(numbers)
            if values is None:
                try:
                    values = _values(numbers, fields)
                except ValueError:  # not one number in a field: the general reader's
                    state[:] = sums, block_pss, block_shared
                    _read_span(text, lines_at, chunk_end, raw, state)
                    sums, block_pss, block_shared = state
                    offset = chunk_end + 9
                    continue
                if len(cache) < _MAX_CACHED:
                    cache[numbers] = values
            if sums is None:
                raise ValueError("smaps counter before any mapping")
            counted, shared = values
            for kind, value in counted:
                sums[kind] += value
            if shared:
                block_shared = 1
            sums[_PSS_LINES] += pss_lines
            block_pss += pss_lines
            offset = chunk_end + 9
        if last:
            break
        # The next piece starts with the VmFlags line: its first chunk is empty.
        piece_start = offset = piece_end
    # What follows the rest of the last VmFlags line.
    state[:] = sums, block_pss, block_shared
    newline = text.find(b"\n", offset)
    if newline >= 0:
        _read_span(text, newline + 1, len(text), raw, state)
    if state[0] is not None:
        _end_mapping(state)
    return raw


def _read_generally(text: bytes) -> "Dict[bytes, List[int]]":
    raw: Dict[bytes, List[int]] = {}
    state: List[Any] = [None, 0, 0]
    _read_span(text, 0, len(text), raw, state)
    if state[0] is not None:
        _end_mapping(state)
    return raw


def _read_span(text: bytes, start: int, end: int, raw: "Dict[bytes, List[int]]",
               state: "List[Any]") -> None:
    """_read_lines() of the lines of text[start:end], split a piece at a
    time: a text of short lines makes many times its size in line objects."""
    while end - start > _PIECE:
        cut = text.find(b"\n", start + _PIECE, end)
        if cut < 0:
            break
        _read_lines(text[start:cut].split(b"\n"), raw, state)
        start = cut + 1
    _read_lines(text[start:end].split(b"\n"), raw, state)


_DELETED = b" (deleted)"


def mapping_name(inode: bytes, name: bytes) -> str:
    """The row name of a mapping: the kernel's name for it (its path, or a
    [bracketed] name), but for objects that have no path of their own.

    * "" (anonymous memory) is "[anon]".
    * "/SYSV0000abcd (deleted)", a SysV segment, is
      "[SysV key=0x0000abcd shmid=5]": the kernel names every segment after
      its key (all IPC_PRIVATE ones 00000000) and gives its id as the inode.
    * "/memfd:NAME (deleted)" is "[memfd:NAME]": a memfd is never linked,
      and all of one name are one row.
    * "/dev/zero (deleted)", shared anonymous memory (MAP_SHARED |
      MAP_ANONYMOUS), is "[anon_shmem]", as the kernel (6.2+) names it once
      named with PR_SET_VMA_ANON_NAME: "[anon_shmem:NAME]".
    * "/anon_hugepage (deleted)", anonymous MAP_HUGETLB memory, is
      "[anon_hugepage]".
    * "[stack:TID]", a thread's stack (Linux 3.5 to 4.4), is "[stack]".
    * Any other name as the kernel shows it: a deleted file keeps its
      " (deleted)"; "\\n" in a name stays the kernel's "\\012", which makes
      it one row with a name that holds those four characters (the kernel
      escapes nothing else, backslashes included).
    Bytes that are not UTF-8 are "?", as in program names; control
    characters are left for the views to show (see printable()).
    """
    if not name:
        return "[anon]"
    if name.endswith(_DELETED):
        inner = name[:-len(_DELETED)]
        if (inner.startswith(b"/SYSV") and len(inner) == 13 and inode.isdigit()
                and len(inode) <= _MAX_DIGITS
                and not inner[5:].translate(None, b"0123456789abcdef")):
            return "[SysV key=0x%s shmid=%d]" % (inner[5:].decode("ascii"), int(inode))
        if inner.startswith(b"/memfd:"):
            return "[memfd:%s]" % _name_text(inner[7:])
        if inner == b"/dev/zero":
            return "[anon_shmem]"
        if inner == b"/anon_hugepage":
            return "[anon_hugepage]"
    elif name.startswith(b"[stack:") and name.endswith(b"]") and name[7:-1].isdigit():
        return "[stack]"
    return _name_text(name)


def _name_text(name: bytes) -> str:
    # Each byte that is not UTF-8 a "?", as Namer shows an executable's path.
    return name.decode("utf-8", "surrogateescape").encode("utf-8", "replace").decode("utf-8")


def _by_name(raw: "Dict[bytes, List[int]]", names: "Dict[bytes, str]"
             ) -> "Dict[str, List[int]]":
    """RAW's sums by row name; NAMES caches row names by raw key."""
    named: Dict[str, List[int]] = {}
    for key, sums in raw.items():
        row = names.get(key)
        if row is None:
            fields = key.split(None, 1)
            if len(fields) < 2:
                raise ValueError("smaps mapping header without an inode")
            inode, _, name = fields[1].partition(b" ")
            row = mapping_name(inode, name.lstrip())
            if len(names) < _MAX_CACHED_NAMES:
                names[key] = row
        merged = named.get(row)
        if merged is None:
            named[row] = sums
        else:
            for index in range(_MAPPING_SUMS):
                merged[index] += sums[index]
    return named


def parse_smaps_mappings(text: bytes,
                         layouts: "Optional[Dict[bytes, MappingLayout]]" = None
                         ) -> MappingCounters:
    """Sum /proc/PID/smaps TEXT per row name (see mapping_name()).

    Lines are classified and counted as parse_smaps() counts them, so the
    sums over all rows are its sums; a header is any line starting with a
    lowercase hex digit.  ValueError for a counted line without a number,
    one before the first header, a header without a device and inode, or a
    sum out of range.

    LAYOUTS, kept by the caller from one text to the next, lets the
    kernel's layout be found once a scan (see MappingLayout); the answer
    is the same without it, only slower.
    """
    layout = None
    if layouts is not None:
        first = text.find(b"\nVmFlags:")
        start = text.find(b"\n")
        if 0 <= start < first:
            key = text[start:first].translate(_NUMBER_OR_SPACE)
            layout = layouts.get(key)
            if layout is None and len(layouts) < _MAX_MAPPING_LAYOUTS:
                layout = _learn_mapping_layout(text)
                if layout is not None:
                    layouts[key] = layout
    if layout is not None:
        named = _by_name(_read_by_layout(text, layout), layout.names)
    else:
        named = _by_name(_read_generally(text), {})
    totals = [sum(column) for column in zip(*named.values())] or [0] * _MAPPING_SUMS
    if max(totals) > _MAX_KIB or min(totals) < -_MAX_KIB:
        raise ValueError("smaps counter out of range")
    return MappingCounters({row: tuple(sums) for row, sums in named.items()},
                           totals[_PSS_LINES] > 0, b"\nSwapPss:" in text)


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



# The largest status a kernel writes: "Groups:" lists up to NGROUPS_MAX
# (65536) gids, of up to 11 bytes each.  A larger one is garbled or
# hostile, and is not parsed: its lines could be copied many times over.
_MAX_STATUS = 1 << 20


def _check_status(data: bytes) -> None:
    if len(data) > _MAX_STATUS:
        raise ValueError("status larger than %d KiB" % (_MAX_STATUS >> 10))


def parse_status(data: bytes) -> "Tuple[str, Optional[int]]":
    """(Name, PPid) from /proc/PID/status.

    The name is the first line after "Name:\\t"; PPid is looked for in the
    first ten lines and is 0 when absent (so no parent is consulted), or
    None when the file is shorter than that: 3.14 then leaves the process
    out if it needs the parent.
    """
    _check_status(data)
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
    _check_status(status)
    start = status.index(b"\nUid:") + 5
    fields = status[start:status.index(b"\n", start)].split()
    if not fields:
        raise ValueError("status has an empty Uid line")
    return _number(fields[0])


def cgroup_hierarchy(data: bytes) -> "Optional[str]":
    """Which hierarchy accounts memory, from a /proc/PID/cgroup: "v1" where
    a cgroup v1 hierarchy has the memory controller, "v2" where none has
    and the unified hierarchy is listed ("0::"), None where the file says
    neither (empty, or v1 without the memory controller).

    Hierarchies and the controllers bound to them are the machine's, so
    every process's file lists the same ones: one file decides for all
    (see Namer).  A hybrid machine (v1 controllers, and the unified
    hierarchy for systemd's own tracking) is "v1": memory is limited and
    accounted there, and a container's processes are apart only there.
    """
    unified = False
    for hierarchy, controllers, _ in _cgroup_lines(data):
        if hierarchy == "0" and controllers == "":
            unified = True
        elif "memory" in controllers.split(","):
            return "v1"
    return "v2" if unified else None


def parse_cgroup(data: bytes, hierarchy: "Optional[str]" = None) -> str:
    """The cgroup a process is in, in HIERARCHY (see cgroup_hierarchy()):
    for "v2" the unified hierarchy's path ("/system.slice/nginx.service"),
    for "v1" the memory controller's, marked as a v1 path
    ("memory:/docker/abc"); "-" where the file has no such line.  Without
    HIERARCHY, the process's own file decides."""
    if hierarchy is None:
        hierarchy = cgroup_hierarchy(data)
    for number, controllers, path in _cgroup_lines(data):
        if hierarchy == "v2" and number == "0" and controllers == "":
            return path
        if hierarchy == "v1" and "memory" in controllers.split(","):
            return "memory:" + path
    return "-"


def _cgroup_lines(data: bytes) -> "Iterator[Tuple[str, str, str]]":
    """(hierarchy number, controllers, path) of each line of a cgroup file."""
    # Lines end at "\n" only: the kernel takes "\r" in a cgroup's name, and
    # whoever may make cgroups could otherwise add a line of their own.
    for line in data.decode("utf-8", "ignore").split("\n"):
        number, _, rest = line.partition(":")
        controllers, colon, path = rest.partition(":")
        if colon:
            yield number, controllers, path


def parse_cmdline(data: bytes) -> "List[str]":
    """The arguments of /proc/PID/cmdline, without trailing empty ones.

    Nothing looks past the first _MAX_ARGS arguments, and a process may
    have millions (a NUL each): those past them are kept as one, with
    spaces for their NULs, so that joined with spaces (as -s shows a
    command line) the list reads as the whole one would."""
    args = _proc_text(data).rstrip("\0").split("\0", _MAX_ARGS + 1)
    if len(args) > _MAX_ARGS + 1:
        args[-1] = args[-1].replace("\0", " ")
    return args


# What --system reads beside the processes: /proc/meminfo, /proc/sysvipc/shm,
# the mount tables and zram's mm_stat.  Bounded work for any bytes: lines
# past the limits are not read, numbers no kernel prints are skipped.

_MAX_MEMINFO_LINES = 1024  # about 60 on Linux 6.18
_MAX_SEGMENTS = 65536  # the kernel's default SHMMNI is 4096, IPCMNI 32768
_MAX_BYTES = _MAX_KIB * 1024
# meminfo fields that are counts of pages, printed without a unit.
_COUNT_FIELDS = frozenset(("HugePages_Total", "HugePages_Free", "HugePages_Rsvd",
                           "HugePages_Surp"))


def _decimal(text: bytes, signed: bool = False) -> "Optional[int]":
    """A decimal as the kernel writes it, or None: ASCII digits only, and
    a "-" where SIGNED (int() would also take "+", "_", spaces and other
    scripts' digits)."""
    negative = signed and text.startswith(b"-")
    digits = text[1:] if negative else text
    if not digits or len(digits) > 20 or digits.strip(b"0123456789"):
        return None
    value = int(digits)
    return -value if negative else value


def parse_meminfo(text: bytes) -> "Dict[str, int]":
    """/proc/meminfo: field -> KiB, and HugePages_* -> a number of pages.

    A line counts if it is "Field: NUMBER kB", or "Field: NUMBER" for the
    HugePages_ counts; others are skipped, as are numbers no kernel prints
    (negative, past 2**53 KiB).  A field that repeats counts once, the
    first time: the kernel prints each once.  Linux 2.4's table at the top
    ("total: used: ...", "Mem:", "Swap:") does not match and is skipped.
    """
    values: Dict[str, int] = {}
    for line in text.split(b"\n", _MAX_MEMINFO_LINES)[:_MAX_MEMINFO_LINES]:
        name, colon, rest = line.partition(b":")
        if not colon or not name or len(name) > 64:
            continue
        key = name.decode("ascii", "replace")
        parts = rest.split()
        if not (len(parts) == 2 and parts[1] == b"kB"
                or len(parts) == 1 and key in _COUNT_FIELDS):
            continue
        number = _decimal(parts[0])
        if number is not None and number <= _MAX_KIB and key.isprintable():
            values.setdefault(key, number)
    return values


class ShmSegment(Record):
    """One SysV shared memory segment, from /proc/sysvipc/shm."""

    key: int  # as the kernel prints it: signed
    shmid: int
    size_bytes: int
    cpid: int  # its creator's pid, in the reader's pid namespace
    nattch: int  # mappings that attach it now
    rss_bytes: "Optional[int]"  # resident; None before Linux 3.10
    swap_bytes: "Optional[int]"  # out on swap; None before Linux 3.10


# The columns of /proc/sysvipc/shm in the kernel's order, for a text without
# its header.  Linux 3.10 added rss and swap (in bytes); the header names the
# columns, so they are found by name.
_SHM_COLUMNS = (b"key", b"shmid", b"perms", b"size", b"cpid", b"lpid", b"nattch", b"uid",
                b"gid", b"cuid", b"cgid", b"atime", b"dtime", b"ctime", b"rss", b"swap")
_SHM_NEEDED = (b"key", b"shmid", b"size", b"cpid", b"nattch")


def parse_sysvipc_shm(text: bytes) -> "List[ShmSegment]":
    """/proc/sysvipc/shm: a ShmSegment per row that parses whole."""
    lines = text.split(b"\n", _MAX_SEGMENTS + 1)[:_MAX_SEGMENTS + 1]
    columns = list(_SHM_COLUMNS)
    if lines and lines[0].split()[:1] == [b"key"]:
        columns = lines[0].split()
        lines = lines[1:]
    where: Dict[bytes, int] = {}
    for index, name in enumerate(columns):
        where.setdefault(name, index)
    if not all(name in where for name in _SHM_NEEDED):
        return []
    needed = max(where[name] for name in _SHM_NEEDED) + 1
    segments = []
    for line in lines:
        fields = line.split()
        if len(fields) < needed:
            continue
        key = _decimal(fields[where[b"key"]], signed=True)
        shmid, size, cpid, nattch = [_decimal(fields[where[name]]) for name in _SHM_NEEDED[1:]]
        # rss and swap where the row has their columns, and then numbers.
        later = {name: _decimal(fields[where[name]]) for name in (b"rss", b"swap")
                 if where.get(name, len(fields)) < len(fields)}
        rss, swap = later.get(b"rss"), later.get(b"swap")
        if (key is None or shmid is None or size is None or cpid is None or nattch is None
                or None in later.values()
                or max(size, rss or 0, swap or 0) > _MAX_BYTES):
            continue
        segments.append(ShmSegment(key, shmid, size, cpid, nattch, rss, swap))
    return segments


class Mount(Record):
    """One line of a mount table."""

    mount_point: str  # with the kernel's \\ooo escapes decoded
    fs_type: str
    device: "Optional[str]"  # "major:minor" (mountinfo only): one per superblock


def parse_mountinfo(text: bytes) -> "List[Mount]":
    """/proc/PID/mountinfo (Linux 2.6.26 and later), whose devices tell the
    mounts of one filesystem apart: "ID PARENT MAJOR:MINOR ROOT MOUNT_POINT
    OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS"."""
    mounts = []
    for line in text.split(b"\n", _MAX_MOUNTS)[:_MAX_MOUNTS]:
        fields = line.split(b" ")
        if len(fields) < 10 or b"-" not in fields[6:]:
            continue
        dash = fields.index(b"-", 6)
        major, colon, minor = fields[2].partition(b":")
        number, other = _decimal(major), _decimal(minor)
        if (number is None or other is None or len(fields) < dash + 3
                or not fields[4].startswith(b"/")):
            continue
        mounts.append(Mount(_unescape_mount_path(fields[4]),
                            _unescape_mount_path(fields[dash + 1]),
                            "%d:%d" % (number, other)))
    return mounts


def parse_mounts(text: bytes) -> "List[Mount]":
    """/proc/mounts (before mountinfo): source, mount point, type, options
    and two numbers a line; no devices."""
    mounts = []
    for line in text.split(b"\n", _MAX_MOUNTS)[:_MAX_MOUNTS]:
        fields = line.split(b" ")
        if len(fields) >= 4 and fields[1].startswith(b"/"):
            mounts.append(Mount(_unescape_mount_path(fields[1]),
                                _unescape_mount_path(fields[2]), None))
    return mounts


def parse_zram_mm_stat(text: bytes) -> "Optional[int]":
    """The bytes of RAM a zram device uses: the third column of
    /sys/block/zramN/mm_stat (mem_used_total, Linux 4.1 and later).  Its
    pages come from zsmalloc, which no meminfo field counts."""
    fields = text.split()
    used = _decimal(fields[2]) if len(fields) >= 3 else None
    return used if used is not None and used <= _MAX_BYTES else None


def parse_namespace(link: str) -> "Optional[int]":
    """The inode of a namespace from its /proc/PID/ns link ("mnt:[4026531841]")."""
    kind, bracket, rest = link.partition(":[")
    number = _decimal(rest[:-1].encode("ascii", "replace")) if rest.endswith("]") else None
    return number if bracket and kind.isalpha() else None


# What an interpreter runs (--group-by app).  app_name() reads a process's
# own command line; joins_parent() tells a worker that names nothing
# itself.  Namer chains them (see Namer._app()).
#
# Command lines are whatever their processes made them: at most _MAX_ARGS
# arguments are looked at, _MAX_TITLE characters of a rewritten title, and
# a name is cut to _MAX_NAME characters.  Nothing here raises on any list
# of strings.

# A Java command line can carry hundreds of -D options; past this many
# arguments it is taken to name nothing.
_MAX_ARGS = 1024
# NAME_MAX, the longest file name of every Linux file system: the width of
# a row, whatever an argument's length.
_MAX_NAME = 255
_MAX_TITLE = 4096
# The marks _exe() puts after a replaced or removed executable's name.
_EXE_MARKS = (" [updated]", " [deleted]")

# Interpreters by executable name: a stem then a version number (python3,
# python3.11, perl5.36.0, ruby3.1, php8.2), or exactly one name.  The
# version must be all that follows the stem: php-fpm8.2 and php-cgi are
# servers given their scripts by a web server, python3-config a script.
_VERSIONED = (("python", "python"), ("pypy", "python"), ("perl", "perl"), ("ruby", "ruby"),
              ("php", "php"), ("nodejs", "node"), ("node", "node"))
_EXACT = {"java": "java", "bash": "shell", "rbash": "shell", "sh": "shell", "dash": "shell",
          "ash": "shell", "zsh": "shell", "ksh": "shell", "ksh93": "shell", "mksh": "shell",
          "lksh": "shell"}
# CPython's build flags after its version: python3.11d (debug), python3.13t
# (free-threaded), python3.6m (pymalloc, until 3.7).
_PYTHON_FLAGS = "dmtu"


def _is_version(text: str) -> bool:
    """Whether TEXT is empty or dotted numbers: 3, 3.11, 5.36.0."""
    return not text or all(part and not part.strip("0123456789") for part in text.split("."))


def interpreter(exe: str) -> "Optional[str]":
    """The interpreter an executable's basename names: "python", "perl",
    "ruby", "php", "node", "java" or "shell"; None for any other program."""
    family = _EXACT.get(exe)
    if family is not None:
        return family
    for stem, family in _VERSIONED:
        if exe.startswith(stem):
            version = exe[len(stem):]
            if family == "python" and version:
                version = version.rstrip(_PYTHON_FLAGS)
                if not version:
                    return None  # "pythonm": flags without a version
            return family if _is_version(version) else None
    return None


def _without_mark(exe: str) -> "Tuple[str, str]":
    """(the executable's name, its mark) from a name as _exe() makes it."""
    for mark in _EXE_MARKS:
        if exe.endswith(mark):
            return exe[:-len(mark)], mark
    return exe, ""


def runs_scripts(exe: str) -> bool:
    """Whether EXE (an executable's name as _exe() makes it) is an
    interpreter, whose command line app_name() reads; no other process's
    command line need be read."""
    return interpreter(_without_mark(exe)[0]) is not None


def app_name(exe: str, argv: "List[str]") -> "Optional[str]":
    """The application an interpreter runs, as its row is named: "WHAT
    [EXE]", EXE as _exe() makes it (a mark after the brackets: "app.py
    [python3.11] [updated]"), ARGV as parse_cmdline() makes it.  None where
    EXE is no interpreter, or its command line names nothing (code given
    on it, a script read from standard input, an interactive session).

    WHAT is a script's or jar's file name (not its path: ./app.py and
    /srv/app.py are one application, and a relative path means nothing
    without the working directory), python's -m module, java's main class
    or module.  A process that rewrote its command line (setproctitle,
    $0, process.title) is named by its title's first word, as in
    "progname: status": gunicorn's "gunicorn: worker [app]" is gunicorn.
    """
    name, mark = _without_mark(exe)
    family = interpreter(name)
    if family is None or not argv:
        return None
    what = _what_runs(family, argv)
    if what is None:
        return None
    return "%s [%s]%s" % (what[:_MAX_NAME], name, mark)


def joins_parent(link: "Optional[str]", comm: str, parent_link: "Optional[str]",
                 parent_comm: "Optional[str]") -> bool:
    """Whether a process app_name() does not name is a worker of its
    parent, and so goes with the parent's application: it runs the same
    executable, and either is an interpreter (a pool process's `python3 -c
    ...`, a subshell) or kept its parent's comm, which a fork inherits and
    only an exec or a rename changes (postgres's backends, php-fpm's pool,
    redis-server's BGSAVE child).  A child that renamed itself (firefox's
    "Web Content") or that the same multi-call executable runs as another
    program (busybox's applets) has a comm of its own, and keeps its
    default name.

    LINK and PARENT_LINK are the exe links as read, whole: a fork runs the
    very file its parent runs, where two installations of one interpreter
    are two paths.  COMM is the name as Namer reads it (comm, or status's
    Name).  A link is None where it could not be read.
    """
    if link is None or link != parent_link:
        return False
    if link.endswith(" (deleted)"):
        link = link[:-len(" (deleted)")]
    return interpreter(link[link.rfind("/") + 1:]) is not None or comm == parent_comm


def _basename(path: str) -> str:
    return path[path.rfind("/") + 1:]


def _what_runs(family: str, argv: "List[str]") -> "Optional[str]":
    """What ARGV says the interpreter runs, else None."""
    first = _basename(argv[0])
    # A login shell's argv[0] is "-bash"; any shell may be run as sh.
    if interpreter(first[1:] if first.startswith("-") else first) == family:
        return _READERS[family](argv[1:_MAX_ARGS + 1])
    return _title(family, argv[0])


def _title(family: str, title: str) -> "Optional[str]":
    """The name in a command line the process rewrote (its argv[0] is not
    its interpreter): the title's first word, brackets and a colon left
    out, or what runs where the title is itself a command line."""
    words = title[:_MAX_TITLE].split()
    if not words:
        return None
    if interpreter(_basename(words[0]).lstrip("-")) == family:
        return _READERS[family](words[1:_MAX_ARGS + 1])
    word = _basename(words[0].lstrip("[(").rstrip(":])"))
    if (word.startswith("-") or not any(char.isalnum() for char in word)
            or interpreter(word) == family):
        return None  # "-x", ":::", "python3.11: idle": nothing named
    return word


def _script(path: str) -> "Optional[str]":
    """A script's name: its file name.  Standard input, a file descriptor
    (bash /dev/fd/3) and a directory's own package (node .) name nothing."""
    if path in ("", "-") or path.startswith(("/dev/fd/", "/dev/std", "/proc/")):
        return None
    name = _basename(path.rstrip("/"))
    return None if name in ("", ".", "..") else name


def _argument(args: "List[str]", at: int) -> str:
    return args[at] if at < len(args) else ""


def _python(args: "List[str]") -> "Optional[str]":
    # Short options group (-uBc): c, m, W and X take the rest of the
    # group, or the next argument where that is empty; -c and -m end the
    # options.
    at = 0
    while at < len(args):
        arg = args[at]
        at += 1
        if arg == "--":
            return _script(_argument(args, at))
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                at += 1
            continue
        if not arg.startswith("-") or arg == "-":
            return _script(arg)
        for index in range(1, len(arg)):
            letter = arg[index]
            if letter in "cmWX":
                value = arg[index + 1:]
                if not value:
                    value = _argument(args, at)
                    at += 1
                if letter == "m":
                    return value or None
                if letter == "c":
                    return None
                break
    return None


# What may follow perl's -l (octal digits), -0 (octal, or x and hex digits)
# and -C (a number, or its letters) within the same argument.
_PERL_VALUES = {"l": "01234567", "0": "0123456789xXabcdefABCDEF",
                "C": "0123456789IOEioeASL"}


def _past(arg: str, index: int, characters: str) -> int:
    """Where the run of CHARACTERS starting at INDEX of ARG ends."""
    while index < len(arg) and arg[index] in characters:
        index += 1
    return index


def _perl(args: "List[str]") -> "Optional[str]":
    # -e and -E give code: then no argument is a script.  -I takes the next
    # argument where nothing is attached; -M, -m, -x, -i, -F, -d, -D and -V
    # take the rest of the group; -l, -0 and -C the characters after them.
    code = False
    at = 0
    while at < len(args):
        arg = args[at]
        at += 1
        if arg == "--":
            return None if code else _script(_argument(args, at))
        if not arg.startswith("-") or arg == "-":
            return None if code else _script(arg)
        index = 1
        while index < len(arg):
            letter = arg[index]
            index += 1
            if letter in "eEI":
                code = code or letter != "I"
                if index == len(arg):
                    at += 1
                break
            if letter in "MmxiFdDV":
                break
            if letter in _PERL_VALUES:
                index = _past(arg, index, _PERL_VALUES[letter])
    return None


_RUBY_LONG_VALUES = frozenset(("--enable", "--disable", "--encoding", "--external-encoding",
                               "--internal-encoding", "--dump", "--backtrace-limit",
                               "--crash-report"))


def _ruby(args: "List[str]") -> "Optional[str]":
    # As perl's, but -I, -r, -C and -E take the next argument where nothing
    # is attached, and long options take theirs after a space too.  -S
    # looks its script up in PATH: the script is still the next argument.
    code = False
    at = 0
    while at < len(args):
        arg = args[at]
        at += 1
        if arg == "--":
            return None if code else _script(_argument(args, at))
        if arg.startswith("--"):
            if arg in _RUBY_LONG_VALUES:
                at += 1
            continue
        if not arg.startswith("-") or arg == "-":
            return None if code else _script(arg)
        index = 1
        while index < len(arg):
            letter = arg[index]
            index += 1
            if letter in "eIrCE":
                code = code or letter == "e"
                if index == len(arg):
                    at += 1
                break
            if letter in "xiFWKT":
                break
            if letter == "0":
                index = _past(arg, index, "01234567")
    return None


# php's long options that take a value, as the short option they stand for
# ("-" for those that give code).
_PHP_LONG_VALUES = {"--php-ini": "c", "--define": "d", "--zend-extension": "z",
                    "--file": "f", "--run": "r", "--process-begin": "B",
                    "--process-code": "R", "--process-file": "F", "--process-end": "E",
                    "--rf": "-", "--rc": "-", "--re": "-", "--rz": "-", "--ri": "-"}


def _php(args: "List[str]") -> "Optional[str]":
    # A value is attached (-dmemory_limit=1G) or the next argument.  -f and
    # -F give the script; -r and the other code options mean no argument is
    # one; `php -- args` reads its script from standard input.
    code = False
    at = 0
    while at < len(args):
        arg = args[at]
        at += 1
        if arg == "--":
            return None
        letter = _PHP_LONG_VALUES.get(arg, "")
        if letter:
            value = _argument(args, at)
            at += 1
        elif len(arg) >= 2 and arg[0] == "-" and arg[1] in "cdzfrBRFEtS":
            letter = arg[1]
            value = arg[2:]
            if not value:
                value = _argument(args, at)
                at += 1
        elif arg.startswith("-") and arg != "-":
            continue
        else:
            return None if code else _script(arg)
        if letter in "fF":
            return _script(value)
        if letter in "rBRE-":
            code = True
    return None


# node's options that take the next argument (given as --name=value, none
# does).
_NODE_VALUES = frozenset((
    "-r", "--require", "--import", "--loader", "--experimental-loader", "-C", "--conditions",
    "--inspect-port", "--debug-port", "--title", "--icu-data-dir", "--openssl-config",
    "--redirect-warnings", "--diagnostic-dir", "--report-dir", "--report-directory",
    "--report-filename", "--report-signal", "--secure-heap", "--secure-heap-min",
    "--dns-result-order", "--unhandled-rejections", "--max-http-header-size",
    "--heapsnapshot-signal", "--input-type", "--env-file", "--experimental-default-type",
    "--watch-path", "--disable-warning", "--cpu-prof-dir", "--heap-prof-dir"))
_NODE_CODE = frozenset(("-e", "--eval", "-p", "--print", "-pe"))


def _node(args: "List[str]") -> "Optional[str]":
    at = 0
    while at < len(args):
        arg = args[at]
        at += 1
        if arg == "--":
            return _script(_argument(args, at))
        if arg in _NODE_CODE:
            return None
        if arg in _NODE_VALUES:
            at += 1
        elif not arg.startswith("-") or arg == "-":
            return _script(arg)
    return None


# java's options that take the next argument; every other one is a single
# argument (-Dkey=value, -Xmx1g, -XX:+Flag, -javaagent:x.jar, --add-opens=x).
_JAVA_VALUES = frozenset((
    "-cp", "-classpath", "--class-path", "-p", "--module-path", "--upgrade-module-path",
    "--add-modules", "--limit-modules", "--add-reads", "--add-exports", "--add-opens",
    "--patch-module", "--enable-native-access", "--source", "--illegal-native-access",
    "--sun-misc-unsafe-memory-access"))


def _java(args: "List[str]") -> "Optional[str]":
    # What an @argfile holds is not known: a main class given in one is
    # not found.
    at = 0
    while at < len(args):
        arg = args[at]
        at += 1
        if arg == "-jar":
            return _script(_argument(args, at))
        if arg in ("-m", "--module"):
            return _argument(args, at).partition("/")[0] or None
        if arg.startswith("--module="):
            return arg[len("--module="):].partition("/")[0] or None
        if arg in _JAVA_VALUES:
            at += 1
        elif not arg.startswith(("-", "@")):
            if arg.endswith(".java"):  # a source file, run without compiling it
                return _script(arg)
            return arg.replace("/", ".") or None  # the main class
    return None


_SHELL_VALUES = frozenset(("-o", "+o", "-O", "+O", "--rcfile", "--init-file", "--emulate"))


def _shell(args: "List[str]") -> "Optional[str]":
    # Options start with - or + and group; -c runs its argument as code and
    # -s reads standard input; -o and bash's -O take an option's name.
    at = 0
    while at < len(args):
        arg = args[at]
        at += 1
        if arg in ("--", "-"):
            return _script(_argument(args, at))
        if arg in _SHELL_VALUES:
            at += 1
        elif arg.startswith("--"):
            continue
        elif not arg.startswith(("-", "+")) or arg == "+":
            return _script(arg)
        else:
            letters = arg[1:]
            if "c" in letters or "s" in letters:
                return None
            at += letters.count("o") + letters.count("O")
    return None


_READERS: "Dict[str, Callable[[List[str]], Optional[str]]]" = {
    "python": _python, "perl": _perl, "ruby": _ruby, "php": _php, "node": _node, "java": _java,
    "shell": _shell}


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
    group_by: str = "program"  # or "user", "cgroup", "app" (pid and cmdline set the above)
    capture: "Optional[str]" = None
    system: bool = False  # --system: the ledger of all of MemTotal
    units: "Optional[str]" = None  # "B", "KiB", "MiB" or "GiB"; None: 3.14's, per size
    no_header: bool = False
    prometheus: bool = False
    output: "Optional[str]" = None  # write each sample's text here, not to stdout
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
    # For --system alone (None otherwise): (Pss_Anon, Pss_File, Pss_Shmem,
    # Private_Hugetlb) in KiB, the first three None where the kernel does not
    # split Pss (before 5.3, or no smaps_rollup).
    pss_parts: "Optional[PssParts]" = None
    # The program (3.14's grouping) where rows group by something else
    # (--group-by user, cgroup or app); None where the name is the program.
    program: "Optional[str]" = None
    # With --group-by mapping, what each row brings from this process, in
    # KiB: row name -> (private, shared, shared_hugetlb, swap), as the
    # fields above for the whole process (which are their sums).  Plain
    # tuples, so that forked readers send them as they are.
    mappings: "Optional[MappingRows]" = None
    # For --system on the live /proc: the inode of its mount namespace.
    mount_namespace: "Optional[int]" = None
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
    ledger: "Optional[Ledger]" = None  # --system's, of the same sample
    # The table's size columns: as wide as 3.14's, or with --units as wide
    # as the widest size so far; and whether the header goes before the
    # rows (with --units, when the columns are first or newly widened).
    width: int = 9
    header: bool = False
    delta: "Optional[Delta]" = None  # -w --delta: the changes since the first sample


class PssSums(Record):
    """The report's total and its parts, in KiB, summed over the processes
    read with each shared address space counted once, as aggregate() sums
    (see process_sums())."""

    total_kib: float  # the report's total: Pss, 0.5 KiB per line, hugetlb
    anon_kib: "Optional[float]"  # Pss_Anon; None where the kernel does not split
    file_kib: "Optional[float]"  # Pss_File (shmem not included)
    shmem_kib: "Optional[float]"  # Pss_Shmem
    hugetlb_kib: float  # hugetlb pages, as the report counts them
    swap_pss_kib: "Optional[float]"  # SwapPss; None without it
    pss_seen: bool  # False: no Pss at all, only 3.14's estimate


class SystemSample(Record):
    """What --system reads beside the processes, at the same sample."""

    meminfo: "Dict[str, int]"  # see parse_meminfo()
    segments: "List[ShmSegment]"
    mounts: "List[ShmMount]"  # one per superblock
    ramfs: "List[str]"
    zram_used_bytes: "Optional[int]"  # None: no zram device
    own: "Optional[ProcessSample]"  # ps_mem itself, which the report leaves out
    notes: "List[str]"  # what could not be read, for the ledger's notes
    exited: "FrozenSet[int]" = frozenset()  # segments' creators no longer running


class LedgerLine(Record):
    """One line of the ledger.  The counted lines at depth 0 add up to
    MemTotal exactly, and the counted lines under a line add up to it; a
    line not counted is shown beside its parent and adds to nothing."""

    key: str  # stable, e.g. "processes.anon" (README.md lists them)
    name: str  # for people
    size_bytes: int
    fields: "Tuple[str, ...]"  # the meminfo fields (or other sources) behind it
    estimate: bool = False
    depth: int = 0
    counted: bool = True
    detail: "Tuple[Tuple[str, Any], ...]" = ()  # a segment's attach count, ...


class Ledger(Record):
    lines: "Tuple[LedgerLine, ...]"
    total_bytes: int  # MemTotal
    notes: "Tuple[str, ...]"  # what was merged, or could not be known


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
                layouts: "Optional[Dict[bytes, RollupLayout]]" = None, split: bool = False
                ) -> "MemoryFields":
    """The memory fields of a ProcessSample (from `private_kib` to
    `pss_parts`) for one process, from the best memory file its kernel
    offers.

    LAYOUTS: kept from one process to the next (see parse_smaps()).  SPLIT:
    read pss_parts too (--system)."""
    statm = None
    if procfs.reading.as_3_14:
        # 3.14 reads statm first, whatever it uses: without it, no process.
        statm = _statm_pages(procfs, pid)
    text = procfs.read_optional(pid, "smaps_rollup")  # Linux 4.14+, cheapest
    if text is None:
        text = procfs.read_optional(pid, "smaps")
    if text is not None:
        try:
            counters = parse_smaps(text, layouts, split)
        except ValueError as error:
            raise ProcessGone(pid, unparsable=True) from error
        if counters.has_pss:
            shared = counters.pss - counters.private
        else:
            shared = counters.shared
        swap = counters.swap_pss if counters.has_swap_pss else counters.swap
        parts: Optional[PssParts] = None
        if split:
            anon, file, shmem = counters.pss_parts or (None, None, None)
            parts = (anon, file, shmem, counters.private_hugetlb)
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
            parts,
        )
    resident, shared_pages = statm or _statm_pages(procfs, pid)
    resident_kib = resident * PAGE_KIB
    shared_kib = shared_pages * PAGE_KIB
    if (2, 6, 1) <= kernel <= (2, 6, 9):
        # statm's shared column is the whole file-backed extent here:
        # ignore it and over-estimate instead (the accuracy warning says so).
        return resident_kib, 0, 0, 0, None, False, False, None
    return resident_kib - shared_kib, shared_kib, 0, 0, None, False, False, None


def read_mappings(procfs: ProcFS, pid: int,
                  layouts: "Optional[Dict[bytes, MappingLayout]]" = None
                  ) -> "Tuple[MemoryFields, MappingRows]":
    """read_memory()'s fields for one process, and its rows (see
    ProcessSample.mappings), from its full smaps: --group-by mapping.

    Each row's share follows read_memory()'s rules for a whole process:
    Shared is PSS less Private where the kernel shows PSS, else Shared_*;
    swap is SwapPss where it shows it.  The process's fields are the sums
    of its rows, so the view adds up.  A process without smaps (a kernel
    before 2.6.14, or one gone) is left out: nothing else names mappings.

    LAYOUTS: kept from one process to the next (see parse_smaps_mappings()).
    """
    if procfs.reading.as_3_14:
        _statm_pages(procfs, pid)  # as read_memory(): the same processes as the default
    text = procfs.read_optional(pid, "smaps")
    if text is None:
        raise ProcessGone(pid)
    try:
        found = parse_smaps_mappings(text, layouts)
    except ValueError as error:
        raise ProcessGone(pid, unparsable=True) from error
    has_pss, has_swap_pss = found.has_pss, found.has_swap_pss
    rows: MappingRows = {}
    private_sum: float = 0
    shared_sum: float = 0
    hugetlb_sum: float = 0
    swap_sum: float = 0
    for name, sums in found.rows.items():
        private: float = sums[_PRIVATE] + sums[_PRIVATE_HUGE]
        shared: float
        if has_pss:
            shared = sums[_PSS] + _ROUNDING_KIB * sums[_ROUNDED_LINES] - sums[_PRIVATE]
        else:
            shared = sums[_SHARED]
        swap = sums[_SWAP_PSS] if has_swap_pss else sums[_SWAP]
        rows[name] = (private, shared, sums[_SHARED_HUGE], swap)
        private_sum += private
        shared_sum += shared
        hugetlb_sum += sums[_SHARED_HUGE]
        swap_sum += swap
    # Equal for equal texts, as read_memory()'s; the bytes themselves, which
    # spares decoding the longest text a process has.
    return ((private_sum, shared_sum, hugetlb_sum, swap_sum, hash(text), has_pss, has_swap_pss,
             None),
            rows)


def _statm_pages(procfs: ProcFS, pid: int) -> "Tuple[int, int]":
    try:
        return parse_statm(procfs.read(pid, "statm"))
    except ValueError as error:
        raise ProcessGone(pid, unparsable=True) from error


def machine_cgroup_hierarchy(procfs: ProcFS) -> "Optional[str]":
    """The hierarchy --group-by cgroup names rows by, for the whole machine
    (see cgroup_hierarchy()): as pid 1's cgroup file tells it (the init of
    the pid namespace read; a capture holds it, as every process's), else
    the proc root's self (ps_mem, or whoever saved the tree).  None where
    neither tells: then each process's own file decides, and a v1 path is
    still marked as one."""
    for pid in (1, procfs.self_pid()):
        if pid is None:
            continue
        try:
            hierarchy = cgroup_hierarchy(procfs.read_optional(pid, "cgroup") or b"")
        except ProcessGone:
            continue
        if hierarchy is not None:
            return hierarchy
    return None


class _AppFacts:
    """What --group-by app has read of one process, as far as it needed to
    (see Namer._app()); None where not read yet."""

    __slots__ = ("pid", "exe", "link", "comm", "status", "argv", "program")

    def __init__(self, pid: int, exe: str, link: "Optional[str]", comm: str,
                 status: "Optional[Tuple[str, Optional[int]]]",
                 argv: "Optional[List[str]]") -> None:
        self.pid = pid
        self.exe = exe  # the executable's name, as _exe() makes it
        self.link = link  # the exe link's target, whole
        self.comm = comm  # status's Name, from comm where it may be
        self.status = status  # (Name, PPid), as _program() takes it
        self.argv = argv
        self.program: Optional[str] = None  # 3.14's name


# Parents walked up from one process to find its application: real
# workers are one or two below it (multiprocessing's fork server forks the
# pool); a tree can be a hostile one.
_MAX_PARENTS = 32


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
        # Decided once, not per process: see machine_cgroup_hierarchy().
        self._hierarchy = (machine_cgroup_hierarchy(procfs) if options.group_by == "cgroup"
                           else None)
        # --group-by app: each process's application and what was read of
        # it, for the sample (a parent is read once, however many workers).
        self._apps: Dict[int, str] = {}
        self._app_facts: Dict[int, _AppFacts] = {}
        self._interpreters: Dict[str, bool] = {}
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

    def _link(self, pid: int) -> str:
        """The exe link's target."""
        path = self.procfs.readlink(pid, "exe")
        if "\0" in path:  # some kernels (RHEL 5) were seen to put NULs there
            path = path[:path.index("\0")]
        return path

    def _exe(self, pid: int, cmdline: "Optional[List[str]]", path: "Optional[str]" = None
             ) -> str:
        """The executable's basename; a replaced or removed one is marked
        " [updated]" or " [deleted]".  PATH: _link(pid), if read."""
        if path is None:
            path = self._link(pid)
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
            self._parent_exe[ppid] = self._read_exe(ppid)[0]
        return self._parent_exe[ppid]

    def _read_exe(self, pid: int
                  ) -> "Tuple[Optional[str], Optional[str], Optional[List[str]]]":
        """(_exe(), the link it was made from, the command line where the
        proc root is read as 3.14 reads it) of a parent; Nones where gone."""
        try:
            cmdline = self._cmdline(pid) if self._reading.as_3_14 else None
            link = self._link(pid)
            return self._exe(pid, cmdline, link), link, cmdline
        except ProcessGone:
            return None, None, None

    def names(self, pid: int) -> "Tuple[str, Optional[str]]":
        """(The name to group by, the program too where rows group by
        something else: --group-by user, cgroup or app, else None.)"""
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
        link = self._link(pid)
        exe = self._exe(pid, cmdline, link)
        if self.options.split_args:
            assert cmdline is not None
            return " ".join(cmdline).replace("\n", " "), None
        if self.options.group_by == "app":
            name, program = self._app_names(pid, link, exe, cmdline)
        else:
            program = self._program(pid, exe)
        also: Optional[str] = program
        if self.options.group_by == "user":
            name = self._user(pid)
        elif self.options.group_by == "cgroup":
            name = parse_cgroup(self.procfs.read_optional(pid, "cgroup") or b"", self._hierarchy)
        elif self.options.group_by != "app":
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

    def _task_name(self, pid: int) -> "Tuple[str, Optional[Tuple[str, Optional[int]]]]":
        """(status's Name, status as parsed where it was read for it)."""
        name = self._comm(pid) if self._reading.names_from_comm else None
        if name is None:
            status = self._status(pid)
            return status[0], status
        return name, None

    def _program(self, pid: int, exe: str,
                 named: "Optional[Tuple[str, Optional[Tuple[str, Optional[int]]]]]" = None
                 ) -> str:
        """3.14's name of a process.  NAMED: _task_name(pid), if read."""
        name, status = self._task_name(pid) if named is None else named
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

    # --group-by app: app_name() of a process, else of the parent it joins
    # (joins_parent()), and so on up; else its program.

    def _app_names(self, pid: int, link: str, exe: str, cmdline: "Optional[List[str]]"
                   ) -> "Tuple[str, str]":
        """(The application of PID, its program)."""
        comm, status = self._task_name(pid)
        if not self._runs_scripts(exe) and exe.startswith(comm):
            # Most processes: named by their executable (see _app()).  No
            # walk reaches one: a worker joining it would be named so too.
            program = self._program(pid, exe, (comm, status))
            return program, program
        facts = _AppFacts(pid, exe, link, comm, status, cmdline)
        self._app_facts[pid] = facts
        name = self._apps.get(pid)
        if name is None:
            name = self._app(facts)
        return name, self._program_of(facts)

    def _app(self, start: _AppFacts) -> str:
        """The application of START, walking up its parents while each
        joins the next; kept for every process of the walk.  A walk stops
        after _MAX_PARENTS parents, and at a pid already in it (a hostile
        tree's cycle): the last process reached gives its program."""
        chain: List[int] = []
        current = start
        while True:
            name = self._apps.get(current.pid)
            if name is not None:
                break
            chain.append(current.pid)
            if self._runs_scripts(current.exe):
                name = app_name(current.exe, self._argv_of(current))
                if name is not None:
                    break
            elif current.exe.startswith(current.comm):
                # 3.14 names it by its executable, and so every parent it
                # could join (the same executable, the same comm): no
                # parent need be read.
                name = self._program_of(current)
                break
            ppid = self._ppid_of(current)
            parent = None
            if ppid and ppid not in chain and len(chain) <= _MAX_PARENTS:
                parent = self._parent_facts(ppid, current.exe)
            if parent is None or not joins_parent(self._link_of(current), current.comm,
                                                  self._link_of(parent), parent.comm):
                try:
                    name = self._program_of(current)
                except ProcessGone:
                    if current is start:
                        raise
                    return self._program_of(start)  # a parent gone meanwhile
                break
            current = parent
        for pid in chain:
            self._apps[pid] = name
        return name

    def _runs_scripts(self, exe: str) -> bool:
        """runs_scripts(EXE), asked once per executable's name and sample."""
        runs = self._interpreters.get(exe)
        if runs is None:
            runs = self._interpreters[exe] = runs_scripts(exe)
        return runs

    def _parent_facts(self, pid: int, exe: str) -> "Optional[_AppFacts]":
        """What was read of parent PID, where it runs EXE (only then may a
        child join it: a login shell's parent, sshd, is read no further);
        None where it does not, or is gone."""
        facts = self._app_facts.get(pid)
        if facts is not None:
            return facts if facts.exe == exe else None
        # Its exe as 3.14's name of a renamed child reads it: once for both.
        link = cmdline = None
        if pid in self._parent_exe:
            found = self._parent_exe[pid]
        else:
            found, link, cmdline = self._read_exe(pid)
            self._parent_exe[pid] = found
        if found != exe:
            return None
        try:
            comm, status = self._task_name(pid)
        except ProcessGone:
            return None
        facts = self._app_facts[pid] = _AppFacts(pid, exe, link, comm, status, cmdline)
        return facts

    def _program_of(self, facts: _AppFacts) -> str:
        if facts.program is None:
            facts.program = self._program(facts.pid, facts.exe, (facts.comm, facts.status))
        return facts.program

    def _ppid_of(self, facts: _AppFacts) -> "Optional[int]":
        """The parent's pid; None where it cannot be told (then there is
        no parent to join, and _program() says why, if it needs one)."""
        if facts.status is None:
            try:
                facts.status = (facts.comm, self._ppid(facts.pid, None))
            except ProcessGone:
                return None
        return facts.status[1]

    def _link_of(self, facts: _AppFacts) -> "Optional[str]":
        if facts.link is None:
            try:
                facts.link = self._link(facts.pid)
            except ProcessGone:
                return None
        return facts.link

    def _argv_of(self, facts: _AppFacts) -> "List[str]":
        """The command line; none where it cannot be read (during an exec,
        the exe link changes before the command line is there)."""
        if facts.argv is None:
            try:
                facts.argv = self._cmdline(facts.pid)
            except ProcessGone:
                facts.argv = []
        return facts.argv


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
          layouts: "Optional[Dict[bytes, Any]]" = None) -> Scan:
    """The samples of PIDS, read by this process; NAMER and LAYOUTS are kept
    by a caller that scans more pids of the same sample.  (LAYOUTS holds
    one kind: RollupLayout, or MappingLayout where rows are mappings.)"""
    if namer is None:
        namer = Namer(procfs, options)
    if layouts is None:
        layouts = {}
    samples = []
    unreadable = unparsable = 0
    as_data = procfs.reading.as_data
    by_mapping = options.group_by == "mapping"
    split = options.system
    # Read by whichever reader reads the process: the ledger looks for tmpfs
    # mounts in every mount namespace.
    namespaces = split and procfs.reading.statvfs
    known_namespaces: Dict[str, Optional[int]] = {}
    starts = identifies_processes(options) and (options.diff is not None or options.delta)
    start = None
    for pid in pids:
        try:
            if by_mapping:
                name, _ = namer.names(pid)
                memory, rows = read_mappings(procfs, pid, layouts)
                samples.append(ProcessSample(pid, namer.one_copy(name), *memory, None, rows, None,
                                             None))
                continue
            name, program = namer.names(pid)
            memory = read_memory(procfs, pid, kernel, layouts, split)
            if starts:
                start = _start_time(procfs, pid)
        except ProcessGone as gone:
            unreadable += gone.denied
            unparsable += gone.unparsable and as_data
            continue
        # Every field given: a record made whole is made the quickest way.
        samples.append(ProcessSample(pid, namer.one_copy(name), *memory,
                                     program and namer.one_copy(program), None,
                                     _mount_namespace(procfs, pid, known_namespaces)
                                     if namespaces else None,
                                     start))
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


def _mount_namespace(procfs: ProcFS, pid: int,
                     known: "Optional[Dict[str, Optional[int]]]" = None) -> "Optional[int]":
    """PID's mount namespace; KNOWN, kept from one process to the next,
    holds the links already parsed (most processes share a few)."""
    try:
        link = procfs.readlink(pid, "ns/mnt")
    except ProcessGone:
        return None
    if known is None:
        return parse_namespace(link)
    if link not in known:
        known[link] = parse_namespace(link)
    return known[link]


def _read_bounded(path: str, limit: int = 16 << 20) -> "Optional[bytes]":
    """At most LIMIT bytes of a file of the live system; None where it
    cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        chunks = []
        total = 0
        while total < limit:
            data = os.read(fd, min(_CHUNK, limit - total))
            if not data:
                break
            chunks.append(data)
            total += len(data)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _mount_use(mount: Mount, path: str, pid: "Optional[int]") -> ShmMount:
    """What MOUNT, reached at PATH, uses now: blocks in use times the
    fragment size, as statvfs answers.  Unknown where the tmpfs has no size
    limit (no blocks), where PATH leads to another filesystem (a mount on
    top of it), or where it cannot be asked."""
    unknown = ShmMount(mount.mount_point, mount.fs_type, mount.device, None, None, pid)
    try:
        # One opening for both questions, so that both are of one mount.
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return unknown
    try:
        info = os.fstatvfs(fd)
        number = os.fstat(fd).st_dev
    except OSError:
        return unknown
    finally:
        os.close(fd)
    device = "%d:%d" % (os.major(number), os.minor(number))
    if mount.device is not None and device != mount.device:
        return unknown
    unknown = unknown._replace(device=device)
    if info.f_blocks <= 0 or info.f_frsize <= 0 or info.f_bfree > info.f_blocks:
        return unknown
    size = info.f_blocks * info.f_frsize
    if size >= _MAX_SIZE_BYTES:
        return unknown
    return unknown._replace(used_bytes=(info.f_blocks - info.f_bfree) * info.f_frsize,
                            size_bytes=size)


# Whoever may make mount namespaces may fill them with mounts: the tables
# read, all namespaces together, are bounded.
_MAX_NAMESPACES = 1024
_MAX_MOUNT_TABLES = 64 << 20  # bytes


def live_system_record(procfs: ProcFS, namespaces: "Dict[int, int]",
                       notes: "Optional[List[str]]" = None) -> SystemRecord:
    """The tmpfs mounts and their use (one per superblock, ps_mem's own
    mount namespace first, then each other namespace of NAMESPACES, inode
    -> a pid in it, reached through /proc/PID/root), the ramfs mounts, and
    the zram devices' use: what --system asks now of the live system.
    NOTES: told of the namespaces left out past the bounds."""
    mounts: List[ShmMount] = []
    ramfs: List[str] = []
    seen: Set[str] = set()
    ours = _mount_namespace(procfs, procfs.self_pid() or os.getpid())
    tables: List[Tuple[Optional[int], str]] = [(None, "self")]
    tables += [(pid, str(pid)) for namespace, pid in sorted(namespaces.items(),
                                                              key=lambda item: item[1])
               if namespace != ours]
    budget = _MAX_MOUNT_TABLES
    for index, (pid, directory) in enumerate(tables):
        if budget <= 0 or index > _MAX_NAMESPACES or len(mounts) >= _MAX_MOUNTS:
            if notes is not None:
                notes.append("Mount namespaces not looked into: %d (past %d namespaces, %d MiB"
                             " of mount tables or %d mounts); their tmpfs pages are in the"
                             " rest of shared memory." % (
                                 len(tables) - index, _MAX_NAMESPACES,
                                 _MAX_MOUNT_TABLES >> 20, _MAX_MOUNTS))
            break
        table = _read_bounded(procfs.path(directory, "mountinfo"), budget)
        budget -= len(table or b"")
        found = parse_mountinfo(table) if table else []
        if not found and pid is None:
            found = parse_mounts(_read_bounded(procfs.path("mounts")) or b"")
        prefix = "" if pid is None else procfs.path(directory, "root")
        for mount in found:
            if mount.fs_type == "ramfs" and len(ramfs) < _MAX_MOUNTS:
                ramfs.append(mount.mount_point)
            if mount.fs_type not in _SHMEM_TYPES or mount.device in seen:
                continue
            if len(mounts) >= _MAX_MOUNTS:
                break
            use = _mount_use(mount, prefix + mount.mount_point, pid)
            if use.device is not None:
                if use.device in seen:
                    continue  # /proc/mounts names no devices: one tmpfs seen twice
                seen.add(use.device)
            mounts.append(use)
    zram = {}
    try:
        devices = sorted(name for name in os.listdir("/sys/block") if name.startswith("zram"))
    except OSError:
        devices = []
    for name in devices[:256]:
        used = parse_zram_mm_stat(_read_bounded("/sys/block/%s/mm_stat" % name, 4096) or b"")
        if used is not None:
            zram[name] = used
    return SystemRecord(mounts, ramfs, zram)


def read_system(procfs: ProcFS, kernel: "KernelVersion", self_pid: "Optional[int]",
                samples: "List[ProcessSample]") -> SystemSample:
    """What --system reads beside the scan's SAMPLES, read just after them:
    meminfo, the SysV segments, the tmpfs mounts' use, zram, and ps_mem's
    own memory.  OSError where meminfo cannot be read."""
    notes = []
    meminfo = parse_meminfo(procfs.read_global("meminfo"))
    own = None
    if self_pid is not None:
        try:
            own = ProcessSample(self_pid, "ps_mem",
                                *read_memory(procfs, self_pid, kernel, {}, True))
        except ProcessGone:
            own = None  # left to the remainder
    try:
        segments = parse_sysvipc_shm(procfs.read_global("sysvipc/shm"))
    except OSError as error:
        segments = []
        if not procfs.reading.statvfs or error.errno != errno.ENOENT:
            # The live kernel has none where it is built without SysV IPC.
            notes.append("sysvipc/shm could not be read (%s): SysV segments, if any, are in"
                         " the rest of shared memory." % (error.strerror or error))
    record = SystemRecord([], [], {})
    if procfs.reading.statvfs:
        namespaces: Dict[int, int] = {}
        for sample in samples:
            if sample.mount_namespace is not None:
                namespaces.setdefault(sample.mount_namespace, sample.pid)
        record = live_system_record(procfs, namespaces, notes)
    else:
        try:
            record = _parse_system_record(procfs.read_global(_SYSTEM_RECORD))
        except OSError:
            notes.append("The proc root holds no record of its tmpfs mounts' use (%s):"
                         " their pages are in the rest of shared memory." % _SYSTEM_RECORD)
        except ValueError as error:
            notes.append("The proc root's %s is not as ps_mem writes it (%s): the tmpfs"
                         " mounts' pages are in the rest of shared memory."
                         % (_SYSTEM_RECORD, error))
    zram = record.zram_used_bytes
    # Whether a segment's creator still runs, asked of the largest segments,
    # which the ledger names (see _TOP_SEGMENTS).
    scanned = {sample.pid for sample in samples}
    largest = sorted(segments, key=lambda segment: -(
        segment.size_bytes if segment.rss_bytes is None else segment.rss_bytes))
    exited = frozenset(segment.cpid for segment in largest[:64]
                       if segment.cpid and segment.cpid not in scanned
                       and segment.cpid != self_pid and not procfs.exists(segment.cpid, "stat"))
    return SystemSample(meminfo, segments, record.mounts, record.ramfs,
                        sum(zram.values()) if zram else None, own, notes, exited)


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


def capture(procfs: ProcFS, self_pid: "Optional[int]", full_smaps: bool = False) -> Snapshot:
    """Everything any run would read from PROCFS now, held in memory.

    FULL_SMAPS: keep every process's full smaps, which only --group-by
    mapping reads; otherwise a process's smaps is kept only where it has no
    smaps_rollup, as a full smaps is many times its rollup's size."""
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
            table[relative] = value = reader(relative)
            return value
        except OSError as error:
            if error.errno is not None and error.errno != errno.ENOENT:
                errors[relative] = error.errno
            return None

    for name in _PROC_GLOBALS:
        keep(name, procfs.read_relative, files)
    pids = procfs.pids()
    namespaces: Dict[int, int] = {}
    smaps_left_out = False
    for pid in pids:
        target = keep("%d/exe" % pid, procfs.readlink_relative, links)
        if target is not None and procfs.reading.statvfs:
            namespace = _mount_namespace(procfs, pid)
            if namespace is not None:
                namespaces.setdefault(namespace, pid)
        # Without an exe link (kernel threads) a process is left out once
        # its cmdline is read: nothing more of it is needed.
        for name in _CAPTURED_FILES if target is not None else ("cmdline",):
            if (name == "smaps" and not full_smaps and "%d/smaps_rollup" % pid in files
                    and pid != self_pid):
                smaps_left_out = True
                continue  # smaps is read only where there is no smaps_rollup
            keep("%d/%s" % (pid, name), procfs.read_relative, files)
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
    # What --system would ask that is not a file: asked now, as it answers now.
    if procfs.reading.statvfs:
        files[_SYSTEM_RECORD] = _system_record_json(live_system_record(procfs, namespaces))
    else:
        keep(_SYSTEM_RECORD, procfs.read_relative, files)
    manifest = Manifest(pids, self_pid, procfs.time(), errors, path_exists, users, None,
                        full_smaps=not smaps_left_out)
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


def aggregate(samples: "List[ProcessSample]", unreadable: int = 0,
              address_spaces: "Optional[AddressSpaceMap]" = None, unparsable: int = 0) -> Report:
    """Sum samples per name, count each address space once, sort, total."""
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
    # The rows with a process that shares its space; in the others, each
    # process is alone.  The map is asked twice rather than a pair kept
    # per process: this runs at the peak of a run's memory.
    sharing_names: Set[str] = set()
    if address_spaces is not None:
        for sample in samples:  # processes absent from the map are alone
            mm = address_spaces.get(sample.pid)
            if mm is not None:
                mm_size[mm] = mm_size.get(mm, 0) + 1
        for sample in samples:
            if mm_size.get(address_spaces.get(sample.pid), 0) > 1:
                sharing_names.add(sample.name)
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
    for name in list(groups):  # first-seen order, as 3.14 sums
        # Each row's list goes once it is summed, as the rows are made.
        members = groups.pop(name)
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


def aggregate_mappings(samples: "Iterable[ProcessSample]", unreadable: int = 0,
                       address_spaces: "Optional[AddressSpaceMap]" = None,
                       unparsable: int = 0) -> Report:
    """--group-by mapping: sum the processes' shares per row (see
    ProcessSample.mappings), count each address space once, sort, total.

    Address spaces are counted as aggregate() counts them: the k processes
    of one show the same mappings, so each brings 1/k of what it shows (its
    swap too, unless the space is only guessed by 3.14's rule, as there),
    and each counts among the processes that map the row.  The rows are
    ProgramUsage named by mapping_name(), ascending by RAM, those of no RAM
    left out; the total is the rows' sum (see _ROUNDING_KIB for how it
    compares with the default report's).
    """
    samples = list(samples)
    pss_seen = any(sample.has_pss for sample in samples)
    swap_pss_seen = any(sample.has_swap_pss for sample in samples)
    if address_spaces is None:
        # 3.14's rule, for the programs the processes run.
        address_spaces = _rule_as_address_spaces(
            [sample if sample.program is not None else sample._replace(program=sample.name)
             for sample in samples])
    space_size: Dict[object, int] = {}
    for sample in samples:
        space = address_spaces.get(sample.pid)
        if space is not None:
            space_size[space] = space_size.get(space, 0) + 1
    # name -> [private, shared, largest shared hugetlb, swap, [pids]]
    rows: Dict[str, List[Any]] = {}
    for sample in samples:
        space = address_spaces.get(sample.pid)
        size = space_size[space] if space is not None else 1
        swap_size = 1 if isinstance(space, tuple) else size
        for name, (private, shared, shared_huge, swap) in (sample.mappings or {}).items():
            row = rows.get(name)
            if row is None:
                row = rows[name] = [0, 0, 0, 0, []]
            if size > 1:
                private /= size
                if pss_seen:
                    shared /= size
            if swap_size > 1:
                swap /= swap_size
            row[0] += private
            row[1] = _add_shared(row[1], shared, pss_seen)
            # Each process shows a hugetlb segment whole, outside PSS.
            if shared_huge > row[2]:
                row[2] = shared_huge
            row[3] += swap
            row[4].append(sample.pid)
    programs = []
    total_ram: float = 0
    total_swap: float = 0
    for name, (private, shared, shared_huge, swap, pids) in rows.items():
        shared += shared_huge
        ram = private + shared
        total_ram += ram
        total_swap += swap
        if ram:
            programs.append(ProgramUsage(name, len(pids), tuple(pids), ram - shared, shared,
                                         ram, swap))
    programs.sort(key=lambda program: program.ram_kib)
    return Report(programs, total_ram, total_swap, pss_seen, swap_pss_seen, unreadable,
                  unparsable)


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


# What --system shows: all of MemTotal, line by line.  Every size is an
# integer number of bytes (meminfo's KiB, statvfs's blocks and sysvipc's
# bytes convert exactly), so that the lines add up exactly; README.md gives
# the fields behind each line and the kernel history behind them.


def _address_space_divisors(samples: "List[ProcessSample]",
                            address_spaces: "Optional[AddressSpaceMap]") -> "List[int]":
    """By how much aggregate() divides each sample's memory: the number of
    processes that share its address space, as the kernel said or as 3.14's
    rule guesses it (1 for a process alone)."""
    if address_spaces is None and any(sample.program is not None for sample in samples):
        address_spaces = _rule_as_address_spaces(samples)
    if address_spaces is not None:
        sizes: Dict[object, int] = {}
        for sample in samples:
            mm = address_spaces.get(sample.pid)
            if mm is not None:
                sizes[mm] = sizes.get(mm, 0) + 1
        return [sizes.get(address_spaces.get(sample.pid), 1) if sample.pid in address_spaces
                else 1 for sample in samples]
    # 3.14's rule: a row all of whose processes show one memory text.
    rows: Dict[str, List[ProcessSample]] = {}
    for sample in samples:
        rows.setdefault(sample.name, []).append(sample)
    divisor = {}
    for members in rows.values():
        mem_ids = {sample.mem_id for sample in members}
        if len(members) > 1 and len(mem_ids) == 1 and None not in mem_ids:
            for sample in members:
                divisor[sample.pid] = len(members)
    return [divisor.get(sample.pid, 1) for sample in samples]


def _counted_shared_hugetlb(samples: "List[ProcessSample]") -> float:
    """Shared hugetlb memory as aggregate() counts it: each row's (or,
    where rows are not programs, each program's) largest mapping."""
    if any(sample.program is not None for sample in samples):
        return sum(_hugetlb_per_program(samples).values())
    largest: Dict[str, float] = {}
    for sample in samples:
        largest[sample.name] = max(largest.get(sample.name, 0), sample.shared_hugetlb_kib)
    return sum(largest.values())


def process_sums(samples: "List[ProcessSample]", address_spaces: "Optional[AddressSpaceMap]",
                 total_ram_kib: float, total_swap_kib: "Optional[float]") -> PssSums:
    """The report's total RAM_KIB split into Pss_Anon, Pss_File, Pss_Shmem
    and hugetlb, over the same SAMPLES with each shared address space
    counted once as aggregate() counts it, so that the parts add up to the
    total but for the kernel's truncation of each to whole KiB."""
    pss_seen = any(sample.has_pss for sample in samples)
    divisors = _address_space_divisors(samples, address_spaces)
    split = pss_seen
    anon = file = shmem = hugetlb = 0.0
    for sample, divisor in zip(samples, divisors):
        parts = sample.pss_parts
        if parts is None or parts[0] is None or parts[1] is None or parts[2] is None:
            split = split and not sample.has_pss
            if parts is not None:
                hugetlb += parts[3] / divisor
            continue
        anon += parts[0] / divisor
        file += parts[1] / divisor
        shmem += parts[2] / divisor
        hugetlb += parts[3] / divisor
    hugetlb += _counted_shared_hugetlb(samples)
    return PssSums(total_ram_kib, anon if split else None, file if split else None,
                   shmem if split else None, hugetlb, total_swap_kib, pss_seen)


def in_bytes(kib: float) -> int:
    """KiB as every view that counts bytes shows them (JSON, the ledger,
    Prometheus): the nearest whole byte."""
    return int(round(kib * 1024))


_TOP_SEGMENTS = 16  # SysV segments shown one by one; the others are summed


class NoLedger(ValueError):
    """meminfo cannot make a ledger (it has no MemTotal)."""


class _LedgerBook:
    """The ledger being written: lines in order, and the notes."""

    def __init__(self, meminfo: "Dict[str, int]") -> None:
        self.meminfo = meminfo
        self.lines: List[LedgerLine] = []
        self.notes: List[str] = []

    def field(self, name: str) -> "Optional[int]":
        """FIELD in bytes (a HugePages_ count as it is), None where absent."""
        value = self.meminfo.get(name)
        return None if value is None else value * 1024

    def value(self, name: str) -> int:
        """FIELD in bytes, 0 where meminfo lacks it (callers ask has() where
        a missing field changes the ledger)."""
        return self.meminfo.get(name, 0) * 1024

    def has(self, *names: str) -> bool:
        return all(name in self.meminfo for name in names)

    def add(self, key: str, name: str, size: int, fields: "Tuple[str, ...]",
            estimate: bool = False, depth: int = 0, counted: bool = True,
            detail: "Tuple[Tuple[str, Any], ...]" = ()) -> LedgerLine:
        line = LedgerLine(key, name, size, fields, estimate, depth, counted, detail)
        self.lines.append(line)
        return line

    def simple(self, key: str, name: str, field: str, depth: int = 0) -> "Optional[LedgerLine]":
        size = self.field(field)
        return None if size is None else self.add(key, name, size, (field,), depth=depth)

    def group(self, key: str, name: str, children: "List[LedgerLine]",
              fields: "Tuple[str, ...]" = (), estimate: "Optional[bool]" = None) -> None:
        """A line summing CHILDREN (added already, one level down), put
        before them; an estimate where ESTIMATE says, or any of them is."""
        counted = [child for child in children if child.counted]
        if not fields:
            fields = tuple(sorted({field for child in counted for field in child.fields}))
        if estimate is None:
            estimate = any(child.estimate for child in counted)
        first = next(index for index, line in enumerate(self.lines) if line is children[0])
        self.lines.insert(first, LedgerLine(key, name, sum(child.size_bytes for child in counted),
                                            fields, estimate))


def ledger(system: SystemSample, processes: PssSums, unread: int = 0,
           names: "Optional[Dict[int, str]]" = None,
           kernel: "KernelVersion" = (0, 0, 0)) -> Ledger:
    """All of MemTotal, line by line: what SYSTEM's meminfo says, split by
    what the scan read (PROCESSES), with UNREAD processes that could not
    be read; NAMES: the program of each pid that a line names (a SysV
    segment's creator, a mount namespace's process); KERNEL: the release,
    which tells whether VmallocUsed is RAM.

    The counted lines at depth 0 add up to MemTotal exactly: the last, the
    remainder, is MemTotal less all the others, negative where fields
    overlap more than is known, never hidden.  NoLedger where meminfo has
    no MemTotal.
    """
    book = _LedgerBook(system.meminfo)
    total = book.field("MemTotal")
    if total is None:
        raise NoLedger("meminfo has no MemTotal line")
    names = names or {}
    pss = in_bytes(processes.total_kib)
    hugetlb = in_bytes(processes.hugetlb_kib)
    split = processes.anon_kib is not None and processes.file_kib is not None \
        and processes.shmem_kib is not None
    anon = in_bytes(processes.anon_kib or 0)
    file = in_bytes(processes.file_kib or 0)
    shmem = in_bytes(processes.shmem_kib or 0)
    own = None
    if system.own is not None and processes.pss_seen:
        own = process_sums([system.own], None, system.own.private_kib + system.own.shared_kib
                           + system.own.shared_hugetlb_kib, system.own.swap_kib)
    own_pss = in_bytes(own.total_kib) if own is not None else 0
    own_anon = in_bytes(own.anon_kib or 0) if own is not None and split else 0
    own_file = in_bytes(own.file_kib or 0) if own is not None and split else 0
    own_shmem = in_bytes(own.shmem_kib or 0) if own is not None and split else 0
    own_hugetlb = in_bytes(own.hugetlb_kib) if own is not None else 0

    _processes_lines(book, processes, pss, split, anon, file, shmem, hugetlb)
    if own is not None:
        book.add("own", "ps_mem itself (left out of the report)", own_pss, ("Pss",))
    if processes.pss_seen and unread > 0 and book.has("AnonPages", "Mapped"):
        _not_read(book, unread, split, pss + own_pss - hugetlb - own_hugetlb,
                  anon + own_anon, file + own_file + shmem + own_shmem)
    if split and book.has("Cached", "Shmem"):
        _shared_memory(book, system, names, shmem + own_shmem)
        book.add("page_cache", "Page cache no process maps",
                 book.value("Cached") - book.value("Shmem") - file - own_file,
                 ("Cached", "Shmem", "Pss_File"))
    elif processes.pss_seen and book.has("Cached", "Mapped"):
        # Without the split, what no process maps at all is Cached less
        # Mapped, which counts each mapped page once, unread processes' too.
        book.notes.append(
            "This kernel does not split PSS into Pss_Anon, Pss_File and Pss_Shmem"
            " (smaps_rollup, Linux 5.3 and later): page cache and shared memory that"
            " no process maps are one line.")
        children = _shm_breakdown(book, system, names)
        unmapped = book.value("Cached") - book.value("Mapped")
        if children:
            children.append(book.add(
                "unmapped.rest", "other page cache and shared memory",
                unmapped - sum(child.size_bytes for child in children), ("Cached", "Mapped"),
                estimate=True, depth=1))
            book.group("unmapped", "Page cache and shared memory no process maps", children,
                       ("Cached", "Mapped"), estimate=False)
        else:
            book.add("unmapped", "Page cache and shared memory no process maps", unmapped,
                     ("Cached", "Mapped"))
    elif book.has("Cached"):
        book.notes.append(
            "No PSS on this system: processes' memory is not counted apart (the line is"
            " beside); what they map is in the page cache line, their anonymous memory"
            " and the kernel's are in the remainder.")
        book.add("page_cache", "Page cache (mapped or not) and shared memory",
                 book.value("Cached"), ("Cached",))
    book.simple("buffers", "Buffers", "Buffers")
    book.simple("swap_cache", "Swap cache", "SwapCached")
    _kernel(book, kernel)
    _huge_pages(book, hugetlb + own_hugetlb if processes.pss_seen else 0)
    _compressed(book, system.zram_used_bytes)
    book.simple("unaccepted", "Unaccepted (not yet given to this VM)", "Unaccepted")
    book.simple("free", "Free", "MemFree")
    if "MemFree" not in system.meminfo:
        book.notes.append("meminfo has no MemFree: free memory is in the remainder.")
    for point in system.ramfs:
        book.notes.append("ramfs at %s: its files are page cache that cannot be freed,"
                          " of a size no interface tells." % escaped(point))
    if book.field("Balloon"):
        book.notes.append("Balloon: %d KiB given back to the hypervisor; most balloon"
                          " drivers take them out of MemTotal, so no line counts them."
                          % system.meminfo["Balloon"])
    book.notes.extend(system.notes)
    counted = sum(line.size_bytes for line in book.lines if line.depth == 0 and line.counted)
    book.add("remainder", "Not explained by any field (remainder)", total - counted,
             ("MemTotal",), estimate=True)
    return Ledger(tuple(book.lines), total, tuple(book.notes))


def _processes_lines(book: _LedgerBook, processes: PssSums, pss: int, split: bool,
                     anon: int, file: int, shmem: int, hugetlb: int) -> None:
    if not processes.pss_seen:
        book.add("processes", "Processes (no PSS: shared memory counted more than once)",
                 pss, ("Private", "Shared"), estimate=True, counted=False)
        return
    children = []
    if split:
        children = [
            book.add("processes.anon", "anonymous", anon, ("Pss_Anon",), depth=1),
            book.add("processes.file", "file-backed", file, ("Pss_File",), depth=1),
            book.add("processes.shmem", "shared memory (shmem)", shmem, ("Pss_Shmem",),
                     depth=1),
        ]
        if hugetlb:
            children.append(book.add("processes.hugetlb", "hugetlb pages", hugetlb,
                                     ("Private_Hugetlb", "Shared_Hugetlb"), depth=1))
        # Each part is truncated to whole KiB apart from Pss, and the
        # report adds 0.5 KiB back per Pss line.
        children.append(book.add("processes.rounding", "rounding to whole KiB",
                                 pss - anon - file - shmem - hugetlb, ("Pss",), estimate=True,
                                 depth=1))
    else:
        book.add("processes", "Processes (PSS)", pss, ("Pss",))
        if hugetlb:
            book.add("processes.hugetlb", "of which hugetlb pages", hugetlb,
                     ("Private_Hugetlb", "Shared_Hugetlb"), depth=1, counted=False)
    if processes.swap_pss_kib is not None:
        children.append(book.add("processes.swap", "swap (SwapPss, not in RAM)",
                                 in_bytes(processes.swap_pss_kib), ("SwapPss",), depth=1,
                                 counted=False))
    if split:
        book.group("processes", "Processes (PSS)", children, ("Pss",), estimate=False)


def _not_read(book: _LedgerBook, unread: int, split: bool, pss: int, anon: int,
              mapped: int) -> None:
    """What meminfo implies the processes that could not be read hold:
    PSS: what those read hold (ps_mem too), less hugetlb; ANON and MAPPED:
    the anonymous and the file and shmem parts of it, where split."""
    name = "Processes not read (%d)" % unread
    if split:
        # Every anonymous page mapped anywhere is in AnonPages once; the
        # processes read hold their Pss_Anon of them.
        book.add("not_read", name + ": anonymous", max(0, book.value("AnonPages") - anon),
                 ("AnonPages", "Pss_Anon"), estimate=True)
        book.add("not_read.mapped", "of the page cache and shared memory below, mapped by them",
                 max(0, book.value("Mapped") - mapped), ("Mapped", "Pss_File", "Pss_Shmem"),
                 estimate=True, depth=1, counted=False)
    else:
        # Without the split, AnonPages + Mapped is every mapped page once.
        book.add("not_read", name,
                 max(0, book.value("AnonPages") + book.value("Mapped") - pss),
                 ("AnonPages", "Mapped", "Pss"), estimate=True)


def _segment_name(segment: ShmSegment, names: "Dict[int, str]",
                  exited: "FrozenSet[int]") -> str:
    program = names.get(segment.cpid)
    if program is not None:
        creator = printable(program)
    elif not segment.cpid:  # the kernel's word for a pid of another namespace
        creator = "creator not in this pid namespace"
    else:
        creator = "pid %d%s" % (segment.cpid, ", exited" if segment.cpid in exited else "")
    return "SysV key 0x%08x id %d (%s, %d attached)" % (
        segment.key & 0xFFFFFFFF, segment.shmid, creator, segment.nattch)


def _shown_path(path: str) -> str:
    """A path for the table and JSON: bytes that were not UTF-8 and
    control characters as "?"."""
    return printable(path.encode("utf-8", "replace").decode("utf-8"))


def _mount_name(mount: ShmMount, names: "Dict[int, str]") -> str:
    name = "%s %s" % (mount.fs_type, _shown_path(mount.mount_point))
    if mount.namespace_pid is None:
        return name
    program = names.get(mount.namespace_pid)
    return "%s (mount namespace of pid %d%s)" % (
        name, mount.namespace_pid, "" if program is None else ", " + printable(program))


def _shm_breakdown(book: _LedgerBook, system: SystemSample,
                   names: "Dict[int, str]") -> "List[LedgerLine]":
    """A line per tmpfs mount whose use is known, then the SysV segments,
    one level down: each is Shmem, whether processes map it or not."""
    children = []
    for mount in system.mounts:
        if mount.used_bytes is None:
            book.notes.append("%s: its use is unknown (no size limit, or another mount on"
                              " top of it); it is in the rest of shared memory."
                              % _mount_name(mount, names))
            continue
        children.append(book.add(
            "shmem.mount", _mount_name(mount, names), mount.used_bytes, ("statvfs",), depth=1,
            detail=(("mount_point", _shown_path(mount.mount_point)), ("device", mount.device),
                    ("size", mount.size_bytes), ("namespace_pid", mount.namespace_pid))))
    if any(segment.rss_bytes is None for segment in system.segments):
        book.notes.append("/proc/sysvipc/shm has no rss column (Linux 3.10 and later): a SysV"
                          " segment counts its whole size, resident or not.")

    def resident(segment: ShmSegment) -> int:
        return segment.size_bytes if segment.rss_bytes is None else segment.rss_bytes

    ordered = sorted(system.segments, key=lambda segment: (-resident(segment), segment.shmid))
    for segment in ordered[:_TOP_SEGMENTS]:
        children.append(book.add(
            "shmem.sysv", _segment_name(segment, names, system.exited), resident(segment),
            ("sysvipc/shm",), estimate=segment.rss_bytes is None, depth=1,
            detail=(("key", segment.key), ("shmid", segment.shmid),
                    ("size", segment.size_bytes), ("rss", segment.rss_bytes),
                    ("swap", segment.swap_bytes), ("nattch", segment.nattch),
                    ("cpid", segment.cpid),
                    ("program", printable(names[segment.cpid]) if segment.cpid in names
                     else None))))
    others = ordered[_TOP_SEGMENTS:]
    if others:
        children.append(book.add(
            "shmem.sysv_others", "%d other SysV segment%s" % (len(others),
                                                              "s" if len(others) > 1 else ""),
            sum(resident(segment) for segment in others), ("sysvipc/shm",),
            any(segment.rss_bytes is None for segment in others), 1))
    return children


def _shared_memory(book: _LedgerBook, system: SystemSample, names: "Dict[int, str]",
                   mapped: int) -> None:
    """Shmem that no process maps, Shmem less the processes' Pss_Shmem,
    shown as where Shmem lives (mounts, segments, the rest) less what the
    processes map of it, which the processes' line counts."""
    children = _shm_breakdown(book, system, names)
    known = sum(child.size_bytes for child in children)
    rest = book.value("Shmem") - known
    if rest < 0:
        book.notes.append(
            "The tmpfs mounts and SysV segments come to more than Shmem: statvfs counts a"
            " tmpfs's pages out on swap, which Shmem does not, and a SysV segment made with"
            " SHM_HUGETLB is in huge pages, not Shmem; /proc does not tell them apart.")
    children.append(book.add("shmem.rest", "shared anonymous, memfd and other shmem", rest,
                             ("Shmem",), estimate=True, depth=1))
    children.append(book.add("shmem.mapped", "less what processes map (in Processes)",
                             -mapped, ("Pss_Shmem",), depth=1))
    book.group("shmem", "Shared memory no process maps", children, ("Shmem", "Pss_Shmem"),
               estimate=False)


def _kernel(book: _LedgerBook, kernel: "KernelVersion") -> None:
    children = []

    def child(key: str, name: str, field: str) -> None:
        line = book.simple("kernel." + key, name, field, depth=1)
        if line is not None:
            children.append(line)

    if book.has("SReclaimable", "SUnreclaim"):
        child("slab_reclaimable", "slab, reclaimable", "SReclaimable")
        child("slab_unreclaimable", "slab, unreclaimable", "SUnreclaim")
    else:
        child("slab", "slab", "Slab")  # before 2.6.19
    if book.has("KReclaimable", "SReclaimable"):
        # KReclaimable (4.20) is SReclaimable and other kernel memory with a
        # shrinker, which no other field counts.
        children.append(book.add("kernel.other_reclaimable", "other reclaimable",
                                 book.value("KReclaimable") - book.value("SReclaimable"),
                                 ("KReclaimable", "SReclaimable"), depth=1))
    child("stacks", "kernel stacks", "KernelStack")
    child("page_tables", "page tables", "PageTables")
    child("secondary_page_tables", "secondary page tables (KVM, IOMMU)", "SecPageTables")
    child("quicklists", "page table quicklists", "Quicklists")
    child("percpu", "per-CPU", "Percpu")
    vmalloc = book.field("VmallocUsed")
    if vmalloc is not None and kernel >= (5, 3, 0):
        # Since 5.3 VmallocUsed counts the pages vmalloc allocated.  Kernel
        # stacks are vmalloc'ed too where CONFIG_VMAP_STACK (the x86_64 and
        # arm64 default), and KernelStack counts them already.
        stacks = book.value("KernelStack")
        if vmalloc >= stacks:
            children.append(book.add("kernel.vmalloc", "vmalloc (less kernel stacks)",
                                     vmalloc - stacks, ("VmallocUsed", "KernelStack"),
                                     estimate=True, depth=1))
        else:
            children.append(book.add("kernel.vmalloc", "vmalloc", vmalloc, ("VmallocUsed",),
                                     estimate=True, depth=1))
    elif vmalloc:
        book.notes.append("VmallocUsed is address space, not RAM, before Linux 5.3:"
                          " vmalloc's pages are in the remainder.")
    child("bounce", "bounce buffers", "Bounce")
    child("writeback_tmp", "FUSE writeback buffers", "WritebackTmp")
    child("hardware_corrupted", "hardware corrupted (poisoned)", "HardwareCorrupted")
    if children:
        book.group("kernel", "Kernel", children)
    missing = [name for name in ("KernelStack", "PageTables") if name not in book.meminfo]
    if not book.has("Slab") and not book.has("SReclaimable", "SUnreclaim"):
        missing.insert(0, "Slab")
    if missing:
        book.notes.append("meminfo has no %s: that kernel memory is in the remainder."
                          % ", ".join(missing))


def _huge_pages(book: _LedgerBook, mapped: int) -> None:
    """The hugetlb pool, less what the processes map of it (MAPPED bytes,
    which the processes' line counts)."""
    page = book.field("Hugepagesize")
    if page is None or not book.has("HugePages_Total", "HugePages_Free"):
        if mapped:
            book.notes.append("meminfo has no hugetlb pool: the processes' hugetlb pages"
                              " are counted twice, and the remainder is less by them.")
        return
    pages, free = book.meminfo["HugePages_Total"], book.meminfo["HugePages_Free"]
    everything = book.field("Hugetlb")  # 4.16: the pools of every page size
    if not pages and not everything and not mapped:
        return
    children = [
        book.add("huge_pages.used", "in use", (pages - free) * page,
                 ("HugePages_Total", "HugePages_Free", "Hugepagesize"), depth=1),
        book.add("huge_pages.free", "free (reserved: %d pages)"
                 % book.meminfo.get("HugePages_Rsvd", 0), free * page,
                 ("HugePages_Free", "Hugepagesize"), depth=1),
    ]
    if everything is not None and everything != pages * page:
        children.append(book.add("huge_pages.other_sizes", "pools of other page sizes",
                                 everything - pages * page,
                                 ("Hugetlb", "HugePages_Total", "Hugepagesize"), depth=1))
    if mapped:
        children.append(book.add("huge_pages.mapped", "less what processes map (in Processes)",
                                 -mapped, ("Private_Hugetlb", "Shared_Hugetlb"), depth=1))
    book.group("huge_pages", "Huge pages (hugetlb pool)%s" % (" no process maps" if mapped else ""),
               children)


def _compressed(book: _LedgerBook, zram_used_bytes: "Optional[int]") -> None:
    children = []
    if book.field("Zswap"):
        zswap = book.simple("compressed.zswap", "zswap pool", "Zswap", depth=1)
        assert zswap is not None
        children.append(zswap)
    if zram_used_bytes is not None:
        children.append(book.add("compressed.zram", "zram devices", zram_used_bytes,
                                 ("zram mm_stat",), depth=1))
    if children:
        book.group("compressed", "Compressed swap in RAM", children)


def system_ledger(scan: Scan, report: Report, system: SystemSample,
                  kernel: "KernelVersion") -> Ledger:
    """--system's ledger of one sample: SCAN and its REPORT (before any
    --top), and SYSTEM, read at the same time."""
    samples = scan.samples
    sums = process_sums(samples, scan.address_spaces, report.total_ram_kib,
                        report.total_swap_kib if report.swap_pss_seen else None)
    wanted = {segment.cpid for segment in system.segments}
    wanted.update(mount.namespace_pid for mount in system.mounts
                  if mount.namespace_pid is not None)
    names = {sample.pid: sample.program or sample.name for sample in samples
             if sample.pid in wanted}
    if system.own is not None:
        names[system.own.pid] = "ps_mem"
    return ledger(system, sums, scan.unreadable + scan.unparsable, names, kernel)


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


# --units: KiB in each unit.
_UNIT_KIB = {"B": 1 / 1024, "KiB": 1, "MiB": 1024, "GiB": 1024 * 1024}


def in_units(kib: float, unit: str) -> str:
    """KiB in UNIT, as --units prints every size: one decimal, as 3.14's
    sizes, but whole bytes."""
    if unit == "B":
        return "%.f B" % (kib * 1024)
    return "%.1f %s" % (kib / _UNIT_KIB[unit], unit)


def _size_text(options: Options) -> "Callable[[float], str]":
    unit = options.units
    if unit is None:
        return human
    return lambda kib: in_units(kib, unit)


def table_width(report: Report, options: Options, pss_seen: bool, swap_pss_seen: bool) -> int:
    """How wide the size columns must be for every size of REPORT's table
    (rows and totals): 3.14's 9 characters, or more where --units makes a
    size longer (from 1000.0 of a unit, from 10000000 bytes)."""
    size = _size_text(options)
    sizes = [report.total_ram_kib] if pss_seen else []
    if options.show_swap and swap_pss_seen:
        sizes.append(report.total_swap_kib)
    for program in report.programs:
        sizes += (program.private_kib, program.shared_kib, program.ram_kib)
        if options.show_swap:
            sizes.append(program.swap_kib)
    return max([9] + [len(size(kib)) for kib in sizes])


# The last column's title: what the rows are.  3.14's views (by program,
# -d, -s) say Program.
_ROW_TITLES = {"user": "User", "cgroup": "Cgroup", "app": "App", "mapping": "Mapping"}


def header(options: Options, width: int = 9) -> str:
    """The table's header, its titles over size columns WIDTH wide."""
    # 3.14's titles end a character short of their columns but the last.
    text = "%*s + %*s = %*s" % (width, "Private ", width, "Shared ", width, "RAM used")
    if options.show_swap:
        text += "   %*s" % (width, "Swap used")
    text += "\t" + _ROW_TITLES.get(options.group_by, "Program")
    if options.by_pid:
        text += "[pid]"
    return text + "\n\n"


def display_name(program: ProgramUsage) -> str:
    name = printable(program.name)
    if program.processes > 1:
        return "%s (%d)" % (name, program.processes)
    return name


def _sizes(program: ProgramUsage, options: Options, width: int = 9) -> str:
    """A row's sizes, as 3.14 prints them before the name (in --units' unit,
    and WIDTH wide, where asked)."""
    size = _size_text(options)
    line = "%*s + %*s = %*s" % (width, size(program.private_kib), width,
                                size(program.shared_kib), width, size(program.ram_kib))
    if options.show_swap:
        line += "   %*s" % (width, size(program.swap_kib))
    return line


def rows(report: Report, options: Options, width: int = 9) -> str:
    return "".join("%s\t%s\n" % (_sizes(program, options, width), display_name(program))
                   for program in report.programs)


def footer(options: Options, pss_seen: bool, swap_pss_seen: bool,
           report: Report, width: int = 9) -> str:
    """The totals, only where they mean something, under the RAM used (and
    Swap used) columns."""
    size = _size_text(options)
    under = " " * (2 * width + 6)
    if options.show_swap and swap_pss_seen:
        return "%s\n%s%*s%s%*s\n%s\n" % (
            "-" * (4 * width + 9), under, width, size(report.total_ram_kib), " " * 3,
            width, size(report.total_swap_kib), "=" * (4 * width + 9))
    if pss_seen:
        return "%s\n%s%*s\n%s\n" % ("-" * (3 * width + 6), under, width,
                                     size(report.total_ram_kib), "=" * (3 * width + 6))
    return ""


def only_total(options: Options, pss_seen: bool, swap_pss_seen: bool,
               report: Report) -> str:
    """-t: the total in bytes (with --units, the number in that unit), or
    nothing where it would not be meaningful."""
    kib = report.total_swap_kib if options.show_swap else report.total_ram_kib
    if not (swap_pss_seen if options.show_swap else pss_seen):
        return ""
    if options.units is None:
        return total_bytes(kib) + "\n"
    return in_units(kib, options.units).partition(" ")[0] + "\n"


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


def unicode_text(text: str) -> str:
    """TEXT as Unicode can hold it: a byte that was not UTF-8 (which
    os.fsdecode() keeps as a lone surrogate, and which json.dumps() would
    write as a lone "\\udcff" that strict parsers refuse) as U+FFFD."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def json_document(report: Report, acc: Accuracy, pss_seen: bool, swap_pss_seen: bool,
                  release: str, when: float, notes: "List[str]",
                  system: "Optional[Dict[str, Any]]" = None,
                  delta: "Optional[Delta]" = None) -> str:
    """--json: the report as one line of JSON (schema in README.md); SYSTEM:
    --system's ledger, as ledger_json() makes it; DELTA: --delta's changes."""
    import json

    document: Dict[str, Any] = {
        "ps_mem_version": VERSION,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "kernel": release,
        "programs": [{
            # The name itself: json.dumps() escapes every control, format
            # and other non-ASCII character, so nothing reaches a terminal
            # raw (the table shows printable()'s).  Bytes that are not
            # UTF-8 are U+FFFD: the document is all Unicode.
            "name": unicode_text(program.name),
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
    if system is not None:
        document["system"] = system
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


# --prometheus: the text exposition format, as node_exporter's textfile
# collector reads it (README.md lists the families).  Its rules shape the
# view.  It drops the whole file for a label value that is not UTF-8, an
# escape other than \\, \" and \n, a last line without a newline or a
# sample with a timestamp.  It serves only the first of two equal series,
# in one file or in two (logging an error at every scrape), and drops a
# family whose HELP differs from the same family's in another file.  So
# HELP texts are the same whatever the options, rows whose labels come out
# equal are summed into one series, and every series has a group_by label
# (the labels that name the rows): textfiles of two groupings, side by
# side, have no series in common.

# The label a row's key is given, per grouping (see row_labels()); a
# grouping not listed here gives its own name.
_PROMETHEUS_LABELS = {"program": "program", "pid": "program", "cmdline": "cmdline",
                      "user": "user", "cgroup": "cgroup"}

# Per row: (family, HELP).  The values are the row's, in this order.
_ROW_FAMILIES = (
    ("ps_mem_private_bytes", "Private: memory mapped only by the row's processes, in bytes."),
    ("ps_mem_shared_bytes", "Shared: the row's proportional share (PSS) of memory its"
                            " processes map with others, in bytes."),
    ("ps_mem_ram_bytes", "RAM used by the row's processes: Private + Shared."),
    ("ps_mem_swap_bytes", "Swap used by the row's processes (SwapPss where the kernel"
                          " has it), in bytes."),
    ("ps_mem_processes", "Processes in the row."),
)
_SUMMARY_HELP = {
    "ps_mem_total_ram_bytes": "RAM used by all rows.",
    "ps_mem_total_swap_bytes": "Swap used by all rows.",
    "ps_mem_accuracy": "How exact the kernel lets the measure be: 2 accurate, 1 over-estimated"
                       " per row, 0 shared memory estimated, -1 not reported.",
    "ps_mem_unreadable_processes": "Processes that could not be read (permission denied):"
                                   " their memory is in no row.",
    "ps_mem_unparsable_processes": "Processes whose files could not be parsed: their memory"
                                   " is in no row.",
    "ps_mem_scan_duration_seconds": "How long reading the processes took.",
    "ps_mem_scan_timestamp_seconds": "When the processes were read (a capture's own time),"
                                     " in Unix time.",
    "ps_mem_info": "ps_mem's version, the kernel's release and the labels of the rows.",
}


def row_labels(options: Options) -> "Tuple[str, ...]":
    """The names of the labels that name a row: its key's, and pid where
    rows are per process (-d: the key is then the name without " [PID]")."""
    if options.split_args:  # -s groups by command line, with -d too
        return ("cmdline",)
    key = _PROMETHEUS_LABELS.get(options.group_by, options.group_by)
    return (key, "pid") if options.by_pid else (key,)


def label_value(text: str) -> str:
    """TEXT as a label value: as the table shows it (printable()), a
    character that is not UTF-8 (a byte os.fsdecode() could not decode)
    as "?", and escaped as the format wants."""
    text = printable(text).encode("utf-8", "replace").decode("utf-8")
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: "Iterable[Tuple[str, str]]") -> str:
    return "{%s}" % ",".join('%s="%s"' % (name, label_value(value)) for name, value in pairs)


def _row_pairs(names: "Tuple[str, ...]", key: str, pids: "Tuple[int, ...]"
               ) -> "List[Tuple[str, str]]":
    """The labels that name a row: its key's, and with -d its pid (the key
    is then the name without its " [PID]")."""
    if len(names) == 1:
        return [(names[0], key)]
    pid = pids[0] if pids else 0
    suffix = " [%d]" % pid
    return [(names[0], key[:-len(suffix)] if key.endswith(suffix) else key), (names[1], str(pid))]


def _prometheus_rows(report: Report, options: Options
                     ) -> "List[Tuple[str, str, List[Tuple[str, str]]]]":
    """The row families: (name, HELP, [(labels, value)])."""
    names = row_labels(options)
    group_by = ("group_by", ",".join(names))
    sums: Dict[str, List[int]] = {}  # labels -> the row's values, in _ROW_FAMILIES' order
    for program in report.programs:
        labels = _labels(_row_pairs(names, program.name, program.pids) + [group_by])
        row = [in_bytes(program.private_kib), in_bytes(program.shared_kib),
               in_bytes(program.ram_kib), in_bytes(program.swap_kib), program.processes]
        kept = sums.get(labels)
        sums[labels] = row if kept is None else [a + b for a, b in zip(kept, row)]
    return [(name, help_text, [(labels, "%d" % row[index]) for labels, row in sums.items()])
            for index, (name, help_text) in enumerate(_ROW_FAMILIES)]


def _prometheus_summary(report: Report, options: Options, shown: Shown,
                        group_by_value: "Optional[str]" = None
                        ) -> "List[Tuple[str, str, List[Tuple[str, str]]]]":
    """The families of the whole sample: (name, HELP, [(labels, value)])."""
    group_by = ("group_by", group_by_value or ",".join(row_labels(options)))
    plain = _labels([group_by])
    samples = {
        "ps_mem_total_ram_bytes":
            [(plain, "%d" % in_bytes(report.total_ram_kib))] if shown.pss_seen else [],
        "ps_mem_total_swap_bytes":
            [(plain, "%d" % in_bytes(report.total_swap_kib))] if shown.swap_pss_seen else [],
        "ps_mem_accuracy": [(_labels([("measure", "ram"), group_by]), "%d" % shown.acc.ram),
                            (_labels([("measure", "swap"), group_by]), "%d" % shown.acc.swap)],
        "ps_mem_unreadable_processes": [(plain, "%d" % report.unreadable)],
        "ps_mem_unparsable_processes": [(plain, "%d" % report.unparsable)],
        "ps_mem_scan_duration_seconds": [(plain, "%.6f" % shown.seconds)],
        "ps_mem_scan_timestamp_seconds": [(plain, repr(float(shown.when)))],
        "ps_mem_info": [(_labels([("version", VERSION), ("kernel", shown.release), group_by]),
                         "1")],
    }
    return [(name, _SUMMARY_HELP[name], samples[name]) for name in _SUMMARY_HELP]


# --system's families.  The ledger's series have group_by="system", and
# so have the sample's (accuracy, scan duration, ...), with no row
# families: a textfile of the ledger beside one of a grouping then has no
# series in common with it.
_LEDGER_HELP = {
    "ps_mem_system_bytes": "A line of the ledger of RAM (--system), by its key (README.md"
                           " lists them), in bytes; the lines whose key has no dot add up to"
                           " MemTotal.",
    "ps_mem_system_beside_bytes": "A line of the ledger shown beside, adding to nothing"
                                  " (--system): swap, what processes not read map, processes"
                                  " without PSS; in bytes.",
    "ps_mem_system_memtotal_bytes": "MemTotal: the RAM the ledger accounts for, in bytes.",
}
# The detail that tells apart lines of one key: a mount's point, a
# segment's id.
_LEDGER_LABELS = {"shmem.mount": ("mount", "mount_point"), "shmem.sysv": ("shmid", "shmid")}


def _prometheus_ledger(ledger: Ledger) -> "List[Tuple[str, str, List[Tuple[str, str]]]]":
    counted: Dict[str, int] = {}
    beside: Dict[str, int] = {}
    for line in ledger.lines:
        pairs = [("line", line.key)]
        if line.key in _LEDGER_LABELS:
            label, field = _LEDGER_LABELS[line.key]
            pairs.append((label, str(dict(line.detail).get(field))))
        labels = _labels(pairs + [("group_by", "system")])
        sums = counted if line.counted else beside
        sums[labels] = sums.get(labels, 0) + line.size_bytes
    return [(name, _LEDGER_HELP[name], [(labels, "%d" % value) for labels, value in sums.items()])
            for name, sums in (("ps_mem_system_bytes", counted),
                               ("ps_mem_system_beside_bytes", beside),
                               ("ps_mem_system_memtotal_bytes",
                                {_labels([("group_by", "system")]): ledger.total_bytes}))]


# --diff's families: each of its own name, so that a textfile of a
# comparison has no series in common with one of a sample.  A new row has
# no "before" series, a gone one no "after".
_DIFF_HELP = {
    "ps_mem_diff_bytes": "A row's Private, Shared, RAM used or swap (measure) before, after, or"
                         " its change (sample), in bytes (--diff).",
    "ps_mem_diff_processes": "A row's processes before, after, or the change (sample)"
                             " (--diff).",
    "ps_mem_diff_total_bytes": "RAM used or swap (measure) of all rows before, after, or the"
                               " change (sample), in bytes (--diff).",
    "ps_mem_diff_timestamp_seconds": "When each sample (before, after) was taken, in Unix"
                                     " time (--diff).",
    "ps_mem_diff_info": "ps_mem's version, each sample's kernel release and the labels of"
                        " the rows (--diff).",
}
_DIFF_MEASURES = ("private", "shared", "ram", "swap")


def prometheus_diff(comparison: Comparison, options: Options, shown: Shown,
                    before_when: float, before_release: str) -> str:
    """--diff --prometheus: the comparison in the text exposition format."""
    names = row_labels(options)
    group_by = ("group_by", ",".join(names))
    values: Dict[str, int] = {}  # labels -> bytes, summed where shown names are equal
    counts: Dict[str, int] = {}

    def add(table: "Dict[str, int]", pairs: "List[Tuple[str, str]]", value: int) -> None:
        labels = _labels(pairs)
        table[labels] = table.get(labels, 0) + value

    for change in comparison.changes:
        sides = [(side, row) for side, row in (("before", change.before), ("after", change.after))
                 if row is not None]
        key = _row_pairs(names, change.name, sides[-1][1].pids) + [group_by]
        sizes = {}
        for side, row in sides:
            sizes[side] = [in_bytes(kib) for kib in (row.private_kib, row.shared_kib,
                                                       row.ram_kib, row.swap_kib)]
            add(counts, key + [("sample", side)], row.processes)
        old = sizes.get("before", [0] * 4)
        new = sizes.get("after", [0] * 4)
        sizes["change"] = [b - a for a, b in zip(old, new)]
        add(counts, key + [("sample", "change")], change.processes)
        for side in ("before", "after", "change"):
            for measure, value in zip(_DIFF_MEASURES, sizes.get(side, ())):
                add(values, key + [("measure", measure), ("sample", side)], value)
    totals: Dict[str, int] = {}
    for measure, seen, before, after in (
            ("ram", comparison.pss_seen, comparison.before_ram_kib, comparison.after_ram_kib),
            ("swap", comparison.swap_pss_seen, comparison.before_swap_kib,
             comparison.after_swap_kib)):
        if seen:
            then, now = in_bytes(before), in_bytes(after)
            for side, value in (("before", then), ("after", now), ("change", now - then)):
                add(totals, [group_by, ("measure", measure), ("sample", side)], value)
    plain = [group_by]
    families = [
        ("ps_mem_diff_bytes", list(values.items())),
        ("ps_mem_diff_processes", list(counts.items())),
        ("ps_mem_diff_total_bytes", list(totals.items())),
        ("ps_mem_diff_timestamp_seconds",
         [(_labels(plain + [("sample", "before")]), int(before_when)),
          (_labels(plain + [("sample", "after")]), int(shown.when))]),
        ("ps_mem_diff_info", [(_labels([("version", VERSION), ("kernel", shown.release),
                                         ("before_kernel", before_release), group_by]), 1)]),
    ]
    return _exposition([(name, _DIFF_HELP[name], [(labels, "%d" % value)
                                                  for labels, value in samples])
                        for name, samples in families])


def _exposition(families: "List[Tuple[str, str, List[Tuple[str, str]]]]") -> str:
    """FAMILIES, each a gauge; one without samples is left out."""
    lines = []
    for name, help_text, samples in families:
        if samples:
            lines.append("# HELP %s %s\n# TYPE %s gauge\n" % (name, help_text, name))
            lines.extend("%s%s %s\n" % (name, labels, value) for labels, value in samples)
    return "".join(lines)


def prometheus_document(report: Report, options: Options, shown: Shown) -> str:
    """--prometheus: one sample in the text exposition format: the rows'
    families and the sample's, or with --system the ledger's and the
    sample's.  (--diff's: prometheus_diff().)"""
    if shown.ledger is not None:
        return _exposition(_prometheus_ledger(shown.ledger)
                           + _prometheus_summary(report, options, shown, "system"))
    return _exposition(_prometheus_rows(report, options) + _prometheus_summary(report, options,
                                                                                shown))


def exit_status(acc: Accuracy, options: Options) -> int:
    """-t fails when the number it printed (or did not) is not a true total."""
    if options.only_total:
        return 0 if (acc.swap if options.show_swap else acc.ram) == 2 else 1
    return 0


def ledger_table(result: Ledger, options: Options) -> str:
    """--system: a size column as the default table's (in --units' unit),
    "~" after an estimate, names indented by depth (a SysV segment's with
    its size where not all of it is resident), lines that add to nothing in
    parentheses, sub-lines of 0 bytes left out (not of --json), MemTotal
    under a rule, then the notes.  --no-header: the lines only (the notes
    go to stderr, see run())."""
    size_text = _size_text(options)

    def sized(size_bytes: int) -> str:
        kib = size_bytes / 1024
        if kib >= 0:
            return size_text(kib)
        text = size_text(-kib)
        # Less than the unit shows: no sign on a zero ("-0.0 GiB").
        return text if not text.strip("0. BKMGi") else "-" + text

    lines = []
    for line in result.lines:
        if line.depth and line.counted and not line.size_bytes:
            continue  # a table of zeros would hide what matters
        size = sized(line.size_bytes)
        if not line.counted:
            size = "(%s)" % size
        name = line.name
        detail = dict(line.detail)
        if detail.get("rss") is not None and detail["rss"] < detail["size"]:
            # A segment partly resident (a whole one is a page or more).
            name += " of %s" % size_text(detail["size"] / 1024)
        lines.append((size, "~" if line.estimate else " ", "  " * line.depth + name))
    total = sized(result.total_bytes)
    width = max([11, len(total)] + [len(size) for size, _, _ in lines])
    out = [] if options.no_header else [" " * (width - 11) + " RAM used    Where\n\n"]
    out.extend("%*s %s %s\n" % (width, size, mark, name) for size, mark, name in lines)
    if not options.no_header:
        out.append("%s\n%*s   MemTotal\n%s\n" % ("-" * (width + 22), width, total,
                                                  "=" * (width + 22)))
        out.extend("Note: %s\n" % note for note in result.notes)
    return "".join(out)


def ledger_json(result: Ledger) -> "Dict[str, Any]":
    """--json --system: each line with its bytes and the fields behind it."""
    return {
        "total": result.total_bytes,
        "lines": [{"key": line.key, "name": unicode_text(line.name), "bytes": line.size_bytes,
                   "fields": list(line.fields), "estimate": line.estimate,
                   "depth": line.depth, "counted": line.counted,
                   "detail": {key: unicode_text(value) if isinstance(value, str) else value
                              for key, value in line.detail}}
                  for line in result.lines],
        "notes": list(result.notes),
    }


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
    text += _DELTA_COLUMN % "Delta" + "\t" + _ROW_TITLES.get(options.group_by, "Program")
    if options.by_pid:
        text += "[pid]"
    return text + "\n\n"


def delta_rows(report: Report, options: Options, delta: Delta) -> str:
    """The rows, each with its change of RAM used since the first sample,
    or "new" where it was not in it."""
    return "".join("%s%s\t%s\n" % (
        _sizes(program, options),
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
    text += "\t" + _ROW_TITLES.get(options.group_by, "Program")
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
    if options.prometheus:
        return prometheus_diff(comparison, options, shown, before_when, before_release)
    if options.json:
        return diff_json(comparison, shown, before_when, before_release)
    if options.only_total:
        return diff_total(options, comparison)
    return diff_header(options) + diff_rows(comparison, options) + diff_footer(options,
                                                                             comparison)


def render(report: Report, options: Options, shown: Shown) -> str:
    """One sample as the options ask to show it: the text to write.  Each
    view is a function of its own; the table's header is header()'s,
    written once before the first sample (see opening()), or with the rows
    where SHOWN says (--units)."""
    if options.prometheus:
        return prometheus_document(report, options, shown)
    if options.system and shown.ledger is not None:
        if options.json:
            return json_document(report, shown.acc, shown.pss_seen, shown.swap_pss_seen,
                                 shown.release, shown.when, shown.notes,
                                 ledger_json(shown.ledger))
        return ledger_table(shown.ledger, options)
    if options.json:
        return json_document(report, shown.acc, shown.pss_seen, shown.swap_pss_seen,
                             shown.release, shown.when, shown.notes, delta=shown.delta)
    if shown.delta is not None:
        if options.only_total:
            return delta_total(options, shown.pss_seen, shown.swap_pss_seen, shown.delta)
        return (delta_rows(report, options, shown.delta)
                + delta_footer(options, shown.pss_seen, shown.swap_pss_seen, report,
                               shown.delta))
    if options.only_total:
        return only_total(options, shown.pss_seen, shown.swap_pss_seen, report)
    if options.no_header:
        return rows(report, options, shown.width)
    return ((header(options, shown.width) if shown.header else "")
            + rows(report, options, shown.width)
            + footer(options, shown.pss_seen, shown.swap_pss_seen, report, shown.width))


def tabled(options: Options) -> bool:
    """Whether the options ask for the table (not JSON, not only -t, not
    the ledger, not Prometheus)."""
    return not (options.only_total or options.json or options.system or options.prometheus)


def opening(options: Options) -> str:
    """What is written once, before the first sample: the table's header,
    where its columns are 3.14's (with --units they are as wide as the
    sizes: the header comes with the first sample's rows).  --diff writes
    its header with its rows (render_diff())."""
    if (not tabled(options) or options.no_header or options.units is not None
            or options.diff is not None):
        return ""
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
    import stat

    directory, name = os.path.split(path)
    if not name:
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    try:
        # Followed, to see what is there: a device, a FIFO or a directory
        # (or a link to one: /dev/stdout) would be replaced by a plain file
        # for every user of the name (--output /dev/null).  A link is never
        # written through.
        kind = os.stat(path).st_mode
    except OSError:
        kind = None  # nothing there, or a link to nothing: it is replaced
    if kind is not None and stat.S_ISDIR(kind):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if kind is not None and not stat.S_ISREG(kind):
        raise OSError(errno.EEXIST, "it is not a regular file", path)
    # The temporary name is at most 215 bytes, whatever the characters of
    # NAME (a file name may have 255).
    prefix = os.fsdecode(os.fsencode(name)[:200])

    def terminated(number: int, _frame: object) -> None:
        raise Terminated(number)

    handlers = {number: signal.signal(number, terminated)
                for number in (signal.SIGTERM, signal.SIGHUP)}
    temp = None
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _attempt in range(100):
            candidate = os.path.join(directory, ".%s.%s~" % (prefix, os.urandom(6).hex()))
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


# --output: a new file is readable by all, because node_exporter reads its
# textfiles as a user of its own; an existing file keeps its permissions,
# so that one made private (chmod 600: command lines with -s) stays so.
_NEW_OUTPUT_MODE = 0o644


def output_mode(path: str) -> int:
    """The permissions --output gives PATH: those of the regular file there
    if this user owns it (lstat: a link planted at PATH lends nothing, and
    is replaced, never followed; nor does a file another user planted, in
    /tmp say, whose mode would let them rewrite what root writes), else
    _NEW_OUTPUT_MODE.  Never set-id or sticky bits."""
    import stat

    try:
        status = os.lstat(path)
    except OSError:
        return _NEW_OUTPUT_MODE
    if not stat.S_ISREG(status.st_mode) or status.st_uid != os.geteuid():
        return _NEW_OUTPUT_MODE
    return stat.S_IMODE(status.st_mode) & 0o777


def write_all(file: "IO[bytes]", data: bytes) -> None:
    """All of DATA to FILE, or the error that stopped it.  A buffered
    file's write() can take less than it is given and raise nothing (CPython
    does so on a pipe whose reader leaves mid-write: `ps_mem -s | head -1`),
    so the rest is written again, and that write raises the error."""
    view = memoryview(data)
    while view:
        written = file.write(view)
        if not written:  # None: a non-blocking stdout that is full
            raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        view = view[written:]


def write_output(path: str, text: str) -> int:
    """--output: TEXT, in UTF-8, replaces PATH whole (write_atomically())."""
    data = text.encode("utf-8", "replace")

    def write(file: "IO[bytes]") -> None:
        write_all(file, data)

    return write_atomically(path, write, output_mode(path))


# ----------------------------------------------------------------------------
# 8. Command line
# ----------------------------------------------------------------------------

# Long options as 3.14 has them.  An abbreviation that matches any of these
# means what it meant in 3.14 (`--t` is --total, `--s` is ambiguous between
# --split-args and --swap), whatever newer options share its prefix.
_LEGACY_LONG = ("--help", "--version", "--split-args", "--total",
                "--discriminate-by-pid", "--swap")
_GROUPINGS = ("program", "pid", "cmdline", "user", "cgroup", "app", "mapping")
_UNITS = ("B", "KiB", "MiB", "GiB")
# The values an option takes, as argparse checks them (see build_parser()).
_CHOICES = {"group_by": _GROUPINGS, "sort": tuple(sorted(_SORT_KEYS)), "units": _UNITS}


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
            # must not break the message into lines of its choosing.  Where
            # argparse quotes a value by repr(), a byte that was not UTF-8
            # shows as \udcff: it is \xff, as escaped() shows it.
            import re

            message = re.sub(r"(?<!\\)\\udc([89a-f][0-9a-f])", r"\\x\1", message)
            super().error(escaped(message))

        def _print_message(self, message: str, file: "Any" = None) -> None:
            # argparse drops a failed write; --help or --version that did
            # not reach stdout says so, as a report does (None: stdout was
            # closed when Python started).
            if file is None or file is sys.stdout:
                _Output(sys.stdout).write(message)
            else:
                super()._print_message(message, file)

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
                            " user, cgroup, app (what an interpreter runs) or mapping (what is"
                            " mapped: each file, [heap], [anon], ...; reads full smaps)")
    shown.add_argument("--sort", choices=_CHOICES["sort"], default="ram", metavar="KEY",
                       help="order rows by ram (the default), private, shared, swap,"
                            " count or name")
    shown.add_argument("--reverse", action="store_true", help="largest first")
    shown.add_argument("--top", metavar="N", type=_int_value,
                       help="only the N rows with the largest sort key; totals cover them")
    shown.add_argument("--show-cmdline", dest="split_args", action="store_true",
                       help="the same as -s")
    shown.add_argument("--system", action="store_true",
                       help="instead of the programs, a ledger of all of the machine's RAM"
                            " (MemTotal): processes, shared memory and page cache no"
                            " process maps, kernel, huge pages, free")
    shown.add_argument("--diff", metavar="BEFORE",
                       help="compare with BEFORE, a file made by --capture: each row's change"
                            " from then to now (or to --procfs AFTER)")
    shown.add_argument("--delta", action="store_true",
                       help="with -w: each row's change of RAM used since the first sample")
    printed = parser.add_argument_group("how to print it (since 3.14)")
    printed.add_argument("--json", action="store_true",
                         help="one JSON document instead of the table (JSON Lines with -w)")
    printed.add_argument("--units", choices=_UNITS, metavar="UNIT",
                         help="every size in UNIT: B, KiB, MiB or GiB (-t too; JSON is bytes)")
    printed.add_argument("--no-header", action="store_true",
                         help="rows only: no header, no total")
    printed.add_argument("--prometheus", action="store_true",
                         help="Prometheus' text exposition format instead of the table,"
                              " for node_exporter's textfile collector")
    printed.add_argument("--output", metavar="FILE",
                         help="write to FILE instead of stdout, replacing it whole and"
                              " atomically (at each sample with -w)")
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

# What plain_options() reads as argparse does, each option spelt whole:
# flags, by the name argparse stores them under ...
_PLAIN_FLAGS = {"-s": "split_args", "-t": "only_total", "-d": "discriminate_by_pid",
                "-S": "show_swap", "--show-cmdline": "split_args", "--json": "json",
                "--reverse": "reverse", "--system": "system", "--delta": "delta",
                "--no-header": "no_header", "--prometheus": "prometheus"}
# ... and options that take a value, as "--option VALUE" or "--option=VALUE".
_PLAIN_VALUES = {"--group-by": "group_by", "--sort": "sort", "--units": "units", "--top": "top",
                 "--procfs": "procfs", "--capture": "capture", "--output": "output",
                 "--diff": "diff"}
# What argparse stores for an option not given (see build_parser()).
_ARGUMENT_DEFAULTS: "Dict[str, Any]" = {
    "split_args": False, "only_total": False, "discriminate_by_pid": False, "show_swap": False,
    "pids": None, "watch": None, "group_by": "program", "sort": "ram", "reverse": False,
    "top": None, "system": False, "diff": None, "delta": False, "json": False, "units": None,
    "no_header": False, "prometheus": False, "output": None, "procfs": None, "capture": None}


class _UsageError(Exception):
    """What is wrong with arguments that each read well (see options_from())."""


def _plain_digits(text: str, longest: int = 10) -> bool:
    # Plain ASCII digits: int() may read more ("+1", " 1", "١"), which is
    # left to argparse.
    return bool(text) and len(text) <= longest and not text.strip("0123456789")


def plain_options(argv: "List[str]") -> "Optional[Options]":
    """The options of ARGV read without argparse, where each argument is an
    option spelt whole (3.14's flags, -p and -w with a plain number as the
    next argument, the long options of _PLAIN_FLAGS and _PLAIN_VALUES) and
    argparse would read it the same; None for anything else.

    Not importing argparse (and the modules it loads) keeps a run with them
    as small and quick as a run without arguments.  argparse still reads
    everything else, and answers help, usage and every error (options_from()
    finds the same errors for both).
    """
    from_argv: Dict[str, Any] = {}
    position = 0
    while position < len(argv):
        arg = argv[position]
        name, equals, value = arg.partition("=")
        if arg in _PLAIN_FLAGS:
            from_argv[_PLAIN_FLAGS[arg]] = True
        elif arg in ("-p", "-w") and position + 1 < len(argv):
            position += 1
            value = argv[position]
            if not all(_plain_digits(number)
                       for number in (value.split(",") if arg == "-p" else [value])):
                return None
            if arg == "-w":
                from_argv["watch"] = int(value)
            else:
                from_argv["pids"] = value
        elif name in _PLAIN_VALUES:
            if not equals:
                position += 1
                if position == len(argv) or argv[position].startswith("-"):
                    return None  # no value, or one argparse takes for an option
                value = argv[position]
            dest = _PLAIN_VALUES[name]
            if dest == "top":
                if not _plain_digits(value):
                    return None
                from_argv[dest] = int(value)
            elif dest in _CHOICES and value not in _CHOICES[dest]:
                return None
            else:
                from_argv[dest] = value
        else:
            return None
        position += 1
    try:
        return options_from(from_argv)
    except _UsageError:
        return None  # for argparse to say so


def parse_options(argv: "List[str]") -> Options:
    options = plain_options(argv)
    if options is None:
        options = parse_options_with_argparse(argv)
    return options


def parse_options_with_argparse(argv: "List[str]") -> Options:
    """Any arguments' options; help, usage and errors as 3.14 prints them."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return options_from(vars(args))
    except _UsageError as error:
        parser.error(str(error))


def _same_path(one: str, other: str) -> bool:
    """Whether two names are of one file: the same name, or (where both
    exist) the same file through a link, hard or symbolic."""
    try:
        if os.path.samefile(one, other):
            return True
    except (OSError, ValueError):
        pass  # one does not exist (yet): its name alone tells
    try:
        return os.path.abspath(one) == os.path.abspath(other)
    except OSError:  # the working directory is gone: relative names stay so
        return os.path.normpath(one) == os.path.normpath(other)


def options_from(given: "Dict[str, Any]") -> Options:
    """Options from what the arguments gave, by the names argparse stores
    them under (-p's pids as their text); _UsageError for the first thing
    wrong with them: a value out of its range, or options that cannot be
    combined."""
    args = dict(_ARGUMENT_DEFAULTS)
    args.update(given)
    pids: Tuple[int, ...] = ()
    if args["pids"]:
        try:
            if any(len(pid.strip()) > _MAX_PID_DIGITS for pid in args["pids"].split(",")):
                raise ValueError("too long")
            pids = tuple(int(pid) for pid in args["pids"].split(","))
        except ValueError:
            raise _UsageError("Invalid PID(s): %s" % args["pids"]) from None
    watch, top = args["watch"], args["top"]
    if watch is not None and watch <= 0:
        raise _UsageError("Seconds must be positive! (%s)" % watch)
    if watch is not None and watch > _MAX_WATCH:
        raise _UsageError("Seconds must be at most %d! (%s)" % (_MAX_WATCH, watch))
    for option in ("procfs", "capture", "output", "diff"):
        if args[option] == "":
            raise _UsageError("argument --%s: the file name is empty" % option)
    if args["prometheus"] and (args["json"] or args["only_total"]):
        raise _UsageError("--prometheus cannot be combined with %s"
                          % ("--json" if args["json"] else "-t"))
    for written, read_ in (("output", "procfs"), ("output", "capture"), ("output", "diff"),
                           ("capture", "procfs"), ("capture", "diff")):
        if args[written] and args[read_] and _same_path(args[read_], args[written]):
            raise _UsageError("--%s would replace the --%s file" % (written, read_))
    if top is not None and top <= 0:
        raise _UsageError("argument --top: must be a positive number of rows (%s)" % top)
    group_by = args["group_by"]
    if group_by in ("user", "cgroup", "app") and args["split_args"]:
        raise _UsageError("--group-by %s cannot be combined with -s" % group_by)
    if group_by == "mapping" and (args["split_args"] or args["discriminate_by_pid"]):
        raise _UsageError("--group-by mapping cannot be combined with %s"
                          % ("-s" if args["split_args"] else "-d"))
    if args["capture"] is not None and watch is not None:
        raise _UsageError("--capture takes one sample; it cannot be combined with -w")
    if args["system"]:
        # The ledger is of the whole machine, its processes line the whole
        # report's total: options that leave processes out of it would make
        # it add up to something else.
        for given_, option in ((args["pids"], "-p"), (args["only_total"], "-t"),
                               (top is not None, "--top")):
            if given_:
                raise _UsageError("--system accounts for every process; it cannot be"
                                  " combined with %s" % option)
        if group_by == "mapping":
            # The mapping rows are read from smaps, whose mappings do not
            # split PSS into anonymous, file and shmem as smaps_rollup does.
            raise _UsageError("--system cannot be combined with --group-by mapping: the"
                              " ledger reads smaps_rollup, the mapping rows smaps")
    if args["diff"] is not None and watch is not None:
        raise _UsageError("--diff compares two samples; it cannot be combined with -w"
                          " (see --delta)")
    if args["delta"] and watch is None:
        raise _UsageError("--delta needs -w: it shows the change since the watch's first sample")
    # Views that show a change have a layout of their own: other views, and
    # the options that shape the table, do not apply to them.
    for changes, name in ((args["diff"] is not None, "--diff"), (args["delta"], "--delta")):
        for given_, option in ((args["prometheus"] and name == "--delta", "--prometheus"),
                               (args["system"], "--system"),
                               (args["units"] is not None, "--units"),
                               (args["no_header"] and name == "--diff", "--no-header")):
            if changes and given_:
                raise _UsageError("%s cannot be combined with %s" % (name, option))
    return Options(
        split_args=args["split_args"] or group_by == "cmdline",
        only_total=args["only_total"],
        by_pid=args["discriminate_by_pid"] or group_by == "pid",
        show_swap=args["show_swap"],
        pids=pids,
        watch=watch,
        procfs=args["procfs"],
        json=args["json"],
        sort=args["sort"],
        reverse=args["reverse"],
        top=top,
        group_by=group_by,
        capture=args["capture"],
        system=args["system"],
        units=args["units"],
        no_header=args["no_header"],
        prometheus=args["prometheus"],
        output=args["output"],
        diff=args["diff"],
        delta=args["delta"],
    )


# A shell's status for a process that died by SIGINT, SIGTERM or SIGHUP
# (2, 15 and 1 on every Linux).
EXIT_SIGINT, EXIT_SIGTERM, EXIT_SIGHUP = 128 + 2, 128 + 15, 128 + 1


class _Output:
    """stdout as 3.14 writes it: every piece flushed at once, so that a
    watching reader sees each sample as it is made.  A character the
    stream's encoding lacks becomes "?" instead of an error."""

    def __init__(self, stream: "Optional[IO[str]]") -> None:
        self.stream = stream  # None: Python was started with stdout closed
        self.binary: Optional[IO[bytes]] = getattr(stream, "buffer", None)
        self.encoding = getattr(stream, "encoding", None) or "utf-8"

    def write(self, text: str) -> None:
        if not text:
            return
        try:
            if self.stream is None:
                raise OSError(errno.EBADF, os.strerror(errno.EBADF))
            if self.binary is None:
                self.stream.write(text)
                self.stream.flush()
            else:
                self.stream.flush()
                write_all(self.binary, text.encode(self.encoding, "replace"))
                self.binary.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise WriteFailed(error) from None

    def flush(self) -> None:
        try:
            if self.stream is not None:
                self.stream.flush()
            if self.binary is not None:
                self.binary.flush()
        except BrokenPipeError:
            raise
        except OSError as error:
            raise WriteFailed(error) from None


class WriteFailed(Exception):
    """stdout took no more output, for a reason other than its reader's
    going away: a full disk, an I/O error, a closed descriptor."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error)
        self.reason = error.strerror or str(error)


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


def _without_full_smaps(procfs: ProcFS, name: str, err: "IO[str]") -> bool:
    """Whether PROCFS is a capture made without --group-by mapping, which
    that view cannot read (said on ERR, as of file NAME)."""
    if isinstance(procfs, Snapshot) and not procfs.manifest.full_smaps:
        err.write("ps_mem: --group-by mapping cannot read %s: it holds no full smaps "
                  "(it was captured without --group-by mapping)\n" % escaped(name))
        return True
    return False


def _cannot_write(path: str, error: OSError, err: "IO[str]") -> int:
    """A file the run was to write (--output, --capture) could not be: one
    line, and the status to end with."""
    err.write("ps_mem: cannot write %s: %s\n" % (escaped(path), error.strerror or error))
    return 2


def run_diff(options: Options, before: Before, after: ProcFS, kernel: "KernelVersion",
             release: str, self_pid: "Optional[int]", out: _Output, err: "IO[str]") -> int:
    """--diff: BEFORE and AFTER read with the same options, their rows
    compared (see compare()), the comparison written, then the warnings."""
    started = time.monotonic()
    snapshot = before.snapshot
    before_release = snapshot.read_global("sys/kernel/osrelease")
    before_kernel = kernel_version(before_release)
    probe_swap = options.show_swap or options.json or options.prometheus
    after_acc = accuracy(after, kernel, self_pid, probe_swap)
    before_acc = accuracy(snapshot, before_kernel, snapshot.self_pid(), probe_swap)
    # What one side cannot tell, the comparison cannot.
    acc = Accuracy(min(after_acc.ram, before_acc.ram), min(after_acc.swap, before_acc.swap))
    per_process = identifies_processes(options)
    by_mapping = options.group_by == "mapping"
    if by_mapping and _without_full_smaps(snapshot, options.diff or "", err):
        return 2
    sides = []
    for procfs, side_kernel, side_self in ((snapshot, before_kernel, snapshot.self_pid()),
                                           (after, kernel, self_pid)):
        scan = collect(procfs, options, side_kernel, side_self)
        report = (aggregate_mappings if by_mapping else aggregate)(
            scan.samples, scan.unreadable, scan.address_spaces, scan.unparsable)
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
    text = render_diff(comparison, options, shown, snapshot.time(),
                       before_release.decode("utf-8", "replace").strip())
    if options.output is None:
        out.write(text)
        out.flush()
    else:
        try:
            write_output(options.output, text)
        except OSError as error:
            return _cannot_write(options.output, error, err)
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
    by_mapping = options.group_by == "mapping"
    if by_mapping and _without_full_smaps(procfs, str(options.procfs), err):
        return 2
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
    if by_mapping and self_pid is not None and not procfs.exists(self_pid, "smaps"):
        err.write("ps_mem: --group-by mapping reads /proc/PID/smaps, which %s does not have\n"
                  % escaped(procfs.path("")))
        return 2
    before = None
    if options.diff is not None:
        before = open_before(options.diff, procfs, err)
        if before is None:
            return 2
    if options.capture is not None:
        procfs = capture(procfs, self_pid, full_smaps=by_mapping)
        try:
            write_capture(procfs, options.capture)
        except OSError as error:
            return _cannot_write(options.capture, error, err)
    if before is not None:
        return run_diff(options, before, procfs, kernel, release_text, self_pid, out, err)

    opened = opening(options)
    if options.output is None:  # else each sample's file has its own
        out.write(opened)
    # The size columns' width, and the width of those the header written
    # is over (0: none written yet).  With --units a watch's columns widen
    # to its widest size so far, and never narrow again.
    width = 9
    headed = width if opened else 0
    # Judged once.  Swap's is worth the probe only where it is shown: with
    # -S, and in the views that tell it whatever -S says (JSON, Prometheus).
    acc = accuracy(procfs, kernel, self_pid,
                   options.show_swap or options.json or options.prometheus)
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
            report: Optional[Report] = (aggregate_mappings if by_mapping else aggregate)(
                scan.samples, scan.unreadable, scan.address_spaces, scan.unparsable)
            assert report is not None
            ledger_of: Optional[Ledger] = None
            if options.system:
                try:
                    system = read_system(procfs, kernel, self_pid, scan.samples)
                    ledger_of = system_ledger(scan, report, system, kernel)
                except (OSError, NoLedger) as error:
                    err.write("ps_mem: --system: cannot read %s: %s\n" % (
                        escaped(procfs.path("meminfo")),
                        getattr(error, "strerror", None) or error))
                    return 2
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
            # The samples are not needed past here: let them go before the
            # sample's text is made.
            scan = None
            if options.units is not None and tabled(options):
                width = max(width, table_width(report, options, pss_seen, swap_pss_seen))
            header_now = tabled(options) and not options.no_header and width != headed
            if header_now:
                headed = width
            shown = Shown(acc, pss_seen, swap_pss_seen, release_text, procfs.time(),
                          warnings(acc, options, unreadable, unparsable, hidden), seconds,
                          ledger=ledger_of, width=width,
                          # A file holds one whole sample: its header too.
                          header=header_now or (options.output is not None and not opened
                                                and headed > 0),
                          delta=delta)
            text = render(report, options, shown)
            if ledger_of is not None and (options.no_header or options.prometheus):
                # The views without the ledger's notes keep them, on stderr.
                err.write("".join("Note: %s\n" % note for note in ledger_of.notes))
            gone = options.watch is not None and not report.programs
            # Not a row: --no-header's output is rows only.
            if gone and not (options.json or options.prometheus or options.no_header):
                text += "Process does not exist anymore.\n"
            if options.output is None:
                out.write(text)
            else:
                # The whole sample, header included: FILE is replaced by
                # each, and a reader of FILE sees one sample.
                try:
                    write_output(options.output, opened + text)
                except OSError as error:
                    return _cannot_write(options.output, error, err)
            if options.watch is None or gone:
                break
            # Let this sample go before the next is taken: kept, it would
            # double a watch's memory at its peak.
            report = None
            ledger_of = None
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
    if sys.stderr is None:
        # Started with stderr closed: its messages go nowhere, for the run.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (open until exit)
    try:
        options = parse_options(argv)
        return run(options, _Output(sys.stdout), sys.stderr)
    except RootUnreadable as unreadable:
        sys.stderr.write("ps_mem: cannot read %s: %s\n"
                         % (escaped(unreadable.path), unreadable.reason))
        return 2
    except SystemExit as done:  # argparse: --help, --version, usage errors
        return done.code if isinstance(done.code, int) else 1
    except BrokenPipeError:
        # The reader went away (ps_mem | head): stop quietly, as 3.14 does.
        _silence_stdout()
        return 1
    except WriteFailed as failed:
        # As coreutils says it (ls >/dev/full): the output is not all there.
        return _write_failed(failed.reason)
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except Terminated as terminated:
        return 128 + terminated.signal_number


def _write_failed(reason: str) -> int:
    _silence_stdout()
    if sys.stderr is not None:
        try:
            sys.stderr.write("ps_mem: write error: %s\n" % reason)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return 2  # as for any file that cannot be written (--output)


def _entry_point() -> None:
    status = main()
    # Nothing should be left in a buffer (_Output flushes each write, and
    # main() has said what failed), but os._exit() below would drop it.
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    if status in (EXIT_SIGINT, EXIT_SIGTERM, EXIT_SIGHUP):
        import signal  # only now: most runs never need it

        # Die by the signal that ended the run, as its sender expects.
        signal.signal(status - 128, signal.SIG_DFL)
        os.kill(os.getpid(), status - 128)
    # Everything is written and every child reaped: tearing down the
    # interpreter's objects would only cost time.
    os._exit(status)


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
    """A forked child, named NAME, that runs LIFE(questions, answers): it
    reads the parent's messages from QUESTIONS (-1 without ASKS) and sends
    its own to ANSWERS, then ends with os._exit(); it never returns into
    the parent's code, nor flushes the parent's buffered output.

    end() is the one place where a child ends, whichever way its life
    went: it is done, it died, it sent garbage, or the parent was
    interrupted while talking to it.
    """

    def __init__(self, life: "Callable[[int, int], None]", name: bytes,
                 asks: bool = False) -> None:
        parent = os.getpid()
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
            _child_life(life, questions[0], answers[1], (answers[0], questions[1]), parent,
                        name)
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
                parent_ends: "Tuple[int, int]", parent: int, name: bytes) -> "NoReturn":
    """A forked child's whole life (see _Child); never returns.

    Ctrl-C reaches the whole process group: here it raises
    KeyboardInterrupt, which ends the child quietly, and the parent says
    so.  A parent that is gone, killed even, takes the child with it (see
    _die_with()).
    """
    status = 1
    try:
        _die_with(parent, name)
        for fd in _PARENT_ENDS.union(parent_ends):
            if fd >= 0:
                os.close(fd)
        _PARENT_ENDS.clear()
        life(questions, answers)
        status = 0
    finally:
        os._exit(status)


_PR_SET_NAME, _PR_SET_PDEATHSIG = 15, 1
_SIGKILL = 9  # on every Linux


def _die_with(parent: int, name: bytes) -> None:
    """Have the kernel kill this child the moment PARENT is gone, wherever
    the child is: a read of /proc can wait long on a busy process's memory
    lock, and the child would otherwise learn of it only at its next read
    or write of a pipe.  (Where prctl cannot be had, that is still how it
    ends.)  A parent gone before this is seen at once.  Then the child
    takes NAME, so that ps shows what it is (and a test, that it is past
    this)."""
    try:
        prctl = _libc_function("prctl")
        prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)
        prctl(_PR_SET_NAME, name, 0, 0, 0)
    except (ImportError, OSError, AttributeError, TypeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def _libc_function(name: str) -> "Callable[..., int]":
    """The C library's function NAME, taking and returning C ints (or
    bytes for pointers), made with _ctypes, the C module of ctypes: a forked
    reader needs one call, and importing ctypes itself would cost it more
    than the call.  Where _ctypes is not as ctypes uses it, from ctypes."""
    try:
        import _ctypes

        class Int(_ctypes._SimpleCData):  # ctypes.c_int
            _type_ = "i"

        class Function(_ctypes.CFuncPtr):  # what ctypes.CDLL makes
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = Int

        class Library:  # what CFuncPtr asks of a library: its handle
            # None: the program itself, as dlopen(3) takes NULL.
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]

        # The stubs want a CDLL; CFuncPtr reads only its _handle.
        return Function((name, Library))  # type: ignore[arg-type]
    except (ImportError, AttributeError, TypeError, OSError):
        import ctypes

        function: Callable[..., int] = getattr(ctypes.CDLL(None, use_errno=True), name)
        return function


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
        # The children's samples take this process's copy of each name.
        namer = Namer(procfs, options)
        inbox = _ChunkInbox(children, scans, namer.one_copy, seen)
        for index, scan in _read_chunks(procfs, options, kernel, chunks, tokens, namer):
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
            taken = _scan(procfs, options, kernel, chunk, namer)
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
                 chunks: "List[List[int]]", tokens: int,
                 namer: "Optional[Namer]" = None) -> "Iterator[Tuple[int, Scan]]":
    """(index, scan) of each chunk whose number this reader takes from the
    TOKENS pipe, as it is read."""
    if namer is None:
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

        self._child = _Child(life, b"ps_mem reader")

    def fileno(self) -> int:
        return self._child.fileno()

    def next_chunk(self, one_copy: "Callable[[str], str]") -> "Optional[Tuple[int, Scan]]":
        """The next chunk it read; None once it has read all it will;
        ChildFailed, the child ended, if it sends what is not a chunk.

        Each message brings its own copy of each name in it: ONE_COPY gives
        the one kept for the whole scan (see Namer.one_copy())."""
        item = self._child.receive()
        if item is None:
            return None
        try:
            if not isinstance(item, tuple):
                raise TypeError("not a chunk: %r" % type(item))
            index, records, unreadable, unparsable = item
            for position, record in enumerate(records):  # in place: less memory
                pid, name, *rest = record
                records[position] = ProcessSample(pid, one_copy(name), *rest)
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
                 one_copy: "Callable[[str], str]",
                 seen: "Optional[Callable[[List[ProcessSample]], None]]" = None) -> None:
        import select

        self._scans = scans
        self._one_copy = one_copy
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
                    chunk = child.next_chunk(self._one_copy)
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
                self._child = _Child(_serve_kcmp, b"ps_mem kcmp", asks=True)
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
