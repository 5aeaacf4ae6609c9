"""Safe with a stranger's capture (issue 10): hostile captures, trees and
command lines, each case of the issue run as a user runs ps_mem.

Every run is `python ps_mem.py ...` under a 512 MiB address-space limit and
a timeout far above what the input needs (tests/hostile.py's run_bounded()):
a MemoryError shows as a traceback, a hang as the timeout.  The hostile
inputs come from tests/hostile.py.  Those at size (4 GiB members, 1 GiB of
pax records, millions of pids or members, 60 MiB of names, 200,000
mappings) and the captures cut at every point take seconds each: they are
marked `stress`, which the full suite runs and the quick lane leaves out.

Each test's docstring says what ps_mem did when issue 10 was filed
("Before: ...").  What ps_mem must answer (the texts proposed for issue 10):

  * A capture it cannot use: exit 2, nothing on stdout, one line on stderr,
        ps_mem: cannot read FILE: not a usable capture: REASON
    where REASON names what is wrong ("ps_mem-capture.json is not a regular
    file", "bad \"time\" in ps_mem-capture.json", "truncated: ..." or
    "incomplete: ...", "member NAME is larger than N bytes", ...).  The
    tests hold to the prefix, and to the reason's key word where it
    matters: the manifest's name, the field's name, truncated/incomplete.
  * A capture it can use, however odd (members no manifest names, a pid
    listed twice): the report the capture holds, as the seed it was made
    from gives it.  Refusing it instead (the line above) is also right.
  * A process whose files cannot be parsed, or are not regular files, in a
    tree or a capture: left out, and counted on stderr, once for all,
        Warning: N process(es) could not be parsed; their memory is not included.
    ("read" for "parsed" is accepted, but not "(permission denied)").
  * A proc root mounted with hidepid: one line on stderr saying so,
        Warning: DIR is mounted with hidepid=invisible: other users'
        processes are missing from the totals.      (on one line)
  * A bad command-line value: 3.14's usage lines, then one line
        ps_mem: error: MESSAGE
    with the value escaped (a newline as \\n), exit 2, nothing on stdout.
  * `--capture FILE` fails to write: one line,
        ps_mem: cannot write FILE: [Errno 28] No space left on device
    and no temp file is left, nor a partial FILE; signals leave none either.
"""

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import pytest

from tests import hostile
from tests.harness import OURS, REFERENCE_DIR, Result, live, parse_table, run_ours, run_reference
from tests.hostile import MANIFEST, Bounded, Member, run_bounded
from tests.procfs_builder import ProcTree, program_maps, rollup_text, statm_text
from tests.realproc import Processes, build
from tests.trees import few

# For inputs a fixture tree's size, a hundred times what they need.
SMALL_TIMEOUT = 20.0
CAPTURE_ERROR = "ps_mem: cannot read %s: not a usable capture: "
PARSE_WARNING = re.compile(r"Warning: (\d+) process(?:es)? could not be (?:parsed|read)\b"
                           r"(?! \(permission denied\))[^\n]*\n")
USAGE_ERROR = re.compile(r"usage: ps_mem [^\n]*\n(?: +[^\n]*\n)*ps_mem: error: ([^\n]*)\n\Z")
VICTIM = 5000
stress = pytest.mark.stress


