"""Every fixture tree read both ways: as 3.14 reads it (ps_mem.TREE, the
reading of --procfs DIR) and by the fastest path, the one the live /proc
gets (ps_mem.LIVE, without kcmp, which only the live /proc can answer),
with one reader and with forked readers.

The two must take the same samples.  They differ only where a tree shows
what no kernel does: one file of a process missing or garbled while the
others are whole.  The fast path reads fewer files (comm and stat instead
of status, no statm or command line where the name does not need them),
so it still sees such a process where 3.14's reading leaves it out.  Those
trees and the pids it sees differently are listed here by hand.
"""

import pytest

from tests import trees
from tests.inprocess import ps_mem
from tests.procfs_builder import mapping

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


def sample(root, reading, options, readers):
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
        as_3_14 = sample(root, ps_mem.TREE, options, 1)
        fast = sample(root, FAST, options, 1)
        assert sample(root, FAST, options, 3) == fast, option_name
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
    names = {item.pid: item.name for item in sample(t.root, FAST, options, 1).samples}
    assert names == {700: "other", 701: "thing"}
    names = {item.pid: item.name for item in sample(t.root, ps_mem.TREE, options, 1).samples}
    assert names == {701: "thing"}

