"""--group-by mapping on fixture trees and captured real trees: whole
outputs, the options that work with it and those that do not, captures.

The fixture trees are written by tests/procfs_builder.py, whose smaps
truncates each mapping's exact Pss once, as the kernel does; the expected
tables below are worked out by hand from the mappings each tree is given.
The captured trees (tests/trees_captured/) hold real smaps: there the
total is checked against the default report's within the bound the
rounding allows, with the mappings that have shared pages counted by
tests/data/mappings/oracle.awk.
"""

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.harness import parse_table, run_main
from tests.procfs_builder import ProcTree, mapping

CAPTURED = Path(__file__).resolve().parent / "trees_captured"
ORACLE = Path(__file__).resolve().parent / "data" / "mappings" / "oracle.awk"


def segment_tree(root: Path, kernel: str = "6.1") -> ProcTree:
    """Two programs sharing a /dev/shm file, each with a heap and its own
    executable; the writer's is mapped by one other process (not shown),
    which leaves it half of each page."""
    t = ProcTree(root, kernel)
    t.add(100, "writer", "/usr/bin/writer", maps=[
        mapping("/usr/bin/writer", 8, "r-xp", shared=8, sharers=2),
        mapping("[heap]", 400, private=400, dirty=True),
        mapping("/dev/shm/seg", 1024, "rw-s", shared=1024, sharers=2, dirty=True),
    ])
    t.add(101, "reader", "/usr/bin/reader", maps=[
        mapping("/usr/bin/reader", 12, "r-xp", private=12),
        mapping("[heap]", 200, private=200, dirty=True),
        mapping("/dev/shm/seg", 1024, "rw-s", shared=1024, sharers=2, dirty=True),
    ])
    return t


# By hand: each Pss line of a mapping with shared pages has 0.5 KiB added
# (the writer's executable: 4 + 0.5; the segment: 512 + 0.5 in each).
SEGMENT_TABLE = """\
 Private  +   Shared  =  RAM used\tMapping

  0.0 KiB +   4.5 KiB =   4.5 KiB\t/usr/bin/writer
 12.0 KiB +   0.0 KiB =  12.0 KiB\t/usr/bin/reader
600.0 KiB +   0.0 KiB = 600.0 KiB\t[heap] (2)
  0.0 KiB +   1.0 MiB =   1.0 MiB\t/dev/shm/seg (2)
---------------------------------
                          1.6 MiB
=================================
"""


@pytest.mark.parametrize("kernel", ["6.1", "4.4", "3.10"])
def test_the_table(tmp_path, kernel):
    t = segment_tree(tmp_path / "proc", kernel)
    result = run_main("--group-by", "mapping", procfs=t.root)
    assert (result.out, result.err, result.status) == (SEGMENT_TABLE, "", 0)


def test_the_total_is_the_rows_and_the_default_within_the_rounding(tmp_path):
    t = segment_tree(tmp_path / "proc")
    view = run_main("--group-by", "mapping", "-t", procfs=t.root)
    default = run_main("-t", procfs=t.root)
    # 4.5 + 12 + 600 + 1025 KiB; the default's rollups: 916.5 + 724.5 KiB.
    assert view.out == "%d\n" % (1641.5 * 1024)
    assert default.out == "%d\n" % (1641 * 1024)


def test_without_pss_shared_is_the_largest_and_there_is_no_total(tmp_path):
    t = segment_tree(tmp_path / "proc", "2.6.18")
    result = run_main("--group-by", "mapping", procfs=t.root)
    assert result.out == """\
 Private  +   Shared  =  RAM used\tMapping

  0.0 KiB +   8.0 KiB =   8.0 KiB\t/usr/bin/writer
 12.0 KiB +   0.0 KiB =  12.0 KiB\t/usr/bin/reader
600.0 KiB +   0.0 KiB = 600.0 KiB\t[heap] (2)
  0.0 KiB +   1.0 MiB =   1.0 MiB\t/dev/shm/seg (2)
"""
    assert result.err == ("Warning: Shared memory is slightly over-estimated by this system\n"
                          "for each program, so totals are not reported.\n")


def test_a_kernel_without_smaps_is_refused(tmp_path):
    t = segment_tree(tmp_path / "proc", "2.6.9")
    result = run_main("--group-by", "mapping", procfs=t.root)
    assert (result.out, result.err, result.status) == (
        "", "ps_mem: --group-by mapping reads /proc/PID/smaps, which %s/ does not have\n"
        % t.root, 2)


