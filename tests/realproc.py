"""Real processes for the live tests: C helpers and oddly named commands.

The helpers in tests/helpers/*.c are compiled with gcc on first use into
tests/helpers/bin/ (gitignored), statically where the C library allows it,
so that their memory maps hold no shared library whose Pss would move when
other processes start or exit: a helper that waits is then quiescent, and
two ps_mem runs over it print the same bytes.

Every process is started in a session of its own and recorded by a
`Processes` object, whose close() ends each one by its process group id
(first SIGTERM, which a helper answers by killing and reaping its children,
then SIGKILL) and reaps it; an atexit hook closes what a crashed test left.
Every process also dies with the test process (PR_SET_PDEATHSIG), so even
a killed test run leaves nothing behind.

    with Processes() as procs:
        helper = procs.helper("clone_vm", "3")  # helper.pids: parent first
        sleeper = procs.command(["sleep", "600"])
"""

import atexit
import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Sequence

import pytest

HELPERS = Path(__file__).resolve().parent / "helpers"
BIN = HELPERS / "bin"
SLEEP = shutil.which("sleep") or "/bin/sleep"


class Unavailable(pytest.skip.Exception):
    """A helper cannot be had here (no gcc, or it would not build): raised
    in a test or fixture, it skips it, with the message as the reason."""


# ----------------------------------------------------------------------------
# Building the helpers
# ----------------------------------------------------------------------------

_built = {}  # name -> path, so each helper is compiled at most once a session


