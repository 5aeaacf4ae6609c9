"""--group-by cgroup decides v1 against v2 once per machine.

Hierarchies and the controllers bound to them are the machine's: every
process's /proc/PID/cgroup lists the same ones.  ps_mem asks pid 1's file
(else the proc root's self) which hierarchy holds the memory controller,
and names every row by its path there: the unified hierarchy's on cgroup
v2, the memory controller's on v1 and on a hybrid machine, marked
"memory:".  Where no such file tells, each process's own file decides, and
a v1 path is still marked, so that one column cannot mix the two unseen.

Trees for a pure v2, a pure v1 and a hybrid machine (the file texts as
each kind of machine writes them), then this machine, which is hybrid.
"""

import json
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from tests.harness import live, parse_table, run_main, run_ours
from tests.procfs_builder import ProcTree, program_maps
from tests.realproc import Processes

# pid -> cgroup file, per machine: pid 1, a service, a container's process,
# a login session.
V2 = {
    1: b"0::/init.scope\n",
    100: b"0::/system.slice/nginx.service\n",
    101: b"0::/system.slice/nginx.service\n",
    200: b"0::/system.slice/docker-4f1e.scope\n",
    300: b"0::/user.slice/user-1000.slice/session-2.scope\n",
}
V1 = {
    1: b"11:pids:/\n4:cpu,memory,blkio:/\n1:name=systemd:/init.scope\n",
    100: b"11:pids:/system.slice/nginx.service\n4:cpu,memory,blkio:/system.slice\n"
         b"1:name=systemd:/system.slice/nginx.service\n",
    101: b"11:pids:/system.slice/nginx.service\n4:cpu,memory,blkio:/system.slice\n"
         b"1:name=systemd:/system.slice/nginx.service\n",
    200: b"11:pids:/docker/4f1e\n4:cpu,memory,blkio:/docker/4f1e\n1:name=systemd:/docker/4f1e\n",
    300: b"11:pids:/user.slice\n4:cpu,memory,blkio:/user.slice\n"
         b"1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n",
}
# systemd's hybrid layout: the unified hierarchy tracks units, the memory
# controller (v1) accounts memory; a container (cgroupfs driver) is apart
# only in the controllers' hierarchies.
HYBRID = {
    1: b"12:memory:/init.scope\n1:name=systemd:/init.scope\n0::/init.scope\n",
    100: b"12:memory:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n"
         b"0::/system.slice/nginx.service\n",
    101: b"12:memory:/system.slice/nginx.service\n1:name=systemd:/system.slice/nginx.service\n"
         b"0::/system.slice/nginx.service\n",
    200: b"12:memory:/docker/4f1e\n1:name=systemd:/system.slice/containerd.service\n"
         b"0::/system.slice/containerd.service\n",
    300: b"12:memory:/user.slice/user-1000.slice\n"
         b"1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n"
         b"0::/user.slice/user-1000.slice/session-2.scope\n",
}
# Each machine's rows, written by hand.
ROWS = {
    "v2": {"/init.scope": [1], "/system.slice/nginx.service": [100, 101],
           "/system.slice/docker-4f1e.scope": [200],
           "/user.slice/user-1000.slice/session-2.scope": [300]},
    "v1": {"memory:/": [1], "memory:/system.slice": [100, 101], "memory:/docker/4f1e": [200],
           "memory:/user.slice": [300]},
    "hybrid": {"memory:/init.scope": [1], "memory:/system.slice/nginx.service": [100, 101],
               "memory:/docker/4f1e": [200], "memory:/user.slice/user-1000.slice": [300]},
}
MACHINES = {"v2": V2, "v1": V1, "hybrid": HYBRID}


def machine_tree(root: Path, files: Dict[int, Optional[bytes]],
                 self_cgroup: Optional[bytes] = None) -> ProcTree:
    tree = ProcTree(root, "6.1")
    for pid, cgroup in files.items():
        exe = "/usr/bin/prog%d" % pid
        tree.add(pid, "prog%d" % pid, exe, ppid=0 if pid == 1 else 1,
                 maps=program_maps(exe, heap_kib=1000 + pid),
                 replace={} if cgroup is None else {"cgroup": cgroup})
    if self_cgroup is not None:
        (root / str(tree.self_pid) / "cgroup").write_bytes(self_cgroup)
    return tree


