"""Malformed, unreadable and huge /proc files: never a traceback.

A process's files can be anything a test (or a broken kernel, a FUSE
"proc", a container runtime's fake) puts there: cut short, garbled, empty,
oversized.  ps_mem.py's promise: a process whose files cannot be parsed is
left out, like one that exited, and every other process is shown as usual.

  * Parsers (hypothesis): each either returns, or raises only what its
    caller turns into ProcessGone (read_memory and Namer catch ValueError,
    and IndexError for statm).
  * collect() and main() on a fixture tree with one garbled process and
    one good one (hypothesis): no exception, the good process always
    shown, the documented exit status.
  * Processes that may not be read: one line on stderr, stdout unchanged
    (live, as the user nobody; in process, on a tree and on a capture).
  * Huge inputs: 65,000 mappings (fixture smaps, and a live process), a
    2 MiB command line (live, and fixture): correct output, in reasonable
    time.

The defects found here (a counter no float holds, an empty Uid line) have
tests of their own below, under "Defects found here".
"""

import contextlib
import errno
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.harness import REFERENCE_DIR, Result, live, run_ours, run_reference
from tests.inprocess import run_main
from tests.procfs_builder import SELF_PID, ProcTree, program_maps
from tests.realproc import Processes, build, wait_settled

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ps_mem  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = REFERENCE_DIR / "ps_mem.py"
OURS = Path(ps_mem.__file__).resolve()
WARNING_1 = (b"Warning: 1 process could not be read (permission denied); "
             b"their memory is not included.\n")
WARNING_2 = (b"Warning: 2 processes could not be read (permission denied); "
             b"their memory is not included.\n")



