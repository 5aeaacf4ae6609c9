"""Every test that needs this machine's real /proc (but the stress ones,
test_stress.py's), beside ps_mem 3.14, in the pipeline's order: the whole
machine; processes started for the test, their sizes and names (hostile
ones too); collection (forked readers, processes that may not be read);
shared address spaces (kcmp); aggregation (--group-by, --sort, --top);
--json; --capture; the command line (watches, pipes, signals, users).

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
bracketed() and agreeing() retry to ride out other processes starting and
exiting.
"""

import ctypes
import json
import os
import platform
import pwd
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest

from tests.capture_tree import capture as capture_tree
from tests.harness import (
    DENIED_WARNING_1, HEADER, LIVE, MEMBER, OURS, REFERENCE, REPO, Result, Started, as_nobody,
    assert_no_control_bytes, assert_only_what_ps_mem_reads, assert_reaped, assert_same_as_table,
    assert_schema, assert_warnings_are_stderr, child_env, command, document, document_of,
    fork_refused, into_closed_pipe, json_of, kib, member_data, members, need_reference,
    parse_rows, parse_table, pids_by_name, printable, ps_mem, rounding, row_names, run_as_nobody,
    run_main, run_ours, run_reference, run_script, setpriv, sizes_apart, with_names_printable,
)
from tests.realproc import (SLEEP, Processes, build, children_of, csv, memory_text,
                            process_state, wait_settled)

pytestmark = LIVE


# Unlike 3.14, ps_mem.py says on stderr how many processes it was denied
# (here: a sandbox's pid 1, unreadable even for root); nothing else is
# expected there in a whole-system run on this kernel.
WARNINGS_ONLY = re.compile(rb"(?:Warning: [^\n]*\n)*")
MIB = 1024 * 1024


def run_reference_live(*args: str, timeout: float = 60) -> Result:
    """ps_mem 3.14 itself on the live /proc, as root."""
    need_reference()
    return run_script(REFERENCE, *args, timeout=timeout)


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


def agreeing(ours: Callable[[], Result], reference: Callable[[], Result],
             expected: Callable[[Result], Result] = lambda result: result,
             tries: int = 4) -> Tuple[Result, Result]:
    """(ours(), reference()), run again while ours is not expected(reference)
    (by default: while they differ), up to TRIES times: the helpers' pages
    are shared with any other copy of the same helper running on the
    machine, whose start or exit moves their Pss between two runs.  A real
    difference persists."""
    for _ in range(tries):
        pair = ours(), reference()
        try:
            if pair[0] == expected(pair[1]):
                break
        except AssertionError:
            pass
    return pair


def printable_row(reference: Result) -> Result:
    """3.14's one-row output as ps_mem.py prints it: control characters in
    the name as "?"."""
    _, name = single_row(reference.out)
    stdout = reference.out.replace("\t" + name + "\n", "\t" + printable(name) + "\n")
    return reference._replace(stdout=stdout.encode())


def close_enough(ours: Result, reference: Result, slack_kib: float = 64) -> bool:
    return ((ours.stderr, ours.status) == (reference.stderr, reference.status)
            and not sizes_apart(ours.out, reference.out, slack_kib, slack_kib, slack_kib))


def assert_close(ours: Result, reference: Result, slack_kib: float = 64) -> None:
    """The same output but for sizes, which may differ by SLACK_KIB (a
    sleep's libc pages moving between Private and Shared, see above)."""
    if not close_enough(ours, reference, slack_kib):
        assert (ours.out, ours.err, ours.status) == \
            (reference.out, reference.err, reference.status), \
            sizes_apart(ours.out, reference.out, slack_kib, slack_kib, slack_kib)


def parse_report(stdout: str, header: str = HEADER) -> Tuple[List[Tuple[float, float, float, str]],
                                                             Optional[float]]:
    """Rows as (private, shared, ram, name) in KiB, and the footer total;
    fails unless the whole output is HEADER, rows and a footer in 3.14's
    layout (without -S)."""
    assert stdout.startswith(header), stdout[:200]
    table = parse_table(stdout)
    assert table.rest == "", "not a row or a footer: %r" % table.rest[:200]
    assert table.total_swap is None and all(row.swap is None and row.name for row in table.rows)
    rows = [(kib(row.private), kib(row.shared), kib(row.ram), row.name) for row in table.rows]
    return rows, None if table.total_ram is None else kib(table.total_ram)


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
        slack = rounding(private) + rounding(shared) + rounding(ram)
        assert abs(private + shared - ram) <= slack, name
    slack = sum(rounding(ram) for ram in rams) + rounding(total)
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


@pytest.mark.parametrize("args", [[], ["-S", "-d"], ["--system"], ["--group-by", "app"],
                                  ["--prometheus"]], ids=lambda args: " ".join(args) or "plain")
def test_live_run_loads_no_heavy_module(args):
    """A whole run on the live /proc, in its process (the forked children
    load what they need after the fork): the views that cost at most a
    tenth more than the default import none of argparse, typing, re,
    collections, ctypes or json, which are most of what a start-up costs
    (bench/run.py's section 7 measures the views)."""
    program = (
        "import os, sys; sys.path.insert(0, %r); sys.argv = ['ps_mem']\n"
        "import ps_mem\n"
        "real, sys.stdout = sys.stdout, open(os.devnull, 'w')\n"
        "status = ps_mem.main(%r)\n"
        "sys.stdout = real\n"
        "print(status, sorted(name for name in ('argparse', 'typing', 're', 'collections',"
        " 'ctypes', 'json') if name in sys.modules))\n" % (str(REPO), args))
    result = subprocess.run([sys.executable, "-S", "-c", program], env=child_env(),
                            capture_output=True, timeout=60)
    assert WARNINGS_ONLY.fullmatch(result.stderr), result.stderr
    assert result.stdout == b"0 []\n"


