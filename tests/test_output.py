"""Stage: output.  The table's formatters (human, header, rows, footer, -t's
total, the warnings), and names as they are printed.

Hostile names: no control character that came from /proc reaches stdout.
3.14 prints a process's name, executable file name and command line raw,
so any user can make the root running ps_mem send its terminal escape
sequences: prctl(PR_SET_NAME, "\\x1b[31mEVIL\\x07"), or an executable whose
file name holds ESC and a newline.  ps_mem.py shows each C0 control (tab
and newline included), DEL and each C1 control (U+0080 to U+009F) as "?",
as ps does, in every view; everything else prints as 3.14 prints it,
non-ASCII UTF-8 included.  On fixture trees: every control character in
turn, in Name, in an executable's file name and in an argument, beside
ordinary non-ASCII names; expected output is 3.14's with each control
character of each name replaced by "?".  The live processes so named are
test_live.py's.

The other views: --json in test_output_json.py; whole outputs against 3.14
and the golden files in test_output_differential.py.
"""

import json
import unicodedata
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import (FORMAT_CHARACTERS, RAW_CONTROL, assert_no_control_bytes, need_reference,
                           printable, ps_mem, row_names, run_ours, run_reference,
                           with_names_printable)
from tests.procfs_builder import ProcTree, mapping

# Every control character a name can hold (not NUL).
CONTROL_CODES = [*range(0x01, 0x20), 0x7F, *range(0x80, 0xA0)]


# ----------------------------------------------------------------------------
# Fixture trees: every control character, in each place a name comes from
# ----------------------------------------------------------------------------

# Ordinary names beyond ASCII that must print exactly as 3.14 prints them.
ORDINARY = ["café-ünïcode", "日本語デーモン", "snake-🐍", "nb\u00a0space", "ångström"]
# Names with format characters (invisible, or turning the text around), each
# shown as "?" like a control character, where 3.14 prints them raw.
FORMATTED = ["soft\u00adhyphen", "right\u202eleft", "zero\u200bwidth", "bom\ufeffname",
             "isolate\u2066x\u2069"]


def control_character_tree(root: Path) -> Tuple[ProcTree, Dict[str, List[str]]]:
    """A tree with, for each control character C, a process whose status
    Name holds C, one whose executable's file name holds C (its Name a
    prefix of it), each with C in an argument; and the ORDINARY names.
    Also the raw names 3.14 prints, per view: {"name": [...], "cmdline": [...]}."""
    t = ProcTree(root, "6.1")
    raw: Dict[str, List[str]] = {"name": [], "cmdline": []}
    heap = 100

    def add(pid: int, name: str, exe: str, args: List[str], shown_name: str) -> None:
        nonlocal heap
        heap += 7  # no two rows tie
        t.add(pid, name.encode(), exe, cmdline=args,
              maps=[mapping("/usr/lib/libhostile.so", 64, "r-xp", shared=60, sharers=2),
                    mapping("[heap]", heap, private=heap, dirty=True)])
        raw["name"].append(shown_name)
        # Both read cmdline with universal newlines: \r is a newline, then a space.
        joined = " ".join(args).replace("\r\n", "\n").replace("\r", "\n")
        raw["cmdline"].append(joined.replace("\n", " "))

    for code in CONTROL_CODES:
        char = chr(code)
        # The kernel writes "\n" in a Name as the two characters \ and n.
        name = "n%02x%sz" % (code, "\\n" if char == "\n" else char)
        # 3.14 reads status with universal newlines: a \r ends the Name.
        shown = name.split("\r")[0]
        exe = "/usr/bin/prog%02x" % code
        add(1000 + code, name, exe, [exe, "arg%s%02x" % (char, code)], shown)
        exe_name = "e%02x%sz" % (code, char)
        exe = "/usr/bin/" + exe_name
        add(2000 + code, "e%02x" % code, exe, [exe, "--x%s" % char], exe_name)
    for number, name in enumerate(ORDINARY):
        exe = "/usr/bin/" + name
        add(3000 + number, name[:4], exe, [exe, "--name=" + name], name)
    for number, name in enumerate(FORMATTED):
        exe = "/usr/bin/" + name
        add(4000 + number, name[:4], exe, [exe, "--name=" + name], name)
    return t, raw


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return control_character_tree(tmp_path_factory.mktemp("hostile") / "proc")


@pytest.mark.parametrize("view", [[], ["-s"], ["-d"], ["-s", "-d"], ["-S"], ["-d", "-S"]],
                         ids=["default", "-s", "-d", "-s-d", "-S", "-d-S"])
