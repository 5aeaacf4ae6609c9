"""Write fixture /proc trees on disk, for running ps_mem against.

A tree is a directory laid out like the part of /proc that ps_mem reads:

    ROOT/sys/kernel/osrelease    kernel release, e.g. "6.1.0-13-amd64"
    ROOT/meminfo                 read on 2.4 kernels only (Inact_ lines)
    ROOT/self -> PID             ps_mem's own pid: left out, and its smaps
                                 is the probe for the accuracy warnings
    ROOT/PID/cmdline             arguments, each ended by a NUL
    ROOT/PID/exe -> TARGET       a symlink; it may dangle (only the link is
                                 read), end in " (deleted)", hold any bytes
    ROOT/PID/status              "Name:\\t...", "PPid:\\t..." and the rest
    ROOT/PID/statm               pages: size resident shared text lib data dt
    ROOT/PID/smaps               one block per mapping
    ROOT/PID/smaps_rollup        Linux 4.14+: the blocks summed into one
    ROOT/PID/comm                the name, raw (2.6.33+: "modern" kernels)
    ROOT/PID/stat                pid, (name), state, ppid, ... start time

Everything is real files and symlinks, written as bytes, so a test can put
non-UTF-8 bytes anywhere.  Which files exist and which fields smaps has
follow a kernel profile (KERNELS); any file can also be left out, emptied,
cut short or replaced per process, to model old kernels, processes that
vanish mid-read, and files that cannot be read.

    tree = ProcTree(tmp_path / "proc", kernel="6.1")
    tree.add(1203, "bash", "/usr/bin/bash", ppid=1201,
             maps=program_maps("/usr/bin/bash", heap_kib=2400))
    tree.add(2, "kthreadd", None, ppid=0)          # kernel thread: no exe
    tree.add(777, "gone", "/usr/bin/gone", omit=("smaps_rollup", "statm"))

Memory is described as a list of mapping dicts (see mapping()), from which
smaps, smaps_rollup, statm and status's Vm* lines are all derived.  Pss is
kept exact in a mapping (a Fraction: shared pages divided among sharers)
and truncated to whole KiB only when printed, as the kernel does: once per
smaps block, but once for the whole sum in smaps_rollup.  That difference
is why ps_mem adds 0.5 KiB per Pss line it reads.
"""

import os
import shutil
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Union

Text = Union[str, bytes]

# A pid for ps_mem itself in every tree (the harness tells the reference
# about it through the `self` link).
SELF_PID = 31337
PYTHON = "/usr/bin/python3.11"

# ----------------------------------------------------------------------------
# Kernel profiles: which files exist and which fields smaps shows
# ----------------------------------------------------------------------------

# smaps fields in the kernel's order, by the release that settled them.
# Pss came in 2.6.25, Swap in 2.6.26, SwapPss and *_Hugetlb in 4.3,
# Pss_Dirty in 6.0; Pss_Anon/File/Shmem are in smaps_rollup only (5.3).
SMAPS_2_6_18 = ("Size", "Rss", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                "Private_Dirty")
SMAPS_3_10 = ("Size", "Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean",
              "Private_Dirty", "Referenced", "Anonymous", "AnonHugePages", "Swap",
              "KernelPageSize", "MMUPageSize", "Locked", "VmFlags")
SMAPS_4_4 = ("Size", "Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean",
             "Private_Dirty", "Referenced", "Anonymous", "AnonHugePages",
             "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "KernelPageSize",
             "MMUPageSize", "Locked", "VmFlags")
SMAPS_6_1 = ("Size", "KernelPageSize", "MMUPageSize", "Rss", "Pss", "Pss_Dirty",
             "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
             "Anonymous", "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped",
             "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "Locked",
             "THPeligible", "VmFlags")
