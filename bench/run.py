#!/usr/bin/env python3
"""Benchmark ps_mem.py against ps_mem 3.14 and the kernel floor.

    python3 bench/run.py                      # the full run (as root)
    python3 bench/run.py --procs 1000 --rounds 3 --scaling 500,1000,2000

Starts a reproducible crowd of processes (bench/crowd.py), then:

  1. one-shot: `ps_mem.py`, ps_mem 3.14 and bench/floor.py, each run as a
     fresh interpreter (the same one for all), interleaved round by round;
     wall time, CPU time and peak RSS of each run; ratios taken per round;
  2. identical output: both tools with -p on a fixed set of crowd pids
     (which cannot change between the two runs) and a few options;
  3. watch: `-w 1` for 6 s each, stopped by SIGINT, CPU time compared;
  4. -p with 3 crowd pids: wall time, and with strace (if installed) which
     /proc/PID paths each tool touches;
  5. scaling: the one-shot measures at growing crowd sizes, with a linear
     fit of time and peak memory against the number of processes;
  6. forked readers: ours as it runs against ours forced to one reader,
     on an idle machine and with every CPU already busy;
  7. views: each view added since 3.14 against the default report;
  8. memory per mapping: `--group-by mapping` against `smem2 -m` (PyPI,
     installed into a venv of its own, or --smem2 PATH) and the bare read
     of every full smaps, with one process of many mappings added.
  9. --diff and --delta: --diff of two captures of the crowd against
     reading one, and `-w 1 --delta` against `-w 1`, CPU over the same time.

The report goes to stdout as plain text; progress goes to stderr.
See bench/README.md for what each figure means.
"""

import argparse
import atexit
import datetime
import difflib
import hashlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)

from crowd import (  # noqa: E402
    Crowd,
    build_binary,
    count_processes,
    mem_available_mib,
    raise_on_sigterm,
)

OURS = "ps_mem.py"
REF = "ps_mem 3.14"
FLOOR = "floor"
ONE_READER = "one reader"
# Section 8.
BY_MAPPING = "ours --group-by mapping"
SMEM2 = "smem2 -m"
FLOOR_SMAPS = "floor (smaps)"

# The views since 3.14, each timed against the default report (section 7):
# (label, arguments, the most its wall time may be of the default's).
VIEWS: List[Tuple[str, List[str], Optional[float]]] = [
    ("--json", ["--json"], None),
    # Reads every full smaps by design, where the default reads rollups:
    # no target against the default (section 8 sets it beside its floor).
    ("--group-by mapping", ["--group-by", "mapping"], None),
    ("--system", ["--system"], 1.10),
    # Issue 13: naming by application reads an interpreter's command line
    # and, for a worker, its parent's.
    ("--group-by app", ["--group-by", "app"], 1.10),
    ("--prometheus", ["--prometheus"], 1.10),
]

# Targets from the issue: (what, limit).
TARGET_WALL_VS_REF = 0.60
TARGET_WALL_VS_FLOOR = 1.25
TARGET_WATCH_CPU_VS_REF = 0.50
TARGET_RSS_VS_REF = 1.00
TARGET_DIFF_VS_ONE_CAPTURE = 2.00  # reading two captures, at most twice one
TARGET_DELTA_WATCH_CPU = 1.10  # a watch with --delta, at most 10% more CPU


class Run(NamedTuple):
    wall: float  # seconds, from fork to wait4's return
    cpu: float  # seconds, user + system, from wait4's rusage
    maxrss_kib: int  # peak RSS, from wait4's rusage (ru_maxrss)
    status: int  # exit code, or -signal
    stdout: bytes
    stderr: bytes


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_once(argv: Sequence[str], interrupt_after: float = 0.0, timeout: float = 600.0) -> Run:
    """Run argv as a fresh process, stdout and stderr to temporary files.

    The command is started and waited for by bench/bin/measure (see
    measure.c for why not by Python): wall time around its whole life, CPU
    time and peak RSS from wait4().  With interrupt_after, it gets SIGINT
    that many seconds after the start (the way a watch is stopped).
    """
    helper = build_binary("measure")
    read_fd, write_fd = os.pipe()
    try:
        with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
            child = subprocess.Popen(
                [helper, str(write_fd), repr(float(interrupt_after)), "--"] + list(argv),
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, pass_fds=(write_fd,))
            os.close(write_fd)
            write_fd = -1
            try:
                child.wait(timeout=timeout + interrupt_after + 15)
            except BaseException:
                child.kill()  # and with it the command (PR_SET_PDEATHSIG)
                child.wait()
                raise
            report = os.read(read_fd, 4096).split()
            stdout.seek(0)
            stderr.seek(0)
            captured_out, captured_err = stdout.read(), stderr.read()
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    if child.returncode != 0 or len(report) != 5:
        raise RuntimeError("measure failed (%s) for %s: %s" % (
            child.returncode, " ".join(argv), captured_err.decode("utf-8", "replace")))
    status, wall_ns, utime_us, stime_us, maxrss = map(int, report)
    return Run(wall_ns / 1e9, (utime_us + stime_us) / 1e6, maxrss, status,
               captured_out, captured_err)


# ----------------------------------------------------------------------------
# Statistics and formatting
# ----------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], scale: float = 1.0, fmt: str = "%.1f") -> str:
    """median [min..max]"""
    if not values:
        return "n/a"
    return (fmt + " [" + fmt + ".." + fmt + "]") % (
        median(values) * scale, min(values) * scale, max(values) * scale)


