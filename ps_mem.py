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
Programs that use CLONE_VM without CLONE_THREAD share one address space; a
program all of whose processes show the same memory file is counted once.

This is a rewrite of ps_mem 3.14 by Pádraig Brady, whose output, warnings and
exit statuses it keeps byte for byte.  It differs in that a process which
exits or becomes unreadable while it is being read is left out rather than
ending the run with a traceback.

Licence: LGPL-2.1-or-later (see LICENSE).
"""

import errno
import os
import sys
import time

# Annotations name typing's types in quotes, and typing (a large module:
# a fifth of ps_mem's start-up time and memory) is imported for type
# checkers only.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

VERSION = "3.14"


try:
    from _collections import _tuplegetter  # CPython 3.8+: what namedtuple uses
except ImportError:  # pragma: no cover - CPython 3.6 and 3.7
    def _tuplegetter(index: int, doc: str) -> property:  # type: ignore[no-redef]
        return property(lambda record: record[index], doc=doc)


def _record(cls: type) -> type:
    """The class's annotated fields made an immutable record: a tuple with
    named items, made as a namedtuple is (trailing fields only may have
    defaults), with its _fields, _replace() and repr.

    Not collections.namedtuple itself: importing collections and making the
    records took 3 ms of each start, as much as ps_mem's own import.
    """
    fields = tuple(cls.__annotations__)
    defaults = {field: cls.__dict__[field] for field in fields if field in cls.__dict__}
    size = len(fields)
    new_tuple = tuple.__new__

    def __new__(record_class, *values, **named):
        if len(values) != size or named:
            values = _record_values(cls.__name__, fields, defaults, values, named)
        return new_tuple(record_class, values)

    def _replace(self, **changes):
        return __new__(type(self), *[changes.pop(field, value)
                                     for field, value in zip(fields, self)], **changes)

    def __repr__(self) -> str:
        return "%s(%s)" % (cls.__name__, ", ".join(
            "%s=%r" % pair for pair in zip(fields, self)))

    namespace = {"__slots__": (), "__doc__": cls.__doc__, "__module__": cls.__module__,
                 "_fields": fields, "__new__": __new__, "_replace": _replace,
                 "__repr__": __repr__, "__getnewargs__": lambda self: tuple(self)}
    for index, field in enumerate(fields):
        namespace[field] = _tuplegetter(index, field)
    return type(cls.__name__, (tuple,), namespace)


def _record_values(name: str, fields: "Tuple[str, ...]", defaults: "Dict[str, object]",
                   values: "Tuple[object, ...]", named: "Dict[str, object]"
                   ) -> "Tuple[object, ...]":
    """A record's values from its arguments, as a function with those
    parameters would take them; TypeError for arguments that do not fit."""
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
# Errors
# ----------------------------------------------------------------------------


class ProcessGone(Exception):
    """A process to leave out: it exited, is a kernel thread or a zombie,
    cannot be read, or what it shows cannot be parsed.

    Raised only while reading one pid's files; nothing outside a pid's
    directory is ever skipped this way.  `denied` tells a process we were
    not allowed to read (hidepid, another user's process, a container's
    pid 1) from one that is simply gone: only the former is reported.
    """

    def __init__(self, pid: int, error: "Optional[OSError]" = None) -> None:
        super().__init__(pid)
        self.denied = error is not None and error.errno in (errno.EACCES, errno.EPERM)


# ----------------------------------------------------------------------------
# Access to the proc root
# ----------------------------------------------------------------------------


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
        # each read allocate (and free) 64 KiB.
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


def default_proc_root() -> str:
    # FreeBSD's linprocfs mounts a Linux-like /proc here.
    if os.uname().sysname == "FreeBSD":
        return "/compat/linux/proc"
    return "/proc"


class ProcFS:
    """Every read of the proc root goes through here.

    The root is a directory: the live /proc, a host's /proc mounted in a
    container, or a fixture tree.  Reads of a pid's files turn every OS error
    into ProcessGone: the process may exit between any two reads, and on
    some kernels smaps_rollup answers ESRCH for a pid that is still listed.
    """

    def __init__(self, root: str, live: bool = False) -> None:
        self.root = root
        self._prefix = os.path.join(root, "")
        # The live /proc of our own pid namespace, where the kernel can be
        # asked more than the files say (see exact_address_spaces()) and
        # the files agree with each other, so fewer need reading.
        self.live = live
        # Read every file 3.14 reads, so that a tree missing one of them
        # leaves the process out as 3.14 does (see Namer and read_memory).
        self.full_reads = not live

    def path(self, *parts: object) -> str:
        return os.path.join(self.root, *(str(part) for part in parts))

    def read_global(self, name: str) -> bytes:
        """A file outside any pid directory; OSError propagates."""
        return _read_file(self._prefix + name)

    def read(self, pid: int, name: str) -> bytes:
        try:
            return _read_file("%s%d/%s" % (self._prefix, pid, name), name in _ONE_RECORD)
        except OSError as error:
            raise ProcessGone(pid, error) from error

    def read_optional(self, pid: int, name: str) -> "Optional[bytes]":
        """Like read(), but None when the file does not exist at all."""
        try:
            return _read_file("%s%d/%s" % (self._prefix, pid, name), name in _ONE_RECORD)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ProcessGone(pid, error) from error

    def readlink(self, pid: int, name: str) -> str:
        # ENOENT here is how a kernel thread (no exe) or a gone pid answers.
        try:
            return os.readlink("%s%d/%s" % (self._prefix, pid, name))
        except OSError as error:
            raise ProcessGone(pid, error) from error

    def exists(self, pid: int, name: str) -> bool:
        return os.path.exists(self.path(pid, name))

    def pids(self) -> "List[int]":
        """The numeric entries, in the directory's own order (which decides
        the order of rows with equal RAM, as in 3.14)."""
        return [int(entry) for entry in os.listdir(self.root) if entry.isdigit()]

    def self_pid(self) -> "Optional[int]":
        """The pid the tree's `self` entry names: ps_mem itself on the live
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

    def address_spaces(self, samples: "List[ProcessSample]",
                       helper: "Optional[KcmpHelper]" = None
                       ) -> "Optional[AddressSpaceMap]":
        """Which of these processes share an address space, where that can
        be known exactly; None where only 3.14's guess can be made.  HELPER:
        see exact_address_spaces()."""
        return exact_address_spaces(samples, helper) if self.live else None

    def time(self) -> float:
        """When the sample is taken (a capture answers when it was)."""
        return time.time()


# ----------------------------------------------------------------------------
# Parsers: text from /proc in, values out
# ----------------------------------------------------------------------------

KernelVersion = "Tuple[int, int, int]"  # (major, minor, patch), for annotations


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


@_record
class MemoryCounters:
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

# The counted keys of smaps_rollup, as found in the text (after a newline).
_ROLLUP_KEYS = tuple((b"\n" + key + b":", len(key) + 2, kind) for key, kind in _KNOWN_KEYS.items())


# No kernel counts past this (8 ZiB in KiB); a float holds any integer
# below it exactly, so a larger number is garbage, not memory.
_MAX_KIB = 2 ** 53


def _smaps_kind(key: bytes) -> int:
    if key.startswith(b"Shared"):
        return _SHARED
    return _PRIVATE


