"""--group-by KEY: program (the default), pid (what -d shows), cmdline (what -s
shows), user (the real uid's name, or the number where it has none) and
cgroup (the path in the hierarchy that accounts memory: the unified one's,
or the v1 memory controller's, marked "memory:").

Whatever the grouping, every process is counted once and the total is the
default view's: the rows are only cut differently.
"""

import json
import os
import pwd
import re
import shutil
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import pytest

from tests.harness import REFERENCE_DIR, run_ours, run_reference
from tests.inprocess import live, parse_table, run_main
from tests.procfs_builder import ProcTree, program_maps, status_text
from tests.realproc import Processes

LIVE = live


def doc_of(*args: str, procfs=None) -> dict:
    result = run_main("--json", *args, procfs=procfs) if procfs is not None \
        else run_ours("--json", *args)
    assert result.status == 0, result.err
    return json.loads(result.stdout)


def groups(doc: dict) -> Dict[str, List[int]]:
    return {program["name"]: sorted(program["pids"]) for program in doc["programs"]}


def total_bytes(*args: str, procfs) -> int:
    result = run_main("-t", *args, procfs=procfs)
    assert result.status == 0, result.err
    return int(result.stdout)


# ----------------------------------------------------------------------------
# program, pid, cmdline: the views 3.14 already has
# ----------------------------------------------------------------------------

TREES = ["rollup_6_1", "smaps_no_pss", "renamed_children", "clone_vm", "non_utf8",
         "newlines_in_args", "statm_2_6_9"]


@pytest.mark.parametrize("name", TREES)
@pytest.mark.parametrize("extra", [[], ["-S"], ["-t"]], ids=["", "-S", "-t"])
def test_program_is_the_default(proc_trees, name, extra):
    root = proc_trees.get(name).root
    assert run_main("--group-by", "program", *extra, procfs=root) == \
        run_main(*extra, procfs=root)


def test_program_is_3_14s_output(proc_trees):
    if not (REFERENCE_DIR / "ps_mem.py").exists():
        pytest.skip("ps_mem 3.14 is not installed in %s" % REFERENCE_DIR)
    root = proc_trees.get("rollup_6_1").root
    assert run_ours("--group-by", "program", procfs=root) == run_reference(procfs=root)


@pytest.mark.parametrize("name", TREES)
@pytest.mark.parametrize("extra", [[], ["-S"], ["-t"], ["-p", "<pids>"]],
                         ids=["", "-S", "-t", "-p"])
def test_pid_is_d(proc_trees, name, extra):
    tree = proc_trees.get(name)
    extra = [",".join(map(str, tree.probe_pids)) if arg == "<pids>" else arg for arg in extra]
    by_d = run_main("-d", *extra, procfs=tree.root)
    assert run_main("--group-by", "pid", *extra, procfs=tree.root) == by_d
    assert run_main("--group-by", "pid", "-d", *extra, procfs=tree.root) == by_d


@pytest.mark.parametrize("name", TREES)
@pytest.mark.parametrize("extra", [[], ["-S"], ["-d"]], ids=["", "-S", "-d"])
def test_cmdline_is_s(proc_trees, name, extra):
    root = proc_trees.get(name).root
    by_s = run_main("-s", *extra, procfs=root)
    assert run_main("--group-by", "cmdline", *extra, procfs=root) == by_s
    assert run_main("--group-by", "cmdline", "-s", *extra, procfs=root) == by_s


# ----------------------------------------------------------------------------
# user
# ----------------------------------------------------------------------------

def _uid_without_name() -> int:
    uid = 54321
    while True:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
        uid += 1


def _uid_with_name() -> Optional[int]:
    """A uid other than 0 that this machine's passwd names (daemon, bin...)."""
    for uid in range(1, 1000):
        try:
            pwd.getpwuid(uid)
            return uid
        except KeyError:
            continue
    return None


NAMELESS = _uid_without_name()
NAMED = _uid_with_name()


def _with_uids(name: str, pid: int, maps, uids: Sequence[int]) -> bytes:
    """status as the builder writes it, with this Uid line (real, effective,
    saved, filesystem)."""
    status = status_text("modern", name, pid, 1, maps)
    line = "Uid:\t%s\n" % "\t".join(map(str, uids))
    assert status.count(b"Uid:\t0\t0\t0\t0\n") == 1
    return status.replace(b"Uid:\t0\t0\t0\t0\n", line.encode())


