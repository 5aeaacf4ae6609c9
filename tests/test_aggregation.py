"""Stage: aggregation.  Samples in, report out: groupings, the CLONE_VM
rule, sorting and --top.

--group-by KEY: program (the default), pid (what -d shows), cmdline (what -s
shows), user (the real uid's name, or the number where it has none) and
cgroup (the unified hierarchy's path, else the v1 memory controller's; the
expected path of each fixture process is written out in CGROUPS).
Whatever the grouping, every process is counted once and the total is the
default view's: the rows are only cut differently.  Each shared address
space is counted once, in any grouping (hypothesis, on aggregate()).

--sort KEY, --reverse and --top N: see the section's own comment.
"""

import json
import os
import pwd
from fractions import Fraction
from typing import Dict, List, NamedTuple, Optional, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import (json_of, needs_reference, parse_table, pids_by_name, ps_mem,
                           row_names, run_main, run_ours, run_reference)
from tests.procfs_builder import ProcTree, mapping, program_maps

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


@needs_reference
def test_program_is_3_14s_output(proc_trees):
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
        tree.add(pid, name, exe, maps=maps, uids=uids)
    return tree


def test_user_rows(users_tree):
    """Rows by the real uid's name; a uid without a name shows as its number."""
    doc = json_of("--group-by", "user", procfs=users_tree.root)
    assert pids_by_name(doc) == {"root": [100, 500], pwd.getpwuid(NAMED).pw_name: [200],
                           str(NAMELESS): [300, 301, 400]}
    # Each row sums its processes (as -d shows them) and the total is the
    # default view's.
    per_pid = {program["pids"][0]: program for program in
               json_of("-d", procfs=users_tree.root)["programs"]}
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
    doc = json_of("--group-by", "user", "-d", procfs=users_tree.root)
    assert sorted(program["name"] for program in doc["programs"]) == sorted(
        ["root [100]", "root [500]", "%s [200]" % pwd.getpwuid(NAMED).pw_name,
         "%d [300]" % NAMELESS, "%d [301]" % NAMELESS, "%d [400]" % NAMELESS])


def test_user_on_a_2_4_kernel(proc_trees):
    """Old kernels' status has a Uid line too."""
    root = proc_trees.get("kernel_2_4").root
    doc = json_of("--group-by", "user", procfs=root)
    assert list(pids_by_name(doc)) == ["root"]
    assert doc["programs"][0]["count"] == 14  # init, 4 httpd, crond, sshd, bash, 6 mingetty
    assert doc["programs"][0]["count"] == sum(
        program["count"] for program in json_of(procfs=root)["programs"])


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
    doc = json_of("--group-by", "cgroup", procfs=cgroup_tree.root)
    assert pids_by_name(doc) == expected
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
    doc = json_of("--group-by", "cgroup", procfs=proc_trees.get("rollup_6_1").root)
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
                 uids=(NAMELESS,) * 4)
    doc = json_of("--group-by", "user", procfs=tree.root)
    program = json_of(procfs=tree.root)
    assert [(row["name"], row["count"]) for row in doc["programs"]] == [(str(NAMELESS), 3)]
    assert doc["programs"][0]["ram"] == program["programs"][0]["ram"]
    assert doc["total"] == program["total"]


# ----------------------------------------------------------------------------
# The aggregation rule, for any grouping
# ----------------------------------------------------------------------------


@st.composite
def spaces_and_processes(draw):
    """Address spaces with their memory, and processes in them (each with
    a name): every process of a space shows the space's figures.  Also
    the kernel's answer: pid -> its space."""
    spaces = draw(st.lists(st.tuples(st.integers(0, 100000), st.integers(0, 50000)),
                           min_size=1, max_size=6))
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=12))
    members = [draw(st.integers(0, len(spaces) - 1)) for _ in names]
    samples = []
    for pid, (name, space) in enumerate(zip(names, members), start=100):
        private, shared = spaces[space]
        fields = dict(pid=pid, name=name, private_kib=private, shared_kib=shared + 0.5,
                      shared_hugetlb_kib=0, swap_kib=0, mem_id=space, has_pss=True,
                      has_swap_pss=False, layout=space)
        # Only the fields this ps_mem.py has (`layout` is on its way out).
        samples.append(ps_mem.ProcessSample(**{key: value for key, value in fields.items()
                                              if key in ps_mem.ProcessSample._fields}))
    address_spaces = {sample.pid: ("space", sample.mem_id) for sample in samples}
    return spaces, samples, address_spaces


