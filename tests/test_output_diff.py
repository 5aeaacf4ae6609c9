"""--diff BEFORE on fixture trees: the table, JSON, -t, order and matching.

BEFORE is a capture of one tree, AFTER another tree of the same machine or
its capture (tests/diff_trees.py: leaky grows by 2048 KiB, idle stays,
goner exits, newbie starts).  Expected tables are written by hand from the
sizes worked out in diff_trees.py; before and after are also checked
against ps_mem 3.14's own report of each tree.
"""

import json
import re

import pytest

from tests import diff_trees
from tests.diff_trees import captured, pair, program
from tests.harness import run_reference
from tests.harness import human_bytes, parse_table, run_main
from tests.procfs_builder import ProcTree, program_maps

HEADER = "Private change  Shared change  RAM before   RAM after  RAM change\tProgram\n\n"
RULE = "-" * 65 + "\n"
DOUBLE_RULE = "=" * 65 + "\n"

TABLE = (HEADER
         + "      -1.0 MiB     -123.5 KiB     1.1 MiB        gone    -1.1 MiB\tgoner\n"
         "       0.0 KiB        0.0 KiB     1.6 MiB     1.6 MiB     0.0 KiB\tidle (2)\n"
         "    +908.0 KiB     +123.5 KiB         new     1.0 MiB    +1.0 MiB\tnewbie\n"
         "      +2.0 MiB        0.0 KiB     1.2 MiB     3.2 MiB    +2.0 MiB\tleaky\n"
         + RULE
         + "                                  3.9 MiB     5.8 MiB    +1.9 MiB\n"
         + DOUBLE_RULE)

BY_PID = (HEADER.replace("Program", "Program[pid]")
          + "      -1.0 MiB     -123.5 KiB     1.1 MiB        gone    -1.1 MiB\tgoner [400]\n"
          "       0.0 KiB        0.0 KiB   731.5 KiB   731.5 KiB     0.0 KiB\tidle [200]\n"
          "       0.0 KiB        0.0 KiB   931.5 KiB   931.5 KiB     0.0 KiB\tidle [201]\n"
          "    +908.0 KiB     +123.5 KiB         new     1.0 MiB    +1.0 MiB\tnewbie [300]\n"
          "      +2.0 MiB        0.0 KiB     1.2 MiB     3.2 MiB    +2.0 MiB\tleaky [100]\n"
          + RULE
          + "                                  3.9 MiB     5.8 MiB    +1.9 MiB\n"
          + DOUBLE_RULE)

# A row of the diff table: the five sizes, then the name.
ROW = re.compile(r" *(\S+(?: [KMGT]iB)?) +(\S+(?: [KMGT]iB)?) +(\S+(?: [KMGT]iB)?)"
                 r" +(\S+(?: [KMGT]iB)?) +(\S+(?: [KMGT]iB)?)\t(.*)")


def diff_rows(stdout: str):
    """{name: (private change, shared change, before, after, change)}."""
    body = stdout.split("\n\n", 1)[1].split("-----", 1)[0]
    found = {}
    for line in body.splitlines():
        match = ROW.fullmatch(line)
        assert match, line
        found[match.group(6)] = match.groups()[:5]
    return found


@pytest.fixture
def trees(tmp_path):
    return pair(tmp_path)


@pytest.fixture
def before(trees, tmp_path):
    return captured(trees[0], tmp_path / "before.tar.gz")


# ----------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------


def test_table_against_a_tree(trees, before):
    result = run_main("--diff", str(before), procfs=trees[1].root)
    assert (result.out, result.err, result.status) == (TABLE, "", 0)


def test_table_against_a_capture(trees, before, tmp_path):
    after = captured(trees[1], tmp_path / "after.tar.gz")
    result = run_main("--diff", str(before), procfs=after)
    assert (result.out, result.err, result.status) == (TABLE, "", 0)


