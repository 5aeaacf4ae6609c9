"""--system's views: the ledger's table, --json's "system" member, one
ledger per sample with -w, and the options it refuses.

The trees are tests/system_trees.py's; the table below is the ledger of
tests/test_collection_system.py's BY_HAND, whose every size was worked out
by hand there, as human() prints it.
"""

import json
from pathlib import Path

import pytest

from tests.harness import ps_mem, run_main
from tests.system_trees import KIB, MEMINFO_BY_HAND, machine

NOT_PARSED = ("Warning: 1 process could not be parsed (their files are not what a kernel"
              " writes); their memory is not included.\n")

TABLE_BY_HAND = """\
 RAM used    Where

   23.3 MiB   Processes (PSS)
   10.7 MiB     anonymous
  600.0 KiB     file-backed
   10.0 MiB     shared memory (shmem)
    2.0 MiB     hugetlb pages
    2.0 KiB ~   rounding to whole KiB
  (0.0 KiB)     swap (SwapPss, not in RAM)
    3.2 MiB   ps_mem itself (left out of the report)
    1.0 MiB ~ Processes not read (1): anonymous
(910.0 KiB) ~   of the page cache and shared memory below, mapped by them
   29.1 MiB   Shared memory no process maps
    8.0 MiB     tmpfs /dev/shm
    1.0 MiB     tmpfs /run
    6.0 MiB     SysV key 0x0052e2c1 id 32769 (postgres, 1 attached) of 8.0 MiB
    4.0 MiB     SysV key 0x00000000 id 32770 (pid 999, exited, 0 attached)
   20.1 MiB ~   shared anonymous, memfd and other shmem
  -10.0 MiB     less what processes map (in Processes)
  253.1 MiB   Page cache no process maps
   19.5 MiB   Buffers
    0.0 KiB   Swap cache
   64.5 MiB ~ Kernel
   24.4 MiB     slab, reclaimable
   24.4 MiB     slab, unreclaimable
    4.9 MiB     other reclaimable
    2.9 MiB     kernel stacks
    2.0 MiB     page tables
    1.0 MiB     per-CPU
    4.9 MiB ~   vmalloc (less kernel stacks)
    6.0 MiB   Huge pages (hugetlb pool) no process maps
    4.0 MiB     in use
    4.0 MiB     free (reserved: 0 pages)
   -2.0 MiB     less what processes map (in Processes)
    1.0 MiB   Compressed swap in RAM
    1.0 MiB     zram devices
  390.6 MiB   Free
  185.3 MiB ~ Not explained by any field (remainder)
---------------------------------
  976.6 MiB   MemTotal
=================================
Note: tmpfs /mnt/scratch: its use is unknown (no size limit, or another mount on top of it);\
 it is in the rest of shared memory.
"""

TABLE_2_4 = """\
 RAM used    Where

 (22.4 MiB) ~ Processes (no PSS: shared memory counted more than once)
  151.1 MiB   Page cache (mapped or not) and shared memory
   12.3 MiB   Buffers
    1.5 MiB   Swap cache
    1.0 MiB   Compressed swap in RAM
    1.0 MiB     zram devices
    8.1 MiB   Free
   75.6 MiB ~ Not explained by any field (remainder)
---------------------------------
  249.6 MiB   MemTotal
=================================
Note: No PSS on this system: processes' memory is not counted apart (the line is beside);\
 what they map is in the page cache line, their anonymous memory and the kernel's are in\
 the remainder.
Note: meminfo has no Slab, KernelStack, PageTables: that kernel memory is in the remainder.
"""


@pytest.fixture
def by_hand(tmp_path: Path):
    return machine(tmp_path / "proc", "6.1", meminfo=MEMINFO_BY_HAND)


def test_table_by_hand(by_hand):
    done = run_main("--system", procfs=by_hand.root)
    assert (done.out, done.err, done.status) == (TABLE_BY_HAND, NOT_PARSED, 0)


def test_table_of_a_2_4_kernel(tmp_path):
    # statm's estimate of the processes: 22.4 MiB, as the default table's rows sum them.
    tree = machine(tmp_path / "proc", "2.4")
    done = run_main("--system", procfs=tree.root)
    assert done.out == TABLE_2_4
    assert done.err == ("Warning: Shared memory is slightly over-estimated by this system\n"
                        "for each program, so totals are not reported.\n" + NOT_PARSED)


def test_rows_options_do_not_change_the_ledger(by_hand):
    for args in (["--sort", "name"], ["--reverse"], ["-S"], ["--group-by", "user"]):
        assert run_main("--system", *args, procfs=by_hand.root).out == TABLE_BY_HAND, args


def test_json_is_the_default_document_with_the_ledger(by_hand):
    done = run_main("--system", "--json", procfs=by_hand.root)
    assert done.status == 0 and done.err == NOT_PARSED
    assert done.out.endswith("}\n") and done.out.count("\n") == 1 and done.out.isascii()
    document = json.loads(done.out)
    plain = json.loads(run_main("--json", procfs=by_hand.root).out)
    assert {key: value for key, value in document.items() if key != "system"} == plain
    system = document["system"]
    assert sorted(system) == ["lines", "notes", "total"]
    assert system["total"] == 1000000 * KIB
    first = system["lines"][0]
    assert first == {"key": "processes", "name": "Processes (PSS)", "bytes": 23890 * KIB,
                     "fields": ["Pss"], "estimate": False, "depth": 0, "counted": True,
                     "detail": {}}
    assert first["bytes"] == document["total"]["ram"]
    mounts = [line for line in system["lines"] if line["key"] == "shmem.mount"]
    assert mounts[0]["detail"] == {"mount_point": "/dev/shm", "device": "0:23",
                                   "size": 4096 * 1024 * KIB, "namespace_pid": None}
    # Zero-byte sub-lines are in the JSON, though not in the table.
    assert [line["key"] for line in system["lines"]].count("kernel.bounce") == 1