def _compile(source: Path, target: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise Unavailable("gcc is not installed: cannot build the C helper %s" % source.name)
    BIN.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: a concurrent build or a reader
    # never sees a half-written executable.
    handle, partial = tempfile.mkstemp(dir=str(BIN), prefix="." + target.name)
    os.close(handle)
    errors = b""
    try:
        # A program static unless libc.a is missing; a library shared.
        variants = ([["-shared", "-fPIC", "-ldl"]] if target.suffix == ".so"
                    else [["-static"], []])
        for extra in variants:
            done = subprocess.run(
                [gcc, "-O2", "-Wall", "-Wextra", "-Werror", "-o", partial, str(source), *extra],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
            if done.returncode == 0:
                os.chmod(partial, 0o755)
                os.replace(partial, str(target))
                return
            errors += done.stdout
        raise Unavailable("gcc could not build %s:\n%s"
                          % (source.name, errors.decode("utf-8", "replace")))
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def build(name: str, library: bool = False) -> Path:
    """The path of helper NAME (with LIBRARY, the shared library NAME.so),
    compiled from tests/helpers/NAME.c if it is missing or older than its
    sources."""
    key = name + (".so" if library else "")
    if key in _built:
        return _built[key]
    source = HELPERS / (name + ".c")
    if not source.exists():
        raise ValueError("no helper %s" % source)
    target = BIN / key
    newest_source = max(path.stat().st_mtime for path in HELPERS.glob("*.[ch]"))
    if not target.exists() or target.stat().st_mtime < newest_source:
        _compile(source, target)
    _built[key] = target
    return target


# ----------------------------------------------------------------------------
# Watching a process settle
# ----------------------------------------------------------------------------


def _read(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def memory_text(pid: int) -> Optional[bytes]:
    """The memory file ps_mem would read for PID (None if gone)."""
    text = _read("/proc/%d/smaps_rollup" % pid)
    return text if text is not None else _read("/proc/%d/smaps" % pid)


def process_state(pid: int) -> Optional[str]:
    """The state letter of /proc/PID/stat (S, R, Z...), None if gone."""
    stat = _read("/proc/%d/stat" % pid)
    if stat is None:
        return None
    # The name in parentheses may hold anything, ")" included.
    return stat[stat.rindex(b")") + 2:][:1].decode("ascii", "replace")


def csv(pids: Sequence[int]) -> str:
    """PIDS as ps_mem's -p wants them."""
    return ",".join(str(pid) for pid in pids)


def children_of(pid: int) -> List[int]:
    """PID's children (OSError where the kernel has no children file, or
    PID is gone)."""
    with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
        return [int(word) for word in handle.read().split()]


def wait_settled(pids: Sequence[int], timeout: float = 60.0) -> None:
    """Wait until every pid sleeps and its memory file reads the same twice
    in a row: a process that has just exec'd still maps and touches pages."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        states = [process_state(pid) for pid in pids]
        if None in states:
            raise RuntimeError("a process exited while settling: %s" % list(pids))
        current = [memory_text(pid) for pid in pids]
        if all(state == "S" for state in states) and current == previous:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("processes %s did not settle in %.0f s" % (list(pids), timeout))
        previous = current
        time.sleep(0.05)


def _wait_exec(pid: int, exe: str, timeout: float = 60.0) -> None:
    """Wait until PID runs EXE (it may still be a fork of ours, or setarch)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.readlink("/proc/%d/exe" % pid) == exe:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("process %d did not exec %r in %.0f s" % (pid, exe, timeout))
        time.sleep(0.01)


# ----------------------------------------------------------------------------
# Starting and stopping
# ----------------------------------------------------------------------------


class Running:
    """One started process (the leader of its own process group) and the
    pids it reported: the leader first, then its children."""

    def __init__(self, popen: subprocess.Popen, pids: List[int], polite: bool) -> None:
        self.popen = popen
        self.pids = pids
        self._polite = polite  # a helper: SIGTERM makes it reap its children

    @property
    def pid(self) -> int:
        return self.popen.pid

    def csv(self, pids: Optional[Sequence[int]] = None) -> str:
        """The pids (by default its own) as ps_mem's -p wants them."""
        return csv(self.pids if pids is None else pids)

    def request(self, sig: int = signal.SIGUSR1, timeout: float = 60.0) -> bytes:
        """Send a helper SIG (see the helper: setname renames itself on
        SIGUSR1) and return the line it prints once done."""
        os.kill(self.popen.pid, sig)
        return read_line(self.popen, timeout)

    def stop(self) -> None:
        if self.popen.returncode is None:
            if self._polite:
                self._signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=5)
            self._signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def _signal(self, sig: int) -> None:
        # The group is ours: the leader was started with a new session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)


def read_line(popen: subprocess.Popen, timeout: float) -> bytes:
    """The next line POPEN writes to its stdout (a pipe), within TIMEOUT
    seconds; RuntimeError if it says nothing or exits first."""
    line = b""
    deadline = time.monotonic() + timeout
    fd = popen.stdout.fileno()
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise RuntimeError("helper %s said nothing in %.0f s" % (popen.args, timeout))
        chunk = os.read(fd, 1)
        if not chunk:
            raise RuntimeError("helper %s exited (status %s) before it said anything"
                               % (popen.args, popen.wait()))
        line += chunk
    return line


def _die_with_parent():
    """A preexec_fn that makes the child (and what it execs: sleep keeps it)
    get SIGKILL when the test process dies, so that even a killed test run
    leaves no `sleep 600` behind; None where prctl cannot be had."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)

    return preexec


class Processes:
    """Starts processes and, on close(), ends every one of them."""

    def __init__(self) -> None:
        self._running: List[Running] = []
        self._temp_dirs: List[str] = []
        atexit.register(self.close)

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        while self._running:
            self._running.pop().stop()
        while self._temp_dirs:
            shutil.rmtree(self._temp_dirs.pop(), ignore_errors=True)

    def _popen(self, argv: Sequence, stdout=subprocess.DEVNULL,
               executable: Optional[bytes] = None) -> subprocess.Popen:
        return subprocess.Popen([os.fsencode(arg) for arg in argv], executable=executable,
                                stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent())

    def helper(self, name: str, *args: str, settle: bool = True, timeout: float = 60.0,
               file_name: Optional[bytes] = None) -> Running:
        """Start helper NAME with ARGS and wait for its "ready" line (and,
        with settle, for its processes to stop changing).  With FILE_NAME
        (any bytes but "/" and NUL), a copy of it under that name is run."""
        path = build(name) if file_name is None else self._copy(build(name), file_name)
        popen = self._popen([path, *args], stdout=subprocess.PIPE)
        running = Running(popen, [popen.pid], polite=True)
        self._running.append(running)
        words = read_line(popen, timeout).split()
        if not words or words[0] != b"ready" or int(words[1]) != popen.pid:
            raise RuntimeError("helper %s said %r" % (name, words))
        running.pids = [int(word) for word in words[1:]]
        if settle:
            wait_settled(running.pids, timeout)
        return running

    def command(self, argv: Sequence, exe: Optional[str] = None, settle: bool = True,
                timeout: float = 60.0, wait_exec: bool = True,
                executable: Optional[bytes] = None) -> Running:
        """Start ARGV (str or bytes items; EXECUTABLE, if given, is run with
        ARGV as its command line), wait until it runs EXE (by default
        argv[0] resolved, as /proc/PID/exe shows it) and, with settle, until
        it has stopped changing.  With neither wait, return at once (for a
        command that exits: it stays a zombie until stop())."""
        if exe is None:
            exe = os.path.realpath(shutil.which(argv[0]) or argv[0])
        popen = self._popen(argv, executable=executable)
        running = Running(popen, [popen.pid], polite=False)
        self._running.append(running)
        if wait_exec:
            _wait_exec(popen.pid, os.fsdecode(exe), timeout)
        if settle:
            wait_settled(running.pids, timeout)
        return running

    def sleep(self, seconds: int = 600) -> Running:
        """`sleep 600`: a dynamically linked process that does nothing."""
        return self.command([SLEEP, str(seconds)])

    def sleep_no_aslr(self, seconds: int = 600) -> Running:
        """`setarch -R sleep 600`: a sleep whose address space is laid out
        the same every time (ASLR off), so that several of them have
        identical maps."""
        setarch = shutil.which("setarch")
        if setarch is None:
            raise Unavailable("setarch (util-linux) is not installed")
        return self.command([setarch, "-R", SLEEP, str(seconds)],
                            exe=os.path.realpath(SLEEP))

    def no_aslr(self, argv: Sequence[str], processes: int = 1) -> List[int]:
        """ARGV under `setarch -R`; its pid and its children's, once there
        are PROCESSES in all and they have settled."""
        setarch = shutil.which("setarch")
        if setarch is None:
            raise Unavailable("setarch (util-linux) is not installed")
        exe = os.path.realpath(shutil.which(argv[0]) or argv[0])
        try:
            running = self.command([setarch, "-R", *argv], exe=exe, settle=False)
        except RuntimeError as error:
            raise Unavailable("setarch -R does not work here: %s" % error) from None
        deadline = time.monotonic() + 10
        while True:
            try:
                pids = [running.pid] + children_of(running.pid)
            except FileNotFoundError:
                raise Unavailable("no /proc/PID/task/PID/children (CONFIG_PROC_CHILDREN)") \
                    from None
            if len(pids) == processes:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("%s: %d processes, not %d" % (argv, len(pids), processes))
            time.sleep(0.02)
        wait_settled(pids)
        return pids

    def sleep_named(self, file_name: bytes, seconds: int = 600,
                    argv0: Optional[bytes] = None) -> Running:
        """A copy of sleep run from a temporary directory under FILE_NAME
        (any bytes but "/" and NUL: escape sequences, a newline, non-UTF-8),
        so that its exe link, command line and status Name hold them.
        ARGV0, if given, is its command line's first word instead of the
        path (as prelink leaves it: the real name, not the file run)."""
        path = self._copy(SLEEP, file_name)
        return self.command([path if argv0 is None else argv0, str(seconds).encode()],
                            exe=os.fsdecode(path), executable=path)

    def _copy(self, source: os.PathLike, file_name: bytes) -> bytes:
        """A copy of the executable SOURCE named FILE_NAME, in a temporary
        directory removed on close()."""
        if b"/" in file_name or b"\0" in file_name or not file_name:
            raise ValueError("not a file name: %r" % file_name)
        directory = tempfile.mkdtemp(prefix="ps_mem-live-")
        self._temp_dirs.append(directory)
        path = os.path.join(os.fsencode(directory), file_name)
        shutil.copy(source, path)
        os.chmod(path, 0o755)
        return path