def rows_by_name(*args: str, procfs) -> Dict[str, List[int]]:
    result = run_main("--json", "--group-by", "cgroup", *args, procfs=procfs)
    assert result.status == 0 and result.stderr == b"", result.err
    return {row["name"]: sorted(row["pids"]) for row in json.loads(result.stdout)["programs"]}


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_each_kind_of_machine(tmp_path, machine):
    tree = machine_tree(tmp_path / "proc", MACHINES[machine])
    assert rows_by_name(procfs=tree.root) == ROWS[machine]
    table = run_main("--group-by", "cgroup", procfs=tree.root)
    assert table.out.startswith(" Private  +   Shared  =  RAM used\tCgroup\n\n")
    assert parse_table(table.out).total_ram == parse_table(run_main(procfs=tree.root).out).total_ram


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_decided_once_whatever_pids_are_asked_for(tmp_path, machine):
    """-p 200 alone: pid 1's file still decides (it is read, not shown)."""
    tree = machine_tree(tmp_path / "proc", MACHINES[machine])
    expected = {name: pids for name, pids in ROWS[machine].items() if pids == [200]}
    assert rows_by_name("-p", "200", procfs=tree.root) == expected


def test_pid_1_decides_for_a_process_whose_file_says_otherwise(tmp_path):
    """A tree no kernel makes: pid 1 says hybrid, one process's file is a
    v2 one.  The column is not mixed: that process has no memory line."""
    files = dict(HYBRID)
    files[400] = b"0::/system.slice/odd.service\n"
    tree = machine_tree(tmp_path / "proc", files)
    assert rows_by_name(procfs=tree.root) == dict(ROWS["hybrid"], **{"-": [400]})


def test_self_decides_without_pid_1(tmp_path):
    """A tree without pid 1 (a container's /proc saved without it): the
    tree's self, the process that saved it, decides."""
    files = {pid: text for pid, text in HYBRID.items() if pid != 1}
    files[400] = b"0::/system.slice/odd.service\n"
    tree = machine_tree(tmp_path / "proc", files, self_cgroup=HYBRID[1])
    assert rows_by_name(procfs=tree.root)["-"] == [400]


def test_undecided_each_process_decides_and_v1_is_marked(tmp_path):
    """No pid 1, no self's file: each file decides for its own process; a
    v1 path is marked, so the two kinds stay apart in one column."""
    tree = machine_tree(tmp_path / "proc", {100: V2[100], 200: V1[200], 300: None})
    assert rows_by_name(procfs=tree.root) == {"/system.slice/nginx.service": [100],
                                              "memory:/docker/4f1e": [200], "-": [300]}


def test_pid_1_without_a_cgroup_file(tmp_path):
    """pid 1 shown but without a cgroup file (an old kernel's tree): the
    self's file, then each process's, decides."""
    files: Dict[int, Optional[bytes]] = dict(V1)
    files[1] = None
    files[400] = V2[100]
    tree = machine_tree(tmp_path / "proc", files)
    rows = rows_by_name(procfs=tree.root)
    assert rows["-"] == [1]
    assert rows["/system.slice/nginx.service"] == [400]
    assert rows["memory:/docker/4f1e"] == [200]


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_a_capture_keeps_what_decides(tmp_path, machine):
    """A capture holds every process's cgroup file, pid 1's too: read back
    with -p (which reads no other process), it decides as the tree did."""
    tree = machine_tree(tmp_path / "proc", MACHINES[machine])
    capture = tmp_path / "capture.tar.gz"
    assert run_main("--capture", str(capture), "-p", "200", procfs=tree.root).status == 0
    assert rows_by_name(procfs=capture) == ROWS[machine]
    assert rows_by_name("-p", "200", procfs=capture) == rows_by_name("-p", "200",
                                                                     procfs=tree.root)