# ----------------------------------------------------------------------------
# Processes started for the test: sizes and names
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
    while not (children_of(family.pid) and
               _status_name(children_of(family.pid)[0]) == "Web Content"):
        assert time.monotonic() < deadline, "the child did not rename itself"
        time.sleep(0.01)
    child = children_of(family.pid)[0]
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
    assert single_row(ours.out)[1] == printable(kernel_name) == "?[31mred??\\n\\\\x"


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
        assert single_row(ours.out)[1] == printable(raw_name), options
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


# ----------------------------------------------------------------------------
# Hostile names (issue 3): every control character, in names, files, views
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renamed():
    """One setname helper per name of RENAMES, for the module's tests."""
    with Processes() as started:
        yield {name: started.helper("setname", name.hex()) for name in RENAMES}


# prctl(PR_SET_NAME) names, at most 15 bytes, and how ps_mem.py shows them.
RENAMES: Dict[bytes, str] = {
    b"\x1b[31mEVIL\x07": "?[31mEVIL?",
    "c1\u009b2J".encode(): "c1?2J",  # C1 CSI, UTF-8 encoded
    b"del\x7fdel": "del?del",
    b"tab\there": "tab?here",
    # A carriage return ends the name for both (3.14 reads status with
    # universal newlines; ours reads the same from status, not comm).
    b"bs\x08\x08cr\rx": "bs??cr",
    b"raw\x9bbyte": "rawbyte",  # a lone \x9b is not UTF-8: dropped, as 3.14 does
    "café-ünïcode".encode(): "café-ünïcode",  # 15 bytes: prints unchanged
}


@pytest.mark.parametrize("view", [[], ["-d"], ["-s"], ["-s", "-d"]],
                         ids=["default", "-d", "-s", "-s-d"])
def test_renamed_live_processes(renamed, view):
    need_reference()
    helpers = renamed
    csv = ",".join(str(helper.pid) for helper in helpers.values())
    ours, reference = agreeing(lambda: run_script(OURS, *view, "-p", csv),
                               lambda: run_script(REFERENCE, *view, "-p", csv),
                               lambda result: _printable_all(result, helpers))
    assert ours.status == reference.status == 0
    assert ours.stderr == reference.stderr == b""
    assert_no_control_bytes(ours.stdout)

    if "-s" in view:
        # Named by command line: the helper's path and the name in hex,
        # nothing hostile; ours prints 3.14's bytes.
        expected_names = ["%s %s" % (os.fsdecode(build("setname")), name.hex())
                          for name in RENAMES]
        raw_names: List[str] = []
    else:
        expected_names = list(RENAMES.values())
        raw_names = [_kernel_name(helper.pid) for helper in helpers.values()]
        assert any("\x1b" in raw for raw in raw_names)
        assert b"\x1b[31mEVIL\x07" in reference.stdout  # 3.14's defect
    if "-d" in view and "-s" not in view:  # -s names have no [pid], as in 3.14
        expected_names = ["%s [%d]" % (name, helper.pid)
                          for name, helper in zip(expected_names, helpers.values())]
    assert sorted(row_names(ours.out)) == sorted(expected_names)
    assert ours == with_names_printable(reference, raw_names)


def test_renamed_live_processes_json(renamed):
    helpers = renamed
    csv = ",".join(str(helper.pid) for helper in helpers.values())
    for args in (["--json"], ["--json", "-d"]):
        result = run_script(OURS, *args, "-p", csv)
        assert result.status == 0 and result.stderr == b""
        assert_no_control_bytes(result.stdout)
        document = json.loads(result.stdout)
        got = {tuple(program["pids"]): program["name"] for program in document["programs"]}
        suffix = " [%d]" if "-d" in args else ""
        # JSON has each name whole (escaped by JSON), as the kernel gave it;
        # the table shows it printable.
        assert got == {(helper.pid,): _kernel_name(helper.pid) + (
            suffix % helper.pid if suffix else "") for helper in helpers.values()}
        want = {(helper.pid,): shown + (suffix % helper.pid if suffix else "")
                for shown, helper in zip(RENAMES.values(), helpers.values())}
        assert {pids: printable(name) for pids, name in got.items()} == want


def _printable_all(reference: Result, helpers) -> Result:
    if b"\t/" in reference.stdout:  # -s: nothing hostile in the command lines
        return reference
    return with_names_printable(reference, [_kernel_name(helper.pid)
                                            for helper in helpers.values()])


def _kernel_name(pid: int) -> str:
    """The name as 3.14 reads it: status's Name, undecodable bytes dropped,
    cut at a carriage return (it reads status with universal newlines)."""
    return _status_name(pid).split("\r")[0]


# An executable file name with escape sequences, BEL, a newline and a C1
# character.  Its first 15 bytes (the process name exec gives it, kept by
# renaming to the same) hold no newline, so the name is a prefix of the
# file name and the whole file name is shown.
HOSTILE_FILE = "evil\x1b[7mname\x07\x1b[0m\nline2\u009b".encode()


