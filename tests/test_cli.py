"""Stage: the command line.  Options parsed into Options, usage errors,
checks made before any output, what a plain run loads, and what main()
does with stdout, signals and exit statuses.

  * 3.14's options: help, version, usage errors and abbreviations, run by
    ps_mem.py and ps_mem 3.14 with the same arguments, stdout, stderr and
    exit status compared whole.
  * The new options' usage errors: one line that says what is wrong.
  * Signals and closed pipes, on fixture trees against 3.14: see the
    section's own comment.  On the live /proc: test_live.py.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import (HEADER, OURS, REPO, Result, Started, child_env, command,
                           into_closed_pipe, needs_reference, ps_mem, run_main, run_ours,
                           run_reference)
from tests.procfs_builder import ProcTree, program_maps
from tests.realproc import Unavailable, build

@pytest.fixture(scope="module")
def empty_tree(tmp_path_factory):
    """A proc root with a kernel release and no processes."""
    root = tmp_path_factory.mktemp("proc")
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("6.1.0-13-amd64\n")
    return root


def assert_same_as_3_14(args, tree):
    ours = run_ours(*args, procfs=tree)
    reference = run_reference(*args, procfs=tree)
    assert (ours.out, ours.err, ours.status) == (reference.out, reference.err, reference.status)
    return ours


@pytest.mark.parametrize("args, status", [
    (["-x"], 2),
    (["--bogus"], 2),
    (["extra"], 2),
    (["-p"], 2),
    (["-w"], 2),
    (["-w", "x"], 2),
    (["-wx"], 2),
    (["-w", "0"], 2),
    (["-w", "-3"], 2),
    (["-w", "1.5"], 2),
    (["-p", "1,,2"], 2),
    (["-p", "a"], 2),
    (["-p1,x"], 2),
    (["-p", "1,", "-w", "0"], 2),
    (["--s"], 2),  # ambiguous in 3.14: --split-args, --swap
    (["--t", "--x"], 2),
])
def test_usage_matches_reference(args, status, empty_tree):
    result = assert_same_as_3_14(args, empty_tree)
    assert result.status == status


@pytest.mark.parametrize("args", [["-h"], ["--help"], ["--he"]])
def test_help_is_3_14s_then_every_new_option(args, empty_tree):
    """-h prints 3.14's help whole, in its words (its usage line too, which
    usage errors print), then a section for each kind of option added
    since, so that every option is documented."""
    ours = run_ours(*args, procfs=empty_tree)
    reference = run_reference(*args, procfs=empty_tree)
    assert (ours.status, ours.err, reference.status) == (0, "", 0)
    assert ours.out.startswith(reference.out), ours.out
    added = ours.out[len(reference.out):]
    assert added.startswith("\nwhat to show (since 3.14):\n"), added
    for action in ps_mem.build_parser()._actions:
        for option in action.option_strings:
            entry = re.compile(r"^  (?:\S+, )*%s\b" % re.escape(option), re.M)
            assert bool(entry.search(reference.out)) != bool(entry.search(added)), option


@pytest.mark.parametrize("args", [["--version"], ["--v"], ["--vers"]])
def test_version_is_4_0(args):
    """ps_mem carries its own version: it is not 3.14."""
    result = run_ours(*args)
    assert (result.out, result.err, result.status) == ("4.0\n", "", 0)


@pytest.mark.parametrize("args", [
    [], ["-t"], ["-st"], ["--tot"], ["--t"], ["--to"], ["--d"], ["--sp"], ["--sw", "-t"],
    ["-p", ""], ["-p", "+1"], ["-p", " 1"], ["-p1"], ["-p", "1_0"], ["-w1", "-p", "99"],
    ["-dSst"], ["--swap", "--total", "--split-args", "--discriminate-by-pid"],
    ["-p", "5,5"], ["--", ],
])
def test_accepted_spellings_match_reference(args, empty_tree):
    """Abbreviations and attached values mean what they meant in 3.14."""
    assert_same_as_3_14(args, empty_tree)


def test_missing_osrelease(tmp_path):
    result = assert_same_as_3_14([], tmp_path)
    assert result.err == ("Couldn't access %s/\n"
                          "Only GNU/Linux and FreeBSD (with linprocfs) are supported\n" % tmp_path)
    assert result.status == 2


def test_usage_error_before_proc_check(tmp_path):
    result = assert_same_as_3_14(["-w", "0"], tmp_path)
    assert result.err.endswith("ps_mem: error: Seconds must be positive! (0)\n")


def test_show_cmdline_is_split_args(empty_tree):
    assert ps_mem.parse_options(["--show-cmdline"]) == ps_mem.parse_options(["-s"])
    assert ps_mem.parse_options(["--show"]).split_args


def test_procfs_option_parsed():
    assert ps_mem.parse_options(["--procfs", "/host/proc", "-t"]).procfs == "/host/proc"
    assert ps_mem.parse_options(["--procfs=/x"]).procfs == "/x"
    assert ps_mem.parse_options([]).procfs is None


def test_legacy_abbreviations_beat_new_options():
    # --sh can only be --show-cmdline; --sw stays --swap, --sp --split-args.
    assert ps_mem.parse_options(["--sh"]).split_args
    # (--proc: --pro is --procfs or --prometheus.)
    assert ps_mem.parse_options(["--sw", "--proc", "x"]) == ps_mem.Options(
        show_swap=True, procfs="x")


def test_main_returns_status_in_process(empty_tree, capsys):
    # No `self` with smaps to probe: totals are not trusted, so -t fails.
    assert ps_mem.main(["--procfs", str(empty_tree), "-t"]) == 1
    assert capsys.readouterr() == (
        "", "Error: Shared memory is slightly over-estimated by this system\n"
            "for each program, so totals are not reported.\n")
    assert ps_mem.main(["-w", "0"]) == 2
    assert capsys.readouterr().err.endswith("Seconds must be positive! (0)\n")


def test_watch_lets_each_sample_go_before_the_next(proc_trees, monkeypatch, capsys):
    """A watch holds one sample at a time: the last one is freed before
    the next is read (kept, it doubled the memory at a watch's peak)."""
    released = []
    taken = []

    class Samples(list):
        def __del__(self):
            released.append(self.number)

    original = ps_mem.collect

    def collect(*args, **kwargs):
        assert released == list(range(len(taken)))  # every earlier sample is gone
        scan = original(*args, **kwargs)
        samples = Samples(scan.samples)
        samples.number = len(taken)
        taken.append(None)
        if len(taken) == 3:
            raise KeyboardInterrupt  # how a watch ends
        return scan._replace(samples=samples)

    monkeypatch.setattr(ps_mem, "collect", collect)
    monkeypatch.setattr(ps_mem.time, "sleep", lambda seconds: None)
    root = str(proc_trees.get("rollup_6_1").root)
    assert ps_mem.main(["--procfs", root, "-w", "1"]) == 0
    assert len(taken) == 3 and released[:2] == [0, 1]
    assert capsys.readouterr().out.count("=\n") == 2


# ----------------------------------------------------------------------------
# Start-up: what a plain `ps_mem` loads
# ----------------------------------------------------------------------------


def test_no_arguments_are_the_parsers_defaults():
    # parse_options([]) answers without building the parser; these are the
    # defaults the parser gives when every new option is spelled out.
    spelled = ["--sort", "ram", "--group-by", "program"]
    assert ps_mem.parse_options([]) == ps_mem.parse_options(spelled) == ps_mem.Options()


PLAIN_WORDS = ["-s", "-t", "-d", "-S", "-p", "-w", "1", "1,2", "07,3", "0", "-1", "1,", ",",
               "+3", " 4", "\u0661", "x", "-x", "-ts", "-p1", "--total", "--", "-h", ""]
# The long options plain_options() reads too, their values, and near misses.
LONG_WORDS = ["--json", "--system", "--prometheus", "--delta", "--no-header", "--reverse",
              "--show-cmdline", "--group-by", "--sort", "--units", "--top", "--procfs",
              "--capture", "--output", "--diff", "app", "mapping", "user", "cgroup", "pid",
              "cmdline", "program", "name", "count", "KiB", "B", "MiB", "3", "0", "/tmp/x",
              "out.prom", "--group-by=app", "--units=GiB", "--sort=name", "--top=2", "--json=1",
              "--gro", "--procfs=", "--output=/tmp/x", "-w", "2", "-p", "5", "-t", "-s", "-d"]


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PLAIN_WORDS), max_size=6))
def test_plain_arguments_read_as_argparse_reads_them(argv):
    """plain_options() answers only where argparse would give the same
    options (and no error)."""
    plain = ps_mem.plain_options(argv)
    if plain is not None:
        assert plain == ps_mem.parse_options_with_argparse(argv)


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(LONG_WORDS), max_size=7))
def test_long_options_read_as_argparse_reads_them(argv):
    """The same for the long options added since 3.14, whose checks the two
    readings share (options_from()): where plain_options() answers,
    argparse gives the same options and no error."""
    plain = ps_mem.plain_options(argv)
    if plain is not None:
        assert plain == ps_mem.parse_options_with_argparse(argv)