# pid, name, uids, heap KiB
USERS = [
    (100, "sshd", (0, 0, 0, 0), 1300),
    (200, "nginx", (NAMED, NAMED, NAMED, NAMED), 1800),
    (300, "worker", (NAMELESS,) * 4, 3000),
    (301, "worker", (NAMELESS,) * 4, 3100),
    (400, "setuid-tool", (NAMELESS, 0, 0, 0), 700),  # real uid counts
    (500, "dropped", (0, NAMELESS, NAMELESS, NAMELESS), 900),
]


@pytest.fixture(scope="module")
def users_tree(tmp_path_factory) -> ProcTree:
    if NAMED is None:
        pytest.skip("no named uid between 1 and 999 in this machine's passwd")
    tree = ProcTree(tmp_path_factory.mktemp("users") / "proc", "6.1")
    for pid, name, uids, heap in USERS:
        exe = "/usr/bin/" + name
        maps = program_maps(exe, heap_kib=heap)
        tree.add(pid, name, exe, maps=maps, replace={"status": _with_uids(name, pid, maps, uids)})
    return tree


def test_user_rows(users_tree):
    """Rows by the real uid's name; a uid without a name shows as its number."""
    doc = doc_of("--group-by", "user", procfs=users_tree.root)
    assert groups(doc) == {"root": [100, 500], pwd.getpwuid(NAMED).pw_name: [200],
                           str(NAMELESS): [300, 301, 400]}
    # Each row sums its processes (as -d shows them) and the total is the
    # default view's.
    per_pid = {program["pids"][0]: program for program in
               doc_of("-d", procfs=users_tree.root)["programs"]}
    for program in doc["programs"]:
        for key in ("private", "shared", "ram"):
            assert program[key] == sum(per_pid[pid][key] for pid in program["pids"]), key
    assert doc["total"]["ram"] == total_bytes(procfs=users_tree.root) == \
        total_bytes("--group-by", "user", procfs=users_tree.root)


def test_user_table(users_tree):
    table = parse_table(run_main("--group-by", "user", procfs=users_tree.root).out)
    names = sorted(row.name for row in table.rows)
    assert names == sorted(["root (2)", pwd.getpwuid(NAMED).pw_name, "%d (3)" % NAMELESS])
    default = parse_table(run_main(procfs=users_tree.root).out)
    assert table.total_ram == default.total_ram


def test_user_with_d(users_tree):
    doc = doc_of("--group-by", "user", "-d", procfs=users_tree.root)
    assert sorted(program["name"] for program in doc["programs"]) == sorted(
        ["root [100]", "root [500]", "%s [200]" % pwd.getpwuid(NAMED).pw_name,
         "%d [300]" % NAMELESS, "%d [301]" % NAMELESS, "%d [400]" % NAMELESS])


def test_user_on_a_2_4_kernel(proc_trees):
    """Old kernels' status has a Uid line too."""
    root = proc_trees.get("kernel_2_4").root
    doc = doc_of("--group-by", "user", procfs=root)
    assert list(groups(doc)) == ["root"]
    assert doc["programs"][0]["count"] == 14  # init, 4 httpd, crond, sshd, bash, 6 mingetty
    assert doc["programs"][0]["count"] == sum(
        program["count"] for program in doc_of(procfs=root)["programs"])


def test_user_with_s_is_a_usage_error(users_tree):
    result = run_main("--group-by", "user", "-s", procfs=users_tree.root)
    assert result.status == 2 and result.stdout == b""
    assert result.err.splitlines()[-1] == \
        "ps_mem: error: --group-by user cannot be combined with -s"


# ----------------------------------------------------------------------------
# cgroup
# ----------------------------------------------------------------------------

V1_LINES = (b"12:pids:/pids-elsewhere\n11:cpu,cpuacct:/cpu-elsewhere\n"
            b"4:memory:/docker/abc123\n1:name=systemd:/docker/abc123-systemd\n")
CGROUPS = [
    # pid, cgroup file (None: no such file), expected name
    (100, b"0::/system.slice/nginx.service\n", "/system.slice/nginx.service"),
    (101, b"0::/system.slice/nginx.service\n", "/system.slice/nginx.service"),
    (200, V1_LINES, "memory:/docker/abc123"),
    (300, b"3:cpu,memory,blkio:/combined\n2:devices:/devices-elsewhere\n", "memory:/combined"),
    # Hybrid: the memory controller's hierarchy accounts memory.
    (400, V1_LINES + b"0::/user.slice/user-1000.slice/session-2.scope\n",
     "memory:/docker/abc123"),
    (500, None, "-"),
    (501, b"", "-"),
    (600, b"2:cpu:/cpu-only\n1:name=systemd:/x\n", "-"),
    (700, b"0::/\n", "/"),
    (800, b"0::/odd: path with colons:and spaces\n", "/odd: path with colons:and spaces"),
]


