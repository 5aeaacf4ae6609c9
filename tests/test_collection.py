"""Stage: collection.  collect(), its Namer and read_memory: from pids to
samples, on fixture trees; what the live /proc adds is test_live.py's.

  * Malformed, unreadable and vanishing files: never a traceback.  A
    process's files can be anything a test (or a broken kernel, a FUSE
    "proc", a container runtime's fake) puts there: cut short, garbled,
    empty, oversized.  A process whose files cannot be parsed is left out,
    like one that exited, and every other process is shown as usual:
    collect() and main() on a tree with one garbled process and one good
    one (hypothesis), and each file broken in turn against 3.14.
  * Processes that may not be read: one line on stderr, stdout unchanged.
  * Which processes are read: ps_mem's own pid left out, Pss per line.
  * Forked readers (reader_count(), read_forked()): whatever the readers
    do, the scan is the one a single reader makes, the same samples in the
    proc root's order; a reader that fails has its share read by the
    parent; an interrupted parent leaves no child behind.

The defects found here (a counter no float holds, an empty Uid line) have
tests of their own, under "Defects found here".  Huge inputs are
test_stress.py's.
"""

import contextlib
import errno
import json
import os
import re
import select
import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import trees
from tests.garbling import CGROUP, SAMPLES, garbled
from tests.harness import (DENIED_WARNING_1, DENIED_WARNING_2, REFERENCE, assert_reaped,
                           fork_refused, need_reference, printable_names, ps_mem, run_main,
                           run_ours, run_reference, UNPARSABLE_WARNING_1)
from tests.procfs_builder import SELF_PID, ProcTree, mapping, program_maps


# ----------------------------------------------------------------------------
# Defects found here, fixed: a process whose numbers no float holds, an
# empty Uid line
# ----------------------------------------------------------------------------


# A counter too large for a float (the kernel prints at most 20 digits).
HUGE = b"9" * 400


def test_defect_huge_smaps_counter(tree):
    t = _good_and_victim(tree, replace={
        "smaps_rollup": SAMPLES["smaps_rollup"].replace(b"181 kB", HUGE + b" kB")})
    scan = _collect(t.root, ps_mem.Options())
    assert [sample.pid for sample in scan.samples] == [GOOD]


def test_defect_huge_statm_counter(tree):
    t = _good_and_victim(tree, kernel="2.6.18", omit=("smaps",),
                         replace={"statm": b"730 " + HUGE + b" 419 5 0 89 0\n"})
    scan = _collect(t.root, ps_mem.Options(), kernel=(2, 6, 18))
    assert [sample.pid for sample in scan.samples] == [GOOD]


def test_defect_empty_uid_line(tree):
    status = re.sub(rb"\nUid:[^\n]*\n", b"\nUid:\t\n", SAMPLES["status"])
    t = _good_and_victim(tree, replace={"status": status})
    scan = _collect(t.root, ps_mem.Options(group_by="user"))
    assert [sample.pid for sample in scan.samples] == [GOOD]


def test_defect_huge_counter_through_the_command_line(tree):
    t = _good_and_victim(tree, replace={
        "smaps_rollup": SAMPLES["smaps_rollup"].replace(b"181 kB", HUGE + b" kB")})
    result = run_ours(procfs=t.root)
    assert b"Traceback" not in result.stderr, result.err.strip().splitlines()[-1]
    assert result.status == 0 and "\tgood\n" in result.out


# ----------------------------------------------------------------------------
# collect() and main() on a tree: one garbled process beside a good one
# ----------------------------------------------------------------------------

GOOD, VICTIM = 100, 200
FILES = ("smaps_rollup", "smaps", "status", "statm", "cmdline", "cgroup")


def _good_and_victim(tree_factory, kernel: str = "6.1", **victim) -> ProcTree:
    t = tree_factory(kernel)
    t.add(GOOD, "good", "/usr/bin/good", maps=program_maps("/usr/bin/good", heap_kib=2400))
    t.add(VICTIM, "victim", "/usr/bin/victim", ppid=GOOD,
          maps=program_maps("/usr/bin/victim", heap_kib=3100), **victim)
    return t