def need_reference() -> None:
    if not REFERENCE.exists():
        pytest.skip("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)


def data(name: str) -> bytes:
    return (DATA / name).read_bytes()


CGROUP = (b"12:memory:/user.slice/user-1000.slice\n11:cpu,cpuacct:/user.slice\n"
          b"0::/user.slice/user-1000.slice/session-3.scope\n")
# Real text of each file, to garble.
SAMPLES: Dict[str, bytes] = {
    "smaps_rollup": data("sleep.smaps_rollup"),
    "smaps": data("sleep.smaps")[:6000],
    "status": data("sleep.status"),
    "statm": data("sleep.statm"),
    "cmdline": data("bash.cmdline"),
    "cgroup": CGROUP,
}


# ----------------------------------------------------------------------------
# Defects found here, fixed: a process whose numbers no float holds, an
# empty Uid line
# ----------------------------------------------------------------------------


# A counter too large for a float (the kernel prints at most 20 digits).
HUGE = b"9" * 400


def test_defect_huge_smaps_counter(tree):
    t = _good_and_victim(tree, replace={
        "smaps_rollup": SAMPLES["smaps_rollup"].replace(b"181 kB", HUGE + b" kB")})
    scan = _collect(t.root, ps_mem.Options())
    assert [sample.pid for sample in scan.samples] == [GOOD]


def test_defect_huge_statm_counter(tree):
    t = _good_and_victim(tree, kernel="2.6.18", omit=("smaps",),
                         replace={"statm": b"730 " + HUGE + b" 419 5 0 89 0\n"})
    scan = _collect(t.root, ps_mem.Options(), kernel=(2, 6, 18))
    assert [sample.pid for sample in scan.samples] == [GOOD]


def test_defect_empty_uid_line(tree):
    status = re.sub(rb"\nUid:[^\n]*\n", b"\nUid:\t\n", SAMPLES["status"])
    t = _good_and_victim(tree, replace={"status": status})
    scan = _collect(t.root, ps_mem.Options(group_by="user"))
    assert [sample.pid for sample in scan.samples] == [GOOD]


def test_defect_huge_counter_through_the_command_line(tree):
    t = _good_and_victim(tree, replace={
        "smaps_rollup": SAMPLES["smaps_rollup"].replace(b"181 kB", HUGE + b" kB")})
    result = run_ours(procfs=t.root)
    assert b"Traceback" not in result.stderr, result.err.strip().splitlines()[-1]
    assert result.status == 0 and "\tgood\n" in result.out


# ----------------------------------------------------------------------------
# Garbling
# ----------------------------------------------------------------------------

NOISE = st.binary(max_size=40) | st.sampled_from([
    b"\0", b"\r", b"\n", b"\r\n", b":", b" ", b"\t", b"-", b"kB", b"\xff\xfe", b"\xc3",
    b"Pss:", b"Private_Dirty:", b"Shared_Clean:", b"SwapPss:", b"Swap:", b"PPid:", b"Uid:",
    b"Name:\t", b"Private_Hugetlb:", b"Shared_Hugetlb:", b"Private:", b"Shared:",
    b"-5", b"+5", b"1_000", b"0x10", b"1e5", b"nan", b"\xd9\xa3", b"\xef\xbc\x91",
    b" " * 300, b"0" * 30])
NUMBER = st.sampled_from([b"", b"-1", b"+7", b"1_0", b"0x1f", b"1.5", b"nan", b"\xd9\xa3",
                          b"9" * 25, b"9" * 5000]) | st.integers(0, 2 ** 70).map(
    lambda n: str(n).encode())


@st.composite
def garbled(draw, base: bytes) -> bytes:
    """BASE cut short, with bytes changed, lines dropped or repeated,
    numbers replaced, made huge, emptied, or replaced by noise."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "lines", "number",
                                 "oversized", "empty", "noise", "mixed"]))
    text = base
    if kind in ("truncate", "mixed"):
        text = text[:draw(st.integers(0, len(text)))]
    if kind in ("flip", "mixed"):
        for _ in range(draw(st.integers(1, 8))):
            if text:
                at = draw(st.integers(0, len(text) - 1))
                text = text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1:]
    if kind in ("insert", "mixed"):
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(NOISE) + text[at:]
    if kind in ("lines", "mixed"):
        lines = text.split(b"\n")
        order = draw(st.lists(st.integers(0, max(0, len(lines) - 1)), max_size=len(lines) + 3))
        text = b"\n".join(lines[index] for index in order)
    if kind == "number":
        numbers = list(re.finditer(rb"\d+", text))
        for _ in range(draw(st.integers(1, 3))):
            if numbers:
                match = numbers[draw(st.integers(0, len(numbers) - 1))]
                text = text[:match.start()] + draw(NUMBER) + text[match.end():]
                numbers = list(re.finditer(rb"\d+", text))
    if kind == "oversized":
        text = text * draw(st.integers(50, 400)) + draw(NOISE) * draw(st.integers(0, 2000))
    if kind == "empty":
        text = b""
    if kind == "noise":
        text = draw(st.binary(max_size=3000))
    return text


# ----------------------------------------------------------------------------
# The parsers
# ----------------------------------------------------------------------------

# What each parser may raise: what its caller in collect() turns into
# ProcessGone (read_memory: ValueError for smaps, ValueError and IndexError
# for statm; Namer: ValueError for status and Uid; nothing for cmdline and
# cgroup, which cannot fail).
PARSERS: Dict[str, Tuple[Callable, Tuple[type, ...]]] = {
    "smaps_rollup": (ps_mem.parse_smaps, (ValueError,)),
    "smaps": (ps_mem.parse_smaps, (ValueError,)),
    "statm": (ps_mem.parse_statm, (ValueError,)),
    "status": (ps_mem.parse_status, (ValueError,)),
    "uid": (ps_mem.parse_uid, (ValueError,)),
    "cmdline": (ps_mem.parse_cmdline, ()),
    "cgroup": (ps_mem.parse_cgroup, ()),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_parser_raises_only_what_collect_catches(name, data):
    parse, allowed = PARSERS[name]
    text = data.draw(garbled(SAMPLES["status" if name == "uid" else name]), label="text")
    try:
        value = parse(text)
    except allowed:
        return
    if parse is ps_mem.parse_smaps:
        # What read_memory computes from it must be numbers, not errors.
        value.pss - value.private
    elif parse is ps_mem.parse_status:
        # PPid None: a status too short to hold it (3.14 then skips the
        # process where it needs the parent).
        assert isinstance(value[0], str) and (value[1] is None or isinstance(value[1], int))
    elif parse is ps_mem.parse_cmdline:
        assert value and all(isinstance(arg, str) for arg in value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_kernel_version_never_fails(release):
    major, minor, patch = ps_mem.kernel_version(release)
    assert all(isinstance(part, int) for part in (major, minor, patch))


# ----------------------------------------------------------------------------
# collect() and main() on a tree: one garbled process beside a good one
# ----------------------------------------------------------------------------

GOOD, VICTIM = 100, 200
FILES = ("smaps_rollup", "smaps", "status", "statm", "cmdline", "cgroup")


def _good_and_victim(tree_factory, kernel: str = "6.1", **victim) -> ProcTree:
    t = tree_factory(kernel)
    t.add(GOOD, "good", "/usr/bin/good", maps=program_maps("/usr/bin/good", heap_kib=2400))
    t.add(VICTIM, "victim", "/usr/bin/victim", ppid=GOOD,
          maps=program_maps("/usr/bin/victim", heap_kib=3100), **victim)
    return t


def _collect(root: Path, options: ps_mem.Options, kernel=(6, 1, 0)) -> ps_mem.Scan:
    return ps_mem.collect(ps_mem.ProcFS(str(root)), options, kernel, SELF_PID)


@pytest.fixture(scope="module")
def garbled_tree(tmp_path_factory):
    """A tree with GOOD and VICTIM, and VICTIM's pristine files; each
    example rewrites some of VICTIM's files."""
    t = ProcTree(tmp_path_factory.mktemp("garbled") / "proc", "6.1")
    t.add(GOOD, "good", "/usr/bin/good", maps=program_maps("/usr/bin/good", heap_kib=2400))
    t.add(VICTIM, "victim", "/usr/bin/victim", ppid=GOOD,
          maps=program_maps("/usr/bin/victim", heap_kib=3100))
    for pid in (GOOD, VICTIM):
        (t.root / str(pid) / "cgroup").write_bytes(CGROUP)
    (t.root / str(VICTIM) / "smaps").write_bytes(SAMPLES["smaps"])
    pristine = {name: (t.root / str(VICTIM) / name).read_bytes() for name in FILES}
    return t, pristine


@st.composite
def victim_files(draw) -> Dict[str, Optional[bytes]]:
    """New contents for 1 to 3 of VICTIM's files (None: the file is gone)."""
    names = draw(st.lists(st.sampled_from(FILES), min_size=1, max_size=3, unique=True))
    return {name: draw(st.none() | garbled(SAMPLES[name])) for name in names}


def _write_victim(t: ProcTree, pristine: Dict[str, bytes],
                  files: Dict[str, Optional[bytes]]) -> None:
    for name in FILES:
        path = t.root / str(VICTIM) / name
        content = files.get(name, pristine[name])
        if content is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        else:
            path.write_bytes(content)


COLLECT_OPTIONS = [ps_mem.Options(), ps_mem.Options(split_args=True),
                   ps_mem.Options(by_pid=True), ps_mem.Options(group_by="user"),
                   ps_mem.Options(group_by="cgroup")]


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=victim_files())
def test_collect_skips_what_it_cannot_parse(garbled_tree, files):
    """The whole pipeline in process (collect, aggregate, the formatters):
    no exception; the good process is always there; the garbled one is
    either read or left out, and never counted as denied."""
    t, pristine = garbled_tree
    _write_victim(t, pristine, files)
    procfs = ps_mem.ProcFS(str(t.root))
    for options in COLLECT_OPTIONS:
        scan = ps_mem.collect(procfs, options, (6, 1, 0), SELF_PID)
        report = ps_mem.aggregate(scan.samples, scan.unreadable)
        ps_mem.rows(report, options)
        ps_mem.footer(options, report.pss_seen, report.swap_pss_seen, report)
        ps_mem.json_document(report, ps_mem.Accuracy(2, 2), True, True, "6.1", 0, [])
        pids = [sample.pid for sample in scan.samples]
        assert GOOD in pids and set(pids) <= {GOOD, VICTIM}
        assert scan.unreadable == 0