def _line_sums(text: bytes) -> "List[int]":
    """The sums of any smaps text (after a newline), a counted line at a
    time."""
    import re  # only here: see _rollup_sums()

    sums = [0, 0, 0, 0, 0, 0, 0]
    known = _KNOWN_KEYS
    for key, number in re.findall(_COUNTER, text):
        kind = known.get(key)
        if kind is None:
            kind = _smaps_kind(key)
        sums[kind] += int(number)
    return sums


def _rollup_sums(text: bytes) -> "Optional[List[int]]":
    """The sums of smaps_rollup text (after a newline) as the kernel makes
    it, found without a regex; None for any other text, which only
    _line_sums() can read.

    Importing re costs a fresh interpreter 9 ms and 0.8 MiB, more than the
    regex saves on a thousand rollups, and on every kernel since 4.14 the
    rollup is all there is to read.  As made: each counted key once, on a
    line "Key:   NUMBER kB".  The counts of the keys' prefixes make sure that
    the regex would find exactly those lines, and int() reads the number
    as the regex reads it, but for whitespace other than spaces and tabs,
    which int() would skip: text with any is left to the regex.
    """
    if b"\r" in text or b"\x0b" in text or b"\x0c" in text:
        return None
    sums = [0, 0, 0, 0, 0, 0, 0]
    found = [0, 0, 0, 0, 0, 0, 0]
    find = text.find
    try:
        for key, length, kind in _ROLLUP_KEYS:
            start = find(key)
            if start >= 0:
                end = find(b"\n", start + 1)  # of the key's line
                if end < 0 or text[end - 3:end] != b" kB":
                    return None
                sums[kind] += int(text[start + length:end - 3])
                found[kind] += 1
    except ValueError:  # no number there (or not only one)
        return None
    if (text.count(b"\nPrivate") != found[_PRIVATE] + found[_PRIVATE_HUGE]
            or text.count(b"\nShared") != found[_SHARED] + found[_SHARED_HUGE]
            or text.count(b"\nPss:") != found[_PSS]
            or text.count(b"\nSwap") != found[_SWAP] + found[_SWAP_PSS]):
        return None
    return sums


def _counters(sums: "List[int]", pss_lines: int, swap_pss_lines: int) -> MemoryCounters:
    # Each Pss line is truncated to whole KiB: add back the average error,
    # 0.5 KiB a line (exact in a float, as 3.14's running sum is).
    return MemoryCounters(sums[_PRIVATE], sums[_SHARED], sums[_PRIVATE_HUGE],
                          sums[_SHARED_HUGE], sums[_PSS] + 0.5 * pss_lines, sums[_SWAP],
                          sums[_SWAP_PSS], pss_lines > 0, swap_pss_lines > 0)


# A rollup's layout is its text from the first newline on (its lines, less
# the address range) with every digit and space made "#".  The kernel pads
# each number to a fixed width, so the rollups of one kernel share a few
# layouts, and the texts of one layout differ only where the "#"s are.
_NUMBER_OR_SPACE = bytes(35 if byte in b"0123456789 " else byte for byte in range(256))
_MAX_LAYOUTS = 32  # a scan's; more than a kernel makes


@_record
class RollupLayout:
    """Where the counted numbers of a rollup layout are."""

    fields: "Tuple[Tuple[int, int, int], ...]"  # (start, end, kind) in the lines
    line_ends: int  # lines ending " kB\n": all of them
    pss_lines: int
    swap_pss_lines: int


def _counters_by_layout(text: bytes, layouts: "Dict[bytes, RollupLayout]"
                        ) -> "Optional[MemoryCounters]":
    """The counters of smaps_rollup TEXT from its layout, if one of LAYOUTS,
    exactly as the regex would read them; else None.

    A layout fixes every byte but the digits and spaces, so the same keys
    start the same lines, and a counted number's field holds only digits
    and spaces: int() reads it as the regex does when it is one run of
    digits, and refuses it otherwise.  All lines still ending " kB" means
    no number ran into its unit; and the first line, the one line a layout
    leaves free, must not start with a counted key.
    """
    start = text.find(b"\n")
    if start < 0 or text[:1] in (b"P", b"S"):
        return None
    lines = text[start:]
    layout = layouts.get(lines.translate(_NUMBER_OR_SPACE))
    if layout is None or lines.count(b" kB\n") != layout.line_ends:
        return None
    sums = [0, 0, 0, 0, 0, 0, 0]
    try:
        for field_start, field_end, kind in layout.fields:
            sums[kind] += int(lines[field_start:field_end])
    except ValueError:
        return None
    if max(sums) > _MAX_KIB:  # for parse_smaps() to refuse
        return None
    return _counters(sums, layout.pss_lines, layout.swap_pss_lines)


def _learn_layout(text: bytes, counters: MemoryCounters, pss_lines: int, swap_pss_lines: int,
                  layouts: "Dict[bytes, RollupLayout]") -> None:
    """Add TEXT's layout to LAYOUTS if every line after the first is "Key:",
    a number padded with spaces and " kB", and reading TEXT by it gives
    COUNTERS, as read without it."""
    start = text.find(b"\n")
    if start < 0 or not text.endswith(b"\n"):
        return
    lines = text[start:]
    fields = []
    line_start = 1
    for line in lines[1:-1].split(b"\n"):
        key, colon, number = line.partition(b":")
        # Keys of letters and "_" only: a layout leaves digits free, and
        # the regex's \w* would see "Private1" but not "Private ".
        if not colon or not number.endswith(b" kB") or not key.replace(b"_", b"").isalpha():
            return
        kind = _KNOWN_KEYS.get(key)
        if kind is None and key.startswith((b"Private", b"Shared")):
            kind = _smaps_kind(key)
        if kind is not None:
            fields.append((line_start + len(key) + 1, line_start + len(line) - 3, kind))
        line_start += len(line) + 1
    layout = RollupLayout(tuple(fields), lines.count(b" kB\n"), pss_lines, swap_pss_lines)
    key = lines.translate(_NUMBER_OR_SPACE)
    if _counters_by_layout(text, {key: layout}) == counters:
        layouts[key] = layout


def parse_smaps(text: bytes, layouts: "Optional[Dict[bytes, RollupLayout]]" = None
                ) -> MemoryCounters:
    """Sum the counters of /proc/PID/smaps or smaps_rollup.

    Lines that do not count are ignored, so new kernel fields do no harm; a
    counted line without a number raises ValueError.

    LAYOUTS, kept by the caller from one text to the next, makes reading
    the rollups of one kernel three times faster (see
    _counters_by_layout()); the answers are the same without it.
    """
    if layouts:
        counters = _counters_by_layout(text, layouts)
        if counters is not None:
            return counters
    whole = b"\n" + text  # the first line too starts after a newline
    # Once re is loaded (argparse loads it for any run with arguments, some
    # sites at start-up), the regex is the faster reading of a rollup too.
    sums = None if "re" in sys.modules else _rollup_sums(whole)
    if sums is None:
        sums = _line_sums(whole)
    if max(sums) > _MAX_KIB or min(sums) < -_MAX_KIB:
        raise ValueError("smaps counter out of range")
    pss_lines = whole.count(b"\nPss:")
    swap_pss_lines = whole.count(b"\nSwapPss:")
    counters = _counters(sums, pss_lines, swap_pss_lines)
    # One Pss line: a rollup, or smaps of one mapping.
    if layouts is not None and pss_lines == 1 and len(layouts) < _MAX_LAYOUTS:
        _learn_layout(text, counters, pss_lines, swap_pss_lines, layouts)
    return counters