def _collect(root: Path, options: ps_mem.Options, kernel=(6, 1, 0)) -> ps_mem.Scan:
    return ps_mem.collect(ps_mem.ProcFS(str(root)), options, kernel, SELF_PID)


@pytest.fixture(scope="module")
def garbled_tree(tmp_path_factory):
    """A tree with GOOD and VICTIM, and VICTIM's pristine files; each
    example rewrites some of VICTIM's files."""
    t = ProcTree(tmp_path_factory.mktemp("garbled") / "proc", "6.1")
    t.add(GOOD, "good", "/usr/bin/good", maps=program_maps("/usr/bin/good", heap_kib=2400))
    t.add(VICTIM, "victim", "/usr/bin/victim", ppid=GOOD,
          maps=program_maps("/usr/bin/victim", heap_kib=3100))
    for pid in (GOOD, VICTIM):
        (t.root / str(pid) / "cgroup").write_bytes(CGROUP)
    (t.root / str(VICTIM) / "smaps").write_bytes(SAMPLES["smaps"])
    pristine = {name: (t.root / str(VICTIM) / name).read_bytes() for name in FILES}
    return t, pristine


@st.composite
def victim_files(draw) -> Dict[str, Optional[bytes]]:
    """New contents for 1 to 3 of VICTIM's files (None: the file is gone)."""
    names = draw(st.lists(st.sampled_from(FILES), min_size=1, max_size=3, unique=True))
    return {name: draw(st.none() | garbled(SAMPLES[name])) for name in names}


def _write_victim(t: ProcTree, pristine: Dict[str, bytes],
                  files: Dict[str, Optional[bytes]]) -> None:
    for name in FILES:
        path = t.root / str(VICTIM) / name
        content = files.get(name, pristine[name])
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            path.write_bytes(content)


COLLECT_OPTIONS = [ps_mem.Options(), ps_mem.Options(split_args=True),
                   ps_mem.Options(by_pid=True), ps_mem.Options(group_by="user"),
                   ps_mem.Options(group_by="cgroup")]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=victim_files())
def test_collect_skips_what_it_cannot_parse(garbled_tree, files):
    """The whole pipeline in process (collect, aggregate, the formatters):
    no exception; the good process is always there; the garbled one is
    either read or left out, and never counted as denied."""
    t, pristine = garbled_tree
    _write_victim(t, pristine, files)
    procfs = ps_mem.ProcFS(str(t.root))
    for options in COLLECT_OPTIONS:
        scan = ps_mem.collect(procfs, options, (6, 1, 0), SELF_PID)
        report = ps_mem.aggregate(scan.samples, scan.unreadable)
        ps_mem.rows(report, options)
        ps_mem.footer(options, report.pss_seen, report.swap_pss_seen, report)
        ps_mem.json_document(report, ps_mem.Accuracy(2, 2), True, True, "6.1", 0, [])
        pids = [sample.pid for sample in scan.samples]
        assert GOOD in pids and set(pids) <= {GOOD, VICTIM}
        assert scan.unreadable == 0


CLI_OPTIONS = [[], ["-s"], ["-d"], ["-S"], ["-t"], ["--json"], ["--group-by", "user"],
               ["--group-by", "cgroup"]]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=victim_files())
def test_command_line_skips_what_it_cannot_parse(garbled_tree, files):
    """main() as a user runs it: exit 0 (PSS is there: -t too), the good
    process in every view, and on stderr nothing, or one line where the
    victim was left out because its files could not be parsed (not where it
    is shown)."""
    t, pristine = garbled_tree
    _write_victim(t, pristine, files)
    for args in CLI_OPTIONS:
        result = run_main(*args, procfs=t.root)
        assert result.status == 0, (args, result)
        assert result.stderr in (b"", UNPARSABLE_WARNING_1), (args, result)
        if result.stderr:
            assert b"victim" not in result.stdout, (args, result)
        if args == ["-t"]:
            assert re.fullmatch(rb"\d+\n", result.stdout), result.stdout
        elif args == ["--json"]:
            names = [program["name"] for program in json.loads(result.stdout)["programs"]]
            assert "good" in names
        elif args == ["--group-by", "user"]:
            assert b"\troot" in result.stdout
        elif args == ["--group-by", "cgroup"]:
            # A hybrid machine's file: the memory controller's path.
            assert b"\tmemory:/user.slice/user-1000.slice" in result.stdout
        elif args == ["-s"]:
            assert b"\t/usr/bin/good\n" in result.stdout
        elif args == ["-d"]:
            assert b"\tgood [100]\n" in result.stdout
        else:
            assert b"\tgood\n" in result.stdout