CLI_OPTIONS = [[], ["-s"], ["-d"], ["-S"], ["-t"], ["--json"], ["--group-by", "user"],
               ["--group-by", "cgroup"]]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(files=victim_files())
def test_command_line_skips_what_it_cannot_parse(garbled_tree, files):
    """main() as a user runs it: exit 0 (PSS is there: -t too), nothing on
    stderr, the good process in every view."""
    t, pristine = garbled_tree
    _write_victim(t, pristine, files)
    for args in CLI_OPTIONS:
        result = run_main(*args, procfs=t.root)
        assert result.status == 0 and result.stderr == b"", (args, result)
        if args == ["-t"]:
            assert re.fullmatch(rb"\d+\n", result.stdout), result.stdout
        elif args == ["--json"]:
            names = [program["name"] for program in json.loads(result.stdout)["programs"]]
            assert "good" in names
        elif args == ["--group-by", "user"]:
            assert b"\troot" in result.stdout
        elif args == ["--group-by", "cgroup"]:
            # A hybrid machine's file: the memory controller's path.
            assert b"\tmemory:/user.slice/user-1000.slice" in result.stdout
        elif args == ["-s"]:
            assert b"\t/usr/bin/good\n" in result.stdout
        elif args == ["-d"]:
            assert b"\tgood [100]\n" in result.stdout
        else:
            assert b"\tgood\n" in result.stdout