def test_a_ledger_per_sample_of_a_watch(by_hand, monkeypatch):
    samples = []

    def sleep(seconds):
        samples.append(seconds)
        if len(samples) == 2:
            raise KeyboardInterrupt  # how a watch ends

    monkeypatch.setattr(ps_mem.time, "sleep", sleep)
    done = run_main("--system", "-w", "3", procfs=by_hand.root)
    assert done.status == 0 and samples == [3, 3]
    assert done.out == TABLE_BY_HAND * 2  # the second sleep was interrupted
    samples.clear()
    done = run_main("--system", "--json", "-w", "3", procfs=by_hand.root)
    lines = done.out.splitlines()
    assert len(lines) == 2
    assert all(json.loads(line)["system"]["lines"][0]["bytes"] == 23890 * KIB
               for line in lines)


@pytest.mark.parametrize("args, option", [
    (["-p", "100"], "-p"), (["-t"], "-t"), (["--top", "3"], "--top"),
])
def test_options_that_would_leave_processes_out(by_hand, args, option):
    done = run_main("--system", *args, procfs=by_hand.root)
    assert (done.status, done.stdout) == (2, b"")
    assert done.err.splitlines()[-1] == (
        "ps_mem: error: --system accounts for every process; it cannot be combined with %s"
        % option)


def test_help_names_the_option():
    done = run_main("--help")
    assert "--system" in done.out


def test_a_segment_smaller_than_a_page_shows_no_size(tmp_path):
    # PostgreSQL's 56-byte segment: resident, a page.
    header = b"key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap\n"
    tree = machine(tmp_path / "proc", "6.1", meminfo=MEMINFO_BY_HAND,
                   sysvipc=header + b"2154513 13 600 56 300 300 1 0 0 0 0 0 0 0 4096 0\n")
    out = run_main("--system", procfs=tree.root).out
    assert "    4.0 KiB     SysV key 0x0020e011 id 13 (postgres, 1 attached)\n" in out


def test_units_apply_to_every_size_of_the_ledger(by_hand):
    done = run_main("--system", "--units", "MiB", procfs=by_hand.root)
    # The ledger by hand, its sizes under a MiB put in MiB by hand.
    expected = TABLE_BY_HAND
    for kib, mib in (("  600.0 KiB     file-backed", "    0.6 MiB     file-backed"),
                     ("    2.0 KiB ~   rounding", "    0.0 MiB ~   rounding"),
                     ("  (0.0 KiB)     swap", "  (0.0 MiB)     swap"),
                     ("(910.0 KiB) ~   of the page", "  (0.9 MiB) ~   of the page"),
                     ("    0.0 KiB   Swap cache", "    0.0 MiB   Swap cache")):
        assert kib in expected
        expected = expected.replace(kib, mib)
    assert (done.out, done.err, done.status) == (expected, NOT_PARSED, 0)


def test_units_b_widen_the_column_to_the_widest_size(by_hand):
    lines = run_main("--system", "--units", "B", procfs=by_hand.root).out.splitlines()
    assert lines[0] == "  RAM used    Where"
    assert lines[2] == "  24463360 B   Processes (PSS)"  # 23890 KiB
    assert "  (931840 B) ~   of the page cache and shared memory below, mapped by them" in lines
    assert " -10485760 B     less what processes map (in Processes)" in lines
    assert "   6291456 B     SysV key 0x0052e2c1 id 32769 (postgres, 1 attached) of 8388608 B" \
        in lines
    assert lines[-4:-1] == ["-" * 34, "1024000000 B   MemTotal", "=" * 34]


def test_no_header_prints_the_lines_only_and_the_notes_on_stderr(by_hand):
    done = run_main("--system", "--no-header", procfs=by_hand.root)
    table = TABLE_BY_HAND.splitlines(keepends=True)
    rule = table.index("-" * 33 + "\n")
    assert done.out == "".join(table[2:rule])
    assert done.err == table[-1] + NOT_PARSED
    assert done.status == 0


def test_mapping_rows_are_refused(by_hand):
    done = run_main("--system", "--group-by", "mapping", procfs=by_hand.root)
    assert (done.status, done.stdout) == (2, b"")
    assert done.err.splitlines()[-1] == (
        "ps_mem: error: --system cannot be combined with --group-by mapping: the ledger reads"
        " smaps_rollup, the mapping rows smaps")


def test_a_negative_line_below_the_unit_shows_no_sign(by_hand):
    lines = run_main("--system", "--units", "GiB", procfs=by_hand.root).out.splitlines()
    # -10.0 MiB and -2.0 MiB by hand: both 0.0 GiB, neither "-0.0 GiB".
    assert "    0.0 GiB     less what processes map (in Processes)" in lines
    assert not any("-0.0" in line for line in lines)