@pytest.mark.parametrize("argv", [
    [], ["-t"], ["-S", "-d"], ["-s", "-t", "-d", "-S"], ["-p", "1,2,3"], ["-w", "5"],
    ["-t", "-p", "4", "-p", "5"], ["-w", "08", "-S"],
    ["--json"], ["--system"], ["--group-by", "app"], ["--group-by=mapping"], ["--prometheus"],
    ["--units", "KiB", "--no-header"], ["--sort", "private", "--reverse", "--top", "5"],
    ["--procfs", "/host/proc", "-t"], ["--diff", "before.tar.gz"], ["-w", "5", "--delta"],
    ["--prometheus", "--output", "/tmp/ps_mem.prom"], ["--capture", "c.tar.gz"],
])
def test_plain_arguments_answered_without_argparse(argv):
    plain = ps_mem.plain_options(argv)
    assert plain is not None and plain == ps_mem.parse_options_with_argparse(argv)


@pytest.mark.parametrize("argv", [
    ["-p"], ["-p", ""], ["-p", "1,"], ["-p", "+1"], ["-p", "-1"], ["-w", "0"], ["-w", "x"],
    ["-ts"], ["-p1"], ["--total"], ["-h"], ["--"], ["x"],
    ["--jso"], ["--json=1"], ["--group-by"], ["--group-by", "bogus"], ["--group-by", "-t"],
    ["--top", "0"], ["--top", "x"], ["--procfs", ""], ["--prometheus", "--json"],
    ["--system", "-p", "1"], ["--delta"], ["--diff", "b", "-w", "1"],
])
def test_other_arguments_left_to_argparse(argv):
    assert ps_mem.plain_options(argv) is None


