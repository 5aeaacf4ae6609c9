"""ps_mem.py on this machine's real /proc, beside ps_mem 3.14.

Needs a Linux /proc with smaps and root (ps_mem reads other processes'
memory files); skipped elsewhere.  Processes are started for the purpose
(tests/realproc.py: `sleep`, and C helpers built with gcc, skipped without
it) and always ended in teardown.

Where ours and 3.14 read the same memory they must print the same bytes,
so exact comparisons use the static C helpers, whose memory is their own.
A dynamically linked process such as `sleep` shares its C library's pages
with every other process, ps_mem itself included: which of those pages a
process has touched moves the sleep's figures between Private and Shared
(a page mapped once is private) and changes its Pss.  Two different Python
programs reading it (ours imports more, and so faults in more of libc) see
it differ by a few KiB even on an idle machine, so for those processes the
sizes are compared within a tolerance and everything else exactly.
bracketed() retries to ride out other processes starting and exiting.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import pytest

from tests.harness import (OURS, REFERENCE_DIR, REPO, Result, child_env, run_ours,
                           run_reference)
from tests.realproc import SLEEP, Processes, process_state

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/smaps"),
                       reason="needs a Linux /proc with smaps"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read every process's memory"),
]

REFERENCE = REFERENCE_DIR / "ps_mem.py"
HEADER = " Private  +   Shared  =  RAM used\tProgram\n\n"
# "%9s" of human(): 1.0 MiB to 999.9 KiB (and 1000.0 where %.1f rounds up).
SIZE = r"(?: {2}\d| \d\d|\d{3}|\d{4})\.\d [KMGT]iB"
ROW = re.compile(r"(%s) \+ (%s) = (%s)\t([^\n]+)\n" % (SIZE, SIZE, SIZE))
FOOTER = re.compile(r"-{33}\n {24}(%s)\n={33}\n" % SIZE)
UNITS = {"KiB": 1, "MiB": 1024, "GiB": 1024 ** 2, "TiB": 1024 ** 3}
# What ps_mem.py shows as "?" in a name: C0, DEL and C1 controls.
CONTROLS = {code: "?" for code in [*range(0x20), *range(0x7F, 0xA0)]}
# Unlike 3.14, ps_mem.py says on stderr how many processes it was denied
# (here: a sandbox's pid 1, unreadable even for root); nothing else is
# expected there in a whole-system run on this kernel.
WARNINGS_ONLY = re.compile(rb"(?:Warning: [^\n]*\n)*")



@pytest.fixture
def procs():
    with Processes() as started:
        yield started


def need_reference() -> None:
    if not REFERENCE.exists():
        pytest.skip("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)




def run_reference_live(*args: str, timeout: float = 60) -> Result:
    """ps_mem 3.14 itself on the live /proc, as root."""
    need_reference()
    done = subprocess.run([sys.executable, str(REFERENCE), *args], capture_output=True,
                          timeout=timeout, env=child_env())
    return Result(done.stdout, done.stderr, done.returncode)


def bracketed(args: Sequence[str], agree: Callable[[Result, Result], bool],
              max_runs: int = 16) -> Tuple[Result, Result]:
    """(ours, reference) for ARGS on the live /proc, such that agree() holds
    if the two programs agree.

    Runs alternate, ours first; as soon as one agrees with the run before
    it, that pair is returned.  A disagreement is believed only when it
    held still over five runs in a row (ours three times the same, the
    reference twice the same): that pair is returned for the caller's
    assertions to show.  If memory moved all the time, the test is skipped:
    it could tell nothing.
    """
    ours_runs: List[Result] = []
    reference_runs: List[Result] = []
    for index in range(max_runs):
        if index % 2 == 0:
            ours_runs.append(run_ours(*args))
        else:
            reference_runs.append(run_reference_live(*args))
        if not reference_runs:
            continue
        pair = ours_runs[-1], reference_runs[-1]
        if agree(*pair):
            return pair
        if (len(ours_runs) >= 3 and len(reference_runs) >= 2
                and ours_runs[-3] == ours_runs[-2] == ours_runs[-1]
                and reference_runs[-2] == reference_runs[-1]):
            return pair
    pytest.skip("memory kept changing during every attempt at %s" % (args,))


def compare_live(*args: str) -> Result:
    """Assert that ours and 3.14 give the same bytes and status for ARGS."""
    ours, reference = bracketed(args, lambda ours, reference: ours == reference)
    assert (ours.out, ours.err, ours.status) == (reference.out, reference.err, reference.status)
    return reference


def printable_row(reference: Result) -> Result:
    """3.14's one-row output as ps_mem.py prints it: control characters in
    the name as "?"."""
    _, name = single_row(reference.out)
    stdout = reference.out.replace("\t" + name + "\n", "\t" + name.translate(CONTROLS) + "\n")
    return reference._replace(stdout=stdout.encode())


# A size as printed, with its padding; or a -t total in bytes.
_PRINTED_SIZE = re.compile(r" *\d+\.\d [KMGT]iB|^\d+$", re.M)


def _sizes(text: str) -> Tuple[str, List[float]]:
    """The output with each size replaced by "#", and the sizes in KiB."""
    sizes: List[float] = []

    def take(match) -> str:
        size = match[0].strip()
        sizes.append(kib(size) if size.endswith("iB") else int(size) / 1024)
        return "#"

    return _PRINTED_SIZE.sub(take, text), sizes


def close_enough(ours: Result, reference: Result, slack_kib: float = 64) -> bool:
    ours_text, ours_sizes = _sizes(ours.out)
    reference_text, reference_sizes = _sizes(reference.out)
    return ((ours_text, ours.stderr, ours.status)
            == (reference_text, reference.stderr, reference.status)
            and all(abs(a - b) <= slack_kib + _rounding(a) + _rounding(b)
                    for a, b in zip(ours_sizes, reference_sizes)))


def assert_close(ours: Result, reference: Result, slack_kib: float = 64) -> None:
    """The same output but for sizes, which may differ by SLACK_KIB (a
    sleep's libc pages moving between Private and Shared, see above)."""
    if not close_enough(ours, reference, slack_kib):
        assert (ours.out, ours.err, ours.status) == \
            (reference.out, reference.err, reference.status)


def kib(size: str) -> float:
    number, unit = size.split()
    return float(number) * UNITS[unit]


def _rounding(size_kib: float) -> float:
    """How far a printed size may be from the true one: half of 0.1 of its
    unit (a size printed as 1000 or more KiB went up a unit)."""
    unit = 1
    while size_kib >= 1000 * unit:
        unit *= 1024
    return 0.05 * unit


def parse_report(stdout: str, header: str = HEADER) -> Tuple[List[Tuple[float, float, float, str]],
                                                             Optional[float]]:
    """Rows as (private, shared, ram, name) in KiB, and the footer total;
    fails unless the whole output has 3.14's layout."""
    assert stdout.startswith(header), stdout[:200]
    rest = stdout[len(header):]
    rows = []
    while True:
        match = ROW.match(rest)
        if not match:
            break
        rows.append((kib(match[1]), kib(match[2]), kib(match[3]), match[4]))
        rest = rest[match.end():]
    total = None
    match = FOOTER.fullmatch(rest)
    if match:
        total = kib(match[1])
    else:
        assert rest == "", "not a row or a footer: %r" % rest[:200]
    return rows, total


def single_row(stdout: str) -> Tuple[str, str]:
    """(sizes, name) of an output with one row, whatever its name holds
    (3.14 prints newlines in names raw, so lines cannot be relied on)."""
    assert stdout.startswith(HEADER)
    body = stdout[len(HEADER):]
    footer = body.rfind("-" * 33 + "\n")
    row = body[:footer] if footer >= 0 else body
    sizes, tab, name = row.partition("\t")
    assert tab and name.endswith("\n"), repr(stdout)
    return sizes, name[:-1]


def private_of(stdout: str) -> float:
    rows, _ = parse_report(stdout)
    assert len(rows) == 1, stdout
    return rows[0][0]


# ----------------------------------------------------------------------------
# The whole machine
# ----------------------------------------------------------------------------


def test_whole_system_report_has_3_14_layout():
    result = run_ours()
    assert result.status == 0, result.err
    assert WARNINGS_ONLY.fullmatch(result.stderr), result.err
    rows, total = parse_report(result.out)
    assert rows, "no process found on a live system"
    assert total is not None, "no footer: PSS is available on this kernel"
    rams = [ram for _, _, ram, _ in rows]
    assert rams == sorted(rams), "rows not in ascending order of RAM used"
    for private, shared, ram, name in rows:
        assert ram > 0, name
        slack = _rounding(private) + _rounding(shared) + _rounding(ram)
        assert abs(private + shared - ram) <= slack, name
    slack = sum(_rounding(ram) for ram in rams) + _rounding(total)
    assert abs(sum(rams) - total) <= slack


def test_total_agrees_with_footer():
    first = run_ours("-t")
    report = run_ours()
    last = run_ours("-t")
    for result in (first, last):
        assert result.status == 0 and WARNINGS_ONLY.fullmatch(result.stderr), result.err
        assert re.fullmatch(rb"[1-9]\d*\n", result.stdout), result.stdout
    _, footer_kib = parse_report(report.out)
    totals = [int(first.stdout) / 1024, int(last.stdout) / 1024]
    # Other processes come and go between runs: a loose bracket.
    assert min(totals) * 0.9 - 8192 <= footer_kib <= max(totals) * 1.1 + 8192, \
        (totals, footer_kib)


# ----------------------------------------------------------------------------
# Processes started for the test
# ----------------------------------------------------------------------------


def test_sleep_found_by_pid(procs):
    sleeper = procs.sleep()
    result = run_ours("-p", str(sleeper.pid))
    assert result.status == 0 and result.stderr == b""
    rows, total = parse_report(result.out)
    assert [name for *_, name in rows] == ["sleep"]
    private, shared, ram, _ = rows[0]
    assert private > 0 and shared > 0 and total == ram

    only_total = run_ours("-p", str(sleeper.pid), "-t")
    assert only_total.status == 0 and only_total.stderr == b""
    assert re.fullmatch(rb"[1-9]\d*\n", only_total.stdout), only_total.stdout
    # Libraries' Pss moves with other processes; the size stays near.
    assert abs(int(only_total.stdout) / 1024 - ram) <= 0.2 * ram


OPTIONS = ([], ["-s"], ["-d"], ["-S"], ["-t"], ["-S", "-t"], ["-d", "-S"], ["-s", "-d"])


def test_static_helpers_match_3_14_exactly(procs):
    pids = procs.helper("setname", b"worker".hex()).pids
    # A forked family (not all alike: the parent wrote after forking).
    pids += procs.helper("forkshare", "8", "2").pids
    csv = ",".join(map(str, pids))
    for options in OPTIONS:
        compare_live(*options, "-p", csv)
    names = [name for *_, name in parse_report(run_ours("-p", csv).out)[0]]
    assert sorted(names) == ["forkshare (3)", "worker"]


def test_sleeps_match_3_14_but_for_library_pages(procs):
    pids = procs.sleep().pids + procs.sleep().pids
    pids += procs.helper("setname", b"worker".hex()).pids
    csv = ",".join(map(str, pids))
    for options in ([], ["-s", "-d"], ["-S"], ["-t"]):
        ours, reference = bracketed([*options, "-p", csv], close_enough)
        assert_close(ours, reference)
    names = [name for *_, name in parse_report(run_ours("-p", csv).out)[0]]
    assert sorted(names) == ["sleep (2)", "worker"]


def test_renamed_process_with_utf8_name(procs):
    renamed = procs.helper("setname", "пример".encode().hex())  # 12 bytes
    result = compare_live("-p", renamed.csv())
    assert [name for *_, name in parse_report(result.out)[0]] == ["пример"]
    # -s names by command line, which a rename does not change.
    result = compare_live("-s", "-p", renamed.csv())
    command_line = [os.fsdecode(arg) for arg in renamed.popen.args]
    assert [name for *_, name in parse_report(result.out)[0]] == [" ".join(command_line)]


def _children(pid: int) -> List[int]:
    with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
        return [int(word) for word in handle.read().split()]


def test_renamed_child_joins_its_parents_program(procs):
    """A forked child that renamed itself (firefox's "Web Content") is
    named by its executable where its parent runs the same one, as in
    3.14; a renamed process whose parent runs another keeps its name."""
    # The child's memory must not read as its parent's: 3.14 would take
    # the two for one address space (see test_address_spaces.py).
    script = ("import ctypes, os, time\n"
              "if os.fork() == 0:\n"
              "    ctypes.CDLL(None).prctl(15, b'Web Content', 0, 0, 0)\n"
              "    own = b'x' * (4 << 20)\n"
              "time.sleep(600)\n")
    family = procs.command([sys.executable, "-c", script], exe=os.path.realpath(sys.executable))
    deadline = time.monotonic() + 10
    while not (_children(family.pid) and
               _status_name(_children(family.pid)[0]) == "Web Content"):
        assert time.monotonic() < deadline, "the child did not rename itself"
        time.sleep(0.01)
    child = _children(family.pid)[0]
    lonely = procs.helper("setname", b"Web Content".hex())
    result = compare_live("-p", "%d,%d,%d" % (family.pid, child, lonely.pid))
    python = os.path.basename(os.path.realpath(sys.executable))
    assert sorted(name for *_, name in parse_report(result.out)[0]) == \
        sorted([python + " (2)", "Web Content"])


def _status_name(pid: int) -> str:
    # The kernel escapes "\n" and "\\" in status; ps_mem drops bytes that
    # are not UTF-8.
    with open("/proc/%d/status" % pid, "rb") as handle:
        first = handle.readline()
    assert first.startswith(b"Name:\t")
    return first[6:-1].decode("utf-8", "ignore")


def test_control_characters_in_name_print_as_question_marks(procs):
    """3.14 prints a name raw, so a process can send the terminal of the root
    user running ps_mem escape sequences; ours shows each control character
    as "?", and otherwise prints what 3.14 prints."""
    name = b"\x1b[31mred\x07\t\n\xff\\x"
    renamed = procs.helper("setname", name.hex())
    kernel_name = _status_name(renamed.pid)
    assert "\x1b" in kernel_name and "\t" in kernel_name

    ours, reference = bracketed(["-p", renamed.csv()],
                                lambda ours, reference: ours == printable_row(reference))
    assert ours == printable_row(reference)
    assert ours.status == 0 and ours.stderr == b""
    assert single_row(reference.out)[1] == kernel_name  # the defect: raw ESC, BEL, TAB
    assert single_row(ours.out)[1] == kernel_name.translate(CONTROLS) == "?[31mred??\\n\\\\x"


def test_control_characters_in_executable_name(procs):
    """An executable file name with ESC and a newline: its first 15 bytes
    become the process name, a prefix of the exe's basename, so the whole
    basename is shown; and -s shows the command line."""
    file_name = b"sleep\x1b[7m-x-\x1b[0m\nmore"
    sleeper = procs.sleep_named(file_name)
    csv = sleeper.csv()
    for options, raw_name in (([], file_name.decode()),
                              (["-s"], "%s 600" % os.fsdecode(sleeper.popen.args[0]))):
        raw_name = raw_name.replace("\n", " ") if options else raw_name
        ours, reference = bracketed(
            options + ["-p", csv],
            lambda ours, reference: close_enough(ours, printable_row(reference)))
        assert_close(ours, printable_row(reference))
        assert ours.status == 0 and ours.stderr == b""
        assert single_row(reference.out)[1] == raw_name, options  # printed raw by 3.14
        assert single_row(ours.out)[1] == raw_name.translate(CONTROLS), options
        assert "\x1b" not in ours.out and ours.out.count("\n") == 6


def test_deleted_and_replaced_executables(procs):
    """A running program whose file was removed shows " [deleted]"; one
    whose file was replaced by another at the same path, or whose command
    line names a file that exists, " [updated]"."""
    deleted = procs.sleep_named(b"gone")
    os.unlink(os.readlink("/proc/%d/exe" % deleted.pid))
    replaced = procs.sleep_named(b"upd")
    path = os.readlink("/proc/%d/exe" % replaced.pid)
    os.unlink(path)
    shutil.copy(SLEEP, path)
    # Prelink moves a running binary aside to a temporary name and removes
    # it: the exe link names the temporary file, deleted, while the command
    # line has the real path, which exists (here: sleep's own).
    prelinked = procs.sleep_named(b"sleep", argv0=SLEEP.encode())
    path = os.readlink("/proc/%d/exe" % prelinked.pid)
    os.rename(path, path + ".#prelink#.fX7LCT")
    os.unlink(path + ".#prelink#.fX7LCT")
    assert os.readlink("/proc/%d/exe" % prelinked.pid).endswith(".#prelink#.fX7LCT (deleted)")
    for running, name in ((deleted, "gone [deleted]"), (replaced, "upd [updated]"),
                          (prelinked, os.path.basename(SLEEP) + " [updated]")):
        ours, reference = bracketed(["-p", running.csv()], close_enough)
        assert_close(ours, reference)
        assert [row[3] for row in parse_report(ours.out)[0]] == [name]


def test_pids_with_no_program(procs):
    """A zombie and a kernel thread have no exe link, and a pid may not
    exist: none of them is a row, and that is no error."""
    zombie = procs.command(["true"], settle=False, wait_exec=False)
    deadline = time.monotonic() + 10
    while process_state(zombie.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process_state(zombie.pid) == "Z"
    kernel_thread = 2  # kthreadd
    assert os.path.exists("/proc/%d" % kernel_thread)
    missing = _unused_pid()
    csv = "%d,%d,%d" % (zombie.pid, kernel_thread, missing)
    assert compare_live("-p", csv) == (HEADER.encode(), b"", 0)
    assert compare_live("-t", "-p", csv) == (b"", b"", 0)


def _unused_pid() -> int:
    with open("/proc/sys/kernel/pid_max") as handle:
        pid = int(handle.read()) - 1
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    return pid


def test_watch_ends_when_the_process_exits(procs):
    """-w with -p stops after the sample that finds nothing, whose footer
    then shows 0.0 KiB, and says so."""
    need_reference()
    short = procs.command([SLEEP, "1.5"], settle=False)
    children = [subprocess.Popen([sys.executable, str(script), "-w", "1", "-p", short.csv()],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
                for script in (OURS, REFERENCE)]
    try:
        results = [child.communicate(timeout=20) + (child.returncode,) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    last_sample = ("-" * 33 + "\n" + " " * 24 + "  0.0 KiB\n" + "=" * 33 + "\n"
                   "Process does not exist anymore.\n").encode()
    for out, err, status in results:
        assert (err, status) == (b"", 0)
        assert out.startswith(HEADER.encode()) and out.endswith(last_sample), out
        assert out.count(b"\tsleep\n") >= 1


def _next_sample(child: subprocess.Popen, timeout: float = 20) -> List[str]:
    """The names in the next sample a -w run prints (up to its footer)."""
    names = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = child.stdout.readline().decode()
        if not line or line == "=" * 33 + "\n":
            return names
        if "\t" in line and not line.startswith(" Private"):
            names.append(line.rstrip("\n").split("\t", 1)[1])
    raise AssertionError("no sample from %s in %.0f s" % (child.args[:2], timeout))


def test_watch_shows_names_as_they_change_like_3_14(procs):
    """During -w a process renames itself (prctl) and another's executable
    is removed: the samples after that show the new name and " [deleted]",
    as 3.14's do."""
    need_reference()
    renamed = procs.helper("setname", b"before".hex(), b"after".hex())
    victim = procs.sleep_named(b"victim")
    csv = "%d,%d" % (renamed.pid, victim.pid)
    children = [subprocess.Popen([sys.executable, str(script), "-w", "1", "-p", csv],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
                for script in (OURS, REFERENCE)]
    try:
        first = [sorted(_next_sample(child)) for child in children]
        assert renamed.request() == b"renamed\n"
        os.unlink(os.readlink("/proc/%d/exe" % victim.pid))
        # The sample being taken may have read either name: look at the next.
        later = [[sorted(_next_sample(child)) for _ in range(2)][-1] for child in children]
        for child in children:
            child.send_signal(signal.SIGINT)
            child.communicate(timeout=20)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert first == [["before", "victim"]] * 2
    ours, reference = later
    assert reference == ["after", "victim [deleted]"]
    assert ours == reference


def test_clone_vm_processes_merged_as_in_3_14(procs):
    """Processes sharing one address space (clone(CLONE_VM) without
    CLONE_THREAD) count it once, as 3.14's rule (identical smaps_rollup
    text) does."""
    helper = procs.helper("clone_vm", "3")  # 32 MiB, 4 processes
    assert len(helper.pids) == 4
    for options in ([], ["-S"], ["-t"], ["-s"]):
        result = compare_live(*options, "-p", helper.csv())
        assert result.status == 0 and result.stderr == b""
    rows, total = parse_report(run_ours("-p", helper.csv()).out)
    [(private, _, ram, name)] = rows
    assert name == "clone_vm (4)"
    assert 32 * 1024 <= private <= 34 * 1024 and total == ram


def test_clone_vm_with_d_counted_once_unlike_3_14(procs):
    """With -d each process of a shared address space is its own row: 3.14
    counts the space once per row (its total 4 times too big); ours gives
    each row a quarter, so the rows add up to the one address space."""
    helper = procs.helper("clone_vm", "3")
    ours = run_ours("-d", "-p", helper.csv())
    reference = run_reference_live("-d", "-p", helper.csv())
    assert ours.status == reference.status == 0
    ours_rows, ours_total = parse_report(ours.out, HEADER.replace("Program", "Program[pid]"))
    reference_rows, reference_total = parse_report(
        reference.out, HEADER.replace("Program", "Program[pid]"))
    assert sorted(name for *_, name in ours_rows) == \
        sorted("clone_vm [%d]" % pid for pid in helper.pids)
    assert 32 * 1024 <= ours_total <= 34 * 1024
    assert all(8 * 1024 <= private <= 8.5 * 1024 for private, *_ in ours_rows)
    assert 4 * 32 * 1024 <= reference_total <= 4 * 34 * 1024  # 3.14's defect


def test_setarch_R_sleeps_not_merged_unlike_3_14(procs):
    """Three independent `setarch -R sleep 600` (ASLR off) have identical
    smaps_rollup text: 3.14 takes them for one CLONE_VM address space and
    shows a third of their private memory.  Ours asks the kernel (kcmp) and
    counts each."""
    sleepers = [procs.sleep_no_aslr() for _ in range(3)]
    csv = ",".join(sleeper.csv() for sleeper in sleepers)
    one = private_of(run_ours("-p", sleepers[0].csv()).out)
    for _ in range(5):  # 3.14 merges only if its three reads agreed
        reference = run_reference_live("-p", csv)
        rows, _ = parse_report(reference.out)
        if rows[0][0] < 2 * one:
            break
    assert [name for *_, name in rows] == ["sleep (3)"]
    # 3.14: three processes' private memory shown as one's (within what
    # libc pages moving between Private and Shared account for).
    assert abs(rows[0][0] - one) <= 48, (rows[0][0], one)

    ours = run_ours("-p", csv)
    assert ours.status == 0 and ours.stderr == b""
    [(private, _, _, name)] = parse_report(ours.out)[0]
    assert name == "sleep (3)"
    assert abs(private - 3 * one) <= 48, (private, one)


def test_forked_children_not_merged_unlike_3_14(procs):
    """Children forked from one parent that then sleep show identical
    smaps_rollup text; 3.14 merges them as if they shared memory."""
    family = procs.helper("forkshare", "8", "3")
    children = family.csv(family.pids[1:])
    one = private_of(run_ours("-p", str(family.pids[1])).out)
    reference = run_reference_live("-p", children)
    assert private_of(reference.out) == one  # 3.14's defect
    ours = run_ours("-p", children)
    assert abs(private_of(ours.out) - 3 * one) <= 0.3
    assert parse_report(ours.out)[0][0][3] == "forkshare (3)"


# ----------------------------------------------------------------------------
# Pipes, signals and users
# ----------------------------------------------------------------------------


def _run_into_closed_pipe(script: Path, *args: str) -> Tuple[int, bytes]:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, str(script), *args], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=60, env=child_env())
    finally:
        os.close(write_end)
    return done.returncode, done.stderr


def test_stdout_closed_at_once():
    need_reference()
    ours = _run_into_closed_pipe(OURS)
    assert ours == _run_into_closed_pipe(REFERENCE) == (1, b"")


def test_head_reads_one_line():
    """`ps_mem | head -1`: whether ps_mem is still writing when head leaves
    depends on timing, so exit 0 or 1, but never a traceback."""
    head = shutil.which("head")
    if head is None:
        pytest.skip("no head")
    done = subprocess.run("%s %s | %s -1" % (sys.executable, OURS, head), shell=True,
                          capture_output=True, timeout=60, env=child_env())
    assert done.stdout == HEADER.split("\n")[0].encode() + b"\n"
    assert b"Traceback" not in done.stderr and b"Error" not in done.stderr


def test_watch_reader_closes_after_first_line(procs):
    """`ps_mem -w 1 -p PID | head -1`: a later write fails; exit 1."""
    need_reference()
    pid = str(procs.sleep().pid)
    children = [subprocess.Popen([sys.executable, str(script), "-w", "1", "-p", pid],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
                for script in (OURS, REFERENCE)]  # side by side, to save time
    try:
        lines = [child.stdout.readline() for child in children]
        for child in children:
            child.stdout.close()
        results = [(child.wait(timeout=20), line, child.stderr.read())
                   for child, line in zip(children, lines)]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stderr.close()
    ours, reference = results
    assert ours == (1, HEADER.split("\n")[0].encode() + b"\n", b"")
    assert reference == ours


def _interrupted_watch(script: Path, pid: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(script), "-w", "1", "-p", str(pid)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())


def test_ctrl_c_ends_watch_cleanly(procs):
    need_reference()
    sleeper = procs.sleep()
    children = [_interrupted_watch(OURS, sleeper.pid), _interrupted_watch(REFERENCE, sleeper.pid)]
    try:
        time.sleep(1.5)
        for child in children:
            child.send_signal(signal.SIGINT)
        results = [(child.wait(timeout=20),) + child.communicate(timeout=20)
                   for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    (status, out, err), (reference_status, reference_out, reference_err) = results
    assert status == reference_status == 0
    assert err == reference_err == b""  # PSS and SwapPss here: no warnings
    rows, total = parse_report(out.decode().split("---", 1)[0])
    assert [name for *_, name in rows] == ["sleep"]
    samples = out.decode()[len(HEADER):]
    sample = re.compile(ROW.pattern + FOOTER.pattern)
    assert re.fullmatch("(?:%s)+" % sample.pattern, samples), samples
    assert 1 <= len(sample.findall(samples)) <= 3
    assert reference_out.startswith(HEADER.encode())


# ps_mem 3.14 on a tree, as tests/harness.py runs it, but started in the
# background so that it can be signalled.
_REFERENCE_ON_TREE = r"""
import os, sys
reference_dir, root, self_pid = sys.argv[1:4]
sys.argv = ["ps_mem"] + sys.argv[4:]
os.geteuid = lambda: 0
os.getpid = lambda: int(self_pid)
sys.path.insert(0, reference_dir)
import ps_mem
ps_mem.proc.proc = root
ps_mem.our_pid = int(self_pid)
ps_mem.main()
"""


def _tree_with_fifo(destination: Path) -> Path:
    """A copy of a captured tree in which one process's cmdline is a FIFO:
    ps_mem blocks reading it, midway through its scan, until written to."""
    source = REPO / "tests" / "trees_captured" / "sleeps_shell_python"
    if not source.is_dir():
        pytest.skip("no captured tree %s" % source)
    shutil.copytree(source, destination, symlinks=True)
    self_pid = os.readlink(destination / "self")
    pid = min(entry for entry in os.listdir(destination) if entry.isdigit() and entry != self_pid)
    os.unlink(destination / pid / "cmdline")
    os.mkfifo(destination / pid / "cmdline")
    return destination / pid / "cmdline"


def _wait_blocked_on(fifo: Path, child: subprocess.Popen) -> int:
    """Wait until CHILD has opened FIFO for reading and sleeps in its read();
    return a write end, kept open (and never written) so that it stays
    there.

    Sleeping in read(), not just past open(): a signal that arrives between
    the two is handled before read() starts, which then waits for ever (a
    race of every program, that Ctrl-C on /proc never meets)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            writer = os.open(str(fifo), os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:  # ENXIO: no reader yet
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("never read %s: %r" % (fifo, child.communicate())) from None
            time.sleep(0.02)
    wchan = Path("/proc/%d/wchan" % child.pid)
    while time.monotonic() < deadline:
        try:
            if "pipe" in wchan.read_text():  # pipe_read, pipe_wait
                return writer
        except OSError:
            break
        time.sleep(0.01)
    time.sleep(0.2)  # no wchan to tell: give read() time to start
    return writer


def _finish(child: subprocess.Popen, timeout: float = 20) -> Tuple[bytes, bytes, int]:
    """(stdout, stderr, status) of CHILD; if it hangs, fail with where."""
    try:
        return child.communicate(timeout=timeout) + (child.returncode,)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGABRT)  # faulthandler prints every thread
        _, err = child.communicate()
        raise AssertionError("%s hung after SIGINT:\n%s"
                             % (child.args[:3], err.decode("utf-8", "replace"))) from None


@pytest.mark.parametrize("watch", [False, True], ids=["one-shot", "watch"])
def test_ctrl_c_midway_through_a_scan(tmp_path, watch):
    """Ctrl-C while ps_mem reads /proc: a one-shot run dies by SIGINT with no
    traceback (the header already written); a watch ends normally, exit 0,
    with its warnings; as 3.14 does.  A FIFO makes both block at the same
    point, so the outcome does not depend on timing."""
    need_reference()
    options = ["-w", "1"] if watch else []
    env = dict(child_env(), PYTHONFAULTHANDLER="1")
    trees = [tmp_path / "ours", tmp_path / "reference"]
    fifos = [_tree_with_fifo(tree) for tree in trees]
    children = [
        subprocess.Popen([sys.executable, str(OURS), "--procfs", str(trees[0]), *options],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env),
        subprocess.Popen([sys.executable, "-c", _REFERENCE_ON_TREE, str(REFERENCE_DIR),
                          str(trees[1]), os.readlink(trees[1] / "self"), *options],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env),
    ]
    writers = []
    try:
        for fifo, child in zip(fifos, children):
            writers.append(_wait_blocked_on(fifo, child))
        for child in children:
            child.send_signal(signal.SIGINT)
        results = [_finish(child) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        for writer in writers:
            os.close(writer)
    ours, reference = results
    assert ours == reference
    assert ours == (HEADER.encode(), b"", 0 if watch else -signal.SIGINT)


_CAN_READ = ("import os, sys\n"
             "for path in sys.argv[1:]:\n"
             "    os.listdir(path) if os.path.isdir(path) else open(path, 'rb').close()\n")


def _run_as_nobody(*args: str, reads: Sequence[Path] = ()) -> Result:
    """Run ARGS with Python as the user nobody, which must be able to read
    READS (a clone under /root would not be, say: then skip)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    env = child_env()
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for python in (sys.executable, "/usr/bin/python3"):
        done = subprocess.run(as_nobody + [python, "-c", _CAN_READ, *map(str, reads)], cwd="/",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if done.returncode == 0:
            break
    else:
        pytest.skip("the user nobody cannot run Python on %s" % [str(path) for path in reads])
    done = subprocess.run(as_nobody + [python, *args], cwd="/", capture_output=True,
                          timeout=60, env=env)
    return Result(done.stdout, done.stderr, done.returncode)


def test_non_root_without_pids_is_refused():
    need_reference()
    result = _run_as_nobody(str(OURS), reads=[OURS, REFERENCE])
    assert result == (b"", b"Sorry, root permission required, or specify pids with -p\n", 1)
    assert _run_as_nobody(str(REFERENCE)) == result


def test_non_root_reads_a_fixture_tree():
    tree = REPO / "tests" / "trees_captured" / "sleeps_shell_python"
    if not tree.is_dir():
        pytest.skip("no captured tree %s" % tree)
    result = _run_as_nobody(str(OURS), "--procfs", str(tree), reads=[OURS, tree, tree / "self"])
    assert result.status == 0 and result.stderr == b""
    assert result == run_ours(procfs=tree)
    need_reference()
    assert result == run_reference(procfs=tree)
    assert "python3.11" in result.out
