"""--diff and --delta on this machine's /proc, with processes whose memory
is known to the page.

tests/helpers/grow.c maps and writes PAGES more pages of private memory
each time it is asked (SIGUSR1), and says when it has; it and setname are
static, so they share no page with any other process and nothing but the
asked growth changes their figures.  The programs that start and stop
between two captures are copies of sleep under names of their own: their
sizes move with the C library's pages, but they are only looked at as new
and gone.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.diff_trees import rewritten
from tests.harness import OURS, child_env, live, run_ours
from tests.realproc import Processes

PAGE = os.sysconf("SC_PAGE_SIZE")
PAGES = 256  # a step of growth: 1 MiB with 4 KiB pages


@pytest.fixture
def procs():
    with Processes() as started:
        yield started


def capture(path, pids):
    done = run_ours("--capture", str(path), "-p", pids)
    assert done.status == 0, done
    return path


def rows_by_name(document):
    return {program["name"]: program for program in document["programs"]}


@live
def test_growth_new_and_gone_between_two_captures(procs, tmp_path):
    grower = procs.helper("grow", str(PAGES))
    idle = procs.helper("setname", b"idle".hex())
    goner = procs.sleep_named(b"goner")
    pids = [grower.pid, idle.pid, goner.pid]
    before = capture(tmp_path / "before.tar.gz", ",".join(map(str, pids)))

    assert grower.request() == b"grown %d\n" % PAGES
    goner.stop()
    newbie = procs.sleep_named(b"newbie")
    pids.append(newbie.pid)
    csv = ",".join(map(str, pids))
    after = capture(tmp_path / "after.tar.gz", csv)

    result = run_ours("--diff", str(before), "--procfs", str(after), "-p", csv, "--json")
    assert (result.status, result.stderr) == (0, b"")
    rows = rows_by_name(json.loads(result.stdout))
    assert sorted(rows) == ["goner", "grow", "idle", "newbie"]
    grown = PAGES * PAGE
    assert abs(rows["grow"]["private"]["change"] - grown) <= PAGE
    assert abs(rows["grow"]["ram"]["change"] - grown) <= PAGE
    assert rows["grow"]["shared"]["change"] == 0
    assert (rows["grow"]["new"], rows["grow"]["gone"]) == (False, False)
    for measure in ("private", "shared", "ram", "swap"):
        assert rows["idle"][measure]["change"] == 0, measure
    assert (rows["goner"]["gone"], rows["goner"]["ram"]["after"]) == (True, 0)
    assert (rows["newbie"]["new"], rows["newbie"]["ram"]["before"]) == (True, 0)
    assert rows["newbie"]["ram"]["after"] > 0

    table = run_ours("--diff", str(before), "--procfs", str(after), "-p", csv)
    assert table.status == 0 and table.stderr == b""
    lines = table.out.splitlines()
    assert lines[0] == ("Private change  Shared change  RAM before   RAM after  RAM change"
                        "\tProgram")
    by_name = {line.split("\t")[1]: line.split("\t")[0].split() for line in lines[2:-3]}
    assert by_name["idle"][:4] == ["0.0", "KiB", "0.0", "KiB"]
    assert by_name["idle"][-2:] == ["0.0", "KiB"]
    assert by_name["grow"][:2] == ["+1.0", "MiB"] and by_name["grow"][-2:] == ["+1.0", "MiB"]
    assert "gone" in by_name["goner"] and "new" in by_name["newbie"]
    # The rows sort by their change, growth last.
    assert [line.split("\t")[1] for line in lines[2:-3]][-1] == "grow"


@live
def test_by_pid_and_against_the_live_system(procs, tmp_path):
    """-d matches a process by its pid and start time; compared with the
    live system (no --procfs), a capture of this boot needs no word."""
    grower = procs.helper("grow", str(PAGES))
    idle = procs.helper("setname", b"idle".hex())
    csv = "%d,%d" % (grower.pid, idle.pid)
    before = capture(tmp_path / "before.tar.gz", csv)
    assert grower.request() == b"grown %d\n" % PAGES
    assert grower.request() == b"grown %d\n" % (2 * PAGES)

    result = run_ours("--diff", str(before), "-p", csv, "-d", "--json")
    assert (result.status, result.stderr) == (0, b"")
    rows = rows_by_name(json.loads(result.stdout))
    assert sorted(rows) == ["grow [%d]" % grower.pid, "idle [%d]" % idle.pid]
    grow = rows["grow [%d]" % grower.pid]
    assert abs(grow["private"]["change"] - 2 * PAGES * PAGE) <= PAGE
    assert grow["pids"] == {"before": [grower.pid], "after": [grower.pid]}
    assert rows["idle [%d]" % idle.pid]["ram"]["change"] == 0
    total = run_ours("--diff", str(before), "-p", csv, "-t")
    assert total.status == 0
    assert abs(int(total.out) - 2 * PAGES * PAGE) <= PAGE


@live
def test_a_reused_pid_is_not_the_same_process(procs, tmp_path):
    """A pid the capture knew, now another process's: with -d the two are
    a gone row and a new one, told apart by stat's start time; by program
    they are one row (two runs of a program need not use the same pages:
    its size may differ)."""
    idle = procs.helper("setname", b"idle".hex())
    before = capture(tmp_path / "before.tar.gz", str(idle.pid))
    idle.stop()
    again = procs.helper("setname", b"idle".hex())
    # The kernel would take years to give the pid back: the capture is
    # told that its process had the pid the new one has.
    reused = rewritten(before, tmp_path / "reused.tar.gz", moved=(idle.pid, again.pid))
    pid = str(again.pid)
    result = run_ours("--diff", str(reused), "-p", pid, "-d", "--json")
    assert (result.status, result.stderr) == (0, b"")
    rows = json.loads(result.stdout)["programs"]
    name = "idle [%d]" % again.pid
    assert sorted((row["name"], row["new"], row["gone"]) for row in rows) == [
        (name, False, True), (name, True, False)]
    by_program = json.loads(run_ours("--diff", str(reused), "-p", pid, "--json").stdout)
    (row,) = by_program["programs"]
    assert (row["name"], row["new"], row["gone"], row["count"]) == (
        "idle", False, False, {"before": 1, "after": 1, "change": 0})


@live
def test_watch_with_delta_shows_the_growth_sample_by_sample(procs):
    """A process grows by a step before each sample: --delta in JSON Lines
    shows one step more in each (within a page), and 0 in the first."""
    grower = procs.helper("grow", str(PAGES))
    watch = subprocess.Popen([sys.executable, str(OURS), "-w", "1", "--delta", "--json",
                              "-p", str(grower.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    try:
        def next_delta():
            line = watch.stdout.readline()
            assert line, watch.stderr.read()
            (row,) = json.loads(line)["programs"]
            assert row["name"] == "grow" and not row["new"]
            return row["delta"]

        assert next_delta() == 0
        seen = []
        for step in range(1, 4):
            assert grower.request() == b"grown %d\n" % (step * PAGES)
            # The sample being taken may have read before the growth; the
            # one after it started after it.
            deltas = [next_delta(), next_delta()]
            assert abs(deltas[-1] - step * PAGES * PAGE) <= PAGE, (step, deltas)
            assert abs(deltas[0] - (step - 1) * PAGES * PAGE) <= PAGE or \
                abs(deltas[0] - step * PAGES * PAGE) <= PAGE, (step, deltas)
            seen.extend(deltas)
        assert seen == sorted(seen)
        watch.send_signal(signal.SIGINT)
        out, err = watch.communicate(timeout=20)
        assert (watch.returncode, err) == (0, b"")
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        watch.stdout.close()
        watch.stderr.close()


@live
def test_watch_with_delta_table(procs):
    """The table's Delta column, as a user sees it: 0.0 KiB first, then
    +1.0 MiB once the process has grown by a step."""
    grower = procs.helper("grow", str(PAGES))
    watch = subprocess.Popen([sys.executable, str(OURS), "-w", "1", "--delta",
                              "-p", str(grower.pid)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    try:
        header = watch.stdout.readline() + watch.stdout.readline()
        assert header == b" Private  +   Shared  =  RAM used       Delta\tProgram\n\n"

        def next_sample():
            row = watch.stdout.readline().decode()
            footer = [watch.stdout.readline().decode() for _ in range(3)]
            assert footer[0] == "-" * 45 + "\n" and footer[2] == "=" * 45 + "\n", footer
            return row, footer[1]

        row, total = next_sample()
        assert row.endswith("     0.0 KiB\tgrow\n") and total.endswith("     0.0 KiB\n")
        assert grower.request() == b"grown %d\n" % PAGES
        next_sample()
        row, total = next_sample()
        assert row.endswith("    +1.0 MiB\tgrow\n") and total.endswith("    +1.0 MiB\n")
        watch.send_signal(signal.SIGINT)
        watch.communicate(timeout=20)
        assert watch.returncode == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        watch.stdout.close()
        watch.stderr.close()