@pytest.mark.parametrize("name", [name for name in FILES if name != "cgroup"])
@pytest.mark.parametrize("shape", ["empty", "cut", "gone", "noise"])
def test_each_file_broken_alone_matches_3_14_or_skips(tree, tmp_path, name, shape):
    """Each of the victim's files broken in turn (3.14 does not read
    cgroup): ours prints 3.14's output where 3.14 copes, and 3.14's output
    without the victim where 3.14 dies with a traceback."""
    need_reference()
    if (name, shape) == ("smaps", "gone"):
        # 3.14 reads smaps_rollup only if smaps exists too, and else falls
        # back to statm; ours reads smaps_rollup.  No kernel has one
        # without the other, so the difference is left alone.
        pytest.skip("smaps_rollup without smaps: not a kernel's tree")
    t = _good_and_victim(tree)
    path = t.root / str(VICTIM) / name
    if shape == "gone":
        path.unlink()
    else:
        path.write_bytes({"empty": b"", "cut": path.read_bytes()[:37],
                          "noise": bytes(range(256)) * 3}[shape])
    without = tmp_path / "without"
    shutil.copytree(t.root, without, symlinks=True)
    shutil.rmtree(without / str(VICTIM))
    for args in ([], ["-s"]) if name in ("cmdline", "status") else ([],):
        ours = run_main(*args, procfs=t.root)
        reference = run_reference(*args, procfs=t.root)
        if b"Traceback" in reference.stderr:
            reference = run_reference(*args, procfs=without)
        assert ours == printable_rows(reference), (name, shape, args)


QUESTION = {code: "?" for code in [*range(0x20), *range(0x7F, 0xA0)]}


