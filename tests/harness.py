"""Running ps_mem.py and the reference ps_mem 3.14 the same way.

ps_mem.py is run as a command (`python ps_mem.py --procfs TREE ARGS`), like a
user runs it.  The reference, ps-mem 3.14 from PyPI, is installed by
tests/run into .venv/reference (never into the repo) and run in a child
Python that points it at the same tree: its proc root at TREE, its own pid
at the pid TREE's `self` names, and its euid at 0.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import pytest

REPO = Path(__file__).resolve().parent.parent
OURS = REPO / "ps_mem.py"
REFERENCE_DIR = Path(os.environ.get("PS_MEM_REFERENCE", REPO / ".venv" / "reference"))

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


_LIVE_MARKS = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/smaps"),
                       reason="needs a Linux /proc with smaps"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read every process's memory"),
]


def live(function):
    """Mark a test that runs processes on this machine's /proc."""
    for mark in _LIVE_MARKS:
        function = mark(function)
    return function


def _run(cmd: Sequence[str], timeout: float, input: Optional[bytes] = None) -> Result:
    done = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout, env=child_env())
    return Result(done.stdout, done.stderr, done.returncode)


def run_ours(*args: str, procfs: Optional[os.PathLike] = None, timeout: float = 60) -> Result:
    """ps_mem.py with ARGS; with procfs, reading that tree."""
    cmd = [sys.executable, str(OURS)]
    if procfs is not None:
        cmd += ["--procfs", str(procfs)]
    return _run(cmd + list(args), timeout)


def tree_self_pid(tree: os.PathLike) -> str:
    try:
        return os.path.basename(os.readlink(os.path.join(tree, "self")))
    except OSError:
        return ""


def run_reference(*args: str, procfs: os.PathLike, timeout: float = 60) -> Result:
    """ps_mem 3.14 with ARGS, reading the tree PROCFS as its /proc."""
    if not (REFERENCE_DIR / "ps_mem.py").exists():
        raise RuntimeError("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)
    cmd = [sys.executable, "-c", _REFERENCE_RUNNER, str(REFERENCE_DIR),
           str(procfs), tree_self_pid(procfs)]
    return _run(cmd + list(args), timeout)