@settings(max_examples=150, deadline=None)
@given(spaces_and_processes())
def test_each_space_counted_once_and_rows_add_up(case):
    spaces, samples, address_spaces = case
    expected = sum(spaces[space][0] + spaces[space][1] + 0.5
                   for space in {sample.mem_id for sample in samples})
    report = ps_mem.aggregate(samples, 0, address_spaces)
    assert report.total_ram_kib == pytest.approx(expected)
    # No row has zero RAM here, so none is dropped: rows add up to the total.
    assert sum(program.ram_kib for program in report.programs) == pytest.approx(expected)
    # By pid: each process a row, the total the same.
    by_pid = ps_mem.aggregate([sample._replace(name="%s [%d]" % (sample.name, sample.pid))
                               for sample in samples], 0, address_spaces)
    assert by_pid.total_ram_kib == pytest.approx(expected)
    assert sum(program.ram_kib for program in by_pid.programs) == pytest.approx(expected)


# ----------------------------------------------------------------------------
# --sort, --reverse and --top
# ----------------------------------------------------------------------------


# --sort KEY, --reverse and --top N (README.md, "Options").
#
# A fixture tree whose programs' sizes are known exactly by construction
# (one private heap, one shared library mapped by no one else, some swap), with
# ties in every key, so that the expected order of each key is computed here
# from those numbers rather than read back from ps_mem:
#
#   * ascending by KEY; rows equal in KEY keep the default order, which is
#     3.14's (ascending RAM, ties in the proc root's listing order: a program
#     is where its first listed process is; os.listdir's order of a fixture
#     directory is not numeric, so it is read from the tree);
#   * --reverse prints exactly the ascending listing upside down;
#   * --top N keeps the N largest in KEY (the first N names for name), in
#     that order, and the footer (and -t) then totals only those rows.

KEYS = ("ram", "private", "shared", "swap", "count", "name")


class Program(NamedTuple):
    name: str
    processes: Sequence[tuple]  # (pid, private KiB, shared KiB, swap KiB)

    @property
    def count(self) -> int:
        return len(self.processes)

    @property
    def private(self) -> Fraction:
        return Fraction(sum(p[1] for p in self.processes))

    @property
    def shared(self) -> Fraction:
        # The rollup's one Pss line each brings 0.5 KiB (ps_mem's truncation
        # allowance); Pss is private + shared, as no one else maps them.
        return sum(Fraction(p[2]) + Fraction(1, 2) for p in self.processes)

    @property
    def ram(self) -> Fraction:
        return self.private + self.shared

    @property
    def swap(self) -> Fraction:
        return Fraction(sum(p[3] for p in self.processes))

    def key(self, key: str):
        return self.name if key == "name" else getattr(self, key)

    @property
    def shown(self) -> str:
        return "%s (%d)" % (self.name, self.count) if self.count > 1 else self.name


# In KiB.  RAM: delta 700.5 < alpha = echo 1100.5 < bravo = golf 1101 <
# foxtrot 1111 < charlie 2000.5.  Private ties alpha, bravo, echo (1000);
# shared ties alpha, delta, echo (100.5); swap ties alpha, delta, echo (0)
# and bravo, charlie, foxtrot (10); count ties 1 (alpha, charlie, echo) and 2
# (bravo, foxtrot, golf).  Multi-process programs' processes differ, so no
# CLONE_VM rule applies.
PROGRAMS = [
    Program("alpha", [(7001, 1000, 100, 0)]),
    Program("bravo", [(310, 400, 50, 10), (9020, 600, 50, 0)]),
    Program("charlie", [(45, 2000, 0, 10)]),
    Program("delta", [(5000, 100, 33, 0), (12, 200, 33, 0), (888, 300, 33, 0)]),
    Program("echo", [(30000, 1000, 100, 0)]),
    Program("foxtrot", [(77, 50, 500, 5), (6, 60, 500, 5)]),
    Program("golf", [(4444, 800, 0, 20), (123, 250, 50, 0)]),
]