# The broken files that leave the victim out because they cannot be parsed
# (ps_mem.py says so on stderr; 3.14 dies or says nothing): a status with
# no Name line (empty) or no PPid in its first lines where the name needs
# its parent (noise: a dozen bytes a line); a statm without numbers.  (-s
# reads no status.)  An empty or cut rollup or smaps has no counted line:
# the victim is read, with no memory, and its row is not shown; a cut
# status still names it, a cut statm is whole (it is shorter than the cut).
UNPARSABLE = {("status", "empty"), ("status", "noise"), ("statm", "empty"),
              ("statm", "noise")}


@pytest.mark.parametrize("name", [name for name in FILES if name != "cgroup"])
@pytest.mark.parametrize("shape", ["empty", "cut", "gone", "noise"])
def test_each_file_broken_alone_matches_3_14_or_skips(tree, tmp_path, name, shape):
    """Each of the victim's files broken in turn (3.14 does not read
    cgroup): ours prints 3.14's output where 3.14 copes, and 3.14's output
    without the victim where 3.14 dies with a traceback."""
    need_reference()
    if (name, shape) == ("smaps", "gone"):
        # 3.14 reads smaps_rollup only if smaps exists too, and else falls
        # back to statm; ours reads smaps_rollup.  No kernel has one
        # without the other, so the difference is left alone.
        pytest.skip("smaps_rollup without smaps: not a kernel's tree")
    t = _good_and_victim(tree)
    path = t.root / str(VICTIM) / name
    if shape == "gone":
        path.unlink()
    else:
        path.write_bytes({"empty": b"", "cut": path.read_bytes()[:37],
                          "noise": bytes(range(256)) * 3}[shape])
    without = tmp_path / "without"
    shutil.copytree(t.root, without, symlinks=True)
    shutil.rmtree(without / str(VICTIM))
    for args in ([], ["-s"]) if name in ("cmdline", "status") else ([],):
        ours = run_main(*args, procfs=t.root)
        reference = run_reference(*args, procfs=t.root)
        if b"Traceback" in reference.stderr:
            reference = run_reference(*args, procfs=without)
        if (name, shape) in UNPARSABLE and not (name == "status" and args == ["-s"]):
            reference = reference._replace(stderr=reference.stderr + UNPARSABLE_WARNING_1)
        assert ours == printable_names(reference), (name, shape, args)


# ----------------------------------------------------------------------------
# Processes that may not be read
# ----------------------------------------------------------------------------


def _denying(monkeypatch, denied_pids: Sequence[int], error: int = errno.EACCES) -> None:
    """Make every file and link of DENIED_PIDS answer ERROR, as /proc
    answers a process of another user (or one hidden by hidepid).  Every
    read of a proc root, tree or live, goes through ProcFS._read() and
    ProcFS.readlink_relative(), with the path below the root."""
    read, readlink = ps_mem.ProcFS._read, ps_mem.ProcFS.readlink_relative
    pattern = re.compile(r"^(%s)/[^/]+$" % "|".join(map(str, denied_pids)))

    def check(relative: str) -> None:
        if pattern.search(relative):
            raise OSError(error, os.strerror(error), relative)

    def denied_read(self, relative, *args, **kwargs):
        check(relative)
        return read(self, relative, *args, **kwargs)

    def denied_readlink(self, relative):
        check(relative)
        return readlink(self, relative)

    monkeypatch.setattr(ps_mem.ProcFS, "_read", denied_read)
    monkeypatch.setattr(ps_mem.ProcFS, "readlink_relative", denied_readlink)