def verdict(value: float, limit: float) -> str:
    if value != value:  # nan
        return "n/a"
    return "PASS" if value <= limit else "FAIL"


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> Tuple[float, float, float]:
    """Least squares y = a + b x: (a, b, r squared)."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    syy = sum((y - mean_y) ** 2 for y in ys)
    slope = sxy / sxx if sxx else float("nan")
    intercept = mean_y - slope * mean_x
    r2 = (sxy * sxy / (sxx * syy)) if sxx and syy else float("nan")
    return intercept, slope, r2


def table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [header, ["-" * width for width in widths]] + [list(row) for row in rows]
    for row in lines:
        cells = [str(cell).rjust(width) if index else str(cell).ljust(width)
                 for index, (cell, width) in enumerate(zip(row, widths))]
        out((indent + "  ".join(cells)).rstrip())


def last_lines(data: bytes, count: int = 5) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return "\n".join("      " + line for line in lines[-count:])


# ----------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        python = [args.python] + (["-S"] if args.no_site else [])
        if args.as_scripts:
            # Each file compiled from source at every start, as
            # `python3 ps_mem.py` from a clone runs it.
            ours, ref = python + [args.ours], python + [args.reference]
        else:
            # As installed (pip, a distribution package): the console
            # script imports the module from its bytecode cache.
            ours = installed(python, args.ours, "_entry_point")
            ref = installed(python, args.reference, "main")
        self.commands: Dict[str, List[str]] = {
            OURS: ours,
            REF: ref,
            FLOOR: python + [os.path.join(BENCH, "floor.py")],
            # Ours with reader_count() answering 1: the same code, no forks.
            ONE_READER: installed(python, args.ours, "_entry_point",
                                  "ps_mem.reader_count = lambda *args, **named: 1"),
        }
        self.failures: List[str] = []
        self.load_at_start = os.getloadavg()

    # -- interleaved rounds ----------------------------------------------

    def rounds(self, names: Sequence[str], rounds: int, warmup: int,
               extra: Sequence[str] = (), label: str = "") -> List[Dict[str, Run]]:
        """Run each tool once per round, order rotating from round to round
        (A B C, B C A, C A B, ...) so no tool always goes first.  A round in
        which a run failed is left out and replaced, up to 3 times."""
        results: List[Dict[str, Run]] = []
        spare = 3
        index = 0
        while len(results) < rounds:
            shift = index % len(names)
            order = list(names[shift:]) + list(names[:shift])
            runs = {name: run_once(self.commands[name] + list(extra)) for name in order}
            failed = [name for name in order if runs[name].status != 0]
            tag = "warm-up" if index < warmup else "round %d" % (index - warmup + 1)
            log("  %s %s: %s%s" % (
                label, tag,
                "  ".join("%s %.0f ms" % (name, runs[name].wall * 1000) for name in names),
                ("  FAILED: " + ", ".join(failed)) if failed else ""))
            index += 1
            if failed:
                for name in failed:
                    self.failures.append("%s %s exited %d:\n%s" % (
                        label, name, runs[name].status, last_lines(runs[name].stderr)))
                if spare == 0:
                    break
                spare -= 1
                continue
            if index > warmup:
                results.append(runs)
        return results

    # -- sections ----------------------------------------------------------

    def header(self, crowd: Crowd, available_before: float) -> None:
        args = self.args
        out("ps_mem benchmark, %s" % datetime.datetime.now().astimezone().strftime(
            "%Y-%m-%d %H:%M %Z"))
        out()
        out("machine   %d CPUs (%s), %.1f GiB RAM, Linux %s %s" % (
            os.cpu_count() or 0, cpu_model(), mem_total_gib(), platform.release(),
            platform.machine()))
        self.load_at_start = os.getloadavg()
        out("load      %.2f %.2f %.2f (1, 5, 15 min, at start)" % self.load_at_start)
        out("python    %s %s%s, the same for every run" % (
            args.python, python_version(args.python), " -S" if args.no_site else ""))
        bare = [run_once([args.python, "-c", "pass"]).wall for _ in range(5)]
        no_site = [run_once([args.python, "-S", "-c", "pass"]).wall for _ in range(5)]
        out("startup   %.1f ms for `python -c pass`, %.1f ms with -S (no site: .pth files and "
            "site-packages)%s" % (median(bare) * 1000, median(no_site) * 1000,
                                  "; runs use -S" if args.no_site else ""))
        out("ours      %s (%s)" % (os.path.relpath(args.ours, ROOT), describe_file(args.ours)))
        out("3.14      %s (%s)" % (os.path.relpath(args.reference, ROOT),
                                   describe_file(args.reference)))
        out("floor     bench/floor.py: list /proc, read each /proc/PID/smaps_rollup")
        out("run as    %s" % ("scripts, `python3 FILE` (compiled at every start)"
                             if args.as_scripts else
                             "installed: module imported from compiled bytecode, as the "
                             "console script does"))
        describe_crowd(crowd, available_before)

    def one_shot(self) -> None:
        args = self.args
        processes = count_processes()
        out()
        out("1. One-shot run (`python3 ps_mem.py`, no options): %d rounds + %d warm-up, "
            "interleaved, %d processes in /proc" % (args.rounds, args.warmup, processes))
        log("one-shot:")
        results = self.rounds((OURS, REF, FLOOR), args.rounds, args.warmup, label="one-shot")
        if not results:
            out("  no successful round")
            return
        rows = []
        for name in (OURS, REF, FLOOR):
            runs = [result[name] for result in results]
            rows.append([
                name,
                spread([run.wall for run in runs], 1000),
                "%.1f" % (median([run.cpu for run in runs]) * 1000),
                "%.1f" % (median([run.maxrss_kib for run in runs]) / 1024),
                "%.1f" % (median([run.wall for run in runs]) * 1e6 / processes),
            ])
        table(["", "wall ms median [min..max]", "cpu ms", "peak RSS MiB", "wall us/proc"],
              rows)
        out()

        def ratio(attr: str, other: str) -> List[float]:
            return [getattr(r[OURS], attr) / getattr(r[other], attr) for r in results]

        wall_ref, wall_floor = ratio("wall", REF), ratio("wall", FLOOR)
        cpu_ref, rss_ref = ratio("cpu", REF), ratio("maxrss_kib", REF)
        out("  ratios, median of the per-round ratios [min..max]:")
        table(["", "ratio", "target", ""], [
            ["wall  ours / 3.14", spread(wall_ref, 1, "%.2f"), "<= %.2f" % TARGET_WALL_VS_REF,
             verdict(median(wall_ref), TARGET_WALL_VS_REF)],
            ["wall  ours / floor", spread(wall_floor, 1, "%.2f"),
             "<= %.2f" % TARGET_WALL_VS_FLOOR, verdict(median(wall_floor), TARGET_WALL_VS_FLOOR)],
            ["cpu   ours / 3.14", spread(cpu_ref, 1, "%.2f"), "", ""],
            ["peak RSS  ours / 3.14", spread(rss_ref, 1, "%.2f"),
             "<= %.2f" % TARGET_RSS_VS_REF, verdict(median(rss_ref), TARGET_RSS_VS_REF)],
        ], indent="    ")
        same_out = [r for r in results if r[OURS].stdout == r[REF].stdout]
        same_err = [r for r in results if r[OURS].stderr == r[REF].stderr]
        out("  whole-machine output of ours and 3.14: stdout identical in %d of %d rounds, "
            "stderr in %d" % (len(same_out), len(results), len(same_err)))
        out("  (informational: between two runs other processes change, and each tool's own")
        out("  interpreter shares pages with other pythons, changing their PSS; see section 2)")
        for stream in ("stdout", "stderr"):
            differing = [r for r in results
                         if getattr(r[OURS], stream) != getattr(r[REF], stream)]
            if differing:
                out("  first %s difference:" % stream)
                show_diff(getattr(differing[0][REF], stream),
                          getattr(differing[0][OURS], stream), 12)

    def identical_output(self, crowd: Crowd) -> None:
        members = crowd.members
        chosen: List[int] = []
        for member in members[:: max(1, len(members) // 40)]:
            chosen.append(crowd.member_pids[member.index])
            chosen.extend(crowd.kid_pids.get(member.index, ()))
        chosen = chosen[: self.args.check_pids]
        pid_list = ",".join(map(str, chosen))
        out()
        out("2. Identical output: ours and 3.14 with -p on %d crowd pids (one member in %d "
            "with its children), which stay put between the two runs" % (
                len(chosen), max(1, len(members) // 40)))
        log("identical output:")
        rows = []
        for options in ([], ["-S"], ["-d"], ["-s"], ["-t"], ["-t", "-S"]):
            argv = options + ["-p", pid_list]
            ours = run_once(self.commands[OURS] + argv)
            ref = run_once(self.commands[REF] + argv)
            same = [getattr(ours, part) == getattr(ref, part)
                    for part in ("stdout", "stderr", "status")]
            rows.append([" ".join(options + ["-p", "PIDS"])]
                        + ["same" if equal else "DIFFERENT" for equal in same]
                        + ["%d lines" % len(ref.stdout.splitlines())])
            if not all(same):
                self.failures.append("output differs with %s" % " ".join(argv[:-1] + ["PIDS"]))
                show_diff(ref.stdout + ref.stderr + b"exit %d" % ref.status,
                          ours.stdout + ours.stderr + b"exit %d" % ours.status, 12)
        table(["options", "stdout", "stderr", "exit status", "3.14 stdout"], rows)

    def watch(self) -> None:
        args = self.args
        seconds = args.watch_seconds
        out()
        out("3. Watch (`-w 1` for %g s, then SIGINT; stdout to a file): %d rounds, "
            "interleaved" % (seconds, args.watch_rounds))
        out("   (a faster tool fits more refreshes in the same time: see cpu ms/refresh too)")
        log("watch:")
        results: List[Dict[str, Run]] = []
        for index in range(args.watch_rounds):
            order = (OURS, REF) if index % 2 == 0 else (REF, OURS)
            runs = {name: run_once(self.commands[name] + ["-w", "1"], seconds)
                    for name in order}
            log("  watch round %d: %s" % (index + 1, "  ".join(
                "%s cpu %.0f ms" % (name, runs[name].cpu * 1000) for name in (OURS, REF))))
            for name in order:
                if runs[name].status != 0:
                    self.failures.append("watch %s exited %d:\n%s" % (
                        name, runs[name].status, last_lines(runs[name].stderr)))
            results.append(runs)
        rows = []
        for name in (OURS, REF):
            runs = [result[name] for result in results]
            refreshes = [refresh_count(run.stdout) for run in runs]
            rows.append([
                name,
                spread([run.cpu for run in runs], 1000),
                "%d" % median(refreshes),
                "%.1f" % (median([run.cpu / max(1, n) for run, n in zip(runs, refreshes)]) * 1000),
                "%.1f" % (median([run.maxrss_kib for run in runs]) / 1024),
            ])
        table(["", "cpu ms median [min..max]", "refreshes", "cpu ms/refresh", "peak RSS MiB"],
              rows)
        cpu_ref = [r[OURS].cpu / r[REF].cpu for r in results]
        out("  cpu  ours / 3.14 = %s   target <= %.2f  %s" % (
            spread(cpu_ref, 1, "%.2f"), TARGET_WATCH_CPU_VS_REF,
            verdict(median(cpu_ref), TARGET_WATCH_CPU_VS_REF)))

    def few_pids(self, crowd: Crowd) -> None:
        args = self.args
        # Members, spread over the crowd: their `comm` matches their exe, so
        # naming them needs no look at their parent.
        picked = crowd.members[:: max(1, len(crowd.members) // 3)][:3]
        pids = [crowd.member_pids[m.index] for m in picked]
        pid_list = ",".join(map(str, pids))
        out()
        out("4. `-p` with 3 crowd pids (%s): %d rounds + %d warm-up, interleaved" % (
            pid_list, args.rounds, args.warmup))
        log("-p:")
        results = self.rounds((OURS, REF), args.rounds, args.warmup, ["-p", pid_list], "-p")
        if results:
            rows = []
            for name in (OURS, REF):
                runs = [result[name] for result in results]
                rows.append([name, spread([run.wall for run in runs], 1000),
                             "%.1f" % (median([run.cpu for run in runs]) * 1000)])
            table(["", "wall ms median [min..max]", "cpu ms"], rows)
            out("  wall  ours / 3.14 = %s" % spread(
                [r[OURS].wall / r[REF].wall for r in results], 1, "%.2f"))
        strace = shutil.which("strace")
        if not strace:
            out("  (strace not installed: which /proc paths are read is not shown;"
                " apt-get install -y strace)")
            return
        out("  strace of the /proc paths each tool opens, stats or reads links of:")
        rows = []
        for name in (OURS, REF):
            touched, own, listings, calls = trace_proc(strace, self.commands[name] + ["-p",
                                                                                   pid_list])
            others = sorted(touched - set(pids))
            rows.append([
                name,
                ",".join(map(str, sorted(touched & set(pids)))) or "-",
                "yes" if own else "no",
                ",".join(map(str, others[:8])) + (" ..." if len(others) > 8 else "") or "none",
                "yes" if listings else "no",
                str(calls),
                "yes" if not others else "NO",
            ])
        table(["", "requested pids read", "own pid", "other pids", "lists /proc",
               "/proc calls", "only those"], rows)

    def scaling(self, crowd: Crowd) -> None:
        args = self.args
        sizes = sorted(args.scaling)
        out()
        out("5. Scaling: one-shot run at growing crowd sizes, %d rounds + 1 warm-up each, "
            "interleaved (procs = all pids in /proc)" % args.scaling_rounds)
        log("scaling:")
        points = []
        for size in sizes:
            if size < crowd.size:
                log("  restarting the crowd at %d processes" % size)
                crowd.close()  # it starts again from the same plan
            log("  crowd to %d processes" % size)
            crowd.grow(size)
            processes = count_processes()
            results = self.rounds((OURS, REF, FLOOR), args.scaling_rounds, 1,
                                  label="n=%d" % size)
            if results:
                points.append((size, processes, results))
        rows = []
        for size, processes, results in points:
            wall = {name: median([r[name].wall for r in results]) for name in (OURS, REF, FLOOR)}
            rss = {name: median([r[name].maxrss_kib for r in results]) for name in (OURS, REF)}
            rows.append([
                str(size), str(processes),
                "%.0f" % (wall[OURS] * 1000), "%.0f" % (wall[REF] * 1000),
                "%.0f" % (wall[FLOOR] * 1000),
                "%.0f" % (wall[OURS] * 1e6 / processes), "%.0f" % (wall[REF] * 1e6 / processes),
                "%.0f" % (wall[FLOOR] * 1e6 / processes),
                "%.2f" % median([r[OURS].wall / r[REF].wall for r in results]),
                "%.2f" % median([r[OURS].wall / r[FLOOR].wall for r in results]),
                "%.1f" % (rss[OURS] / 1024), "%.1f" % (rss[REF] / 1024),
            ])
        table(["crowd", "procs", "ours ms", "3.14 ms", "floor ms", "ours us/p", "3.14 us/p",
               "floor us/p", "ours/3.14", "ours/floor", "ours MiB", "3.14 MiB"], rows)
        if len(points) >= 2:
            out()
            out("  linear fit over the sizes (t = fixed + per-process x procs):")
            xs = [float(processes) for _, processes, _ in points]
            for name in (OURS, REF, FLOOR):
                ys = [median([r[name].wall for r in results]) for _, _, results in points]
                fixed, per, r2 = linear_fit(xs, ys)
                worst = max(abs(y - (fixed + per * x)) / y for x, y in zip(xs, ys))
                quality = ("   r^2 = %.4f, worst residual %.1f%%" % (r2, worst * 100)
                           if len(points) >= 3 else "")
                out("    %-12s wall = %6.1f ms + %5.1f us x procs%s" % (
                    name, fixed * 1000, per * 1e6, quality))
            for name in (OURS, REF, FLOOR):
                ys = [median([r[name].cpu for r in results]) for _, _, results in points]
                fixed, per, r2 = linear_fit(xs, ys)
                quality = "   r^2 = %.4f" % r2 if len(points) >= 3 else ""
                out("    %-12s cpu  = %6.1f ms + %5.1f us x procs%s" % (
                    name, fixed * 1000, per * 1e6, quality))
            for name in (OURS, REF):
                ys = [median([r[name].maxrss_kib for r in results]) for _, _, results in points]
                fixed, per, r2 = linear_fit(xs, ys)
                quality = "   r^2 = %.4f" % r2 if len(points) >= 3 else ""
                out("    %-12s peak RSS = %5.1f MiB + %5.2f KiB x procs%s" % (
                    name, fixed / 1024, per, quality))

    def readers(self) -> None:
        """Forked readers against one reader, idle and with every CPU busy."""
        args = self.args
        processes = count_processes()
        out()
        out("6. Forked readers: ours as it runs against ours with one reader (reader_count()"
            " patched to 1), %d rounds + %d warm-up, %d processes in /proc" % (
                args.rounds, args.warmup, processes))
        log("readers:")
        for busy in (False, True):
            hogs: List[subprocess.Popen] = []
            if busy:
                # One busy loop per CPU, at the same priority: the readers
                # then compete for CPUs that are already taken.
                hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                        for _ in range(os.cpu_count() or 1)]
            try:
                results = self.rounds((OURS, ONE_READER), args.rounds, args.warmup,
                                      label="busy" if busy else "idle")
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            if not results:
                continue
            wall = [r[OURS].wall / r[ONE_READER].wall for r in results]
            cpu = [r[OURS].cpu / r[ONE_READER].cpu for r in results]
            out("  %s: wall %s ms against %s ms; wall ours / one reader = %s, "
                "cpu = %s" % (
                    "every CPU busy" if busy else "idle machine",
                    "%.0f" % (median([r[OURS].wall for r in results]) * 1000),
                    "%.0f" % (median([r[ONE_READER].wall for r in results]) * 1000),
                    spread(wall, 1, "%.2f"), spread(cpu, 1, "%.2f")))

    def views(self) -> None:
        """Each view since 3.14 against the default report."""
        args = self.args
        out()
        out("7. Views: each against the default report (ours, no options), %d rounds + %d "
            "warm-up, interleaved" % (args.rounds, args.warmup))
        log("views:")
        rows = []
        for label, extra, limit in VIEWS:
            name = "view " + label
            self.commands[name] = self.commands[OURS] + list(extra)
            results = self.rounds((OURS, name), args.rounds, args.warmup, label=label)
            if not results:
                continue
            wall = [r[name].wall / r[OURS].wall for r in results]
            cpu = [r[name].cpu / r[OURS].cpu for r in results]
            rss = [r[name].maxrss_kib / r[OURS].maxrss_kib for r in results]
            rows.append([label, "%.0f" % (median([r[name].wall for r in results]) * 1000),
                         spread(wall, 1, "%.2f"), spread(cpu, 1, "%.2f"),
                         spread(rss, 1, "%.2f"),
                         "" if limit is None else "<= %.2f  %s" % (
                             limit, verdict(median(wall), limit))])
        table(["view", "wall ms", "wall / default", "cpu / default", "peak RSS / default",
               "target"], rows)

    def mappings(self) -> None:
        """--group-by mapping against smem2 -m and the read of every smaps."""
        args = self.args
        python = [args.python] + (["-S"] if args.no_site else [])
        self.commands[BY_MAPPING] = self.commands[OURS] + ["--group-by", "mapping"]
        self.commands[FLOOR_SMAPS] = python + [os.path.join(BENCH, "floor.py"), "smaps"]
        names = [BY_MAPPING, FLOOR_SMAPS, OURS, FLOOR]
        smem2 = args.smem2 or install_smem2()
        if smem2:
            self.commands[SMEM2] = [smem2, "-m"]
            trial = run_once(self.commands[SMEM2])
            if trial.status == 0:
                names.insert(1, SMEM2)
            else:
                out("  smem2 -m failed on this machine, so it is not timed:")
                out(last_lines(trial.stderr, 3))
        big = None
        if args.many_mappings:
            big = start_many_mappings(args.many_mappings)
        processes = count_processes()
        try:
            mappings = count_mappings()
            out()
            out("8. Memory per mapping: %s, %s, the bare read of every smaps and of every "
                "smaps_rollup (%s), and the default report, %d rounds + %d warm-up, "
                "interleaved; %d processes in /proc%s, %d mappings in all"
                % (BY_MAPPING, SMEM2 if SMEM2 in names else "(no smem2)", FLOOR, args.rounds,
                   args.warmup, processes,
                   " (one of %d mappings added)" % args.many_mappings if big else "", mappings))
            log("mappings:")
            results = self.rounds(names, args.rounds, args.warmup, label="mappings")
        finally:
            if big is not None:
                big.terminate()
                big.wait()
        if not results:
            out("  no successful round")
            return
        rows = []
        for name in names:
            runs = [result[name] for result in results]
            rows.append([name, spread([run.wall for run in runs], 1000),
                         "%.1f" % (median([run.cpu for run in runs]) * 1000),
                         "%.1f" % (median([run.maxrss_kib for run in runs]) / 1024),
                         "%.2f" % (median([run.wall for run in runs]) * 1e6 / mappings)])
        table(["", "wall ms median [min..max]", "cpu ms", "peak RSS MiB", "wall us/mapping"],
              rows)
        out()

        def ratio(first: str, second: str) -> List[float]:
            return [r[first].wall / r[second].wall for r in results]

        out("  wall ratios, median of the per-round ratios [min..max]:")
        lines = [["ours by mapping / floor (smaps)", spread(ratio(BY_MAPPING, FLOOR_SMAPS), 1,
                                                             "%.2f")]]
        if SMEM2 in names:
            lines += [["ours by mapping / smem2 -m", spread(ratio(BY_MAPPING, SMEM2), 1, "%.2f")],
                      ["smem2 -m / floor (smaps)", spread(ratio(SMEM2, FLOOR_SMAPS), 1, "%.2f")]]
        lines += [["floor (smaps) / floor (rollup): the kernel's extra work",
                   spread(ratio(FLOOR_SMAPS, FLOOR), 1, "%.2f")],
                  ["ours by mapping / ours default", spread(ratio(BY_MAPPING, OURS), 1, "%.2f")]]
        table(["", "ratio"], lines, indent="    ")

    def diff_delta(self) -> None:
        """--diff of two captures against reading one; a watch with --delta
        against one without."""
        args = self.args
        out()
        out("9. --diff and --delta: two captures of the crowd (--capture), %d rounds + %d "
            "warm-up, interleaved" % (args.rounds, args.warmup))
        log("diff and delta:")
        directory = tempfile.mkdtemp(prefix="ps_mem-bench-diff-")
        try:
            captures = []
            for name in ("before", "after"):
                path = os.path.join(directory, name + ".tar.gz")
                made = run_once(self.commands[OURS] + ["--capture", path])
                if made.status != 0:
                    self.failures.append("--capture exited %d:\n%s" % (
                        made.status, last_lines(made.stderr)))
                    return
                captures.append(path)
            before, after = captures
            out("  captures: %s and %s" % (describe_size(before), describe_size(after)))
            one, diff = "--procfs BEFORE", "--diff BEFORE --procfs AFTER"
            self.commands[one] = self.commands[OURS] + ["--procfs", before]
            self.commands[diff] = self.commands[OURS] + ["--diff", before, "--procfs", after]
            results = self.rounds((one, diff), args.rounds, args.warmup, label="diff")
            if results:
                wall = [r[diff].wall / r[one].wall for r in results]
                cpu = [r[diff].cpu / r[one].cpu for r in results]
                rss = [r[diff].maxrss_kib / r[one].maxrss_kib for r in results]
                table(["", "wall ms", "cpu ms", "peak RSS MiB"], [
                    [name, spread([r[name].wall for r in results], 1000),
                     "%.1f" % (median([r[name].cpu for r in results]) * 1000),
                     "%.1f" % (median([r[name].maxrss_kib for r in results]) / 1024)]
                    for name in (one, diff)])
                out("  --diff / one capture: wall %s   target <= %.2f  %s;  cpu %s;  peak RSS %s"
                    % (spread(wall, 1, "%.2f"), TARGET_DIFF_VS_ONE_CAPTURE,
                       verdict(median(wall), TARGET_DIFF_VS_ONE_CAPTURE),
                       spread(cpu, 1, "%.2f"), spread(rss, 1, "%.2f")))
        finally:
            shutil.rmtree(directory, ignore_errors=True)

        seconds = args.watch_seconds
        out()
        out("  `-w 1 --delta` against `-w 1` (%g s each, then SIGINT): %d rounds, interleaved"
            % (seconds, args.watch_rounds))
        plain, delta = "-w 1", "-w 1 --delta"
        watches: List[Dict[str, Run]] = []
        for index in range(args.watch_rounds):
            order = (plain, delta) if index % 2 == 0 else (delta, plain)
            runs = {name: run_once(self.commands[OURS] + name.split(), seconds)
                    for name in order}
            log("  delta round %d: %s" % (index + 1, "  ".join(
                "%s cpu %.0f ms" % (name, runs[name].cpu * 1000) for name in (plain, delta))))
            failed = [name for name in order if runs[name].status != 0]
            for name in failed:
                self.failures.append("watch %s exited %d:\n%s" % (
                    name, runs[name].status, last_lines(runs[name].stderr)))
            if not failed:
                watches.append(runs)
        if not watches:
            return

        def per_refresh(run: Run) -> float:
            return run.cpu / max(1, refresh_count(run.stdout))

        table(["", "cpu ms median [min..max]", "refreshes", "cpu ms/refresh"], [
            [name, spread([r[name].cpu for r in watches], 1000),
             "%d" % median([refresh_count(r[name].stdout) for r in watches]),
             "%.1f" % (median([per_refresh(r[name]) for r in watches]) * 1000)]
            for name in (plain, delta)])
        cpu = [r[delta].cpu / r[plain].cpu for r in watches]
        refresh = [per_refresh(r[delta]) / per_refresh(r[plain]) for r in watches]
        out("  cpu per refresh  --delta / without = %s   target <= %.2f  %s;  cpu over %g s %s"
            % (spread(refresh, 1, "%.2f"), TARGET_DELTA_WATCH_CPU,
               verdict(median(refresh), TARGET_DELTA_WATCH_CPU), seconds,
               spread(cpu, 1, "%.2f")))

    def summary(self) -> None:
        out()
        cpus = os.cpu_count() or 1
        load = os.getloadavg()
        out("load at end: %.2f %.2f %.2f (1, 5, 15 min)" % load)
        if max(self.load_at_start[0], load[0]) > 0.5 * cpus:
            out("NOTE: the machine was busy (1-min load above half its %d CPUs): other work "
                "competes with the runs, so wall times are noisy; cpu times less so." % cpus)
        if self.failures:
            out("Problems seen:")
            for failure in self.failures:
                out("  - " + failure)
        else:
            out("No failed runs; outputs compared were identical.")


# ----------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------


_INSTALLED = tempfile.mkdtemp(prefix="ps_mem-bench-installed-")
atexit.register(shutil.rmtree, _INSTALLED, True)


def installed(python: Sequence[str], module_file: str, entry: str, patch: str = "") -> List[str]:
    """A command that runs MODULE_FILE as its console script would: the
    module copied to a directory of its own with its bytecode compiled, and
    imported from there (PYTHONDONTWRITEBYTECODE, set on some machines,
    only stops Python writing the cache, not reading it).  PATCH: a
    statement run after the import (to measure a variant from outside)."""
    directory = os.path.join(_INSTALLED, hashlib.sha1(module_file.encode()).hexdigest()[:8])
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, "ps_mem.py")
    shutil.copy2(module_file, target)
    subprocess.run(list(python) + ["-c", "import py_compile, sys; py_compile.compile(sys.argv[1])",
                                   target], check=True)
    runner = "import sys; sys.path.insert(0, %r); import ps_mem; %s; sys.exit(ps_mem.%s())" % (
        directory, patch or "pass", entry)
    return list(python) + ["-c", runner]


def describe_size(path: str) -> str:
    return "%.1f MiB" % (os.path.getsize(path) / 1048576.0)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_total_gib() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024.0 / 1024.0
    return float("nan")


def python_version(python: str) -> str:
    result = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                            stdout=subprocess.PIPE, text=True, check=False)
    return result.stdout.strip()


def describe_file(path: str) -> str:
    with open(path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()[:12]
    parts = ["sha256 %s" % digest]
    git = shutil.which("git")
    if git and os.path.commonpath([os.path.abspath(path), ROOT]) == ROOT:
        head = subprocess.run([git, "-C", ROOT, "log", "-1", "--format=%h", "--", path],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True, check=False).stdout.strip()
        dirty = subprocess.run([git, "-C", ROOT, "status", "--porcelain", "--", path],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, check=False).stdout.strip()
        if head:
            parts.append("last commit %s%s" % (head, ", modified since" if dirty else ""))
    return ", ".join(parts)


def describe_crowd(crowd: Crowd, available_before: float) -> None:
    members = crowd.members
    kids = crowd.size - len(crowd.member_pids)
    big = sum(1 for m in members if m.heap_kib >= 8 * 1024)
    renamed = sum(m.kids for m in members if m.kid_comm != "-")
    out("crowd     %d processes (seed %d): %d members + %d forked children (%d renamed), "
        "%d programs," % (crowd.size, crowd.seed, len(members), kids, renamed, crowd.programs))
    out("          %d big heaps (8-64 MiB), %.0f MiB of heap touched, MemAvailable down %.0f MiB"
        % (big, crowd.heap_mib(), available_before - mem_available_mib()))
    processes = count_processes()
    out("procs     %d pids in /proc: crowd %d + %d launcher(s) + %d others (kernel threads "
        "included)" % (processes, crowd.size, len(crowd.launcher_pids),
                       processes - crowd.size - len(crowd.launcher_pids)))


def install_smem2() -> Optional[str]:
    """smem2 from PyPI, in a venv of its own (.venv/smem2, made once); None
    where it cannot be had."""
    venv = os.path.join(ROOT, ".venv", "smem2")
    script = os.path.join(venv, "bin", "smem2")
    if os.path.exists(script):
        return script
    log("installing smem2 from PyPI into %s" % os.path.relpath(venv, ROOT))
    try:
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", "smem2"], check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        out("  (smem2 could not be installed: %s; give one with --smem2 PATH)" % error)
        return None
    return script if os.path.exists(script) else None


def start_many_mappings(count: int) -> "subprocess.Popen":
    """tests/helpers/manymaps COUNT (compiled into bench/bin/): one process
    of COUNT mappings, as browsers and JVMs have thousands each."""
    source = os.path.join(ROOT, "tests", "helpers", "manymaps.c")
    binary = os.path.join(BENCH, "bin", "manymaps")
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        os.makedirs(os.path.dirname(binary), exist_ok=True)
        subprocess.run([os.environ.get("CC", "gcc"), "-O2", "-Wall", "-o", binary, source],
                       check=True)
    process = subprocess.Popen([binary, str(count)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE)
    assert process.stdout is not None
    words = process.stdout.readline().split()
    if not words or words[0] != b"ready":
        process.kill()
        process.wait()
        raise RuntimeError("manymaps %d did not start" % count)
    return process


def count_mappings() -> int:
    """Mappings of every process in /proc, as their maps list them."""
    total = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/maps" % entry, "rb") as handle:
                    total += handle.read().count(b"\n")
            except OSError:
                pass
    return total


def refresh_count(output: bytes) -> int:
    """Samples a watch printed: each ends with a line of '='."""
    return sum(1 for line in output.splitlines() if line.startswith(b"====="))


def show_diff(expected: bytes, got: bytes, limit: int) -> None:
    diff = list(difflib.unified_diff(
        expected.decode("utf-8", "replace").splitlines(),
        got.decode("utf-8", "replace").splitlines(), "3.14", "ours", lineterm="", n=0))
    for line in diff[:limit]:
        out("      " + line)
    if len(diff) > limit:
        out("      ... (%d more diff lines)" % (len(diff) - limit))


_PROC_PATH = re.compile(r'"/proc/(\d+|self|thread-self)(?:/[^"]*)?"')


def trace_proc(strace: str, argv: Sequence[str]) -> Tuple[set, bool, int, int]:
    """Run argv under strace: (pids whose /proc entries it touched, whether it
    touched its own, how many getdents64 calls read /proc itself, how many
    calls named a /proc/PID path)."""
    with tempfile.NamedTemporaryFile(prefix="ps_mem-strace-", suffix=".txt") as trace:
        subprocess.run(
            [strace, "-f", "-qq", "-y", "-o", trace.name, "-e",
             "trace=%file,getdents64,getdents"] + list(argv),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        with open(trace.name, errors="replace") as handle:
            lines = handle.read().splitlines()
    tracee = None
    touched: set = set()
    own = False
    listings = calls = 0
    for line in lines:
        fields = line.split(None, 1)
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        pid, call = int(fields[0]), fields[1]
        if tracee is None:
            tracee = pid
        if call.startswith("getdents") and "</proc>" in call:
            listings += 1
        for match in _PROC_PATH.finditer(call):
            calls += 1
            target = match.group(1)
            if target in ("self", "thread-self") or int(target) == tracee:
                own = True
            else:
                touched.add(int(target))
    return touched, own, listings, calls


def parse_sizes(text: str) -> List[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected a comma-separated list of numbers") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("expected positive numbers")
    return sizes


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark ps_mem.py against ps_mem 3.14 and the smaps_rollup floor.")
    parser.add_argument("--procs", type=int, default=1500,
                        help="crowd size for sections 1-4 (default 1500)")
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up rounds (default 1)")
    parser.add_argument("--scaling", type=parse_sizes, default=[500, 1000, 2000, 3000, 5000],
                        metavar="LIST", help="crowd sizes (default 500,1000,2000,3000,5000)")
    parser.add_argument("--scaling-rounds", type=int, default=3,
                        help="measured rounds per size (default 3)")
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-watch", action="store_true")
    parser.add_argument("--skip-readers", action="store_true")
    parser.add_argument("--skip-views", action="store_true")
    parser.add_argument("--skip-mappings", action="store_true", help="leave out section 8")
    parser.add_argument("--smem2", metavar="PATH",
                        help="smem2 to compare with in section 8 (default: installed from PyPI "
                             "into .venv/smem2)")
    parser.add_argument("--many-mappings", type=int, default=10000, metavar="N",
                        help="a process of N mappings added for section 8 (default 10000; 0: "
                             "none)")
    parser.add_argument("--skip-diff", action="store_true",
                        help="leave out section 9 (--diff and --delta)")
    parser.add_argument("--watch-seconds", type=float, default=6.0)
    parser.add_argument("--watch-rounds", type=int, default=3)
    parser.add_argument("--check-pids", type=int, default=80,
                        help="crowd pids for the identical-output check (default 80)")
    parser.add_argument("--seed", type=int, default=1, help="crowd seed (default 1)")
    parser.add_argument("--heap-budget", type=int, default=1536, metavar="MIB",
                        help="total memory of the crowd's big heaps (default 1536)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter for every run (default: this one)")
    parser.add_argument("--no-site", action="store_true",
                        help="run every tool with python -S (leaves out site-packages .pth "
                             "hooks that some machines run at every start)")
    parser.add_argument("--as-scripts", action="store_true",
                        help="run both tools as `python3 FILE` (compiled at every start) "
                             "instead of as installed (imported from bytecode)")
    parser.add_argument("--ours", default=os.path.join(ROOT, "ps_mem.py"))
    parser.add_argument("--reference", default=os.path.join(ROOT, ".venv", "reference",
                                                            "ps_mem.py"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.scaling_rounds < 1 or args.watch_rounds < 1:
        parser.error("rounds must be at least 1")

    if not os.path.exists(args.reference):
        parser.error("no ps_mem 3.14 at %s; install it with:\n  %s -m pip install --no-deps "
                     "--target %s ps-mem==3.14" % (args.reference, args.python,
                                                    os.path.dirname(args.reference)))
    if os.geteuid() != 0:
        log("warning: not root: other users' processes cannot be read, and 3.14 may refuse")
    raise_on_sigterm()

    bench = Bench(args)
    available = mem_available_mib()
    log("starting a crowd of %d processes" % args.procs)
    try:
        with Crowd(args.procs, seed=args.seed, heap_budget_mib=args.heap_budget) as crowd:
            bench.header(crowd, available)
            bench.one_shot()
            bench.identical_output(crowd)
            if not args.skip_watch:
                bench.watch()
            bench.few_pids(crowd)
            if not args.skip_readers:
                bench.readers()
            if not args.skip_views:
                bench.views()
            if not args.skip_mappings:
                bench.mappings()
            if not args.skip_diff:
                bench.diff_delta()
            if not args.skip_scaling:
                bench.scaling(crowd)
            log("tearing down the crowd")
        bench.summary()
    except KeyboardInterrupt:
        log("interrupted; the crowd is torn down")
        return 130
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
