"""--capture FILE and --procfs FILE (README.md, "Reporting a problem").

A capture is one gzip-compressed tar holding what ps_mem reads of every
process (cmdline, status, smaps_rollup or smaps, statm, cgroup, the exe
link), the kernel release, meminfo, which pid was ps_mem, whether a deleted
executable's path still existed, and the kernel's answer on shared address
spaces.  Read back with --procfs it must answer as the proc root did when
it was taken:

  * the capturing run and `--procfs FILE` with the same options print the
    same bytes and exit alike (on the live /proc too, JSON time included);
  * `--procfs FILE` with other options prints what `--procfs TREE` prints
    (fixture trees, including after the executables' paths have changed);
  * it holds nothing else (no environ, no memory contents), and is small.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from tests import trees
from tests.harness import OURS, REFERENCE_DIR, Result, run_ours, run_reference
from tests.inprocess import live, ps_mem, run_main
from tests.procfs_builder import ProcTree, program_maps, status_text
from tests.realproc import Processes

LIVE = live
PER_PID = {"cmdline", "status", "smaps_rollup", "smaps", "statm", "cgroup", "exe"}
MEMBER = re.compile(r"ps_mem-capture\.json|proc/self|proc/sys/kernel/osrelease|proc/meminfo"
                    r"|proc/sys/kernel/random/boot_id|proc/sys/kernel/hostname"
                    r"|proc/(\d+)/(%s)" % "|".join(sorted(PER_PID)))
TIME = re.compile(rb'"time": "[^"]*"')


def without_time(result: Result) -> Result:
    """--json's time is when the sample was taken: a capture's own time."""
    return result._replace(stdout=TIME.sub(b'"time": "T"', result.stdout))


def members(capture: Path) -> Dict[str, tarfile.TarInfo]:
    with tarfile.open(str(capture)) as archive:
        return {member.name: member for member in archive}


def member_data(capture: Path) -> Dict[str, bytes]:
    with tarfile.open(str(capture)) as archive:
        return {member.name: archive.extractfile(member).read()
                for member in archive if member.isfile()}


def assert_only_what_ps_mem_reads(capture: Path) -> Dict[str, tarfile.TarInfo]:
    found = members(capture)
    for name, member in found.items():
        match = MEMBER.fullmatch(name)
        assert match, "unexpected member %s" % name
        if match.group(2) == "exe" or name == "proc/self":
            assert member.issym(), name
        else:
            assert member.isfile(), name
    assert "ps_mem-capture.json" in found and "proc/sys/kernel/osrelease" in found
    return found


# ----------------------------------------------------------------------------
# Fixture trees: the capture answers as the tree did
# ----------------------------------------------------------------------------

OPTION_SETS: List[List[str]] = [
    [], ["-s"], ["-t"], ["-d"], ["-S"], ["-S", "-t"], ["-d", "-S"], ["-s", "-d"],
    ["-p", "<pids>"], ["-p", "99999"], ["--json"], ["--json", "-S", "-d"],
    ["--group-by", "user"], ["--group-by", "cgroup", "-S"],
    ["--sort", "name", "--reverse", "--top", "3"], ["--sort", "swap", "-S", "--top", "2"],
]
TREES = ["rollup_6_1", "smaps_pss_per_line", "smaps_no_pss", "statm_2_6_18", "statm_2_6_9",
         "kernel_2_4", "kernel_2_4_rmap", "swap_without_swappss", "swap_with_swappss", "hugetlb",
         "truncated_name", "renamed_children", "non_utf8", "newlines_in_args",
         "kernel_threads_only", "clone_vm", "clone_vm_smaps", "clone_vm_undecodable",
         "cr_in_mapped_path", "zero_memory", "zero_memory_rollup", "ties", "self_only",
         "vanished_memory", "vanished_statm_only", "vanished_status_short",
         "vanished_rollup_unreadable", "vanished_rollup_truncated", "vanished_quietly",
         "hostile_names"]


def _options(tree: ProcTree, options: Sequence[str]) -> List[str]:
    pids = ",".join(map(str, tree.probe_pids or [1]))
    return [pids if option == "<pids>" else option for option in options]


@pytest.mark.parametrize("name", TREES)
def test_capture_of_a_tree_answers_as_the_tree(proc_trees, tmp_path, name):
    tree = proc_trees.get(name)
    capture = tmp_path / "capture.tar.gz"
    capturing = run_main("--capture", str(capture), procfs=tree.root)
    assert capturing == run_main(procfs=tree.root)
    assert_only_what_ps_mem_reads(capture)
    for options in OPTION_SETS:
        options = _options(tree, options)
        from_tree = without_time(run_main(*options, procfs=tree.root))
        assert without_time(run_main(*options, procfs=capture)) == from_tree, options


@pytest.mark.parametrize("options", OPTION_SETS[1:], ids=[" ".join(o) for o in OPTION_SETS[1:]])
def test_capturing_run_with_options_prints_its_report(proc_trees, tmp_path, options):
    """The capturing run with options prints what a run with those options
    prints, and the capture read back with the same options says it again."""
    tree = proc_trees.get("rollup_6_1")
    options = _options(tree, options)
    capture = tmp_path / "capture.tar.gz"
    capturing = run_main("--capture", str(capture), *options, procfs=tree.root)
    assert without_time(capturing) == without_time(run_main(*options, procfs=tree.root))
    assert run_main(*options, procfs=capture) == capturing  # time too


def test_capture_through_the_command_line(proc_trees, tmp_path):
    tree = proc_trees.get("swap_with_swappss")
    capture = tmp_path / "capture.tar.gz"
    capturing = run_ours("--capture", str(capture), "-S", "--json", procfs=tree.root)
    assert capturing.status == 0 and capturing.stderr == b""
    assert run_ours("-S", "--json", procfs=capture) == capturing
    assert run_ours("-d", procfs=capture) == run_ours("-d", procfs=tree.root)


def test_capture_holds_the_trees_bytes(proc_trees, tmp_path):
    """Each file as the tree has it, the exe links' targets, self, and for a
    kernel thread only its (empty) command line."""
    tree = proc_trees.get("rollup_6_1")
    capture = tmp_path / "capture.tar.gz"
    run_main("--capture", str(capture), procfs=tree.root)
    found = assert_only_what_ps_mem_reads(capture)
    data = member_data(capture)
    for name, content in data.items():
        if name.startswith("proc/"):
            assert (tree.root / name[len("proc/"):]).read_bytes() == content, name
    for name, member in found.items():
        if member.issym():
            assert os.readlink(str(tree.root / name[len("proc/"):])) == member.linkname, name
    assert found["proc/self"].linkname == str(tree.self_pid)
    manifest = json.loads(data["ps_mem-capture.json"])
    assert manifest["self"] == tree.self_pid
    assert sorted(manifest["pids"]) == sorted(tree.pids + [tree.self_pid])
    kthread = sorted(name for name in found if name.startswith("proc/2/"))
    assert kthread == ["proc/2/cmdline"]
    # smaps only for ps_mem itself (the accuracy probe): the rollup suffices.
    smaps = sorted(name for name in found if name.endswith("/smaps"))
    assert smaps == ["proc/%d/smaps" % tree.self_pid]


# ----------------------------------------------------------------------------
# Executables replaced or removed after the capture
# ----------------------------------------------------------------------------

def _build(name: str, tmp_path: Path) -> ProcTree:
    return trees.ALL[name](tmp_path / "tree" / "proc")


def _marks(stdout: str) -> List[str]:
    return sorted(re.findall(r"\t(\S+ \[(?:updated|deleted)\])\n", stdout))


@pytest.mark.parametrize("name, before, after", [
    ("exe_updated", ["updated-daemon [updated]"], ["updated-daemon [deleted]"]),
    ("exe_deleted", ["gone-daemon [deleted]"], ["gone-daemon [updated]"]),
    ("exe_prelinked", ["notification-area-applet [updated]"],
     ["notification-area-applet.#prelink#.fX7LCT [deleted]"]),
])
def test_capture_remembers_whether_the_executable_existed(tmp_path, name, before, after):
    tree = _build(name, tmp_path)
    capture = tmp_path / "capture.tar.gz"
    capturing = run_main("--capture", str(capture), procfs=tree.root)
    assert _marks(capturing.out) == before
    pid = tree.probe_pids[0]
    target = os.readlink(str(tree.root / str(pid) / "exe"))[: -len(" (deleted)")]
    cmdline0 = (tree.root / str(pid) / "cmdline").read_bytes().split(b"\0")[0].decode()
    if name == "exe_deleted":
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_bytes(b"\x7fELF")  # reinstalled
    else:
        os.unlink(cmdline0)  # removed
    assert _marks(run_main(procfs=tree.root).out) == after  # the tree sees the change
    assert run_main(procfs=capture) == capturing
    for options in (["-d"], ["-p", str(pid)], ["--json"], ["-S", "--sort", "name"]):
        replay = run_main(*options, procfs=capture)
        assert replay.status == 0 and replay.stderr == b""
        if "--json" in options:
            names = [program["name"] for program in json.loads(replay.stdout)["programs"]]
            assert sorted(name for name in names if name.endswith("]")) == before
        else:
            assert _marks(replay.out.replace(" [%d]\n" % pid, "\n")) == before, options


# ----------------------------------------------------------------------------
# Users and cgroups: recorded as they were
# ----------------------------------------------------------------------------

def test_capture_keeps_user_names_and_cgroups(tmp_path):
    """A uid's name is looked up when the capture is taken and kept: the
    reader's passwd need not know it."""
    tree = ProcTree(tmp_path / "proc", "6.1")
    for pid, uid, cgroup in ((10, 0, b"0::/system.slice/a.service\n"),
                             (11, 54399, b"4:memory:/docker/x\n"), (12, 0, None)):
        maps = program_maps("/usr/bin/p%d" % pid, heap_kib=1000 + pid)
        status = status_text("modern", "p%d" % pid, pid, 1, maps).replace(
            b"Uid:\t0\t0\t0\t0", ("Uid:\t%d\t%d\t%d\t%d" % ((uid,) * 4)).encode())
        replace = {"status": status}
        if cgroup is not None:
            replace["cgroup"] = cgroup
        tree.add(pid, "p%d" % pid, "/usr/bin/p%d" % pid, maps=maps, replace=replace)
    capture = tmp_path / "capture.tar.gz"
    run_main("--capture", str(capture), procfs=tree.root)
    manifest = json.loads(member_data(capture)["ps_mem-capture.json"])
    assert manifest["users"]["0"] == "root"
    for options in (["--group-by", "user"], ["--group-by", "cgroup"], ["--group-by", "user", "-d"]):
        assert run_main(*options, procfs=capture) == run_main(*options, procfs=tree.root)
    names = json.loads(run_main("--json", "--group-by", "cgroup", procfs=capture).stdout)
    assert sorted(program["name"] for program in names["programs"]) == \
        ["-", "/docker/x", "/system.slice/a.service"]
    # The names come from the capture, not from the reader's passwd.
    manifest["users"]["0"] = "admin-at-capture"
    renamed = tmp_path / "renamed.tar.gz"
    _rewrite(capture, renamed, {"ps_mem-capture.json": json.dumps(manifest).encode()})
    users = json.loads(run_main("--json", "--group-by", "user", procfs=renamed).stdout)
    assert sorted(program["name"] for program in users["programs"]) == \
        ["54399", "admin-at-capture"]


