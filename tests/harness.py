"""The tests' one harness: running ps_mem.py and the reference ps_mem 3.14,
and reading back what they print.

ps_mem.py runs as a command (`python ps_mem.py --procfs TREE ARGS`), as a
user runs it (on a tree, from its code compiled once: see _RUN_COMPILED),
or in this process through main(), which costs no Python start-up (for
option matrices over many trees).  The reference, ps-mem 3.14
from PyPI, is installed by tests/run into .venv/reference (never into the
repo); on a tree it runs in a child Python that points it at the tree: its
proc root at TREE, its own pid at the pid TREE's `self` names, its euid 0.

Running
    run_ours(*args, procfs=None)        ps_mem.py as a command
    run_main(*args, procfs=None)        ps_mem.main() here, stdout and stderr caught
    run_reference(*args, procfs=TREE)   ps_mem 3.14 on a tree
    run_script(script, *args)           any script on the live /proc (ours, 3.14's)
    command(program, tree, args)        the argv of "ours" or "reference", for Popen
    ours_command(tree, args, python)    the argv of ours under any interpreter
    Started(argv)                       a run in the background, its output in files
    into_closed_pipe(argv)              a run whose reader has gone
    run_as_nobody(*args, reads=())      Python as the user nobody
Skipping
    live, LIVE                          needs this machine's /proc and root
    need_reference(), needs_reference   needs ps_mem 3.14
Reading what they print
    parse_table(), row_names()          the table, strictly in 3.14's layout
    sizes(), sizes_apart()              its sizes; two live reads further apart than memory moves
    printable(), printable_names()      names as ps_mem.py shows them ("?")
    document(), json_of(), document_of()  the --json document
    assert_schema(), assert_same_as_table(), assert_warnings_are_stderr()
    members(), member_data(), rewrite_capture()   a --capture file
"""

import atexit
import contextlib
import errno
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = REPO / "ps_mem.py"
REFERENCE_DIR = Path(os.environ.get("PS_MEM_REFERENCE", REPO / ".venv" / "reference"))
REFERENCE = REFERENCE_DIR / "ps_mem.py"
DATA = Path(__file__).resolve().parent / "data"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import ps_mem  # noqa: E402  (after the path is set)


def data(name: str) -> bytes:
    """tests/data/NAME: real kernel text."""
    return (DATA / name).read_bytes()


# What ps_mem.py adds to 3.14's stderr when it was denied processes.
DENIED_WARNING_1 = (b"Warning: 1 process could not be read (permission denied); "
                    b"their memory is not included.\n")
DENIED_WARNING_2 = (b"Warning: 2 processes could not be read (permission denied); "
                    b"their memory is not included.\n")
# ... and when a tree's process could not be parsed (README.md, "Differences").
UNPARSABLE_WARNING_1 = (b"Warning: 1 process could not be parsed (their files are not what a "
                        b"kernel writes); their memory is not included.\n")


# ----------------------------------------------------------------------------
# What a test needs to run
# ----------------------------------------------------------------------------

LIVE = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/smaps"),
                       reason="needs a Linux /proc with smaps"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read every process's memory"),
]


def live(function):
    """Mark a test that runs processes on this machine's /proc (a module
    of them says `pytestmark = LIVE`)."""
    for mark in LIVE:
        function = mark(function)
    return function


needs_reference = pytest.mark.skipif(
    not REFERENCE.exists(),
    reason="ps_mem 3.14 is not installed in %s (tests/run installs it)" % REFERENCE_DIR)