def test_every_control_character_on_a_tree(hostile, view):
    """Ours is 3.14's output with each control or format character of each
    name made "?", and nothing else changed: ordinary non-ASCII names print
    as 3.14 prints them."""
    need_reference()
    tree, raw = hostile
    reference = run_reference(*view, procfs=tree.root)
    ours = run_ours(*view, procfs=tree.root)
    names = raw["cmdline"] if "-s" in view else raw["name"]
    if "-d" in view and "-s" not in view:
        names = ["%s [%d]" % (name, pid) for name, pid in zip(names, tree.pids)]
    assert reference.status == 0 and reference.stderr == b""
    assert RAW_CONTROL.search(reference.stdout)  # 3.14's defect, reached
    assert_no_control_bytes(ours.stdout)
    assert ours == with_names_printable(reference, names)
    for name in ORDINARY:
        assert name in ours.out
    for name in FORMATTED:
        assert name in reference.out and name not in ours.out


def test_every_control_character_in_json(hostile):
    tree, raw = hostile
    for args, names in ((["--json"], raw["name"]), (["--json", "-s"], raw["cmdline"])):
        result = run_ours(*args, procfs=tree.root)
        assert result.status == 0 and result.stderr == b""
        assert_no_control_bytes(result.stdout)
        programs = json.loads(result.stdout)["programs"]
        # The names whole, each character escaped by JSON where it must be.
        assert sorted(program["name"] for program in programs) == sorted(names)


def test_sort_by_name_and_top_keep_names_printable(hostile):
    tree, raw = hostile
    result = run_ours("--sort", "name", "--top", "20", procfs=tree.root)
    assert result.status == 0
    assert_no_control_bytes(result.stdout)
    shown = row_names(result.out)
    assert shown == sorted(printable(name) for name in raw["name"])[:20]


# ----------------------------------------------------------------------------
# The formatter, for any name at all
# ----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=8))
def test_rows_are_one_line_each_whatever_the_names(names):
    programs = [ps_mem.ProgramUsage(name, 1 + index % 3, (index,), 10.0, 5.0, 15.0 + index, 0.0)
                for index, name in enumerate(names)]
    report = ps_mem.Report(programs, 100.0, 0.0, True, False)
    for options in (ps_mem.Options(), ps_mem.Options(show_swap=True)):
        text = ps_mem.rows(report, options)
        lines = text.split("\n")
        assert lines.pop() == ""
        assert len(lines) == len(programs)
        for line, program in zip(lines, programs):
            sizes, tab, name = line.partition("\t")
            assert tab and "\t" not in name
            # printable() is the next test's, against Unicode's categories
            # (the harness's list of format characters is not all of Cf).
            shown = ps_mem.printable(program.name)
            assert name == (shown if program.processes == 1
                            else "%s (%d)" % (shown, program.processes))
            assert not any(0x7F <= ord(char) < 0xA0 or ord(char) < 0x20 for char in name)


@given(st.text())
def test_printable_changes_only_control_and_format_characters(text):
    """Each character of Unicode's categories Cc (control) and Cf (format:
    the issue's bidi overrides and zero-width characters) becomes "?";
    every other character is left as it is."""
    shown = ps_mem.printable(text)
    assert len(shown) == len(text)
    for before, after in zip(text, shown):
        hidden = unicodedata.category(before) in ("Cc", "Cf")
        assert after == ("?" if hidden else before), repr(before)


@pytest.mark.parametrize("char", FORMAT_CHARACTERS)
def test_each_format_character_the_tests_use_is_shown_as_a_question_mark(char):
    assert ps_mem.printable("a%sb" % char) == "a?b"


def test_cgroup_and_user_views_keep_names_printable(tree):
    """--group-by cgroup names rows by a path from /proc (any user with a
    delegated cgroup can name one); it is shown printable too."""
    t = tree("6.1")
    for pid, path in ((10, "/user.slice/\x1b]0;owned\x07.scope"), (11, "/sys\u009b31m.slice"),
                      (12, "/plain/café.scope")):
        t.add(pid, "p%d" % pid, "/usr/bin/p%d" % pid,
              maps=[mapping("[heap]", 100 + pid, private=100 + pid, dirty=True)])
        (t.root / str(pid) / "cgroup").write_bytes(("0::%s\n" % path).encode())
    result = run_ours("--group-by", "cgroup", procfs=t.root)
    assert result.status == 0 and result.stderr == b""
    assert_no_control_bytes(result.stdout)
    assert row_names(result.out) == ["/user.slice/?]0;owned?.scope", "/sys?31m.slice",
                                   "/plain/café.scope"]


# ----------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("kib,text", [
    (0, "0.0 KiB"),
    (0.5, "0.5 KiB"),
    (137.5, "137.5 KiB"),
    (999.9, "999.9 KiB"),
    (999.96, "1000.0 KiB"),  # below 1000, so no step, but %.1f rounds up
    (1000, "1.0 MiB"),  # 1000/1024 = 0.977
    (1024, "1.0 MiB"),
    (33484, "32.7 MiB"),  # 32.699...
    (1024 * 1000, "1.0 GiB"),
    (5 * 1024 ** 3, "5.0 TiB"),
    # Past TiB there is no unit: 3.14 fails with IndexError, ours stays in TiB.
    (2000 * 1024 ** 3, "2000.0 TiB"),
])
def test_human(kib, text):
    assert ps_mem.human(kib) == text