@pytest.fixture(scope="module")
def sized(tmp_path_factory) -> ProcTree:
    tree = ProcTree(tmp_path_factory.mktemp("sized") / "proc", "6.1")
    tree.add(2, "kthreadd", None, ppid=0, statm=(0,) * 7)
    for program in PROGRAMS:
        exe = "/usr/bin/" + program.name
        for pid, private, shared, swap in program.processes:
            maps = [mapping(exe, 4, "r--p"),
                    mapping("[heap]", private + swap, private=private, dirty=True, swap=swap)]
            if shared:
                maps.append(mapping("/usr/lib/lib%s.so" % program.name, shared, "r-xp",
                                    shared=shared))
            tree.add(pid, program.name, exe, maps=maps)
    return tree


def listing_order(tree: ProcTree) -> List[Program]:
    """The programs in the order the proc root lists their first process."""
    owner = {pid: program for program in PROGRAMS for pid, *_ in program.processes}
    order: List[Program] = []
    for entry in os.listdir(str(tree.root)):
        program = owner.get(int(entry)) if entry.isdigit() else None
        if program is not None and program not in order:
            order.append(program)
    return order


def ascending(tree: ProcTree, key: str) -> List[Program]:
    default = sorted(listing_order(tree), key=lambda program: program.ram)  # stable
    return sorted(default, key=lambda program: program.key(key))


def test_the_tree_has_the_planned_ties(sized):
    """The fixture is what the comments above say: every key has ties, and
    the default run shows the computed sizes."""
    for key in ("ram", "private", "shared", "swap", "count"):
        values = [program.key(key) for program in PROGRAMS]
        assert len(set(values)) < len(values), key
    doc = json.loads(run_main("--json", "-S", procfs=sized.root).stdout)
    got = {program["name"]: program for program in doc["programs"]}
    for program in PROGRAMS:
        row = got[program.name]
        assert (row["private"], row["shared"], row["ram"], row["swap"], row["count"]) == \
            (program.private * 1024, program.shared * 1024, program.ram * 1024,
             program.swap * 1024, program.count), program.name


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("reverse", [False, True], ids=["ascending", "reverse"])
def test_order(sized, key, reverse):
    expected = ascending(sized, key)
    if reverse:
        expected = expected[::-1]
    args = ["--sort", key] + (["--reverse"] if reverse else [])
    result = run_main(*args, procfs=sized.root)
    assert result.status == 0 and result.stderr == b""
    assert row_names(result.out) == [program.shown for program in expected]
    # Sorting moves rows, and changes nothing else.
    default = parse_table(run_main(procfs=sized.root).out)
    table = parse_table(result.out)
    assert sorted(table.rows) == sorted(default.rows)
    assert table.total_ram == default.total_ram and table.rest == ""


def test_default_sort_is_3_14s_order(sized):
    """--sort ram (the default) is the output without it, byte for byte."""
    plain = run_main(procfs=sized.root)
    assert run_main("--sort", "ram", procfs=sized.root) == plain
    assert row_names(plain.out) == [program.shown for program in ascending(sized, "ram")]


def _top_cases():
    cases = []
    for key in KEYS:
        if key == "name":
            cases += [(key, n) for n in (1, 3, len(PROGRAMS))]
            continue
        largest = sorted((program.key(key) for program in PROGRAMS), reverse=True)
        # Every N that does not cut through a tie (see test_top_cuts_a_tie).
        cases += [(key, n) for n in range(1, len(PROGRAMS) + 1)
                  if n == len(PROGRAMS) or largest[n - 1] != largest[n]]
    return cases