@pytest.fixture(scope="module")
def cgroup_tree(tmp_path_factory) -> ProcTree:
    tree = ProcTree(tmp_path_factory.mktemp("cgroups") / "proc", "6.1")
    for pid, cgroup, _ in CGROUPS:
        exe = "/usr/bin/prog%d" % pid
        tree.add(pid, "prog%d" % pid, exe, maps=program_maps(exe, heap_kib=1000 + pid),
                 replace={} if cgroup is None else {"cgroup": cgroup})
    return tree


def test_cgroup_rows(cgroup_tree):
    expected: Dict[str, List[int]] = {}
    for pid, _, name in CGROUPS:
        expected.setdefault(name, []).append(pid)
    doc = doc_of("--group-by", "cgroup", procfs=cgroup_tree.root)
    assert groups(doc) == expected
    assert doc["total"]["ram"] == total_bytes(procfs=cgroup_tree.root) == \
        total_bytes("--group-by", "cgroup", procfs=cgroup_tree.root)


def test_cgroup_table(cgroup_tree):
    table = parse_table(run_main("--group-by", "cgroup", "-S", procfs=cgroup_tree.root).out)
    assert sorted(row.name for row in table.rows) == sorted([
        "/system.slice/nginx.service (2)", "memory:/docker/abc123 (2)", "memory:/combined",
        "- (3)", "/",
        "/odd: path with colons:and spaces"])
    assert table.total_ram == parse_table(run_main(procfs=cgroup_tree.root).out).total_ram


def test_cgroup_on_captured_tree_without_cgroup_files(proc_trees):
    """A tree that has no cgroup files (3.14 never read them): one "-" row
    with every process."""
    doc = doc_of("--group-by", "cgroup", procfs=proc_trees.get("rollup_6_1").root)
    assert [(program["name"], program["count"]) for program in doc["programs"]] == [("-", 13)]


# ----------------------------------------------------------------------------
# The CLONE_VM rule in every grouping
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("grouping", ["user", "cgroup"])
def test_totals_same_in_every_grouping(proc_trees, grouping):
    """Without shared address spaces the grouping moves memory between rows
    and nothing else."""
    for name in ("rollup_6_1", "smaps_pss_per_line", "renamed_children"):
        root = proc_trees.get(name).root
        assert total_bytes("--group-by", grouping, procfs=root) == total_bytes(procfs=root)


@pytest.mark.parametrize("grouping", ["user", "cgroup"])
def test_shared_hugetlb_of_every_program_in_the_total(proc_trees, grouping):
    """hugetlb: postgres's processes map one 128 MiB shared hugetlb segment
    (counted once, as the largest of theirs), dbwriter its own 6 MiB one.
    The one root row loses dbwriter's 6 MiB: 2360192000 bytes instead of
    2366483456."""
    root = proc_trees.get("hugetlb").root
    assert total_bytes("--group-by", grouping, procfs=root) == total_bytes(procfs=root)


@pytest.mark.parametrize("tree_name", ["clone_vm", "clone_vm_smaps"])
@pytest.mark.parametrize("grouping", ["user", "cgroup"])
def test_clone_vm_counted_once_per_user(proc_trees, tree_name, grouping):
    """clone_vm's vfork-pool processes share one address space: the program
    row counts it once.  All processes are root's (and in no cgroup), so the
    one user row must be the default view's total."""
    root = proc_trees.get(tree_name).root
    assert total_bytes("--group-by", grouping, procfs=root) == total_bytes(procfs=root)


def test_clone_vm_rule_applies_to_a_user_of_one_address_space(tmp_path):
    """Where a user's only processes are one shared address space, the user
    row counts it once, as the program row does."""
    tree = ProcTree(tmp_path / "proc", "6.1")
    pool = program_maps("/usr/local/bin/vfork-pool", heap_kib=6000)
    for pid in (5000, 5001, 5002):
        tree.add(pid, "vfork-pool", "/usr/local/bin/vfork-pool", maps=pool,
                 replace={"status": _with_uids("vfork-pool", pid, pool, (NAMELESS,) * 4)})
    doc = doc_of("--group-by", "user", procfs=tree.root)
    program = doc_of(procfs=tree.root)
    assert [(row["name"], row["count"]) for row in doc["programs"]] == [(str(NAMELESS), 3)]
    assert doc["programs"][0]["ram"] == program["programs"][0]["ram"]
    assert doc["total"] == program["total"]