@pytest.mark.parametrize("view", [[], ["-d"], ["-s"], ["--json"]],
                         ids=["default", "-d", "-s", "--json"])
def test_executable_file_name_with_escapes_live(procs, view):
    helper = procs.helper("setname", HOSTILE_FILE[:15].hex(), file_name=HOSTILE_FILE)
    pid, path = helper.pid, helper.popen.args[0]
    ours = run_script(OURS, *view, "-p", str(pid))
    assert ours.status == 0 and ours.stderr == b""
    assert_no_control_bytes(ours.stdout)
    file_name = HOSTILE_FILE.decode()
    if "-s" in view:
        raw = ("%s %s" % (os.fsdecode(path), HOSTILE_FILE[:15].hex())).replace("\n", " ")
    else:
        raw = file_name + (" [%d]" % pid if "-d" in view else "")
    shown = printable(raw)
    assert "\x1b" not in shown and "\n" not in shown
    if "--json" in view:
        [program] = json.loads(ours.stdout)["programs"]
        assert program["name"] == raw  # whole: JSON escapes it
        return
    assert row_names(ours.out) == [shown]
    need_reference()
    ours, reference = agreeing(lambda: run_script(OURS, *view, "-p", str(pid)),
                               lambda: run_script(REFERENCE, *view, "-p", str(pid)),
                               lambda result: with_names_printable(result, [raw]))
    assert reference.status == 0
    assert raw.encode() in reference.stdout  # 3.14 prints it raw
    assert ours == with_names_printable(reference, [raw])


# ----------------------------------------------------------------------------
# Collection: forked readers
# ----------------------------------------------------------------------------


@pytest.mark.usefixtures("small_chunks")
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


@pytest.mark.usefixtures("small_chunks")
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


# ----------------------------------------------------------------------------
# Collection: processes that may not be read
# ----------------------------------------------------------------------------


def test_unprivileged_user_denied_a_root_process():
    """As nobody, -p naming a root sleep and nobody's own process: the
    root one cannot be read; ours says so on stderr and prints what it
    prints for nobody's process alone (what 3.14 prints, silently)."""
    helper = build("setname")  # static: its numbers do not move
    prefix = as_nobody()
    with Processes() as procs:
        root_sleep = procs.sleep()
        own = subprocess.Popen(prefix + [str(helper), b"mine".hex()], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, start_new_session=True)
        try:
            assert own.stdout.readline().split()[0] == b"ready"
            wait_settled([own.pid])
            both = "%d,%d" % (root_sleep.pid, own.pid)
            ours = run_as_nobody(str(OURS), "-p", both, reads=[OURS])
            alone = run_as_nobody(str(OURS), "-p", str(own.pid), reads=[OURS])
            assert ours.status == alone.status == 0
            assert ours.stderr == DENIED_WARNING_1 and alone.stderr == b""
            assert ours.stdout == alone.stdout
            assert re.search(rb"\tmine\n", ours.stdout)
            assert b"sleep" not in ours.stdout
            for args in (["-s"], ["-t"], ["-d", "-S"]):
                denied = run_as_nobody(str(OURS), *args, "-p", both, reads=[OURS])
                assert denied.stderr == DENIED_WARNING_1, args
                assert denied.stdout == run_as_nobody(str(OURS), *args, "-p", str(own.pid),
                                                 reads=[OURS]).stdout
            if REFERENCE.exists():
                reference = run_as_nobody(str(REFERENCE), "-p", both, reads=[REFERENCE])
                assert (reference.stdout, reference.stderr, reference.status) == \
                    (ours.stdout, b"", 0)
        finally:
            own.terminate()
            own.wait(timeout=10)
            own.stdout.close()


# ----------------------------------------------------------------------------
# Shared address spaces, counted exactly (kcmp)
# ----------------------------------------------------------------------------


def ram_mib(result: Result) -> Dict[str, float]:
    """RAM used per row of a --json run, in MiB, and the total as "total"."""
    doc = document_of(result)
    rows = {program["name"]: program["ram"] / MIB for program in doc["programs"]}
    rows["total"] = doc["total"]["ram"] / MIB
    return rows


def total_mib(stdout: str) -> float:
    """The footer's total of a table (without -S), in MiB."""
    table = parse_table(stdout)
    assert table.rest == "" and table.total_ram is not None and table.total_swap is None, stdout
    return kib(table.total_ram) / 1024


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
# A process and two CLONE_VM children
# ----------------------------------------------------------------------------


def test_clone_vm_space_counted_once_in_every_view(procs):
    helper = procs.helper("clone_vm", "2", "32")  # 32 MiB written, then 2 clones
    pids = helper.pids
    assert len(pids) == 3

    rows = ram_mib(run_script(OURS, "--json", "-p", csv(pids)))
    assert set(rows) == {"clone_vm", "total"}
    assert 32 <= rows["clone_vm"] == rows["total"] <= 34

    by_pid = ram_mib(run_script(OURS, "--json", "-d", "-p", csv(pids)))
    assert set(by_pid) == {"clone_vm [%d]" % pid for pid in pids} | {"total"}
    for pid in pids:  # a third each
        assert abs(by_pid["clone_vm [%d]" % pid] - rows["total"] / 3) < 0.01
    assert abs(by_pid["total"] - rows["total"]) < 0.01

    table = run_script(OURS, "-d", "-p", csv(pids))
    assert 32 <= total_mib(table.out) <= 34
    only_total = run_script(OURS, "-t", "-d", "-p", csv(pids))
    assert 32 * MIB <= int(only_total.stdout) <= 34 * MIB

    need_reference()
    reference = run_script(REFERENCE, "-d", "-p", csv(pids))
    assert 3 * 32 <= total_mib(reference.out) <= 3 * 34  # 3.14: once per process
    # Without -d 3.14's rule (identical text) gets it right: same bytes.
    ours, reference = agreeing(lambda: run_script(OURS, "-p", csv(pids)),
                               lambda: run_script(REFERENCE, "-p", csv(pids)))
    assert ours == reference


