"""--sort KEY, --reverse and --top N (README.md, "Options").

A fixture tree whose programs' sizes are known exactly by construction
(one private heap, one shared library mapped by no one else, some swap), with
ties in every key, so that the expected order of each key is computed here
from those numbers rather than read back from ps_mem:

  * ascending by KEY; rows equal in KEY keep the default order, which is
    3.14's (ascending RAM, ties in the proc root's listing order: a program
    is where its first listed process is; os.listdir's order of a fixture
    directory is not numeric, so it is read from the tree);
  * --reverse prints exactly the ascending listing upside down;
  * --top N keeps the N largest in KEY (the first N names for name), in
    that order, and the footer (and -t) then totals only those rows.
"""

import json
import os
from fractions import Fraction
from typing import List, NamedTuple, Sequence

import pytest

from tests.harness import run_ours
from tests.inprocess import live, parse_table, ps_mem, run_main
from tests.procfs_builder import ProcTree, mapping
from tests.realproc import Processes

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


def shown_names(stdout: str) -> List[str]:
    return [row.name for row in parse_table(stdout).rows]


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
    assert shown_names(result.out) == [program.shown for program in expected]
    # Sorting moves rows, and changes nothing else.
    default = parse_table(run_main(procfs=sized.root).out)
    table = parse_table(result.out)
    assert sorted(table.rows) == sorted(default.rows)
    assert table.total_ram == default.total_ram and table.rest == ""


def test_default_sort_is_3_14s_order(sized):
    """--sort ram (the default) is the output without it, byte for byte."""
    plain = run_main(procfs=sized.root)
    assert run_main("--sort", "ram", procfs=sized.root) == plain
    assert shown_names(plain.out) == [program.shown for program in ascending(sized, "ram")]


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
    full = shown_names(run_main(procfs=sized.root).out)
    reverse = shown_names(run_main("--reverse", procfs=sized.root).out)
    assert shown_names(run_main("--top", "3", procfs=sized.root).out) == full[-3:]
    assert shown_names(run_main("--reverse", "--top", "3", procfs=sized.root).out) == \
        reverse[:3]


def test_top_keeps_one_of_tied_rows(sized):
    """What --top does at a tie today: exactly N rows, the largest ones, and
    one of the two tied at the cut."""
    names = shown_names(run_main("--top", "3", procfs=sized.root).out)
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
    assert shown_names(result.out) == ["bravo (2)", "charlie"]
    # Per process: charlie's 45 has 2000.5 KiB, alpha's 7001 and echo's
    # 30000 1100.5 each, the next (golf's 4444) 800.5.
    result = run_main("-d", "--top", "3", "--reverse", procfs=sized.root)
    tied = [entry for entry in os.listdir(str(sized.root)) if entry in ("7001", "30000")]
    names = {"7001": "alpha [7001]", "30000": "echo [30000]"}
    assert shown_names(result.out) == ["charlie [45]"] + [names[pid] for pid in tied[::-1]]
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


# ----------------------------------------------------------------------------
# Usage errors
# ----------------------------------------------------------------------------

def assert_usage_error(result, message: str) -> None:
    assert result.status == 2 and result.stdout == b""
    lines = result.err.splitlines()
    assert lines[0].startswith("usage: ps_mem")
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]], result.err  # one line says what is wrong
    assert lines[-1].startswith("ps_mem: error: " + message), lines[-1]


@pytest.mark.parametrize("value, message", [
    ("0", "argument --top: must be a positive number of rows (0)"),
    ("-1", "argument --top: must be a positive number of rows (-1)"),
    ("x", "argument --top: invalid int value: 'x'"),
    ("2.5", "argument --top: invalid int value: '2.5'"),
])
def test_bad_top(sized, value, message):
    assert_usage_error(run_main("--top", value, procfs=sized.root), message)


def test_top_needs_a_value(sized):
    assert_usage_error(run_main("--top", procfs=sized.root),
                       "argument --top: expected one argument")


@pytest.mark.parametrize("key", ["size", "RAM", "", "names"])
def test_bad_sort_key(sized, key):
    result = run_main("--sort", key, procfs=sized.root)
    assert_usage_error(result, "argument --sort: invalid choice: '%s'" % key)
    listed = result.err.splitlines()[-1].split("(choose from", 1)[1]
    assert all(name in listed for name in KEYS), listed


def test_usage_error_as_a_command(sized):
    """The same through the command line, before any output."""
    result = run_ours("--top", "0", procfs=sized.root)
    assert_usage_error(result, "argument --top: must be a positive number of rows (0)")
    result = run_ours("--sort", "size", "--json", procfs=sized.root)
    assert_usage_error(result, "argument --sort: invalid choice: 'size'")


# ----------------------------------------------------------------------------
# The live /proc
# ----------------------------------------------------------------------------

LIVE = live


@LIVE
@pytest.mark.parametrize("key", ["private", "count", "name"])
def test_live_top_in_order(key):
    result = run_ours("--json", "--sort", key, "--reverse", "--top", "5")
    assert result.status == 0, result.err
    doc = json.loads(result.stdout)
    values = [program[key] for program in doc["programs"]]
    assert 1 <= len(values) <= 5
    if key == "name":
        assert values == sorted(values)[::-1]  # the first five names, last first
    else:
        assert values == sorted(values, reverse=True)
    rows = sum(program["ram"] for program in doc["programs"])
    assert abs(doc["total"]["ram"] - rows) <= len(values)


def _rounding(size_kib: float) -> float:
    """How far a printed size may be from the true one: half its last digit."""
    unit = 1
    while size_kib >= 1000 * unit:
        unit *= 1024
    return 0.05 * unit


@LIVE
def test_live_table_top_footer_is_sum_of_rows():
    # A container may run only two or three programs; four distinct sleeps
    # (and this test's python) make sure there are more than four to cut.
    with Processes() as processes:
        for name in (b"top-a", b"top-b", b"top-c", b"top-d"):
            processes.sleep_named(name)
        result = run_ours("--reverse", "--top", "4")
    assert result.status == 0, result.err
    table = parse_table(result.out)
    assert len(table.rows) == 4 and table.rest == ""
    units = {"KiB": 1, "MiB": 1024, "GiB": 1024 ** 2, "TiB": 1024 ** 3}

    def kib(size: str) -> float:
        number, unit = size.split()
        return float(number) * units[unit]

    rams = [kib(row.ram) for row in table.rows]
    assert rams == sorted(rams, reverse=True)
    slack = sum(_rounding(size) for size in rams + [kib(table.total_ram)])
    assert abs(sum(rams) - kib(table.total_ram)) <= slack