def test_p_narrows_the_rows_to_what_those_processes_map(tmp_path):
    t = segment_tree(tmp_path / "proc")
    result = run_main("--group-by", "mapping", "-p", "101", procfs=t.root)
    assert parse_table(result.out).rows == [
        ("12.0 KiB", "0.0 KiB", "12.0 KiB", None, "/usr/bin/reader"),
        ("200.0 KiB", "0.0 KiB", "200.0 KiB", None, "[heap]"),
        ("0.0 KiB", "512.5 KiB", "512.5 KiB", None, "/dev/shm/seg"),
    ]


def test_json_sort_and_top(tmp_path):
    t = segment_tree(tmp_path / "proc")
    result = run_main("--group-by", "mapping", "--json", "--sort", "count", "--reverse",
                      "--top", "2", procfs=t.root)
    document = json.loads(result.stdout)
    # Ascending by count, the last two (ties keep the RAM order), reversed.
    assert [(row["name"], row["count"], row["pids"], row["ram"])
            for row in document["programs"]] == [
        ("/dev/shm/seg", 2, [100, 101], 1025 * 1024), ("[heap]", 2, [100, 101], 600 * 1024)]
    assert document["total"] == {"ram": 1625 * 1024, "swap": 0}


def test_swap_column(tmp_path):
    t = ProcTree(tmp_path / "proc", "6.1")
    t.add(100, "swapper", "/usr/bin/swapper", maps=[
        mapping("[heap]", 800, private=400, dirty=True, swap=400),
        mapping("/dev/shm/seg", 64, "rw-s", shared=64, sharers=2, dirty=True)])
    result = run_main("--group-by", "mapping", "-S", procfs=t.root)
    assert result.out == """\
 Private  +   Shared  =  RAM used   Swap used\tMapping

  0.0 KiB +  32.5 KiB =  32.5 KiB     0.0 KiB\t/dev/shm/seg
400.0 KiB +   0.0 KiB = 400.0 KiB   400.0 KiB\t[heap]
---------------------------------------------
                        432.5 KiB   400.0 KiB
=============================================
"""


def test_what_has_no_path_is_named_for_what_it_is(tmp_path):
    t = ProcTree(tmp_path / "proc", "6.1")
    t.add(100, "keeper", "/usr/bin/keeper", maps=[
        # Mapped by this process alone: its pages are private.
        mapping("/SYSV0000abcd (deleted)", 64, "rw-s", private=64, inode=32769),
        mapping("/memfd:pool (deleted)", 128, "rw-s", private=128, inode=5001),
        mapping("/memfd:pool (deleted)", 128, "rw-s", private=128, inode=5002),  # another memfd
        mapping("/dev/zero (deleted)", 256, "rw-s", private=256, inode=5003),
        mapping("", 512, private=512, dirty=True),
        mapping("[stack:4242]", 32, private=32, dirty=True),
        mapping("[stack]", 16, private=16, dirty=True),
    ])
    rows = parse_table(run_main("--group-by", "mapping", procfs=t.root).out).rows
    assert [(row.ram, row.name) for row in rows] == [
        ("48.0 KiB", "[stack]"), ("64.0 KiB", "[SysV key=0x0000abcd shmid=32769]"),
        ("256.0 KiB", "[memfd:pool]"), ("256.0 KiB", "[anon_shmem]"), ("512.0 KiB", "[anon]")]


def test_names_are_shown_printable(tmp_path):
    t = ProcTree(tmp_path / "proc", "6.1")
    t.add(100, "mapper", "/usr/bin/mapper", maps=[
        mapping("/tmp/\x1b[2Jx\tz\u202e", 4, "r--p", shared=4),
        mapping("/tmp/x\\012Pss: 1000 kB", 8, "r--p", shared=8),  # the kernel's "\n"
        mapping("/tmp/bad\udcff", 12, "r--p", shared=12)])
    result = run_main("--group-by", "mapping", procfs=t.root)
    assert [row.name for row in parse_table(result.out).rows] == [
        "/tmp/?[2Jx?z?", "/tmp/x\\012Pss: 1000 kB", "/tmp/bad?"]
    # JSON has the names whole (escaped by JSON): only bytes that are not
    # UTF-8 were lost, at reading, as in program names.
    document = json.loads(run_main("--group-by", "mapping", "--json", procfs=t.root).stdout)
    assert [row["name"] for row in document["programs"]] == [
        "/tmp/\x1b[2Jx\tz\u202e", "/tmp/x\\012Pss: 1000 kB", "/tmp/bad?"]


def test_a_process_whose_smaps_is_not_the_kernels_is_reported(tmp_path):
    t = segment_tree(tmp_path / "proc")
    t.add(102, "odd", "/usr/bin/odd", maps=[mapping("[heap]", 4, private=4)],
          replace={"smaps": b"Pss: 4 kB\n"})
    result = run_main("--group-by", "mapping", procfs=t.root)
    assert result.out == SEGMENT_TABLE
    assert result.err == ("Warning: 1 process could not be parsed (their files are not what a "
                          "kernel writes); their memory is not included.\n")