def test_plain_run_loads_neither_argparse_nor_typing(tmp_path):
    """typing, argparse, collections and re are most of what importing
    ps_mem would cost (memory and time); a run without arguments on a
    kernel with smaps_rollup needs none of them, nor signal."""
    program = (
        "import sys; sys.path.insert(0, %r); sys.argv = ['ps_mem']\n"
        "import ps_mem\n"
        "ps_mem.parse_options([])\n"
        "ps_mem.parse_options(['-t', '-S', '-d', '-p', '1,2', '-w', '3'])\n"
        "ps_mem.parse_options(['--group-by', 'app', '--units=MiB', '--reverse', '--top', '3'])\n"
        "ps_mem.parse_options(['--prometheus', '--output', '/tmp/x.prom', '--system'])\n"
        "ps_mem.parse_smaps(open(%r, 'rb').read(), {})\n"
        "print(sorted(name for name in ('argparse', 'typing', 'signal', 'ctypes', 're',"
        " 'collections')"
        " if name in sys.modules))\n"
        % (str(REPO), str(REPO / "tests" / "data" / "sleep.smaps_rollup")))
    result = subprocess.run([sys.executable, "-S", "-c", program], env=child_env(),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"[]\n"


def test_unknown_pid_with_watch_ends_at_once(proc_trees):
    result = run_ours("-w", "1", "-p", "99999", procfs=proc_trees.get("rollup_6_1").root,
                      timeout=5)
    assert result.out.endswith("\tProgram\n\nProcess does not exist anymore.\n")
    assert result.status == 0


# ----------------------------------------------------------------------------
# Usage errors of the options added since 3.14
# ----------------------------------------------------------------------------


def assert_usage_error(result, message: str) -> None:
    assert result.status == 2 and result.stdout == b""
    lines = result.err.splitlines()
    assert lines[0].startswith("usage: ps_mem")
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]], result.err  # one line says what is wrong
    assert lines[-1].startswith("ps_mem: error: " + message), lines[-1]