ROLLUP_6_1 = ("Rss", "Pss", "Pss_Dirty", "Pss_Anon", "Pss_File", "Pss_Shmem",
              "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
              "Anonymous", "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped",
              "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "Locked")

# smaps_rollup (4.14) before and after 5.3 split Pss into its parts, for
# the --system trees of each kernel generation.
ROLLUP_4_19 = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty",
               "Referenced", "Anonymous", "LazyFree", "AnonHugePages", "ShmemPmdMapped",
               "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "Locked")
ROLLUP_5_4 = ("Rss", "Pss", "Pss_Anon", "Pss_File", "Pss_Shmem", "Shared_Clean",
              "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced", "Anonymous",
              "LazyFree", "AnonHugePages", "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb",
              "Private_Hugetlb", "Swap", "SwapPss", "Locked")
SMAPS_5_4 = tuple(field for field in SMAPS_6_1 if field != "Pss_Dirty")
SMAPS_2_6_32 = ("Size", "Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                "Private_Dirty", "Referenced", "Swap", "KernelPageSize", "MMUPageSize")

MEMINFO_MODERN = b"""\
MemTotal:        8049132 kB
MemFree:          911400 kB
MemAvailable:    5327348 kB
Buffers:          218556 kB
Cached:          4196352 kB
SwapCached:         1024 kB
Active:          3154724 kB
Inactive:        3211336 kB
SwapTotal:       2097148 kB
SwapFree:        2001912 kB
Shmem:            310220 kB
HugePages_Total:       0
Hugepagesize:       2048 kB
"""
# Mainline 2.4 (and 2.6): "Inactive:", which must not count as "Inact_".
MEMINFO_2_4 = b"""\
        total:    used:    free:  shared: buffers:  cached:
Mem:  261709824 253247488   8462336        0 12910592 160038912
Swap: 534601728   1589248 533012480
MemTotal:       255576 kB
MemFree:          8264 kB
MemShared:           0 kB
Buffers:         12608 kB
Cached:         154748 kB
SwapCached:       1540 kB
Active:          83476 kB
Inactive:       134252 kB
HighTotal:           0 kB
HighFree:            0 kB
LowTotal:       255576 kB
LowFree:          8264 kB
SwapTotal:      522072 kB
SwapFree:       520520 kB
"""
# Red Hat's rmap 2.4 kernels: Inact_dirty/Inact_clean/Inact_target.
MEMINFO_2_4_RMAP = MEMINFO_2_4.replace(
    b"Inactive:       134252 kB\n",
    b"ActiveAnon:      41720 kB\nActiveCache:     41756 kB\nInact_dirty:     96644 kB\n"
    b"Inact_laundry:   24880 kB\nInact_clean:     12728 kB\nInact_target:    43688 kB\n")


class Kernel(NamedTuple):
    osrelease: str
    smaps: Optional[Sequence[str]]  # smaps fields; None: no smaps file
    rollup: Optional[Sequence[str]]  # smaps_rollup fields; None: no such file
    status: str  # "modern", "2.6" or "2.4": see status_text()
    meminfo: bytes


KERNELS: Dict[str, Kernel] = {
    "6.1": Kernel("6.1.0-13-amd64", SMAPS_6_1, ROLLUP_6_1, "modern", MEMINFO_MODERN),
    "4.4": Kernel("4.4.0-210-generic", SMAPS_4_4, None, "modern", MEMINFO_MODERN),
    "3.10": Kernel("3.10.0-1160.el7.x86_64", SMAPS_3_10, None, "modern", MEMINFO_MODERN),
    "2.6.18": Kernel("2.6.18-419.el5", SMAPS_2_6_18, None, "2.6", MEMINFO_2_4),
    "2.6.9": Kernel("2.6.9-89.ELsmp", None, None, "2.6", MEMINFO_2_4),
    "2.4": Kernel("2.4.20-8", None, None, "2.4", MEMINFO_2_4),
    "2.4-rmap": Kernel("2.4.21-63.ELsmp", None, None, "2.4", MEMINFO_2_4_RMAP),
    # For the --system trees (tests/test_collection_system.py), which bring
    # each generation's own meminfo.
    "6.18": Kernel("6.18.44-fc-v1147", SMAPS_6_1, ROLLUP_6_1, "modern", MEMINFO_MODERN),
    "5.15": Kernel("5.15.0-130-generic", SMAPS_5_4, ROLLUP_5_4, "modern", MEMINFO_MODERN),
    "5.4": Kernel("5.4.0-204-generic", SMAPS_5_4, ROLLUP_5_4, "modern", MEMINFO_MODERN),
    "4.19": Kernel("4.19.0-27-amd64", SMAPS_4_4, ROLLUP_4_19, "modern", MEMINFO_MODERN),
    "2.6.32": Kernel("2.6.32-754.el6.x86_64", SMAPS_2_6_32, None, "2.6", MEMINFO_MODERN),
}

# ----------------------------------------------------------------------------
# Mappings and the smaps text made from them
# ----------------------------------------------------------------------------

Map = Dict[str, object]


def mapping(path: str = "", kib: int = 4, perms: str = "rw-p", *, private: int = 0,
            shared: int = 0, sharers: int = 1, dirty: bool = False, swap: int = 0,
            swap_pss: Optional[Fraction] = None, private_hugetlb: int = 0,
            shared_hugetlb: int = 0, start: Optional[int] = None, offset: int = 0,
            inode: Optional[int] = None) -> Map:
    """One mapping (sizes in KiB).  `shared` KiB are resident and mapped by
    `sharers` processes, so this one's Pss has shared/sharers of them.
    Hugetlb pages are outside Rss and Pss, as in the kernel."""
    rss = private + shared
    anonymous = not path or path in ("[heap]", "[stack]")
    pss = Fraction(private) + Fraction(shared, sharers)
    return {
        "start": start, "perms": perms, "offset": offset,
        "dev": "00:00" if anonymous else "08:01",
        "inode": 0 if anonymous else (inode if inode is not None else _inode(path)),
        "path": path,
        "Size": kib, "KernelPageSize": 2048 if private_hugetlb or shared_hugetlb else 4,
        "Rss": rss, "Pss": pss, "Pss_Dirty": pss if dirty else 0,
        "Shared_Clean": 0 if dirty else shared, "Shared_Dirty": shared if dirty else 0,
        "Private_Clean": 0 if dirty else private, "Private_Dirty": private if dirty else 0,
        "Referenced": rss, "Anonymous": private if anonymous else 0,
        "Shared_Hugetlb": shared_hugetlb, "Private_Hugetlb": private_hugetlb,
        "Swap": swap, "SwapPss": Fraction(swap) if swap_pss is None else swap_pss,
    }


def _inode(path: str) -> int:
    return 100000 + sum(path.encode("utf-8", "surrogateescape")) * 7 % 900000


def _kind(path: str) -> str:
    """Which Pss_* part of smaps_rollup a mapping counts in."""
    if not path or path.startswith("["):
        return "Pss_Anon"
    if path.startswith(("/dev/shm/", "/SYSV", "/memfd:")):
        return "Pss_Shmem"
    return "Pss_File"


def _vmflags(item: Map) -> str:
    perms = str(item["perms"])
    flags = [flag for flag, on in (("rd", perms[0] == "r"), ("wr", perms[1] == "w"),
                                   ("ex", perms[2] == "x"), ("sh", perms[3] == "s")) if on]
    flags += ["mr", "mw", "me"]
    if item["KernelPageSize"] != 4:
        flags += ["ht"]
    elif perms[1] == "w" and perms[3] == "p":
        flags += ["ac"]
    return " ".join(flags)


def _field_line(key: str, value: object) -> str:
    if key == "VmFlags":
        return "VmFlags: %s \n" % value  # the kernel leaves a space at the end
    if key == "THPeligible":
        return "THPeligible:    %d\n" % value
    # Pss is exact in a mapping: the kernel prints it truncated to whole KiB,
    # in a column of 8 after a 16-wide label ("Private_Hugetlb: %7lu").
    label = key + ":" if len(key) < 15 else key + ": "
    return "%-16s%*d kB\n" % (label, 24 - max(len(label), 16), int(value))


def _header_line(start: int, end: int, perms: str, offset: int, dev: str, inode: int,
                 path: Text) -> bytes:
    # As the kernel's show_map_vma(): the name, if any, starts at column 73.
    line = ("%08x-%08x %s %08x %s %d " % (start, end, perms, offset, dev, inode)).encode()
    if path:
        line = line.ljust(72) + b" " + os.fsencode(path)
    return line + b"\n"


def _placed(maps: Sequence[Map]) -> List[Map]:
    """The mappings with addresses: where a mapping has no `start`, it
    follows the previous one."""
    placed, cursor = [], 0x55D1C6A6B000
    for item in maps:
        start = item["start"] if item.get("start") is not None else cursor
        placed.append(dict(item, start=start, end=start + int(item["Size"]) * 1024))
        cursor = placed[-1]["end"]
    return placed


def smaps_text(maps: Sequence[Map], fields: Sequence[str] = SMAPS_6_1) -> bytes:
    """/proc/PID/smaps: a header line and the `fields` for each mapping."""
    out = []
    for item in _placed(maps):
        out.append(_header_line(item["start"], item["end"], item["perms"], item["offset"],
                                item["dev"], item["inode"], item["path"]))
        values = dict(item, MMUPageSize=item["KernelPageSize"], LazyFree=0, AnonHugePages=0,
                      ShmemPmdMapped=0, FilePmdMapped=0, Locked=0, THPeligible=0,
                      VmFlags=_vmflags(item))
        out.append("".join(_field_line(key, values.get(key, 0)) for key in fields).encode())
    return b"".join(out)


def rollup_text(maps: Sequence[Map], fields: Sequence[str] = ROLLUP_6_1) -> bytes:
    """/proc/PID/smaps_rollup: the kernel sums exact values over all
    mappings and truncates each sum once, so its Pss can exceed the sum of
    smaps's truncated Pss lines."""
    placed = _placed(maps)
    sums: Dict[str, Fraction] = {}
    for item in placed:
        for key in fields:
            if key in item and not isinstance(item[key], str):
                sums[key] = sums.get(key, 0) + item[key]
        sums[_kind(str(item["path"]))] = sums.get(_kind(str(item["path"])), 0) + item["Pss"]
    start = min((item["start"] for item in placed), default=0)
    end = max((item["end"] for item in placed), default=0)
    out = _header_line(start, end, "---p", 0, "00:00", 0, "[rollup]")
    return out + "".join(_field_line(key, sums.get(key, 0)) for key in fields).encode()


def statm_text(maps: Sequence[Map], page_kib: int = 4) -> bytes:
    """/proc/PID/statm, in pages: size resident shared text lib data dt.
    Shared is the file-backed and shmem part of resident, as since 2.6.10."""
    size = sum(int(item["Size"]) for item in maps)
    resident = sum(int(item["Rss"]) for item in maps)
    shared = sum(int(item["Rss"]) for item in maps if _kind(str(item["path"])) != "Pss_Anon")
    text = sum(int(item["Size"]) for item in maps[:2])
    data = sum(int(item["Size"]) for item in maps if _kind(str(item["path"])) == "Pss_Anon")
    pages = [size, resident, shared, text, 0, data, 0]
    return (" ".join(str(kib // page_kib) for kib in pages) + "\n").encode()


COMMON_LIBS = ("/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libm.so.6",
               "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
               "/usr/lib/x86_64-linux-gnu/libselinux.so.1",
               "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")


def program_maps(exe: str, *, heap_kib: int, libs: Sequence[str] = COMMON_LIBS,
                 lib_kib: int = 96, sharers: int = 6, swap_kib: int = 0,
                 swap_sharers: int = 1, extra: Iterable[Map] = ()) -> List[Map]:
    """A typical process's maps: its executable and each library as four
    segments (r--p, r-xp, r--p relro, rw-p data), heap, anonymous memory,
    `extra` mappings, stack, vvar and vdso.  Library text is shared with
    `sharers` processes; heap_kib is private, with swap_kib of it swapped
    out (shared among `swap_sharers` after a fork)."""
    maps = [mapping(exe, 16, "r--p", start=0x55D1C6A6B000, shared=16, sharers=sharers),
            mapping(exe, 120, "r-xp", offset=0x4000, shared=112, sharers=sharers),
            mapping(exe, 36, "r--p", offset=0x22000, shared=36, sharers=sharers),
            mapping(exe, 8, "rw-p", offset=0x2B000, private=8, dirty=True),
            mapping("[heap]", heap_kib + swap_kib, private=heap_kib, dirty=True,
                    swap=swap_kib, swap_pss=Fraction(swap_kib, swap_sharers))]
    start = 0x7F3C1A000000
    for lib in libs:
        maps += [mapping(lib, lib_kib // 4, "r--p", start=start, shared=lib_kib // 4,
                         sharers=sharers),
                 mapping(lib, lib_kib, "r-xp", offset=lib_kib // 4 * 1024,
                         shared=lib_kib - 4, sharers=sharers + 1),
                 mapping(lib, 16, "r--p", private=4, shared=12, sharers=sharers, dirty=True),
                 mapping(lib, 8, "rw-p", private=8, dirty=True)]
        start += 0x200000
    maps += list(extra)
    maps += [mapping("[stack]", 132, start=0x7FFD5B5D8000, private=40, dirty=True),
             mapping("[vvar]", 16, "r--p", start=0x7FFD5B5FB000),
             mapping("[vdso]", 8, "r-xp", shared=8, sharers=200)]
    return maps


# ----------------------------------------------------------------------------
# status
# ----------------------------------------------------------------------------


def status_text(style: str, name: Text, pid: int, ppid: int, maps: Sequence[Map],
                uids: Sequence[int] = (0, 0, 0, 0)) -> bytes:
    """/proc/PID/status in the field order of a "modern" (4.x-6.x), "2.6"
    or "2.4" kernel.  Name is written as given (the kernel escapes only
    "\\n" and "\\\\" in it, so a test writes those itself if it wants them).
    UIDS: real, effective, saved and filesystem uid.  Kernel threads (no
    maps) have no Vm* lines."""
    uid_line = "Uid:\t%d\t%d\t%d\t%d" % tuple(uids)
    vm = []
    if maps:
        size = sum(int(item["Size"]) for item in maps)
        rss = sum(int(item["Rss"]) for item in maps)
        swap = sum(int(item["Swap"]) for item in maps)
        vm = [("VmPeak", size + 512), ("VmSize", size), ("VmLck", 0), ("VmHWM", rss + 64),
              ("VmRSS", rss), ("VmData", rss // 2), ("VmStk", 132), ("VmExe", 120),
              ("VmLib", size // 3), ("VmPTE", 48)]
        if style == "modern":
            vm.insert(3, ("VmPin", 0))
            vm += [("VmSwap", swap), ("HugetlbPages", 0)]
        elif style == "2.4":
            vm = [item for item in vm if item[0] not in ("VmPeak", "VmHWM", "VmPTE")]
    vm_lines = ["%s:\t%8d kB" % item for item in vm]
    if style == "modern":
        lines = ["Umask:\t0022", "State:\tS (sleeping)", "Tgid:\t%d" % pid, "Ngid:\t0",
                 "Pid:\t%d" % pid, "PPid:\t%d" % ppid, "TracerPid:\t0",
                 uid_line, "Gid:\t0\t0\t0\t0", "FDSize:\t64", "Groups:\t",
                 "NStgid:\t%d" % pid, "NSpid:\t%d" % pid, "NSpgid:\t%d" % pid,
                 "NSsid:\t%d" % pid] + vm_lines + [
                 "CoreDumping:\t0", "THP_enabled:\t1", "Threads:\t1", "SigQ:\t0/31459",
                 "SigPnd:\t0000000000000000", "ShdPnd:\t0000000000000000",
                 "SigBlk:\t0000000000000000", "SigIgn:\t0000000000001000",
                 "SigCgt:\t0000000180004002", "CapInh:\t0000000000000000",
                 "CapPrm:\t000001ffffffffff", "CapEff:\t000001ffffffffff",
                 "CapBnd:\t000001ffffffffff", "CapAmb:\t0000000000000000", "NoNewPrivs:\t0",
                 "Seccomp:\t0", "Seccomp_filters:\t0",
                 "Speculation_Store_Bypass:\tthread vulnerable",
                 "Cpus_allowed:\t3", "Cpus_allowed_list:\t0-1",
                 "Mems_allowed:\t00000000,00000001", "Mems_allowed_list:\t0",
                 "voluntary_ctxt_switches:\t153", "nonvoluntary_ctxt_switches:\t4"]
    elif style == "2.6":
        lines = ["State:\tS (sleeping)", "SleepAVG:\t98%", "Tgid:\t%d" % pid,
                 "Pid:\t%d" % pid, "PPid:\t%d" % ppid, "TracerPid:\t0",
                 uid_line, "Gid:\t0\t0\t0\t0", "FDSize:\t32", "Groups:\t0 1 2 3 4 6 10"
                 ] + vm_lines + [
                 "StaBrk:\t0a2cc000 kB", "Brk:\t0a2ed000 kB", "StaStk:\tbfe3a7a0 kB",
                 "Threads:\t1", "SigQ:\t0/8191", "SigPnd:\t0000000000000000",
                 "ShdPnd:\t0000000000000000", "SigBlk:\t0000000000000000",
                 "SigIgn:\t0000000000384004", "SigCgt:\t000000004b813efb",
                 "CapInh:\t0000000000000000", "CapPrm:\t00000000fffffeff",
                 "CapEff:\t00000000fffffeff", "Cpus_allowed:\t00000003",
                 "Mems_allowed:\t1"]
    elif style == "2.4":
        # Shorter: no Tgid/Ngid/NS* lines, fewer Vm* lines, no Cpus_allowed.
        lines = ["State:\tS (sleeping)", "Tgid:\t%d" % pid, "Pid:\t%d" % pid,
                 "PPid:\t%d" % ppid, "TracerPid:\t0", uid_line, "Gid:\t0\t0\t0\t0",
                 "FDSize:\t32", "Groups:\t0 1 2 3 4 6 10 "] + vm_lines + [
                 "SigPnd:\t0000000000000000", "SigBlk:\t0000000000000000",
                 "SigIgn:\t8000000000384004", "SigCgt:\t000000004b813efb",
                 "CapInh:\t0000000000000000", "CapPrm:\t00000000fffffeff",
                 "CapEff:\t00000000fffffeff"]
    else:
        raise ValueError("unknown status style %r" % style)
    name_bytes = name if isinstance(name, bytes) else name.encode()
    return b"Name:\t" + name_bytes + b"\n" + "".join(line + "\n" for line in lines).encode()


# ----------------------------------------------------------------------------
# The tree
# ----------------------------------------------------------------------------

PER_PID_FILES = ("cmdline", "exe", "status", "statm", "smaps", "smaps_rollup", "comm", "stat")


def comm_text(name: Text) -> bytes:
    """/proc/PID/comm: the task's name, raw, with a newline (status shows
    it with "\\n" and "\\\\" escaped, as the test wrote it for status)."""
    raw = name if isinstance(name, bytes) else name.encode()
    return raw.replace(b"\\n", b"\n").replace(b"\\\\", b"\\") + b"\n"


def stat_text(pid: int, name: Text, ppid: int, maps: Sequence[Map], start: int) -> bytes:
    """/proc/PID/stat as Linux 6.x writes it: 52 fields, the name raw in
    parentheses; START is field 22, in clock ticks since boot."""
    raw = comm_text(name)[:-1]
    size = sum(int(item["Size"]) for item in maps) * 1024
    rss = sum(int(item["Rss"]) for item in maps) // 4
    fields = [ppid, pid, pid, 0, -1, 4194560, 120, 0, 0, 0, 2, 1, 0, 0, 20, 0, 1, 0,
              start, size, rss, 18446744073709551615] + [0] * 19 + [0, 0, 0, 0, 0, 0, 0, 0]
    rest = " ".join(str(field) for field in fields[:49])
    return b"%d (%s) S %s\n" % (pid, raw, rest.encode())


def cmdline_bytes(args: Sequence[Text]) -> bytes:
    """The kernel's cmdline: every argument followed by a NUL (a program
    that rewrites its argv, like sshd, may leave a different shape: pass
    `replace={"cmdline": ...}` for that)."""
    return b"".join((arg if isinstance(arg, bytes) else arg.encode()) + b"\0" for arg in args)


class ProcTree:
    """A fixture proc root, written as processes are added.

    `omit` leaves files out of every pid's directory (e.g. ("smaps",) for a
    kernel built without it) and can hold "osrelease" or "meminfo" to leave
    out those global files.
    """

    def __init__(self, root: os.PathLike, kernel: str = "6.1", *,
                 omit: Iterable[str] = (), self_pid: Optional[int] = SELF_PID,
                 meminfo: Optional[bytes] = None) -> None:
        self.root = Path(root)
        self.kernel = KERNELS[kernel]
        self.omit = frozenset(omit)
        self.pids: List[int] = []  # every pid added but self, in order of adding
        self.self_pid = self_pid
        # For the tests: the pids that `-p` names, and the pids whose files
        # a test made vanish in a way that crashes 3.14 (see trees.py).
        self.probe_pids: List[int] = []
        self.vanished: List[int] = []
        self.root.mkdir(parents=True, exist_ok=True)
        if "osrelease" not in self.omit:
            (self.root / "sys" / "kernel").mkdir(parents=True, exist_ok=True)
            (self.root / "sys" / "kernel" / "osrelease").write_text(self.kernel.osrelease + "\n")
        if "meminfo" not in self.omit:
            (self.root / "meminfo").write_bytes(meminfo or self.kernel.meminfo)
        # Non-numeric entries, as /proc has them: both tools must skip these.
        (self.root / "uptime").write_text("35231.60 68744.18\n")
        (self.root / "net").mkdir(exist_ok=True)
        if self_pid is not None:
            # ps_mem as a script: comm is the script's name, exe the python.
            self._write_process(self_pid, "ps_mem", PYTHON,
                                cmdline=[PYTHON, "/usr/bin/ps_mem"], ppid=1203,
                                maps=program_maps(PYTHON, heap_kib=9000, lib_kib=400))
            os.symlink(str(self_pid), self.root / "self")

    def add(self, pid: int, name: Text, exe: Optional[Text], *,
            cmdline: Optional[Sequence[Text]] = None, ppid: int = 1,
            maps: Sequence[Map] = (), statm: Optional[Sequence[int]] = None,
            omit: Iterable[str] = (), empty: Iterable[str] = (),
            truncate: Optional[Mapping[str, int]] = None,
            replace: Optional[Mapping[str, bytes]] = None,
            status_style: Optional[str] = None, uids: Sequence[int] = (0, 0, 0, 0),
            start: Optional[int] = None) -> int:
        """Add process `pid` and return it.

        name:     status's Name (the kernel's comm, at most 15 bytes there)
        exe:      the exe link's target; None for none (a kernel thread)
        cmdline:  the arguments; default [exe], and none for a kernel thread
        maps:     mapping dicts, from which smaps, smaps_rollup, statm and
                  status's Vm* lines are written
        statm:    pages (size, resident, shared, ...) instead of from maps
        omit:     files to leave out ("exe", "cmdline", "status", "statm",
                  "smaps", "smaps_rollup"): a process gone between reads
        empty:    files to write empty
        truncate: {file: n}: keep only the first n bytes
        replace:  {file: bytes}: write exactly this
        uids:     status's Uid line: real, effective, saved, filesystem
        start:    when it started (stat's field 22, clock ticks since boot);
                  default 1000 + pid
        """
        self._write_process(pid, name, exe, cmdline=cmdline, ppid=ppid, maps=maps,
                            statm=statm, omit=omit, empty=empty, truncate=truncate,
                            replace=replace, status_style=status_style, uids=uids,
                            start=start)
        self.pids.append(pid)
        return pid

    def _write_process(self, pid: int, name: Text, exe: Optional[Text], *,
                       cmdline: Optional[Sequence[Text]], ppid: int, maps: Sequence[Map],
                       statm: Optional[Sequence[int]] = None, omit: Iterable[str] = (),
                       empty: Iterable[str] = (), truncate: Optional[Mapping[str, int]] = None,
                       replace: Optional[Mapping[str, bytes]] = None,
                       status_style: Optional[str] = None,
                       uids: Sequence[int] = (0, 0, 0, 0), start: Optional[int] = None) -> None:
        kernel = self.kernel
        if cmdline is None:
            cmdline = [exe] if exe is not None else []
        contents: Dict[str, Optional[bytes]] = {
            "cmdline": cmdline_bytes(cmdline),
            "status": status_text(status_style or kernel.status, name, pid, ppid, maps, uids),
            "statm": (" ".join(map(str, statm)) + "\n").encode() if statm is not None
            else statm_text(maps),
            "smaps": smaps_text(maps, kernel.smaps) if kernel.smaps else None,
            "smaps_rollup": rollup_text(maps, kernel.rollup) if kernel.rollup else None,
            # comm came in 2.6.33: the "modern" kernels have it.
            "comm": comm_text(name) if (status_style or kernel.status) == "modern" else None,
            "stat": stat_text(pid, name, ppid, maps, start if start is not None else 1000 + pid),
        }
        if not maps:
            # No address space (a kernel thread): smaps is empty, and the
            # live smaps_rollup fails with ESRCH, which no file can model.
            contents["smaps"] = contents["smaps"] and b""
            contents["smaps_rollup"] = contents["smaps_rollup"] and b""
        for file in set(self.omit) | set(omit):
            contents[file] = None
        for file in empty:
            contents[file] = b""
        for file, size in (truncate or {}).items():
            contents[file] = contents[file][:size]
        contents.update(replace or {})

        directory = self.root / str(pid)
        directory.mkdir()
        for file, data in contents.items():
            if data is not None:
                (directory / file).write_bytes(data)
        if exe is not None and "exe" not in set(self.omit) | set(omit):
            # Bytes on both sides: the target may hold any bytes but NUL.
            os.symlink(os.fsencode(exe), os.fsencode(directory / "exe"))

    def real_file(self, path: str) -> str:
        """Create a real file for a process to name (an executable that was
        replaced on disk, say), beside the tree, and return its absolute
        path; `path` is where it would be on the live system."""
        real = self.root.parent / (self.root.name + "-files") / path.lstrip("/")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_bytes(b"\x7fELF")
        return str(real)

    def remove(self, pid: int) -> None:
        """Take a process out of the tree, as if it had exited."""
        shutil.rmtree(self.root / str(pid))
        self.pids.remove(pid)