def need_reference() -> None:
    """Skip the test (from within it) if ps_mem 3.14 is not installed."""
    if not REFERENCE.exists():
        pytest.skip("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)


# ----------------------------------------------------------------------------
# Running ps_mem.py and 3.14
# ----------------------------------------------------------------------------

# Run in the child: patch what 3.14 takes from the live system, then main().
_REFERENCE_RUNNER = r"""
import os, sys
reference_dir, root, self_pid = sys.argv[1:4]
sys.argv = ["ps_mem"] + sys.argv[4:]
os.geteuid = lambda: 0
pid = int(self_pid) if self_pid else -1
os.getpid = lambda: pid
sys.path.insert(0, reference_dir)
import ps_mem
ps_mem.proc.proc = root
ps_mem.our_pid = pid
ps_mem.main()
"""


class Result(NamedTuple):
    stdout: bytes
    stderr: bytes
    status: int

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


def child_env() -> dict:
    """The environment for a tool run as a child: UTF-8 whatever the locale."""
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C.UTF-8")
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def tree_self_pid(tree: os.PathLike) -> str:
    try:
        return os.path.basename(os.readlink(os.path.join(tree, "self")))
    except OSError:
        return ""


# ps_mem.py on a tree or a capture: its code compiled once (by _compiled()),
# run as `python ps_mem.py` runs it: as __main__, with the same sys.argv,
# sys.path[0] and __file__.  Compiling its thousands of lines was most of
# what a run on a fixture tree cost, in each of the suite's many hundred.
# (Both are read by every CPython from 3.6 up: see test_interpreters.py.)
_RUN_COMPILED = r"""
import sys
def _load():
    import marshal, os
    code_file, path = sys.argv[1:3]
    del sys.argv[:2]
    sys.path[0] = os.path.dirname(path)
    with open(code_file, "rb") as handle:
        return marshal.load(handle), path
_code, __file__ = _load()
del _load
exec(_code)
"""
_COMPILE = r"""
import marshal, sys
source, target = sys.argv[1:3]
with open(source, "rb") as handle:
    code = compile(handle.read(), source, "exec", dont_inherit=True)
with open(target, "wb") as handle:
    marshal.dump(code, handle)
"""
# interpreter -> ((ps_mem.py's mtime and size), the file of its code or None)
_compiled_code: Dict[str, Tuple[Tuple[int, int], Optional[str]]] = {}
_compiled_dir: List[str] = []
_compiled_code_files: List[str] = []
_compiling = threading.Lock()  # tests run commands from threads too


def _compiled(python: str) -> Optional[str]:
    """A file holding ps_mem.py's code object as PYTHON compiles it, made
    again if ps_mem.py changed; None if PYTHON cannot compile it (then the
    script itself is run, and shows why)."""
    stat = OURS.stat()
    key = (stat.st_mtime_ns, stat.st_size)
    with _compiling:
        made = _compiled_code.get(python)
        if made is None or made[0] != key:
            if not _compiled_dir:
                _compiled_dir.append(tempfile.mkdtemp(prefix="ps_mem-compiled-"))
                os.chmod(_compiled_dir[0], 0o755)  # for runs as nobody, as ps_mem.py itself
                atexit.register(shutil.rmtree, _compiled_dir[0], True)
            # A new file each time: a run still reading the last one reads it whole.
            path = os.path.join(_compiled_dir[0], "%d.code" % len(_compiled_code_files))
            _compiled_code_files.append(path)
            done = subprocess.run([python, "-c", _COMPILE, str(OURS), path],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=60)
            made = _compiled_code[python] = (key, path if done.returncode == 0 else None)
    return made[1]


def ours_command(tree: Optional[os.PathLike], args: Sequence[str],
                 python: str = sys.executable) -> List[str]:
    """The argv of ps_mem.py under PYTHON with ARGS, on TREE (a tree or a
    capture; None: the live /proc, where the script itself runs)."""
    code = _compiled(python) if tree is not None else None
    if code is None:
        return ([python, str(OURS)] + (["--procfs", str(tree)] if tree is not None else [])
                + list(args))
    return [python, "-c", _RUN_COMPILED, code, str(OURS), "--procfs", str(tree), *args]


def command(program: str, tree: Optional[os.PathLike], args: Sequence[str]) -> List[str]:
    """The argv of ps_mem.py ("ours") or 3.14 ("reference") with ARGS, on
    TREE (a tree or a capture; None: the live /proc, where ps_mem.py runs as
    the script itself)."""
    if program == "ours":
        return ours_command(tree, args)
    if tree is None:
        return [sys.executable, str(REFERENCE), *args]
    if not REFERENCE.exists():
        raise RuntimeError("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)
    return [sys.executable, "-c", _REFERENCE_RUNNER, str(REFERENCE_DIR), str(tree),
            tree_self_pid(tree), *args]


def _run(argv: Sequence[str], timeout: float, preexec_fn=None) -> Result:
    done = subprocess.run(argv, capture_output=True, timeout=timeout, env=child_env(),
                          preexec_fn=preexec_fn)
    return Result(done.stdout, done.stderr, done.returncode)


def run_ours(*args: str, procfs: Optional[os.PathLike] = None, timeout: float = 60) -> Result:
    """ps_mem.py with ARGS; with procfs, reading that tree or capture."""
    return _run(command("ours", procfs, args), timeout)


def run_reference(*args: str, procfs: os.PathLike, timeout: float = 60) -> Result:
    """ps_mem 3.14 with ARGS, reading the tree PROCFS as its /proc."""
    return _run(command("reference", procfs, args), timeout)


def run_script(script: os.PathLike, *args: str, timeout: float = 60, preexec_fn=None) -> Result:
    """SCRIPT (ours, 3.14's, a frozen copy) with ARGS on the live /proc."""
    return _run([sys.executable, str(script), *args], timeout, preexec_fn)


def run_main(*args: str, procfs: Optional[object] = None) -> Result:
    """ps_mem.main([--procfs PROCFS] ARGS) in this process: the same code
    path as the command but for the process itself (exit by signal,
    flushing to a pipe), which the tests of those use the command for."""
    argv = (["--procfs", str(procfs)] if procfs is not None else []) + list(args)
    stdout_bytes = io.BytesIO()
    stdout = io.TextIOWrapper(stdout_bytes, encoding="utf-8", write_through=True)
    stderr = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = ps_mem.main(argv)
    stdout.flush()
    return Result(stdout_bytes.getvalue(), stderr.getvalue().encode("utf-8"), status)


def _signals_as_a_shell() -> None:
    """In a child about to exec: Ctrl-C's default action, as a terminal's
    shell gives a command.  A shell without job control starts background
    commands with SIGINT ignored, and a test suite started so would pass
    that on: its interrupted runs would then never end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Started:
    """A program running in the background with its output in files (a
    file never blocks the writer, as a full pipe would)."""

    def __init__(self, argv: List[str], stdout=None,
                 env: Optional[Dict[str, str]] = None) -> None:
        # Closed in finish(), which every test reaches.
        self.out = tempfile.TemporaryFile()  # noqa: SIM115
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        # faulthandler: a run that hangs can be made to say where (finish()).
        env = dict(child_env(), PYTHONFAULTHANDLER="1", **(env or {}))
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=self.out if stdout is None else stdout,
                                      stderr=self.err, env=env, preexec_fn=_signals_as_a_shell)

    def output(self) -> bytes:
        self.out.seek(0)
        return self.out.read()

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.output()):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("not seen in time; output so far %r" % self.output())
            time.sleep(0.01)

    def finish(self, timeout: float = 30) -> Result:
        """Its output and status once it has ended; if it does not end in
        TIMEOUT seconds, fail with where it hung (every thread's stack)."""
        try:
            status = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.send_signal(signal.SIGABRT)
            try:
                self.popen.wait(timeout=10)
            finally:
                if self.popen.poll() is None:
                    self.popen.kill()
                    self.popen.wait()
            self.err.seek(0)
            raise AssertionError("%s hung:\n%s" % (self.popen.args[:3], self.err.read().decode(
                "utf-8", "replace"))) from None
        self.err.seek(0)
        result = Result(self.output(), self.err.read(), status)
        self.out.close()
        self.err.close()
        return result


def fork_refused(*args, **kwargs):
    """os.fork() where no process can be made now (for monkeypatch)."""
    raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")


def assert_reaped(pids: Iterable[int]) -> None:
    """Each of PIDS, a child of this process, has been waited for."""
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def into_closed_pipe(argv: List[str]) -> Result:
    """ARGV with stdout a pipe whose reader has already gone."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=write_end,
                              stderr=subprocess.PIPE, timeout=60, env=child_env())
    finally:
        os.close(write_end)
    return Result(b"", done.stderr, done.returncode)


# ----------------------------------------------------------------------------
# As the user nobody
# ----------------------------------------------------------------------------

NOBODY = 65534
_CAN_READ = ("import os, sys\n"
             "for path in sys.argv[1:]:\n"
             "    os.listdir(path) if os.path.isdir(path) else open(path, 'rb').close()\n")


def setpriv(*options: str) -> List[str]:
    """The command prefix that runs a command with setpriv's OPTIONS."""
    path = shutil.which("setpriv")
    if path is None:
        pytest.skip("setpriv (util-linux) is not installed")
    return [path, *options]


def as_nobody() -> List[str]:
    """The command prefix that runs a command as the user nobody."""
    return setpriv("--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups")


def run_as_nobody(*args: str, reads: Iterable[os.PathLike] = ()) -> Result:
    """Python with ARGS as the user nobody, in /, which must be able to
    read READS (a clone under /root would not be, say: then skip)."""
    reads = [str(path) for path in reads]
    env = dict(child_env(), PYTHONDONTWRITEBYTECODE="1")
    for python in (sys.executable, "/usr/bin/python3"):
        done = subprocess.run(as_nobody() + [python, "-c", _CAN_READ, *reads], cwd="/",
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if done.returncode == 0:
            break
    else:
        pytest.skip("the user nobody cannot run Python on %s" % reads)
    done = subprocess.run(as_nobody() + [python, *args], cwd="/", capture_output=True,
                          timeout=60, env=env)
    return Result(done.stdout, done.stderr, done.returncode)


# ----------------------------------------------------------------------------
# Golden outputs: tests/golden/CASE.stdout and CASE.stderr, 3.14's
# ----------------------------------------------------------------------------

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
_OPTION_WORDS = {"-s": "split", "-S": "swap", "-t": "total", "-d": "pid"}


def golden_path(tree: str, options: Sequence[str]) -> Path:
    """tests/golden/TREE-WORDS, without the suffix: .stdout or .stderr."""
    # Words, not letters: -s and -S must not differ only in case in a name.
    return GOLDEN_DIR / "-".join([tree] + [_OPTION_WORDS[option] for option in options])


def golden(tree: str, options: Sequence[str], status: int) -> Result:
    """What 3.14 printed on fixture tree TREE with OPTIONS, exiting STATUS."""
    base = golden_path(tree, options)
    return Result(base.with_suffix(".stdout").read_bytes(),
                  base.with_suffix(".stderr").read_bytes(), status)


# ----------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------

HEADER = " Private  +   Shared  =  RAM used\tProgram\n\n"
# 3.14's four headers: -S adds a column, -d names the rows' pids.
HEADERS = {HEADER, HEADER.replace("Program", "Program[pid]"),
            HEADER.replace("\tProgram", "   Swap used\tProgram"),
            HEADER.replace("\tProgram", "   Swap used\tProgram[pid]")}
# The groupings since 3.14 name their rows in the last column's title.
HEADERS |= {header.replace("Program", title) for header in set(HEADERS)
            for title in ("Mapping", "User", "Cgroup", "App")}
# A size as "%9s" prints it: 1.0 MiB to 999.9 KiB (1000.0 where %.1f rounds up).
SIZE = r"(?: {2}\d| \d\d|\d{3}|\d{4})\.\d [KMGT]iB"
ROW = re.compile(r"(%s) \+ (%s) = (%s)(?:   (%s))?\t([^\t\n]*)\n" % ((SIZE,) * 4))
FOOTER = r"-{33}\n {24}(%s)\n={33}\n" % SIZE
FOOTER_SWAP = r"-{45}\n {24}(%s)   (%s)\n={45}\n" % (SIZE, SIZE)
_FOOTERS = re.compile("%s|%s" % (FOOTER, FOOTER_SWAP))
UNITS = {"KiB": 1, "MiB": 1024, "GiB": 1024 ** 2, "TiB": 1024 ** 3}


class Row(NamedTuple):
    private: str  # as printed, without padding
    shared: str
    ram: str
    swap: Optional[str]  # with -S
    name: str  # with the " (N)" count, as printed


class Table(NamedTuple):
    header: str
    rows: List[Row]
    total_ram: Optional[str]  # the footer's sizes, None without a footer
    total_swap: Optional[str]
    rest: str  # after the footer ("Process does not exist anymore.\n"...)


def parse_rows(body: str) -> Tuple[List[Row], Optional[str], Optional[str], str]:
    """The rows at the start of BODY, the footer's sizes after them (None
    without one) and what follows."""
    rows = []
    while True:
        match = ROW.match(body)
        if not match:
            break
        private, shared, ram, swap, name = match.groups()
        rows.append(Row(private.strip(), shared.strip(), ram.strip(),
                        swap.strip() if swap else None, name))
        body = body[match.end():]
    total_ram = total_swap = None
    match = _FOOTERS.match(body)
    if match:
        if match.group(1):
            total_ram = match.group(1).strip()
        else:
            total_ram, total_swap = match.group(2).strip(), match.group(3).strip()
        body = body[match.end():]
    return rows, total_ram, total_swap, body


def parse_table(stdout: str) -> Table:
    """The table's parts; AssertionError unless it starts with one of 3.14's
    headers and goes on with rows and a footer in its layout."""
    header, blank, body = stdout.partition("\n\n")
    assert blank and header + "\n\n" in HEADERS, stdout[:200]
    rows, total_ram, total_swap, rest = parse_rows(body)
    return Table(header + "\n\n", rows, total_ram, total_swap, rest)


def row_names(stdout: str) -> List[str]:
    """The rows' names, as printed."""
    return [row.name for row in parse_table(stdout).rows]


def kib(size: str) -> float:
    """A size as printed ("1.5 MiB"), in KiB."""
    number, unit = size.split()
    return float(number) * UNITS[unit]


def rounding(size_kib: float) -> float:
    """How far a printed size may be from the true one: half of 0.1 of its
    unit (a size printed as 1000 or more KiB went up a unit)."""
    unit = 1
    while size_kib >= 1000 * unit:
        unit *= 1024
    return 0.05 * unit


# A size as printed, with its padding; or a -t total in bytes.
_PRINTED_SIZE = re.compile(r" *\d+\.\d [KMGT]iB|^\d+$", re.M)


def sizes(text: str) -> Tuple[str, List[float]]:
    """The output with each size replaced by "#", and the sizes in KiB."""
    found: List[float] = []

    def take(match) -> str:
        size = match[0].strip()
        found.append(kib(size) if size.endswith("iB") else int(size) / 1024)
        return "#"

    return _PRINTED_SIZE.sub(take, text), found


def sizes_apart(ours: str, reference: str, private_kib: float, shared_kib: float,
                ram_kib: Optional[float] = None) -> str:
    """Why two outputs over the same live processes, read a moment apart,
    differ by more than those processes' memory can move between two
    reads; "" if they do not.

    All but the sizes must be the same.  Private memory is the processes'
    own and moves only by PRIVATE_KIB: library pages that one of them alone
    had mapped, which another process mapping them makes shared.  Shared
    is their part of pages other processes map too, whose Pss moves
    whenever one of those starts or exits: by SHARED_KIB (so does swap,
    SwapPss being divided the same way).  RAM used, a row's or the
    footer's or -t's, moves by RAM_KIB, by default the two together.  Each
    limit is for all the processes read, so it holds for every row as for
    the total.  A printed size may also be off by its rounding."""
    ours_text, _ = sizes(ours)
    reference_text, _ = sizes(reference)
    if ours_text != reference_text:
        return "the outputs differ in more than sizes"
    ram_kib = private_kib + shared_kib if ram_kib is None else ram_kib
    # (what, limit, ours as printed, 3.14's as printed)
    printed: List[Tuple[str, float, str, str]] = []
    if re.fullmatch(r"\d+\n", ours):  # -t: one total, in bytes
        printed.append(("the total", ram_kib, ours.strip() + " B", reference.strip() + " B"))
    else:
        try:
            ours_table, reference_table = parse_table(ours), parse_table(reference)
        except AssertionError:
            return "the outputs are not tables in 3.14's layout"
        for mine, theirs in zip(ours_table.rows, reference_table.rows):
            for column, limit in (("private", private_kib), ("shared", shared_kib),
                                  ("ram", ram_kib), ("swap", shared_kib)):
                if getattr(mine, column) is not None:
                    printed.append(("%s of %s" % (column, mine.name), limit,
                                    getattr(mine, column), getattr(theirs, column)))
        for column, limit in (("ram", ram_kib), ("swap", shared_kib)):
            if getattr(ours_table, "total_" + column) is not None:
                printed.append(("the footer's " + column, limit,
                                getattr(ours_table, "total_" + column),
                                getattr(reference_table, "total_" + column)))
    reasons = []
    for label, limit, mine_printed, theirs_printed in printed:
        if mine_printed.endswith(" B"):
            a, b = int(mine_printed[:-2]) / 1024, int(theirs_printed[:-2]) / 1024
            slack = 0.0
        else:
            a, b = kib(mine_printed), kib(theirs_printed)
            slack = rounding(a) + rounding(b)
        if abs(a - b) > limit + slack:
            reasons.append("%s: %s against %s, %.1f KiB apart, more than the %.1f KiB allowed"
                           " (%.1f KiB that memory may move between reads, %.1f KiB of"
                           " rounding)" % (label, mine_printed, theirs_printed, abs(a - b),
                                           limit + slack, limit, slack))
    return "; ".join(reasons)


def human_bytes(value: int) -> str:
    """A byte count as the table prints it."""
    return ps_mem.human(value / 1024)


def display_name(program: dict) -> str:
    """A JSON program's name as the table shows it (control and format
    characters as "?"), with its count."""
    if program["count"] > 1:
        return "%s (%d)" % (printable(program["name"]), program["count"])
    return printable(program["name"])


# ----------------------------------------------------------------------------
# Names: what ps_mem.py shows of a name 3.14 prints raw (issue 3)
# ----------------------------------------------------------------------------

# C0 (tab and newline too), DEL and C1 controls, shown as "?".
# The format characters (Unicode category Cf) the tests put in names, each
# of which the tables show as "?" too: soft hyphen, zero-width space,
# non-joiner and joiner, left-to-right and right-to-left marks, the bidi
# embeddings, overrides and isolates, word joiner, byte order mark.
FORMAT_CHARACTERS = ("\u00ad\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                     "\u2060\u2066\u2067\u2068\u2069\ufeff")
CONTROLS = {code: "?" for code in [*range(0x20), *range(0x7F, 0xA0),
                                   *map(ord, FORMAT_CHARACTERS)]}
# A control character anywhere but the layout's tabs and newlines: raw
# bytes (C0, DEL) or a C1 character, UTF-8 encoded or as a lone byte; or
# one of the format characters above, UTF-8 encoded.
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|"
                         + b"|".join(re.escape(char.encode()) for char in FORMAT_CHARACTERS))


def printable(text: str) -> str:
    return text.translate(CONTROLS)


def printable_names(reference: Result) -> Result:
    """3.14's output with control characters in each row's name made "?".
    A row is "SIZES\\tNAME\\n": only for outputs whose names hold no
    newline (-s makes them spaces; a status Name cannot have one)."""
    lines = []
    for line in reference.stdout.decode("utf-8").split("\n"):
        sizes_, tab, name = line.partition("\t")
        lines.append(sizes_ + tab + printable(name))
    return reference._replace(stdout="\n".join(lines).encode("utf-8"))


def with_names_printable(reference: Result, raw_names: Sequence[str]) -> Result:
    """3.14's output with each of RAW_NAMES (as it printed them, newlines
    and all) made printable.  Each name follows the row's tab."""
    text = reference.stdout.decode("utf-8")
    for raw in sorted(set(raw_names), key=len, reverse=True):
        assert "\t" + raw in text, "3.14 did not print %r" % raw
        text = text.replace("\t" + raw, "\t" + printable(raw))
    return reference._replace(stdout=text.encode("utf-8"))


def assert_no_control_bytes(stdout: bytes) -> None:
    """Only the layout's tabs and newlines: no other C0, no DEL, no C1
    (encoded, or as a byte that is not UTF-8)."""
    match = RAW_CONTROL.search(stdout)
    assert match is None, "control character %r at %d" % (match.group(), match.start())
    stdout.decode("utf-8")  # strict: no lone byte such as \x9b either


# ----------------------------------------------------------------------------
# --json
# ----------------------------------------------------------------------------

TOP_KEYS = {"ps_mem_version", "time", "kernel", "programs", "total", "accuracy", "warnings"}
PROGRAM_KEYS = {"name", "count", "pids", "private", "shared", "ram", "swap"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def document(stdout: bytes) -> dict:
    """The one JSON document of a run: one line, ASCII only."""
    assert stdout.endswith(b"\n") and stdout.count(b"\n") == 1, stdout[:300]
    assert stdout.isascii(), stdout[:300]
    return json.loads(stdout)


def document_of(result: Result) -> dict:
    """The document of a --json run that exited 0 and said nothing on stderr."""
    assert result.status == 0 and result.stderr == b"", result.err
    return document(result.stdout)


def json_of(*args: str, procfs=None) -> dict:
    """The document of `--json ARGS`: in this process on PROCFS, or as a
    command on the live /proc; it must exit 0."""
    result = run_main("--json", *args, procfs=procfs) if procfs is not None \
        else run_ours("--json", *args)
    assert result.status == 0, result.err
    return document(result.stdout)


def pids_by_name(doc: dict) -> Dict[str, List[int]]:
    return {program["name"]: sorted(program["pids"]) for program in doc["programs"]}


def without_time(result: Result) -> Result:
    """--json's time is when the sample was taken: a capture's own time."""
    return result._replace(stdout=re.sub(rb'"time": "[^"]*"', b'"time": "T"', result.stdout))


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def assert_schema(doc: dict, release: str) -> None:
    assert set(doc) == TOP_KEYS
    assert doc["ps_mem_version"] == ps_mem.VERSION == "4.0"
    assert TIME.fullmatch(doc["time"]), doc["time"]
    assert doc["kernel"] == release
    assert isinstance(doc["programs"], list)
    for program in doc["programs"]:
        assert set(program) == PROGRAM_KEYS, program
        assert isinstance(program["name"], str)
        assert is_int(program["count"]) and program["count"] >= 1
        assert all(is_int(pid) for pid in program["pids"])
        assert len(program["pids"]) == program["count"] == len(set(program["pids"]))
        for key in ("private", "shared", "ram", "swap"):
            assert is_int(program[key]) and program[key] >= 0, (key, program)
        assert program["private"] + program["shared"] == program["ram"], program
    assert set(doc["total"]) == {"ram", "swap"}
    assert all(value is None or is_int(value) for value in doc["total"].values())
    assert set(doc["accuracy"]) == {"ram", "swap"}
    assert all(value in (-1, 0, 1, 2) for value in doc["accuracy"].values())
    assert isinstance(doc["warnings"], list)
    assert all(isinstance(text, str) and not text.endswith("\n") for text in doc["warnings"])


def assert_warnings_are_stderr(doc: dict, stderr: bytes) -> None:
    assert "".join(text + "\n" for text in doc["warnings"]) == stderr.decode("utf-8")


def assert_same_as_table(doc: dict, table_stdout: str, options: Sequence[str]) -> None:
    """Same rows, same order, same sizes, same totals as the table."""
    table = parse_table(table_stdout)
    assert table.rest == ""
    assert [display_name(program) for program in doc["programs"]] == \
        [row.name for row in table.rows]
    for program, row in zip(doc["programs"], table.rows):
        assert (human_bytes(program["private"]), human_bytes(program["shared"]),
                human_bytes(program["ram"])) == (row.private, row.shared, row.ram), row.name
        if "-S" in options:
            assert human_bytes(program["swap"]) == row.swap, row.name
    total = doc["total"]
    if table.total_ram is None:
        assert total["ram"] is None
    else:
        assert human_bytes(total["ram"]) == table.total_ram
    if "-S" in options:
        if table.total_swap is None:
            assert total["swap"] is None
        else:
            assert human_bytes(total["swap"]) == table.total_swap


# ----------------------------------------------------------------------------
# --capture files
# ----------------------------------------------------------------------------

CAPTURED_PER_PID = {"cmdline", "status", "smaps_rollup", "smaps", "statm", "cgroup", "stat",
                    "exe"}
MEMBER = re.compile(r"ps_mem-capture\.json|ps_mem-capture\.end|proc/self"
                    r"|proc/sys/kernel/osrelease|proc/meminfo"
                    r"|proc/sysvipc/shm|proc/ps_mem-system\.json"  # for --system
                    r"|proc/sys/kernel/random/boot_id|proc/sys/kernel/hostname"  # --diff
                    r"|proc/(\d+)/(%s)" % "|".join(sorted(CAPTURED_PER_PID)))
MANIFEST, END = "ps_mem-capture.json", "ps_mem-capture.end"


def members(capture: Path) -> Dict[str, tarfile.TarInfo]:
    with tarfile.open(str(capture)) as archive:
        return {member.name: member for member in archive}


def member_data(capture: Path) -> Dict[str, bytes]:
    with tarfile.open(str(capture)) as archive:
        return {member.name: archive.extractfile(member).read()
                for member in archive if member.isfile()}


def assert_only_what_ps_mem_reads(capture: Path) -> Dict[str, tarfile.TarInfo]:
    found = members(capture)
    for name, member in found.items():
        match = MEMBER.fullmatch(name)
        assert match, "unexpected member %s" % name
        if match.group(2) == "exe" or name == "proc/self":
            assert member.issym(), name
        else:
            assert member.isfile(), name
    assert list(found)[0] == MANIFEST and list(found)[-1] == END, list(found)[:3]
    assert "proc/sys/kernel/osrelease" in found
    return found


def rewrite_capture(source: Path, target: Path, replace: Dict[str, bytes],
                    drop: Sequence[str] = ()) -> Path:
    """A copy of capture SOURCE with some members' contents replaced and
    the members DROP left out, and its end record (README.md, "Reporting a
    problem": the count of the files between the manifest and it, and
    their bytes) made to count what the copy holds, so that it is whole."""
    with tarfile.open(str(source)) as original, tarfile.open(str(target), "w:gz") as copy:
        count = size = 0
        for member in original:
            if member.name in drop or member.name == END:
                continue
            data_ = original.extractfile(member).read() if member.isfile() else None
            if member.name in replace:
                data_ = replace[member.name]
                member.size = len(data_)
            copy.addfile(member, io.BytesIO(data_) if data_ is not None else None)
            if member.name != MANIFEST:
                count, size = count + 1, size + (len(data_) if data_ is not None else 0)
        end = tarfile.TarInfo(END)
        record = json.dumps({"files": count, "bytes": size}).encode()
        end.size = len(record)
        copy.addfile(end, io.BytesIO(record))
    return target
