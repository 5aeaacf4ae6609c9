"""ps_mem under load and at size.

Churn: hundreds of runs while processes fork, exec, rename themselves and
exit around it (tests/churn.py, tests/forker.py).

Every run must end with the documented exit status (0 here; -t's 1 only
where the kernel lacks Pss or SwapPss), nothing on stderr but ps_mem.py's
permission warning, never a traceback, and stdout in the layout of its
options.  3.14 fails about one whole-system run in forty under such churn
(ProcessLookupError on a smaps_rollup or cmdline of a process that just
exited), and far more often when -p names only churning processes.

The default suite runs ps_mem's main() in this process, which costs no
interpreter start-up, so that a few seconds hold about a hundred runs (more
on an idle machine), and a handful of real commands, watches ended with a
real SIGINT among them.
`-m slow` runs the long version (about 10 minutes): hundreds of commands of
ours and of 3.14, with each one's failure rate reported (also `python
tests/churn.py --reference`).

Huge inputs: 65,000 mappings (fixture smaps, and a live process), a 2 MiB
command line (live, and fixture): correct output, in reasonable time.

Marks: `stress` (out of the quick lane) on every test that needs the live
/proc here, `live` too, and on the 65,000 mappings of a fixture tree, which
take seconds; `slow` on the long ones, which only `-m slow` runs.  The 2 MiB
command line in a tree is in the quick lane.
"""

import contextlib
import errno
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import List, Sequence

import pytest

from tests.churn import (
    OPTIONS_3_14, OPTIONS_NEW, WATCH, Churn, Tally, frozen_copy, judge, run_command, stress_runs,
)
from tests.harness import (OURS, REFERENCE, Result, document_of, live, run_main, run_ours,
                           run_reference, run_script, sizes_apart)
from tests.procfs_builder import program_maps
from tests.realproc import Processes

stress = pytest.mark.stress

# Seconds of in-process runs in the default suite; at least MIN_RUNS runs.
BUDGET = float(os.environ.get("PS_MEM_CHURN_SECONDS", "5"))
MIN_RUNS = 60
# Commands of each program in the slow test.
SLOW_RUNS = int(os.environ.get("PS_MEM_CHURN_RUNS", "300"))


def report(request, text: str) -> None:
    """Show TEXT in the test output, captured or not."""
    request.node.user_properties.append(("churn", text))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    context = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with context:
        sys.stdout.write("\n" + text + "\n")
        sys.stdout.flush()


@pytest.fixture(scope="module")
def churn():
    with Churn(target=100, min_ms=10, max_ms=400) as running:
        yield running