def test_only_some_processes_of_a_program_share(procs):
    """clone_vm's three processes in one space, and an independent clone_vm
    of 8 MiB: one program of 4 processes and 2 address spaces.  Not all
    its memory files are alike, so 3.14 counts the shared space 3 times."""
    group = procs.helper("clone_vm", "2", "32").pids
    alone = procs.helper("clone_vm", "0", "8").pids
    pids = group + alone

    rows = ram_mib(run_script(OURS, "--json", "-p", csv(pids)))
    one_space = ram_mib(run_script(OURS, "--json", "-p", csv(group)))["total"]
    single = ram_mib(run_script(OURS, "--json", "-p", csv(alone)))["total"]
    assert 8 <= single <= 9.5
    assert abs(rows["clone_vm"] - (one_space + single)) < 0.05
    assert abs(rows["total"] - rows["clone_vm"]) < 0.01

    by_pid = ram_mib(run_script(OURS, "--json", "-d", "-p", csv(pids)))
    for pid in group:
        assert abs(by_pid["clone_vm [%d]" % pid] - one_space / 3) < 0.02
    assert abs(by_pid["clone_vm [%d]" % alone[0]] - single) < 0.02
    assert abs(by_pid["total"] - rows["total"]) < 0.05

    # -p naming only one process of the space: that process is all of it.
    first = ram_mib(run_script(OURS, "--json", "-p", str(group[0])))
    assert abs(first["total"] - one_space) < 0.05

    need_reference()
    table = run_script(REFERENCE, "-p", csv(pids))
    assert abs(total_mib(table.out) - (3 * one_space + single)) < 0.2  # 3.14's sum


def test_two_identical_spaces_are_two(procs):
    """Two `setarch -R clone_vm 2 16`: six processes whose smaps_rollup are
    all the same text, in two address spaces of 16 MiB each.  3.14 takes
    them for one space (16 MiB); ours asks the kernel (32 MiB)."""
    helper = str(build("clone_vm"))
    first = procs.no_aslr([helper, "2", "16"], processes=3)
    second = procs.no_aslr([helper, "2", "16"], processes=3)
    pids = first + second
    if len({memory_text(pid) for pid in pids}) != 1:
        pytest.skip("the two groups' memory files differ here: nothing for 3.14 to merge")

    rows = ram_mib(run_script(OURS, "--json", "-p", csv(pids)))
    assert 32 <= rows["total"] <= 34.5
    by_pid = ram_mib(run_script(OURS, "--json", "-d", "-p", csv(pids)))
    assert abs(by_pid["total"] - rows["total"]) < 0.05
    assert all(abs(by_pid["clone_vm [%d]" % pid] - rows["total"] / 6) < 0.02 for pid in pids)

    need_reference()
    reference = run_script(REFERENCE, "-p", csv(pids))
    assert 16 <= total_mib(reference.out) <= 17.5  # 3.14: one space


# ----------------------------------------------------------------------------
# Independent processes with identical maps
# ----------------------------------------------------------------------------


def test_setarch_sleeps_counted_three_times(procs):
    """Three `setarch -R sleep 600`: identical memory text, three address
    spaces.  Ours counts three sleeps (about 3 times one); 3.14 shows one
    sleep's worth."""
    sleepers = [procs.sleep_no_aslr().pid for _ in range(3)]
    if len({memory_text(pid) for pid in sleepers}) != 1:
        pytest.skip("the sleeps' memory files differ here: nothing for 3.14 to merge")
    one = document_of(run_script(OURS, "--json", "-p", str(sleepers[0])))
    three = document_of(run_script(OURS, "--json", "-p", csv(sleepers)))
    [program] = three["programs"]
    assert program["name"] == "sleep" and program["count"] == 3
    [single] = one["programs"]
    # Private memory is each sleep's own: three times one's (libc pages
    # moving between Private and Shared as processes touch them: 48 KiB).
    assert abs(program["private"] - 3 * single["private"]) <= 48 * 1024
    assert 2.7 * single["ram"] <= program["ram"] <= 3.3 * single["ram"]
    assert three["total"]["ram"] == program["ram"]

    by_pid = document_of(run_script(OURS, "--json", "-d", "-p", csv(sleepers)))
    assert len(by_pid["programs"]) == 3
    assert abs(by_pid["total"]["ram"] - three["total"]["ram"]) <= 48 * 1024

    need_reference()
    for _ in range(5):  # 3.14 merges only if its three reads agreed
        reference = run_script(REFERENCE, "-p", csv(sleepers))
        assert reference.status == 0
        if total_mib(reference.out) < 1.5 * single["ram"] / MIB:
            break
    # 3.14: one sleep's worth for three.
    assert total_mib(reference.out) < 1.5 * single["ram"] / MIB