def parse_statm(text: bytes) -> "Tuple[int, int]":
    """(resident pages, shared pages) from /proc/PID/statm."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError("statm has fewer than 3 fields")
    resident, shared = int(fields[1]), int(fields[2])
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
            return name, int(line[6:-1])
    return name, 0 if len(lines) >= 10 else None


def parse_stat_ppid(stat: bytes) -> int:
    """The parent's pid from /proc/PID/stat: the second field after the
    name's closing parenthesis (the name itself may hold any byte)."""
    try:
        return int(stat[stat.rindex(b")") + 2:].split(b" ", 2)[1])
    except IndexError as error:
        raise ValueError("stat too short") from error


def parse_uid(status: bytes) -> int:
    """The real uid from /proc/PID/status ("Uid:\treal\teffective...")."""
    start = status.index(b"\nUid:") + 5
    fields = status[start:status.index(b"\n", start)].split()
    if not fields:
        raise ValueError("status has an empty Uid line")
    return int(fields[0])


def parse_cgroup(data: bytes) -> str:
    """The cgroup a process is in: its unified-hierarchy (v2) path, else the
    path under cgroup v1's memory controller (also where v2's is only "/"
    beside it); "-" where there is neither."""
    unified_path = memory_path = None
    for line in _proc_text(data).split("\n"):
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
# Model
# ----------------------------------------------------------------------------


@_record
class Options:
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


@_record
class ProcessSample:
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


# pid -> its address space (the pid of one process in it), for processes
# known to share theirs; every other process has its own.
AddressSpaceMap = "Dict[int, object]"


@_record
class ProgramUsage:
    name: str  # without the " (N)" count
    count: int
    pids: "Tuple[int, ...]"
    private_kib: float
    shared_kib: float  # hugetlb included
    ram_kib: float
    swap_kib: float


@_record
class Report:
    programs: "List[ProgramUsage]"  # rows to print, ascending by RAM
    total_ram_kib: float
    total_swap_kib: float
    pss_seen: bool  # some process showed Pss: RAM can be totalled
    swap_pss_seen: bool  # some process showed SwapPss: swap can be totalled
    unreadable: int = 0  # processes left out because reading them was denied


@_record
class Accuracy:
    """2 accurate, can total; 1 over-estimated per program; 0 shared memory
    not reported accurately; -1 not reported at all."""

    ram: int
    swap: int


# ----------------------------------------------------------------------------
# Collection: pid -> sample, skipping what vanished
# ----------------------------------------------------------------------------

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") / 1024


def read_memory(procfs: ProcFS, pid: int, kernel: "KernelVersion",
                layouts: "Optional[Dict[bytes, RollupLayout]]" = None) -> "Tuple":
    """The memory fields of a ProcessSample (all after `name`) for one
    process, from the best memory file its kernel offers.

    LAYOUTS: kept from one process to the next (see parse_smaps())."""
    statm = None
    if procfs.full_reads:
        # 3.14 reads statm first, whatever it uses: without it, no process.
        statm = _statm_pages(procfs, pid)
    text = procfs.read_optional(pid, "smaps_rollup")  # Linux 4.14+, cheapest
    if text is None:
        text = procfs.read_optional(pid, "smaps")
    if text is not None:
        try:
            counters = parse_smaps(text, layouts)
        except ValueError as error:
            raise ProcessGone(pid) from error
        if counters.has_pss:
            shared = counters.pss - counters.private
        else:
            shared = counters.shared
        swap = counters.swap_pss if counters.has_swap_pss else counters.swap
        # The text identifies the address space for 3.14's CLONE_VM rule
        # (compared as 3.14 decodes it, undecodable bytes dropped) and picks
        # the processes worth asking the kernel about (see AddressSpaces).
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
    shared = shared_pages * PAGE_KIB
    if (2, 6, 1) <= kernel <= (2, 6, 9):
        # statm's shared column is the whole file-backed extent here:
        # ignore it and over-estimate instead (the accuracy warning says so).
        private, shared = resident_kib, 0
    else:
        private = resident_kib - shared
    return private, shared, 0, 0, None, False, False


def _statm_pages(procfs: ProcFS, pid: int) -> "Tuple[int, int]":
    try:
        return parse_statm(procfs.read(pid, "statm"))
    except ValueError as error:
        raise ProcessGone(pid) from error


class Namer:
    """Works out the name a process is grouped under, for one sample.

    Parents' executables are looked up once per sample, however many
    children ask for them.  On the live /proc, files are read only as far
    as the name needs them (see name()); a tree is read as 3.14 reads it.
    """

    def __init__(self, procfs: ProcFS, options: Options) -> None:
        self.procfs = procfs
        self.options = options
        self._parent_exe: Dict[int, Optional[str]] = {}
        self._copies: Dict[str, str] = {}
        # The name is the program, read from exe and comm alone: the
        # common case, which names() takes the shortest way.
        self._program_only = (procfs.live and not options.split_args and not options.by_pid
                              and options.group_by == "program")

    def one_copy(self, text: str) -> str:
        """The one copy of TEXT kept for the scan: the many processes of a
        program share one name.  (Not sys.intern(): growing the
        interpreter's table of interned strings costs 0.2 MiB.)"""
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
        return path[path.rfind("/") + 1:]  # os.path.basename(), for less

    def parent_exe(self, ppid: int) -> "Optional[str]":
        if ppid not in self._parent_exe:
            try:
                cmdline = self._cmdline(ppid) if self.procfs.full_reads else None
                exe = self._exe(ppid, cmdline)
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
        if self.options.split_args or self.procfs.full_reads:
            cmdline = self._cmdline(pid)
        # Read even for -s: a process without an exe link (a kernel thread,
        # or one that just exited) is never shown.
        exe = self._exe(pid, cmdline)
        if self.options.split_args:
            return " ".join(cmdline).replace("\n", " "), None
        program = self._program(pid, exe)
        if self.options.group_by == "user":
            name = self._user(pid)
        elif self.options.group_by == "cgroup":
            name = parse_cgroup(self.procfs.read_optional(pid, "cgroup") or b"")
        else:
            name, program = program, None
        if self.options.by_pid:
            name = "%s [%d]" % (name, pid)
        return name, program

    def _user(self, pid: int) -> str:
        try:
            uid = parse_uid(self.procfs.read(pid, "status"))
        except ValueError as error:
            raise ProcessGone(pid) from error
        return self.procfs.user_name(uid)

    def _status(self, pid: int) -> "Tuple[str, Optional[int]]":
        try:
            return parse_status(self.procfs.read(pid, "status"))
        except ValueError as error:
            raise ProcessGone(pid) from error

    def _comm(self, pid: int) -> "Optional[str]":
        """status's Name, from the much cheaper comm file, where the two
        are sure to agree: status escapes a backslash or newline in the
        name, and a carriage return would end 3.14's line early."""
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
        if self.procfs.live:
            # stat costs the kernel a third less than status, and on the
            # live /proc the two always agree.
            try:
                return parse_stat_ppid(self.procfs.read(pid, "stat"))
            except ValueError as error:
                raise ProcessGone(pid) from error
        return self._status(pid)[1]

    def _program(self, pid: int, exe: str) -> str:
        status = None
        name = self._comm(pid) if self.procfs.live else None
        if name is None:
            status = self._status(pid)
            name = status[0]
        if not exe.startswith(name):
            ppid = self._ppid(pid, status)
            if ppid is None:
                raise ProcessGone(pid)  # as 3.14, which fails to find PPid
            if not ppid or self.parent_exe(ppid) != exe:
                return name  # decoded without the bytes that are not UTF-8
            # A child that renamed itself joins its parent's program
            # (firefox's "Web Content" processes join firefox).
        # Else the name is cut to 15 characters: show the executable's whole
        # name.  Bytes of its path that are not UTF-8 show as "?".
        return exe.encode("utf-8", "replace").decode("utf-8")


