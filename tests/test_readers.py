"""Forked readers: collect() with the pids shared among several processes.

On the live /proc with many pids, ps_mem forks one reader per CPU (see
reader_count() and read_forked()).  Whatever the readers do, the scan must
be the one a single reader makes: the same samples in the proc root's
order, the same count of unreadable processes; a reader that fails has its
share read by the parent; an interrupted parent leaves no child behind.
"""

import errno
import os
import signal
from typing import List

import pytest

from tests import trees
from tests.harness import live
from tests.inprocess import ps_mem
from tests.realproc import Processes

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


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    """Chunks of two pids, so that the small trees make several."""
    monkeypatch.setattr(ps_mem, "_CHUNK_PIDS", 2)


@pytest.fixture
def children(monkeypatch) -> List[int]:
    """The pids of the readers forked during the test (not kcmp's helper)."""
    forked: List[int] = []
    original = ps_mem._Reader.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        forked.append(self._child.pid)

    monkeypatch.setattr(ps_mem._Reader, "__init__", record)
    return forked


def assert_reaped(pids: List[int]) -> None:
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


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


def test_more_readers_than_pids(proc_trees, children):
    procfs = ps_mem.ProcFS(str(proc_trees.get("clone_vm").root))
    assert scan(procfs, ps_mem.Options(), 50) == scan(procfs, ps_mem.Options(), 1)


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

    def reading(procfs, options, kernel, pids, *rest):
        if os.getpid() == parent:
            by_parent.extend(pids)
        elif failure == "killed":  # every child, once it has taken a chunk
            os.kill(os.getpid(), signal.SIGKILL)
        return original(procfs, options, kernel, pids, *rest)

    monkeypatch.setattr(ps_mem, "_scan", reading)
    seen = []
    result = ps_mem.read_forked(procfs, ps_mem.Options(), kernel, pids, readers, seen.extend)
    assert sorted(sample.pid for sample in seen) == sorted(sample.pid for sample in result.samples)
    if failure == "killed":
        assert by_parent  # it read again what the killed children had taken
    assert_reaped(children)


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


# ----------------------------------------------------------------------------
# How many readers
# ----------------------------------------------------------------------------


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


def test_reader_count_without_affinity(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert ps_mem.reader_count(ps_mem.ProcFS("/proc", ps_mem.LIVE), 2000) == 2


# ----------------------------------------------------------------------------
# The live /proc
# ----------------------------------------------------------------------------


@live
def test_live_readers_scan_as_one_reader(children):
    """Idle processes read by three readers and by one: the same samples."""
    with Processes() as processes:
        started = [processes.sleep_named(b"reader-%d" % index) for index in range(7)]
        options = ps_mem.Options(pids=tuple(process.pid for process in started))
        procfs = ps_mem.ProcFS("/proc", ps_mem.LIVE)
        kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
        one = ps_mem.collect(procfs, options, kernel, os.getpid(), readers=1)
        three = ps_mem.collect(procfs, options, kernel, os.getpid(), readers=3)
    assert [sample.name for sample in one.samples] == ["reader-%d" % index for index in range(7)]

    def unshared(scan):
        # The readers map libc too while they run, so the sleeps' shares of
        # it (PSS, and the memory text) differ between the two scans.
        return [(sample.pid, sample.name, sample.private_kib, sample.swap_kib)
                for sample in scan.samples], scan.unreadable

    assert unshared(three) == unshared(one)
    assert len(children) == 2
    assert_reaped(children)


def spaces_of(scan: "ps_mem.Scan") -> set:
    """The address spaces found, as sets of pids (processes alone in theirs
    left out), however each is named."""
    spaces = {}
    for pid, mm in (scan.address_spaces or {}).items():
        spaces.setdefault(mm, set()).add(pid)
    return {frozenset(pids) for pids in spaces.values() if len(pids) > 1}


@live
def test_live_readers_find_the_spaces_one_reader_finds(children):
    """Readers tell kcmp's helper of alike processes as they read them: the
    same spaces as one reader asking at the end.  Two CLONE_VM groups and a
    forked family (alike, each in a space of its own), in chunks of two."""
    with Processes() as processes:
        groups = [processes.helper("clone_vm", "2", "8").pids for _ in range(2)]
        family = processes.helper("forkshare", "4", "3").pids
        pids = tuple(pid for group in groups for pid in group) + tuple(family)
        options = ps_mem.Options(pids=pids)
        procfs = ps_mem.ProcFS("/proc", ps_mem.LIVE)
        kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
        one = ps_mem.collect(procfs, options, kernel, os.getpid(), readers=1)
        three = ps_mem.collect(procfs, options, kernel, os.getpid(), readers=3)
    assert spaces_of(one) == spaces_of(three) == {frozenset(group) for group in groups}
    # The family's children were asked about: alike, yet each alone.
    asked = set(three.address_spaces)
    assert set(family[1:]) <= asked
    assert_reaped(children)


def test_no_fork_reads_every_share_here(proc_trees, monkeypatch):
    procfs = ps_mem.ProcFS(str(proc_trees.get("rollup_6_1").root))
    expected = scan(procfs, ps_mem.Options(), 1)

    def no_fork():
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert scan(procfs, ps_mem.Options(), 3) == expected
