"""Closed pipes, Ctrl-C and SIGTERM: no traceback, and 3.14's exit statuses.

  * The reader goes away (`ps_mem | head -1`, or stdout closed from the
    start): exit 1, nothing on stderr, one-shot or -w.
  * Ctrl-C (SIGINT) in a one-shot run: killed by SIGINT (status -2 as
    Python reports it), nothing on stderr.
  * Ctrl-C during -w: the watch ends normally, exit 0, with the warnings.
  * SIGTERM during -w: killed by SIGTERM (-15); 3.14 has no handler.

Each case runs ps_mem.py and ps_mem 3.14 on the same fixture tree
(--procfs) and compares them.  To interrupt a run in the middle of a scan,
without timing, a process's files are FIFOs: each program blocks reading
the first one it opens until the test has delivered its signal.  One
SIGTERM case runs on the live /proc.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Sequence

import pytest

# The harness's way to run 3.14 on a tree (its proc root, pid and euid
# patched), here with Popen, since these runs are signalled midway.
from tests.harness import _REFERENCE_RUNNER, REFERENCE_DIR, tree_self_pid
from tests.procfs_builder import ProcTree, program_maps
from tests.realproc import Processes

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ps_mem  # noqa: E402

OURS = Path(ps_mem.__file__).resolve()
REFERENCE = REFERENCE_DIR / "ps_mem.py"
HEADER = b" Private  +   Shared  =  RAM used\tProgram\n\n"
# What a 2.6.18 kernel's smaps (no Pss) makes both programs say at the end.
WARNING = (b"Warning: Shared memory is slightly over-estimated by this system\n"
           b"for each program, so totals are not reported.\n")
BLOCKER = 7000  # the pid whose files are FIFOs

pytestmark = pytest.mark.skipif(not (REFERENCE_DIR / "ps_mem.py").exists(),
                                reason="ps_mem 3.14 is not installed: run tests/run")


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C.UTF-8")
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def command(program: str, tree: Optional[Path], args: Sequence[str]) -> List[str]:
    """ours or 3.14 ("reference") with ARGS, on TREE (None: the live /proc)."""
    if program == "ours":
        return [sys.executable, str(OURS)] + (["--procfs", str(tree)] if tree else []) + list(args)
    if tree is None:
        return [sys.executable, str(REFERENCE), *args]
    return [sys.executable, "-c", _REFERENCE_RUNNER, str(REFERENCE_DIR), str(tree),
            tree_self_pid(tree), *args]


class Outcome(NamedTuple):
    status: int
    stdout: bytes
    stderr: bytes


class Started:
    """A program running with its output in files (never blocking it)."""

    def __init__(self, argv: List[str], stdout=None) -> None:
        # Closed in finish(), which every test reaches.
        self.out = tempfile.TemporaryFile()  # noqa: SIM115
        self.err = tempfile.TemporaryFile()  # noqa: SIM115
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                      stdout=self.out if stdout is None else stdout,
                                      stderr=self.err, env=_env())

    def output(self) -> bytes:
        self.out.seek(0)
        return self.out.read()

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.output()):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("not seen in time; output so far %r" % self.output())
            time.sleep(0.01)

    def finish(self, timeout: float = 30) -> Outcome:
        try:
            status = self.popen.wait(timeout=timeout)
        finally:
            if self.popen.poll() is None:
                self.popen.kill()
                self.popen.wait()
        self.err.seek(0)
        outcome = Outcome(status, self.output(), self.err.read())
        self.out.close()
        self.err.close()
        return outcome


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
    """A tree where BLOCKER's statm and cmdline are FIFOs (3.14 reads
    cmdline first, ours statm), so a scan stops there until written to."""
    t = small_tree(tmp_path / "proc")
    t.add(BLOCKER, "rsync", "/usr/bin/rsync", maps=program_maps("/usr/bin/rsync", heap_kib=900))
    for name in ("statm", "cmdline"):
        path = t.root / str(BLOCKER) / name
        path.unlink()
        os.mkfifo(str(path))
    return t.root


class Blocked:
    """Hold a reader of the tree's FIFOs: open their write ends once a
    reader waits, and write nothing, so the reader's read() blocks."""

    def __init__(self, tree: Path) -> None:
        self.paths = [tree / str(BLOCKER) / name for name in ("statm", "cmdline")]
        self.fds: List[int] = []

    def wait(self, started: Started, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.fds:
            for path in self.paths:
                try:
                    self.fds.append(os.open(str(path), os.O_WRONLY | os.O_NONBLOCK))
                except OSError as error:
                    if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                        raise
            if started.popen.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the program never reached the FIFO")
            time.sleep(0.01)
        time.sleep(0.1)  # from open() into read()

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def both(run: Callable[[str], Outcome]) -> List[Outcome]:
    return [run("ours"), run("reference")]


def signalled_mid_scan(tree: Path, args: List[str], sig: int) -> List[Outcome]:
    """Both programs on TREE with ARGS, sent SIG while blocked mid-scan."""
    def run(program: str) -> Outcome:
        blocked = Blocked(tree)
        started = Started(command(program, tree, args))
        try:
            blocked.wait(started)
            started.popen.send_signal(sig)
            return started.finish()
        finally:
            blocked.close()

    return both(run)


# ----------------------------------------------------------------------------
# Ctrl-C
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, -signal.SIGINT),
                                         (signal.SIGTERM, -signal.SIGTERM)],
                         ids=["SIGINT", "SIGTERM"])