@_record
class Scan:
    samples: "List[ProcessSample]"  # in the proc root's order
    unreadable: int  # processes we were not allowed to read
    # Which share an address space (see ProcFS.address_spaces()).
    address_spaces: "Optional[AddressSpaceMap]" = None




def collect(procfs: ProcFS, options: Options, kernel: "KernelVersion",
            self_pid: "Optional[int]", readers: "Optional[int]" = None,
            kcmp: "Optional[KcmpHelper]" = None) -> Scan:
    """A sample of every process to report, and which of them share an
    address space.

    Names are worked out anew at every sample of a watch, as 3.14 does: a
    process may rename itself, exec, or have its executable replaced, and
    telling that needs its exe link and comm, which is all a name costs.

    READERS processes share the reading (default: see reader_count()).
    KCMP: the run's helper for kcmp (see exact_address_spaces()).
    """
    wanted = set(options.pids)
    pids = [pid for pid in procfs.pids()
            if pid != self_pid and (not wanted or pid in wanted)]
    if readers is None:
        readers = reader_count(procfs, len(pids), options)
    own_helper = kcmp is None
    if own_helper:
        kcmp = KcmpHelper()
    try:
        if procfs.live and (readers > 1 or options.watch) and len(pids) > 1:
            # Forked now, small, it loads what it needs while we read.
            kcmp.start()
        forked = min(readers, len(pids)) > 1
        # With readers, kcmp's helper is told of alike processes as they
        # are read, rather than all at the end.
        twins = _Twins(kcmp) if forked and procfs.live else None
        if forked:
            scan = _scan_forked(procfs, options, kernel, pids, readers, twins and twins.see)
        else:
            scan = _scan(procfs, options, kernel, pids)
        if twins is not None:
            address_spaces = kcmp.spaces()
        else:
            address_spaces = procfs.address_spaces(scan.samples, kcmp)
        return Scan(scan.samples, scan.unreadable, address_spaces)
    finally:
        if own_helper:
            kcmp.close()


def _scan(procfs: ProcFS, options: Options, kernel: "KernelVersion", pids: "List[int]",
          namer: "Optional[Namer]" = None,
          layouts: "Optional[Dict[bytes, RollupLayout]]" = None) -> Scan:
    """The samples of PIDS; NAMER and LAYOUTS are kept by a caller that
    scans more pids of the same sample."""
    if namer is None:
        namer = Namer(procfs, options)
    if layouts is None:
        layouts = {}
    samples = []
    unreadable = 0
    for pid in pids:
        try:
            name, program = namer.names(pid)
            memory = read_memory(procfs, pid, kernel, layouts)
        except ProcessGone as gone:
            unreadable += gone.denied
            continue
        samples.append(ProcessSample(pid, namer.one_copy(name), *memory,
                                     program and namer.one_copy(program)))
    return Scan(samples, unreadable)


# Fewer processes than this to a reader, and forking one costs more than
# it saves.
_PIDS_PER_READER = 250
_MAX_READERS = 8


def reader_count(procfs: ProcFS, pid_count: int, options: "Optional[Options]" = None) -> int:
    """How many processes should read this many pids: one per CPU we may
    run on, on the live /proc only (a tree is read as 3.14 reads it), and
    one in a watch, which runs for hours: there CPU time counts, and
    readers spend some to save wall time."""
    if not procfs.live or not hasattr(os, "fork") or (options and options.watch):
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_READERS, pid_count // _PIDS_PER_READER))


# Pids a reader takes at a time (see _scan_forked()).
_CHUNK_PIDS = 32
_TOKEN_BYTES = 4


def _scan_forked(procfs: ProcFS, options: Options, kernel: "KernelVersion",
                 pids: "List[int]", readers: int,
                 seen: "Optional[Callable[[List[ProcessSample]], None]]" = None) -> Scan:
    """_scan() by READERS processes at the same time: this one and forked
    children.

    Most of a run is the kernel making smaps_rollup, and for different
    processes it can do that on several CPUs at once.  Threads cannot use
    them: a name takes several short reads, and threads spent on passing
    the GIL what they saved (measured).  Forked readers share nothing.

    The pids are cut into chunks, whose numbers wait in a pipe; each reader
    takes the next number from it until there are none, so that a reader
    that starts late (a fork takes milliseconds) or runs on a busier CPU
    simply reads fewer.  The chunks are joined in the proc root's order; a chunk a
    failed child took is read here instead, so nothing is lost.

    SEEN is given each chunk's samples as they come.
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
    children: List[_Forked] = []
    scans: Dict[int, Scan] = {}
    try:
        for _ in range(readers - 1):
            try:
                children.append(_Forked(_read_chunks_records, procfs, options, kernel,
                                        chunks, tokens, stream=True))
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
            child.abandon()
        raise
    finally:
        os.close(tokens)
    for child in children:
        child.finish()
    samples: List[ProcessSample] = []
    unreadable = 0
    for index, chunk in enumerate(chunks):
        scan = scans.get(index)
        if scan is None:  # a chunk a failed child took
            scan = _scan(procfs, options, kernel, chunk)
            if seen is not None:
                seen(scan.samples)
        samples.extend(scan.samples)
        unreadable += scan.unreadable
    return Scan(samples, unreadable)


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
                 chunks: "List[List[int]]", tokens: int) -> "Iterable[Tuple[int, Scan]]":
    """(index, scan) of each chunk whose number this reader takes from the
    TOKENS pipe, as it is read."""
    namer = Namer(procfs, options)
    layouts: Dict[bytes, RollupLayout] = {}
    while True:
        token = os.read(tokens, _TOKEN_BYTES)  # whole: see _scan_forked()
        if len(token) < _TOKEN_BYTES:
            return
        index = int.from_bytes(token, "little")
        yield index, _scan(procfs, options, kernel, chunks[index], namer, layouts)


def _read_chunks_records(procfs: ProcFS, options: Options, kernel: "KernelVersion",
                         chunks: "List[List[int]]", tokens: int
                         ) -> "Iterable[Tuple[int, List[tuple], int]]":
    """_read_chunks() in what marshal can carry: each sample a plain tuple."""
    for index, scan in _read_chunks(procfs, options, kernel, chunks, tokens):
        yield index, [tuple(sample) for sample in scan.samples], scan.unreadable


class _ChunkInbox:
    """The chunks forked readers send (see _read_chunks_records()), taken
    into SCANS as they come: between the chunks this process reads, the
    work of taking them is done while the children still read."""

    def __init__(self, children: "List[_Forked]", scans: "Dict[int, Scan]",
                 seen: "Optional[Callable[[List[ProcessSample]], None]]" = None) -> None:
        import select

        self._scans = scans
        self._seen = seen
        self._poll = select.poll()
        self._open: Dict[int, _Forked] = {}
        for child in children:
            self._poll.register(child.fileno(), select.POLLIN)
            self._open[child.fileno()] = child

    def take(self, wait: bool) -> None:
        """Take the chunks sent so far; with WAIT, all until every child
        has ended.  A child that fails (dies, or sends what is not a
        chunk) is given up: its chunks are read again (see _scan_forked())."""
        while self._open:
            ready = self._poll.poll(None if wait else 0)
            if not ready:
                return
            for fd, _event in ready:
                child = self._open[fd]
                try:
                    item = child.result()
                    if item is not None:
                        index, records, unreadable = item  # type: ignore[misc]
                        for position, record in enumerate(records):  # in place: less memory
                            records[position] = ProcessSample(*record)
                        self._scans[index] = Scan(records, unreadable)
                        if self._seen is not None:
                            self._seen(records)
                        continue
                except (ChildFailed, TypeError, ValueError):
                    pass
                self._poll.unregister(fd)  # it has ended, or failed
                del self._open[fd]


# What a server (see _Forked) answers to a question that wants no answer.
_SILENT = ("no answer",)


class ChildFailed(Exception):
    """A forked child gave no value: it raised, was killed, or sent garbage."""


# A message between a forked child and its parent: its length, then that
# many bytes of marshal data.
_LENGTH_BYTES = 8


def _send(fd: int, value: object) -> None:
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


def _child(function: "Callable[..., object]", args: "Tuple[object, ...]",
           server: "Optional[Callable[[object], object]]", stream: bool,
           results: "Tuple[int, int]", questions: "Tuple[int, int]") -> None:
    """The forked child's whole life (see _Forked); never returns."""
    status = 1
    try:
        # Ctrl-C reaches the whole process group: here it raises
        # KeyboardInterrupt, which ends the child quietly (finally), and the
        # parent reports it.  (Not the signal module to reset it: its
        # import costs a forked child up to 10 ms.)
        os.close(results[0])
        if questions[1] >= 0:
            os.close(questions[1])
        if server is not None:
            server.prepare()
        if stream:
            for item in function(*args):
                _send(results[1], item)
            _send(results[1], None)
        else:
            _send(results[1], function(*args))
        while server is not None:
            try:
                question = _receive(questions[0])
            except ChildFailed:
                break  # the parent closed the pipe: no more questions
            answer = server(question)
            if answer is not _SILENT:
                _send(results[1], answer)
        status = 0
    finally:
        # Whatever happened, the child ends here: never back into the
        # parent's code, never flushing the parent's buffered output.
        os._exit(status)


