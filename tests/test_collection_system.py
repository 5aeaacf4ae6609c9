"""--system on fixture trees of each kernel generation (tests/system_trees.py):
what it reads (meminfo, the processes' rollups, sysvipc/shm, the mounts'
recorded use), and the ledger it makes of them.

The ledger's lines must add up to MemTotal exactly, each group's lines to
the group, and its processes line must be the default report's total, read
from the same tree both ways.  One ledger is worked out by hand, line by
line; the others are checked for what their kernel can and cannot tell.
"""

import json
import os
import re
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from tests.harness import ps_mem, run_main
from tests.system_trees import (GENERATIONS, KIB, MEMINFO_BY_HAND, SPLIT, SYSTEM_RECORD,
                                WITH_PSS, machine, maps_hugetlb, meminfo_of)


def ledger_of(tree, *args: str) -> Tuple[dict, dict]:
    """(--system --json's ledger, the whole document) of TREE."""
    done = run_main("--system", "--json", *args, procfs=tree.root)
    assert done.status == 0, done.err
    document = json.loads(done.out)
    return document["system"], document


def default_total(tree, *args: str) -> int:
    done = run_main("--json", *args, procfs=tree.root)
    return json.loads(done.out)["total"]["ram"]


def memtotal_kib(meminfo: bytes) -> int:
    return int(re.search(rb"^MemTotal:\s+(\d+) kB$", meminfo, re.M).group(1))


def adds_up(ledger: dict) -> None:
    """The arithmetic, checked here: the counted top lines add up to
    MemTotal, and each line's counted lines one level down add up to it."""
    lines = ledger["lines"]
    assert sum(line["bytes"] for line in lines
               if line["depth"] == 0 and line["counted"]) == ledger["total"]
    for index, line in enumerate(lines):
        under = []
        for later in lines[index + 1:]:
            if later["depth"] <= line["depth"]:
                break
            if later["depth"] == line["depth"] + 1 and later["counted"]:
                under.append(later["bytes"])
        if under:
            assert sum(under) == line["bytes"], line["key"]


def sizes(ledger: dict) -> List[Tuple[str, float]]:
    return [(line["key"], line["bytes"] / KIB) for line in ledger["lines"]]


def line(ledger: dict, key: str) -> dict:
    (found,) = [line for line in ledger["lines"] if line["key"] == key]
    return found


@pytest.fixture
def generation_tree(tmp_path: Path):
    def make(generation: str, **options):
        return machine(tmp_path / "proc", generation, **options)
    return make


# ----------------------------------------------------------------------------
# Every generation
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("generation", sorted(GENERATIONS))
def test_every_generation_adds_up_to_memtotal(generation_tree, generation):
    tree = generation_tree(generation)
    ledger, document = ledger_of(tree)
    adds_up(ledger)
    assert ledger["total"] == memtotal_kib(meminfo_of(generation)) * KIB
    assert ledger["lines"][-1]["key"] == "remainder"
    assert ledger["lines"][0]["key"] == "processes"


@pytest.mark.parametrize("generation", sorted(WITH_PSS))
def test_processes_line_is_the_default_reports_total(generation_tree, generation):
    tree = generation_tree(generation)
    ledger, document = ledger_of(tree)
    processes = line(ledger, "processes")
    assert processes["counted"]
    # Worked out in tests/system_trees.py's docstring, for a rollup, with
    # 0.5 KiB a Pss line; smaps has a Pss line a mapping: 1 KiB more for
    # each worker and postgres (3 mappings), 0.5 for the clones (2, halved).
    expected_kib = 23890 if maps_hugetlb(generation) else 21842
    if generation in ("2.6.32", "3.10"):
        expected_kib += 1 + 1 + 0.5 + 1
    assert processes["bytes"] == expected_kib * KIB
    assert processes["bytes"] == document["total"]["ram"] == default_total(tree)
    # ps_mem itself, which the report leaves out: Pss 3250 + 0.5 a line.
    own_kib = 3251 if generation in ("2.6.32", "3.10") else 3250.5
    assert line(ledger, "own")["bytes"] == own_kib * KIB
    assert line(ledger, "not_read")["name"].startswith("Processes not read (1)")