@pytest.mark.parametrize("args,message", [
    (["-s"], "--group-by mapping cannot be combined with -s"),
    (["--show-cmdline"], "--group-by mapping cannot be combined with -s"),
    (["-d"], "--group-by mapping cannot be combined with -d"),
])
def test_groupings_of_processes_cannot_be_combined(tmp_path, args, message):
    t = segment_tree(tmp_path / "proc")
    result = run_main("--group-by", "mapping", *args, procfs=t.root)
    assert result.status == 2
    assert result.out == ""
    assert result.err.endswith("ps_mem: error: %s\n" % message)


# ----------------------------------------------------------------------------
# Shared address spaces
# ----------------------------------------------------------------------------


def test_processes_of_one_address_space_count_it_once(proc_trees):
    """clone_vm's three vfork-pool processes show identical text: 3.14's
    rule takes them for one address space, here as in the default view."""
    root = proc_trees.get("clone_vm").root
    document = json.loads(run_main("--group-by", "mapping", "--json", "-p", "5000,5001,5002",
                                   procfs=root).stdout)
    heap = [row for row in document["programs"] if row["name"] == "[heap]"]
    assert [(row["count"], row["private"]) for row in heap] == [(3, 6000 * 1024)]
    # Two of tmux's three are alike, the third not: nothing is merged.
    document = json.loads(run_main("--group-by", "mapping", "--json", "-p", "5200,5201,5202",
                                   procfs=root).stdout)
    heap = [row for row in document["programs"] if row["name"] == "[heap]"]
    assert [(row["count"], row["private"]) for row in heap] == [(3, (2000 * 2 + 2050) * 1024)]


# ----------------------------------------------------------------------------
# Real smaps: the captured trees
# ----------------------------------------------------------------------------


def shared_mappings(smaps: Path) -> int:
    """How many of a process's mappings show shared pages and a Pss line
    (oracle.awk's last column, summed)."""
    done = subprocess.run(["awk", "-f", str(ORACLE), str(smaps)], stdout=subprocess.PIPE,
                          check=True)
    return sum(int(line.rpartition(b"\t")[2].split()[-1])
               for line in done.stdout.split(b"\n") if line)


@pytest.mark.skipif(shutil.which("awk") is None, reason="awk is not installed")
@pytest.mark.parametrize("name", ["helpers", "sleeps_shell_python", "no_rollup"])
def test_captured_totals_are_the_defaults_within_the_rounding(name):
    """Per process with k mappings with shared pages, the view's Pss is at
    most (k - 1) / 2 KiB above the default's and less than (k + 1) / 2
    below (see README's Memory per mapping); on a kernel without
    smaps_rollup the default adds 0.5 KiB to every Pss line instead."""
    root = CAPTURED / name
    pids = processes(root)
    view = int(run_main("--group-by", "mapping", "-t", procfs=root).out) / 1024
    default = int(run_main("-t", procfs=root).out) / 1024
    # The processes of one address space bring a share of it each.
    sizes = space_sizes(pids)
    shared = [shared_mappings(pid / "smaps") / sizes[pid] for pid in pids]
    if (pids[0] / "smaps_rollup").exists():
        assert -sum(k + 1 for k in shared) / 2 < view - default <= sum(k - 1 for k in shared) / 2
    else:
        pss_lines = sum((pid / "smaps").read_bytes().count(b"\nPss:") / sizes[pid]
                        for pid in pids)
        assert view - default == (sum(shared) - pss_lines) / 2


def processes(root: Path) -> list:
    """The pid directories of the processes ps_mem shows: those with an exe
    link, but for the tree's `self`."""
    self_pid = (root / "self").readlink().name
    return [path for path in root.iterdir()
            if path.name.isdigit() and path.name != self_pid and (path / "exe").is_symlink()]


def space_sizes(pids: list) -> dict:
    """pid directory -> how many processes share its address space, by
    3.14's rule: the processes of one executable, all of one smaps text."""
    programs: dict = {}
    for pid in pids:
        programs.setdefault((pid / "exe").readlink(), []).append(pid)
    sizes = {}
    for members in programs.values():
        texts = {(pid / "smaps").read_bytes() for pid in members}
        for pid in members:
            sizes[pid] = len(members) if len(texts) == 1 else 1
    return sizes


