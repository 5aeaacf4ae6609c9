"""--system's aggregation, reading nothing: process_sums() splits the
report's total over the same processes as aggregate(), and ledger() turns
meminfo and those sums into lines that add up to MemTotal.

Samples and meminfo are written here by hand, and so is every expected
value; the report's total is aggregate()'s own.
"""

from typing import Dict, List, Optional

import pytest

from tests.harness import ps_mem
from tests.system_trees import KIB, MIB

Sample = ps_mem.ProcessSample


def sample(pid: int, name: str, anon: int, file: int, shmem: int, *, private_hugetlb: int = 0,
           shared_hugetlb: float = 0, mem_id: Optional[int] = None,
           program: Optional[str] = None) -> "ps_mem.ProcessSample":
    """A process as read_memory() makes it from a rollup whose Pss is
    exactly its parts (0.5 KiB added back), all of its anon private."""
    pss = anon + file + shmem + 0.5
    return Sample(pid, name, anon + private_hugetlb, pss - anon, shared_hugetlb, 0,
                  mem_id if mem_id is not None else pid, True, True,
                  (anon, file, shmem, private_hugetlb), program)


def crowd(program: Optional[str] = None) -> "List[ps_mem.ProcessSample]":
    """a alone; b twice with one memory text; d twice, a shared hugetlb
    mapping of 2048 KiB each (one program's largest counts) and 1024 KiB
    of private hugetlb in one."""
    return [
        sample(1, program or "a", 1000, 200, 0, program=program and "a"),
        sample(2, program or "b", 500, 100, 50, mem_id=7, program=program and "b"),
        sample(3, program or "b", 500, 100, 50, mem_id=7, program=program and "b"),
        sample(4, program or "d", 0, 0, 0, private_hugetlb=1024, shared_hugetlb=2048,
               program=program and "d"),
        sample(5, program or "d", 10, 0, 0, shared_hugetlb=2048, program=program and "d"),
    ]


@pytest.mark.parametrize("samples, spaces, total, parts", [
    # 3.14's rule: b's two processes show one text, so one address space.
    (crowd(), None, 4934, (1510, 300, 50, 3072)),
    # The kernel's word, the same.
    (crowd(), {2: "mm", 3: "mm"}, 4934, (1510, 300, 50, 3072)),
    # The kernel's word that each is alone, whatever their texts.
    (crowd(), {}, 5584.5, (2010, 400, 100, 3072)),
    # Rows by user: the rule is applied to each program.
    (crowd("root"), None, 4934, (1510, 300, 50, 3072)),
])
def test_process_sums_divide_as_aggregate_does(samples, spaces, total, parts):
    report = ps_mem.aggregate(samples, 0, spaces)
    assert report.total_ram_kib == total
    sums = ps_mem.process_sums(samples, spaces, report.total_ram_kib, 0)
    assert (sums.anon_kib, sums.file_kib, sums.shmem_kib, sums.hugetlb_kib) == parts
    assert sums.total_kib == total and sums.pss_seen


def test_process_sums_without_the_split():
    samples = [item._replace(pss_parts=(None, None, None, item.pss_parts[3]))
               for item in crowd()]
    sums = ps_mem.process_sums(samples, None, 4934, None)
    assert (sums.anon_kib, sums.file_kib, sums.shmem_kib, sums.hugetlb_kib) == (
        None, None, None, 3072)


def test_process_sums_where_one_process_lacks_the_split():
    samples = crowd()
    samples[0] = samples[0]._replace(pss_parts=None)
    assert ps_mem.process_sums(samples, None, 4934, None).anon_kib is None


# ----------------------------------------------------------------------------
# ledger(), on a sample written here
# ----------------------------------------------------------------------------

MEMINFO = {"MemTotal": 100000, "MemFree": 50000, "Buffers": 1000, "Cached": 20000,
           "SwapCached": 0, "AnonPages": 6000, "Mapped": 3000, "Shmem": 5000,
           "SReclaimable": 2000, "SUnreclaim": 1000, "KernelStack": 500, "PageTables": 300,
           "VmallocUsed": 900}