@pytest.mark.parametrize("generation", sorted(SPLIT))
def test_split_generations_show_the_parts(generation_tree, generation):
    ledger, _ = ledger_of(generation_tree(generation))
    found = dict(sizes(ledger))
    assert (found["processes.anon"], found["processes.file"], found["processes.shmem"]) == (
        11000, 600, 10240)
    assert found["processes.rounding"] == 2  # 0.5 KiB a Pss line, the clones' halved
    assert found["shmem.mapped"] == -10240
    assert "unmapped" not in found
    assert not [note for note in ledger["notes"] if "does not split" in note]


@pytest.mark.parametrize("generation", sorted(WITH_PSS - SPLIT))
def test_older_generations_merge_what_they_cannot_split(generation_tree, generation):
    ledger, _ = ledger_of(generation_tree(generation))
    keys = [key for key, _ in sizes(ledger)]
    assert "processes.anon" not in keys and "shmem" not in keys and "page_cache" not in keys
    unmapped = line(ledger, "unmapped")
    assert unmapped["name"] == "Page cache and shared memory no process maps"
    assert unmapped["fields"] == ["Cached", "Mapped"]
    assert ("This kernel does not split PSS into Pss_Anon, Pss_File and Pss_Shmem"
            " (smaps_rollup, Linux 5.3 and later): page cache and shared memory that"
            " no process maps are one line.") in ledger["notes"]
    # VmallocUsed was the address space in use before 4.4, and is 0 until 5.3.
    vmalloc_note = ("VmallocUsed is address space, not RAM, before Linux 5.3:"
                    " vmalloc's pages are in the remainder.")
    assert (vmalloc_note in ledger["notes"]) == (generation != "4.19")
    assert "kernel.vmalloc" not in keys


@pytest.mark.parametrize("generation", ["2.4", "2.6.18"])
def test_without_pss_processes_are_beside(generation_tree, generation):
    ledger, document = ledger_of(generation_tree(generation))
    processes = ledger["lines"][0]
    assert not processes["counted"] and processes["estimate"]
    assert processes["name"] == "Processes (no PSS: shared memory counted more than once)"
    assert document["total"]["ram"] is None
    assert line(ledger, "page_cache")["name"] == "Page cache (mapped or not) and shared memory"
    assert [key for key, _ in sizes(ledger)].count("own") == 0
    assert any(note.startswith("No PSS on this system") for note in ledger["notes"])


def test_segments_before_3_10_count_their_size(generation_tree):
    ledger, _ = ledger_of(generation_tree("2.6.32"))
    segments = [found for found in ledger["lines"] if found["key"] == "shmem.sysv"]
    assert [(found["bytes"] / KIB, found["estimate"]) for found in segments] == [
        (8192, True), (4096, True)]
    assert ("/proc/sysvipc/shm has no rss column (Linux 3.10 and later): a SysV segment"
            " counts its whole size, resident or not.") in ledger["notes"]


def test_2_4_names_the_fields_it_lacks(generation_tree):
    ledger, _ = ledger_of(generation_tree("2.4", sysvipc=b""))
    assert ledger["notes"] == [
        "No PSS on this system: processes' memory is not counted apart (the line is beside);"
        " what they map is in the page cache line, their anonymous memory and the kernel's"
        " are in the remainder.",
        "meminfo has no Slab, KernelStack, PageTables: that kernel memory is in the remainder.",
        "sysvipc/shm could not be read (No such file or directory): SysV segments, if any,"
        " are in the rest of shared memory.",
    ]
    assert [key for key, _ in sizes(ledger)] == [
        "processes", "page_cache", "buffers", "swap_cache", "compressed", "compressed.zram",
        "free", "remainder"]


