"""The command line as 3.14 has it: help, version, usage errors, checks
made before any output.  Each case runs ps_mem.py and ps_mem 3.14 with the
same arguments and compares stdout, stderr and exit status whole."""

import os
import re
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import run_ours, run_reference

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ps_mem  # noqa: E402


@pytest.fixture(scope="module")
def empty_tree(tmp_path_factory):
    """A proc root with a kernel release and no processes."""
    root = tmp_path_factory.mktemp("proc")
    (root / "sys" / "kernel").mkdir(parents=True)
    (root / "sys" / "kernel" / "osrelease").write_text("6.1.0-13-amd64\n")
    return root


def assert_same(args, tree):
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
    result = assert_same(args, empty_tree)
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
    assert_same(args, empty_tree)


def test_missing_osrelease(tmp_path):
    result = assert_same([], tmp_path)
    assert result.err == ("Couldn't access %s/\n"
                          "Only GNU/Linux and FreeBSD (with linprocfs) are supported\n" % tmp_path)
    assert result.status == 2


def test_usage_error_before_proc_check(tmp_path):
    result = assert_same(["-w", "0"], tmp_path)
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


@settings(max_examples=600, deadline=None)
@given(st.lists(st.sampled_from(PLAIN_WORDS), max_size=6))
def test_plain_arguments_read_as_argparse_reads_them(argv):
    """plain_options() answers only where argparse would give the same
    options (and no error)."""
    plain = ps_mem.plain_options(argv)
    if plain is not None:
        assert plain == ps_mem.parse_options_with_argparse(argv)


@pytest.mark.parametrize("argv", [
    [], ["-t"], ["-S", "-d"], ["-s", "-t", "-d", "-S"], ["-p", "1,2,3"], ["-w", "5"],
    ["-t", "-p", "4", "-p", "5"], ["-w", "08", "-S"],
])
def test_plain_arguments_answered_without_argparse(argv):
    assert ps_mem.plain_options(argv) == ps_mem.parse_options_with_argparse(argv)


@pytest.mark.parametrize("argv", [
    ["-p"], ["-p", ""], ["-p", "1,"], ["-p", "+1"], ["-p", "-1"], ["-w", "0"], ["-w", "x"],
    ["-ts"], ["-p1"], ["--total"], ["--json"], ["-h"], ["--"], ["x"],
])
def test_other_arguments_left_to_argparse(argv):
    assert ps_mem.plain_options(argv) is None


def test_plain_run_loads_neither_argparse_nor_typing(tmp_path):
    """typing, argparse, collections and re are most of what importing
    ps_mem would cost (memory and time); a run without arguments on a
    kernel with smaps_rollup needs none of them, nor signal."""
    import subprocess

    from tests.harness import REPO, child_env

    program = (
        "import sys; sys.path.insert(0, %r); sys.argv = ['ps_mem']\n"
        "import ps_mem\n"
        "ps_mem.parse_options([])\n"
        "ps_mem.parse_options(['-t', '-S', '-d', '-p', '1,2', '-w', '3'])\n"
        "ps_mem.parse_smaps(open(%r, 'rb').read(), {})\n"
        "print(sorted(name for name in ('argparse', 'typing', 'signal', 'ctypes', 're',"
        " 'collections')"
        " if name in sys.modules))\n"
        % (str(REPO), str(REPO / "tests" / "data" / "sleep.smaps_rollup")))
    result = subprocess.run([sys.executable, "-S", "-c", program], env=child_env(),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"[]\n"