def test_before_and_after_are_3_14s_reports(trees, before):
    """RAM before and after are what ps_mem 3.14 reports of each tree."""
    rows = diff_rows(run_main("--diff", str(before), procfs=trees[1].root).out)
    for tree, column in ((trees[0], 2), (trees[1], 3)):
        reference = parse_table(run_reference(procfs=tree.root).out)
        expected = {row.name: row.ram for row in reference.rows}
        shown = {name: sizes[column] for name, sizes in rows.items()
                 if sizes[column] not in ("new", "gone")}
        assert shown == expected


def test_by_pid_matches_each_process(trees, before):
    result = run_main("--diff", str(before), "-d", procfs=trees[1].root)
    assert (result.out, result.err, result.status) == (BY_PID, "", 0)
    assert run_main("--diff", str(before), "--group-by", "pid",
                    procfs=trees[1].root).out == BY_PID


def test_a_reused_pid_is_another_process(tmp_path):
    """With -d a pid that names a process started later is a new row, the
    old one gone; grouped by program, the rows of one name still match."""
    before_tree, after_tree = pair(tmp_path)
    program(after_tree, 400, "goner", 900, start=5000)  # pid 400 again, started later
    before = captured(before_tree, tmp_path / "before.tar.gz")
    by_pid = run_main("--diff", str(before), "-d", procfs=after_tree.root)
    lines = [line for line in by_pid.out.splitlines() if "goner [400]" in line]
    assert lines == [
        "      -1.0 MiB     -123.5 KiB     1.1 MiB        gone    -1.1 MiB\tgoner [400]",
        "      +1.0 MiB     +123.5 KiB         new     1.1 MiB    +1.1 MiB\tgoner [400]"]
    by_name = diff_rows(run_main("--diff", str(before), procfs=after_tree.root).out)
    assert by_name["goner"] == ("0.0 KiB", "0.0 KiB", "1.1 MiB", "1.1 MiB", "0.0 KiB")


def test_a_renamed_process_is_the_same_process(tmp_path):
    """A process is its pid and start time, whatever it is called now: -d
    shows it under its new name, unchanged; by program it left idle."""
    before_tree = diff_trees.machine(ProcTree(tmp_path / "before"))
    after_tree = diff_trees.machine(ProcTree(tmp_path / "after"))
    for tree in (before_tree, after_tree):
        program(tree, 200, "idle", 500)
    program(before_tree, 201, "idle", 700)
    after_tree.add(201, "worker", "/usr/bin/idle",
                   maps=program_maps("/usr/bin/idle", heap_kib=700))
    before = captured(before_tree, tmp_path / "before.tar.gz")
    by_pid = run_main("--diff", str(before), "-d", procfs=after_tree.root)
    assert diff_rows(by_pid.out) == {
        "idle [200]": ("0.0 KiB", "0.0 KiB", "731.5 KiB", "731.5 KiB", "0.0 KiB"),
        "worker [201]": ("0.0 KiB", "0.0 KiB", "931.5 KiB", "931.5 KiB", "0.0 KiB")}
    by_name = run_main("--diff", str(before), procfs=after_tree.root)
    assert diff_rows(by_name.out) == {
        "idle (2->1)": ("-808.0 KiB", "-123.5 KiB", "1.6 MiB", "731.5 KiB", "-931.5 KiB"),
        "worker": ("+808.0 KiB", "+123.5 KiB", "new", "931.5 KiB", "+931.5 KiB")}


def test_swap_column_and_total(tmp_path):
    before_tree, after_tree = pair(tmp_path)
    program(before_tree, 500, "swapper", 300)
    exe = "/usr/bin/swapper"
    after_tree.add(500, "swapper", exe, maps=program_maps(exe, heap_kib=300, swap_kib=64))
    before = captured(before_tree, tmp_path / "before.tar.gz")
    result = run_main("--diff", str(before), "-S", procfs=after_tree.root)
    header, body = result.out.split("\n\n", 1)
    assert header == ("Private change  Shared change  RAM before   RAM after  RAM change"
                      "  Swap change\tProgram")
    lines = body.splitlines()
    assert ("       0.0 KiB        0.0 KiB   531.5 KiB   531.5 KiB     0.0 KiB"
            "    +64.0 KiB\tswapper") in lines
    assert lines[-3:] == ["-" * 78,
                          " " * 34 + "4.5 MiB     6.4 MiB    +1.9 MiB    +64.0 KiB",
                          "=" * 78]
    assert run_main("--diff", str(before), "-S", "-t", procfs=after_tree.root).out == "+65536\n"