# ----------------------------------------------------------------------------
# One ledger, by hand
# ----------------------------------------------------------------------------

# MEMINFO_BY_HAND's fields and the processes of tests/system_trees.py.
BY_HAND = [
    ("processes", 23890),
    ("processes.anon", 11000), ("processes.file", 600), ("processes.shmem", 10240),
    ("processes.hugetlb", 2048), ("processes.rounding", 2),
    ("processes.swap", 0),
    ("own", 3250.5),
    ("not_read", 15000 - 11000 - 3000),  # AnonPages less the anon read, ps_mem's too
    ("not_read.mapped", 12000 - 600 - 250 - 10240),  # Mapped less file and shmem read
    ("shmem", 40000 - 10240),  # Shmem less Pss_Shmem
    ("shmem.mount", 8192), ("shmem.mount", 1024),  # /dev/shm, /run
    ("shmem.sysv", 6144), ("shmem.sysv", 4096),
    ("shmem.rest", 40000 - 8192 - 1024 - 6144 - 4096),
    ("shmem.mapped", -10240),
    ("page_cache", 300000 - 40000 - 600 - 250),  # Cached less Shmem less Pss_File
    ("buffers", 20000), ("swap_cache", 0),
    ("kernel", 25000 + 25000 + 5000 + 3000 + 2000 + 1000 + 5000),
    ("kernel.slab_reclaimable", 25000), ("kernel.slab_unreclaimable", 25000),
    ("kernel.other_reclaimable", 30000 - 25000), ("kernel.stacks", 3000),
    ("kernel.page_tables", 2000), ("kernel.secondary_page_tables", 0),
    ("kernel.percpu", 1000), ("kernel.vmalloc", 8000 - 3000), ("kernel.bounce", 0),
    ("kernel.writeback_tmp", 0),
    ("huge_pages", 2 * 2048 + 2 * 2048 - 2048),
    ("huge_pages.used", 2 * 2048), ("huge_pages.free", 2 * 2048),
    ("huge_pages.mapped", -2048),
    ("compressed", 1024), ("compressed.zram", 1024),
    ("free", 400000),
    ("remainder", 1000000 - 23890 - 3250.5 - 1000 - 29760 - 259150 - 20000 - 66000 - 6144
     - 1024 - 400000),
]


def test_ledger_by_hand(generation_tree):
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND)
    ledger, document = ledger_of(tree)
    assert sizes(ledger) == BY_HAND
    adds_up(ledger)
    assert ledger["notes"] == [
        "tmpfs /mnt/scratch: its use is unknown (no size limit, or another mount on top of"
        " it); it is in the rest of shared memory."]
    names = [found["name"] for found in ledger["lines"] if found["key"] == "shmem.sysv"]
    assert names == ["SysV key 0x0052e2c1 id 32769 (postgres, 1 attached)",
                     "SysV key 0x00000000 id 32770 (pid 999, exited, 0 attached)"]
    assert line(ledger, "shmem.rest")["estimate"] and line(ledger, "remainder")["estimate"]
    assert line(ledger, "kernel")["fields"] == sorted(
        ["SReclaimable", "SUnreclaim", "KReclaimable", "KernelStack", "PageTables",
         "SecPageTables", "Percpu", "VmallocUsed", "Bounce", "WritebackTmp"])
    segment = [found for found in ledger["lines"] if found["key"] == "shmem.sysv"][0]
    assert segment["detail"] == {"key": 5432001, "shmid": 32769, "size": 8388608,
                                 "rss": 6291456, "swap": 0, "nattch": 1, "cpid": 300,
                                 "program": "postgres"}