@pytest.mark.parametrize("options,text", [
    ({}, " Private  +   Shared  =  RAM used\tProgram\n\n"),
    ({"show_swap": True}, " Private  +   Shared  =  RAM used   Swap used\tProgram\n\n"),
    ({"by_pid": True}, " Private  +   Shared  =  RAM used\tProgram[pid]\n\n"),
    ({"by_pid": True, "show_swap": True},
     " Private  +   Shared  =  RAM used   Swap used\tProgram[pid]\n\n"),
])
def test_header(options, text):
    assert ps_mem.header(ps_mem.Options(**options)) == text


def _report(*programs, total_ram=0.0, total_swap=0.0, pss=True, swap_pss=True):
    return ps_mem.Report(list(programs), total_ram, total_swap, pss, swap_pss)


SLEEP_ROW = ps_mem.ProgramUsage("sleep", 2, (10, 11), 104.0, 33.5, 137.5, 12.0)
CLONE_ROW = ps_mem.ProgramUsage("clone_vm", 1, (12,), 33484.0, 0.5, 33484.5, 0.0)


def test_rows():
    report = _report(SLEEP_ROW, CLONE_ROW)
    assert ps_mem.rows(report, ps_mem.Options()) == (
        "104.0 KiB +  33.5 KiB = 137.5 KiB\tsleep (2)\n"
        " 32.7 MiB +   0.5 KiB =  32.7 MiB\tclone_vm\n")
    assert ps_mem.rows(report, ps_mem.Options(show_swap=True)) == (
        "104.0 KiB +  33.5 KiB = 137.5 KiB    12.0 KiB\tsleep (2)\n"
        " 32.7 MiB +   0.5 KiB =  32.7 MiB     0.0 KiB\tclone_vm\n")


def test_rows_control_characters_print_as_question_marks():
    # A deliberate difference from 3.14, which prints names raw.
    named = SLEEP_ROW._replace(name="\x1b[31mred\x07\tx\x9b", processes=1)
    assert ps_mem.rows(_report(named), ps_mem.Options()) == \
        "104.0 KiB +  33.5 KiB = 137.5 KiB\t?[31mred??x?\n"


def test_footer():
    report = _report(SLEEP_ROW, CLONE_ROW, total_ram=33622.0, total_swap=12.0)
    assert ps_mem.footer(ps_mem.Options(), True, True, report) == (
        "-" * 33 + "\n" + " " * 24 + " 32.8 MiB\n" + "=" * 33 + "\n")
    assert ps_mem.footer(ps_mem.Options(show_swap=True), True, True, report) == (
        "-" * 45 + "\n" + " " * 24 + " 32.8 MiB" + " " * 3 + " 12.0 KiB\n" + "=" * 45 + "\n")
    # -S on a kernel without SwapPss: the RAM footer only.
    assert ps_mem.footer(ps_mem.Options(show_swap=True), True, False, report) == (
        "-" * 33 + "\n" + " " * 24 + " 32.8 MiB\n" + "=" * 33 + "\n")
    # No PSS: no footer at all.
    assert ps_mem.footer(ps_mem.Options(), False, False, report) == ""


def test_only_total():
    report = _report(SLEEP_ROW, total_ram=137.5, total_swap=12.0)
    assert ps_mem.only_total(ps_mem.Options(only_total=True), True, True, report) == "140800\n"
    assert ps_mem.only_total(ps_mem.Options(only_total=True, show_swap=True), True, True,
                             report) == "12288\n"
    assert ps_mem.only_total(ps_mem.Options(only_total=True), False, False, report) == ""
    assert ps_mem.only_total(ps_mem.Options(only_total=True, show_swap=True), True, False,
                             report) == ""


def _warnings(ram: int, swap: int, **options) -> str:
    # "".join takes either form: one text, or a list of texts.
    return "".join(ps_mem.warnings(ps_mem.Accuracy(ram, swap), ps_mem.Options(**options)))


def test_warnings():
    assert _warnings(2, 2) == ""
    assert _warnings(2, 1) == ""  # swap warnings only with -S
    assert _warnings(2, 1, show_swap=True) == (
        "Warning: Swap is over-estimated by this system for each program,\n"
        "so totals are not reported.\n")
    assert _warnings(1, -1) == (
        "Warning: Shared memory is slightly over-estimated by this system\n"
        "for each program, so totals are not reported.\n")
    assert _warnings(0, -1, only_total=True) == (
        "Error: Shared memory is not reported accurately by this system.\n"
        "Values reported could be too large, and totals are not reported\n")
    assert _warnings(-1, -1, show_swap=True) == (
        "Warning: Shared memory is not reported by this system.\n"
        "Values reported will be too large, and totals are not reported\n"
        "Warning: Swap is not reported by this system.\n")
    # With -S -t only the swap figure is printed, so only swap is warned of.
    assert _warnings(1, -1, show_swap=True, only_total=True) == (
        "Error: Swap is not reported by this system.\n")