@pytest.mark.parametrize("value, message", [
    ("0", "argument --top: must be a positive number of rows (0)"),
    ("-1", "argument --top: must be a positive number of rows (-1)"),
    ("x", "argument --top: invalid int value: 'x'"),
    ("2.5", "argument --top: invalid int value: '2.5'"),
])
def test_bad_top(empty_tree, value, message):
    assert_usage_error(run_main("--top", value, procfs=empty_tree), message)


def test_top_needs_a_value(empty_tree):
    assert_usage_error(run_main("--top", procfs=empty_tree),
                       "argument --top: expected one argument")


@pytest.mark.parametrize("key", ["size", "RAM", "", "names"])
def test_bad_sort_key(empty_tree, key):
    result = run_main("--sort", key, procfs=empty_tree)
    assert_usage_error(result, "argument --sort: invalid choice: '%s'" % key)
    listed = result.err.splitlines()[-1].split("(choose from", 1)[1]
    assert all(name in listed for name in ("ram", "private", "shared", "swap", "count", "name")), \
        listed


def test_usage_error_as_a_command(empty_tree):
    """The same through the command line, before any output."""
    result = run_ours("--top", "0", procfs=empty_tree)
    assert_usage_error(result, "argument --top: must be a positive number of rows (0)")
    result = run_ours("--sort", "size", "--json", procfs=empty_tree)
    assert_usage_error(result, "argument --sort: invalid choice: 'size'")


def test_user_with_s_is_a_usage_error(empty_tree):
    result = run_main("--group-by", "user", "-s", procfs=empty_tree)
    assert result.status == 2 and result.stdout == b""
    assert result.err.splitlines()[-1] == \
        "ps_mem: error: --group-by user cannot be combined with -s"


# ----------------------------------------------------------------------------
# Signals and closed pipes
# ----------------------------------------------------------------------------


# Each case runs ps_mem.py and ps_mem 3.14 on the same fixture tree
# (--procfs) and compares them:
#   * the reader goes away (`ps_mem | head -1`, or stdout closed from the
#     start): exit 1, nothing on stderr, one-shot or -w;
#   * Ctrl-C (SIGINT) in a one-shot run: killed by SIGINT (status -2 as
#     Python reports it), nothing on stderr;
#   * Ctrl-C during -w: the watch ends normally, exit 0, with the warnings;
#   * SIGTERM during -w: killed by SIGTERM (-15); 3.14 has no handler.
# To interrupt a run in the middle of a scan, without timing, each program
# runs with tests/helpers/blockread.c preloaded: its read() of a chosen file
# of the tree says so (a file appears) and waits for a signal, which the
# test then sends.

TABLE_HEADER = HEADER.encode()
FIRST_LINE = HEADER.split("\n")[0].encode() + b"\n"
# What a 2.6.18 kernel's smaps (no Pss) makes both programs say at the end.
WARNING = (b"Warning: Shared memory is slightly over-estimated by this system\n"
           b"for each program, so totals are not reported.\n")
BLOCKER = 7000  # the pid whose files block their reader


def small_tree(root: Path, kernel: str = "2.6.18") -> ProcTree:
    t = ProcTree(root, kernel)
    t.add(1, "init", "/sbin/init", ppid=0, maps=program_maps("/sbin/init", heap_kib=700))
    t.add(688, "sshd", "/usr/sbin/sshd", maps=program_maps("/usr/sbin/sshd", heap_kib=1300))
    t.add(1203, "bash", "/usr/bin/bash", ppid=688,
          maps=program_maps("/usr/bin/bash", heap_kib=2400))
    return t