def _rewrite(source: Path, target: Path, replace: Dict[str, bytes]) -> None:
    """A copy of capture SOURCE with some members' contents replaced."""
    with tarfile.open(str(source)) as original, tarfile.open(str(target), "w:gz") as copy:
        for member in original:
            data = original.extractfile(member).read() if member.isfile() else None
            if member.name in replace:
                data = replace[member.name]
                member.size = len(data)
            copy.addfile(member, io.BytesIO(data) if data is not None else None)


# ----------------------------------------------------------------------------
# Files that are not captures
# ----------------------------------------------------------------------------

def _small_capture(proc_trees, tmp_path) -> bytes:
    capture = tmp_path / "good.tar.gz"
    run_main("--capture", str(capture), procfs=proc_trees.get("rollup_6_1").root)
    return capture.read_bytes()


def _tar_gz(entries: Dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in entries.items():
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


NOT_CAPTURES = {
    "text": lambda good: b"hello\n",
    "empty": lambda good: b"",
    "truncated": lambda good: good[:len(good) // 2],
    "gzip of text": lambda good: _gzip(b"hello\n" * 100),
    "tar without manifest": lambda good: _tar_gz({"proc/sys/kernel/osrelease": b"6.1.0\n"}),
    "manifest of another format": lambda good: _tar_gz(
        {"ps_mem-capture.json": json.dumps({"format": 99, "pids": []}).encode()}),
    "manifest not JSON": lambda good: _tar_gz({"ps_mem-capture.json": b"{oops"}),
    "manifest not an object": lambda good: _tar_gz({"ps_mem-capture.json": b"[1, 2]"}),
}


def assert_one_line_error(result: Result, path: Path) -> None:
    assert result.status == 2 and result.stdout == b"", result
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith("ps_mem: cannot read %s: " % path), result.err


@pytest.mark.parametrize("kind", sorted(NOT_CAPTURES))
def test_not_a_capture(proc_trees, tmp_path, kind):
    path = tmp_path / "file.tar.gz"
    path.write_bytes(NOT_CAPTURES[kind](_small_capture(proc_trees, tmp_path)))
    assert_one_line_error(run_main(procfs=path), path)


def test_not_a_capture_through_the_command_line(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a capture\n")
    assert_one_line_error(run_ours(procfs=path), path)
    assert_one_line_error(run_ours("--json", "-s", procfs=path), path)


def test_corrupt_capture(proc_trees, tmp_path):
    """Bytes flipped anywhere in a capture: ps_mem reads it (a flip the gzip
    trailer alone would show goes unnoticed, as tar stops before it) or says
    it cannot, in one line; never a traceback."""
    capture = tmp_path / "good.tar.gz"
    run_main("--capture", str(capture), procfs=proc_trees.get("smaps_pss_per_line").root)
    good = capture.read_bytes()
    path = tmp_path / "corrupt.tar.gz"
    failures = []
    for offset in range(64, len(good) - 16, 71):
        corrupt = bytearray(good)
        for index in range(offset, offset + 8):
            corrupt[index] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        # run() turns OSError and ValueError from loading into "cannot read"
        # (test_not_a_capture); anything else is a traceback.
        try:
            ps_mem.load_capture(str(path))
        except (OSError, ValueError):
            continue
        except Exception as error:
            failures.append((offset, repr(error)))
    assert failures == []


def test_manifest_without_pids(tmp_path):
    path = tmp_path / "nopids.tar.gz"
    path.write_bytes(_tar_gz({"ps_mem-capture.json": b'{"format": 1}',
                              "proc/sys/kernel/osrelease": b"6.1.0\n"}))
    assert_one_line_error(run_ours(procfs=path), path)


def test_capture_with_watch_is_a_usage_error(proc_trees, tmp_path):
    result = run_main("--capture", str(tmp_path / "c.tar.gz"), "-w", "1",
                      procfs=proc_trees.get("rollup_6_1").root)
    assert result.status == 2 and result.stdout == b""
    assert result.err.splitlines()[-1] == \
        "ps_mem: error: --capture takes one sample; it cannot be combined with -w"
    assert not (tmp_path / "c.tar.gz").exists()


def test_capture_to_unwritable_path(proc_trees, tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "c.tar.gz"
    result = run_main("--capture", str(path), procfs=proc_trees.get("rollup_6_1").root)
    assert result.status == 2 and result.stdout == b""
    assert result.err.startswith("ps_mem: cannot write %s: " % path)
    assert result.err.count("\n") == 1


def test_capture_of_a_capture(proc_trees, tmp_path):
    first = tmp_path / "first.tar.gz"
    second = tmp_path / "second.tar.gz"
    run_main("--capture", str(first), procfs=proc_trees.get("rollup_6_1").root)
    again = run_main("--capture", str(second), procfs=first)
    # Either the same report (and a copy), or a usage error: not a silent nothing.
    if again.status != 2:
        assert again == run_main(procfs=first)
        assert run_main(procfs=second) == run_main(procfs=first)


# ----------------------------------------------------------------------------
# Unpacked, a capture is a proc root
# ----------------------------------------------------------------------------

def _unpack(capture: Path, where: Path) -> Path:
    with tarfile.open(str(capture)) as archive:
        for member in archive:  # no path leaves `where`
            assert not member.name.startswith("/") and ".." not in member.name.split("/")
        archive.extractall(str(where))
    return where / "proc"


@pytest.mark.parametrize("name", ["rollup_6_1", "smaps_pss_per_line", "smaps_no_pss",
                                  "statm_2_6_18", "hugetlb"])
def test_unpacked_capture_is_a_tree_for_ps_mem(proc_trees, tmp_path, name):
    capture = tmp_path / "capture.tar.gz"
    capturing = run_main("--capture", str(capture), procfs=proc_trees.get(name).root)
    root = _unpack(capture, tmp_path / "unpacked")
    for options in ([], ["-d", "-S"], ["-s"]):
        assert run_main(*options, procfs=root) == run_main(*options, procfs=capture)
    assert run_main(procfs=root) == capturing




@pytest.mark.parametrize("name", ["smaps_pss_per_line", "smaps_no_pss", "statm_2_6_18",
                                  "swap_without_swappss"])
def test_unpacked_capture_of_smaps_kernel_is_read_by_3_14(proc_trees, tmp_path, name):
    """Where the kernel has no smaps_rollup, the capture holds what 3.14
    reads, and 3.14 prints what ours prints."""
    if not (REFERENCE_DIR / "ps_mem.py").exists():
        pytest.skip("ps_mem 3.14 is not installed")
    capture = tmp_path / "capture.tar.gz"
    run_main("--capture", str(capture), procfs=proc_trees.get(name).root)
    root = _unpack(capture, tmp_path / "unpacked")
    for options in ([], ["-S"]):
        assert run_reference(*options, procfs=root) == run_ours(*options, procfs=root)


# ----------------------------------------------------------------------------
# The live /proc
# ----------------------------------------------------------------------------

def _capturing_run(capture: Path, options: Sequence[str]):
    """A live capturing run, with its pid (the capture's `self`)."""
    child = subprocess.Popen([sys.executable, str(OURS), "--capture", str(capture), *options],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, PYTHONIOENCODING="utf-8",
                                      PS_MEM_TEST_SECRET=SECRET.decode()))
    stdout, stderr = child.communicate(timeout=300)
    return child.pid, Result(stdout, stderr, child.returncode)


SECRET = b"ps-mem-capture-secret-7f3a9c"  # in the environment of processes only
LIVE_OPTIONS = [[], ["-S", "-d"], ["-s", "--json"], ["--group-by", "user", "-t"],
                ["--group-by", "cgroup", "--reverse", "--top", "5", "-S"]]


@pytest.fixture(scope="module")
def live_captures(tmp_path_factory):
    """One live capture per option set (the processes started for the test
    hold a secret in their environment and memory), taken two at a time."""
    if not os.path.exists("/proc/self/smaps") or os.geteuid() != 0:
        pytest.skip("needs a Linux /proc with smaps, and root")
    where = tmp_path_factory.mktemp("live")
    procs = Processes()
    try:
        sleeper = procs.command(["env", "PS_MEM_TEST_SECRET=" + SECRET.decode(),
                                 shutil.which("sleep") or "/bin/sleep", "600"],
                                exe=os.path.realpath(shutil.which("sleep") or "/bin/sleep"))
        with ThreadPoolExecutor(2) as pool:
            runs = list(pool.map(lambda item: _capturing_run(where / ("%d.tar.gz" % item[0]),
                                                             item[1]),
                                 enumerate(LIVE_OPTIONS)))
        yield [(where / ("%d.tar.gz" % index), options, pid, result)
               for index, (options, (pid, result)) in enumerate(zip(LIVE_OPTIONS, runs))], \
            sleeper.pid
    finally:
        procs.close()


@LIVE
@pytest.mark.parametrize("index", range(len(LIVE_OPTIONS)),
                         ids=[" ".join(options) or "default" for options in LIVE_OPTIONS])
def test_live_capture_reproduces_its_run(live_captures, index):
    captures, _ = live_captures
    capture, options, pid, capturing = captures[index]
    assert capturing.status == 0, capturing.err
    assert capturing.stdout
    replay = run_ours(*options, procfs=capture)
    assert (replay.out, replay.err, replay.status) == \
        (capturing.out, capturing.err, capturing.status)
    manifest = json.loads(member_data(capture)["ps_mem-capture.json"])
    assert manifest["self"] == pid  # the capturing process, left out of the report
    assert members(capture)["proc/self"].linkname == str(pid)
    if "--json" in options:
        shown = {p for program in json.loads(capturing.stdout)["programs"]
                 for p in program["pids"]}
        assert pid not in shown and shown


@LIVE
def test_live_capture_content_and_size(live_captures, capsys):
    captures, sleeper = live_captures
    capture, _, pid, _ = captures[0]
    found = assert_only_what_ps_mem_reads(capture)
    pids = {int(MEMBER.fullmatch(name).group(1)) for name in found
            if MEMBER.fullmatch(name).group(1)}
    assert sleeper in pids and pid in pids
    assert "proc/%d/smaps" % pid in found  # the accuracy probe
    # Nothing of any environment or memory: the sleep's environment holds
    # the secret, and so does the capturing process's own.
    data = member_data(capture)
    assert not any(SECRET in content for content in data.values())
    assert SECRET not in capture.read_bytes()
    size = capture.stat().st_size
    with capsys.disabled():
        print("\nlive capture: %d bytes for %d processes (%.0f bytes each), %d members"
              % (size, len(pids), size / len(pids), len(found)))
    assert size <= 2048 * len(pids) + 65536


@LIVE
def test_live_capture_read_with_other_options_is_consistent(live_captures, monkeypatch):
    """One live sample, many views: the totals of -d, -s, user and cgroup
    groupings (and of --top larger than the rows) are the default view's,
    and every view shows the same processes.  (Read in this process, the
    capture loaded once: reading a capture is mostly parsing the tar.)"""
    captures, _ = live_captures
    capture = captures[0][0]
    loaded = ps_mem.load_capture(str(capture))
    monkeypatch.setattr(ps_mem, "load_capture", lambda path: loaded)
    totals = {}
    pid_sets = {}
    for options in ([], ["-d"], ["-s"], ["-s", "-d"], ["--group-by", "user"],
                    ["--group-by", "cgroup"], ["--top", "100000"]):
        doc = json.loads(run_main("--json", *options, procfs=capture).stdout)
        totals[" ".join(options)] = doc["total"]["ram"]
        pid_sets[" ".join(options)] = sorted(pid for program in doc["programs"]
                                             for pid in program["pids"])
        only_total = run_main("-t", *options, procfs=capture)
        assert int(only_total.stdout) == doc["total"]["ram"], options
        if not options:
            assert doc["programs"] and doc["total"]["ram"] > 0
    assert len(set(totals.values())) == 1, totals
    assert len({tuple(pids) for pids in pid_sets.values()}) == 1
