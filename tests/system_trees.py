"""Fixture proc trees for --system: one machine, as each kernel generation
shows it.

A tree holds what the ledger reads: `meminfo` (a generation's own text, from
tests/data/system/, or one written here), the processes' smaps_rollup or
smaps (with that generation's fields: Pss_Anon, Pss_File and Pss_Shmem from
5.3), `sysvipc/shm` (with rss and swap from 3.10), and `ps_mem-system.json`,
the tmpfs mounts' use as statvfs answered and zram's, which ps_mem keeps in a
capture beside the proc files.

The processes are the same in every generation, with sizes in KiB chosen so
that each sum can be worked out by hand:

    pid  program    memory                                   Pss parts (anon/file/shmem)
    100  worker     exe 100 shared by 2, heap 5000,          5000 / 50 / 2048
                    /dev/shm/cache 4096 shared by 2
    101  worker     the same with a heap of 3000             3000 / 50 / 2048
    200  clone      exe 200 shared by 2, heap 1000           1000 / 100 / 0
    201  clone      the same text as 200 (3.14's CLONE_VM rule: counted once)
    300  postgres   exe 400 private, heap 2000, a SysV       2000 / 400 / 6144
                    segment 8192 with 6144 resident, and
                    a shared hugetlb mapping of 2048 where
                    the kernel has *_Hugetlb lines (4.3)
                    and meminfo's pool has pages in use
    400  garbled    a memory file no kernel writes: not read
  31337  ps_mem     heap 3000, exe 1000 shared by 4          3000 / 250 / 0

The report's total is then 12197 (worker: 7098.5 + 5098.5) + 1100.5 (clone)
+ 10592.5 (postgres, its hugetlb included) = 23890 KiB, of which 11000 anon,
600 file, 10240 shmem, 2048 hugetlb and 2 KiB of rounding (0.5 per Pss line,
the clones' halved).  Without the hugetlb mapping it is 21842 KiB.
"""

import json
import os
import re
from pathlib import Path
from typing import Dict, List, Optional

from tests.procfs_builder import PYTHON, ProcTree, mapping

DATA = Path(__file__).resolve().parent / "data" / "system"
KIB = 1024
MIB = 1024 * KIB
SELF = 31337

# Generation -> the kernel profile of tests/procfs_builder.py and the
# meminfo fixture of that generation.
GENERATIONS = {
    "2.4": ("2.4", "meminfo-2.4"),
    "2.6.18": ("2.6.18", "meminfo-2.6.18"),
    "2.6.32": ("2.6.32", "meminfo-2.6.32"),
    "3.10": ("3.10", "meminfo-3.10"),
    "4.19": ("4.19", "meminfo-4.19"),
    "5.4": ("5.4", "meminfo-5.4"),
    "5.15": ("5.15", "meminfo-5.15"),
    "6.1": ("6.1", "meminfo-6.1"),
    "6.18": ("6.18", "meminfo-6.18"),
}
# Generations whose smaps_rollup splits Pss, whose smaps has Pss at all,
# and whose smaps has the *_Hugetlb lines (4.3).
SPLIT = {"5.4", "5.15", "6.1", "6.18"}
WITH_PSS = SPLIT | {"2.6.32", "3.10", "4.19"}
WITH_HUGETLB = SPLIT | {"4.19"}

# The record of the mounts' use (ps_mem-system.json): /dev/shm holds the
# worker's 4096 KiB file and another 4096 KiB; a tmpfs with no size limit,
# whose use statvfs cannot tell; zram with 1 MiB.
SYSTEM_RECORD = {
    "mounts": [
        {"mount_point": "/dev/shm", "fs_type": "tmpfs", "device": "0:23",
         "used_bytes": 8192 * KIB, "size_bytes": 4096 * MIB, "namespace_pid": None},
        {"mount_point": "/run", "fs_type": "tmpfs", "device": "0:24",
         "used_bytes": 1024 * KIB, "size_bytes": 800 * MIB, "namespace_pid": None},
        {"mount_point": "/mnt/scratch", "fs_type": "tmpfs", "device": "0:40",
         "used_bytes": None, "size_bytes": None, "namespace_pid": None},
    ],
    "ramfs": [],
    "zram_used_bytes": {"zram0": MIB},
}
# Two segments: postgres's (key 5432001, attached once, 6144 KiB of its
# 8192 resident), and one whose creator exited (4096 KiB, nothing attached).
SYSVIPC_3_10 = (
    b"       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid"
    b"  cgid      atime      dtime      ctime                   rss                  swap\n"
    b"   5432001      32769   600               8388608   300   300      1   105   112   105"
    b"   112 1796288637          0 1796288637               6291456                     0\n"
    b"         0      32770   600               4194304   999   999      0     0     0     0"
    b"     0 1796288637 1796288637 1796288637               4194304                     0\n")
SYSVIPC_2_6 = (
    b"       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid"
    b"      atime      dtime      ctime\n"
    b"   5432001      32769   600    8388608   300   300      1   105   112   105   112"
    b" 1304962654          0 1304962654\n"
    b"         0      32770   600    4194304   999   999      0     0     0     0     0"
    b" 1304962654 1304962654 1304962654\n")

