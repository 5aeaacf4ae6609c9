"""Shared address spaces, counted exactly.

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

The live tests use the static clone_vm helper (its memory is its own, so
two programs reading it agree to the byte) and `setarch -R`, which turns
address-space randomisation off so that independent processes have
identical maps.
"""

import ctypes
import errno
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.capture_tree import capture as capture_tree
from tests.harness import REFERENCE_DIR, Result, child_env, live, run_ours, run_reference
from tests.inprocess import run_main
from tests.procfs_builder import ProcTree, program_maps
from tests.realproc import Processes, build, wait_settled

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ps_mem  # noqa: E402

REFERENCE = REFERENCE_DIR / "ps_mem.py"
OURS = Path(ps_mem.__file__).resolve()
MIB = 1024 * 1024





def run_live(script: Path, *args: str, preexec_fn=None) -> Result:
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          timeout=60, env=child_env(), preexec_fn=preexec_fn)
    return Result(done.stdout, done.stderr, done.returncode)


def agreeing(ours: Callable[[], Result], reference: Callable[[], Result],
             tries: int = 4) -> Tuple[Result, Result]:
    """(ours(), reference()), run again while they differ, up to TRIES
    times: the helpers' pages are shared with any other copy of the same
    helper running on the machine, whose start or exit moves their Pss
    between two runs.  A real difference persists."""
    for _ in range(tries):
        pair = ours(), reference()
        if pair[0] == pair[1]:
            break
    return pair