def need_reference() -> None:
    if not (REFERENCE_DIR / "ps_mem.py").exists():
        pytest.skip("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)


# ----------------------------------------------------------------------------
# What a run must look like
# ----------------------------------------------------------------------------


def assert_bounded(run: Bounded) -> None:
    """Within the limits: no traceback (MemoryError is one), not killed,
    not past the timeout, a documented exit status."""
    assert not run.timed_out, "killed at the timeout: " + run.describe()
    assert b"Traceback" not in run.result.stderr, run.result.err[-2000:]
    assert run.result.status in (0, 1, 2), run.describe()


def assert_refused(run: Bounded, path: os.PathLike, reason: Optional[str] = None) -> None:
    """Exit 2, nothing on stdout, one line: not a usable capture, REASON
    (a regex searched for in the reason)."""
    assert_bounded(run)
    result = run.result
    assert result.status == 2 and result.stdout == b"", run.describe()
    assert result.err.endswith("\n") and result.err.count("\n") == 1, result.err[-2000:]
    prefix = CAPTURE_ERROR % os.fspath(path)
    assert result.err.startswith(prefix), result.err[:2000]
    if reason is not None:
        assert re.search(reason, result.err[len(prefix):]), result.err


def assert_report_or_refused(run: Bounded, path: os.PathLike, expected: Result) -> None:
    """Either the report EXPECTED (the seed's) or refused in one line:
    never a partial report, never another one."""
    if run.result.status == 2:
        assert_refused(run, path)
    else:
        assert_bounded(run)
        assert run.result == expected, run.describe()


def parse_warnings(stderr: str) -> List[int]:
    return [int(count) for count in PARSE_WARNING.findall(stderr)]


def assert_counted(run: Bounded, expected_stdout: bytes, count: int = 1,
                   other_stderr: str = "") -> None:
    """Status 0, stdout EXPECTED_STDOUT (without the bad processes), and
    stderr the one warning counting COUNT processes (after OTHER_STDERR)."""
    assert_bounded(run)
    result = run.result
    assert result.status == 0, run.describe()
    assert result.stdout == expected_stdout, result.out
    assert parse_warnings(result.err) == [count], result.err
    assert PARSE_WARNING.sub("", result.err) == other_stderr, result.err


# ----------------------------------------------------------------------------
# Seeds: captures ps_mem.py wrote of fixture trees
# ----------------------------------------------------------------------------


class Seed:
    """A capture written by ps_mem.py, its members, and its reports."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.members = hostile.read_members(path)
        self._reports: Dict[Tuple[str, ...], Result] = {}

    def report(self, *args: str) -> Result:
        if args not in self._reports:
            run = run_bounded(*args, procfs=self.path)
            assert_bounded(run)
            assert run.result.status == 0 and run.result.stderr == b"", run.describe()
            self._reports[args] = run.result
        return self._reports[args]


def _capture(tree: ProcTree, path: Path) -> Path:
    made = run_ours("--capture", str(path), procfs=tree.root)
    assert made.status == 0 and path.is_file(), made
    return path


@pytest.fixture(scope="session")
def seed(proc_trees, tmp_path_factory) -> Seed:
    """rollup_6_1's capture: a server of 17 processes."""
    path = tmp_path_factory.mktemp("seed") / "seed.tar.gz"
    return Seed(_capture(proc_trees.get("rollup_6_1"), path))


@pytest.fixture(scope="session")
def small_seed(tmp_path_factory) -> Seed:
    """Three processes: few enough members to cut the capture at each."""
    root = tmp_path_factory.mktemp("small")
    tree = ProcTree(root / "proc", "6.1")
    few(tree)
    return Seed(_capture(tree, root / "small.tar.gz"))


# A leaf of rollup_6_1 (no child names itself after it): journald.
LEAF = 412


def _write(tmp_path: Path, members: Sequence[Member], name: str = "hostile.tar.gz",
           **options) -> Path:
    return hostile.write_capture(tmp_path / name, members, **options)


# ----------------------------------------------------------------------------
# Manifests: not a file, fields of the wrong type, too deep
# ----------------------------------------------------------------------------

MANIFEST_KINDS = ["directory", "fifo", "char device", "symlink to a member",
                  "symlink to itself", "symlink out of the archive", "hard link to a member",
                  "hard link to itself"]


@pytest.mark.parametrize("kind", MANIFEST_KINDS)
def test_manifest_that_is_not_a_regular_file(seed, tmp_path, kind):
    """Before: AttributeError (directory, FIFO), KeyError (a link out of
    the archive), RecursionError (a link to itself)."""
    path = _write(tmp_path, hostile.manifest_as(seed.members, kind))
    assert_refused(run_bounded(procfs=path), path, re.escape(MANIFEST))


class Field(NamedTuple):
    field: str
    value: object
    args: Tuple[str, ...] = ()


# The manifest's fields, each of a type or value no capture has.  The errno
# cases are of a file the seed lacks (fixture trees have no cgroup files),
# so that its recorded error is what --group-by cgroup reads.
CGROUP = ("--group-by", "cgroup")
FIELDS = {
    "address_spaces as an empty list": Field("address_spaces", []),
    "address_spaces as a list of pairs": Field("address_spaces", [[LEAF, 1]]),
    "address_spaces {'100': {}}": Field("address_spaces", {"100": {}}),
    "address_spaces of a listed pid {}": Field("address_spaces", {str(LEAF): {}}),
    "address_spaces of a listed pid [[]]": Field("address_spaces", {str(LEAF): [[1]]}),
    "address_spaces keyed by a word": Field("address_spaces", {"x": 1}),
    "users {'0': 1}": Field("users", {"0": 1}, ("--group-by", "user")),
    "users {'0': null}": Field("users", {"0": None}, ("--group-by", "user")),
    "users {'0': ['root']}": Field("users", {"0": ["root"]}, ("--group-by", "user")),
    "errno 2147483648": Field("errors", {"%d/cgroup" % LEAF: 2 ** 31}, CGROUP),
    "errno 10**30": Field("errors", {"%d/cgroup" % LEAF: 10 ** 30}, CGROUP),
    "errno -1": Field("errors", {"%d/cgroup" % LEAF: -1}, CGROUP),
    "time 1e30": Field("time", 1e30, ("--json",)),
    "time -1e30": Field("time", -1e30, ("--json",)),
    "time NaN": Field("time", float("nan"), ("--json",)),
    "time Infinity": Field("time", float("inf"), ("--json",)),
}


@pytest.mark.parametrize("case", sorted(FIELDS))
def test_manifest_field_of_the_wrong_type(seed, tmp_path, case):
    """AttributeError, TypeError, ValueError or OverflowError in 3.14's
    successor; the reason names the field."""
    field = FIELDS[case]
    document = hostile.manifest_of(seed.members)
    document[field.field] = field.value
    path = _write(tmp_path, hostile.with_manifest(seed.members, document))
    assert_refused(run_bounded(*field.args, procfs=path), path, re.escape(field.field))


@pytest.mark.parametrize("inside_object", [False, True], ids=["whole", "a field"])
def test_manifest_of_100000_nested_brackets(seed, tmp_path, inside_object):
    """RecursionError in json.loads."""
    path = _write(tmp_path, hostile.with_manifest(
        seed.members, hostile.nested_brackets(100000, inside_object)))
    assert_refused(run_bounded(procfs=path), path, re.escape(MANIFEST))


# ----------------------------------------------------------------------------
# Resources: memory and time proportional to a real capture
# ----------------------------------------------------------------------------


@stress
@pytest.mark.parametrize("name", ["proc/1/environ", "notes.bin"])
def test_4_gib_member_no_pid_refers_to(seed, tmp_path, name):
    """A 4 MiB capture of a 4 GiB member of zeros that nothing reads.
    Before: read whole."""
    path = _write(tmp_path, seed.members + [hostile.huge_member(name, 4 * hostile.GIB)])
    assert_report_or_refused(run_bounded(procfs=path), path, seed.report())


@stress
def test_4_gib_member_a_pid_refers_to(seed, tmp_path):
    """LEAF's smaps_rollup is 4 GiB of zeros: refused, or LEAF left out
    and counted (the rest as the seed shows it)."""
    name = "proc/%d/smaps_rollup" % LEAF
    path = _write(tmp_path, hostile.replacing(seed.members, name,
                                              hostile.huge_member(name, 4 * hostile.GIB)))
    run = run_bounded(procfs=path)
    if run.result.status == 2:
        assert_refused(run, path)
    else:
        assert_bounded(run)
        assert run.result.status == 0 and parse_warnings(run.result.err) == [1], run.describe()


@stress
def test_2_gib_pax_header(seed, tmp_path):
    """A 2 MiB capture whose extended header before a member is 2 GiB:
    tarfile reads it whole."""
    index = hostile.find(seed.members, "proc/%d/status" % LEAF)
    members = seed.members[:index] + [hostile.huge_pax_header(2 * hostile.GIB)] \
        + seed.members[index:]
    path = _write(tmp_path, members)
    assert_report_or_refused(run_bounded(procfs=path), path, seed.report())


@stress
def test_100_mib_of_pax_headers_before_one_member(seed, tmp_path):
    """A hundred extended headers of 1 MiB each before one member, their
    short records' keys all different.  Before: merged into one dict of
    ten million entries, a MemoryError."""
    index = hostile.find(seed.members, "proc/%d/status" % LEAF)
    members = seed.members[:index] + hostile.distinct_pax_headers(100) + seed.members[index:]
    path = _write(tmp_path, members)
    run = run_bounded(procfs=path)
    assert_bounded(run)
    assert (run.result.status, run.result.stdout, run.result.err) == (
        2, b"", CAPTURE_ERROR % path
        + "a tar member's extended headers come to more than 64 KiB\n"), run.describe()


# Extended headers of the smallest records ("6 a=b\n"), each parsed: 1 GiB
# of them all before one member, or one of 64 KiB before each of 15,000.
PAX_RECORDS = b"6 a=b\n" * (hostile.MIB // 6)
PAX_SPREADS = {"1020 of 1 MiB before one member": (1, 1020, PAX_RECORDS),
               "64 KiB before each of 15000 members": (15000, 1, PAX_RECORDS[:(64 << 10) - 4])}


@stress
@pytest.mark.parametrize("spread", sorted(PAX_SPREADS))
def test_1_gib_of_pax_records(seed, tmp_path, spread):
    """Before: 152 s to read 1,020 headers before one member."""
    members, headers, records = PAX_SPREADS[spread]
    extra = []
    for number in range(members):
        extra += [hostile.pax_header(records)] * headers
        extra.append(hostile.member("proc/junk/%d" % number, b"x"))
    path = _write(tmp_path, seed.members[:1] + extra + seed.members[1:])
    run = run_bounded(procfs=path, timeout=SMALL_TIMEOUT)
    assert_bounded(run)
    reason = ("a tar member's extended headers come to more than 64 KiB" if headers > 1
              else "a tar member's extended headers hold more than 64 records")
    assert (run.result.status, run.result.stdout, run.result.err) == (
        2, b"", CAPTURE_ERROR % path + reason + "\n"), run.describe()


def _with_exe_links(seed: Seed, count: int, target: str) -> List[Member]:
    """The seed with COUNT more pids listed, each only an exe link to TARGET."""
    document = hostile.manifest_of(seed.members)
    extra = list(range(100000, 100000 + count))
    document["pids"] = document["pids"] + extra
    links = [hostile.member("proc/%d/exe" % pid, type=hostile.tarfile.SYMTYPE,
                            linkname=target) for pid in extra]
    members = hostile.with_manifest(seed.members, document)
    return _recounted(members[:-1] + links + members[-1:])


def _recounted(members: Sequence[Member]) -> List[Member]:
    """MEMBERS with the end record counting the members between it and
    the manifest, as ps_mem writes it."""
    inside = members[1:-1]
    end = {"files": len(inside), "bytes": sum(hostile.data_size(item) for item in inside)}
    return list(members[:-1]) + [members[-1]._replace(data=json.dumps(end).encode())]


@stress
def test_exe_links_of_60000_bytes(seed, tmp_path):
    """4,000 exe links, each to 60,000 bytes that are not UTF-8 (a str of
    twice that).  Before: a MemoryError."""
    path = _write(tmp_path, _with_exe_links(seed, 4000, "/" + "\udcff" * 59999))
    run = run_bounded(procfs=path)
    assert_bounded(run)
    assert (run.result.status, run.result.stdout, run.result.err) == (
        2, b"", CAPTURE_ERROR % path
        + "its proc/100000/exe links to more than 4096 bytes, which no kernel writes\n"
    ), run.describe()


@stress
def test_exe_links_of_4096_bytes_are_counted_as_kept(seed, tmp_path):
    """70,000 exe links, each to 4,096 bytes that are not UTF-8: 560 MiB of
    targets in memory.  Before: a MemoryError."""
    path = _write(tmp_path, _with_exe_links(seed, 70000, "/" + "\udcff" * 4095))
    run = run_bounded(procfs=path)
    assert_bounded(run)
    assert (run.result.status, run.result.stdout, run.result.err) == (
        2, b"", CAPTURE_ERROR % path + "its files come to more than 256 MiB\n"), run.describe()
    assert run.max_rss_kib < 400 << 10, run.describe()


def _junk_of_empty_lists(document: dict, size: int) -> bytes:
    """DOCUMENT as JSON, with a key it does not know: SIZE bytes of "[],"."""
    text = json.dumps(dict(document, junk="@JUNK@")).encode()
    return text.replace(b'"@JUNK@"', b"[" + b"[]," * ((size - 2) // 3) + b"[]]")


# (MiB of "[]," in the manifest, or in the system record, and the reason.)
JUNK = {
    "manifest of 60 MiB": (MANIFEST, 60, "its %s is larger than 8 MiB" % MANIFEST),
    "manifest of 7 MiB": (MANIFEST, 7, "its %s holds more than 1048576 JSON values" % MANIFEST),
    "system record of 60 MiB": ("proc/ps_mem-system.json", 60,
                                "its ps_mem-system.json is not as ps_mem writes it:"
                                " larger than 16 MiB"),
    "system record of 15 MiB": ("proc/ps_mem-system.json", 15,
                                "its ps_mem-system.json is not as ps_mem writes it:"
                                " more than 1048576 JSON values"),
}


@pytest.mark.parametrize("case", sorted(JUNK))
def test_json_of_millions_of_empty_lists(seed, tmp_path, case):
    """A key no ps_mem knows, holding "[[],[],...]": each list an object
    json.loads() makes, for 3 bytes.  Before: read whole, then the key
    passed over; a MemoryError at 60 MiB, 445 MiB of RSS at 15 MiB."""
    name, mib, reason = JUNK[case]
    members = seed.members
    if name == MANIFEST:
        document = hostile.manifest_of(members)
    else:  # the seed's tree has no mounts to record
        document = {"mounts": [], "ramfs": [], "zram_used_bytes": {}}
        members = members[:-1] + [hostile.member(name)] + members[-1:]
    path = _write(tmp_path, _recounted(hostile.with_data(
        members, name, _junk_of_empty_lists(document, mib << 20))))
    run = run_bounded(procfs=path)
    assert_bounded(run)
    assert (run.result.status, run.result.stdout, run.result.err) == (
        2, b"", CAPTURE_ERROR % path + reason + "\n"), run.describe()
    assert run.max_rss_kib < 256 << 10, run.describe()


@stress
def test_manifest_of_the_most_errors_is_read_within_bounds(seed, tmp_path):
    """As many values as a manifest's bytes may hold, each as costly as
    any: an "errors" entry of its own short key.  Read, in bounded memory."""
    document = hostile.manifest_of(seed.members)
    document["errors"] = {"%x" % number: 2 for number in range(760000)}
    text = json.dumps(document, separators=(",", ":")).encode()
    assert 7 << 20 < len(text) <= 8 << 20
    path = _write(tmp_path, hostile.with_manifest(seed.members, text))
    run = run_bounded(procfs=path)
    assert_bounded(run)
    assert run.result == seed.report(), run.describe()
    # Half the address space the fuzzer gives a run (ps_mem.py's own
    # compilation included, when it runs as a script).
    assert run.max_rss_kib < 256 << 10, run.describe()


@stress
@pytest.mark.parametrize("args", [(), ("-s",), ("--group-by", "app")])
def test_cmdline_of_60_mib_of_nuls(seed, tmp_path, args):
    """LEAF's cmdline is 60 MiB of NULs: sixty million empty arguments,
    which show as a command line of none.  Before: a MemoryError."""
    name = "proc/%d/cmdline" % LEAF
    path = _write(tmp_path, _recounted(hostile.with_data(
        seed.members, name, hostile.huge_member(name, 60 * hostile.MIB).data)))
    expected = run_bounded(*args, procfs=_write(
        tmp_path, _recounted(hostile.with_data(seed.members, name, b"\0")), name="empty.tar.gz"))
    run = run_bounded(*args, procfs=path)
    assert_bounded(run)
    assert run.result == expected.result and run.result.status == 0, run.describe()
    assert run.max_rss_kib < 300 << 10, run.describe()


def _statuses(seed: Seed, count: int, data: hostile.Stream) -> List[Member]:
    members = seed.members
    for name in hostile.pid_member_names(members, "status")[:count]:
        members = hostile.with_data(members, name, data)
    return _recounted(members)


@stress
@pytest.mark.parametrize("args", [(), ("--group-by", "user")])
def test_status_of_60_mib_names(seed, tmp_path, args):
    """Four processes' status files are "Name:" and 60 MiB: left out and
    counted, as an empty status is.  Before: a MemoryError."""
    text = (b"Name:\t" + b"n" * (60 * hostile.MIB) + b"\nUmask:\t0022\nState:\tS (sleeping)\n"
            b"Tgid:\t1\nNgid:\t0\nPid:\t1\nPPid:\t0\nTracerPid:\t0\nUid:\t0\t0\t0\t0\n")
    huge = hostile.Stream(len(text), [text])
    expected = run_bounded(*args, procfs=_write(tmp_path, _statuses(seed, 4, hostile.Stream(
        0, [])), name="empty.tar.gz"))
    run = run_bounded(*args, procfs=_write(tmp_path, _statuses(seed, 4, huge)))
    assert_bounded(run)
    assert parse_warnings(run.result.err) == [4], run.describe()
    assert run.result == expected.result, run.describe()
    assert run.max_rss_kib < 400 << 10, run.describe()


@stress
def test_one_pid_listed_3_million_times(seed, tmp_path):
    """A manifest of a few KB, and a list in memory of three million."""
    path = _write(tmp_path, hostile.manifest_pid_repeated(seed.members, LEAF, 3000000))
    assert_report_or_refused(run_bounded(procfs=path), path, seed.report())


@stress
def test_20_million_pids(seed, tmp_path):
    """More pids than any kernel has (pid_max is at most 4,194,304): past
    a list of them all in memory."""
    path = _write(tmp_path, hostile.manifest_with_pids(
        seed.members, lambda: iter([range(1, 20000001)])))
    assert_report_or_refused(run_bounded(procfs=path), path, seed.report())


def test_rollup_of_5_million_pss_lines(seed, tmp_path):
    """50 MB of "Pss:" lines (the kernel writes one), each found and kept
    by the regex.  Refused, or LEAF counted as unparsable, or read: Pss
    5,000,000 KiB and 0.5 KiB a line, so "7.2 GiB" of shared memory."""
    path = _write(tmp_path, hostile.with_data(seed.members, "proc/%d/smaps_rollup" % LEAF,
                                              hostile.rollup_of_pss_lines(5000000)))
    run = run_bounded(procfs=path)
    if run.result.status == 2:
        assert_refused(run, path)
        return
    assert_bounded(run)
    assert run.result.status == 0, run.describe()
    if not parse_warnings(run.result.err):
        rows = [row for row in parse_table(run.result.out).rows if row.name == "systemd-journald"]
        assert [(row.private, row.shared, row.ram) for row in rows] == \
            [("0.0 KiB", "7.2 GiB", "7.2 GiB")], run.result.out


@stress
def test_one_million_tiny_members(seed, tmp_path):
    """Members no manifest names, a byte each: tarfile keeps every one."""
    path = _write(tmp_path, seed.members + [hostile.many_tiny_members(1000000)])
    assert_report_or_refused(run_bounded(procfs=path), path, seed.report())


# ----------------------------------------------------------------------------
# Captures cut short
# ----------------------------------------------------------------------------


def _cut_points(members: Sequence[Member]) -> List[int]:
    """Where to cut the tar stream: at each member's header, inside it, in
    the middle of its data, and past the last member."""
    points = []
    for extent in hostile.extents(members):
        points += [extent.header, extent.header + 100]
        if extent.end > extent.data:
            points.append((extent.data + extent.end) // 2)
    last = hostile.extents(members)[-1].end
    return sorted(set(point for point in points if point > 0) | {last, last + 512})


@stress
def test_capture_cut_short_as_ctrl_c_leaves_it(small_seed, tmp_path):
    """The tar stream cut at each member, the gzip stream closed: what
    Ctrl-C leaves of `--capture`.  Before: half of such files loaded with
    exit 0 and no warning.  Every cut that loses a member's
    bytes is refused as truncated (or incomplete); past the last member,
    the file may read as whole."""
    members = small_seed.members
    last = hostile.extents(members)[-1].end
    expected = small_seed.report("-t")
    failures = []
    for cut in _cut_points(members):
        path = _write(tmp_path, members, "cut-%d.tar.gz" % cut, cut=cut)
        run = run_bounded("-t", procfs=path, timeout=SMALL_TIMEOUT)
        try:
            if cut < last:
                assert_refused(run, path, "truncated|incomplete")
            else:
                assert_report_or_refused(run, path, expected)
        except AssertionError as error:
            failures.append("cut at %d of %d (%s): %s" % (
                cut, last, _member_at(members, cut), str(error).splitlines()[0][:300]))
        path.unlink()
    assert not failures, "\n".join(["%d of the cuts:" % len(failures)] + failures)


def _member_at(members: Sequence[Member], offset: int) -> str:
    for extent in hostile.extents(members):
        if offset < extent.end + 512:
            return extent.name
    return "past the members"


@stress
def test_capture_cut_dead(small_seed, tmp_path):
    """The gzip file itself cut short (a write killed, a full disk): never
    a partial report."""
    whole = small_seed.path.read_bytes()
    expected = small_seed.report("-t")
    failures = []
    for size in sorted(set(range(10, len(whole), max(1, len(whole) // 25)))
                       | {len(whole) - 1, len(whole) - 4, len(whole) - 8}):
        path = hostile.cut_file(small_seed.path, size, tmp_path / ("dead-%d.tar.gz" % size))
        run = run_bounded("-t", procfs=path, timeout=SMALL_TIMEOUT)
        try:
            assert_report_or_refused(run, path, expected)
        except AssertionError as error:
            failures.append("%d of %d bytes: %s" % (size, len(whole),
                                                     str(error).splitlines()[0][:300]))
        path.unlink()
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------
# Members no manifest names, names that climb out, links and devices
# ----------------------------------------------------------------------------

ENV_SECRET = b"AWS_SECRET_ACCESS_KEY=hostile-test-secret\0"


def test_members_the_manifest_does_not_name(seed, tmp_path):
    """An environ (secrets), a pid no manifest lists, files elsewhere:
    read as the seed, or refused; their bytes never shown."""
    extra = [hostile.member("proc/1/environ", ENV_SECRET),
             hostile.member("proc/424242/status", b"Name:\tghost\nPPid:\t1\n"),
             hostile.member("proc/424242/smaps_rollup", rollup_text(
                 program_maps("/ghost", heap_kib=9000))),
             hostile.member("proc/424242/exe", type=hostile.tarfile.SYMTYPE, linkname="/ghost"),
             hostile.member("notes.txt", b"hello\n"),
             hostile.member("other/proc/1/status", b"Name:\tother\n")]
    path = _write(tmp_path, seed.members + extra)
    for args in [(), ("-s",), ("--json",)]:
        run = run_bounded(*args, procfs=path)
        assert_report_or_refused(run, path, seed.report(*args))
        assert b"hostile-test-secret" not in run.result.stdout + run.result.stderr


def test_member_names_that_climb_out(seed, tmp_path):
    """Absolute names and "..": ignored or refused, and nothing written."""
    absolute = Path(hostile.TRAVERSAL_NAMES[1])
    with contextlib.suppress(FileNotFoundError):
        absolute.unlink()
    extra = [hostile.member(name, b"written by the capture\n")
             for name in hostile.TRAVERSAL_NAMES]
    path = _write(tmp_path, seed.members + extra)
    cwd = tmp_path / "a" / "b" / "c" / "d"
    cwd.mkdir(parents=True)
    run = run_bounded(procfs=path, cwd=cwd)
    assert_report_or_refused(run, path, seed.report())
    written = [str(found) for found in tmp_path.rglob("escaped*")]
    assert written == [] and not absolute.exists()


@pytest.mark.parametrize("file", ["status", "smaps_rollup"])
@pytest.mark.parametrize("kind", hostile.SPECIAL_KINDS)
def test_member_that_is_no_regular_file(seed, tmp_path, kind, file):
    """LEAF's file as a hard link, device, FIFO, directory or symlink.
    Before: LEAF left out without a word.  Refused, or LEAF counted on
    stderr; what a link points to is never shown."""
    name = "proc/%d/%s" % (LEAF, file)
    path = _write(tmp_path, hostile.replacing(seed.members, name,
                                              hostile.special_member(name, kind)))
    run = run_bounded(procfs=path)
    if run.result.status == 2:
        assert_refused(run, path)
        return
    assert_bounded(run)
    assert run.result.status == 0 and parse_warnings(run.result.err) == [1], run.describe()
    assert "\tsystemd-journald\n" not in run.result.out
    assert "root:" not in run.result.out and "6.1.0-13" not in run.result.out


# ----------------------------------------------------------------------------
# Trees: read as data
# ----------------------------------------------------------------------------


def base_tree(root: Path, kernel: str = "6.1") -> ProcTree:
    """Three ordinary processes (tests/trees.py's few)."""
    tree = ProcTree(root, kernel)
    few(tree)
    return tree


def add_victim(tree: ProcTree, pid: int = VICTIM, **options) -> int:
    return tree.add(pid, "victim", "/usr/bin/victim",
                    maps=program_maps("/usr/bin/victim", heap_kib=777 + pid % 100), **options)


def reference_of(tmp_path: Path, kernel: str = "6.1", *args: str, name: str = "clean") -> Result:
    """3.14 on base_tree: what a tree with hostile processes added must
    show, less the warning."""
    need_reference()
    result = run_reference(*args, procfs=base_tree(tmp_path / name / "proc", kernel).root)
    assert result.status == 0, result
    return result


@pytest.fixture
def hostile_dir():
    """A directory outside pytest's 0700 tmp_path (for FIFOs and mounts
    other users must reach), removed with what it holds at the end."""
    directory = tempfile.mkdtemp(prefix="ps_mem-hostile-")
    os.chmod(directory, 0o755)
    yield Path(directory)
    shutil.rmtree(directory, ignore_errors=True)


PER_PID_FILES_READ = ["status", "cmdline", "smaps_rollup", "statm"]


@pytest.mark.parametrize("file", PER_PID_FILES_READ)
def test_fifo_in_a_pid_directory(tmp_path, file):
    """A FIFO no one writes to.  Before: a hang in open()."""
    expected = reference_of(tmp_path)
    tree = base_tree(tmp_path / "hostile" / "proc")
    hostile.fifo(tree.root / str(add_victim(tree)) / file)
    try:
        assert_counted(run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT), expected.stdout)
    finally:
        os.unlink(tree.root / str(VICTIM) / file)


def test_fifo_as_osrelease(tmp_path):
    """The kernel release is a FIFO: not readable, as 3.14 says of a
    missing one ("Couldn't access"), exit 2, no hang."""
    tree = base_tree(tmp_path / "proc")
    osrelease = tree.root / "sys" / "kernel" / "osrelease"
    hostile.fifo(osrelease)
    try:
        run = run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT)
        assert_bounded(run)
        assert run.result.status == 2 and run.result.stdout == b"", run.describe()
        assert run.result.err.startswith("Couldn't access "), run.result.err
    finally:
        os.unlink(osrelease)


@pytest.mark.parametrize("kernel, file", [("6.1", "smaps_rollup"), ("4.4", "smaps")])
def test_memory_file_linked_to_dev_zero(tmp_path, kernel, file):
    """Before: read until MemoryError."""
    expected = reference_of(tmp_path, kernel)
    tree = base_tree(tmp_path / "hostile" / "proc", kernel)
    hostile.symlink(tree.root / str(add_victim(tree)) / file, "/dev/zero")
    assert_counted(run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT), expected.stdout)


@pytest.mark.parametrize("file, args", [("status", ()), ("cmdline", ("-s",))])
def test_file_linked_to_the_shadow_file(tmp_path, file, args):
    """`status` -> /etc/shadow (a stand-in: root's, 0600).  Before: a line
    of it printed as a program's name (with -s, from `cmdline`)."""
    shadow = hostile.shadow_standin(tmp_path)
    expected = reference_of(tmp_path, "6.1", *args)
    tree = base_tree(tmp_path / "hostile" / "proc")
    hostile.symlink(tree.root / str(add_victim(tree)) / file, shadow)
    run = run_bounded(*args, procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert hostile.SHADOW_SECRET.encode() not in run.result.stdout + run.result.stderr
    assert_counted(run, expected.stdout)


def _pid_5_copied_to(tmp_path, names):
    """3.14's output on a tree with pid 5, and the same tree with pid 5's
    directory copied to each of NAMES (no pid as the kernel writes one)."""
    need_reference()
    clean = base_tree(tmp_path / "clean" / "proc")
    add_victim(clean, 5)
    expected = run_reference(procfs=clean.root)
    tree = base_tree(tmp_path / "hostile" / "proc")
    add_victim(tree, 5)
    for name in names:
        shutil.copytree(tree.root / "5", tree.root / name, symlinks=True)
    return expected, tree


def test_pid_directories_of_other_digits(tmp_path):
    """Directories named "²", "５", "١٢", ...: str.isdigit() says digits,
    the kernel never makes them.  Before: ValueError on "²"; and "５" and
    "߁" would have been read as pids 5 and 1 a second time.  They are no
    processes: the output is 3.14's on the tree without them."""
    expected, tree = _pid_5_copied_to(tmp_path, hostile.PID_LOOKALIKES)
    run = run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert_bounded(run)
    assert run.result == expected, run.describe()


@pytest.mark.parametrize("name", ["05", "005", "4194304", "9999999999"])
def test_pid_directories_the_kernel_never_names(tmp_path, name):
    """A leading zero ("05" would be pid 5 a second time, its memory counted
    twice, and a capture of the tree refused as listing a pid twice), or a
    number from PID_MAX_LIMIT up: no process, 3.14's output on the tree
    without them."""
    expected, tree = _pid_5_copied_to(tmp_path, [name])
    run = run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert run.result == expected, run.describe()
    capture = tmp_path / "c.tar.gz"
    assert run_bounded("--capture", str(capture), procfs=tree.root,
                       timeout=SMALL_TIMEOUT).result.status == 0
    assert run_bounded(procfs=capture, timeout=SMALL_TIMEOUT).result == expected


@pytest.mark.parametrize("target", ["\u00b2", "05", "4294967296", "x", "1/../688", "/proc/688",
                                    "688/"])
def test_a_self_link_to_no_pid(tmp_path, target):
    """The tree's self names no process the kernel could have: nothing is
    left out as ps_mem itself, as where the tree has no self (before:
    "\u00b2" gave a ValueError, and "1/../688" left sshd out)."""
    tree = base_tree(tmp_path / "proc")
    os.unlink(tree.root / "self")
    expected = run_ours(procfs=tree.root)
    assert b"\tsshd\n" in expected.stdout
    os.symlink(target, tree.root / "self")
    run = run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert run.result == expected, run.describe()


GARBLED = [("6.1", "smaps_rollup", b"Pss", "40 digits"),
           ("6.1", "smaps_rollup", b"Private_Dirty", "NUL inside"),
           ("6.1", "smaps_rollup", b"Pss", "NUL inside"),
           ("4.4", "smaps", b"Shared_Clean", "40 digits"),
           ("4.4", "smaps", b"Swap", "NUL inside")]


@pytest.mark.parametrize("kernel, file, key, how", GARBLED,
                         ids=["-".join((g[1], g[2].decode(), g[3])) for g in GARBLED])
def test_numbers_that_do_not_parse_are_counted(tmp_path, kernel, file, key, how):
    """Before: such a process was left out without a word, so the totals
    looked complete."""
    expected = reference_of(tmp_path, kernel)
    tree = base_tree(tmp_path / "hostile" / "proc", kernel)
    pid = add_victim(tree)
    path = tree.root / str(pid) / file
    path.write_bytes(hostile.garbled_field(path.read_bytes(), key, how))
    assert_counted(run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT), expected.stdout)


def test_statm_that_does_not_parse_is_counted(tmp_path):
    """A kernel without smaps (2.6.9): statm's resident pages, 40 digits."""
    expected = reference_of(tmp_path, "2.6.9")
    tree = base_tree(tmp_path / "hostile" / "proc", "2.6.9")
    pid = add_victim(tree)
    statm = statm_text(program_maps("/usr/bin/victim", heap_kib=777)).split(b" ")
    statm[1] = hostile.garbled_number(statm[1], "40 digits")
    (tree.root / str(pid) / "statm").write_bytes(b" ".join(statm))
    # 2.6.9 without smaps: 3.14's warning that shared memory is not reported.
    assert_counted(run_bounded(procfs=tree.root, timeout=SMALL_TIMEOUT), expected.stdout,
                   other_stderr=expected.err)


@stress
def test_smaps_of_200000_mappings(tmp_path):
    """29 MB of smaps, 200,000 mappings, each counted line a match the
    regex keeps.  Read within 4 times its size (and the 64 MiB the
    interpreter and the rest of a run take), it reads as 3.14 reads it."""
    need_reference()
    tree = base_tree(tmp_path / "proc", "4.4")
    smaps = hostile.huge_smaps(200000)
    tree.add(VICTIM, "mapper", "/usr/bin/mapper", statm=(0,) * 7, replace={"smaps": smaps})
    expected = run_reference(procfs=tree.root, timeout=300)
    assert expected.status == 0 and "\tmapper\n" in expected.out, expected
    run = run_bounded(procfs=tree.root, address_space=64 * hostile.MIB + 4 * len(smaps))
    assert_bounded(run)
    assert run.result == expected, run.describe()


# ----------------------------------------------------------------------------
# Names: the cgroup \r spoof, Unicode format characters
# ----------------------------------------------------------------------------


def _cgroup_tree(root: Path) -> ProcTree:
    tree = base_tree(root)
    add_victim(tree)
    cgroups = {1: b"0::/init.scope\n", 688: b"0::/system.slice/sshd.service\n",
               1203: b"0::/user.slice/user-1000.slice/session-3.scope\n",
               VICTIM: hostile.CGROUP_SPOOF}
    for pid, text in cgroups.items():
        (tree.root / str(pid) / "cgroup").write_bytes(text)
    return tree


def test_cgroup_carriage_return_cannot_spoof_another(tmp_path):
    """A cgroup named "x\\r0::/system.slice/sshd.service" (any user with a
    delegated subtree may make one).  Before: split at the \\r, and the
    process shown under sshd.service.  Split at \\n only, shown with
    "?" for the \\r."""
    tree = _cgroup_tree(tmp_path / "proc")
    run = run_bounded("--group-by", "cgroup", procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert_bounded(run)
    names = [row.name for row in parse_table(run.result.out).rows]
    assert sorted(names) == sorted(["/init.scope", "/system.slice/sshd.service",
                                    "/user.slice/user-1000.slice/session-3.scope",
                                    hostile.CGROUP_SPOOF_SHOWN]), run.result.out
    document = json.loads(run_bounded("--group-by", "cgroup", "--json", procfs=tree.root,
                                      timeout=SMALL_TIMEOUT).result.stdout)
    sshd = [program for program in document["programs"]
            if program["name"] == "/system.slice/sshd.service"]
    assert [program["pids"] for program in sshd] == [[688]]


def _format_tree(root: Path) -> Tuple[ProcTree, Dict[int, Tuple[str, str]]]:
    """A process per format character, named "f<CHAR>xN", with an argument
    "a<CHAR>b"; and two with other non-ASCII names, which print as they
    are.  Returns the tree and each pid's (name, command line)."""
    tree = base_tree(root)
    made: Dict[int, Tuple[str, str]] = {}
    for index, char in enumerate(hostile.FORMAT_CHARACTERS + ("é", "日本")):
        pid = 6000 + index
        name = "f%sx%d" % (char, index)
        args = ["/usr/bin/" + name, "a%sb" % char]
        made[pid] = (name, " ".join(args))
        tree.add(pid, name, args[0], cmdline=args,
                 maps=program_maps(args[0], heap_kib=900 + 61 * index))
    return tree, made


def _shown(text: str) -> str:
    return "".join("?" if char in hostile.FORMAT_CHARACTERS else char for char in text)


@pytest.mark.parametrize("args", [(), ("-d",), ("-s",)])
def test_format_characters_show_as_question_marks(tmp_path, args):
    """U+202E and its kind.  Before: printed raw, so that a row could pass
    for another program's.  In the tables each shows as "?"."""
    tree, made = _format_tree(tmp_path / "proc")
    run = run_bounded(*args, procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert_bounded(run)
    shown = [row.name for row in parse_table(run.result.out).rows]
    for pid, (name, cmdline) in made.items():
        wanted = {(): _shown(name), ("-d",): "%s [%d]" % (_shown(name), pid),
                  ("-s",): _shown(cmdline)}[args]
        assert wanted in shown, (wanted, shown)
    assert not any(char in run.result.out for char in hostile.FORMAT_CHARACTERS)


def test_format_characters_are_escaped_in_json(tmp_path):
    """JSON is ASCII: each format character as its \\u escape, the name
    itself kept."""
    tree, made = _format_tree(tmp_path / "proc")
    run = run_bounded("--json", procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert_bounded(run)
    assert run.result.stdout.isascii()
    got = {program["pids"][0]: program["name"]
           for program in json.loads(run.result.stdout)["programs"]}
    for pid, (name, _cmdline) in made.items():
        assert got[pid] == name
    assert b"\\u202e" in run.result.stdout and b"\\ufeff" in run.result.stdout


# ----------------------------------------------------------------------------
# Command-line values
# ----------------------------------------------------------------------------

DIGITS = "1" * 5000
USAGE = {
    "-w 10000000000": (["-w", "10000000000"], r"10000000000"),
    "-p of 5000 digits": (["-p", DIGITS], r"\AInvalid PID\(s\): "),
    "-p list with 5000 digits": (["-p", "1," + DIGITS], r"\AInvalid PID\(s\): "),
    "-w of 5000 digits": (["-w", DIGITS], r"\Aargument -w: "),
    "-p with a newline": (["-p", "1\n2"], r"\AInvalid PID\(s\): .*1\\n2"),
    "--capture ''": (["--capture", ""], r"--capture"),
}


def assert_usage_error(run: Bounded, message: str) -> None:
    assert_bounded(run)
    assert run.result.status == 2 and run.result.stdout == b"", run.describe()
    match = USAGE_ERROR.match(run.result.err)
    assert match, run.result.err[-3000:]
    assert re.search(message, match.group(1)), match.group(1)[:300]


@pytest.mark.parametrize("case", sorted(USAGE))
def test_command_line_value_is_a_usage_error(tmp_path, case):
    """With --procfs (argparse reads the arguments): -w 10000000000 gives
    OverflowError after the first sample, a -p of a newline puts it raw
    in the message, --capture '' gives ValueError."""
    args, message = USAGE[case]
    tree = base_tree(tmp_path / "proc")
    run = run_bounded("-p", "1", *args, procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert_usage_error(run, message)


@live
@pytest.mark.parametrize("case", sorted(USAGE))
def test_command_line_value_is_a_usage_error_live(case):
    """Without other options (3.14's own arguments, read without argparse):
    a -p or -w of 5000 digits gives ValueError from int()."""
    args, message = USAGE[case]
    with Processes() as procs:
        sleeper = procs.sleep()
        if args[0] == "-w":
            args = ["-p", str(sleeper.pid)] + args
        assert_usage_error(run_bounded(*args, timeout=SMALL_TIMEOUT), message)


# ----------------------------------------------------------------------------
# --capture FILE as root
# ----------------------------------------------------------------------------


def _nobody(directory: Path) -> None:
    os.chmod(directory, 0o1777)


@live
@pytest.mark.parametrize("planter", ["root, plain directory", "nobody, sticky /tmp-like"])
@pytest.mark.parametrize("target_exists", [True, False], ids=["target exists", "dangling"])
def test_capture_replaces_a_planted_symlink(tmp_path, planter, target_exists):
    """Someone plants FILE -> TARGET.  Before: TARGET overwritten (or
    created where they chose).  FILE is replaced, TARGET untouched."""
    tree = base_tree(tmp_path / "proc")
    shared = tmp_path / "shared"
    shared.mkdir()
    target = tmp_path / "target"
    if target_exists:
        target.write_bytes(b"precious\n")
    path = shared / "capture.tar.gz"
    os.symlink(target, path)
    if planter.startswith("nobody"):
        os.chmod(shared, 0o1777)
        os.lchown(path, 65534, 65534)
    run = run_bounded("--capture", str(path), procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert_bounded(run)
    assert run.result.status == 0, run.describe()
    if target_exists:
        assert target.read_bytes() == b"precious\n"
    else:
        assert not target.exists()
    info = os.lstat(path)
    assert stat.S_ISREG(info.st_mode) and info.st_uid == 0
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert run_ours(procfs=path) == run_ours(procfs=tree.root)


@live
@pytest.mark.parametrize("umask", [0o000, 0o022], ids=["umask 000", "umask 022"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "over a 0644 file"])
def test_capture_is_0600(tmp_path, umask, existing):
    """A capture holds every command line (secrets) and exe links /proc
    shows to root only.  Before: 0644."""
    tree = base_tree(tmp_path / "proc")
    path = tmp_path / "capture.tar.gz"
    if existing:
        path.write_bytes(b"old\n")
        path.chmod(0o644)
    run = run_bounded("--capture", str(path), procfs=tree.root, timeout=SMALL_TIMEOUT,
                      prefix=["sh", "-c", 'umask %03o && exec "$@"' % umask, "sh"])
    assert_bounded(run)
    assert run.result.status == 0, run.describe()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["capture.tar.gz", "proc"]


def _strace() -> str:
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    if subprocess.run([strace, "-qq", "-o", "/dev/null", "true"],
                      stderr=subprocess.DEVNULL).returncode != 0:
        pytest.skip("strace cannot trace here (ptrace is not permitted)")
    return strace


@live
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "over an old capture"])
def test_no_temp_file_after_a_signal_mid_write(tmp_path, sig, existing):
    """The signal is delivered as ps_mem enters its first write(2), by
    strace's fault injection (no timing): the capture is then open and
    unfinished.  Before: a partial FILE left (after Ctrl-C, a valid gzip
    of a cut tar).  Nothing new remains, an old FILE unchanged."""
    strace = _strace()
    tree = base_tree(tmp_path / "proc")
    out = tmp_path / "out"
    out.mkdir()
    path = out / "capture.tar.gz"
    if existing:
        path.write_bytes(b"an older capture\n")
    run = run_bounded("--capture", str(path), procfs=tree.root, timeout=SMALL_TIMEOUT,
                      prefix=[strace, "-qq", "-o", "/dev/null", "-e", "trace=write",
                              "-e", "inject=write:signal=%d:when=1" % sig, "--"])
    assert not run.timed_out and b"Traceback" not in run.result.stderr, run.describe()
    assert run.result.status in (-sig, 128 + sig), run.describe()
    assert os.listdir(out) == (["capture.tar.gz"] if existing else [])
    if existing:
        assert path.read_bytes() == b"an older capture\n"


@pytest.fixture
def small_filesystem(hostile_dir):
    """A 64 KiB tmpfs, unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    where = hostile_dir / "small"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % done.stderr.decode().strip())
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def _incompressible_tree(root: Path) -> ProcTree:
    """A tree whose capture is about 150 KiB: random command lines."""
    tree = base_tree(root)
    for pid in (7000, 7001, 7002):
        noise = os.urandom(50000).replace(b"\0", b"\1")
        tree.add(pid, "noisy", "/usr/bin/noisy", cmdline=[b"/usr/bin/noisy", noise],
                 maps=program_maps("/usr/bin/noisy", heap_kib=pid - 6000))
    return tree


@live
@pytest.mark.parametrize("existing", [False, True], ids=["new", "over an old capture"])
def test_no_temp_file_after_the_disk_is_full(tmp_path, small_filesystem, existing):
    """A capture bigger than the filesystem (ENOSPC): one line, exit 2, and
    nothing left.  Before: the partial file left behind (or the old one
    destroyed)."""
    tree = _incompressible_tree(tmp_path / "proc")
    path = small_filesystem / "capture.tar.gz"
    if existing:
        path.write_bytes(b"an older capture\n")
    run = run_bounded("--capture", str(path), procfs=tree.root, timeout=SMALL_TIMEOUT)
    assert_bounded(run)
    assert run.result.status == 2 and run.result.stdout == b"", run.describe()
    assert run.result.err.count("\n") == 1, run.result.err
    assert run.result.err.startswith("ps_mem: cannot write %s: " % path), run.result.err
    assert os.strerror(errno.ENOSPC) in run.result.err
    assert os.listdir(small_filesystem) == (["capture.tar.gz"] if existing else [])
    if existing:
        assert path.read_bytes() == b"an older capture\n"


# ----------------------------------------------------------------------------
# hidepid: other users' processes are missing, and ps_mem says so
# ----------------------------------------------------------------------------

NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def hidepid_proc(hostile_dir, request):
    """A second proc mounted with the options of request.param."""
    where = hostile_dir / "proc"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "proc", "-o", request.param, "proc", str(where)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount proc -o %s: %s" % (request.param, done.stderr.decode()))
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


@live
@pytest.mark.parametrize("hidepid_proc", ["hidepid=2", "hidepid=invisible",
                                          "hidepid=2,subset=pid"], indirect=True)
def test_hidepid_is_disclosed(hidepid_proc):
    """As nobody, -p naming a root process and nobody's own: the root one
    is simply absent (no "could not be read"), and the total looks whole.
    Said once on stderr; the report is the one of nobody's process alone.
    (With subset=pid the kernel release is hidden too: 3.14's "Couldn't
    access" is then an answer as good.)"""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    helper = build("setname")  # static: its numbers do not move between runs
    prefix = [setpriv] + NOBODY
    with Processes() as procs:
        root_sleep = procs.sleep()
        own = procs.command(prefix + [str(helper), b"mine".hex()], exe=str(helper))
        both = run_bounded("-p", "%d,%d" % (root_sleep.pid, own.pid), procfs=hidepid_proc,
                           prefix=prefix, cwd="/", timeout=SMALL_TIMEOUT)
        alone = run_bounded("-p", str(own.pid), procfs=hidepid_proc, prefix=prefix,
                            cwd="/", timeout=SMALL_TIMEOUT)
    assert_bounded(both)
    if "subset=pid" in hidepid_proc_options(hidepid_proc) and both.result.status == 2:
        assert both.result.err.startswith("Couldn't access "), both.describe()
        return
    assert both.result.status == 0 and "\tmine\n" in both.result.out, both.describe()
    assert both.result.stdout == alone.result.stdout
    lines = both.result.err.splitlines()
    assert len(lines) == 1 and re.search(r"hidepid|subset=pid", lines[0]) \
        and "other users' processes" in lines[0], both.result.err
    assert alone.result.stderr == both.result.stderr


def hidepid_proc_options(where: Path) -> str:
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[4] == str(where):
                return line.split(" - ")[1]
    return ""


# ----------------------------------------------------------------------------
# Children end with a killed run
# ----------------------------------------------------------------------------

CROWD = 2000  # enough pids for ps_mem to fork a reader on 2 CPUs


def _children(pid: int) -> List[int]:
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            return [int(word) for word in handle.read().split()]
    except OSError:
        return []


def _state(pid: int) -> Optional[str]:
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    return text[text.rindex(b")") + 2:][:1].decode()


def _alive(pids: Sequence[int]) -> List[int]:
    return [pid for pid in pids if _state(pid) not in (None, "Z", "X")]


CHILD_NAMES = ("ps_mem reader", "ps_mem kcmp")


def _comm(pid: int) -> Optional[str]:
    try:
        with open("/proc/%d/comm" % pid) as handle:
            return handle.read().rstrip("\n")
    except OSError:
        return None


def _start_and_catch_children(stop: bool) -> Tuple[subprocess.Popen, List[int]]:
    """A one-shot ps_mem on the live /proc, and its children (the kcmp
    helper and a reader), caught as soon as both exist; with STOP, it and
    they are stopped at once (mid-scan: the reader exists only then)."""
    for _ in range(5):
        popen = subprocess.Popen([sys.executable, str(OURS), "-t"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while popen.poll() is None:
            children = _children(popen.pid)
            # Named once they have asked to die with their parent (see
            # ps_mem._die_with()): caught before that, they could not.
            if len(children) >= 2 and all(_comm(pid) in CHILD_NAMES for pid in children):
                if stop:
                    for pid in [popen.pid] + children:
                        os.kill(pid, signal.SIGSTOP)
                return popen, children
        popen.wait()
    pytest.fail("ps_mem never had a reader and the kcmp helper at once in 5 runs")


def report(request, text: str) -> None:
    request.node.user_properties.append(("children", text))
    sys.stderr.write("\n" + text + "\n")


@live
def test_children_end_with_a_killed_run(request):
    """SIGKILL a one-shot run mid-scan: its reader and kcmp helper must end
    as soon as it is gone, whatever they are doing.  Before: they went on
    until the reader next wrote to its dead parent (the helper waits for
    the reader's copy of its pipe to close): a chunk of pids later, or as
    long as a read of /proc blocks.

    Without timing: the run and its children are stopped together (the
    reader exists only mid-scan), the run is killed and reaped, and the
    children must be gone while still stopped, as a child blocked in the
    kernel must: only the kernel can end them then (PR_SET_PDEATHSIG).
    The same run again, not stopped, shows how long they took; that is
    reported, not asserted."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("ps_mem forks readers only where it may run on 2 CPUs or more")
    with Processes() as procs:
        procs.helper("pausers", str(CROWD), settle=False, timeout=60)
        lines = []
        for stop in (True, False):
            popen, children = _start_and_catch_children(stop)
            try:
                if stop:
                    deadline = time.monotonic() + 10
                    while any(_state(pid) not in ("T", "t", None, "Z")
                              for pid in [popen.pid] + children):
                        assert time.monotonic() < deadline, "not stopped"
                popen.kill()
                popen.wait()
                started = time.monotonic()
                deadline = started + (10 if stop else 30)
                while _alive(children) and time.monotonic() < deadline:
                    time.sleep(0.001)
                took = time.monotonic() - started
                left = _alive(children)
                if stop:
                    stopped_left = left
                    for pid in left:
                        os.kill(pid, signal.SIGCONT)
                    let_go = time.monotonic()
                    while _alive(left) and time.monotonic() < let_go + 30:
                        time.sleep(0.001)
                    after_let_go = "ended %.3f s after they were let go" % (
                        time.monotonic() - let_go) if not _alive(left) else "never ended"
            finally:
                for pid in _alive(children):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            if stop:
                lines.append("stopped, then the run killed: children %s" % (
                    "still alive after %.1f s: %s (%s)" % (took, left, after_let_go)
                    if left else "gone in %.3f s" % took))
            else:
                lines.append("running, the run killed: children gone in %.3f s%s" % (
                    took, "; still alive: %s" % left if left else ""))
    report(request, "\n".join(lines))
    assert not stopped_left, lines[0]