class _Forked:
    """FUNCTION(*ARGS) called in a forked child, its value (anything marshal
    can carry) sent back through a pipe: result().

    With STREAM, the value is an iterable sent an item at a time as the
    child makes it, then None: each is a result().
    With SERVER, the child calls SERVER.prepare() first, and once it has
    sent its value, answers questions until the parent closes the pipe:
    ask(QUESTION) is SERVER(QUESTION) worked out in the child.  finish()
    ends the child.
    """

    def __init__(self, function: "Callable[..., object]", *args: object,
                 server: "Optional[Callable[[object], object]]" = None,
                 stream: bool = False) -> None:
        results = os.pipe()
        questions = os.pipe() if server is not None else (-1, -1)
        try:
            self.pid = os.fork()
        except OSError:
            for fd in results + questions:
                if fd >= 0:
                    os.close(fd)
            raise
        if self.pid:
            os.close(results[1])
            if questions[0] >= 0:
                os.close(questions[0])
            self._results, self._questions = results[0], questions[1]
            self._status: Optional[int] = None
            return
        _child(function, args, server, stream, results, questions)

    def result(self) -> object:
        """The child's value; ChildFailed if there is none."""
        try:
            return _receive(self._results)
        except BaseException:
            self.abandon()
            raise

    def fileno(self) -> int:
        """The pipe the child's value comes through: readable when
        result() has something to return."""
        return self._results

    def tell(self, message: object) -> None:
        """Send the child server MESSAGE, to which it answers _SILENT:
        nothing to wait for; ChildFailed if the child is gone."""
        try:
            _send(self._questions, message)
        except OSError as error:  # EPIPE: the child is gone
            self.abandon()
            raise ChildFailed(error) from error
        except BaseException:
            self.abandon()
            raise

    def ask(self, question: object) -> object:
        """The child server's answer to QUESTION; ChildFailed if none."""
        self.tell(question)
        try:
            return _receive(self._results)
        except OSError as error:
            self.abandon()
            raise ChildFailed(error) from error
        except BaseException:
            self.abandon()
            raise

    def hang_up(self) -> None:
        """Let the child end: a server ends when asked no more."""
        for fd in (self._questions, self._results):
            if fd >= 0:
                os.close(fd)
        self._questions = self._results = -1

    def finish(self) -> None:
        """Let the child end, and reap it."""
        self.hang_up()
        if self._status is None:
            _pid, self._status = os.waitpid(self.pid, 0)

    def abandon(self) -> None:
        """Stop the child now (the parent is being interrupted)."""
        if self._status is None:
            import signal

            os.kill(self.pid, signal.SIGKILL)  # not yet reaped: cannot fail
        self.finish()