# ----------------------------------------------------------------------------
# Where kcmp cannot be had: 3.14's rule, 3.14's bytes
# ----------------------------------------------------------------------------


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
            lambda args=args: run_script(OURS, *args, "-p", pids, preexec_fn=refuse),
            lambda args=args: run_script(REFERENCE, *args, "-p", pids))
        assert ours == reference, args
    # Where kcmp works: two spaces, not 3.14's one.
    assert 32 * MIB <= int(run_script(OURS, "-t", "-p", pids).stdout) <= 34.5 * MIB
    assert 16 * MIB <= int(run_script(REFERENCE, "-t", "-p", pids).stdout) <= 17.5 * MIB


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
            lambda args=args: run_script(OURS, *args, "-p", pids, preexec_fn=kill),
            lambda args=args: run_script(REFERENCE, *args, "-p", pids))
        assert ours == reference, args


def test_no_fork_gives_3_14s_output(static_groups, monkeypatch):
    """No child can be forked to ask kcmp (EAGAIN): 3.14's rule."""
    need_reference()

    monkeypatch.setattr(os, "fork", fork_refused)
    pids = csv(static_groups)
    ours, reference = agreeing(lambda: run_main("-p", pids),
                               lambda: run_script(REFERENCE, "-p", pids))
    assert ours == reference


def test_no_kcmp_number_gives_3_14s_output(static_groups, monkeypatch):
    """A machine whose kcmp number ps_mem does not know: 3.14's rule."""
    need_reference()
    monkeypatch.setattr(ps_mem, "_kcmp_number", lambda: None)
    pids = csv(static_groups)
    for args in ([], ["-d"]):
        ours, reference = agreeing(lambda args=args: run_main(*args, "-p", pids),
                                   lambda args=args: run_script(REFERENCE, *args, "-p", pids))
        assert ours == reference, args


def test_kcmp_denied_for_some_processes(procs, static_groups, monkeypatch):
    """kcmp refused for some processes only (EPERM: another user's, not
    dumpable): 3.14's rule for the processes alike to them, the kernel's
    answer for the others."""
    sleepers = [procs.sleep_no_aslr().pid for _ in range(3)]
    if len({memory_text(pid) for pid in sleepers}) != 1:
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


def test_copy_of_proc_gives_3_14s_output(procs, static_groups, tmp_path):
    """The same processes read through --procfs on a copy of their /proc
    entries: no kernel to ask, so 3.14's rule and 3.14's bytes; the
    sleeps that 3.14 merges are merged there too."""
    need_reference()
    sleepers = [procs.sleep_no_aslr().pid for _ in range(3)]
    me = procs.sleep().pid  # the copy's `self`: the accuracy probe, left out
    tree = tmp_path / "proc"
    capture_tree(str(tree), static_groups + sleepers + [me], me)
    for args in ([], ["-d"], ["-s"], ["-t"], ["-S"], ["-d", "-S"], ["-p", csv(static_groups)]):
        ours = run_ours(*args, procfs=tree)
        assert ours == run_reference(*args, procfs=tree), args

    live_total = int(run_script(OURS, "-t", "-p", csv(static_groups + sleepers)).stdout)
    copy_total = int(run_ours("-t", procfs=tree).stdout)
    assert live_total > copy_total + 15 * MIB  # the copy merges as 3.14 does


# ----------------------------------------------------------------------------
# Aggregation: --group-by user and cgroup
# ----------------------------------------------------------------------------


def _setpriv(procs: Processes, *options: str):
    """`sleep 600` run by setpriv with OPTIONS."""
    return procs.command(setpriv(*options) + [SLEEP, "600"], exe=os.path.realpath(SLEEP))


def _uids(pid: int) -> List[int]:
    status = Path("/proc/%d/status" % pid).read_text()
    return [int(uid) for uid in re.search(r"^Uid:\t(.*)$", status, re.M).group(1).split()]


def test_live_user_is_the_real_uid():
    """A root sleep shows as root; one whose real uid is 65534 (effective 0)
    as that uid's name; one with only the effective uid changed as root."""
    with Processes() as procs:
        mine = procs.sleep()
        real = _setpriv(procs, "--ruid=65534")
        effective = _setpriv(procs, "--euid=65534")
        assert _uids(real.pid)[:2] == [65534, 0] and _uids(effective.pid)[:2] == [0, 65534]
        pids = "%d,%d,%d" % (mine.pid, real.pid, effective.pid)
        doc = json_of("--group-by", "user", "-p", pids)
    try:
        nobody = pwd.getpwuid(65534).pw_name
    except KeyError:
        nobody = "65534"
    assert pids_by_name(doc) == {"root": sorted([mine.pid, effective.pid]), nobody: [real.pid]}


def test_live_whole_system_by_user_has_root():
    with Processes() as procs:
        mine = procs.sleep()
        doc = json_of("--group-by", "user")
    names = pids_by_name(doc)
    assert mine.pid in names["root"]
    assert all(program["ram"] > 0 for program in doc["programs"])


def _unified_hierarchy() -> Path:
    """Where the cgroup v2 (unified) hierarchy is mounted from its root, so
    that a cgroup NAME made there is "/NAME" in /proc/PID/cgroup."""
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            kind = fields[fields.index("-") + 1]
            if kind == "cgroup2" and fields[3] == "/":
                return Path(fields[4])
    pytest.skip("no cgroup v2 hierarchy mounted here")