# A meminfo of Linux 6.1's fields with round numbers, for the ledger worked
# out by hand (tests/test_collection_system.py).
MEMINFO_BY_HAND = b"""\
MemTotal:        1000000 kB
MemFree:          400000 kB
MemAvailable:     650000 kB
Buffers:           20000 kB
Cached:           300000 kB
SwapCached:            0 kB
AnonPages:         15000 kB
Mapped:            12000 kB
Shmem:             40000 kB
KReclaimable:      30000 kB
Slab:              50000 kB
SReclaimable:      25000 kB
SUnreclaim:        25000 kB
KernelStack:        3000 kB
PageTables:         2000 kB
SecPageTables:         0 kB
Bounce:                0 kB
WritebackTmp:          0 kB
VmallocTotal:   34359738367 kB
VmallocUsed:        8000 kB
Percpu:             1000 kB
Zswap:                 0 kB
HugePages_Total:       4
HugePages_Free:        2
HugePages_Rsvd:        0
HugePages_Surp:        0
Hugepagesize:       2048 kB
Hugetlb:            8192 kB
"""


def meminfo_of(generation: str) -> bytes:
    return (DATA / GENERATIONS[generation][1]).read_bytes()


def pool_in_use(meminfo: bytes) -> bool:
    """Whether MEMINFO's hugetlb pool has pages in use."""
    counts = dict(re.findall(rb"^(HugePages_Total|HugePages_Free):\s+(\d+)$", meminfo, re.M))
    return int(counts.get(b"HugePages_Total", 0)) > int(counts.get(b"HugePages_Free", 0))


def maps_hugetlb(generation: str, meminfo: Optional[bytes] = None) -> bool:
    """Whether postgres maps hugetlb pages in machine(GENERATION, MEMINFO)."""
    return generation in WITH_HUGETLB and pool_in_use(meminfo or meminfo_of(generation))


def machine(root: Path, generation: str, meminfo: Optional[bytes] = None,
            record: Optional[Dict] = SYSTEM_RECORD, sysvipc: Optional[bytes] = None
            ) -> ProcTree:
    """The machine of the module's docstring as GENERATION shows it, at
    ROOT, with MEMINFO (default: the generation's fixture), RECORD as its
    ps_mem-system.json (None: no such file) and SYSVIPC as its sysvipc/shm
    (default: the generation's format; b"": none)."""
    profile = GENERATIONS[generation][0]
    tree = ProcTree(root, profile, self_pid=None, meminfo=meminfo or meminfo_of(generation))
    hugetlb = maps_hugetlb(generation, meminfo)
    for pid, heap in ((100, 5000), (101, 3000)):
        tree.add(pid, "worker", "/usr/bin/worker", ppid=1, maps=[
            mapping("/usr/bin/worker", 100, "r-xp", shared=100, sharers=2),
            mapping("[heap]", heap, private=heap, dirty=True),
            mapping("/dev/shm/cache", 4096, "rw-s", shared=4096, sharers=2, dirty=True),
        ])
    for pid in (200, 201):
        tree.add(pid, "clone", "/usr/bin/clone", ppid=1, maps=[
            mapping("/usr/bin/clone", 200, "r-xp", shared=200, sharers=2),
            mapping("[heap]", 1000, private=1000, dirty=True),
        ])
    postgres: List[Dict[str, object]] = [
        mapping("/usr/lib/postgresql/15/bin/postgres", 400, "r-xp", private=400),
        mapping("[heap]", 2000, private=2000, dirty=True),
        mapping("/SYSV0052e2c1 (deleted)", 8192, "rw-s", shared=6144, sharers=1, dirty=True),
    ]
    if hugetlb:
        postgres.append(mapping("/anon_hugepage (deleted)", 2048, "rw-s", shared_hugetlb=2048))
    tree.add(300, "postgres", "/usr/lib/postgresql/15/bin/postgres", ppid=1, maps=postgres)
    tree.add(400, "garbled", "/usr/bin/garbled", ppid=1,
             maps=[mapping("[heap]", 700, private=700)],
             replace={"smaps_rollup": b"not a rollup\nPss: lots kB\n",
                      "smaps": b"not smaps\nPss: lots kB\n",
                      "statm": b"garbage\n"})
    tree.add(SELF, "ps_mem", PYTHON, cmdline=[PYTHON, "/usr/bin/ps_mem"], ppid=1, maps=[
        mapping(PYTHON, 1000, "r-xp", shared=1000, sharers=4),
        mapping("[heap]", 3000, private=3000, dirty=True),
    ])
    tree.pids.remove(SELF)
    os.symlink(str(SELF), str(root / "self"))
    if sysvipc is None:
        sysvipc = SYSVIPC_3_10 if generation not in ("2.4", "2.6.18", "2.6.32") else SYSVIPC_2_6
    if sysvipc:
        (root / "sysvipc").mkdir()
        (root / "sysvipc" / "shm").write_bytes(sysvipc)
    if record is not None:
        (root / "ps_mem-system.json").write_text(json.dumps(record))
    return tree