# ----------------------------------------------------------------------------
# Address spaces shared without threads (CLONE_VM without CLONE_THREAD)
# ----------------------------------------------------------------------------

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
    kernel with kcmp(2) KCMP_VM.

    3.14 guesses this from identical memory-file text, which merges
    independent processes whose maps happen to be alike (ASLR off, idle
    forked workers).  Exactly those processes, the ones 3.14 would take for
    one, are compared: each is placed among one process of each space
    already found for its text, kept in the kernel's own order, so that a
    binary search finds its space or its place with few calls.  On most
    machines there are none, so ctypes is not even loaded.  (Like 3.14, a
    clone whose memory changed between the reads of the two processes'
    files is not recognised.)
    """

    def __init__(self) -> None:
        import ctypes  # only here: most runs never need it

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
        self._mm_of: Dict[int, object] = {}
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

    def spaces(self) -> "Dict[int, object]":
        """pid -> its address space (the pid of a process in it), for the
        processes placed since the last call."""
        mm_of = self._mm_of
        for mem_id in self._guessed:
            for pid in self._members[mem_id]:
                mm_of[pid] = ("same text", mem_id)
        self._forget()
        return mm_of

    def classify(self, groups: "Iterable[List[Tuple[int, object]]]") -> "Dict[int, object]":
        """spaces() of the processes of these groups of (pid, mem_id)."""
        for group in groups:
            for pid, mem_id in group:
                self.place(pid, mem_id)
        return self.spaces()


class _KcmpServer:
    """kcmp's answers from a forked child (see KcmpHelper): prepare() loads
    ctypes there; then each sample tells it of processes alike to others,
    ("place", [(pid, mem_id), ...]), and asks for their spaces, ("spaces",)."""

    def prepare(self) -> None:
        try:
            self._kcmp: Optional[AddressSpaces] = AddressSpaces()
            # A first answer, while ps_mem still reads: it brings in what
            # answering needs, and the real question is answered sooner.
            me = os.getpid()
            self._kcmp.classify([[(me, 0), (me, 0)]])
        except (KcmpUnavailable, OSError, AttributeError):
            self._kcmp = None

    def __call__(self, message: "Tuple") -> object:
        if message[0] == "place":
            if self._kcmp is not None:
                try:
                    for pid, mem_id in message[1]:
                        self._kcmp.place(pid, mem_id)
                except (KcmpUnavailable, OSError, AttributeError):
                    self._kcmp = None  # no answer this run
            return _SILENT
        if self._kcmp is None:
            return None
        return self._kcmp.spaces()


def exact_address_spaces(samples: "List[ProcessSample]",
                         helper: "Optional[KcmpHelper]" = None
                         ) -> "Optional[AddressSpaceMap]":
    """Which processes share an address space, where the kernel can tell;
    None where it cannot (and 3.14's rule applies).  For the live /proc of
    our own pid namespace only: kcmp takes pids as we see them.

    HELPER: the run's KcmpHelper; without it, one is made for this
    question alone.  Only processes whose memory text is another's are
    asked about (see AddressSpaces): the others are alone in theirs.
    """
    own_helper = helper is None
    if helper is None:
        helper = KcmpHelper()
    try:
        _Twins(helper).see(samples)
        return helper.spaces()
    finally:
        if own_helper:
            helper.close()


class _Twins:
    """Tells the kcmp helper of each process whose memory text is another's,
    as samples come: while forked readers still read (see _scan_forked()),
    its answer is then ready soon after the scan ends."""

    def __init__(self, helper: "KcmpHelper") -> None:
        self._helper = helper
        self._first: Dict[object, int] = {}  # mem_id -> first pid, or -1 once told

    def see(self, samples: "List[ProcessSample]") -> None:
        alike = []
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


class KcmpHelper:
    """kcmp's answers, from a child forked for them and kept for the run.

    In a child: a seccomp filter that kills on kcmp (as systemd's
    SystemCallFilter= does by default) kills only the child, and ps_mem
    goes on with 3.14's rule; and ctypes, which ps_mem needs for nothing
    else, is never loaded in ps_mem itself (it would be a third of its own
    memory).  Kept for the run: a watch loads ctypes once, not each sample.
    """

    def __init__(self) -> None:
        self._child: Optional[_Forked] = None
        self._ready = self._failed = self._placed = False

    def start(self) -> None:
        """Fork the child now: it loads ctypes while we go on."""
        if self._child is None and not self._failed:
            try:
                self._child = _Forked(_no_value, server=_KcmpServer())
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
                self._child.tell(("place", alike))
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
                self._child.result()  # sent once it has loaded ctypes
                self._ready = True
            return self._child.ask(("spaces",))  # type: ignore[return-value]
        except ChildFailed:
            self._child, self._failed = None, True
            return None

    def hang_up(self) -> None:
        """No more questions: the child ends while ps_mem goes on."""
        if self._child is not None:
            self._child.hang_up()

    def close(self) -> None:
        if self._child is not None:
            self._child.finish()
            self._child = None


def _no_value() -> None:
    return None


# ----------------------------------------------------------------------------
# Aggregation: samples -> report
# ----------------------------------------------------------------------------


def aggregate(samples: "Iterable[ProcessSample]", unreadable: int = 0,
              address_spaces: "Optional[AddressSpaceMap]" = None) -> Report:
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
    if exact:
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
    total_ram = total_swap = 0
    for name, members in groups.items():  # first-seen order, as 3.14 sums
        if name in sharing_names:
            private, shared, swap = _sum_address_spaces(members, address_spaces, mm_size,
                                                        pss_seen)
        elif exact:  # the usual case
            private, shared, swap = _sums(members, pss_seen)
        else:
            private, shared, swap = _sum_processes(members, pss_seen)
        # Shared hugetlb pages are in no Pss; a program's largest mapping is
        # added (each of its processes shows the whole of it).
        if regroup:
            shared_huge = sum(hugetlb.get(sample.pid, 0) for sample in members)
        else:
            shared_huge = 0
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
    return Report(programs, total_ram, total_swap, pss_seen, swap_pss_seen, unreadable)


def _by_program(samples: "List[ProcessSample]") -> "Dict[str, List[ProcessSample]]":
    programs: Dict[str, List[ProcessSample]] = {}
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
    private = shared = swap = 0
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
    private = shared = swap = 0
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
    "count": lambda program: program.count,
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


def accuracy(procfs: ProcFS, kernel: "KernelVersion", probe_pid: "Optional[int]",
             show_swap: bool) -> Accuracy:
    """How far this system's numbers can be trusted, judged from ps_mem's own
    smaps (the `self` of the proc root)."""
    has_smaps = probe_pid is not None and procfs.exists(probe_pid, "smaps")

    def probe_has(marker: bytes) -> bool:
        try:
            return marker in procfs.read(probe_pid, "smaps")
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


# ----------------------------------------------------------------------------
# Captures: a whole proc root in one file, for offline analysis
# ----------------------------------------------------------------------------

# Every file any option reads, per pid, and statm, which 3.14 reads too (a
# capture is read back as a tree is: see ProcFS.full_reads).  A capture
# holds these, whatever the capturing run's options, so that a later run with other options answers
# as a live run with them would have; and nothing else (no environ, no
# memory contents).
_CAPTURED_FILES = ("cmdline", "status", "smaps_rollup", "smaps", "statm", "cgroup")
_MANIFEST = "ps_mem-capture.json"
_CAPTURE_FORMAT = 1


class Snapshot(ProcFS):
    """A proc root held in memory: what a capture recorded, read back
    without unpacking it.  Answers exactly as the live /proc answered then,
    errors included."""

    def __init__(self, name: str, files: "Dict[str, bytes]", links: "Dict[str, str]",
                 manifest: dict) -> None:
        super().__init__(name)
        self.files = files
        self.links = links
        self.errors = manifest.get("errors", {})
        self.manifest = manifest

    def _lookup(self, table: dict, relative: str):
        if relative in table:
            return table[relative]
        code = self.errors.get(relative, errno.ENOENT)
        raise OSError(code, os.strerror(code), relative)

    def read_global(self, name: str) -> bytes:
        return self._lookup(self.files, name)

    def _pid_lookup(self, table: dict, pid: int, name: str):
        try:
            return self._lookup(table, "%d/%s" % (pid, name))
        except OSError as error:
            raise ProcessGone(pid, error) from error

    def read(self, pid: int, name: str) -> bytes:
        return self._pid_lookup(self.files, pid, name)

    def read_optional(self, pid: int, name: str) -> "Optional[bytes]":
        relative = "%d/%s" % (pid, name)
        if relative not in self.files and relative not in self.errors:
            return None
        return self.read(pid, name)

    def readlink(self, pid: int, name: str) -> str:
        return self._pid_lookup(self.links, pid, name)

    def exists(self, pid: int, name: str) -> bool:
        return "%d/%s" % (pid, name) in self.files

    def pids(self) -> "List[int]":
        return list(self.manifest["pids"])

    def self_pid(self) -> "Optional[int]":
        return self.manifest.get("self")

    def path_exists(self, path: str) -> bool:
        return bool(self.manifest.get("path_exists", {}).get(path, False))

    def user_name(self, uid: int) -> str:
        return self.manifest.get("users", {}).get(str(uid), str(uid))

    def address_spaces(self, samples: "List[ProcessSample]",
                       helper: "Optional[KcmpHelper]" = None
                       ) -> "Optional[AddressSpaceMap]":
        recorded = self.manifest.get("address_spaces")
        if recorded is None:
            return None
        return {int(pid): _json_mm(mm) for pid, mm in recorded.items()}

    def time(self) -> float:
        return float(self.manifest.get("time", 0))


def _json_mm(value) -> object:
    # JSON turns tuples into lists; an address space id must be hashable.
    return tuple(value) if isinstance(value, list) else value


def load_capture(path: str) -> Snapshot:
    """Read a capture file; OSError or ValueError where it is not one."""
    import json
    import tarfile
    import zlib

    files: Dict[str, bytes] = {}
    links: Dict[str, str] = {}
    manifest = None
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                if member.name == _MANIFEST:
                    manifest = json.loads(archive.extractfile(member).read().decode("utf-8"))
                elif member.name.startswith("proc/"):
                    relative = member.name[len("proc/"):]
                    if member.issym():
                        links[relative] = member.linkname
                    elif member.isfile():
                        files[relative] = archive.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, UnicodeError, ValueError) as error:
        raise ValueError("not a ps_mem capture: %s" % error) from error
    if not _valid_manifest(manifest):
        raise ValueError("not a ps_mem capture (no valid %s of format %d)"
                         % (_MANIFEST, _CAPTURE_FORMAT))
    return Snapshot(path, files, links, manifest)


def _valid_manifest(manifest: object) -> bool:
    def ints(values) -> bool:
        return all(type(value) is int for value in values)

    return (isinstance(manifest, dict)
            and manifest.get("format") == _CAPTURE_FORMAT
            and isinstance(manifest.get("pids"), list) and ints(manifest["pids"])
            and type(manifest.get("self")) in (int, type(None))
            and isinstance(manifest.get("errors", {}), dict)
            and ints(manifest.get("errors", {}).values())
            and isinstance(manifest.get("path_exists", {}), dict)
            and isinstance(manifest.get("users", {}), dict)
            and isinstance(manifest.get("address_spaces") or {}, dict)
            and isinstance(manifest.get("time", 0), (int, float)))


def capture(procfs: ProcFS, self_pid: "Optional[int]") -> Snapshot:
    """Everything any run would read from PROCFS now, held in memory."""
    if isinstance(procfs, Snapshot):
        return procfs  # a capture of a capture is the same capture
    files: Dict[str, bytes] = {}
    links: Dict[str, str] = {}
    errors: Dict[str, int] = {}
    path_exists: Dict[str, bool] = {}
    users: Dict[str, str] = {}

    def keep(relative: str, reader: "Callable[[str], object]", table: dict) -> object:
        try:
            table[relative] = value = reader(os.path.join(procfs.root, relative))
            return value
        except OSError as error:
            if error.errno != errno.ENOENT:
                errors[relative] = error.errno
            return None

    for name in ("sys/kernel/osrelease", "meminfo"):
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
    manifest = {
        "format": _CAPTURE_FORMAT, "ps_mem": VERSION, "time": procfs.time(),
        "self": self_pid, "pids": pids, "errors": errors, "path_exists": path_exists,
        "users": users, "address_spaces": None,
    }
    snapshot = Snapshot(procfs.root, files, links, manifest)
    if procfs.live:
        # What the kernel says of shared address spaces cannot be read back
        # from files: ask it now, for every process, and keep the answer.
        kernel = kernel_version(files.get("sys/kernel/osrelease", b""))
        samples = collect(snapshot, Options(), kernel, self_pid).samples
        exact = exact_address_spaces(samples)
        if exact is not None:
            manifest["address_spaces"] = {str(pid): mm for pid, mm in exact.items()}
    return snapshot


def write_capture(snapshot: Snapshot, path: str) -> int:
    """Write SNAPSHOT as a gzip-compressed tar; its size in bytes.  Unpacked,
    its proc/ folder is itself a proc root for --procfs (not for 3.14, which
    wants smaps beside smaps_rollup, where a capture keeps only the one it
    reads)."""
    import io
    import json
    import tarfile

    def add(archive, name, data=None, link=None):
        member = tarfile.TarInfo(name)
        member.mtime = int(snapshot.time())
        if link is not None:
            member.type = tarfile.SYMTYPE
            member.linkname = link
            archive.addfile(member)
        else:
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))

    manifest = json.dumps(snapshot.manifest, indent=1, sort_keys=True).encode("utf-8")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as archive:
        add(archive, _MANIFEST, manifest)
        if snapshot.self_pid() is not None:
            add(archive, "proc/self", link=str(snapshot.self_pid()))
        for relative, data in sorted(snapshot.files.items()):
            add(archive, "proc/" + relative, data)
        for relative, target in sorted(snapshot.links.items()):
            add(archive, "proc/" + relative, link=target)
    return os.path.getsize(path)


# ----------------------------------------------------------------------------
# Output
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


# Control characters from /proc (C0 including tab and newline, DEL, C1)
# print as "?", as ps does: whoever starts a process chooses its name, and
# ps_mem is run as root on a terminal that would obey escape sequences.
_UNPRINTABLE = {code: "?" for code in [*range(0x20), *range(0x7F, 0xA0)]}


def printable(text: str) -> str:
    # Most names hold no character of any kind Python will not print, and
    # the check is much cheaper than the translation.
    return text if text.isprintable() else text.translate(_UNPRINTABLE)


def display_name(program: ProgramUsage) -> str:
    name = printable(program.name)
    if program.count > 1:
        return "%s (%d)" % (name, program.count)
    return name


def rows(report: Report, options: Options) -> str:
    lines = []
    for program in report.programs:
        line = "%9s + %9s = %9s" % (
            human(program.private_kib), human(program.shared_kib), human(program.ram_kib))
        if options.show_swap:
            line += "   %9s" % human(program.swap_kib)
        lines.append("%s\t%s\n" % (line, display_name(program)))
    return "".join(lines)


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


def warnings(acc: Accuracy, options: Options, unreadable: int = 0) -> "List[str]":
    """The warnings for stderr, each a text ending in a newline."""
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
    if unreadable:
        # 3.14 leaves out processes it may not read without a word, so its
        # totals look complete when they are not.
        texts.append("Warning: %d %s could not be read (permission denied); "
                     "their memory is not included.\n"
                     % (unreadable, "process" if unreadable == 1 else "processes"))
    return texts


def json_document(report: Report, options: Options, acc: Accuracy, pss_seen: bool,
                  swap_pss_seen: bool, release: str, when: float) -> str:
    """--json: the report as one line of JSON (schema in README.md)."""
    import json

    def in_bytes(kib: float) -> int:
        return int(round(kib * 1024))

    document = {
        "ps_mem_version": VERSION,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when)),
        "kernel": release,
        "programs": [{
            "name": printable(program.name),
            "count": program.count,
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
        "warnings": [text.rstrip("\n") for text in warnings(acc, options, report.unreadable)],
    }
    return json.dumps(document) + "\n"


def exit_status(acc: Accuracy, options: Options) -> int:
    """-t fails when the number it printed (or did not) is not a true total."""
    if options.only_total:
        return 0 if (acc.swap if options.show_swap else acc.ram) == 2 else 1
    return 0


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

# Long options as 3.14 has them.  An abbreviation that matches any of these
# means what it meant in 3.14 (`--t` is --total, `--s` is ambiguous between
# --split-args and --swap), whatever newer options share its prefix.
_LEGACY_LONG = ("--help", "--version", "--split-args", "--total",
                "--discriminate-by-pid", "--swap")


def build_parser() -> "argparse.ArgumentParser":
    # Imported here: a run without arguments does not need it, and it is a
    # quarter of the start-up's time and memory.
    import argparse

    class Parser(argparse.ArgumentParser):
        def _get_option_tuples(self, option_string):  # argparse's prefix matching
            matches = super()._get_option_tuples(option_string)
            legacy = [match for match in matches if match[1] in _LEGACY_LONG]
            return legacy or matches

    parser = Parser(prog="ps_mem", description="Show program core memory usage.")
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
    parser.add_argument("-w", dest="watch", metavar="<N>", type=int,
                        help="Measure and show process memory every N seconds")
    # Additions since 3.14 stay out of --help and the usage line, which
    # scripts and habits rely on; README.md and the man page document them.
    parser.add_argument("--show-cmdline", dest="split_args", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("--procfs", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sort", choices=sorted(_SORT_KEYS), default="ram",
                        help=argparse.SUPPRESS)
    parser.add_argument("--reverse", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--top", metavar="N", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--group-by", choices=("program", "pid", "cmdline", "user", "cgroup"),
                        default="program", help=argparse.SUPPRESS)
    parser.add_argument("--capture", metavar="FILE", help=argparse.SUPPRESS)
    return parser


# 3.14's flags, as plain_options() reads them.
_PLAIN_FLAGS = {"-s": "split_args", "-t": "only_total", "-d": "by_pid", "-S": "show_swap"}


def plain_options(argv: "List[str]") -> "Optional[Options]":
    """The options of the arguments scripts and people pass most (3.14's
    flags, each alone; -p and -w with a valid value as the next argument),
    read as argparse reads them; None for any others.

    argparse (with re, gettext and enum, which it loads) is 2 MiB and 7 ms
    of a run: more than 3.14's whole lead on us in memory.  It still reads
    everything else, and answers help, usage and every error.
    """
    fields: Dict[str, object] = {}
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
            # which is left to argparse, as is 0 for -w.
            if not all(number and not number.strip("0123456789") for number in numbers):
                return None
            if arg == "-p":
                fields["pids"] = tuple(int(number) for number in numbers)
            elif int(value) > 0:
                fields["watch"] = int(value)
            else:
                return None
        else:
            return None
        position += 1
    return Options(**fields)  # type: ignore[arg-type]


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
            pids = tuple(int(pid) for pid in args.pids.split(","))
        except ValueError:
            parser.error("Invalid PID(s): %s" % args.pids)
    if args.watch is not None and args.watch <= 0:
        parser.error("Seconds must be positive! (%s)" % args.watch)
    if args.top is not None and args.top <= 0:
        parser.error("argument --top: must be a positive number of rows (%s)" % args.top)
    if args.group_by in ("user", "cgroup") and args.split_args:
        parser.error("--group-by %s cannot be combined with -s" % args.group_by)
    if args.capture is not None and args.watch is not None:
        parser.error("--capture takes one sample; it cannot be combined with -w")
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
    )


def _is_live_proc(root: str) -> bool:
    try:
        return os.path.samefile(root, default_proc_root())
    except OSError:
        return False


# A shell's status for a process that died by SIGINT (2 on every Linux).
EXIT_SIGINT = 128 + 2


class _Output:
    """stdout as 3.14 writes it: every piece flushed at once, so that a
    watching reader sees each sample as it is made.  A character the
    stream's encoding lacks becomes "?" instead of an error."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.binary = getattr(stream, "buffer", None)
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
        return ProcFS(default_proc_root(), live=True)
    if os.path.isfile(path):
        return load_capture(path)
    return ProcFS(path, live=_is_live_proc(path))


def run(options: Options, out: _Output, err) -> int:
    try:
        procfs = open_procfs(options.procfs)
    except (OSError, ValueError) as error:
        err.write("ps_mem: cannot read %s: %s\n" % (options.procfs, error))
        return 2
    if procfs.live and os.geteuid() != 0 and not options.pids:
        err.write("Sorry, root permission required, or specify pids with -p\n")
        return 1
    try:
        release = procfs.read_global("sys/kernel/osrelease")
    except OSError:
        err.write("Couldn't access %s\n"
                  "Only GNU/Linux and FreeBSD (with linprocfs) are supported\n"
                  % procfs.path(""))
        return 2
    kernel = kernel_version(release)
    release_text = release.decode("utf-8", "replace").strip()
    self_pid = os.getpid() if procfs.live else procfs.self_pid()
    if options.capture is not None:
        procfs = capture(procfs, self_pid)
        try:
            write_capture(procfs, options.capture)
        except OSError as error:
            err.write("ps_mem: cannot write %s: %s\n" % (options.capture, error))
            return 2

    if not options.only_total and not options.json:
        out.write(header(options))
    acc = None
    # Whether totals can be shown is learnt from the processes seen so far,
    # over all samples of a watch.
    pss_seen = swap_pss_seen = False
    unreadable = 0
    kcmp = KcmpHelper()
    try:
        while True:
            scan = collect(procfs, options, kernel, self_pid, kcmp=kcmp)
            if options.watch is None:
                kcmp.hang_up()
            report = aggregate(scan.samples, scan.unreadable, scan.address_spaces)
            unreadable = report.unreadable
            pss_seen = pss_seen or report.pss_seen
            swap_pss_seen = swap_pss_seen or report.swap_pss_seen
            report = select(report, options)
            if options.json:
                if acc is None:
                    # The document tells swap's accuracy whether or not -S
                    # asked for the column; warnings still follow -S.
                    acc = accuracy(procfs, kernel, self_pid, True)
                out.write(json_document(report, options, acc, pss_seen, swap_pss_seen,
                                        release_text, procfs.time()))
            elif options.only_total:
                out.write(only_total(options, pss_seen, swap_pss_seen, report))
            else:
                out.write(rows(report, options))
                out.write(footer(options, pss_seen, swap_pss_seen, report))
            if options.watch is None:
                break
            if not report.programs:
                if not options.json:
                    out.write("Process does not exist anymore.\n")
                break
            # Let this sample go before the next is taken: kept, it would
            # double a watch's memory at its peak.
            scan = report = None  # type: ignore[assignment]
            time.sleep(options.watch)
    except KeyboardInterrupt:
        if options.watch is None:
            raise
        # Ctrl-C is how a watch ends: finish normally.
    finally:
        kcmp.close()
    out.flush()

    if acc is None:
        acc = accuracy(procfs, kernel, self_pid, options.show_swap)
    err.write("".join(warnings(acc, options, unreadable)))
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


def _entry_point() -> None:
    status = main()
    if status == EXIT_SIGINT:
        import signal  # only now: its import is a twentieth of the start-up

        sys.stdout.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(status)


if __name__ == "__main__":
    _entry_point()