def _remove_cgroup(path: Path) -> None:
    """Remove the cgroup PATH once the kernel has let its last process go."""
    deadline = time.monotonic() + 10
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY: a process that ended is still being freed
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_live_cgroup_is_the_process_cgroup():
    """On a cgroup v2 machine, a sleep moved into a cgroup made for the
    test in the unified hierarchy is one row named by that cgroup's path, "/ps_mem-test-PID",
    written out here rather than read back from /proc (the rule for every
    shape of /proc/PID/cgroup: test_parsers.py's test_parse_cgroup, and
    test_aggregation.py's cgroup tree)."""
    if any(line.split(":")[1:2] and "memory" in line.split(":")[1].split(",")
           for line in Path("/proc/self/cgroup").read_text().splitlines()):
        pytest.skip("cgroup v1's memory controller accounts memory here, and names the rows:"
                    " test_collection_cgroup.py's live test")
    name = "/ps_mem-test-%d" % os.getpid()
    cgroup = _unified_hierarchy() / name[1:]
    try:
        cgroup.mkdir()
    except OSError as error:
        pytest.skip("cannot make the cgroup %s: %s" % (cgroup, error))
    try:
        with Processes() as procs:
            sleeper = procs.sleep()
            try:
                (cgroup / "cgroup.procs").write_text("%d\n" % sleeper.pid)
            except OSError as error:
                pytest.skip("cannot move a process into %s: %s" % (cgroup, error))
            assert "\n0::%s\n" % name in "\n" + Path("/proc/%d/cgroup" % sleeper.pid).read_text()
            doc = json_of("--group-by", "cgroup", "-p", str(sleeper.pid))
            table = run_ours("--group-by", "cgroup", "-p", str(sleeper.pid))
    finally:
        _remove_cgroup(cgroup)
    assert pids_by_name(doc) == {name: [sleeper.pid]}
    assert row_names(table.out) == [name]


def test_live_clone_vm_counted_once_in_user_and_cgroup_rows(tmp_path):
    """On the live /proc the kernel says which processes share an address
    space: a user (or cgroup) row counts it once, like the program row.
    A sleep beside it shares libc pages with the rest of the machine, whose
    Pss moves between runs, so the exact comparison reads one sample: a
    capture (which records the kernel's answer) read with each grouping."""
    capture = tmp_path / "sample.tar.gz"
    with Processes() as procs:
        helper = procs.helper("clone_vm", "3")
        sleeper = procs.sleep()
        pids = helper.csv() + ",%d" % sleeper.pid
        live = {grouping: json_of("--group-by", grouping, "-p", pids)
                for grouping in ("program", "user", "cgroup")}
        assert run_ours("--capture", str(capture), "-p", pids).status == 0
    for grouping, doc in live.items():
        # Live, a run apart: within what the sleep's library pages move.
        assert abs(doc["total"]["ram"] - live["program"]["total"]["ram"]) <= 64 * 1024, grouping
    by = {grouping: json_of("--group-by", grouping, "-p", pids, procfs=capture)
          for grouping in ("program", "user", "cgroup")}
    assert [(row["name"], row["count"]) for row in by["user"]["programs"]] == [("root", 5)]
    assert by["user"]["total"] == by["program"]["total"] == by["cgroup"]["total"]
    clone = next(row for row in by["program"]["programs"] if row["name"] == "clone_vm")
    assert 32 * 2 ** 20 <= clone["private"] <= 34 * 2 ** 20
    sleep = next(row for row in by["program"]["programs"] if row["name"] == "sleep")
    assert by["user"]["programs"][0]["private"] == clone["private"] + sleep["private"]


# ----------------------------------------------------------------------------
# Aggregation: --sort and --top
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["private", "count", "name"])
def test_live_top_in_order(key):
    result = run_ours("--json", "--sort", key, "--reverse", "--top", "5")
    assert result.status == 0, result.err
    doc = json.loads(result.stdout)
    values = [program[key] for program in doc["programs"]]
    assert 1 <= len(values) <= 5
    if key == "name":
        assert values == sorted(values)[::-1]  # the first five names, last first
    else:
        assert values == sorted(values, reverse=True)
    rows = sum(program["ram"] for program in doc["programs"])
    assert abs(doc["total"]["ram"] - rows) <= len(values)


def test_live_table_top_footer_is_sum_of_rows():
    # A container may run only two or three programs; four distinct sleeps
    # (and this test's python) make sure there are more than four to cut.
    with Processes() as processes:
        for name in (b"top-a", b"top-b", b"top-c", b"top-d"):
            processes.sleep_named(name)
        result = run_ours("--reverse", "--top", "4")
    assert result.status == 0, result.err
    table = parse_table(result.out)
    assert len(table.rows) == 4 and table.rest == ""
    rams = [kib(row.ram) for row in table.rows]
    assert rams == sorted(rams, reverse=True)
    slack = sum(rounding(size) for size in rams + [kib(table.total_ram)])
    assert abs(sum(rams) - kib(table.total_ram)) <= slack


# ----------------------------------------------------------------------------
# Output: --json
# ----------------------------------------------------------------------------