def test_only_the_change_of_the_total(trees, before):
    result = run_main("--diff", str(before), "-t", procfs=trees[1].root)
    assert (result.out, result.err, result.status) == ("+%d\n" % (1948 * 1024), "", 0)
    shrunk = run_main("--diff", str(before), "-t", "-p", "400", procfs=trees[1].root)
    assert shrunk.out == "-%d\n" % (1131.5 * 1024)
    assert run_main("--diff", str(before), "-t", "-p", "200", procfs=trees[1].root).out == "+0\n"


def test_no_total_without_pss(tmp_path):
    """A kernel without Pss: no footer, and -t prints nothing and fails,
    with 3.14's words."""
    trees = []
    for name, heap in (("before", 1000), ("after", 1500)):
        tree = diff_trees.machine(ProcTree(tmp_path / name, "2.6.18"))
        program(tree, 100, "leaky", heap)
        trees.append(tree)
    before = captured(trees[0], tmp_path / "before.tar.gz")
    table = run_main("--diff", str(before), procfs=trees[1].root)
    assert table.status == 0
    assert table.err == ("Warning: Shared memory is slightly over-estimated by this system\n"
                         "for each program, so totals are not reported.\n")
    assert table.out.count("\n") == 3 and "-----" not in table.out
    assert diff_rows(table.out)["leaky"][4] == "+500.0 KiB"
    total = run_main("--diff", str(before), "-t", procfs=trees[1].root)
    assert (total.out, total.status) == ("", 1)
    assert total.err.startswith("Error: Shared memory is slightly over-estimated")


def test_no_rows(trees, before):
    """No process on either side: the header alone, as 3.14 prints it."""
    result = run_main("--diff", str(before), "-p", "99999", procfs=trees[1].root)
    assert (result.out, result.status) == (HEADER, 0)
    assert run_main("--diff", str(before), "-p", "99999", "-t", procfs=trees[1].root).out == ""


def test_pids_filter_both_sides(trees, before):
    result = run_main("--diff", str(before), "-p", "100,400", procfs=trees[1].root)
    assert list(diff_rows(result.out)) == ["goner", "leaky"]


def test_other_groupings(trees, before):
    by_user = run_main("--diff", str(before), "--group-by", "user", procfs=trees[1].root)
    assert diff_rows(by_user.out) == {
        "root (4)": ("+1.9 MiB", "0.0 KiB", "3.9 MiB", "5.8 MiB", "+1.9 MiB")}
    by_cmdline = run_main("--diff", str(before), "-s", procfs=trees[1].root)
    assert list(diff_rows(by_cmdline.out)) == ["/usr/bin/goner", "/usr/bin/idle (2)",
                                               "/usr/bin/newbie", "/usr/bin/leaky"]
    # The header names the rows, as the table's does.
    assert by_user.out.startswith(HEADER.replace("\tProgram", "\tUser"))
    assert by_cmdline.out.startswith(HEADER)


