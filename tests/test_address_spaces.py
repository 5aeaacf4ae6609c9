"""Stage: collection's shared-address-space step, offline.

Processes made with clone(CLONE_VM) but without CLONE_THREAD are separate
processes in one address space.  3.14 guesses which processes those are:
a program all of whose processes show identical memory-file text is taken
as one address space.  So it merges independent processes whose maps are
alike (`setarch -R sleep 600` three times shows one sleep's worth of RAM),
misses a shared space when the program also has an independent process
(then counts the space once per process), and with -d counts a real shared
space once per process in the total (a process and two CLONE_VM children
of 32 MiB: 96 MiB).

On a live /proc ps_mem.py asks the kernel (kcmp(2) KCMP_VM) about the
processes whose memory looks alike and counts each address space once, in
each view.  Where kcmp cannot be had (refused by seccomp, or a --procfs
tree, whose pids the kernel does not know) it keeps 3.14's rule, and its
output is 3.14's byte for byte.

Here: the helper's sorting of alike processes against a fake kernel, the
_Twins that tell it of them, 3.14's rule on a tree, and captures that
record the kernel's answer.  The live tests (the static clone_vm helper,
`setarch -R`, seccomp refusing kcmp) are test_live.py's "Shared address
spaces" section; the counting rule itself is test_aggregation.py's.
"""

from fractions import Fraction
from pathlib import Path
from typing import Dict, Optional, Sequence

import pytest

from tests.harness import REFERENCE, document_of, ps_mem, run_ours, run_reference
from tests.procfs_builder import ProcTree, program_maps


# ----------------------------------------------------------------------------
# Fixture trees and captures: the rule offline
# ----------------------------------------------------------------------------


def _pool(t: ProcTree, pids: Sequence[int], heap_kib: int) -> None:
    maps = program_maps("/usr/local/bin/pool", heap_kib=heap_kib)
    for pid in pids:
        t.add(pid, "pool", "/usr/local/bin/pool", maps=maps)


@pytest.fixture
def pool_tree(tree):
    """Six pool processes with identical memory text (3.14: one space)."""
    t = tree("6.1")
    t.add(1, "init", "/sbin/init", ppid=0, maps=program_maps("/sbin/init", heap_kib=300))
    _pool(t, (100, 101, 102, 200, 201, 300), 8000)
    return t


class FakeKernel:
    """kcmp KCMP_VM's answers for processes whose address spaces are
    given: an order among the spaces, 0 within one."""

    def __init__(self, space_of: dict, denied=()) -> None:
        self.space_of = space_of
        self.denied = set(denied)
        self.calls = 0

    def compare(self, pid1: int, pid2: int) -> int:
        self.calls += 1
        if pid1 in self.denied or pid2 in self.denied:
            raise ps_mem.KcmpDenied(pid1, pid2)
        one, two = self.space_of[pid1], self.space_of[pid2]
        return (one > two) - (one < two)


def fake_spaces(kernel: FakeKernel) -> "ps_mem.AddressSpaces":
    spaces = object.__new__(ps_mem.AddressSpaces)  # no ctypes: the fake answers
    spaces._forget()
    spaces.compare = kernel.compare
    return spaces


def classified(kernel: FakeKernel, groups) -> dict:
    return fake_spaces(kernel).classify(groups)


@pytest.mark.parametrize("space_of, calls", [
    ({1: "a", 2: "b"}, 1),  # forked: two spaces, told by one call
    ({1: "a", 2: "a"}, 1),  # CLONE_VM
    ({1: "a", 2: "b", 3: "c"}, 2),  # sorting compared both neighbours
    ({5: "b", 1: "a", 2: "b", 3: "a", 4: "c"}, 8),
    ({pid: "x%d" % (pid % 4) for pid in range(1, 41)}, 80),  # among four: two calls each
    ({pid: "x%d" % pid for pid in range(1, 41)}, 160),  # all apart: n log n
])
def test_classify_finds_each_space_asking_little(space_of, calls):
    kernel = FakeKernel(space_of)
    found = classified(kernel, [[(pid, "text") for pid in space_of]])
    assert set(found) == set(space_of)
    # Each process's space is named by one of its processes, the same for all.
    assert all(space_of[found[pid]] == space_of[pid] for pid in space_of)
    assert len(set(found.values())) == len(set(space_of.values()))
    assert kernel.calls <= calls