def system(meminfo: Dict[str, int], **changes) -> "ps_mem.SystemSample":
    return ps_mem.SystemSample(meminfo, [], [], [], None, None, [])._replace(**changes)


def split_sums(anon: float = 4000, file: float = 1000, shmem: float = 500,
               hugetlb: float = 0) -> "ps_mem.PssSums":
    return ps_mem.PssSums(anon + file + shmem + hugetlb + 1.5, anon, file, shmem, hugetlb,
                          0, True)


def sizes(result: "ps_mem.Ledger") -> list:
    return [(line.key, line.size_bytes / KIB) for line in result.lines]


def test_a_small_ledger_whole():
    result = ps_mem.ledger(system(MEMINFO), split_sums(), kernel=(6, 1, 0))
    assert sizes(result) == [
        ("processes", 5501.5), ("processes.anon", 4000), ("processes.file", 1000),
        ("processes.shmem", 500), ("processes.rounding", 1.5), ("processes.swap", 0),
        ("shmem", 4500), ("shmem.rest", 5000), ("shmem.mapped", -500),
        ("page_cache", 20000 - 5000 - 1000),
        ("buffers", 1000), ("swap_cache", 0),
        ("kernel", 2000 + 1000 + 500 + 300 + 400),
        ("kernel.slab_reclaimable", 2000), ("kernel.slab_unreclaimable", 1000),
        ("kernel.stacks", 500), ("kernel.page_tables", 300), ("kernel.vmalloc", 900 - 500),
        ("free", 50000),
        ("remainder", 100000 - 5501.5 - 4500 - 14000 - 1000 - 4200 - 50000),
    ]
    assert result.total_bytes == 100000 * KIB
    assert result.notes == ()


def test_remainder_is_shown_as_it_is_negative_too():
    meminfo = dict(MEMINFO, MemFree=99000)
    result = ps_mem.ledger(system(meminfo), split_sums(), kernel=(6, 1, 0))
    assert result.lines[-1].size_bytes == (100000 - 5501.5 - 4500 - 14000 - 1000 - 4200
                                           - 99000) * KIB
    assert result.lines[-1].size_bytes < 0
    assert sum(line.size_bytes for line in result.lines
               if line.depth == 0 and line.counted) == result.total_bytes


def test_vmalloc_below_kernel_stacks_is_all_of_vmalloc():
    result = ps_mem.ledger(system(dict(MEMINFO, VmallocUsed=200)), split_sums(),
                           kernel=(6, 1, 0))
    (vmalloc,) = [line for line in result.lines if line.key == "kernel.vmalloc"]
    assert (vmalloc.name, vmalloc.size_bytes, vmalloc.fields) == (
        "vmalloc", 200 * KIB, ("VmallocUsed",))


def test_huge_pages_of_other_sizes_and_what_processes_map():
    meminfo = dict(MEMINFO, HugePages_Total=2, HugePages_Free=1, HugePages_Rsvd=1,
                   Hugepagesize=2048, Hugetlb=2 * 1048576 + 2 * 2048)
    result = ps_mem.ledger(system(meminfo), split_sums(hugetlb=2048), kernel=(6, 1, 0))
    huge = [(key, size) for key, size in sizes(result) if key.startswith("huge_pages")]
    assert huge == [("huge_pages", 2 * 1048576 + 4096 - 2048),
                    ("huge_pages.used", 2048), ("huge_pages.free", 2048),
                    ("huge_pages.other_sizes", 2 * 1048576), ("huge_pages.mapped", -2048)]
    names = {line.key: line.name for line in result.lines}
    assert names["huge_pages"] == "Huge pages (hugetlb pool) no process maps"
    assert names["huge_pages.free"] == "free (reserved: 1 pages)"
    assert dict(sizes(result))["processes.hugetlb"] == 2048