def test_mapping_rows(tmp_path):
    """--group-by mapping compares what is mapped: the heaps' row, of every
    process's heap, changes by leaky's 2048 KiB less goner's 900 plus
    newbie's 800 (1948 KiB); goner's and newbie's executables went and
    came."""
    before_tree, after_tree = diff_trees.pair(tmp_path)
    before = diff_trees.captured(before_tree, tmp_path / "m.tar.gz", "--group-by", "mapping")
    done = run_main("--diff", str(before), "--group-by", "mapping", procfs=after_tree.root)
    assert done.status == 0 and done.err == "", done.err
    assert done.out.startswith(HEADER.replace("\tProgram", "\tMapping"))
    rows = diff_rows(done.out)
    assert rows["[heap] (4)"][4] == "+1.9 MiB"
    assert rows["/usr/bin/leaky"][4] == "0.0 KiB"
    assert rows["/usr/bin/goner"][3] == "gone" and rows["/usr/bin/newbie"][2] == "new"
    # A BEFORE without full smaps cannot be read by mapping.
    plain = diff_trees.captured(before_tree, tmp_path / "plain.tar.gz")
    done = run_main("--diff", str(plain), "--group-by", "mapping", procfs=after_tree.root)
    assert (done.status, done.stdout) == (2, b"")
    assert done.err == ("ps_mem: --group-by mapping cannot read %s: it holds no full smaps (it"
                        " was captured without --group-by mapping)\n" % plain)


# ----------------------------------------------------------------------------
# Order: by the change
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("options, names", [
    ([], ["goner", "idle (2)", "newbie", "leaky"]),
    (["--reverse"], ["leaky", "newbie", "idle (2)", "goner"]),
    (["--sort", "private"], ["goner", "idle (2)", "newbie", "leaky"]),
    # Equal changes keep AFTER's order (ascending RAM), then the gone rows.
    (["--sort", "shared"], ["goner", "idle (2)", "leaky", "newbie"]),
    (["--sort", "count"], ["goner", "idle (2)", "leaky", "newbie"]),
    (["--sort", "name"], ["goner", "idle (2)", "leaky", "newbie"]),
    (["--sort", "name", "--reverse"], ["newbie", "leaky", "idle (2)", "goner"]),
    (["--top", "2"], ["newbie", "leaky"]),
    (["--reverse", "--top", "1"], ["leaky"]),
    (["--sort", "name", "--top", "1"], ["goner"]),
])
def test_order(trees, before, options, names):
    result = run_main("--diff", str(before), *options, procfs=trees[1].root)
    assert list(diff_rows(result.out)) == names


def test_top_totals_cover_the_rows_shown(trees, before):
    result = run_main("--diff", str(before), "--top", "2", procfs=trees[1].root)
    assert result.out.splitlines()[-2] == " " * 34 + "1.2 MiB     4.2 MiB    +3.0 MiB"


# ----------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------


def measure(before, after):
    return {"before": before, "after": after, "change": after - before}