def test_places_told_one_at_a_time_then_forgotten():
    """What the helper does as a scan tells it of processes alike to others
    (see _Twins): the same spaces as classify(), then a clean slate."""
    kernel = FakeKernel({1: "a", 2: "b", 3: "a", 7: "c", 8: "c", 9: "d"})
    spaces = fake_spaces(kernel)
    for pid, mem_id in [(1, "t"), (7, "u"), (2, "t"), (8, "u"), (3, "t"), (9, "u")]:
        spaces.place(pid, mem_id)
    assert spaces.spaces() == {1: 1, 3: 1, 2: 2, 7: 7, 8: 7, 9: 9}
    assert spaces.spaces() == {}


def test_refusal_after_some_places_guesses_for_the_whole_text():
    kernel = FakeKernel({1: "a", 2: "b", 3: "a", 4: "a"}, denied=[3])
    spaces = fake_spaces(kernel)
    for pid in (1, 2, 3, 4):
        spaces.place(pid, "t")
    assert spaces.spaces() == {pid: ("same text", "t") for pid in (1, 2, 3, 4)}


def test_twins_tell_the_helper_of_each_alike_process_once():
    """As chunks come (out of order), _Twins tells the helper of every
    process whose memory text another has, as soon as it is known alike,
    and of no other."""
    told = []

    class Helper:
        def place(self, alike):
            told.append(list(alike))

    def sample(pid, mem_id):
        return ps_mem.ProcessSample(pid, "x", 1.0, 1.0, 0, 0, mem_id, True, True)

    twins = ps_mem._Twins(Helper())
    twins.see([sample(5, "a"), sample(6, "b"), sample(7, None)])
    twins.see([sample(1, "c"), sample(2, "a")])
    twins.see([sample(3, "a"), sample(4, None), sample(8, "b"), sample(9, "d")])
    assert told == [[], [(5, "a"), (2, "a")], [(3, "a"), (6, "b"), (8, "b")]]


def test_classify_falls_back_to_the_text_for_a_refused_group():
    kernel = FakeKernel({1: "a", 2: "a", 3: "b", 4: "b"}, denied=[4])
    found = classified(kernel, [[(1, "t1"), (2, "t1")], [(3, "t2"), (4, "t2")]])
    assert found == {1: 1, 2: 1, 3: ("same text", "t2"), 4: ("same text", "t2")}


def test_tree_uses_3_14s_rule(pool_tree):
    ours = run_ours("-d", procfs=pool_tree.root)
    if REFERENCE.exists():
        assert ours == run_reference("-d", procfs=pool_tree.root)
    assert ours.out.count("pool [") == 6


def _capture_with_spaces(tree_root: Path, spaces: Optional[Dict[int, int]], path: Path) -> Path:
    procfs = ps_mem.ProcFS(str(tree_root))
    snapshot = ps_mem.capture(procfs, procfs.self_pid())
    snapshot.manifest = snapshot.manifest._replace(address_spaces=spaces)
    ps_mem.write_capture(snapshot, str(path))
    return path


@pytest.mark.parametrize("view", [[], ["-d"]], ids=["programs", "-d"])
def test_capture_with_recorded_spaces(pool_tree, tmp_path, view):
    """The same six processes, with the kernel's answer recorded: spaces
    {100,101,102}, {200,201} and {300}.  The pool is three spaces' worth:
    each process brings 1/size of its own space, in every view."""
    spaces = {1: 1, 100: 100, 101: 100, 102: 100, 200: 200, 201: 200, 300: 300}
    exact = _capture_with_spaces(pool_tree.root, spaces, tmp_path / "exact.tar.gz")
    guessed = _capture_with_spaces(pool_tree.root, None, tmp_path / "guessed.tar.gz")
    one = document_of(run_ours("--json", "-p", "300", procfs=exact))["programs"][0]
    got = document_of(run_ours("--json", *view, procfs=exact))
    pools = [program for program in got["programs"] if program["name"].startswith("pool")]
    assert sum(program["ram"] for program in pools) == pytest.approx(3 * one["ram"], abs=2)
    if view:
        share = {pid: Fraction(1, size) for size, members in ((3, (100, 101, 102)),
                                                                (2, (200, 201)), (1, (300,)))
                 for pid in members}
        for program in pools:
            [pid] = program["pids"]
            assert program["ram"] == pytest.approx(float(share[pid]) * one["ram"], abs=2)
    # Rows add up to the total (each row's bytes are rounded apart).
    assert got["total"]["ram"] == pytest.approx(
        sum(program["ram"] for program in got["programs"]), abs=len(got["programs"]))
    # Without the record: 3.14's rule, the six are one space.
    old = document_of(run_ours("--json", *view, procfs=guessed))
    old_pools = [p for p in old["programs"] if p["name"].startswith("pool")]
    assert sum(program["ram"] for program in old_pools) == pytest.approx(
        one["ram"] if not view else 6 * one["ram"], abs=2)