@pytest.fixture(scope="module")
def quiet_tree(tmp_path_factory) -> Path:
    return small_tree(tmp_path_factory.mktemp("signals") / "proc").root


@pytest.fixture
def blocking_tree(tmp_path) -> Path:
    """A tree with BLOCKER, whose statm and cmdline block their reader (see
    signalled_mid_scan(): 3.14 reads cmdline first, ours too on a tree)."""
    t = small_tree(tmp_path / "proc")
    t.add(BLOCKER, "rsync", "/usr/bin/rsync", maps=program_maps("/usr/bin/rsync", heap_kib=900))
    return t.root


def blockread() -> Path:
    try:
        return build("blockread", library=True)
    except Unavailable as unavailable:
        pytest.skip(str(unavailable))


def signalled_mid_scan(tree: Path, args: List[str], sig: int,
                       blocking: Sequence[Path] = ()) -> List[Result]:
    """Both programs on TREE with ARGS, sent SIG while they wait in a read()
    of one of the files BLOCKING (by default BLOCKER's statm and cmdline)."""
    blocking = blocking or [tree / str(BLOCKER) / name for name in ("statm", "cmdline")]
    library = blockread()

    def run(program: str) -> Result:
        with tempfile.TemporaryDirectory() as scratch:
            ready = Path(scratch) / "ready"
            started = Started(command(program, tree, args), env={
                "LD_PRELOAD": str(library), "BLOCKREAD_READY": str(ready),
                "BLOCKREAD_PATHS": ":".join(os.path.realpath(path) for path in blocking)})
            deadline = time.monotonic() + 60
            while not ready.exists():
                if started.popen.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("never read %s: %r" % (blocking, started.finish()))
                time.sleep(0.01)
            started.popen.send_signal(sig)
            return started.finish()

    return [run("ours"), run("reference")]


# ----------------------------------------------------------------------------
# Ctrl-C and SIGTERM
# ----------------------------------------------------------------------------


@needs_reference
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, -signal.SIGINT),
                                         (signal.SIGTERM, -signal.SIGTERM)],
                         ids=["SIGINT", "SIGTERM"])
def test_one_shot_interrupted_mid_scan_dies_by_the_signal(blocking_tree, sig, status):
    ours, reference = signalled_mid_scan(blocking_tree, [], sig)
    assert ours == reference
    assert ours == Result(TABLE_HEADER, b"", status)


@needs_reference
def test_ctrl_c_during_a_watch_scan_ends_the_watch(blocking_tree):
    """Mid-scan, before any sample: exit 0, the header, the warnings."""
    ours, reference = signalled_mid_scan(blocking_tree, ["-w", "1"], signal.SIGINT)
    assert ours == reference == Result(TABLE_HEADER, WARNING, 0)


def _tree_with_a_blocking_file(destination: Path) -> Path:
    """A copy of a captured tree, and the cmdline of one of its processes
    (the first listed after `self`): the file to block the scan midway."""
    source = REPO / "tests" / "trees_captured" / "sleeps_shell_python"
    if not source.is_dir():
        pytest.skip("no captured tree %s" % source)
    shutil.copytree(source, destination, symlinks=True)
    self_pid = os.readlink(destination / "self")
    pid = min(entry for entry in os.listdir(destination) if entry.isdigit() and entry != self_pid)
    return destination / pid / "cmdline"


@needs_reference
@pytest.mark.parametrize("watch", [False, True], ids=["one-shot", "watch"])
def test_ctrl_c_midway_through_a_scan(tmp_path, watch):
    """Ctrl-C while ps_mem reads a captured tree (a 6.x kernel's: no
    warnings): a one-shot run dies by SIGINT with no traceback (the header
    already written); a watch ends normally, exit 0; as 3.14 does."""
    options = ["-w", "1"] if watch else []
    tree = tmp_path / "proc"
    blocking = _tree_with_a_blocking_file(tree)
    ours, reference = signalled_mid_scan(tree, options, signal.SIGINT, [blocking])
    assert ours == reference
    assert ours == Result(TABLE_HEADER, b"", 0 if watch else -signal.SIGINT)