def test_watch_on_live_proc_prints_flushed_json_lines():
    """`--json -w 1` on the live /proc for about 2.5 s, then SIGINT: each line
    is read as it comes (so it was flushed), each is one document, and the
    watch ends with status 0."""
    with Processes() as procs:
        sleeper = procs.sleep()
        child = subprocess.Popen([sys.executable, str(OURS), "--json", "-w", "1",
                                  "-p", str(sleeper.pid)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            started = time.monotonic()
            lines: List[bytes] = []
            buffered = b""
            while time.monotonic() - started < 2.5:
                ready, _, _ = select.select([child.stdout], [], [], 0.1)
                if ready:
                    chunk = os.read(child.stdout.fileno(), 65536)
                    assert chunk, "ps_mem exited during the watch"
                    buffered += chunk
                    *complete, buffered = buffered.split(b"\n")
                    lines += complete
            assert child.poll() is None
            # Read while it still runs: each sample is written and flushed.
            assert len(lines) >= 2, lines
            child.send_signal(signal.SIGINT)
            rest, err = child.communicate(timeout=20)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    lines += (buffered + rest).split(b"\n")
    assert lines[-1] == b""
    assert child.returncode == 0 and err == b""
    docs = [document(line + b"\n") for line in lines[:-1]]
    assert 2 <= len(docs) <= 5
    for doc in docs:
        assert_schema(doc, os.uname().release)
        assert [(program["name"], program["pids"]) for program in doc["programs"]] == \
            [("sleep", [sleeper.pid])]
        assert doc["total"]["ram"] == doc["programs"][0]["ram"] > 0
    times = [doc["time"] for doc in docs]
    assert times == sorted(times) and times[0] != times[-1]


def test_live_document_matches_table_of_same_sample(tmp_path, monkeypatch):
    """A live `--json` run that also captures what it read; the table read
    from that capture has the same rows and totals, and the warnings (here
    at least the processes root may not read, if any) are stderr's.  (The
    capture is read in this process and loaded once: reading one is mostly
    parsing the tar.)"""
    capture = tmp_path / "live.tar.gz"
    live = run_ours("--json", "--capture", str(capture))
    assert live.status == 0, live.err
    doc = document(live.stdout)
    assert_schema(doc, os.uname().release)
    assert_warnings_are_stderr(doc, live.stderr)
    assert doc["programs"] and doc["total"]["ram"] and doc["accuracy"]["ram"] == 2
    loaded = ps_mem.load_capture(str(capture))
    monkeypatch.setattr(ps_mem, "load_capture", lambda path: loaded)
    assert run_main("--json", procfs=capture) == live
    for options in ([], ["-d", "-S"], ["-s"]):
        replay = document(run_main("--json", *options, procfs=capture).stdout)
        table = run_main(*options, procfs=capture)
        assert table.status == 0 and table.stderr == live.stderr
        assert_same_as_table(replay, table.out, options)
    only_total = run_main("-t", procfs=capture)
    assert int(only_total.stdout) == doc["total"]["ram"]


def test_live_document_for_named_processes():
    """-p on the live /proc: the processes named, with the sizes the kernel
    shows; a static helper's memory does not move between two runs."""
    with Processes() as procs:
        helper = procs.helper("forkshare", "8", "2")
        csv = helper.csv()
        for _ in range(5):
            table = run_ours("-p", csv)
            doc = document(run_ours("--json", "-p", csv).stdout)
            again = run_ours("-p", csv)
            if table == again:
                break
        assert_same_as_table(doc, table.out, [])
        assert [(program["name"], sorted(program["pids"])) for program in doc["programs"]] \
            == [("forkshare", sorted(helper.pids))]


# ----------------------------------------------------------------------------
# --capture
# ----------------------------------------------------------------------------


def _capturing_run(capture: Path, options: Sequence[str]):
    """A live capturing run, with its pid (the capture's `self`)."""
    child = subprocess.Popen([sys.executable, str(OURS), "--capture", str(capture), *options],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, PYTHONIOENCODING="utf-8",
                                      PS_MEM_TEST_SECRET=SECRET.decode()))
    stdout, stderr = child.communicate(timeout=300)
    return child.pid, Result(stdout, stderr, child.returncode)


SECRET = b"ps-mem-capture-secret-7f3a9c"  # in the environment of processes only
LIVE_OPTIONS = [[], ["-S", "-d"], ["-s", "--json"], ["--group-by", "user", "-t"],
                ["--group-by", "cgroup", "--reverse", "--top", "5", "-S"]]


@pytest.fixture(scope="module")
def live_captures(tmp_path_factory):
    """One live capture per option set (the processes started for the test
    hold a secret in their environment and memory), taken two at a time."""
    if not os.path.exists("/proc/self/smaps") or os.geteuid() != 0:
        pytest.skip("needs a Linux /proc with smaps, and root")
    where = tmp_path_factory.mktemp("live")
    procs = Processes()
    try:
        sleeper = procs.command(["env", "PS_MEM_TEST_SECRET=" + SECRET.decode(),
                                 shutil.which("sleep") or "/bin/sleep", "600"],
                                exe=os.path.realpath(shutil.which("sleep") or "/bin/sleep"))
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda item: _capturing_run(where / ("%d.tar.gz" % item[0]),
                                                             item[1]),
                                 enumerate(LIVE_OPTIONS)))
        yield [(where / ("%d.tar.gz" % index), options, pid, result)
               for index, (options, (pid, result)) in enumerate(zip(LIVE_OPTIONS, runs))], \
            sleeper.pid
    finally:
        procs.close()