@pytest.mark.parametrize("name", ["helpers", "sleeps_shell_python", "no_rollup"])
def test_captured_rows_are_what_the_processes_map(name):
    """Every row is a mapping name of some process's smaps, counted in as
    many processes as map it."""
    root = CAPTURED / name
    document = json.loads(run_main("--group-by", "mapping", "--json", procfs=root).stdout)
    assert document["programs"]
    for row in document["programs"]:
        for pid in row["pids"]:
            smaps = (root / str(pid) / "smaps").read_text("utf-8", "replace")
            if row["name"].startswith("/"):
                assert " " + row["name"] + "\n" in smaps, (pid, row["name"])
    heap = [row for row in document["programs"] if row["name"] == "[heap]"]
    with_heap = [int(pid.name) for pid in processes(root)
                 if b"[heap]\n" in (pid / "smaps").read_bytes()]
    assert sorted(heap[0]["pids"]) == sorted(with_heap)


# ----------------------------------------------------------------------------
# Captures
# ----------------------------------------------------------------------------


def test_a_capture_for_this_view_holds_every_smaps(tmp_path):
    t = segment_tree(tmp_path / "proc")
    capture = tmp_path / "capture.tar.gz"
    made = run_main("--group-by", "mapping", "--capture", str(capture), procfs=t.root)
    assert made.out == SEGMENT_TABLE
    again = run_main("--group-by", "mapping", procfs=capture)
    assert (again.out, again.err, again.status) == (SEGMENT_TABLE, "", 0)
    # And the default view, from the same capture, as from the tree.
    assert run_main(procfs=capture).out == run_main(procfs=t.root).out


def test_a_capture_without_full_smaps_says_so(tmp_path):
    t = segment_tree(tmp_path / "proc")
    capture = tmp_path / "capture.tar.gz"
    assert run_main("--capture", str(capture), procfs=t.root).status == 0
    result = run_main("--group-by", "mapping", procfs=capture)
    assert (result.out, result.err, result.status) == (
        "", "ps_mem: --group-by mapping cannot read %s: it holds no full smaps (it was "
        "captured without --group-by mapping)\n" % capture, 2)


def test_a_capture_of_a_kernel_without_rollups_holds_every_smaps(tmp_path):
    t = segment_tree(tmp_path / "proc", "4.4")
    capture = tmp_path / "capture.tar.gz"
    assert run_main("--capture", str(capture), procfs=t.root).status == 0
    result = run_main("--group-by", "mapping", procfs=capture)
    assert (result.out, result.status) == (SEGMENT_TABLE, 0)


def test_a_watch_ends_when_its_processes_are_gone(tmp_path):
    t = segment_tree(tmp_path / "proc")
    result = run_main("--group-by", "mapping", "-w", "1", "-p", "999", procfs=t.root)
    # No process showed Pss: no total, as in the default view.
    assert (result.out, result.status) == (
        " Private  +   Shared  =  RAM used\tMapping\n\nProcess does not exist anymore.\n", 0)


def rewritten(source: Path, target: Path, change) -> None:
    """A copy of capture SOURCE whose manifest is CHANGE(manifest)."""
    with tarfile.open(str(source)) as original, tarfile.open(str(target), "w:gz") as copy:
        for member in original:
            data = original.extractfile(member).read() if member.isfile() else None
            if member.name == "ps_mem-capture.json":
                data = json.dumps(change(json.loads(data))).encode()
                member.size = len(data)
            copy.addfile(member, io.BytesIO(data) if data is not None else None)


def test_the_manifest_says_whether_it_holds_full_smaps(tmp_path):
    t = segment_tree(tmp_path / "proc")
    capture = tmp_path / "capture.tar.gz"
    run_main("--group-by", "mapping", "--capture", str(capture), procfs=t.root)
    with tarfile.open(str(capture)) as archive:
        manifest = json.loads(archive.extractfile("ps_mem-capture.json").read())
        names = archive.getnames()
    assert manifest["full_smaps"] is True
    assert sorted(name for name in names if name.endswith("/smaps")) == [
        "proc/100/smaps", "proc/101/smaps", "proc/31337/smaps"]
    # A capture whose manifest lies about it is refused, not read in part.
    for value in (False, "yes", None):
        changed = tmp_path / ("changed-%s.tar.gz" % value)
        rewritten(capture, changed,
                  lambda manifest, value=value: dict(manifest, full_smaps=value))
        result = run_main("--group-by", "mapping", procfs=changed)
        assert (result.out, result.status) == ("", 2)
    assert run_main("--group-by", "mapping", procfs=tmp_path / "changed-yes.tar.gz").err == (
        "ps_mem: cannot read %s: not a usable capture: bad \"full_smaps\" in "
        "ps_mem-capture.json: not true or false\n" % (tmp_path / "changed-yes.tar.gz"))
    # A manifest of before the field: no full smaps.
    older = tmp_path / "older.tar.gz"
    rewritten(capture, older, lambda manifest: {key: value for key, value in manifest.items()
                                                if key != "full_smaps"})
    assert run_main("--group-by", "mapping", procfs=older).status == 2
    assert run_main(procfs=older).out == run_main(procfs=t.root).out

