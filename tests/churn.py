"""Process churn for stress tests, and the long stress run as a script.

Churn runs tests/forker.py, which keeps a crowd of short-lived processes
appearing and exiting (sleeping, renaming themselves, exec'ing, spawned
with CLONE_VM, orphaned, writing memory), so that ps_mem reads processes
that vanish, exec or rename themselves between any two of its reads (the
races that end 3.14 with a traceback about one run in forty).  The forker
dies with whoever started it, and on SIGTERM kills and reaps its children
before it exits; Churn then kills the whole process group, so nothing is
left behind.

judge() says whether one run's output is what the documentation promises;
stress_runs() makes many runs and tallies them.

As a script, the long stress run (`-m slow` runs a shorter one in pytest):

    python tests/churn.py [--runs N] [--reference] [--crowd N]

runs ps_mem.py N times (and 3.14 with --reference) over the option
combinations while the forker runs, and prints the failures and rates.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence

if __package__ in (None, ""):  # run as a script: the repo is not on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.harness import (  # noqa: E402
    FOOTER, FOOTER_SWAP, HEADERS, OURS, REFERENCE, ROW, Started,
)
from tests.realproc import SLEEP, children_of, read_line  # noqa: E402

FORKER = Path(__file__).resolve().parent / "forker.py"


# ----------------------------------------------------------------------------
# Running a forker from a test
# ----------------------------------------------------------------------------


class Churn:
    """A running forker:

        with Churn(target=100) as churn:
            churn.pids()   # its children now, and the pids likely to be next
    """

    def __init__(self, target: int = 100, min_ms: int = 10, max_ms: int = 250,
                 seed: int = 1) -> None:
        self.args = [str(target), str(min_ms), str(max_ms), str(seed)]
        self.popen: Optional[subprocess.Popen] = None
        self.spawned: Dict[str, int] = {}
        self.seconds = 0.0

    def __enter__(self) -> "Churn":
        self.popen = subprocess.Popen(
            [sys.executable, str(FORKER), *self.args, SLEEP],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
        try:
            line = read_line(self.popen, 10)
            if not line.startswith(b"ready "):
                raise RuntimeError("forker said %r" % line)
            # Let the crowd grow to its size.
            deadline = time.monotonic() + 5
            while len(self.children()) < int(self.args[0]) // 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("the forker made no crowd")
                time.sleep(0.02)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def children(self) -> List[int]:
        try:
            return children_of(self.pid)
        except OSError:
            return []

    def pids(self, ahead: int = 400) -> List[int]:
        """The forker's children now and the AHEAD pids after the highest
        of them: most of the processes it will start during a run, so that
        `-p` names processes that appear, as well as ones that vanish."""
        children = self.children()
        highest = max(children, default=self.pid)
        return sorted(set(children) | set(range(highest + 1, highest + 1 + ahead)))

    def stop(self) -> None:
        popen = self.popen
        if popen is None:
            return
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=10)
            line = b""
            with contextlib.suppress(RuntimeError):  # it died before it could say
                line = read_line(popen, 1)
            if line.startswith(b"spawned "):
                words = line.decode().split(" in ")
                self.spawned = json.loads(words[0][len("spawned "):])
                self.seconds = float(words[1].split()[0])
        # Whatever is left in the group (an orphan the forker had not reaped).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.stdout.close()
        self.popen = None

    def rate(self) -> str:
        total = sum(self.spawned.values())
        if not self.seconds:
            return "no churn figures"
        return "%d processes started in %.1f s (%.0f/s: %s)" % (
            total, self.seconds, total / self.seconds,
            ", ".join("%s %d" % item for item in self.spawned.items()))


# ----------------------------------------------------------------------------
# One run of ps_mem, judged
# ----------------------------------------------------------------------------

# The one warning ps_mem.py adds to 3.14's: a process it was denied (here:
# a sandbox's pid 1, unreadable even for root).
DENIED = re.compile(rb"Warning: \d+ process(?:es)? could not be read \(permission denied\); "
                    rb"their memory is not included\.\n")
# One sample of a table: rows, then its footer (none without Pss).
SAMPLE = re.compile("(?:%s)*(?:%s|%s)?" % (ROW.pattern, FOOTER, FOOTER_SWAP))
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def expected_status(args: Sequence[str]) -> int:
    """The exit status documented for ARGS on this kernel: 0, but for -t
    where the total printed is not a true one (no Pss; with -S no SwapPss)."""
    if "-t" not in args:
        return 0
    with open("/proc/self/smaps", "rb") as handle:
        smaps = handle.read()
    marker = b"SwapPss:" if "-S" in args else b"Pss:"
    return 0 if marker in smaps else 1


class Verdict(NamedTuple):
    ok: bool
    why: str  # "" when ok


def judge(args: Sequence[str], stdout: bytes, stderr: bytes, status: int,
          ours: bool = True, interrupted: bool = False) -> Verdict:
    """Whether a run's output is what the documentation promises.

    Status: expected_status(), or 0 for a watch ended with Ctrl-C.  stderr:
    nothing (3.14) or only the permission warning (ours), and never a
    traceback.  stdout: the layout of the options, whole lines only, and
    for ours no control character but the layout's tab and newlines."""
    want = 0 if interrupted else expected_status(args)
    if b"Traceback" in stderr:
        return Verdict(False, "traceback: " + stderr.decode("utf-8", "replace")
                       .strip().splitlines()[-1])
    if status != want:
        return Verdict(False, "status %d, not %d; stderr %r" % (status, want, stderr[-300:]))
    if ours:
        if re.sub(DENIED, b"", stderr):
            return Verdict(False, "stderr %r" % stderr[-300:])
    elif stderr:
        return Verdict(False, "stderr %r" % stderr[-300:])
    text = stdout.decode("utf-8", "replace")
    if ours and CONTROL.search(text.replace("\t", "").replace("\n", "")):
        return Verdict(False, "a control character in stdout")
    if "--json" in args:
        try:
            documents = [json.loads(line) for line in text.splitlines()]
        except ValueError as error:
            return Verdict(False, "not JSON: %s" % error)
        if not documents or any("programs" not in document for document in documents):
            return Verdict(False, "no JSON document")
        return Verdict(True, "")
    if "-t" in args:
        if not re.fullmatch(r"(?:\d+\n)*", text):
            return Verdict(False, "not a -t total: %r" % text[-200:])
        return Verdict(True, "")
    header = next((header for header in HEADERS if text.startswith(header)), None)
    if header is None:
        return Verdict(False, "no header: %r" % text[:200])
    body = text[len(header):]
    if not ours:
        return Verdict(True, "")  # 3.14 prints newlines in names raw
    # Samples, each of rows and a footer; a watch may be cut anywhere after
    # a whole line, or end with "Process does not exist anymore.".
    body = re.sub(r"Process does not exist anymore\.\n\Z", "", body)
    position = 0
    while position < len(body):
        match = SAMPLE.match(body, position)
        if not match or match.end() == position:
            return Verdict(False, "not a row or footer: %r" % body[position:position + 200])
        position = match.end()
    return Verdict(True, "")