def need_reference() -> None:
    if not REFERENCE.exists():
        pytest.skip("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)


def document(result: Result) -> dict:
    assert result.status == 0 and result.stderr == b"", result.err
    return json.loads(result.stdout)


def ram_mib(result: Result) -> Dict[str, float]:
    """RAM used per row of a --json run, in MiB, and the total as "total"."""
    doc = document(result)
    rows = {program["name"]: program["ram"] / MIB for program in doc["programs"]}
    rows["total"] = doc["total"]["ram"] / MIB
    return rows


def total_mib(stdout: str) -> float:
    """The footer's total of a table, in MiB."""
    lines = stdout.rstrip("\n").split("\n")
    assert lines[-1] == "=" * 33 and lines[-3] == "-" * 33, stdout
    number, unit = lines[-2].split()
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[unit]


class _Procs(Processes):
    """Processes, and `setarch -R` runs of any command."""

    def no_aslr(self, argv: Sequence[str], processes: int = 1) -> List[int]:
        """ARGV under `setarch -R`; its pid and its children's, once there
        are PROCESSES in all and they have settled."""
        setarch = shutil.which("setarch")
        if setarch is None:
            pytest.skip("setarch (util-linux) is not installed")
        exe = os.path.realpath(shutil.which(argv[0]) or argv[0])
        try:
            running = self.command([setarch, "-R", *argv], exe=exe, settle=False)
        except RuntimeError as error:
            pytest.skip("setarch -R does not work here: %s" % error)
        deadline = time.monotonic() + 10
        children_file = "/proc/%d/task/%d/children" % (running.pid, running.pid)
        while True:
            try:
                with open(children_file) as handle:
                    pids = [running.pid] + [int(word) for word in handle.read().split()]
            except FileNotFoundError:
                pytest.skip("no %s (CONFIG_PROC_CHILDREN)" % children_file)
            if len(pids) == processes:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("%s: %d processes, not %d" % (argv, len(pids), processes))
            time.sleep(0.02)
        wait_settled(pids)
        return pids

    def sleeps_no_aslr(self, count: int) -> List[int]:
        return [self.no_aslr([shutil.which("sleep") or "/bin/sleep", "600"])[0]
                for _ in range(count)]


@pytest.fixture
def procs():
    with _Procs() as started:
        yield started


def csv(pids: Sequence[int]) -> str:
    return ",".join(map(str, pids))


def memory_file(pid: int) -> bytes:
    with open("/proc/%d/smaps_rollup" % pid, "rb") as handle:
        return handle.read()


# ----------------------------------------------------------------------------
# A process and two CLONE_VM children
# ----------------------------------------------------------------------------


@live
def test_clone_vm_space_counted_once_in_every_view(procs):
    helper = procs.helper("clone_vm", "2", "32")  # 32 MiB written, then 2 clones
    pids = helper.pids
    assert len(pids) == 3

    rows = ram_mib(run_live(OURS, "--json", "-p", csv(pids)))
    assert set(rows) == {"clone_vm", "total"}
    assert 32 <= rows["clone_vm"] == rows["total"] <= 34

    by_pid = ram_mib(run_live(OURS, "--json", "-d", "-p", csv(pids)))
    assert set(by_pid) == {"clone_vm [%d]" % pid for pid in pids} | {"total"}
    for pid in pids:  # a third each
        assert abs(by_pid["clone_vm [%d]" % pid] - rows["total"] / 3) < 0.01
    assert abs(by_pid["total"] - rows["total"]) < 0.01

    table = run_live(OURS, "-d", "-p", csv(pids))
    assert 32 <= total_mib(table.out) <= 34
    only_total = run_live(OURS, "-t", "-d", "-p", csv(pids))
    assert 32 * MIB <= int(only_total.stdout) <= 34 * MIB

    need_reference()
    reference = run_live(REFERENCE, "-d", "-p", csv(pids))
    assert 3 * 32 <= total_mib(reference.out) <= 3 * 34  # 3.14: once per process
    # Without -d 3.14's rule (identical text) gets it right: same bytes.
    ours, reference = agreeing(lambda: run_live(OURS, "-p", csv(pids)),
                               lambda: run_live(REFERENCE, "-p", csv(pids)))
    assert ours == reference


@live
def test_only_some_processes_of_a_program_share(procs):
    """clone_vm's three processes in one space, and an independent clone_vm
    of 8 MiB: one program of 4 processes and 2 address spaces.  Not all
    its memory files are alike, so 3.14 counts the shared space 3 times."""
    group = procs.helper("clone_vm", "2", "32").pids
    alone = procs.helper("clone_vm", "0", "8").pids
    pids = group + alone

    rows = ram_mib(run_live(OURS, "--json", "-p", csv(pids)))
    one_space = ram_mib(run_live(OURS, "--json", "-p", csv(group)))["total"]
    single = ram_mib(run_live(OURS, "--json", "-p", csv(alone)))["total"]
    assert 8 <= single <= 9.5
    assert abs(rows["clone_vm"] - (one_space + single)) < 0.05
    assert abs(rows["total"] - rows["clone_vm"]) < 0.01

    by_pid = ram_mib(run_live(OURS, "--json", "-d", "-p", csv(pids)))
    for pid in group:
        assert abs(by_pid["clone_vm [%d]" % pid] - one_space / 3) < 0.02
    assert abs(by_pid["clone_vm [%d]" % alone[0]] - single) < 0.02
    assert abs(by_pid["total"] - rows["total"]) < 0.05

    # -p naming only one process of the space: that process is all of it.
    first = ram_mib(run_live(OURS, "--json", "-p", str(group[0])))
    assert abs(first["total"] - one_space) < 0.05

    need_reference()
    table = run_live(REFERENCE, "-p", csv(pids))
    assert abs(total_mib(table.out) - (3 * one_space + single)) < 0.2  # 3.14's sum


@live
def test_two_identical_spaces_are_two(procs):
    """Two `setarch -R clone_vm 2 16`: six processes whose smaps_rollup are
    all the same text, in two address spaces of 16 MiB each.  3.14 takes
    them for one space (16 MiB); ours asks the kernel (32 MiB)."""
    helper = helper_path("clone_vm")
    first = procs.no_aslr([helper, "2", "16"], processes=3)
    second = procs.no_aslr([helper, "2", "16"], processes=3)
    pids = first + second
    if len({memory_file(pid) for pid in pids}) != 1:
        pytest.skip("the two groups' memory files differ here: nothing for 3.14 to merge")

    rows = ram_mib(run_live(OURS, "--json", "-p", csv(pids)))
    assert 32 <= rows["total"] <= 34.5
    by_pid = ram_mib(run_live(OURS, "--json", "-d", "-p", csv(pids)))
    assert abs(by_pid["total"] - rows["total"]) < 0.05
    assert all(abs(by_pid["clone_vm [%d]" % pid] - rows["total"] / 6) < 0.02 for pid in pids)

    need_reference()
    reference = run_live(REFERENCE, "-p", csv(pids))
    assert 16 <= total_mib(reference.out) <= 17.5  # 3.14: one space


def helper_path(name: str) -> str:
    return str(build(name))


# ----------------------------------------------------------------------------
# Independent processes with identical maps
# ----------------------------------------------------------------------------


@live
def test_setarch_sleeps_counted_three_times(procs):
    """Three `setarch -R sleep 600`: identical memory text, three address
    spaces.  Ours counts three sleeps (about 3 times one); 3.14 shows one
    sleep's worth."""
    sleepers = procs.sleeps_no_aslr(3)
    if len({memory_file(pid) for pid in sleepers}) != 1:
        pytest.skip("the sleeps' memory files differ here: nothing for 3.14 to merge")
    one = document(run_live(OURS, "--json", "-p", str(sleepers[0])))
    three = document(run_live(OURS, "--json", "-p", csv(sleepers)))
    [program] = three["programs"]
    assert program["name"] == "sleep" and program["count"] == 3
    [single] = one["programs"]
    # Private memory is each sleep's own: three times one's (libc pages
    # moving between Private and Shared as processes touch them: 48 KiB).
    assert abs(program["private"] - 3 * single["private"]) <= 48 * 1024
    assert 2.7 * single["ram"] <= program["ram"] <= 3.3 * single["ram"]
    assert three["total"]["ram"] == program["ram"]

    by_pid = document(run_live(OURS, "--json", "-d", "-p", csv(sleepers)))
    assert len(by_pid["programs"]) == 3
    assert abs(by_pid["total"]["ram"] - three["total"]["ram"]) <= 48 * 1024

    need_reference()
    for _ in range(5):  # 3.14 merges only if its three reads agreed
        reference = run_live(REFERENCE, "-p", csv(sleepers))
        assert reference.status == 0
        if total_mib(reference.out) < 1.5 * single["ram"] / MIB:
            break
    # 3.14: one sleep's worth for three.
    assert total_mib(reference.out) < 1.5 * single["ram"] / MIB


# ----------------------------------------------------------------------------
# Where kcmp cannot be had: 3.14's rule, 3.14's bytes
# ----------------------------------------------------------------------------


@pytest.fixture
def static_groups(procs):
    """Static processes only, so that ours and 3.14 read the same bytes:
    two setarch -R clone_vm groups of 16 MiB with identical memory files,
    which 3.14 merges into one."""
    helper = helper_path("clone_vm")
    pids = procs.no_aslr([helper, "2", "16"], processes=3)
    pids += procs.no_aslr([helper, "2", "16"], processes=3)
    if len({memory_file(pid) for pid in pids}) != 1:
        pytest.skip("the two groups' memory files differ here: nothing for 3.14 to merge")
    return pids


def _seccomp_refusing_kcmp(kill: bool = False):
    """A preexec_fn that installs a seccomp filter making kcmp fail with
    EPERM, as container runtimes' default profiles do; or, with KILL, one
    that kills the process calling it, as systemd's SystemCallFilter= does
    unless told otherwise."""
    if platform.machine() != "x86_64" or ctypes.sizeof(ctypes.c_void_p) != 8:
        pytest.skip("the seccomp filter here is written for x86_64")

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte),
                    ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    load_nr, jump_eq, ret = 0x20, 0x15, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K
    errno_eperm, kill_process, allow = 0x00050000 | 1, 0x80000000, 0x7FFF0000
    refusal = kill_process if kill else errno_eperm
    filters = (Filter * 4)(Filter(load_nr, 0, 0, 0), Filter(jump_eq, 0, 1, 312),
                           Filter(ret, 0, 0, refusal), Filter(ret, 0, 0, allow))
    program = Program(4, filters)
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong,
                      ctypes.c_ulong]

    def install() -> None:
        if prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            os._exit(97)
        if prctl(22, 2, ctypes.addressof(program), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
            os._exit(98)

    return install


@live
def test_kcmp_refused_gives_3_14s_output(static_groups):
    """kcmp refused by seccomp (EPERM on ps_mem itself): 3.14's rule, and
    so 3.14's bytes in every view."""
    need_reference()
    refuse = _seccomp_refusing_kcmp()
    probe = subprocess.run([sys.executable, "-c", "import ps_mem, os;"
                            "ps_mem.AddressSpaces()"], cwd=str(OURS.parent),
                           preexec_fn=refuse, capture_output=True, timeout=30)
    assert b"KcmpUnavailable" in probe.stderr, probe.stderr  # the filter works
    pids = csv(static_groups)
    for args in ([], ["-d"], ["-t"], ["-s"], ["-S"]):
        ours, reference = agreeing(
            lambda args=args: run_live(OURS, *args, "-p", pids, preexec_fn=refuse),
            lambda args=args: run_live(REFERENCE, *args, "-p", pids))
        assert ours == reference, args
    # Where kcmp works: two spaces, not 3.14's one.
    assert 32 * MIB <= int(run_live(OURS, "-t", "-p", pids).stdout) <= 34.5 * MIB
    assert 16 * MIB <= int(run_live(REFERENCE, "-t", "-p", pids).stdout) <= 17.5 * MIB


@live
def test_kcmp_killed_gives_3_14s_output(static_groups):
    """A filter that kills whoever calls kcmp: ps_mem asks from a forked
    child, which dies; ps_mem itself goes on with 3.14's rule."""
    need_reference()
    kill = _seccomp_refusing_kcmp(kill=True)
    probe = subprocess.run([sys.executable, "-c", "import ps_mem, os;"
                            "ps_mem.AddressSpaces()"], cwd=str(OURS.parent),
                           preexec_fn=kill, capture_output=True, timeout=30)
    assert probe.returncode == -signal.SIGSYS, probe  # the filter works
    pids = csv(static_groups)
    for args in ([], ["-d"], ["-t"]):
        ours, reference = agreeing(
            lambda args=args: run_live(OURS, *args, "-p", pids, preexec_fn=kill),
            lambda args=args: run_live(REFERENCE, *args, "-p", pids))
        assert ours == reference, args


@live
def test_no_fork_gives_3_14s_output(static_groups, monkeypatch):
    """No child can be forked to ask kcmp (EAGAIN): 3.14's rule."""
    need_reference()

    def no_fork():
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    pids = csv(static_groups)
    ours, reference = agreeing(lambda: run_main("-p", pids),
                               lambda: run_live(REFERENCE, "-p", pids))
    assert ours == reference


@live
def test_no_kcmp_number_gives_3_14s_output(static_groups, monkeypatch):
    """A machine whose kcmp number ps_mem does not know: 3.14's rule."""
    need_reference()
    monkeypatch.setattr(ps_mem, "_kcmp_number", lambda: None)
    pids = csv(static_groups)
    for args in ([], ["-d"]):
        ours, reference = agreeing(lambda args=args: run_main(*args, "-p", pids),
                                   lambda args=args: run_live(REFERENCE, *args, "-p", pids))
        assert ours == reference, args


@live
def test_kcmp_denied_for_some_processes(procs, static_groups, monkeypatch):
    """kcmp refused for some processes only (EPERM: another user's, not
    dumpable): 3.14's rule for the processes alike to them, the kernel's
    answer for the others."""
    sleepers = procs.sleeps_no_aslr(3)
    if len({memory_file(pid) for pid in sleepers}) != 1:
        pytest.skip("the sleeps' memory files differ here")
    compare = ps_mem.AddressSpaces.compare

    def refusing(self, pid1: int, pid2: int) -> int:
        if pid1 in sleepers or pid2 in sleepers:
            raise ps_mem.KcmpDenied(pid1, pid2)
        return compare(self, pid1, pid2)

    one = json.loads(run_main("--json", "-p", str(sleepers[0])).stdout)["programs"][0]
    for _ in range(5):
        # 3.14's rule merges the sleeps only if their three memory files
        # read the same, which other processes starting and exiting (and
        # so moving the sleeps' libc Pss) can prevent for a moment.
        monkeypatch.setattr(ps_mem.AddressSpaces, "compare", refusing)
        mixed = json.loads(run_main("--json", "-p", csv(sleepers + static_groups)).stdout)
        monkeypatch.undo()
        rows = {program["name"]: program for program in mixed["programs"]}
        if abs(rows["sleep"]["private"] - one["private"]) <= 48 * 1024:
            break
    sleeps = json.loads(run_main("--json", "-p", csv(sleepers)).stdout)["programs"][0]
    exact = json.loads(run_main("--json", "-p", csv(static_groups)).stdout)
    # The sleeps merged as 3.14 merges them: one sleep's private memory.
    assert abs(rows["sleep"]["private"] - one["private"]) <= 48 * 1024
    assert rows["sleep"]["private"] < sleeps["private"] / 2
    # clone_vm counted exactly, as without any refusal.
    assert abs(rows["clone_vm"]["ram"] - exact["programs"][0]["ram"]) <= 64 * 1024


@live
def test_copy_of_proc_gives_3_14s_output(procs, static_groups, tmp_path):
    """The same processes read through --procfs on a copy of their /proc
    entries: no kernel to ask, so 3.14's rule and 3.14's bytes; the
    sleeps that 3.14 merges are merged there too."""
    need_reference()
    sleepers = procs.sleeps_no_aslr(3)
    me = procs.sleep().pid  # the copy's `self`: the accuracy probe, left out
    tree = tmp_path / "proc"
    capture_tree(str(tree), static_groups + sleepers + [me], me)
    for args in ([], ["-d"], ["-s"], ["-t"], ["-S"], ["-d", "-S"], ["-p", csv(static_groups)]):
        ours = run_ours(*args, procfs=tree)
        assert ours == run_reference(*args, procfs=tree), args

    live_total = int(run_live(OURS, "-t", "-p", csv(static_groups + sleepers)).stdout)
    copy_total = int(run_ours("-t", procfs=tree).stdout)
    assert live_total > copy_total + 15 * MIB  # the copy merges as 3.14 does


@pytest.mark.slow  # a capture holds every process of the machine
@live
def test_capture_records_the_kernels_answer(static_groups, tmp_path):
    """A --capture of the live system keeps what kcmp said, so a later
    --procfs run on it counts address spaces as the live run did."""
    pids = csv(static_groups)
    archive = tmp_path / "capture.tar.gz"
    done = run_live(OURS, "--capture", str(archive), "-t", "-p", pids)
    assert done.status == 0, done.err
    offline = run_ours("--json", "-d", "-p", pids, procfs=archive)
    now = run_live(OURS, "--json", "-d", "-p", pids)
    assert [(p["name"], p["ram"]) for p in document(offline)["programs"]] == \
        [(p["name"], p["ram"]) for p in document(now)["programs"]]


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
    one = document(run_ours("--json", "-p", "300", procfs=exact))["programs"][0]
    got = document(run_ours("--json", *view, procfs=exact))
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
    old = document(run_ours("--json", *view, procfs=guessed))
    old_pools = [p for p in old["programs"] if p["name"].startswith("pool")]
    assert sum(program["ram"] for program in old_pools) == pytest.approx(
        one["ram"] if not view else 6 * one["ram"], abs=2)


# ----------------------------------------------------------------------------
# The aggregation rule, for any grouping
# ----------------------------------------------------------------------------


@st.composite
def spaces_and_processes(draw):
    """Address spaces with their memory, and processes in them (each with
    a name): every process of a space shows the space's figures.  Also
    the kernel's answer: pid -> its space."""
    spaces = draw(st.lists(st.tuples(st.integers(0, 100000), st.integers(0, 50000)),
                           min_size=1, max_size=6))
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=12))
    members = [draw(st.integers(0, len(spaces) - 1)) for _ in names]
    samples = []
    for pid, (name, space) in enumerate(zip(names, members), start=100):
        private, shared = spaces[space]
        fields = dict(pid=pid, name=name, private_kib=private, shared_kib=shared + 0.5,
                      shared_hugetlb_kib=0, swap_kib=0, mem_id=space, has_pss=True,
                      has_swap_pss=False, layout=space)
        # Only the fields this ps_mem.py has (`layout` is on its way out).
        samples.append(ps_mem.ProcessSample(**{key: value for key, value in fields.items()
                                              if key in ps_mem.ProcessSample._fields}))
    address_spaces = {sample.pid: ("space", sample.mem_id) for sample in samples}
    return spaces, samples, address_spaces


@settings(max_examples=150, deadline=None)
@given(spaces_and_processes())
def test_each_space_counted_once_and_rows_add_up(case):
    spaces, samples, address_spaces = case
    expected = sum(spaces[space][0] + spaces[space][1] + 0.5
                   for space in {sample.mem_id for sample in samples})
    report = ps_mem.aggregate(samples, 0, address_spaces)
    assert report.total_ram_kib == pytest.approx(expected)
    # No row has zero RAM here, so none is dropped: rows add up to the total.
    assert sum(program.ram_kib for program in report.programs) == pytest.approx(expected)
    # By pid: each process a row, the total the same.
    by_pid = ps_mem.aggregate([sample._replace(name="%s [%d]" % (sample.name, sample.pid))
                               for sample in samples], 0, address_spaces)
    assert by_pid.total_ram_kib == pytest.approx(expected)
    assert sum(program.ram_kib for program in by_pid.programs) == pytest.approx(expected)