@pytest.mark.parametrize("index", range(len(LIVE_OPTIONS)),
                         ids=[" ".join(options) or "default" for options in LIVE_OPTIONS])
def test_live_capture_reproduces_its_run(live_captures, index):
    captures, _ = live_captures
    capture, options, pid, capturing = captures[index]
    assert capturing.status == 0, capturing.err
    assert capturing.stdout
    replay = run_ours(*options, procfs=capture)
    assert (replay.out, replay.err, replay.status) == \
        (capturing.out, capturing.err, capturing.status)
    manifest = json.loads(member_data(capture)["ps_mem-capture.json"])
    assert manifest["self"] == pid  # the capturing process, left out of the report
    assert members(capture)["proc/self"].linkname == str(pid)
    if "--json" in options:
        shown = {p for program in json.loads(capturing.stdout)["programs"]
                 for p in program["pids"]}
        assert pid not in shown and shown


def test_live_capture_content_and_size(live_captures, capsys):
    captures, sleeper = live_captures
    capture, _, pid, _ = captures[0]
    found = assert_only_what_ps_mem_reads(capture)
    pids = {int(MEMBER.fullmatch(name).group(1)) for name in found
            if MEMBER.fullmatch(name).group(1)}
    assert sleeper in pids and pid in pids
    assert "proc/%d/smaps" % pid in found  # the accuracy probe
    # Nothing of any environment or memory: the sleep's environment holds
    # the secret, and so does the capturing process's own.
    data = member_data(capture)
    assert not any(SECRET in content for content in data.values())
    assert SECRET not in capture.read_bytes()
    size = capture.stat().st_size
    with capsys.disabled():
        print("\nlive capture: %d bytes for %d processes (%.0f bytes each), %d members"
              % (size, len(pids), size / len(pids), len(found)))
    assert size <= 2048 * len(pids) + 65536


def test_live_capture_read_with_other_options_is_consistent(live_captures, monkeypatch):
    """One live sample, many views: the totals of -d, -s, user and cgroup
    groupings (and of --top larger than the rows) are the default view's,
    and every view shows the same processes.  (Read in this process, the
    capture loaded once: reading a capture is mostly parsing the tar.)"""
    captures, _ = live_captures
    capture = captures[0][0]
    loaded = ps_mem.load_capture(str(capture))
    monkeypatch.setattr(ps_mem, "load_capture", lambda path: loaded)
    totals = {}
    pid_sets = {}
    for options in ([], ["-d"], ["-s"], ["-s", "-d"], ["--group-by", "user"],
                    ["--group-by", "cgroup"], ["--top", "100000"]):
        doc = json.loads(run_main("--json", *options, procfs=capture).stdout)
        totals[" ".join(options)] = doc["total"]["ram"]
        pid_sets[" ".join(options)] = sorted(pid for program in doc["programs"]
                                             for pid in program["pids"])
        only_total = run_main("-t", *options, procfs=capture)
        assert int(only_total.stdout) == doc["total"]["ram"], options
        if not options:
            assert doc["programs"] and doc["total"]["ram"] > 0
    assert len(set(totals.values())) == 1, totals
    assert len({tuple(pids) for pids in pid_sets.values()}) == 1


# ----------------------------------------------------------------------------
# The command line: watches, pipes, signals, users
# ----------------------------------------------------------------------------


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


def test_stdout_closed_at_once():
    need_reference()
    ours = into_closed_pipe(command("ours", None, []))
    assert ours == into_closed_pipe(command("reference", None, [])) == Result(b"", b"", 1)


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
    # Whole samples only, each of one row and a footer.
    rest = out.decode()[len(HEADER):]
    samples = 0
    while rest:
        rows_, total_ram, total_swap, rest = parse_rows(rest)
        assert len(rows_) == 1 and rows_[0].swap is None, out
        assert total_ram is not None and total_swap is None, out
        samples += 1
    assert 1 <= samples <= 3
    assert reference_out.startswith(HEADER.encode())


def test_sigterm_during_a_live_watch(procs):
    need_reference()
    sleeper = procs.sleep()

    def run(program: str) -> Result:
        started = Started(command(program, None, ["-w", "1", "-p", str(sleeper.pid)]))
        started.wait_for(lambda out: out.count(b"=" * 33) >= 1)
        time.sleep(0.3)
        started.popen.send_signal(signal.SIGTERM)
        return started.finish()

    ours, reference = run("ours"), run("reference")
    for outcome in (ours, reference):
        assert outcome.status == -signal.SIGTERM and outcome.stderr == b""
        assert outcome.stdout.startswith(HEADER.encode()) and b"\tsleep\n" in outcome.stdout


def test_non_root_without_pids_is_refused():
    need_reference()
    result = run_as_nobody(str(OURS), reads=[OURS, REFERENCE])
    assert result == (b"", b"Sorry, root permission required, or specify pids with -p\n", 1)
    assert run_as_nobody(str(REFERENCE)) == result


def test_non_root_reads_a_fixture_tree():
    tree = REPO / "tests" / "trees_captured" / "sleeps_shell_python"
    if not tree.is_dir():
        pytest.skip("no captured tree %s" % tree)
    result = run_as_nobody(str(OURS), "--procfs", str(tree), reads=[OURS, tree, tree / "self"])
    assert result.status == 0 and result.stderr == b""
    assert result == run_ours(procfs=tree)
    need_reference()
    assert result == run_reference(procfs=tree)
    assert "python3.11" in result.out