@needs_reference
@pytest.mark.parametrize("args", [[], ["-t"], ["-d", "-S"]], ids=["table", "-t", "-d-S"])
def test_ctrl_c_while_a_watch_sleeps(quiet_tree, args):
    """After the first sample: exit 0, that sample, then the warnings
    (-t's say "Error:" and exit 1 without Pss, as 3.14)."""
    def run(program: str) -> Result:
        started = Started(command(program, quiet_tree, ["-w", "5", *args]))
        # The first sample is whole once bash, the largest, is printed (-t
        # prints nothing on this kernel: wait for the process to sleep).
        if "-t" in args:
            time.sleep(1.5)
        else:
            started.wait_for(lambda out: b"\tbash" in out)
        started.popen.send_signal(signal.SIGINT)
        return started.finish()

    ours, reference = run("ours"), run("reference")
    assert ours == reference
    assert b"Error:" in ours.stderr if "-t" in args else ours.stderr.startswith(b"Warning:")
    assert ours.status == (1 if "-t" in args else 0)


@needs_reference
def test_sigterm_while_a_watch_sleeps(quiet_tree):
    def run(program: str) -> Result:
        started = Started(command(program, quiet_tree, ["-w", "5"]))
        started.wait_for(lambda out: b"\tbash" in out)
        started.popen.send_signal(signal.SIGTERM)
        return started.finish()

    ours, reference = run("ours"), run("reference")
    assert ours == reference
    assert ours.status == -signal.SIGTERM and ours.stderr == b""
    assert ours.stdout.startswith(TABLE_HEADER) and ours.stdout.endswith(b"\tbash\n")


@needs_reference
def test_sigterm_during_a_watch_scan(blocking_tree):
    ours, reference = signalled_mid_scan(blocking_tree, ["-w", "1"], signal.SIGTERM)
    assert ours == reference == Result(TABLE_HEADER, b"", -signal.SIGTERM)


# ----------------------------------------------------------------------------
# The reader goes away
# ----------------------------------------------------------------------------


@needs_reference
@pytest.mark.parametrize("args", [[], ["-t"], ["-w", "1"], ["-w", "1", "-d", "-S"]],
                         ids=["one-shot", "-t", "-w", "-w-d-S"])
def test_stdout_closed_from_the_start(quiet_tree, args):
    ours, reference = (into_closed_pipe(command(program, quiet_tree, args))
                       for program in ("ours", "reference"))
    if "-t" in args and "-w" not in args:
        # 3.14's -t never writes (no total without Pss), so never sees the pipe.
        assert ours == reference and ours.status == 1 and b"Error:" in ours.stderr
        return
    assert ours == reference == Result(b"", b"", 1)


@pytest.fixture(scope="module")
def modern_tree(tmp_path_factory) -> Path:
    """small_tree() on a kernel with Pss: every option prints, and no warning."""
    return small_tree(tmp_path_factory.mktemp("modern") / "proc", "6.1").root


def _with_stdout(argv: List[str], stdout=None, close_stdout: bool = False,
                 cwd=None) -> Result:
    """ARGV with stdout the file STDOUT, or closed before Python starts (so
    that sys.stdout is None)."""
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                          timeout=60, env=child_env(), cwd=cwd,
                          preexec_fn=(lambda: os.close(1)) if close_stdout else None)
    return Result(b"", done.stderr, done.returncode)


WRITE_ERROR_ARGS = [[], ["-t"], ["--json"], ["--prometheus"], ["-s", "-w", "1"], ["--help"],
                    ["--version"]]