@pytest.mark.parametrize("args", [[], ["-s"], ["-d"], ["-S"], ["-t"], ["-d", "-S", "-t"]])
def test_denied_processes_warned_on_stderr_only(three, monkeypatch, args, tmp_path):
    """stdout is exactly what it is without the denied processes; stderr
    gains one line, plural where it should be; the status is unchanged."""
    without = tmp_path / "without"
    shutil.copytree(three.root, without, symlinks=True)
    for pid in (300, 302):
        shutil.rmtree(without / str(pid))
    expected = run_main(*args, procfs=without)
    _denying(monkeypatch, [300])
    one = run_main(*args, procfs=three.root)
    _denying(monkeypatch, [300, 302])
    two = run_main(*args, procfs=three.root)
    monkeypatch.undo()
    assert one.stderr == expected.stderr + DENIED_WARNING_1
    assert two.stdout == expected.stdout and two.status == expected.status
    assert two.stderr == expected.stderr + DENIED_WARNING_2
    if REFERENCE.exists():
        # 3.14 leaves them out without a word: the same stdout.
        assert two.stdout == run_reference(*args, procfs=without).stdout


@pytest.mark.parametrize("code, warned", [(errno.EACCES, True), (errno.EPERM, True),
                                          (errno.ESRCH, False), (errno.ENOENT, False)])
def test_only_permission_errors_are_warned(three, monkeypatch, code, warned):
    _denying(monkeypatch, [301], code)
    result = run_main(procfs=three.root)
    monkeypatch.undo()
    assert result.status == 0 and b"\tbeta\n" not in result.stdout
    assert result.stderr == (DENIED_WARNING_1 if warned else b"")


def test_denied_in_json_and_watch(three, monkeypatch):
    _denying(monkeypatch, [301])
    document = json.loads(run_main("--json", procfs=three.root).stdout)
    assert document["warnings"] == [DENIED_WARNING_1.decode().rstrip("\n")]
    assert [program["name"] for program in document["programs"]] == ["init", "alpha", "gamma"]
    # A watch that ends by itself (-p of a denied pid): the warning once, at the end.
    watch = run_main("-w", "1", "-p", "301", procfs=three.root)
    assert watch.stdout.endswith(b"Process does not exist anymore.\n")
    assert watch.stderr == DENIED_WARNING_1 and watch.status == 0


# ----------------------------------------------------------------------------
# Which processes are read
# ----------------------------------------------------------------------------


def test_self_is_left_out(proc_trees):
    tree = proc_trees.get("rollup_6_1")
    result = run_ours(procfs=tree.root)
    assert result.status == 0
    assert "\tps_mem" not in result.out  # ps_mem's own pid, named "ps_mem"
    assert "\tpython3.11\n" in result.out  # the other python process is there


def test_self_is_read_once(proc_trees, monkeypatch):
    """The root's `self` is read when the root is opened, and that answer
    kept: `ps_mem -p PID` makes no call it does not need."""
    tree = proc_trees.get("rollup_6_1")
    links = []
    readlink = os.readlink

    def counting(path, *args, **named):
        links.append(os.fspath(path))
        return readlink(path, *args, **named)

    monkeypatch.setattr(os, "readlink", counting)
    procfs = ps_mem.ProcFS(str(tree.root))
    assert [procfs.self_pid() for _ in range(3)] == [SELF_PID] * 3
    result = run_main("-p", "300", procfs=tree.root)
    assert result.status == 0
    assert [link for link in links if link.endswith("self")] == [str(tree.root / "self")] * 2


def test_half_kib_per_pss_line_is_visible(proc_trees):
    """300 mappings, each Pss 3 KiB and Private 3 KiB: 150 KiB of Shared
    comes only from the 0.5 KiB added per Pss line."""
    result = run_ours("-p", "5000", procfs=proc_trees.get("smaps_pss_per_line").root)
    assert "\n900.0 KiB + 150.0 KiB =   1.0 MiB\tmany-maps\n" in result.out


# ----------------------------------------------------------------------------
# Forked readers: as one reader
# ----------------------------------------------------------------------------


# Every tree that has a kernel release to read.
TREES = sorted(name for name in trees.ALL if name != "no_osrelease")
OPTION_SETS = {
    "default": ps_mem.Options(),
    "split_args": ps_mem.Options(split_args=True),
    "by_pid": ps_mem.Options(by_pid=True),
    "user": ps_mem.Options(group_by="user"),
}