@pytest.mark.parametrize("key, n", _top_cases())
@pytest.mark.parametrize("reverse", [False, True], ids=["ascending", "reverse"])
def test_top(sized, key, n, reverse):
    order = ascending(sized, key)
    kept = order[:n] if key == "name" else order[-n:]
    expected = kept[::-1] if reverse else kept
    args = ["--sort", key, "--top", str(n), "-S"] + (["--reverse"] if reverse else [])
    result = run_main(*args, procfs=sized.root)
    assert result.status == 0 and result.stderr == b""
    table = parse_table(result.out)
    assert [row.name for row in table.rows] == [program.shown for program in expected]
    # The footer covers the rows shown, RAM and swap.
    ram = sum(program.ram for program in kept)
    swap = sum(program.swap for program in kept)
    assert table.total_ram == ps_mem.human(float(ram))
    assert table.total_swap == ps_mem.human(float(swap))
    assert run_main(*args, "-t", procfs=sized.root).out == "%d\n" % (swap * 1024)
    args.remove("-S")
    assert run_main(*args, "-t", procfs=sized.root).out == "%d\n" % (ram * 1024)


def test_top_cuts_a_tie_as_the_listing_does(sized):
    """bravo and golf tie at 1101 KiB; --top 3 (charlie, foxtrot and one of
    them) should keep the one a reader of the whole listing sees among the
    three largest."""
    full = row_names(run_main(procfs=sized.root).out)
    reverse = row_names(run_main("--reverse", procfs=sized.root).out)
    assert row_names(run_main("--top", "3", procfs=sized.root).out) == full[-3:]
    assert row_names(run_main("--reverse", "--top", "3", procfs=sized.root).out) == \
        reverse[:3]


def test_top_keeps_one_of_tied_rows(sized):
    """What --top does at a tie today: exactly N rows, the largest ones, and
    one of the two tied at the cut."""
    names = row_names(run_main("--top", "3", procfs=sized.root).out)
    assert len(names) == 3 and names[1:] == ["foxtrot (2)", "charlie"]
    assert names[0] in ("bravo (2)", "golf (2)")


def test_top_larger_than_rows(sized):
    plain = run_main(procfs=sized.root)
    assert run_main("--top", "100", procfs=sized.root) == plain
    assert run_main("--top", str(len(PROGRAMS)), procfs=sized.root) == plain
    assert run_main("--top", "100", "-t", procfs=sized.root).out == \
        "%d\n" % (sum(program.ram for program in PROGRAMS) * 1024)


def test_top_with_p_and_d(sized):
    """--top after -p: the N largest of the processes named; with -d, of
    the processes."""
    result = run_main("-p", "310,9020,45,7001", "--top", "2", procfs=sized.root)
    assert row_names(result.out) == ["bravo (2)", "charlie"]
    # Per process: charlie's 45 has 2000.5 KiB, alpha's 7001 and echo's
    # 30000 1100.5 each, the next (golf's 4444) 800.5.
    result = run_main("-d", "--top", "3", "--reverse", procfs=sized.root)
    tied = [entry for entry in os.listdir(str(sized.root)) if entry in ("7001", "30000")]
    names = {"7001": "alpha [7001]", "30000": "echo [30000]"}
    assert row_names(result.out) == ["charlie [45]"] + [names[pid] for pid in tied[::-1]]
    table = parse_table(result.out)
    assert table.total_ram == ps_mem.human(2000.5 + 2 * 1100.5)


def test_top_without_pss_prints_no_total(proc_trees):
    """Where 3.14 prints no total, --top does not make one."""
    root = proc_trees.get("smaps_no_pss").root
    result = run_main("--top", "2", procfs=root)
    table = parse_table(result.out)
    assert len(table.rows) == 2 and table.total_ram is None and table.rest == ""
    assert [row.name for row in table.rows] == \
        [row.name for row in parse_table(run_main(procfs=root).out).rows][-2:]
    assert run_main("--top", "2", "-t", procfs=root)[:2] == (b"", b"Error: Shared memory is "
                                                           b"slightly over-estimated by this "
                                                           b"system\nfor each program, so "
                                                           b"totals are not reported.\n")
