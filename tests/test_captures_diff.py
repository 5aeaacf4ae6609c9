"""--diff BEFORE where BEFORE is not what it should be: not a capture, of
another machine or boot, or later than AFTER.  Each case is one line on
stderr, tested whole, and never a traceback."""

import json
import os
import re
import tarfile

import pytest

from tests import diff_trees
from tests.diff_trees import captured, manifest, pair, rewritten
from tests.harness import run_ours
from tests.harness import live, run_main
from tests.test_output_diff import ROW, TABLE

OTHER_BOOT = "ffffffff-0000-4000-8000-000000000000"
WHEN = 1796000000  # 2026-11-30 00:53:20 UTC, as `date -u -d @1796000000` says


@pytest.fixture
def trees(tmp_path):
    return pair(tmp_path)


@pytest.fixture
def before(trees, tmp_path):
    return captured(trees[0], tmp_path / "before.tar.gz")


def one_line_error(result, message):
    assert (result.err, result.stdout, result.status) == (message + "\n", b"", 2)


# ----------------------------------------------------------------------------
# Not a capture
# ----------------------------------------------------------------------------


def test_a_directory(trees):
    one_line_error(run_main("--diff", str(trees[0].root), procfs=trees[1].root),
                   "ps_mem: cannot read %s: not a usable capture: it is a directory, not a"
                   " file made by --capture" % trees[0].root)


def test_a_fifo_is_not_read(trees, tmp_path):
    fifo = tmp_path / "before.tar.gz"
    os.mkfifo(str(fifo))
    one_line_error(run_main("--diff", str(fifo), procfs=trees[1].root),
                   "ps_mem: cannot read %s: not a usable capture: it is not a regular file"
                   % fifo)
    one_line_error(run_main("--diff", "/dev/null", procfs=trees[1].root),
                   "ps_mem: cannot read /dev/null: not a usable capture: it is not a regular"
                   " file")


def test_a_missing_file(trees, tmp_path):
    missing = tmp_path / "missing.tar.gz"
    one_line_error(run_main("--diff", str(missing), procfs=trees[1].root),
                   "ps_mem: cannot read %s: No such file or directory" % missing)


def test_an_empty_file(trees, tmp_path):
    empty = tmp_path / "empty.tar.gz"
    empty.write_bytes(b"")
    one_line_error(run_main("--diff", str(empty), procfs=trees[1].root),
                   "ps_mem: cannot read %s: not a usable capture: the file is empty" % empty)