class _Interrupt:
    """A Ctrl-C for an in-process watch: KeyboardInterrupt from a timer
    signal after SECONDS, raised only while armed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False

    def _fire(self, *_):
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt

    def __enter__(self):
        self.previous = signal.signal(signal.SIGALRM, self._fire)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info):
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)


def run_in_process(args: Sequence[str], interrupt_after: float = 0) -> Result:
    """ps_mem.main(ARGS) here, its output caught, or the exception it let
    out as a traceback text in stderr (status -1)."""
    interrupt = _Interrupt(interrupt_after) if interrupt_after else contextlib.nullcontext()
    try:
        with interrupt:
            return run_main(*args)
    except BaseException as error:  # noqa: B036 - anything out of main() is a failure
        text = "Traceback (from main()):\n" + "".join(
            traceback.format_exception(type(error), error, error.__traceback__))
        return Result(b"", text.encode("utf-8"), -1)


@stress
@live
def test_hundreds_of_runs_in_process(churn, request):
    """Every option combination over the churning processes (-p) in each
    cycle, and over the whole system in turn while the budget lasts (a
    whole-system run costs ten of the others on a crowded machine)."""
    combinations = OPTIONS_3_14 + OPTIONS_NEW
    tally = Tally("ps_mem.py main(), in process")
    whole_system = 0
    started = time.monotonic()
    while time.monotonic() - started < BUDGET or tally.runs < MIN_RUNS:
        pids = ["-p", ",".join(map(str, churn.pids()))]
        for options in combinations:
            args = options + pids
            tally.add(args, judge(args, *run_in_process(args)))
        if time.monotonic() - started < BUDGET or not whole_system:
            options = combinations[whole_system % len(combinations)]
            tally.add(options, judge(options, *run_in_process(options)))
            whole_system += 1
    # A watch of the whole system, ended by "Ctrl-C" mid-sample or asleep.
    stdout, stderr, status = run_in_process(WATCH, interrupt_after=1.2)
    tally.add(WATCH, judge(WATCH, stdout, stderr, status, interrupted=True))
    report(request, "%s; in %.1f s; churn: %d children now"
           % (tally.summary(), time.monotonic() - started, len(churn.children())))
    assert not tally.failures, "\n".join(tally.failures[:20])


@stress
@live
def test_commands_with_real_signals(churn, request, tmp_path):
    """Real commands, as a user runs them: one over the churning pids, one
    over the whole system, and two watches ended by a real SIGINT after
    1.2 s (exit 0, as 3.14's watch)."""
    pids = ["-p", ",".join(map(str, churn.pids()))]
    ours = frozen_copy(str(tmp_path))
    runs = [run_command(ours, args) for args in (
        ["-d", "-S"] + pids, ["-s"], WATCH + pids, WATCH)]
    tally = Tally("ps_mem.py commands")
    for run in runs:
        tally.add(run.args, judge(run.args, run.stdout, run.stderr, run.status,
                                  interrupted=run.interrupted))
    report(request, tally.summary())
    assert not tally.failures, "\n".join(tally.failures)
    # The whole-system watch was interrupted, not ended by itself.
    assert runs[-1].interrupted and runs[-1].status == 0


@pytest.mark.slow
@stress
@live
def test_long_churn_ours_and_3_14(request, tmp_path):
    """SLOW_RUNS commands of ours over every combination (whole system,
    churning pids, watches), then as many of 3.14 over its own options:
    ours never fails; 3.14's failure rate is reported."""
    with Churn(target=150, min_ms=10, max_ms=400) as running:
        ours = stress_runs(running, SLOW_RUNS, frozen_copy(str(tmp_path)), "ps_mem.py", ours=True)
        reference = None
        if REFERENCE.exists():
            reference = stress_runs(running, SLOW_RUNS, REFERENCE, "ps_mem 3.14", ours=False)
    lines: List[str] = [ours.summary()]
    if reference is not None:
        lines.append(reference.summary())
    lines.append("churn: " + running.rate())
    report(request, "\n".join(lines))
    assert not ours.failures, "\n".join(ours.failures[:20])
    if reference is not None and reference.runs >= 200:
        # The churn does reach the races that this suite is about.
        assert reference.failures, "3.14 never failed: the churn is too gentle to test anything"


@pytest.mark.slow  # a capture holds every process of the machine
@stress
@live
def test_capture_records_the_kernels_answer(static_groups, tmp_path):
    """A --capture of the live system keeps what kcmp said, so a later
    --procfs run on it counts address spaces as the live run did."""
    pids = ",".join(map(str, static_groups))
    archive = tmp_path / "capture.tar.gz"
    done = run_script(OURS, "--capture", str(archive), "-t", "-p", pids)
    assert done.status == 0, done.err
    offline = run_ours("--json", "-d", "-p", pids, procfs=archive)
    now = run_script(OURS, "--json", "-d", "-p", pids)
    assert [(p["name"], p["ram"]) for p in document_of(offline)["programs"]] == \
        [(p["name"], p["ram"]) for p in document_of(now)["programs"]]


# ----------------------------------------------------------------------------
# Huge inputs
# ----------------------------------------------------------------------------


MAPPINGS = 65000


def _many_mappings_smaps(count: int) -> bytes:
    """COUNT mappings in 4.4's smaps format, each 4 KiB resident and
    private, alternating protections as separate mappings are."""
    fields = [("Size", 4), ("Rss", 4), ("Pss", 4), ("Shared_Clean", 0), ("Shared_Dirty", 0),
              ("Private_Clean", 0), ("Private_Dirty", 4), ("Referenced", 4), ("Anonymous", 4),
              ("AnonHugePages", 0), ("Shared_Hugetlb", 0), ("Private_Hugetlb", 0), ("Swap", 0),
              ("SwapPss", 0), ("KernelPageSize", 4), ("MMUPageSize", 4), ("Locked", 0)]
    block = "%x-%x %s 00000000 00:00 0 \n" + "".join(
        "%-16s%8d kB\n" % (key + ":", value) for key, value in fields) + "VmFlags: rd %sac \n"
    start = 0x7F0000000000
    parts = []
    for index in range(count):
        perms, flags = ("rw-p", "wr mr mw me ") if index % 2 else ("r--p", "mr mw me ")
        address = start + index * 0x1000
        parts.append(block % (address, address + 0x1000, perms, flags))
    return "".join(parts).encode()


@stress
def test_65000_mappings_in_a_tree(tree):
    """A process with 65,000 mappings (the most vm.max_map_count allows),
    on a kernel without smaps_rollup: every line is read.  Private 4 KiB
    and Pss 4 KiB each, so Shared is the 0.5 KiB per Pss line added back:
    253.9 MiB + 31.7 MiB."""
    t = tree("4.4")
    t.add(100, "small", "/usr/bin/small", maps=program_maps("/usr/bin/small", heap_kib=900))
    t.add(4000, "mapper", "/usr/bin/mapper", replace={"smaps": _many_mappings_smaps(MAPPINGS)})
    started = time.monotonic()
    ours = run_ours(procfs=t.root)
    seconds = time.monotonic() - started
    assert ours.status == 0 and ours.stderr == b""
    assert "\n253.9 MiB +  31.7 MiB = 285.6 MiB\tmapper\n" in ours.out
    assert seconds < 30, "%.1f s for 65,000 mappings" % seconds
    if REFERENCE.exists():
        assert ours == run_reference(procfs=t.root)


_MANY_MAPPINGS_PROGRAM = r"""
import ctypes, mmap, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
with open("/proc/self/maps") as handle:
    existing = sum(1 for _ in handle)
pages = int(sys.argv[1]) - existing
page = mmap.PAGESIZE
base = libc.mmap(None, pages * page, mmap.PROT_READ | mmap.PROT_WRITE,
                 mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
if base in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap failed")
ctypes.memset(base, 1, pages * page)  # every page resident and private
for index in range(0, pages, 2):  # every other page read-only: no merging
    if libc.mprotect(base + index * page, page, mmap.PROT_READ) != 0:
        sys.exit("mprotect failed: %d" % ctypes.get_errno())
with open("/proc/self/maps") as handle:
    print("ready", sum(1 for _ in handle), pages, flush=True)
time.sleep(600)
"""


@stress
@live
def test_65000_mappings_live():
    """A real process with 65,000 mappings: ps_mem reads it in reasonable
    time and counts its memory (each of its pages was written), as 3.14
    counts it.  Its Private is its own pages, which stay put: within 64 KiB
    of 3.14's (its library pages that a ps_mem mapping the same library
    makes shared), so that a parser dropping a thousandth of the mappings
    fails.  Its Shared is its part of python's and libc's pages, whose Pss
    moves as other processes mapping them start and exit, by a few
    hundred KiB on a busy machine: within 512 KiB."""
    with open("/proc/sys/vm/max_map_count") as handle:
        if int(handle.read()) < MAPPINGS + 100:
            pytest.skip("vm.max_map_count is below %d" % (MAPPINGS + 100))
    child = subprocess.Popen([sys.executable, "-c", _MANY_MAPPINGS_PROGRAM, str(MAPPINGS)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             start_new_session=True)
    try:
        words = child.stdout.readline().split()
        assert words[:1] == [b"ready"], words
        mappings, pages = int(words[1]), int(words[2])
        assert mappings >= MAPPINGS - 5
        started = time.monotonic()
        result = run_ours_live("--json", "-p", str(child.pid))
        seconds = time.monotonic() - started
        assert seconds < 30, "%.1f s" % seconds
        [program] = json.loads(result.stdout)["programs"]
        page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        assert program["private"] >= pages * page_kib * 1024
        table = run_ours_live("-p", str(child.pid))
        assert re.search(rb"\tpython[\d.]*\n", table.stdout), table.stdout
        if REFERENCE.exists():
            reference = run_ours_live("-p", str(child.pid), script=REFERENCE)
            assert reference.status == 0
            apart = sizes_apart(table.out, reference.out, private_kib=64, shared_kib=512)
            assert not apart, "%s\nours:\n%s3.14:\n%s" % (apart, table.out, reference.out)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def run_ours_live(*args: str, script: Path = OURS) -> Result:
    result = run_script(script, *args, timeout=120)
    assert result.status == 0 and result.stderr == b"", result.stderr
    return result


# 2 MiB of arguments: 16 of 128 KiB (the most one argument may have),
# each different, and a few short ones.
BIG_ARGS = [("%02d" % number).encode() * (64 * 1024 - 1) for number in range(16)]


@stress
@live
def test_2_mib_command_line_live():
    """A process whose command line is 2 MiB: -s shows all of it, as 3.14
    does (ps_mem reads cmdline in 64 KiB pieces until the end)."""
    total = sum(len(arg) + 1 for arg in BIG_ARGS)
    assert total >= 2 * 1024 * 1024 - 64
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    need = 64 * 1024 * 1024  # exec allows argv up to a quarter of the stack limit
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip("the stack limit (%d) is too small for a 2 MiB argv" % hard)
    resource.setrlimit(resource.RLIMIT_STACK, (need, hard))
    try:
        with Processes() as procs:
            program = [sys.executable.encode(), b"-c", b"import time; time.sleep(600)"]
            try:
                running = procs.command(program + BIG_ARGS, exe=os.path.realpath(sys.executable))
            except OSError as error:
                if error.errno == errno.E2BIG:
                    pytest.skip("exec refused a 2 MiB argv here")
                raise
            with open("/proc/%d/cmdline" % running.pid, "rb") as handle:
                assert len(handle.read()) == len(b"\0".join(program + BIG_ARGS)) + 1
            started = time.monotonic()
            ours = run_ours_live("-s", "-p", str(running.pid))
            assert time.monotonic() - started < 30
            name = " ".join(arg.decode() for arg in program + BIG_ARGS)
            rows = ours.out.split("\n\n", 1)[1].split("\n")
            assert rows[0].split("\t", 1)[1] == name
            assert run_ours_live("-p", str(running.pid)).out.count("\tpython") == 1
            if REFERENCE.exists():
                reference = run_ours_live("-s", "-p", str(running.pid), script=REFERENCE)
                assert reference.out.split("\n\n", 1)[1].split("\n")[0].split("\t", 1)[1] == name
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))


def test_2_mib_command_line_in_a_tree(tree):
    t = tree("6.1")
    t.add(100, "small", "/usr/bin/small", maps=program_maps("/usr/bin/small", heap_kib=900))
    args = ["/usr/bin/huge"] + [arg.decode() for arg in BIG_ARGS]
    t.add(4001, "huge", "/usr/bin/huge", cmdline=args,
          maps=program_maps("/usr/bin/huge", heap_kib=1800))
    started = time.monotonic()
    ours = run_ours("-s", procfs=t.root)
    assert time.monotonic() - started < 30
    assert ours.status == 0 and ("\t" + " ".join(args) + "\n") in ours.out
    if REFERENCE.exists():
        assert ours == run_reference("-s", procfs=t.root)