def test_one_shot_interrupted_mid_scan_dies_by_the_signal(blocking_tree, sig, status):
    ours, reference = signalled_mid_scan(blocking_tree, [], sig)
    assert ours == reference
    assert ours == (status, HEADER, b"")


def test_ctrl_c_during_a_watch_scan_ends_the_watch(blocking_tree):
    """Mid-scan, before any sample: exit 0, the header, the warnings."""
    ours, reference = signalled_mid_scan(blocking_tree, ["-w", "1"], signal.SIGINT)
    assert ours == reference == (0, HEADER, WARNING)


@pytest.mark.parametrize("args", [[], ["-t"], ["-d", "-S"]], ids=["table", "-t", "-d-S"])
def test_ctrl_c_while_a_watch_sleeps(quiet_tree, args):
    """After the first sample: exit 0, that sample, then the warnings
    (-t's say "Error:" and exit 1 without Pss, as 3.14)."""
    def run(program: str) -> Outcome:
        started = Started(command(program, quiet_tree, ["-w", "5", *args]))
        # The first sample is whole once bash, the largest, is printed (-t
        # prints nothing on this kernel: wait for the process to sleep).
        if "-t" in args:
            time.sleep(1.5)
        else:
            started.wait_for(lambda out: b"\tbash" in out)
        started.popen.send_signal(signal.SIGINT)
        return started.finish()

    ours, reference = both(run)
    assert ours == reference
    assert b"Error:" in ours.stderr if "-t" in args else ours.stderr.startswith(b"Warning:")
    assert ours.status == (1 if "-t" in args else 0)


def test_sigterm_while_a_watch_sleeps(quiet_tree):
    def run(program: str) -> Outcome:
        started = Started(command(program, quiet_tree, ["-w", "5"]))
        started.wait_for(lambda out: b"\tbash" in out)
        started.popen.send_signal(signal.SIGTERM)
        return started.finish()

    ours, reference = both(run)
    assert ours == reference
    assert ours.status == -signal.SIGTERM and ours.stderr == b""
    assert ours.stdout.startswith(HEADER) and ours.stdout.endswith(b"\tbash\n")


def test_sigterm_during_a_watch_scan(blocking_tree):
    ours, reference = signalled_mid_scan(blocking_tree, ["-w", "1"], signal.SIGTERM)
    assert ours == reference == (-signal.SIGTERM, HEADER, b"")