def test_a_text_file(trees, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("before the upgrade\n")
    result = run_main("--diff", str(text), procfs=trees[1].root)
    assert (result.stdout, result.status) == (b"", 2)
    assert re.fullmatch(r"ps_mem: cannot read %s: not a usable capture: it is not gzip data,"
                        r" or damaged: [^\n]*\n" % re.escape(str(text)), result.err)


def test_a_capture_without_a_kernel_release(before, trees, tmp_path):
    cut = rewritten(before, tmp_path / "cut.tar.gz", drop=["proc/sys/kernel/osrelease"])
    one_line_error(run_main("--diff", str(cut), procfs=trees[1].root),
                   "ps_mem: cannot read %s: not a usable capture: it holds no kernel release"
                   % cut)


def test_a_cut_capture(before, trees, tmp_path):
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(before.read_bytes()[:-100])
    result = run_main("--diff", str(cut), procfs=trees[1].root)
    assert (result.stdout, result.status) == (b"", 2)
    assert result.err.startswith("ps_mem: cannot read %s: not a usable capture: " % cut)
    assert result.err.count("\n") == 1


def test_nothing_is_captured_when_before_is_refused(trees, tmp_path):
    after = tmp_path / "after.tar.gz"
    result = run_main("--diff", str(trees[0].root), "--capture", str(after),
                      procfs=trees[1].root)
    assert result.status == 2 and not after.exists()


def test_through_the_command_line(trees, tmp_path):
    """As a user runs it: one line, no traceback."""
    text = tmp_path / "notes.txt"
    text.write_text("x")
    result = run_ours("--diff", str(text), procfs=trees[1].root)
    assert result.status == 2 and result.stdout == b""
    assert result.err.startswith("ps_mem: cannot read %s: not a usable capture" % text)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


# ----------------------------------------------------------------------------
# The machine and the boot
# ----------------------------------------------------------------------------


def test_another_boot_matches_rows_by_name_only(before, trees):
    diff_trees.machine(trees[1], boot_id=OTHER_BOOT)
    warning = ("Warning: %s was captured in another boot (its boot_id differs): rows are"
               " matched by name only, never as the same process.\n" % before)
    by_name = run_main("--diff", str(before), procfs=trees[1].root)
    assert (by_name.out, by_name.err, by_name.status) == (TABLE, warning, 0)
    by_pid = run_main("--diff", str(before), "-d", procfs=trees[1].root)
    assert by_pid.err == warning
    marks = sorted((name, sizes[2] == "new", sizes[3] == "gone")
                   for name, sizes in _all_rows(by_pid.out))
    assert marks == [("goner [400]", False, True),
                     ("idle [200]", False, True), ("idle [200]", True, False),
                     ("idle [201]", False, True), ("idle [201]", True, False),
                     ("leaky [100]", False, True), ("leaky [100]", True, False),
                     ("newbie [300]", True, False)]


def _all_rows(stdout):
    """(name, sizes) of every row, names repeated where a row is both new
    and gone (diff_rows() keeps one per name)."""
    body = stdout.split("\n\n", 1)[1].split("-----", 1)[0]
    found = []
    for line in body.splitlines():
        match = ROW.fullmatch(line)
        assert match, line
        found.append((match.group(6), match.groups()[:5]))
    return found


def test_two_captures_of_two_machines(trees, tmp_path):
    before = captured(trees[0], tmp_path / "before.tar.gz")
    diff_trees.machine(trees[1], boot_id=OTHER_BOOT, host="build-2")
    after = captured(trees[1], tmp_path / "after.tar.gz")
    warning = ("Warning: %s was captured on host 'build-1', %s on host 'build-2': rows are"
               " matched by name only, never as the same process.\n" % (before, after))
    result = run_main("--diff", str(before), procfs=after)
    assert (result.out, result.err, result.status) == (TABLE, warning, 0)
    # A tree is not the live system either.
    from_tree = run_main("--diff", str(before), procfs=trees[1].root)
    assert from_tree.err == warning.replace(str(after), str(trees[1].root))


def test_two_machines_need_not_be_in_order(trees, tmp_path):
    """Two machines' clocks say nothing of which came first."""
    before = rewritten(captured(trees[0], tmp_path / "b.tar.gz"), tmp_path / "before.tar.gz",
                       {"time": WHEN + 100})
    diff_trees.machine(trees[1], boot_id=OTHER_BOOT, host="build-2")
    after = rewritten(captured(trees[1], tmp_path / "a.tar.gz"), tmp_path / "after.tar.gz",
                      {"time": WHEN})
    result = run_main("--diff", str(before), procfs=after)
    assert result.status == 0 and result.out == TABLE


def test_a_renamed_host_of_the_same_boot_is_the_same_machine(before, trees):
    diff_trees.machine(trees[1], host="build-1-renamed")
    result = run_main("--diff", str(before), "-d", procfs=trees[1].root)
    assert result.err == "" and "gone" in result.out  # goner, and only goner
    assert [name for name, sizes in _all_rows(result.out) if "gone" in sizes] == ["goner [400]"]


def test_trees_that_say_nothing_of_their_machine(tmp_path):
    """Without boot ids or host names nothing tells two machines apart:
    processes are matched by pid and start time, without a word."""
    before_tree, after_tree = pair(tmp_path, boot_id=None, host=None)
    before = captured(before_tree, tmp_path / "before.tar.gz")
    assert "proc/sys/kernel/hostname" not in _members(before)
    result = run_main("--diff", str(before), "-d", procfs=after_tree.root)
    assert result.err == "" and len(_all_rows(result.out)) == 5


def _members(capture):
    with tarfile.open(str(capture)) as archive:
        return archive.getnames()


def test_host_names_are_quoted_as_data(trees, tmp_path):
    """A host name is whatever the capture says: escaped, one line, cut to
    the 64 characters a host name has at most."""
    hostile = b"evil\x1b]0;pwn\x07" + "\u202e".encode("utf-8") + b"\nsecond line\n"
    before = rewritten(captured(trees[0], tmp_path / "b.tar.gz"), tmp_path / "before.tar.gz",
                       replace={"proc/sys/kernel/hostname": hostile})
    diff_trees.machine(trees[1], boot_id=OTHER_BOOT)
    result = run_main("--diff", str(before), procfs=trees[1].root)
    assert result.err == ("Warning: %s was captured on host 'evil\\x1b]0;pwn\\x07\\u202e', %s"
                          " on host 'build-1': rows are matched by name only, never as the same"
                          " process.\n" % (before, trees[1].root))
    long_name = rewritten(before, tmp_path / "long.tar.gz",
                          replace={"proc/sys/kernel/hostname": b"a" * 5000 + b"\n"})
    result = run_main("--diff", str(long_name), procfs=trees[1].root)
    assert "host '%s'," % ("a" * 64) in result.err
    assert result.err.count("\n") == 1


# ----------------------------------------------------------------------------
# Time: BEFORE must be the earlier
# ----------------------------------------------------------------------------


def test_before_later_than_after(trees, tmp_path):
    before = rewritten(captured(trees[0], tmp_path / "b.tar.gz"), tmp_path / "before.tar.gz",
                       {"time": WHEN + 100})
    after = rewritten(captured(trees[1], tmp_path / "a.tar.gz"), tmp_path / "after.tar.gz",
                      {"time": WHEN})
    one_line_error(run_main("--diff", str(before), procfs=after),
                   "ps_mem: cannot compare with %s: it was captured later (2026-11-30 00:55:00"
                   " UTC) than %s (2026-11-30 00:53:20 UTC); --diff takes the earlier"
                   % (before, after))
    # The other way round is what was meant.
    assert run_main("--diff", str(after), procfs=before).status == 0


def test_the_same_time_is_not_later(trees, tmp_path):
    before = rewritten(captured(trees[0], tmp_path / "b.tar.gz"), tmp_path / "before.tar.gz",
                       {"time": WHEN})
    after = rewritten(captured(trees[1], tmp_path / "a.tar.gz"), tmp_path / "after.tar.gz",
                      {"time": WHEN})
    assert run_main("--diff", str(before), procfs=after).out == TABLE


def test_before_in_the_future_of_a_tree(before, trees, tmp_path):
    future = rewritten(before, tmp_path / "future.tar.gz", {"time": 4102444800})
    result = run_main("--diff", str(future), procfs=trees[1].root)
    assert (result.stdout, result.status) == (b"", 2)
    assert re.fullmatch(r"ps_mem: cannot compare with %s: it was captured later \(2100-01-01"
                        r" 00:00:00 UTC\) than %s \(20\d\d-\d\d-\d\d \d\d:\d\d:\d\d UTC\);"
                        r" --diff takes the earlier\n"
                        % (re.escape(str(future)), re.escape(str(trees[1].root))), result.err)


def test_the_manifest_time_is_the_capture_time(before):
    assert isinstance(manifest(before)["time"], float)


# ----------------------------------------------------------------------------
# Against the live system
# ----------------------------------------------------------------------------


def _this_host() -> str:
    with open("/proc/sys/kernel/hostname") as handle:
        return handle.read().strip()


@live
def test_live_refuses_a_capture_of_another_machine(before, tmp_path):
    foreign = rewritten(before, tmp_path / "foreign.tar.gz",
                        replace={"proc/sys/kernel/hostname": b"elsewhere.invalid\n"})
    result = run_ours("--diff", str(foreign), "-p", str(os.getpid()))
    assert (result.err, result.stdout, result.status) == (
        "ps_mem: cannot compare with %s: it was captured on host 'elsewhere.invalid', and this"
        " is host '%s' (to compare two machines, give the other's capture to --procfs)\n"
        % (foreign, _this_host()), b"", 2)


@live
def test_live_after_a_reboot(before, tmp_path):
    """A capture of this host from another boot: compared, with the
    warning; a capture of this boot: no warning."""
    host = _this_host().encode() + b"\n"
    rebooted = rewritten(before, tmp_path / "rebooted.tar.gz",
                         replace={"proc/sys/kernel/hostname": host})
    pid = str(os.getpid())
    result = run_ours("--diff", str(rebooted), "-p", pid)
    assert result.status == 0
    assert result.err == ("Warning: %s was captured in another boot (its boot_id differs): rows"
                          " are matched by name only, never as the same process.\n" % rebooted)
    with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
        this_boot = handle.read()
    same = rewritten(rebooted, tmp_path / "same.tar.gz",
                     replace={"proc/sys/kernel/random/boot_id": this_boot})
    result = run_ours("--diff", str(same), "-p", pid)
    assert (result.err, result.status) == ("", 0)
    assert json.loads(run_ours("--diff", str(same), "-p", pid, "--json").stdout)["warnings"] == []


@live
def test_live_capture_records_this_machine(tmp_path):
    capture = tmp_path / "live.tar.gz"
    done = run_ours("--capture", str(capture), "-p", str(os.getpid()))
    assert done.status == 0
    with tarfile.open(str(capture)) as archive:
        hostname = archive.extractfile("proc/sys/kernel/hostname").read()
        boot_id = archive.extractfile("proc/sys/kernel/random/boot_id").read()
    assert hostname == os.uname().nodename.encode() + b"\n"
    with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
        assert boot_id == handle.read()