def test_json(trees, before):
    result = run_main("--diff", str(before), "--json", procfs=trees[1].root)
    assert result.status == 0 and result.stderr == b""
    document = json.loads(result.stdout)
    assert list(document) == ["ps_mem_version", "time", "before_time", "kernel",
                              "before_kernel", "programs", "total", "accuracy", "warnings"]
    assert document["before_kernel"] == document["kernel"] == "6.1.0-13-amd64"
    when = diff_trees.manifest(before)["time"]
    import time

    assert document["before_time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    assert [program["name"] for program in document["programs"]] == \
        ["goner", "idle", "newbie", "leaky"]
    goner, idle, newbie, leaky = document["programs"]
    kib = 1024
    assert leaky == {
        "name": "leaky", "new": False, "gone": False,
        "count": measure(1, 1), "pids": {"before": [100], "after": [100]},
        "private": measure(1108 * kib, 3156 * kib), "shared": measure(126464, 126464),
        "ram": measure(1261056, 3358208), "swap": measure(0, 0)}
    assert leaky["ram"]["change"] == 2048 * kib
    assert newbie == {
        "name": "newbie", "new": True, "gone": False,
        "count": measure(0, 1), "pids": {"before": [], "after": [300]},
        "private": measure(0, 908 * kib), "shared": measure(0, 126464),
        "ram": measure(0, int(1031.5 * kib)), "swap": measure(0, 0)}
    assert goner["gone"] and not goner["new"]
    assert goner["ram"] == measure(int(1131.5 * kib), 0)
    assert goner["pids"] == {"before": [400], "after": []}
    assert idle["count"] == measure(2, 2) and idle["ram"]["change"] == 0
    assert document["total"] == {"ram": measure(4026 * kib, 5974 * kib),
                                 "swap": measure(0, 0)}
    assert document["accuracy"] == {"ram": 2, "swap": 2}
    assert document["warnings"] == []
    # The table's sizes are the JSON's, as human() shows them.
    assert human_bytes(leaky["ram"]["after"]) == "3.2 MiB"


def test_json_without_pss_has_no_totals(tmp_path):
    trees = []
    for name in ("before", "after"):
        tree = diff_trees.machine(ProcTree(tmp_path / name, "2.6.18"))
        program(tree, 100, "leaky", 1000)
        trees.append(tree)
    before = captured(trees[0], tmp_path / "before.tar.gz")
    document = json.loads(run_main("--diff", str(before), "--json", procfs=trees[1].root).stdout)
    assert document["total"] == {"ram": None, "swap": None}
    assert document["accuracy"] == {"ram": 1, "swap": 1}
    assert document["warnings"] == [
        "Warning: Shared memory is slightly over-estimated by this system\n"
        "for each program, so totals are not reported."]


def test_json_with_warnings(trees, before, tmp_path):
    other_boot = diff_trees.machine(trees[1], boot_id="ffffffff-0000-4000-8000-000000000000")
    document = json.loads(run_main("--diff", str(before), "--json", procfs=other_boot.root).stdout)
    assert document["warnings"] == [
        "Warning: %s was captured in another boot (its boot_id differs): rows are matched by"
        " name only, never as the same process." % before]


# ----------------------------------------------------------------------------
# With --capture: AFTER is saved as it is compared
# ----------------------------------------------------------------------------


def test_capture_of_after(trees, before, tmp_path):
    after = tmp_path / "after.tar.gz"
    result = run_main("--diff", str(before), "--capture", str(after), procfs=trees[1].root)
    assert (result.out, result.status) == (TABLE, 0)
    assert run_main("--diff", str(before), procfs=after).out == TABLE
    assert run_main(procfs=after).out == run_main(procfs=trees[1].root).out


def test_diff_of_a_capture_with_itself(before):
    result = run_main("--diff", str(before), "-d", procfs=before)
    rows = diff_rows(result.out)
    assert len(rows) == 4 and all(sizes[4] == "0.0 KiB" for sizes in rows.values())


# ----------------------------------------------------------------------------
# Usage
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--delta"], "--delta needs -w: it shows the change since the watch's first sample"),
    (["--delta", "--json"],
     "--delta needs -w: it shows the change since the watch's first sample"),
    (["--diff", "x.tar.gz", "-w", "1"],
     "--diff compares two samples; it cannot be combined with -w (see --delta)"),
    (["--diff", "x.tar.gz", "-w", "1", "--delta"],
     "--diff compares two samples; it cannot be combined with -w (see --delta)"),
    (["--diff", ""], "argument --diff: the file name is empty"),
    (["--diff"], "argument --diff: expected one argument"),
    (["-w", "1", "--delta", "--capture", "x"],
     "--capture takes one sample; it cannot be combined with -w"),
    # A change has a layout of its own: the ledger's, and the options that
    # shape the table, do not apply (--json and --prometheus have their own).
    (["--diff", "x.tar.gz", "--system"], "--diff cannot be combined with --system"),
    (["--diff", "x.tar.gz", "--units", "MiB"], "--diff cannot be combined with --units"),
    (["--diff", "x.tar.gz", "--no-header"], "--diff cannot be combined with --no-header"),
    (["-w", "1", "--delta", "--system"], "--delta cannot be combined with --system"),
    (["-w", "1", "--delta", "--units", "B"], "--delta cannot be combined with --units"),
    (["-w", "1", "--delta", "--prometheus"], "--delta cannot be combined with --prometheus"),
])
def test_usage_errors(args, message):
    result = run_main(*args)
    assert result.status == 2 and result.stdout == b""
    assert result.err.endswith("\nps_mem: error: %s\n" % message), result.err
    assert result.err.startswith("usage: ps_mem ")
