"""The forker: a crowd of short-lived processes, for the stress tests.

    python tests/forker.py TARGET MIN_MS MAX_MS SEED SLEEP

(started by tests/churn.py's Churn, which reads its "ready PID" line and,
after SIGTERM, its "spawned ..." line).  It imports nothing of the tests,
so that each of its many children costs a fork and little else.

The forker keeps a crowd of short-lived processes appearing and exiting,
so that ps_mem reads processes that vanish, exec or rename themselves
between any two of its reads (the races that end 3.14 with a traceback
about one run in forty).  Each child does one of:

    sleep      sleeps a few milliseconds and exits
    rename     prctl(PR_SET_NAME) to "churn-N", sleeps, exits
    exec       execs `sleep 0.0N`: its exe, name and memory change at once
    spawn      posix_spawn of `sleep` by the forker: for a moment the child
               shares the forker's address space (CLONE_VM|CLONE_VFORK)
    orphan     forks a grandchild and exits at once: the grandchild is
               reparented (the forker is a child subreaper) while ps_mem
               may be looking up its parent
    memory     writes a few MiB, then sleeps and exits

The forker dies with whoever started it (PR_SET_PDEATHSIG), and on SIGTERM
kills and reaps its children before it exits; Churn then kills the whole
process group, so nothing is left behind.
"""

import contextlib
import json
import os
import random
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

KINDS = ("sleep", "rename", "exec", "spawn", "orphan", "memory")
SLEEP = "/bin/sleep"  # what exec and spawn run: argv[5]


def _child(kind: str, life: float, prctl) -> None:
    """The body of one churning child; never returns."""
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if kind == "rename":
            prctl(PR_SET_NAME, b"churn-%d" % (os.getpid() % 1000), 0, 0, 0)
        elif kind == "exec":
            os.execv(SLEEP, [SLEEP, "%.3f" % life])
        elif kind == "orphan":
            if os.fork() == 0:
                time.sleep(life)
            os._exit(0)
        elif kind == "memory":
            block = bytearray(random.randint(1, 6) << 20)
            block[::4096] = b"\x01" * len(block[::4096])
        time.sleep(life)
    finally:
        os._exit(0)


def forker_main(target: int, min_ms: int, max_ms: int, seed: int) -> int:
    """Keep about TARGET children alive, each living MIN_MS to MAX_MS."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getppid()
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        return 1
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    random.seed(seed)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    children = set()
    spawned = dict.fromkeys(KINDS, 0)
    started = time.monotonic()
    sys.stdout.write("ready %d\n" % os.getpid())
    sys.stdout.flush()
    while not stopping:
        # Reap everything that ended: children, and orphans handed to us.
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
        while len(children) < target and not stopping:
            kind = random.choice(KINDS)
            life = random.uniform(min_ms, max_ms) / 1000
            if kind == "spawn":
                pid = os.posix_spawn(SLEEP, [SLEEP, "%.3f" % life], os.environ)
            else:
                pid = os.fork()
                if pid == 0:
                    _child(kind, life, prctl)
            children.add(pid)
            spawned[kind] += 1
        time.sleep(0.002)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.01)
    sys.stdout.write("spawned %s in %.2f s\n"
                     % (json.dumps(spawned), time.monotonic() - started))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    SLEEP = sys.argv[5]
    sys.exit(forker_main(*(int(arg) for arg in sys.argv[1:5])))
