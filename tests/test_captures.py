"""Stage: proc access, captures: --capture FILE and --procfs FILE (README.md,
"Reporting a problem").

A capture is one gzip-compressed tar holding what ps_mem reads of every
process (cmdline, status, smaps_rollup or smaps, statm, cgroup, the exe
link), the kernel release, meminfo, which pid was ps_mem, whether a deleted
executable's path still existed, the errors /proc answered, and the
kernel's answer on shared address spaces.  Read back with --procfs it must
answer as the proc root did when it was taken:

  * the capturing run and `--procfs FILE` with the same options print the
    same bytes and exit alike (on the live /proc too: test_live.py);
  * `--procfs FILE` with other options prints what `--procfs TREE` prints
    (fixture trees, including after the executables' paths have changed);
  * it holds nothing else (no environ, no memory contents), and is small;
  * a file that is not a capture is one line on stderr, exit 2.
"""

import errno
import io
import json
import os
import re
import tarfile
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

from tests import trees
from tests.harness import (DENIED_WARNING_2, Result, assert_only_what_ps_mem_reads, member_data,
                           need_reference, ps_mem, rewrite_capture, run_main, run_ours,
                           run_reference, without_time)
from tests.procfs_builder import ProcTree, program_maps

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
        tree.add(pid, "p%d" % pid, "/usr/bin/p%d" % pid, maps=maps, uids=(uid,) * 4,
                 replace={} if cgroup is None else {"cgroup": cgroup})
    capture = tmp_path / "capture.tar.gz"
    run_main("--capture", str(capture), procfs=tree.root)
    manifest = json.loads(member_data(capture)["ps_mem-capture.json"])
    assert manifest["users"]["0"] == "root"
    for options in (["--group-by", "user"], ["--group-by", "cgroup"], ["--group-by", "user", "-d"]):
        assert run_main(*options, procfs=capture) == run_main(*options, procfs=tree.root)
    names = json.loads(run_main("--json", "--group-by", "cgroup", procfs=capture).stdout)
    assert sorted(program["name"] for program in names["programs"]) == \
        ["-", "/system.slice/a.service", "memory:/docker/x"]
    # The names come from the capture, not from the reader's passwd.
    manifest["users"]["0"] = "admin-at-capture"
    renamed = tmp_path / "renamed.tar.gz"
    rewrite_capture(capture, renamed, {"ps_mem-capture.json": json.dumps(manifest).encode()})
    users = json.loads(run_main("--json", "--group-by", "user", procfs=renamed).stdout)
    assert sorted(program["name"] for program in users["programs"]) == \
        ["54399", "admin-at-capture"]


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
    need_reference()
    capture = tmp_path / "capture.tar.gz"
    run_main("--capture", str(capture), procfs=proc_trees.get(name).root)
    root = _unpack(capture, tmp_path / "unpacked")
    for options in ([], ["-S"]):
        assert run_reference(*options, procfs=root) == run_ours(*options, procfs=root)


# ----------------------------------------------------------------------------
# Errors /proc answered, recorded
# ----------------------------------------------------------------------------


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
    assert result.status == 0 and result.stderr == DENIED_WARNING_2
    rows = result.out.split("\n\n", 1)[1].split("-" * 33)[0]
    assert [line.split("\t")[1] for line in rows.splitlines()] == ["init", "beta"]