# ----------------------------------------------------------------------------
# The live /proc
# ----------------------------------------------------------------------------

def _setpriv(procs: Processes, *options: str):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    sleep = shutil.which("sleep") or "/bin/sleep"
    return procs.command([setpriv, *options, sleep, "600"], exe=os.path.realpath(sleep))


def _uids(pid: int) -> List[int]:
    status = Path("/proc/%d/status" % pid).read_text()
    return [int(uid) for uid in re.search(r"^Uid:\t(.*)$", status, re.M).group(1).split()]


@LIVE
def test_live_user_is_the_real_uid():
    """A root sleep shows as root; one whose real uid is 65534 (effective 0)
    as that uid's name; one with only the effective uid changed as root."""
    with Processes() as procs:
        mine = procs.sleep()
        real = _setpriv(procs, "--ruid=65534")
        effective = _setpriv(procs, "--euid=65534")
        assert _uids(real.pid)[:2] == [65534, 0] and _uids(effective.pid)[:2] == [0, 65534]
        pids = "%d,%d,%d" % (mine.pid, real.pid, effective.pid)
        doc = doc_of("--group-by", "user", "-p", pids)
    try:
        nobody = pwd.getpwuid(65534).pw_name
    except KeyError:
        nobody = "65534"
    assert groups(doc) == {"root": sorted([mine.pid, effective.pid]), nobody: [real.pid]}


@LIVE
def test_live_whole_system_by_user_has_root():
    with Processes() as procs:
        mine = procs.sleep()
        doc = doc_of("--group-by", "user")
    names = groups(doc)
    assert mine.pid in names["root"]
    assert all(program["ram"] > 0 for program in doc["programs"])


def _expected_cgroup(text: str) -> str:
    """The spec's rule, written apart from ps_mem's: where a v1 hierarchy
    has the memory controller (cgroup v1, or a hybrid setup, as this
    machine's), its path marked "memory:"; else the line of hierarchy 0
    with no controllers (cgroup v2); else "-"."""
    unified = memory = None
    for line in text.splitlines():
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            unified = path
        elif "memory" in controllers.split(","):
            memory = path
    if memory is not None:
        return "memory:" + memory
    return unified if unified is not None else "-"


@LIVE
def test_live_cgroup_is_this_process_cgroup():
    own = Path("/proc/self/cgroup").read_text()
    with Processes() as procs:
        sleeper = procs.sleep()  # starts in our cgroup
        assert Path("/proc/%d/cgroup" % sleeper.pid).read_text() == own
        doc = doc_of("--group-by", "cgroup", "-p", str(sleeper.pid))
        table = run_ours("--group-by", "cgroup", "-p", str(sleeper.pid))
    assert groups(doc) == {_expected_cgroup(own): [sleeper.pid]}
    assert [row.name for row in parse_table(table.out).rows] == [_expected_cgroup(own)]


@LIVE
def test_live_clone_vm_counted_once_in_user_and_cgroup_rows(tmp_path):
    """On the live /proc the kernel says which processes share an address
    space: a user (or cgroup) row counts it once, like the program row.
    A sleep beside it shares libc pages with the rest of the machine, whose
    Pss moves between runs, so the exact comparison reads one sample: a
    capture (which records the kernel's answer) read with each grouping."""
    capture = tmp_path / "sample.tar.gz"
    with Processes() as procs:
        helper = procs.helper("clone_vm", "3")
        sleeper = procs.sleep()
        pids = helper.csv() + ",%d" % sleeper.pid
        live = {grouping: doc_of("--group-by", grouping, "-p", pids)
                for grouping in ("program", "user", "cgroup")}
        assert run_ours("--capture", str(capture), "-p", pids).status == 0
    for grouping, doc in live.items():
        # Live, a run apart: within what the sleep's library pages move.
        assert abs(doc["total"]["ram"] - live["program"]["total"]["ram"]) <= 64 * 1024, grouping
    by = {grouping: doc_of("--group-by", grouping, "-p", pids, procfs=capture)
          for grouping in ("program", "user", "cgroup")}
    assert [(row["name"], row["count"]) for row in by["user"]["programs"]] == [("root", 5)]
    assert by["user"]["total"] == by["program"]["total"] == by["cgroup"]["total"]
    clone = next(row for row in by["program"]["programs"] if row["name"] == "clone_vm")
    assert 32 * 2 ** 20 <= clone["private"] <= 34 * 2 ** 20
    sleep = next(row for row in by["program"]["programs"] if row["name"] == "sleep")
    assert by["user"]["programs"][0]["private"] == clone["private"] + sleep["private"]