@pytest.mark.parametrize("args, rounding_kib", [
    ([], 2),
    (["--group-by", "user"], 2), (["--group-by", "cgroup"], 2), (["-s"], 2),
    # One row per process: 3.14's rule then leaves the clones apart.
    (["-d"], 2.5),
])
def test_processes_line_follows_the_rows_rule_for_shared_address_spaces(
        generation_tree, args, rounding_kib):
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND)
    ledger, document = ledger_of(tree, *args)
    processes = line(ledger, "processes")
    assert processes["bytes"] == document["total"]["ram"] == default_total(tree, *args)
    assert line(ledger, "processes.rounding")["bytes"] == rounding_kib * KIB
    adds_up(ledger)


# ----------------------------------------------------------------------------
# What a tree may lack or hold wrongly
# ----------------------------------------------------------------------------


def test_a_tree_without_the_mounts_record(generation_tree):
    ledger, _ = ledger_of(generation_tree("6.1", meminfo=MEMINFO_BY_HAND, record=None))
    assert "shmem.mount" not in [key for key, _ in sizes(ledger)]
    assert line(ledger, "shmem.rest")["bytes"] == (40000 - 6144 - 4096) * KIB
    assert ledger["notes"] == [
        "The proc root holds no record of its tmpfs mounts' use (ps_mem-system.json):"
        " their pages are in the rest of shared memory."]
    adds_up(ledger)


def test_a_tree_with_a_mounts_record_ps_mem_does_not_write(generation_tree):
    record: Dict = dict(SYSTEM_RECORD, mounts=[{"mount_point": "/x", "fs_type": "ext4"}])
    ledger, _ = ledger_of(generation_tree("6.1", meminfo=MEMINFO_BY_HAND, record=record))
    assert ledger["notes"] == [
        "The proc root's ps_mem-system.json is not as ps_mem writes it (a mount is not a"
        " tmpfs mount point with its use in bytes): the tmpfs mounts' pages are in the rest"
        " of shared memory."]
    assert "compressed" not in [key for key, _ in sizes(ledger)]


def test_many_segments_are_summed_past_the_first_sixteen(generation_tree):
    header = b"key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap\n"
    rows = b"".join(b"%d %d 600 8192 300 300 0 0 0 0 0 0 0 0 %d 0\n" % (key, key, 4096 * key)
                    for key in range(1, 41))
    ledger, _ = ledger_of(generation_tree("6.1", meminfo=MEMINFO_BY_HAND,
                                          sysvipc=header + rows))
    segments = [found for found in ledger["lines"] if found["key"].startswith("shmem.sysv")]
    assert len(segments) == 17
    assert segments[0]["bytes"] == 40 * 4096 and segments[0]["detail"]["shmid"] == 40
    assert segments[-1]["key"] == "shmem.sysv_others"
    assert segments[-1]["name"] == "24 other SysV segments"
    assert segments[-1]["bytes"] == sum(4096 * key for key in range(1, 25))
    adds_up(ledger)


def test_no_memtotal_is_one_clear_error(generation_tree):
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND.replace(b"MemTotal:", b"MemTotaI:"))
    done = run_main("--system", procfs=tree.root)
    assert (done.status, done.out) == (2, "")
    assert done.err == "ps_mem: --system: cannot read %s: meminfo has no MemTotal line\n" % (
        tree.root / "meminfo")


def test_no_meminfo_is_one_clear_error(generation_tree):
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND)
    (tree.root / "meminfo").unlink()
    done = run_main("--system", procfs=tree.root)
    assert (done.status, done.out) == (2, "")
    assert done.err == "ps_mem: --system: cannot read %s: No such file or directory\n" % (
        tree.root / "meminfo")


# ----------------------------------------------------------------------------
# What each process brings, by one reader or forked ones
# ----------------------------------------------------------------------------


def scan_of(root: Path, readers: int) -> "ps_mem.Scan":
    procfs = ps_mem.ProcFS(str(root))
    kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
    return ps_mem.collect(procfs, ps_mem.Options(system=True), kernel, procfs.self_pid(),
                          readers=readers)


