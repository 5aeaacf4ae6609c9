"""Hostile names: no control character that came from /proc reaches stdout.

3.14 prints a process's name, executable file name and command line raw,
so any user can make the root running ps_mem send its terminal escape
sequences: prctl(PR_SET_NAME, "\\x1b[31mEVIL\\x07"), or an executable whose
file name holds ESC and a newline.  ps_mem.py shows each C0 control (tab
and newline included), DEL and each C1 control (U+0080 to U+009F) as "?",
as ps does, in every view; everything else prints as 3.14 prints it,
non-ASCII UTF-8 included.

Live: the static setname helper renamed with prctl, and a copy of it run
under a hostile file name (static, so that ours and 3.14 read the same
memory and their outputs can be compared byte for byte).  Fixture trees:
every control character in turn, in Name, in an executable's file name and
in an argument, beside ordinary non-ASCII names.  Expected output is 3.14's
with each control character of each name replaced by "?".
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import REFERENCE_DIR, Result, child_env, live, run_ours, run_reference
from tests.procfs_builder import ProcTree, mapping
from tests.realproc import Processes, build, wait_settled

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ps_mem  # noqa: E402

REFERENCE = REFERENCE_DIR / "ps_mem.py"
CONTROLS = [*range(0x01, 0x20), 0x7F, *range(0x80, 0xA0)]  # NUL cannot be in a name
QUESTION = {code: "?" for code in [0, *CONTROLS]}
# A control character anywhere but the layout's tabs and newlines: raw
# bytes (C0, DEL) or a C1 character, UTF-8 encoded or as a lone byte.
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def printable(text: str) -> str:
    return text.translate(QUESTION)


def assert_no_control_bytes(stdout: bytes) -> None:
    """Only the layout's tabs and newlines: no other C0, no DEL, no C1
    (encoded, or as a byte that is not UTF-8)."""
    match = RAW_CONTROL.search(stdout)
    assert match is None, "control character %r at %d" % (match.group(), match.start())
    stdout.decode("utf-8")  # strict: no lone byte such as \x9b either


def rows_of(stdout: str) -> List[str]:
    """The names column of ours (one line per row, as ours prints them)."""
    body = stdout.split("\n\n", 1)[1]
    return [line.split("\t", 1)[1] for line in body.split("\n") if "\t" in line]


def with_names_printable(reference: Result, raw_names: Sequence[str]) -> Result:
    """3.14's output with each of RAW_NAMES (as it printed them, newlines
    and all) made printable.  Each name follows the row's tab."""
    text = reference.stdout.decode("utf-8")
    for raw in sorted(set(raw_names), key=len, reverse=True):
        assert "\t" + raw in text, "3.14 did not print %r" % raw
        text = text.replace("\t" + raw, "\t" + printable(raw))
    return reference._replace(stdout=text.encode("utf-8"))


def agreeing(ours: Callable[[], Result], reference: Callable[[], Result],
             expected: Callable[[Result], Result], tries: int = 4) -> Tuple[Result, Result]:
    """(ours(), reference()), run again while ours is not expected(reference),
    up to TRIES times: the helpers' pages are shared with any other copy of
    the same helper running on the machine, whose start or exit moves their
    Pss between two runs.  A real difference persists."""
    for _ in range(tries):
        pair = ours(), reference()
        try:
            if pair[0] == expected(pair[1]):
                break
        except AssertionError:
            pass
    return pair


def need_reference() -> None:
    if not REFERENCE.exists():
        pytest.skip("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)


# ----------------------------------------------------------------------------
# Live processes
# ----------------------------------------------------------------------------





def run_live(script: Path, *args: str) -> Result:
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          timeout=60, env=child_env())
    return Result(done.stdout, done.stderr, done.returncode)


class Static:
    """Copies of the static setname helper run under file names of our
    choosing; each is ended (SIGTERM to its group, then SIGKILL) on close."""

    def __init__(self) -> None:
        self.running: List[subprocess.Popen] = []
        self.directory = tempfile.mkdtemp(prefix="ps_mem-hostile-")

    def start(self, file_name: bytes, comm: bytes) -> Tuple[int, bytes]:
        """Run a copy named FILE_NAME that renames itself COMM; its pid
        and the path it runs from."""
        helper = build("setname")
        path = os.path.join(os.fsencode(self.directory), file_name)
        shutil.copy(helper, path)
        os.chmod(path, 0o755)
        child = subprocess.Popen([path, comm.hex().encode()], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        self.running.append(child)
        line = child.stdout.readline()  # the helper exits if we die first
        assert line.split() == [b"ready", str(child.pid).encode()], line
        wait_settled([child.pid])
        return child.pid, path

    def close(self) -> None:
        for child in self.running:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)
                    break
            child.stdout.close()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def static():
    started = Static()
    yield started
    started.close()


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


@live
@pytest.mark.parametrize("view", [[], ["-d"], ["-s"], ["-s", "-d"]],
                         ids=["default", "-d", "-s", "-s-d"])