def scan(procfs: "ps_mem.ProcFS", options: "ps_mem.Options", readers: int) -> "ps_mem.Scan":
    kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
    return ps_mem.collect(procfs, options, kernel, procfs.self_pid(), readers=readers)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("readers", [2, 3, 7])
@pytest.mark.parametrize("name", TREES)
def test_readers_scan_as_one_reader(proc_trees, name, readers, children):
    procfs = ps_mem.ProcFS(str(proc_trees.get(name).root))
    for options in OPTION_SETS.values():
        assert scan(procfs, options, readers) == scan(procfs, options, 1)
    # One reader per chunk at most, this process one of them.
    chunks = len(ps_mem._chunks([pid for pid in procfs.pids() if pid != procfs.self_pid()],
                                readers))
    assert len(children) == len(OPTION_SETS) * max(0, min(readers, chunks) - 1)
    assert_reaped(children)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("count", [0, 1, 5, 31, 200, 1000, 5000, 40000, 100000])
@pytest.mark.parametrize("readers", [1, 2, 8])
def test_chunks_cover_the_pids_in_order(count, readers, monkeypatch):
    monkeypatch.setattr(ps_mem, "_CHUNK_PIDS", 32)
    pids = list(range(100, 100 + count))
    chunks = ps_mem._chunks(pids, readers)
    assert [pid for chunk in chunks for pid in chunk] == pids
    assert all(chunks) and len(chunks) <= 1024
    sizes = [len(chunk) for chunk in chunks]
    if count >= 32 * readers:
        # The pids of the last chunk each reader may take, in quarters.
        assert sizes[-4 * readers:] == [max(sizes) // 4] * (4 * readers)
    assert max(sizes, default=0) <= max(32, -(-count // 1000))


@pytest.mark.usefixtures("small_chunks")
def test_readers_samples_keep_one_copy_of_each_name(proc_trees, children):
    """A reader's message brings its own copy of each name: the samples of
    a program read in several chunks, here and by children, still hold
    one."""
    procfs = ps_mem.ProcFS(str(proc_trees.get("renamed_children").root))
    samples = scan(procfs, ps_mem.Options(), 3).samples
    assert len(children) == 2
    copies: Dict[str, set] = {}
    for sample in samples:
        copies.setdefault(sample.name, set()).add(id(sample.name))
    assert max(Counter(sample.name for sample in samples).values()) > 2  # several chunks
    assert {name: len(ids) for name, ids in copies.items()} == {name: 1 for name in copies}


@pytest.mark.usefixtures("small_chunks")
def test_more_readers_than_pids(proc_trees, children):
    procfs = ps_mem.ProcFS(str(proc_trees.get("clone_vm").root))
    assert scan(procfs, ps_mem.Options(), 50) == scan(procfs, ps_mem.Options(), 1)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("failure", ["raises", "killed", "bad records", "exit 0 early"])
def test_failed_reader_share_is_read_by_the_parent(proc_trees, monkeypatch, children, failure):
    procfs = ps_mem.ProcFS(str(proc_trees.get("rollup_6_1").root))
    expected = scan(procfs, ps_mem.Options(), 1)
    parent = os.getpid()
    original = ps_mem._scan

    def failing(procfs, options, kernel, pids, *rest):
        if os.getpid() != parent:
            if failure == "raises":
                raise RuntimeError("a reader's bug")
            if failure == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            if failure == "bad records":
                return ps_mem.Scan([("not a sample",)], 0)
            os._exit(0)  # nothing sent, and a clean exit
        return original(procfs, options, kernel, pids, *rest)

    monkeypatch.setattr(ps_mem, "_scan", failing)
    assert scan(procfs, ps_mem.Options(), 3) == expected
    assert len(children) == 2
    assert_reaped(children)


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("failure", [None, "killed"])
@pytest.mark.parametrize("readers", [2, 3])
def test_each_sample_seen_once_as_it_comes(proc_trees, monkeypatch, children, readers, failure):
    """read_forked() shows every sample to SEEN once, as its chunk is read
    here, taken from a child, or read again for a failed child: what tells
    kcmp's helper of alike processes (see _Twins)."""
    procfs = ps_mem.ProcFS(str(proc_trees.get("rollup_6_1").root))
    kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
    pids = [pid for pid in procfs.pids() if pid != procfs.self_pid()]
    parent = os.getpid()
    original = ps_mem._scan
    by_parent = []
    # A child that has taken a chunk waits until this process has read one:
    # else quick children may take every chunk of so small a tree before
    # the parent starts, and its own reading goes untried (it did, in
    # about a third of the runs).
    gate_out, gate_in = os.pipe()

    def reading(procfs, options, kernel, pids, *rest):
        if os.getpid() == parent:
            by_parent.extend(pids)
            scan = original(procfs, options, kernel, pids, *rest)
            os.write(gate_in, b"." * 16)  # one for each chunk a child may take
            return scan
        if failure == "killed":  # every child, once it has taken a chunk
            os.kill(os.getpid(), signal.SIGKILL)
        if select.select([gate_out], [], [], 10)[0]:  # (a parent that reads none: fail, not hang)
            os.read(gate_out, 1)
        return original(procfs, options, kernel, pids, *rest)

    monkeypatch.setattr(ps_mem, "_scan", reading)
    seen = []
    try:
        result = ps_mem.read_forked(procfs, ps_mem.Options(), kernel, pids, readers,
                                     seen.extend)
    finally:
        os.close(gate_out)
        os.close(gate_in)
    assert sorted(sample.pid for sample in seen) == sorted(sample.pid for sample in result.samples)
    assert by_parent  # the parent read some (or read again a failed child's)
    assert_reaped(children)


@pytest.mark.usefixtures("small_chunks")
def test_interrupted_parent_stops_and_reaps_its_readers(proc_trees, monkeypatch, children):
    procfs = ps_mem.ProcFS(str(proc_trees.get("rollup_6_1").root))
    parent = os.getpid()
    original = ps_mem._read_chunks

    def interrupted(*args):
        # Ctrl-C as the parent starts its own reading (the children may
        # have taken every chunk already: a small tree is read at once).
        if os.getpid() == parent:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(ps_mem, "_read_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        scan(procfs, ps_mem.Options(), 3)
    assert len(children) == 2
    assert_reaped(children)


@pytest.mark.usefixtures("small_chunks")
def test_no_fork_reads_every_share_here(proc_trees, monkeypatch):
    procfs = ps_mem.ProcFS(str(proc_trees.get("rollup_6_1").root))
    expected = scan(procfs, ps_mem.Options(), 1)

    monkeypatch.setattr(os, "fork", fork_refused)
    assert scan(procfs, ps_mem.Options(), 3) == expected


# ----------------------------------------------------------------------------
# How many readers
# ----------------------------------------------------------------------------


@pytest.mark.usefixtures("small_chunks")
def test_reader_count(proc_trees, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    live_proc = ps_mem.ProcFS("/proc", ps_mem.LIVE)
    assert ps_mem.reader_count(live_proc, 2000) == 4
    assert ps_mem.reader_count(live_proc, 600) == 2  # at least 250 pids each
    assert ps_mem.reader_count(live_proc, 499) == 1
    assert ps_mem.reader_count(live_proc, 3) == 1  # -p with a few pids
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert ps_mem.reader_count(live_proc, 100000) == 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert ps_mem.reader_count(live_proc, 2000) == 1
    # A tree is read as 3.14 reads it, by one process.
    tree = ps_mem.ProcFS(str(proc_trees.get("rollup_6_1").root))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert ps_mem.reader_count(tree, 2000) == 1


@pytest.mark.usefixtures("small_chunks")
def test_reader_count_without_affinity(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert ps_mem.reader_count(ps_mem.ProcFS("/proc", ps_mem.LIVE), 2000) == 2


# ----------------------------------------------------------------------------
# Both readings of every tree: as 3.14 reads it, and by the fast path
# ----------------------------------------------------------------------------
#
# Every fixture tree read as 3.14 reads it (ps_mem.TREE, the reading of
# --procfs DIR) and by the fastest path, the one the live /proc gets
# (ps_mem.LIVE, without kcmp, which only the live /proc can answer), with one
# reader and with forked readers.  The two must take the same samples.  They
# differ only where a tree shows what no kernel does: one file of a process
# missing or garbled while the others are whole.  The fast path reads fewer
# files (comm and stat instead of status, no statm or command line where the
# name does not need them), so it still sees such a process where 3.14's
# reading leaves it out.  Those trees and the pids it sees differently are
# listed here by hand.

FAST = ps_mem.LIVE._replace(kcmp=False, root_only=False, as_data=True)
OPTION_SETS = {
    "default": ps_mem.Options(),
    "-s": ps_mem.Options(split_args=True),
    "-d": ps_mem.Options(by_pid=True),
    "user": ps_mem.Options(group_by="user"),
    "cgroup": ps_mem.Options(group_by="cgroup"),
}
# tree -> {option set: pids sampled differently}; every other pair: none.
EXPECTED_DIFFERENCES = {
    # 2300's cmdline is missing: 3.14's reading leaves it out, and its child
    # 2301 cannot then be named after it (it stays "Web Content").
    "renamed_children": {"default": {2300, 2301}, "-d": {2300, 2301},
                         "user": {2300, 2301}, "cgroup": {2300, 2301}},
    # cmdline (5601) or status (5602) missing: gone to 3.14's reading; the
    # fast path needs neither (but status for the user).
    "vanished_quietly": {"default": {5601, 5602}, "-d": {5601, 5602},
                         "user": {5601}, "cgroup": {5601, 5602}},
    # statm missing: 3.14 reads it first, whatever it then uses.
    "vanished_statm_only": {name: {5555} for name in OPTION_SETS},
    # status empty or cut short: the fast path names 5555 from comm and
    # stat (-s needs no status, the user needs it both ways).
    "vanished_status_empty": {"default": {5555}, "-d": {5555}, "cgroup": {5555}},
    "vanished_status_short": {"default": {5555}, "-d": {5555}, "cgroup": {5555}},
}
TREES = sorted(name for name in trees.ALL if name != "no_osrelease")


def sample_read(root, reading, options, readers):
    procfs = ps_mem.ProcFS(str(root), reading)
    kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
    return ps_mem.collect(procfs, options, kernel, procfs.self_pid(), readers=readers)


def differing_pids(one, other):
    ones = {item.pid: item for item in one.samples}
    others = {item.pid: item for item in other.samples}
    return {pid for pid in set(ones) | set(others) if ones.get(pid) != others.get(pid)}


@pytest.mark.parametrize("name", TREES)
def test_both_readings_take_the_same_samples(proc_trees, monkeypatch, name):
    monkeypatch.setattr(ps_mem, "_CHUNK_PIDS", 2)  # several chunks in a small tree
    root = proc_trees.get(name).root
    for option_name, options in OPTION_SETS.items():
        as_3_14 = sample_read(root, ps_mem.TREE, options, 1)
        fast = sample_read(root, FAST, options, 1)
        assert sample_read(root, FAST, options, 3) == fast, option_name
        expected = EXPECTED_DIFFERENCES.get(name, {}).get(option_name, set())
        assert differing_pids(as_3_14, fast) == expected, option_name
        if not expected:
            assert fast == as_3_14, option_name
        # Where both see a process, they see the same one.
        assert fast.unreadable == as_3_14.unreadable, option_name


def test_the_fast_path_is_another_path(tree):
    """The fast path really reads other files: on a tree whose comm names
    another program than status does, it shows comm's name, and without
    statm it still sees the process."""
    t = tree("6.1")
    maps = [mapping("/usr/bin/thing", 400, private=400)]
    t.add(700, "thing", "/usr/bin/thing", maps=maps, replace={"comm": b"other\n"},
          omit=("statm",))
    t.add(701, "thing", "/usr/bin/thing", maps=maps)
    options = ps_mem.Options()
    names = {item.pid: item.name for item in sample_read(t.root, FAST, options, 1).samples}
    assert names == {700: "other", 701: "thing"}
    names = {item.pid: item.name for item in sample_read(t.root, ps_mem.TREE, options, 1).samples}
    assert names == {701: "thing"}

