"""--group-by mapping on the live /proc, with real processes holding the
mappings the view names (tests/helpers/segments.c): a /dev/shm file, a
memfd, a SysV segment and shared anonymous memory, each shared by every
process of the helper, each of a size the test knows.

The kernel truncates each process's Pss of a mapping to whole KiB and the
view adds 0.5 KiB back to each (see README's Memory per mapping), so a row
of N processes is its size within N / 2 KiB.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import REPO, live, parse_table, run_ours
from tests.realproc import Processes

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import ps_mem  # noqa: E402

ORACLE = Path(__file__).resolve().parent / "data" / "mappings" / "oracle.awk"
MIB = 1024 * 1024


@pytest.fixture
def procs():
    with Processes() as processes:
        yield processes


def document(*args: str) -> dict:
    result = run_ours("--group-by", "mapping", "--json", *args)
    assert result.status == 0, result.err
    return json.loads(result.stdout)


def by_name(doc: dict) -> dict:
    return {row["name"]: row for row in doc["programs"]}


def sysv_id(key: int) -> int:
    """The shmid of the SysV segment of KEY, as the kernel lists it."""
    with open("/proc/sysvipc/shm") as handle:
        for line in handle.read().splitlines()[1:]:
            fields = line.split()
            if int(fields[0]) == key:
                return int(fields[1])
    raise AssertionError("no SysV segment of key %#x" % key)


@live
def test_each_shared_segment_is_one_row_of_its_size(procs, tmp_path):
    hostile = tmp_path / "x\nPss: 1000 kB"
    hostile.write_bytes(b"y" * 4096)
    helper = procs.helper("segments", "2", str(hostile))  # 3 processes
    parent = helper.pids[0]
    key = 0x50530000 | (parent & 0xFFFF)
    rows = by_name(document("-p", helper.csv()))
    anon_shmem = "[anon_shmem:ps_mem-shmem]" if "[anon_shmem:ps_mem-shmem]" in rows \
        else "[anon_shmem]"
    for name, mib in (("/dev/shm/ps_mem-segments-%d" % parent, 1),
                      ("[memfd:ps_mem-memfd]", 2),
                      ("[SysV key=0x%08x shmid=%d]" % (key, sysv_id(key)), 3),
                      (anon_shmem, 5)):
        row = rows[name]
        assert (row["count"], sorted(row["pids"]), row["private"]) == (3, helper.pids, 0), name
        assert abs(row["ram"] - mib * MIB) <= 3 * 512, name
    # A name is the kernel's, its newline written as \012: one row, one page.
    page = rows[str(tmp_path / "x\\012Pss: 1000 kB")]
    assert page["count"] == 3 and abs(page["ram"] - 4096) <= 3 * 512
    # The 4 MiB of private anonymous memory, shared copy-on-write since the
    # fork, is in [anon] (or its own row where the kernel names it).
    anon = rows.get("[anon:ps_mem-anon]", rows["[anon]"])
    assert anon["ram"] >= 4 * MIB - 3 * 512


@live
def test_the_table_names_the_column_and_counts_the_processes(procs):
    helper = procs.helper("segments", "1")
    result = run_ours("--group-by", "mapping", "-p", helper.csv())
    assert result.status == 0, result.err
    table = parse_table(result.out)  # fails unless it is all header, rows and footer
    assert table.header == " Private  +   Shared  =  RAM used\tMapping\n\n"
    assert "[memfd:ps_mem-memfd] (2)" in [row.name for row in table.rows]
    # The child maps all its parent does (a static executable: no library).
    assert all(row.name.endswith(" (2)") for row in table.rows), table.rows
    assert table.total_ram is not None and table.rest == ""


def shared_mappings(pid: int) -> int:
    done = subprocess.run(["awk", "-f", str(ORACLE), "/proc/%d/smaps" % pid],
                          stdout=subprocess.PIPE, check=True)
    return sum(int(line.rpartition(b"\t")[2].split()[-1])
               for line in done.stdout.split(b"\n") if line)


@live
@pytest.mark.skipif(shutil.which("awk") is None, reason="awk is not installed")
def test_the_total_is_the_defaults_within_the_rounding(procs):
    helper = procs.helper("segments", "3")
    view = int(run_ours("--group-by", "mapping", "-t", "-p", helper.csv()).out) / 1024
    default = int(run_ours("-t", "-p", helper.csv()).out) / 1024
    shared = [shared_mappings(pid) for pid in helper.pids]
    assert -sum(k + 1 for k in shared) / 2 < view - default <= sum(k - 1 for k in shared) / 2


@live
def test_a_shared_address_space_is_counted_once(procs):
    helper = procs.helper("clone_vm", "3")  # 4 processes, one 32 MiB address space
    rows = by_name(document("-p", helper.csv()))
    anon = rows["[anon]"]
    assert anon["count"] == 4
    assert 32 * MIB <= anon["ram"] < 33 * MIB


@live
def test_forked_readers_read_what_one_reader_reads(procs):
    helper = procs.helper("segments", "40")
    procfs = ps_mem.ProcFS("/proc")
    kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
    options = ps_mem.Options(group_by="mapping", pids=tuple(helper.pids))
    reports = []
    for readers in (1, 2):
        scan = ps_mem.collect(procfs, options, kernel, None, readers=readers)
        reports.append(ps_mem.aggregate_mappings(scan.samples, scan.unreadable,
                                                 scan.address_spaces, scan.unparsable))
    assert reports[0] == reports[1]
    rows = {program.name: program for program in reports[1].programs}
    assert rows["[memfd:ps_mem-memfd]"].processes == 41


@live
def test_a_live_capture_keeps_what_the_view_showed(procs, tmp_path):
    helper = procs.helper("segments", "2")
    capture = tmp_path / "capture.tar.gz"
    made = run_ours("--group-by", "mapping", "--json", "-p", helper.csv(),
                    "--capture", str(capture))
    again = run_ours("--group-by", "mapping", "--json", "-p", helper.csv(), "--procfs",
                     str(capture))
    assert made.status == again.status == 0, (made.err, again.err)
    first, second = json.loads(made.stdout), json.loads(again.stdout)
    assert first["programs"] == second["programs"]