# ----------------------------------------------------------------------------
# Runs as a user types them: a new process each
# ----------------------------------------------------------------------------

# 3.14's options, and the ones ps_mem.py added since.
OPTIONS_3_14: List[List[str]] = [[], ["-s"], ["-d"], ["-S"], ["-t"], ["-S", "-t"], ["-d", "-S"]]
OPTIONS_NEW: List[List[str]] = [["--json"], ["--group-by", "user"], ["--group-by", "cgroup"]]
WATCH = ["-w", "1"]
WATCH_SECONDS = 1.2


class Run(NamedTuple):
    args: List[str]
    stdout: bytes
    stderr: bytes
    status: int
    interrupted: bool


def run_command(script: Path, args: Sequence[str], timeout: float = 120) -> Run:
    """SCRIPT with ARGS; a watch (-w) gets SIGINT WATCH_SECONDS after its
    header appeared, as a user's Ctrl-C.  Output goes to files, which
    never block the writer (whole-system samples outgrow a pipe); a run
    that does not end fails with where it hung."""
    args = list(args)
    started = Started([sys.executable, str(script), *args])
    interrupted = False
    try:
        if "-w" in args:
            deadline = time.monotonic() + 30
            while not started.output() and started.popen.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError("no header from %s %s" % (script.name, args))
                time.sleep(0.01)
            try:
                started.popen.wait(timeout=WATCH_SECONDS)
            except subprocess.TimeoutExpired:
                started.popen.send_signal(signal.SIGINT)
                interrupted = True
    except BaseException:
        started.popen.kill()
        started.finish()
        raise
    result = started.finish(timeout)
    return Run(args, result.stdout, result.stderr, result.status, interrupted)