def printable_rows(reference: Result) -> Result:
    """3.14's output with control characters in names as ours shows them
    ("?").  Only for outputs whose names hold no newline (-s makes
    newlines spaces; status Names have none)."""
    head, sep, body = reference.stdout.decode("utf-8").partition("\n\n")
    lines = []
    for line in body.split("\n"):
        sizes, tab, name = line.partition("\t")
        lines.append(sizes + tab + name.translate(QUESTION))
    return reference._replace(stdout=(head + sep + "\n".join(lines)).encode("utf-8"))


# ----------------------------------------------------------------------------
# Processes that may not be read
# ----------------------------------------------------------------------------


def _denying(monkeypatch, denied_pids: Sequence[int], error: int = errno.EACCES) -> None:
    """Make every file and link of DENIED_PIDS answer ERROR, as /proc
    answers a process of another user (or one hidden by hidepid)."""
    read_file, readlink = ps_mem._read_file, os.readlink
    pattern = re.compile(r"/(%s)/[^/]+$" % "|".join(map(str, denied_pids)))

    def check(path) -> None:
        if pattern.search(os.fsdecode(path)):
            raise OSError(error, os.strerror(error), path)

    def denied_read(path, *args, **kwargs):
        check(path)
        return read_file(path, *args, **kwargs)

    def denied_readlink(path, *args, **kwargs):
        check(path)
        return readlink(path, *args, **kwargs)

    monkeypatch.setattr(ps_mem, "_read_file", denied_read)
    monkeypatch.setattr(ps_mem.os, "readlink", denied_readlink)


@pytest.fixture
def three(tree):
    t = tree("6.1")
    t.add(1, "init", "/sbin/init", ppid=0, maps=program_maps("/sbin/init", heap_kib=900))
    for pid, name, heap in ((300, "alpha", 1200), (301, "beta", 5100), (302, "gamma", 2300)):
        t.add(pid, name, "/usr/bin/" + name, maps=program_maps("/usr/bin/" + name, heap_kib=heap))
    return t


@pytest.mark.parametrize("args", [[], ["-s"], ["-d"], ["-S"], ["-t"], ["-d", "-S", "-t"]])
def test_denied_processes_warned_on_stderr_only(three, monkeypatch, args, tmp_path):
    """stdout is exactly what it is without the denied processes; stderr
    gains one line, plural where it should be; the status is unchanged."""
    without = tmp_path / "without"
    shutil.copytree(three.root, without, symlinks=True)
    for pid in (300, 302):
        shutil.rmtree(without / str(pid))
    expected = run_main(*args, procfs=without)
    _denying(monkeypatch, [300])
    one = run_main(*args, procfs=three.root)
    _denying(monkeypatch, [300, 302])
    two = run_main(*args, procfs=three.root)
    monkeypatch.undo()
    assert one.stderr == expected.stderr + WARNING_1
    assert two.stdout == expected.stdout and two.status == expected.status
    assert two.stderr == expected.stderr + WARNING_2
    if REFERENCE.exists():
        # 3.14 leaves them out without a word: the same stdout.
        assert two.stdout == run_reference(*args, procfs=without).stdout


@pytest.mark.parametrize("code, warned", [(errno.EACCES, True), (errno.EPERM, True),
                                          (errno.ESRCH, False), (errno.ENOENT, False)])
def test_only_permission_errors_are_warned(three, monkeypatch, code, warned):
    _denying(monkeypatch, [301], code)
    result = run_main(procfs=three.root)
    monkeypatch.undo()
    assert result.status == 0 and b"\tbeta\n" not in result.stdout
    assert result.stderr == (WARNING_1 if warned else b"")


def test_denied_in_json_and_watch(three, monkeypatch):
    _denying(monkeypatch, [301])
    document = json.loads(run_main("--json", procfs=three.root).stdout)
    assert document["warnings"] == [WARNING_1.decode().rstrip("\n")]
    assert [program["name"] for program in document["programs"]] == ["init", "alpha", "gamma"]
    # A watch that ends by itself (-p of a denied pid): the warning once, at the end.
    watch = run_main("-w", "1", "-p", "301", procfs=three.root)
    assert watch.stdout.endswith(b"Process does not exist anymore.\n")
    assert watch.stderr == WARNING_1 and watch.status == 0