@pytest.mark.parametrize("args", WRITE_ERROR_ARGS, ids=" ".join)
def test_a_full_disk_is_a_write_error(modern_tree, args):
    """stdout that takes nothing (ENOSPC): one line as coreutils says it
    (ls >/dev/full), exit 2 as for --output; 3.14 gave a traceback.  --help and --version
    too, which argparse alone would let fail in silence."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "wb") as full:
        result = _with_stdout(command("ours", modern_tree, args), stdout=full)
    assert result == Result(b"", b"ps_mem: write error: No space left on device\n", 2)


@pytest.mark.parametrize("args", WRITE_ERROR_ARGS, ids=" ".join)
def test_a_closed_stdout_is_a_write_error(modern_tree, args):
    """ps_mem >&-: Python starts with no sys.stdout; as ls >&- says it."""
    result = _with_stdout(command("ours", modern_tree, args), close_stdout=True)
    assert result == Result(b"", b"ps_mem: write error: Bad file descriptor\n", 2)


def test_output_needs_no_stdout(modern_tree, tmp_path):
    """--output writes its file whether or not stdout is open."""
    out = tmp_path / "ps_mem.txt"
    result = _with_stdout(command("ours", modern_tree, ["--output", str(out)]), close_stdout=True)
    assert result == Result(b"", b"", 0)
    assert out.read_bytes() == run_ours(procfs=modern_tree).stdout


def test_working_directory_gone(modern_tree, tmp_path):
    """Run from a directory since removed: absolute names work, relative
    ones fail as any open() of them would, and neither is a traceback
    (--output's check against --procfs reads the working directory)."""
    gone = tmp_path / "gone"
    tree = str(modern_tree)

    def run(*args: str) -> Result:
        argv = [sys.executable, str(OURS), *args]
        gone.mkdir()
        def leave_it() -> None:
            os.chdir(gone)
            gone.rmdir()

        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=child_env(), preexec_fn=leave_it)
        stdout, stderr = child.communicate(timeout=60)
        return Result(stdout, stderr, child.returncode)

    expected = run_ours(procfs=modern_tree)
    assert expected.status == 0 and expected.stderr == b""
    assert run("--procfs", tree) == expected
    assert run("--procfs", tree, "--output", str(tmp_path / "out")) == Result(b"", b"", 0)
    assert (tmp_path / "out").read_bytes() == expected.stdout
    assert run("--procfs", tree, "--output", "out") == Result(
        b"", b"ps_mem: cannot write out: No such file or directory\n", 2)
    assert run("--procfs", "p", "--output", "out") == Result(
        b"", b"Couldn't access p/\nOnly GNU/Linux and FreeBSD (with linprocfs) are supported\n", 2)


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    """Enough output with -s (about 190 KiB) to fill a pipe several times."""
    t = ProcTree(tmp_path_factory.mktemp("big") / "proc", "6.1")
    for number in range(64):
        exe = "/usr/bin/worker%d" % number
        t.add(2000 + number, "worker%d" % number, exe, cmdline=[exe, "--job=" + "x" * 3000],
              maps=program_maps(exe, heap_kib=100 + number))
    return t.root


@needs_reference
@pytest.mark.parametrize("args", [["-s"], ["-s", "-w", "1"]], ids=["one-shot", "-w"])
def test_head_takes_one_line(big_tree, args):
    """`ps_mem -s | head -1` with more output than a pipe holds: ps_mem
    meets the closed pipe while writing: exit 1, nothing on stderr."""
    head = shutil.which("head")
    if head is None:
        pytest.skip("no head")

    def run(program: str) -> Result:
        writer = subprocess.Popen(command(program, big_tree, args), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=child_env())
        reader = subprocess.run([head, "-1"], stdin=writer.stdout, stdout=subprocess.PIPE,
                                timeout=60)
        writer.stdout.close()
        try:
            stderr = writer.communicate(timeout=60)[1]
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        return Result(reader.stdout, stderr, writer.returncode)

    ours, reference = run("ours"), run("reference")
    assert ours == Result(FIRST_LINE, b"", 1)
    assert reference.status == 1 and b"Traceback" not in reference.stderr