def test_a_capture_without_pid_1s_files(tmp_path):
    """pid 1 unreadable but for its cgroup file (as in this machine's
    sandbox, whose init is not ps_mem's to read): a capture keeps nothing
    of a process without an exe link, but it keeps its self's cgroup file,
    which decides alike."""
    files = {pid: text for pid, text in HYBRID.items() if pid != 1}
    files[400] = b"0::/system.slice/odd.service\n"
    tree = machine_tree(tmp_path / "proc", files, self_cgroup=HYBRID[1])
    tree.add(1, "init", None, ppid=0, replace={"cgroup": HYBRID[1]})
    capture = tmp_path / "capture.tar.gz"
    assert run_main("--capture", str(capture), procfs=tree.root).status == 0
    expected = {name: pids for name, pids in ROWS["hybrid"].items() if pids != [1]}
    expected["-"] = [400]
    assert rows_by_name(procfs=tree.root) == expected
    assert rows_by_name(procfs=capture) == expected


def test_with_d(tmp_path):
    tree = machine_tree(tmp_path / "proc", HYBRID)
    table = run_main("--group-by", "cgroup", "-d", "-p", "100,200", procfs=tree.root)
    assert table.out.startswith(" Private  +   Shared  =  RAM used\tCgroup[pid]\n\n")
    assert sorted(row.name for row in parse_table(table.out).rows) == [
        "memory:/docker/4f1e [200]", "memory:/system.slice/nginx.service [100]"]


# ----------------------------------------------------------------------------
# This machine
# ----------------------------------------------------------------------------

def _memory_v1_mounted() -> bool:
    """From the mount table, apart from the files ps_mem reads: whether a
    cgroup v1 hierarchy with the memory controller is mounted."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == "cgroup" and "memory" in fields[3].split(","):
            return True
    return False


def _mount_point(kind: str, option: Optional[str]) -> Optional[Path]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == kind and (option is None
                                                       or option in fields[3].split(",")):
            return Path(fields[1])
    return None


def _line_path(pid: int, controllers: str) -> str:
    for line in Path("/proc/%d/cgroup" % pid).read_text().splitlines():
        number, listed, path = line.split(":", 2)
        if listed == controllers or (controllers and controllers in listed.split(",")):
            return path
    raise AssertionError("no %r line for %d" % (controllers, pid))


@live
def test_live_this_machine(tmp_path):
    """A sleep moved into a memory cgroup of its own and into a unified
    cgroup of its own: its row is named by the hierarchy the mount table
    says accounts memory, and only by that one."""
    memory_root = _mount_point("cgroup", "memory")
    unified_root = _mount_point("cgroup2", None)
    if memory_root is None or unified_root is None:
        pytest.skip("not a hybrid machine: no v1 memory controller and cgroup2 both mounted")
    assert _memory_v1_mounted()
    name = "ps_mem-test-%s" % uuid.uuid4().hex[:8]
    made = []
    try:
        with Processes() as procs:
            moved, stayed = procs.sleep(), procs.sleep()
            for root in (memory_root, unified_root):
                cgroup = root / name
                cgroup.mkdir()
                made.append(cgroup)
                (cgroup / "cgroup.procs").write_text(str(moved.pid))
            assert _line_path(moved.pid, "memory") == "/" + name
            assert _line_path(moved.pid, "") == "/" + name
            pids = "%d,%d" % (moved.pid, stayed.pid)
            doc = json.loads(run_ours("--json", "--group-by", "cgroup", "-p", pids).stdout)
            table = run_ours("--group-by", "cgroup", "-p", pids)
            capture = tmp_path / "sample.tar.gz"
            assert run_ours("--capture", str(capture), "-p", pids).status == 0
            own = _line_path(stayed.pid, "memory")
    finally:
        for cgroup in made:
            deadline = time.monotonic() + 10
            while True:  # the killed sleep leaves its cgroup once reaped
                try:
                    cgroup.rmdir()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
    rows = {row["name"]: row["pids"] for row in doc["programs"]}
    if own == "/" + name:
        pytest.fail("the other sleep is in the test's cgroup")
    assert rows == {"memory:/" + name: [moved.pid], "memory:" + own: [stayed.pid]}
    # Read back, the capture decides as the live run did.
    replayed = json.loads(run_ours("--json", "--group-by", "cgroup", "-p", pids,
                                   procfs=capture).stdout)
    assert {row["name"]: row["pids"] for row in replayed["programs"]} == rows
    assert table.status == 0
    assert table.out.startswith(" Private  +   Shared  =  RAM used\tCgroup\n\n")