# ----------------------------------------------------------------------------
# The reader goes away
# ----------------------------------------------------------------------------


def _into_closed_pipe(argv: List[str]) -> Outcome:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=write_end,
                              stderr=subprocess.PIPE, timeout=60, env=_env())
    finally:
        os.close(write_end)
    return Outcome(done.returncode, b"", done.stderr)


@pytest.mark.parametrize("args", [[], ["-t"], ["-w", "1"], ["-w", "1", "-d", "-S"]],
                         ids=["one-shot", "-t", "-w", "-w-d-S"])
def test_stdout_closed_from_the_start(quiet_tree, args):
    ours, reference = both(lambda program: _into_closed_pipe(command(program, quiet_tree, args)))
    if "-t" in args and "-w" not in args:
        # 3.14's -t never writes (no total without Pss), so never sees the pipe.
        assert ours == reference and ours.status == 1 and b"Error:" in ours.stderr
        return
    assert ours == reference == (1, b"", b"")


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory) -> Path:
    """Enough output with -s (about 190 KiB) to fill a pipe several times."""
    t = ProcTree(tmp_path_factory.mktemp("big") / "proc", "6.1")
    for number in range(64):
        exe = "/usr/bin/worker%d" % number
        t.add(2000 + number, "worker%d" % number, exe, cmdline=[exe, "--job=" + "x" * 3000],
              maps=program_maps(exe, heap_kib=100 + number))
    return t.root


@pytest.mark.parametrize("args", [["-s"], ["-s", "-w", "1"]], ids=["one-shot", "-w"])
def test_head_takes_one_line(big_tree, args):
    """`ps_mem -s | head -1` with more output than a pipe holds: ps_mem
    meets the closed pipe while writing: exit 1, nothing on stderr."""
    head = shutil.which("head")
    if head is None:
        pytest.skip("no head")

    def run(program: str) -> Outcome:
        writer = subprocess.Popen(command(program, big_tree, args), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
        reader = subprocess.run([head, "-1"], stdin=writer.stdout, stdout=subprocess.PIPE,
                                timeout=60)
        writer.stdout.close()
        try:
            stderr = writer.communicate(timeout=60)[1]
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
        return Outcome(writer.returncode, reader.stdout, stderr)

    ours, reference = both(run)
    assert ours == (1, HEADER.split(b"\n")[0] + b"\n", b"")
    assert reference.status == 1 and b"Traceback" not in reference.stderr


def test_reader_leaves_while_a_watch_writes(quiet_tree):
    """-w 1: the reader takes the first line and closes; the next write
    (at the latest the next sample's) fails: exit 1, nothing on stderr."""
    def run(program: str) -> Outcome:
        child = subprocess.Popen(command(program, quiet_tree, ["-w", "1"]),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=_env())
        try:
            line = child.stdout.readline()
            child.stdout.close()
            status = child.wait(timeout=30)
            return Outcome(status, line, child.stderr.read())
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stderr.close()

    ours, reference = both(run)
    assert ours == reference == (1, HEADER.split(b"\n")[0] + b"\n", b"")


# ----------------------------------------------------------------------------
# Live
# ----------------------------------------------------------------------------


@pytest.mark.live
@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs a Linux /proc")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_sigterm_during_a_live_watch():
    with Processes() as procs:
        sleeper = procs.sleep()

        def run(program: str) -> Outcome:
            started = Started(command(program, None, ["-w", "1", "-p", str(sleeper.pid)]))
            started.wait_for(lambda out: out.count(b"=" * 33) >= 1)
            time.sleep(0.3)
            started.popen.send_signal(signal.SIGTERM)
            return started.finish()

        ours, reference = both(run)
    for outcome in (ours, reference):
        assert outcome.status == -signal.SIGTERM and outcome.stderr == b""
        assert outcome.stdout.startswith(HEADER) and b"\tsleep\n" in outcome.stdout