def test_compressed_swap_zswap_and_zram():
    result = ps_mem.ledger(system(dict(MEMINFO, Zswap=300), zram_used_bytes=5 * MIB),
                           split_sums(), kernel=(6, 1, 0))
    found = [(key, size) for key, size in sizes(result) if key.startswith("compressed")]
    assert found == [("compressed", 300 + 5 * 1024), ("compressed.zswap", 300),
                     ("compressed.zram", 5 * 1024)]


def test_notes_for_balloon_ramfs_and_a_missing_memfree():
    meminfo = dict(MEMINFO, Balloon=4096)
    del meminfo["MemFree"]
    result = ps_mem.ledger(system(meminfo, ramfs=["/mnt/ram\n"]), split_sums(),
                           kernel=(6, 1, 0))
    assert result.notes == (
        "meminfo has no MemFree: free memory is in the remainder.",
        "ramfs at /mnt/ram\\n: its files are page cache that cannot be freed, of a size no"
        " interface tells.",
        "Balloon: 4096 KiB given back to the hypervisor; most balloon drivers take them out"
        " of MemTotal, so no line counts them.",
    )


def test_mounts_of_other_namespaces_are_named_by_their_process():
    mounts = [ps_mem.ShmMount("/dev/shm", "tmpfs", "0:23", 1024 * KIB, 64 * MIB),
              ps_mem.ShmMount("/dev/shm", "tmpfs", "0:91", 2048 * KIB, 64 * MIB, 812),
              ps_mem.ShmMount("/run\x1b[2J", "tmpfs", "0:92", 0, 64 * MIB, 813)]
    result = ps_mem.ledger(system(MEMINFO, mounts=mounts), split_sums(), 0,
                           {812: "postgres"}, (6, 1, 0))
    assert [(line.name, line.size_bytes / KIB) for line in result.lines
            if line.key == "shmem.mount"] == [
        ("tmpfs /dev/shm", 1024),
        ("tmpfs /dev/shm (mount namespace of pid 812, postgres)", 2048),
        ("tmpfs /run?[2J (mount namespace of pid 813)", 0)]


def test_processes_not_read_without_the_split():
    sums = ps_mem.PssSums(4000.5, None, None, None, 0, None, True)
    result = ps_mem.ledger(system(MEMINFO), sums, unread=2, kernel=(4, 19, 0))
    assert sizes(result)[:3] == [("processes", 4000.5),
                                 ("not_read", 6000 + 3000 - 4000.5),
                                 ("unmapped", 20000 - 3000)]
    assert result.lines[1].name == "Processes not read (2)"


def test_no_memtotal():
    with pytest.raises(ps_mem.NoLedger) as refused:
        ps_mem.ledger(system({"MemFree": 5}), split_sums())
    assert str(refused.value) == "meminfo has no MemTotal line"


def test_segment_creators_as_the_kernel_names_them():
    segments = [ps_mem.ShmSegment(1, 10, 4096, 0, 0, 4096, 0),  # a pid of another namespace
                ps_mem.ShmSegment(2, 11, 4096, 77, 2, 4096, 0),
                ps_mem.ShmSegment(3, 12, 4096, 78, 0, 4096, 0)]
    result = ps_mem.ledger(system(MEMINFO, segments=segments, exited=frozenset({78})),
                           split_sums(), 0, {77: "redis-server\x1b"}, (6, 1, 0))
    assert [line.name for line in result.lines if line.key == "shmem.sysv"] == [
        "SysV key 0x00000001 id 10 (creator not in this pid namespace, 0 attached)",
        "SysV key 0x00000002 id 11 (redis-server?, 2 attached)",
        "SysV key 0x00000003 id 12 (pid 78, exited, 0 attached)"]


def test_hugetlb_mapped_where_meminfo_has_no_pool():
    result = ps_mem.ledger(system(MEMINFO), split_sums(hugetlb=2048), kernel=(6, 1, 0))
    assert "huge_pages" not in [line.key for line in result.lines]
    assert result.notes == ("meminfo has no hugetlb pool: the processes' hugetlb pages are"
                            " counted twice, and the remainder is less by them.",)