def test_forked_readers_carry_the_parts(generation_tree, monkeypatch):
    monkeypatch.setattr(ps_mem, "_CHUNK_PIDS", 2)
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND)
    one = scan_of(tree.root, 1)
    assert scan_of(tree.root, 3) == one
    parts = {sample.pid: sample.pss_parts for sample in one.samples}
    assert parts == {100: (5000, 50, 2048, 0), 101: (3000, 50, 2048, 0),
                     200: (1000, 100, 0, 0), 201: (1000, 100, 0, 0),
                     300: (2000, 400, 6144, 0)}
    # A tree's processes' mount namespaces are not asked: its mounts' use is recorded.
    assert {sample.mount_namespace for sample in one.samples} == {None}


def test_the_default_reading_carries_no_parts(generation_tree):
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND)
    procfs = ps_mem.ProcFS(str(tree.root))
    scan = ps_mem.collect(procfs, ps_mem.Options(), (6, 1, 0), procfs.self_pid())
    assert {sample.pss_parts for sample in scan.samples} == {None}


def test_parts_where_the_kernel_does_not_split(generation_tree):
    scan = scan_of(generation_tree("4.19").root, 1)
    assert {sample.pid: sample.pss_parts for sample in scan.samples} == {
        100: (None, None, None, 0), 101: (None, None, None, 0), 200: (None, None, None, 0),
        201: (None, None, None, 0), 300: (None, None, None, 0)}


# ----------------------------------------------------------------------------
# A tree's files are data: none is followed out of the tree, or read unbounded
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("make, reason", [
    (lambda path: os.symlink("/proc/meminfo", str(path)), "not a file ps_mem reads"),
    (lambda path: os.mkfifo(str(path)), "not a regular file"),
    (lambda path: path.mkdir(), "not a regular file"),
])
def test_a_meminfo_that_is_not_a_file(generation_tree, make, reason):
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND)
    (tree.root / "meminfo").unlink()
    make(tree.root / "meminfo")
    done = run_main("--system", procfs=tree.root)
    assert (done.status, done.out) == (2, "")
    assert done.err == "ps_mem: --system: cannot read %s: %s\n" % (tree.root / "meminfo", reason)


def test_files_beside_meminfo_that_are_links_are_not_followed(generation_tree):
    tree = generation_tree("6.1", meminfo=MEMINFO_BY_HAND)
    (tree.root / "sysvipc" / "shm").unlink()
    os.symlink("/proc/sysvipc/shm", str(tree.root / "sysvipc" / "shm"))
    (tree.root / "ps_mem-system.json").unlink()
    os.symlink("/etc/passwd", str(tree.root / "ps_mem-system.json"))
    ledger, _ = ledger_of(tree)
    assert [key for key, _ in sizes(ledger) if key.startswith("shmem.")] == [
        "shmem.rest", "shmem.mapped"]
    assert ledger["notes"] == [
        "sysvipc/shm could not be read (not a file ps_mem reads): SysV segments, if any, are"
        " in the rest of shared memory.",
        "The proc root holds no record of its tmpfs mounts' use (ps_mem-system.json): their"
        " pages are in the rest of shared memory."]
    adds_up(ledger)


def test_names_from_the_tree_are_shown_printable(generation_tree):
    record: Dict = dict(SYSTEM_RECORD, mounts=[dict(
        SYSTEM_RECORD["mounts"][0], mount_point="/dev/shm\n\x1b[31mevil\udcff")],
        ramfs=["/mnt/\x1b]0;title\x07"])
    ledger, _ = ledger_of(generation_tree("6.1", meminfo=MEMINFO_BY_HAND, record=record))
    (mount,) = [found for found in ledger["lines"] if found["key"] == "shmem.mount"]
    assert mount["name"] == "tmpfs /dev/shm??[31mevil?"
    assert mount["detail"]["mount_point"] == "/dev/shm??[31mevil?"
    assert ("ramfs at /mnt/\\x1b]0;title\\x07: its files are page cache that cannot be freed,"
            " of a size no interface tells.") in ledger["notes"]
