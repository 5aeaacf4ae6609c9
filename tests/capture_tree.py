"""Snapshot real /proc entries into a fixture tree that ps_mem can read.

    python tests/capture_tree.py [--self PID] [--without FILE]... DEST PID...

For each PID, DEST/PID gets the files ps_mem reads, copied byte for byte
(cmdline, status, statm, smaps, smaps_rollup: whichever the kernel has)
and `exe` as a symlink with the live link's target (it need not exist
here: ps_mem only reads the link).  DEST also gets sys/kernel/osrelease,
meminfo, and `self`, a symlink naming the pid ps_mem takes for itself: it
is left out of the report, and its smaps is the probe for the accuracy
warnings.  By default that is a `sleep` started for the purpose and
captured with the others; --self PID names one of the PIDs instead.

--without FILE leaves FILE out of every pid's directory, e.g.
`--without smaps_rollup` for what a kernel before 4.14 shows.

Run it as root, or the memory files of other users' processes are
unreadable.  The captured processes are best quiescent (sleeping), so
that processes sharing an address space show the same text.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from typing import List, Optional, Sequence

PER_PID_FILES = ("cmdline", "status", "statm", "smaps", "smaps_rollup")
GLOBAL_FILES = ("sys/kernel/osrelease", "meminfo")


def _copy_bytes(source: str, dest: str) -> bool:
    """Copy SOURCE to DEST as bytes; False when SOURCE does not exist.
    (shutil.copyfile would stop at the size stat reports, 0 in /proc.)"""
    try:
        with open(source, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return False
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as handle:
        handle.write(data)
    return True


def capture_pid(proc: str, dest: str, pid: int, without: Sequence[str] = ()) -> None:
    source_dir = os.path.join(proc, str(pid))
    dest_dir = os.path.join(dest, str(pid))
    if not os.path.isdir(source_dir):
        raise SystemExit("capture_tree: no process %d" % pid)
    os.makedirs(dest_dir)
    for name in PER_PID_FILES:
        if name not in without:
            _copy_bytes(os.path.join(source_dir, name), os.path.join(dest_dir, name))
    # Bytes, so that a target that is not UTF-8 is kept as it is.
    target = os.readlink(os.fsencode(os.path.join(source_dir, "exe")))
    os.symlink(target, os.fsencode(os.path.join(dest_dir, "exe")))


def capture(dest: str, pids: Sequence[int], self_pid: int, without: Sequence[str] = (),
            proc: str = "/proc") -> None:
    if os.path.exists(dest) and os.listdir(dest):
        raise SystemExit("capture_tree: %s exists and is not empty" % dest)
    os.makedirs(dest, exist_ok=True)
    for name in GLOBAL_FILES:
        if not _copy_bytes(os.path.join(proc, name), os.path.join(dest, name)):
            raise SystemExit("capture_tree: %s/%s is missing" % (proc, name))
    for pid in pids:
        capture_pid(proc, dest, pid, without)
    os.symlink(str(self_pid), os.path.join(dest, "self"))


def _start_probe() -> subprocess.Popen:
    sleep = shutil.which("sleep") or "/bin/sleep"
    probe = subprocess.Popen([sleep, "600"], stdin=subprocess.DEVNULL)
    exe = os.path.realpath(sleep)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if os.readlink("/proc/%d/exe" % probe.pid) == exe:
                time.sleep(0.2)  # let the loader finish mapping
                return probe
        except OSError:
            pass
        time.sleep(0.01)
    probe.kill()
    probe.wait()
    raise SystemExit("capture_tree: the probe sleep did not start")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="capture_tree", description="Snapshot /proc entries into a fixture tree.")
    parser.add_argument("--self", dest="self_pid", type=int,
                        help="a captured pid to name as ps_mem's own (default: a sleep "
                             "started and captured for the purpose)")
    parser.add_argument("--without", action="append", default=[], choices=PER_PID_FILES,
                        help="leave this per-pid file out (repeatable)")
    parser.add_argument("--proc", default="/proc", help=argparse.SUPPRESS)
    parser.add_argument("dest")
    parser.add_argument("pids", nargs="+", type=int)
    args = parser.parse_args(argv)

    pids = list(dict.fromkeys(args.pids))
    if args.self_pid is not None:
        if args.self_pid not in pids:
            pids.append(args.self_pid)
        capture(args.dest, pids, args.self_pid, args.without, args.proc)
        return 0
    probe = _start_probe()
    try:
        capture(args.dest, pids + [probe.pid], probe.pid, args.without, args.proc)
    finally:
        probe.kill()
        probe.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