def frozen_copy(directory: str) -> Path:
    """A copy of ps_mem.py to run: a long stress run must not see the file
    half-written by an editor or a checkout (an empty ps_mem.py runs
    without a word and exits 0)."""
    copy = Path(directory) / "ps_mem.py"
    shutil.copyfile(str(OURS), str(copy))
    return copy


def option_sets(churn: Churn, ours: bool = True) -> List[List[str]]:
    """Every combination to try, whole system and churning pids, in the
    order runs cycle through them (a fresh -p list at each call)."""
    pids = ["-p", ",".join(map(str, churn.pids()))]
    combinations = OPTIONS_3_14 + (OPTIONS_NEW if ours else [])
    sets = []
    for options in combinations:
        sets.append(options + pids)
        sets.append(options)
    sets += [WATCH + pids, WATCH]
    return sets


class Tally:
    def __init__(self, name: str) -> None:
        self.name = name
        self.runs = 0
        self.failures: List[str] = []
        # Runs and failures over the whole system (no -p).
        self.whole_system = [0, 0]

    def add(self, args: Sequence[str], verdict: Verdict) -> None:
        self.runs += 1
        if "-p" not in args:
            self.whole_system[0] += 1
            self.whole_system[1] += not verdict.ok
        if not verdict.ok:
            shown = [arg if len(arg) < 40 else arg[:20] + "..." for arg in args]
            self.failures.append("%s: %s" % (" ".join(shown) or "(no options)", verdict.why))

    def summary(self) -> str:
        rate = len(self.failures) / self.runs if self.runs else 0.0
        text = "%s: %d runs, %d failed (%.1f%%, 1 in %s); over the whole system %d of %d" % (
            self.name, self.runs, len(self.failures), 100 * rate,
            "%.0f" % (1 / rate) if rate else "none", self.whole_system[1], self.whole_system[0])
        kinds: Dict[str, int] = {}
        for failure in self.failures:
            why = re.sub(r"/proc/\d+/", "/proc/PID/", failure.split(": ", 1)[1])
            kinds[why] = kinds.get(why, 0) + 1
        for why, count in sorted(kinds.items(), key=lambda item: -item[1])[:8]:
            text += "\n    %4d x %s" % (count, why[:160])
        return text


def stress_runs(churn: Churn, runs: int, script: Path, name: str, ours: bool = True,
           whole_system_every: int = 1) -> Tally:
    """RUNS runs of SCRIPT cycling through option_sets(); a whole-system run
    only every WHOLE_SYSTEM_EVERY cycles (they cost far more on a busy
    machine)."""
    tally = Tally(name)
    cycle = 0
    while tally.runs < runs:
        for args in option_sets(churn, ours):
            if "-p" not in args and cycle % whole_system_every:
                continue
            run = run_command(script, args)
            tally.add(args, judge(args, run.stdout, run.stderr, run.status, ours,
                                  run.interrupted))
            if tally.runs >= runs:
                break
        cycle += 1
    return tally


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="churn", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400, help="runs of each program")
    parser.add_argument("--reference", action="store_true", help="run ps_mem 3.14 too")
    parser.add_argument("--crowd", type=int, default=100, help="children kept alive")
    parser.add_argument("--whole-system-every", type=int, default=1)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("run as root: ps_mem reads every process's memory")
    tallies = []
    with Churn(target=args.crowd) as churn, tempfile.TemporaryDirectory() as directory:
        tallies.append(stress_runs(churn, args.runs, frozen_copy(directory), "ps_mem.py", True,
                              args.whole_system_every))
        print(tallies[-1].summary(), flush=True)
        if args.reference:
            tallies.append(stress_runs(churn, args.runs, REFERENCE, "ps_mem 3.14", False,
                                  args.whole_system_every))
            print(tallies[-1].summary(), flush=True)
    print("churn:", churn.rate())
    return 1 if tallies[0].failures else 0


if __name__ == "__main__":
    sys.exit(main())