def test_renamed_live_processes(renamed, view):
    need_reference()
    helpers = renamed
    csv = ",".join(str(helper.pid) for helper in helpers.values())
    ours, reference = agreeing(lambda: run_live(ps_mem_path(), *view, "-p", csv),
                               lambda: run_live(REFERENCE, *view, "-p", csv),
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
    assert sorted(rows_of(ours.out)) == sorted(expected_names)
    assert ours == with_names_printable(reference, raw_names)


@live
def test_renamed_live_processes_json(renamed):
    helpers = renamed
    csv = ",".join(str(helper.pid) for helper in helpers.values())
    for args in (["--json"], ["--json", "-d"]):
        result = run_live(ps_mem_path(), *args, "-p", csv)
        assert result.status == 0 and result.stderr == b""
        assert_no_control_bytes(result.stdout)
        document = json.loads(result.stdout)
        got = {tuple(program["pids"]): program["name"] for program in document["programs"]}
        suffix = " [%d]" if "-d" in args else ""
        want = {(helper.pid,): shown + (suffix % helper.pid if suffix else "")
                for shown, helper in zip(RENAMES.values(), helpers.values())}
        assert got == want


def _printable_all(reference: Result, helpers) -> Result:
    if b"\t/" in reference.stdout:  # -s: nothing hostile in the command lines
        return reference
    return with_names_printable(reference, [_kernel_name(helper.pid)
                                            for helper in helpers.values()])


def _kernel_name(pid: int) -> str:
    """The name as 3.14 reads it: status's Name, undecodable bytes dropped,
    cut at a carriage return (it reads status with universal newlines)."""
    with open("/proc/%d/status" % pid, "rb") as handle:
        first = handle.readline()
    return first[6:-1].decode("utf-8", "ignore").split("\r")[0]


def ps_mem_path() -> Path:
    return Path(ps_mem.__file__).resolve()


# An executable file name with escape sequences, BEL, a newline and a C1
# character.  Its first 15 bytes (the process name exec gives it, kept by
# renaming to the same) hold no newline, so the name is a prefix of the
# file name and the whole file name is shown.
HOSTILE_FILE = "evil\x1b[7mname\x07\x1b[0m\nline2\u009b".encode()


@live
@pytest.mark.parametrize("view", [[], ["-d"], ["-s"], ["--json"]],
                         ids=["default", "-d", "-s", "--json"])
def test_executable_file_name_with_escapes_live(static, view):
    pid, path = static.start(HOSTILE_FILE, HOSTILE_FILE[:15])
    ours = run_live(ps_mem_path(), *view, "-p", str(pid))
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
        assert program["name"] == shown
        return
    assert rows_of(ours.out) == [shown]
    need_reference()
    ours, reference = agreeing(lambda: run_live(ps_mem_path(), *view, "-p", str(pid)),
                               lambda: run_live(REFERENCE, *view, "-p", str(pid)),
                               lambda result: with_names_printable(result, [raw]))
    assert reference.status == 0
    assert raw.encode() in reference.stdout  # 3.14 prints it raw
    assert ours == with_names_printable(reference, [raw])


# ----------------------------------------------------------------------------
# Fixture trees: every control character, in each place a name comes from
# ----------------------------------------------------------------------------

# Ordinary names beyond ASCII that must print exactly as 3.14 prints them.
ORDINARY = ["café-ünïcode", "日本語デーモン", "snake-🐍", "nb\u00a0space", "soft\u00adhyphen",
            "right\u202eleft", "ångström"]


def hostile_tree(root: Path) -> Tuple[ProcTree, Dict[str, List[str]]]:
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

    for code in CONTROLS:
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
    return t, raw


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return hostile_tree(tmp_path_factory.mktemp("hostile") / "proc")


@pytest.mark.parametrize("view", [[], ["-s"], ["-d"], ["-s", "-d"], ["-S"], ["-d", "-S"]],
                         ids=["default", "-s", "-d", "-s-d", "-S", "-d-S"])
def test_every_control_character_on_a_tree(hostile, view):
    """Ours is 3.14's output with each control character of each name made
    "?", and nothing else changed: ordinary non-ASCII names print as 3.14
    prints them."""
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


def test_every_control_character_in_json(hostile):
    tree, raw = hostile
    for args, names in ((["--json"], raw["name"]), (["--json", "-s"], raw["cmdline"])):
        result = run_ours(*args, procfs=tree.root)
        assert result.status == 0 and result.stderr == b""
        assert_no_control_bytes(result.stdout)
        programs = json.loads(result.stdout)["programs"]
        assert sorted(program["name"] for program in programs) == \
            sorted(printable(name) for name in names)


def test_sort_by_name_and_top_keep_names_printable(hostile):
    tree, raw = hostile
    result = run_ours("--sort", "name", "--top", "20", procfs=tree.root)
    assert result.status == 0
    assert_no_control_bytes(result.stdout)
    shown = rows_of(result.out)
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
            shown = printable(program.name)
            assert name == (shown if program.count == 1
                            else "%s (%d)" % (shown, program.count))
            assert not any(0x7F <= ord(char) < 0xA0 or ord(char) < 0x20 for char in name)


@given(st.text())
def test_printable_changes_only_control_characters(text):
    shown = ps_mem.printable(text)
    assert len(shown) == len(text)
    for before, after in zip(text, shown):
        control = ord(before) < 0x20 or 0x7F <= ord(before) < 0xA0
        assert after == ("?" if control else before)


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
    assert rows_of(result.out) == ["/user.slice/?]0;owned?.scope", "/sys?31m.slice",
                                   "/plain/café.scope"]
