#!/usr/bin/env python3
"""A reproducible crowd of processes for benchmarking ps_mem.

    python3 bench/crowd.py 2000            # hold 2,000 processes until Ctrl-C

    with Crowd(1500, seed=1) as crowd:     # from Python
        ...
        crowd.grow(3000)                   # add processes incrementally

The crowd is made of tiny C processes (bench/crowd.c, compiled on demand
into bench/bin/ with gcc).  What it holds is a function of the seed and the
size alone, and a crowd grown to N holds the same processes as one started
at N (but for the children of the last member of each batch, which are cut
to make the count exact):

  * many distinct programs: each program is a hard link to the same binary
    under its own name in a temporary directory, so /proc/PID/exe (and so the
    program's row in ps_mem) differs; some names are longer than the 15
    characters the kernel keeps in `comm`.  Programs are reused by later
    members with a preference for popular ones, so a few programs have many
    processes and most have one or two;
  * every member touches a heap of 16 KiB to 512 KiB; a few touch a big one
    (8 to 64 MiB) within a total budget (--heap-budget, 1536 MiB by default);
  * some members fork children that share the heap copy-on-write; some of
    those rewrite part of it (private pages) and some rename themselves
    (`comm` unlike the exe name, which makes ps_mem look at the parent).

N counts members and forked children; each batch also has one launcher
process (the parent and reaper of the batch).  Every batch runs in its own
session and process group and is torn down completely on close(), on leaving
the `with` block, on Ctrl-C and on SIGTERM; its processes also get SIGKILL
if the driver dies without cleaning up.
"""

import argparse
import contextlib
import math
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, Iterator, List, NamedTuple, Optional

BENCH = os.path.dirname(os.path.abspath(__file__))

SMALL_HEAP_KIB = (16, 512)
BIG_HEAP_KIB = (8 * 1024, 64 * 1024)
BIG_HEAP_SHARE = 0.03  # of members
KIDS_SHARE = 0.15  # of members with small heaps have children; big ones: 0.6
NEW_PROGRAM_SHARE = 0.35  # of members start a new program

# Words of program names; none is alone the name of a common command, so no
# crowd program shares a row with a real one.
_WORDS = (
    "agent", "audit", "backup", "bridge", "broker", "cache", "cargobay", "chrono", "cluster",
    "collector", "compose", "cronjob", "daemon", "dispatch", "dns", "edge", "event", "exporter",
    "fetch", "flux", "gateway", "gossip", "guard", "hub", "index", "ingest", "journal", "kafka",
    "keeper", "ledger", "lens", "logship", "mailer", "media", "mesh", "meter", "mirror",
    "monitor", "notify", "pager", "pipe", "poller", "portal", "probe", "proxy", "pulse",
    "queue", "relay", "render", "replica", "router", "runner", "scan", "sched", "search",
    "shard", "shellbox", "sentry", "signal", "sink", "spool", "stash", "store", "stream",
    "syncer", "tailer", "task", "tick", "trace", "tunnel", "vault", "watcher", "web", "worker"
)
_KID_NAMES = ("worker", "Web Content", "helper", "pool-0", "io thread", "gc", "child")


class Member(NamedTuple):
    """One process the launcher starts, and the children it forks."""

    index: int
    program: str
    heap_kib: int
    kids: int
    kid_write_kib: int
    kid_comm: str  # "-": keep the name; "+" stands for a space


def _log_uniform(rng: random.Random, low: int, high: int) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _program_name(rng: random.Random, taken: set) -> str:
    words = rng.sample(_WORDS, rng.choice((1, 2, 2, 3)))
    name = "-".join(words)
    if rng.random() < 0.3:
        name += "d"
    if rng.random() < 0.2:
        name += "-" + str(rng.randrange(2, 30))
    base, suffix = name, 2
    while name in taken:
        name = "%s%d" % (base, suffix)
        suffix += 1
    taken.add(name)
    return name