def test_denied_in_a_capture(three, tmp_path):
    """A capture records the errors /proc answered: one made as a user
    who could not read some processes says so when it is read back."""
    procfs = ps_mem.ProcFS(str(three.root))
    snapshot = ps_mem.capture(procfs, procfs.self_pid())
    for pid in (300, 302):
        for name in ("smaps_rollup", "smaps"):
            snapshot.files.pop("%d/%s" % (pid, name), None)
        snapshot.manifest.errors["%d/smaps_rollup" % pid] = errno.EACCES
    archive = tmp_path / "denied.tar.gz"
    ps_mem.write_capture(snapshot, str(archive))
    result = run_ours(procfs=archive)
    assert result.status == 0 and result.stderr == WARNING_2
    rows = result.out.split("\n\n", 1)[1].split("-" * 33)[0]
    assert [line.split("\t")[1] for line in rows.splitlines()] == ["init", "beta"]


def _as_nobody() -> List[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    done = subprocess.run(prefix + [sys.executable, "-c", "pass"], cwd="/",
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if done.returncode != 0:
        pytest.skip("the user nobody cannot run %s" % sys.executable)
    return prefix


def _run_as_nobody(script: Path, *args: str) -> Result:
    env = dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8",
               PYTHONDONTWRITEBYTECODE="1")
    done = subprocess.run(_as_nobody() + [sys.executable, str(script), *args], cwd="/",
                          capture_output=True, timeout=60, env=env)
    return Result(done.stdout, done.stderr, done.returncode)


@live
def test_unprivileged_user_denied_a_root_process():
    """As nobody, -p naming a root sleep and nobody's own process: the
    root one cannot be read; ours says so on stderr and prints what it
    prints for nobody's process alone (what 3.14 prints, silently)."""
    helper = build("setname")  # static: its numbers do not move
    prefix = _as_nobody()
    with Processes() as procs:
        root_sleep = procs.sleep()
        own = subprocess.Popen(prefix + [str(helper), b"mine".hex()], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, start_new_session=True)
        try:
            assert own.stdout.readline().split()[0] == b"ready"
            wait_settled([own.pid])
            both = "%d,%d" % (root_sleep.pid, own.pid)
            ours = _run_as_nobody(OURS, "-p", both)
            alone = _run_as_nobody(OURS, "-p", str(own.pid))
            assert ours.status == alone.status == 0
            assert ours.stderr == WARNING_1 and alone.stderr == b""
            assert ours.stdout == alone.stdout
            assert re.search(rb"\tmine\n", ours.stdout)
            assert b"sleep" not in ours.stdout
            for args in (["-s"], ["-t"], ["-d", "-S"]):
                denied = _run_as_nobody(OURS, *args, "-p", both)
                assert denied.stderr == WARNING_1, args
                assert denied.stdout == _run_as_nobody(OURS, *args, "-p", str(own.pid)).stdout
            if REFERENCE.exists():
                reference = _run_as_nobody(REFERENCE, "-p", both)
                assert (reference.stdout, reference.stderr, reference.status) == \
                    (ours.stdout, b"", 0)
        finally:
            own.terminate()
            own.wait(timeout=10)
            own.stdout.close()


# ----------------------------------------------------------------------------
# Huge inputs
# ----------------------------------------------------------------------------

MAPPINGS = 65000


def _many_mappings_smaps(count: int) -> bytes:
    """COUNT mappings in 4.4's smaps format, each 4 KiB resident and
    private, alternating protections as separate mappings are."""
    fields = [("Size", 4), ("Rss", 4), ("Pss", 4), ("Shared_Clean", 0), ("Shared_Dirty", 0),
              ("Private_Clean", 0), ("Private_Dirty", 4), ("Referenced", 4), ("Anonymous", 4),
              ("AnonHugePages", 0), ("Shared_Hugetlb", 0), ("Private_Hugetlb", 0), ("Swap", 0),
              ("SwapPss", 0), ("KernelPageSize", 4), ("MMUPageSize", 4), ("Locked", 0)]
    block = "%x-%x %s 00000000 00:00 0 \n" + "".join(
        "%-16s%8d kB\n" % (key + ":", value) for key, value in fields) + "VmFlags: rd %sac \n"
    start = 0x7F0000000000
    parts = []
    for index in range(count):
        perms, flags = ("rw-p", "wr mr mw me ") if index % 2 else ("r--p", "mr mw me ")
        address = start + index * 0x1000
        parts.append(block % (address, address + 0x1000, perms, flags))
    return "".join(parts).encode()


def test_65000_mappings_in_a_tree(tree):
    """A process with 65,000 mappings (the most vm.max_map_count allows),
    on a kernel without smaps_rollup: every line is read.  Private 4 KiB
    and Pss 4 KiB each, so Shared is the 0.5 KiB per Pss line added back:
    253.9 MiB + 31.7 MiB."""
    t = tree("4.4")
    t.add(100, "small", "/usr/bin/small", maps=program_maps("/usr/bin/small", heap_kib=900))
    t.add(4000, "mapper", "/usr/bin/mapper", replace={"smaps": _many_mappings_smaps(MAPPINGS)})
    started = time.monotonic()
    ours = run_ours(procfs=t.root)
    seconds = time.monotonic() - started
    assert ours.status == 0 and ours.stderr == b""
    assert "\n253.9 MiB +  31.7 MiB = 285.6 MiB\tmapper\n" in ours.out
    assert seconds < 30, "%.1f s for 65,000 mappings" % seconds
    if REFERENCE.exists():
        assert ours == run_reference(procfs=t.root)


_MANY_MAPPINGS_PROGRAM = r"""
import ctypes, mmap, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
with open("/proc/self/maps") as handle:
    existing = sum(1 for _ in handle)
pages = int(sys.argv[1]) - existing
page = mmap.PAGESIZE
base = libc.mmap(None, pages * page, mmap.PROT_READ | mmap.PROT_WRITE,
                 mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
if base in (None, ctypes.c_void_p(-1).value):
    sys.exit("mmap failed")
ctypes.memset(base, 1, pages * page)  # every page resident and private
for index in range(0, pages, 2):  # every other page read-only: no merging
    if libc.mprotect(base + index * page, page, mmap.PROT_READ) != 0:
        sys.exit("mprotect failed: %d" % ctypes.get_errno())
with open("/proc/self/maps") as handle:
    print("ready", sum(1 for _ in handle), pages, flush=True)
time.sleep(600)
"""


@live
def test_65000_mappings_live():
    """A real process with 65,000 mappings: ps_mem reads it in reasonable
    time and counts its memory (each of its pages was written)."""
    with open("/proc/sys/vm/max_map_count") as handle:
        if int(handle.read()) < MAPPINGS + 100:
            pytest.skip("vm.max_map_count is below %d" % (MAPPINGS + 100))
    child = subprocess.Popen([sys.executable, "-c", _MANY_MAPPINGS_PROGRAM, str(MAPPINGS)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             start_new_session=True)
    try:
        words = child.stdout.readline().split()
        assert words[:1] == [b"ready"], words
        mappings, pages = int(words[1]), int(words[2])
        assert mappings >= MAPPINGS - 5
        started = time.monotonic()
        result = run_ours_live("--json", "-p", str(child.pid))
        seconds = time.monotonic() - started
        assert seconds < 30, "%.1f s" % seconds
        [program] = json.loads(result.stdout)["programs"]
        page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        assert program["private"] >= pages * page_kib * 1024
        table = run_ours_live("-p", str(child.pid))
        assert re.search(rb"\tpython[\d.]*\n", table.stdout), table.stdout
        if REFERENCE.exists():
            reference = run_ours_live("-p", str(child.pid), script=REFERENCE)
            assert reference.status == 0
            assert _sizes_close(table.out, reference.out)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()


def run_ours_live(*args: str, script: Path = OURS) -> Result:
    env = dict(os.environ, LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    return Result(done.stdout, done.stderr, done.returncode)


def _sizes_close(ours: str, reference: str) -> bool:
    """The same text but for sizes, which move by a few KiB between two
    runs over a dynamically linked process."""
    size = re.compile(r"\d+\.\d [KMG]iB")
    if size.sub("#", ours).replace(" ", "") != size.sub("#", reference).replace(" ", ""):
        return False
    units = {"KiB": 1, "MiB": 1024, "GiB": 1024 ** 2}
    values = [[float(match.split()[0]) * units[match.split()[1]] for match in size.findall(text)]
              for text in (ours, reference)]
    return all(abs(a - b) <= 0.02 * max(a, b) + 64 for a, b in zip(*values))


# 2 MiB of arguments: 16 of 128 KiB (the most one argument may have),
# each different, and a few short ones.
BIG_ARGS = [("%02d" % number).encode() * (64 * 1024 - 1) for number in range(16)]


@live
def test_2_mib_command_line_live():
    """A process whose command line is 2 MiB: -s shows all of it, as 3.14
    does (ps_mem reads cmdline in 64 KiB pieces until the end)."""
    total = sum(len(arg) + 1 for arg in BIG_ARGS)
    assert total >= 2 * 1024 * 1024 - 64
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    need = 64 * 1024 * 1024  # exec allows argv up to a quarter of the stack limit
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.skip("the stack limit (%d) is too small for a 2 MiB argv" % hard)
    resource.setrlimit(resource.RLIMIT_STACK, (need, hard))
    try:
        with Processes() as procs:
            program = [sys.executable.encode(), b"-c", b"import time; time.sleep(600)"]
            try:
                running = procs.command(program + BIG_ARGS, exe=os.path.realpath(sys.executable))
            except OSError as error:
                if error.errno == errno.E2BIG:
                    pytest.skip("exec refused a 2 MiB argv here")
                raise
            with open("/proc/%d/cmdline" % running.pid, "rb") as handle:
                assert len(handle.read()) == len(b"\0".join(program + BIG_ARGS)) + 1
            started = time.monotonic()
            ours = run_ours_live("-s", "-p", str(running.pid))
            assert time.monotonic() - started < 30
            name = " ".join(arg.decode() for arg in program + BIG_ARGS)
            rows = ours.out.split("\n\n", 1)[1].split("\n")
            assert rows[0].split("\t", 1)[1] == name
            assert run_ours_live("-p", str(running.pid)).out.count("\tpython") == 1
            if REFERENCE.exists():
                reference = run_ours_live("-s", "-p", str(running.pid), script=REFERENCE)
                assert reference.out.split("\n\n", 1)[1].split("\n")[0].split("\t", 1)[1] == name
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))


def test_2_mib_command_line_in_a_tree(tree):
    t = tree("6.1")
    t.add(100, "small", "/usr/bin/small", maps=program_maps("/usr/bin/small", heap_kib=900))
    args = ["/usr/bin/huge"] + [arg.decode() for arg in BIG_ARGS]
    t.add(4001, "huge", "/usr/bin/huge", cmdline=args,
          maps=program_maps("/usr/bin/huge", heap_kib=1800))
    started = time.monotonic()
    ours = run_ours("-s", procfs=t.root)
    assert time.monotonic() - started < 30
    assert ours.status == 0 and ("\t" + " ".join(args) + "\n") in ours.out
    if REFERENCE.exists():
        assert ours == run_reference("-s", procfs=t.root)