class ShortWrites:
    """A buffered stdout that takes at most TAKES bytes a write, and raises
    ERROR once it has taken LIMIT: CPython's own takes part of a write and
    raises nothing when a pipe's reader leaves mid-write, which made
    `ps_mem -s | head -1` exit 0 about one time in ten."""

    def __init__(self, takes: int, limit: int = 1 << 30, error: OSError = None):
        self.takes, self.limit, self.error = takes, limit, error
        self.taken = bytearray()
        self.buffer = self
        self.encoding = "utf-8"

    def write(self, data) -> int:
        if len(self.taken) >= self.limit:
            raise self.error
        piece = bytes(data[:min(self.takes, self.limit - len(self.taken))])
        self.taken += piece
        return len(piece)

    def flush(self) -> None:
        pass


def test_a_write_taken_in_pieces_is_written_whole(modern_tree, monkeypatch):
    whole = run_ours("-s", procfs=modern_tree)
    assert whole.status == 0 and len(whole.stdout) > 200
    stdout = ShortWrites(takes=10)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert ps_mem.main(["--procfs", str(modern_tree), "-s"]) == 0
    assert bytes(stdout.taken) == whole.stdout


@pytest.mark.parametrize("error, status", [
    (BrokenPipeError(32, "Broken pipe"), 1),
    (OSError(28, "No space left on device"), 2),
], ids=["reader gone", "disk full"])
def test_the_rest_of_a_write_taken_in_part_meets_the_error(modern_tree, monkeypatch, capsys,
                                                          error, status):
    stdout = ShortWrites(takes=1 << 20, limit=100, error=error)
    monkeypatch.setattr(sys, "stdout", stdout)
    assert ps_mem.main(["--procfs", str(modern_tree), "-s"]) == status
    assert len(stdout.taken) == 100
    expected = "" if status == 1 else "ps_mem: write error: No space left on device\n"
    assert capsys.readouterr().err == expected


@needs_reference
def test_reader_leaves_while_a_watch_writes(quiet_tree):
    """-w 1: the reader takes the first line and closes; the next write
    (at the latest the next sample's) fails: exit 1, nothing on stderr."""
    def run(program: str) -> Result:
        child = subprocess.Popen(command(program, quiet_tree, ["-w", "1"]),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=child_env())
        try:
            line = child.stdout.readline()
            child.stdout.close()
            status = child.wait(timeout=30)
            return Result(line, child.stderr.read(), status)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stderr.close()

    ours, reference = run("ours"), run("reference")
    assert ours == reference == Result(FIRST_LINE, b"", 1)


def test_a_closed_stderr_changes_no_status(modern_tree, tmp_path):
    """ps_mem 2>&-: Python starts with no sys.stderr; the statuses are as
    with one (every run exited 1, from the AttributeError nobody saw)."""
    not_a_capture = tmp_path / "x.tar.gz"
    not_a_capture.write_bytes(b"not a capture\n")
    for args, status in ((["--procfs", str(modern_tree)], 0),
                         (["--procfs", str(not_a_capture)], 2), (["-x"], 2)):
        argv = [sys.executable, str(OURS), *args]
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              timeout=60, env=child_env(), preexec_fn=lambda: os.close(2))
        assert done.returncode == status, args


@pytest.mark.skipif(os.geteuid() != 0, reason="needs another user to run ps_mem as")
def test_a_proc_root_this_user_may_not_list(modern_tree):
    """A tree (or a root-squashed NFS directory) whose files can be read
    but whose list cannot: one line, not os.listdir()'s traceback."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    # Where the user nobody may go: pytest's tmp_path is root's alone.
    with tempfile.TemporaryDirectory(dir="/tmp") as place:
        os.chmod(place, 0o755)
        tree = Path(place) / "proc"
        shutil.copytree(modern_tree, tree, symlinks=True)
        tree.chmod(0o711)
        done = subprocess.run([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                               sys.executable, str(OURS), "--procfs", str(tree)],
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                              env=child_env())
    assert done.stderr == b"ps_mem: cannot read %s: Permission denied\n" % bytes(tree)
    assert done.returncode == 2


def test_a_choice_not_utf8_is_quoted_as_bytes():
    done = run_main("--sort", "\udcff\x1b")
    assert done.status == 2
    assert done.err.splitlines()[-1] == (
        "ps_mem: error: argument --sort: invalid choice: '\\xff\\x1b' (choose from 'count',"
        " 'name', 'private', 'ram', 'shared', 'swap')")