def plan(seed: int, heap_budget_mib: int) -> Iterator[Member]:
    """The endless, reproducible sequence of crowd members for a seed.

    Sequential, so the first k members never depend on how many follow.
    """
    rng = random.Random(seed)
    budget_kib = heap_budget_mib * 1024
    programs: List[str] = []
    by_member: List[str] = []  # program of each member: popular ones recur
    taken: set = set()
    index = 0
    while True:
        if not programs or rng.random() < NEW_PROGRAM_SHARE:
            program = _program_name(rng, taken)
            programs.append(program)
        else:
            program = rng.choice(by_member)
        by_member.append(program)

        big = rng.random() < BIG_HEAP_SHARE
        heap_kib = _log_uniform(rng, *(BIG_HEAP_KIB if big else SMALL_HEAP_KIB))
        kids = 0
        if rng.random() < (0.6 if big else KIDS_SHARE):
            kids = rng.choice((1, 1, 2, 3, 4))
        kid_write_kib = 0
        if kids and rng.random() < 0.5:
            kid_write_kib = heap_kib * rng.choice((1, 2, 4)) // 16
        cost = heap_kib + kids * kid_write_kib
        if big and cost > budget_kib:  # over budget: fall back to a small heap
            heap_kib = _log_uniform(rng, *SMALL_HEAP_KIB)
            kid_write_kib = min(kid_write_kib, heap_kib // 4)
            cost = heap_kib + kids * kid_write_kib
        if big:
            budget_kib -= cost
        kid_comm = "-"
        if kids and rng.random() < 0.4:
            kid_comm = rng.choice(_KID_NAMES).replace(" ", "+")  # crowd.c: "+" is " "
        yield Member(index, program, heap_kib, kids, kid_write_kib, kid_comm)
        index += 1


def build_binary(name: str = "crowd") -> str:
    """bench/bin/NAME, compiled from bench/NAME.c if missing or older."""
    source = os.path.join(BENCH, name + ".c")
    binary = os.path.join(BENCH, "bin", name)
    if os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(source):
        return binary
    os.makedirs(os.path.dirname(binary), exist_ok=True)
    tmp = "%s.%d.tmp" % (binary, os.getpid())
    cc = os.environ.get("CC", "gcc")
    try:
        subprocess.run([cc, "-O2", "-Wall", "-o", tmp, source], check=True)
        os.replace(tmp, binary)  # atomic: concurrent builders are harmless
    except (OSError, subprocess.CalledProcessError) as error:
        raise RuntimeError("cannot compile %s with %s: %s" % (source, cc, error)) from error
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return binary


class _Batch:
    """One launcher and the members it started."""

    def __init__(self, launcher: "subprocess.Popen", stderr_path: str) -> None:
        self.launcher = launcher
        self.stderr_path = stderr_path

    def error_text(self) -> str:
        try:
            with open(self.stderr_path, errors="replace") as handle:
                return handle.read().strip()
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> None:
        pgid = self.launcher.pid  # leader of its own session and group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        # Wait for the launcher to reap the batch and exit, but leave it a
        # zombie: while it is one its pid, the group id, cannot be reused,
        # so the SIGKILL below cannot reach anybody else.
        deadline = time.monotonic() + grace
        while self.launcher.returncode is None and time.monotonic() < deadline:
            try:
                info = os.waitid(os.P_PID, pgid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                break
            if info is not None:
                break
            time.sleep(0.01)
        # Whatever is left (normally nothing: the launcher reaps the batch).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        self.launcher.wait()


class Crowd:
    """A crowd of `size` processes; see the module docstring."""

    def __init__(
        self,
        size: int = 0,
        seed: int = 1,
        heap_budget_mib: int = 1536,
        workdir: Optional[str] = None,
        ready_timeout: float = 120.0,
    ) -> None:
        self.seed = seed
        self.heap_budget_mib = heap_budget_mib
        self._initial = size
        self._parent_workdir = workdir
        self.ready_timeout = ready_timeout
        self.workdir: Optional[str] = None
        self.members: List[Member] = []
        self.member_pids: Dict[int, int] = {}  # member index -> pid
        self.kid_pids: Dict[int, List[int]] = {}  # member index -> children's pids
        self._plan = plan(seed, heap_budget_mib)
        self._batches: List[_Batch] = []
        self._programs: set = set()

    # -- the crowd -------------------------------------------------------

    @property
    def size(self) -> int:
        return len(self.member_pids) + sum(len(kids) for kids in self.kid_pids.values())

    @property
    def pids(self) -> List[int]:
        """Every crowd pid (members and children, not launchers), by member."""
        result = []
        for member in self.members:
            result.append(self.member_pids[member.index])
            result.extend(self.kid_pids.get(member.index, ()))
        return result

    @property
    def launcher_pids(self) -> List[int]:
        return [batch.launcher.pid for batch in self._batches]

    @property
    def pids_file(self) -> str:
        return os.path.join(self._require_workdir(), "pids")

    @property
    def programs(self) -> int:
        return len({member.program for member in self.members})

    def heap_mib(self) -> float:
        """Memory the crowd's heaps touch (not counting program baselines)."""
        kib = sum(m.heap_kib + m.kids * m.kid_write_kib for m in self.members)
        return kib / 1024.0

    # -- lifecycle -------------------------------------------------------

    def __enter__(self) -> "Crowd":
        try:
            self.grow(self._initial)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def grow(self, size: int) -> None:
        """Start processes until the crowd holds `size` (never shrinks)."""
        if size <= self.size:
            return
        batch_members = []
        count = self.size
        while count < size:
            member = next(self._plan)
            room = size - count - 1
            if member.kids > room:  # the crowd holds exactly `size`
                member = member._replace(kids=room)
            batch_members.append(member)
            count += 1 + member.kids
        self._launch(batch_members)

    def close(self) -> None:
        """Tear down every batch and remove the temporary directory.

        The crowd can grow again afterwards, from the start of its plan."""
        errors = []
        while self._batches:
            batch = self._batches.pop()
            try:
                batch.stop()
            except BaseException as error:  # keep going: leave nothing behind
                errors.append(error)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
            self._programs = set()
        self.members = []
        self.member_pids = {}
        self.kid_pids = {}
        self._plan = plan(self.seed, self.heap_budget_mib)  # grow() starts over
        if errors:
            raise errors[0]

    # -- internals -------------------------------------------------------

    def _require_workdir(self) -> str:
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="ps_mem-crowd-", dir=self._parent_workdir)
            os.mkdir(os.path.join(self.workdir, "bin"))
        return self.workdir

    def _launcher_path(self) -> str:
        """The copy of bench/bin/crowd that every program name links to."""
        path = os.path.join(self._require_workdir(), "bin", "crowd-launcher")
        if not os.path.exists(path):
            shutil.copy2(build_binary(), path)
        return path

    def _program_path(self, program: str) -> str:
        path = os.path.join(self._require_workdir(), "bin", program)
        if program not in self._programs:
            os.link(self._launcher_path(), path)
            self._programs.add(program)
        return path

    def _launch(self, batch_members: List[Member]) -> None:
        workdir = self._require_workdir()
        number = len(self._batches)
        spec_path = os.path.join(workdir, "spec.%d" % number)
        with open(spec_path, "w") as spec:
            for m in batch_members:
                spec.write(
                    "%d %s %d %d %d %s\n"
                    % (
                        m.index,
                        self._program_path(m.program),
                        m.heap_kib,
                        m.kids,
                        m.kid_write_kib,
                        m.kid_comm,
                    )
                )
        expected = sum(1 + m.kids for m in batch_members)
        stderr_path = os.path.join(workdir, "launcher.%d.err" % number)
        read_fd, write_fd = os.pipe()
        try:
            with open(spec_path) as spec, open(stderr_path, "w") as err:
                launcher = subprocess.Popen(
                    [self._launcher_path(), "launch", str(write_fd)],
                    stdin=spec,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            batch = _Batch(launcher, stderr_path)
            self._batches.append(batch)
            os.close(write_fd)
            write_fd = -1
            self.members.extend(batch_members)
            self._collect(read_fd, expected, batch)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
        with open(self.pids_file, "w") as handle:
            handle.write("".join("%d\n" % pid for pid in self.pids))

    def _collect(self, read_fd: int, expected: int, batch: _Batch) -> None:
        deadline = time.monotonic() + self.ready_timeout + 0.02 * expected
        buffered = b""
        seen = 0
        while seen < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    "crowd: only %d of %d processes ready in time" % (seen, expected)
                )
            ready, _, _ = select.select([read_fd], [], [], min(remaining, 0.5))
            if not ready:
                if batch.launcher.poll() is not None:
                    raise RuntimeError(
                        "crowd: launcher exited (%s) with %d of %d processes ready: %s"
                        % (batch.launcher.returncode, seen, expected, batch.error_text())
                    )
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                raise RuntimeError(
                    "crowd: ready pipe closed with %d of %d processes ready: %s"
                    % (seen, expected, batch.error_text())
                )
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            for line in lines:
                role, index, pid = line.split()
                if role == b"m":
                    self.member_pids[int(index)] = int(pid)
                else:
                    self.kid_pids.setdefault(int(index), []).append(int(pid))
                seen += 1


def count_processes() -> int:
    """Entries a ps_mem run iterates over: every pid in /proc."""
    return sum(1 for entry in os.listdir("/proc") if entry.isdigit())


def mem_available_mib() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def raise_on_sigterm() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit, so `finally` blocks (and
    with that the crowd's teardown) run."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Start a reproducible crowd of N processes and hold it until Ctrl-C."
    )
    parser.add_argument("n", type=int, help="number of processes (members and their children)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--heap-budget", type=int, default=1536, metavar="MIB",
                        help="total memory of the big heaps (default 1536)")
    args = parser.parse_args(argv)
    raise_on_sigterm()
    available = mem_available_mib()
    started = time.monotonic()
    try:
        with Crowd(args.n, seed=args.seed, heap_budget_mib=args.heap_budget) as crowd:
            elapsed = time.monotonic() - started
            print(
                "crowd: %d processes (%d programs, %d launcher(s)) ready in %.1f s, "
                "heaps %.0f MiB, MemAvailable down %.0f MiB"
                % (crowd.size, crowd.programs, len(crowd.launcher_pids), elapsed,
                   crowd.heap_mib(), available - mem_available_mib())
            )
            print("pids file: %s" % crowd.pids_file)
            print("Ctrl-C to tear down.")
            sys.stdout.flush()
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
