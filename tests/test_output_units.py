"""--units UNIT and --no-header: tables for scripts and eyes.

One tree whose sizes are known: "small" maps 1024 KiB and "big" 2048000
KiB (2000 MiB), each in one private mapping, "big" with 4096 KiB of it
swapped out.  Its smaps_rollup has one Pss line, to which ps_mem adds
0.5 KiB (the kernel's average truncation), so each shows 0.5 KiB shared.
Every expected table below is written by hand from those numbers.
"""

import json
from typing import List

import pytest

from tests.harness import REFERENCE_DIR, live, ps_mem, run_main, run_ours, run_reference
from tests.procfs_builder import ProcTree, mapping

SMALL_KIB, BIG_KIB, SWAP_KIB = 1024, 2048000, 4096


@pytest.fixture
def sized(tree) -> ProcTree:
    proc = tree("6.1")
    proc.add(10, "small", "/usr/bin/small",
             maps=[mapping("[heap]", SMALL_KIB, private=SMALL_KIB, dirty=True)])
    proc.add(20, "big", "/usr/bin/big",
             maps=[mapping("[heap]", BIG_KIB + SWAP_KIB, private=BIG_KIB, dirty=True,
                           swap=SWAP_KIB)])
    return proc


TABLES = {
    # 3.14's 9 characters fit every size.
    ("GiB",): (
        " Private  +   Shared  =  RAM used\tProgram\n"
        "\n"
        "  0.0 GiB +   0.0 GiB =   0.0 GiB\tsmall\n"
        "  2.0 GiB +   0.0 GiB =   2.0 GiB\tbig\n"
        "---------------------------------\n"
        "                          2.0 GiB\n"
        "=================================\n"),
    # 2000.0 MiB is 10 characters: every column is 10 wide, the titles and
    # the total move with them.
    ("MiB",): (
        "  Private  +    Shared  =   RAM used\tProgram\n"
        "\n"
        "   1.0 MiB +    0.0 MiB =    1.0 MiB\tsmall\n"
        "2000.0 MiB +    0.0 MiB = 2000.0 MiB\tbig\n"
        "------------------------------------\n"
        "                          2001.0 MiB\n"
        "====================================\n"),
    ("KiB",): (
        "     Private  +       Shared  =      RAM used\tProgram\n"
        "\n"
        "   1024.0 KiB +       0.5 KiB =    1024.5 KiB\tsmall\n"
        "2048000.0 KiB +       0.5 KiB = 2048000.5 KiB\tbig\n"
        "---------------------------------------------\n"
        "                                2049025.0 KiB\n"
        "=============================================\n"),
    ("B",): (
        "    Private  +      Shared  =     RAM used\tProgram\n"
        "\n"
        "   1048576 B +        512 B =    1049088 B\tsmall\n"
        "2097152000 B +        512 B = 2097152512 B\tbig\n"
        "------------------------------------------\n"
        "                              2098201600 B\n"
        "==========================================\n"),
    ("MiB", "-S"): (
        "  Private  +    Shared  =   RAM used    Swap used\tProgram\n"
        "\n"
        "   1.0 MiB +    0.0 MiB =    1.0 MiB      0.0 MiB\tsmall\n"
        "2000.0 MiB +    0.0 MiB = 2000.0 MiB      4.0 MiB\tbig\n"
        "-------------------------------------------------\n"
        "                          2001.0 MiB      4.0 MiB\n"
        "=================================================\n"),
    ("B", "-S"): (
        "    Private  +      Shared  =     RAM used      Swap used\tProgram\n"
        "\n"
        "   1048576 B +        512 B =    1049088 B            0 B\tsmall\n"
        "2097152000 B +        512 B = 2097152512 B      4194304 B\tbig\n"
        "---------------------------------------------------------\n"
        "                              2098201600 B      4194304 B\n"
        "=========================================================\n"),
    ("GiB", "-d"): (
        " Private  +   Shared  =  RAM used\tProgram[pid]\n"
        "\n"
        "  0.0 GiB +   0.0 GiB =   0.0 GiB\tsmall [10]\n"
        "  2.0 GiB +   0.0 GiB =   2.0 GiB\tbig [20]\n"
        "---------------------------------\n"
        "                          2.0 GiB\n"
        "=================================\n"),
}


@pytest.mark.parametrize("args", sorted(TABLES), ids=" ".join)
def test_table_in_units(sized, args):
    unit, *rest = args
    result = run_main("--units", unit, *rest, procfs=sized.root)
    assert (result.status, result.err) == (0, "")
    assert result.out == TABLES[args]


def test_the_default_is_3_14s(sized):
    """Without --units each size picks its own unit, as 3.14 prints it."""
    expected = (" Private  +   Shared  =  RAM used\tProgram\n"
                "\n"
                "  1.0 MiB +   0.5 KiB =   1.0 MiB\tsmall\n"
                "  2.0 GiB +   0.5 KiB =   2.0 GiB\tbig\n"
                "---------------------------------\n"
                "                          2.0 GiB\n"
                "=================================\n")
    assert run_main(procfs=sized.root).out == expected
    if (REFERENCE_DIR / "ps_mem.py").exists():
        assert run_reference(procfs=sized.root).out == expected


@pytest.mark.parametrize("unit, total, swap", [
    ("B", "2098201600", "4194304"), ("KiB", "2049025.0", "4096.0"), ("MiB", "2001.0", "4.0"),
    ("GiB", "2.0", "0.0"),
])
def test_total_in_units(sized, unit, total, swap):
    """-t prints the number alone, as it prints bytes; in bytes, what -t
    alone prints."""
    assert run_main("-t", "--units", unit, procfs=sized.root).out == total + "\n"
    assert run_main("-t", "-S", "--units", unit, procfs=sized.root).out == swap + "\n"
    assert run_main("-t", procfs=sized.root).out == "2098201600\n"


def test_no_header(sized):
    assert run_main("--no-header", procfs=sized.root).out == (
        "  1.0 MiB +   0.5 KiB =   1.0 MiB\tsmall\n"
        "  2.0 GiB +   0.5 KiB =   2.0 GiB\tbig\n")
    assert run_main("--no-header", "--units", "B", "-S", "-d", procfs=sized.root).out == (
        "   1048576 B +        512 B =    1049088 B            0 B\tsmall [10]\n"
        "2097152000 B +        512 B = 2097152512 B      4194304 B\tbig [20]\n")


def test_no_header_sorts_and_sums(sized):
    """What --no-header is for: the rows feed sort and awk."""
    rows = run_main("--no-header", "--units", "KiB", "--reverse", procfs=sized.root).out
    fields = [line.split() for line in rows.splitlines()]
    assert [row[-1] for row in fields] == ["big", "small"]
    assert sum(float(row[6]) for row in fields) == 2049025.0  # RAM used, in KiB


@pytest.mark.parametrize("extra", [[], ["-S"], ["-d"], ["--group-by", "app"]])
def test_json_is_bytes_whatever_the_units(sized, extra):
    plain = run_main("--json", *extra, procfs=sized.root)
    for args in (["--units", "MiB"], ["--no-header"], ["--units", "B", "--no-header"]):
        other = run_main("--json", *args, *extra, procfs=sized.root)
        assert json.loads(other.stdout)["programs"] == json.loads(plain.stdout)["programs"]
    assert json.loads(plain.stdout)["total"]["ram"] == 2098201600


def test_no_header_with_t_is_t(sized):
    assert run_main("-t", "--no-header", procfs=sized.root).out == "2098201600\n"


def test_the_header_names_the_grouping_in_units(sized):
    assert run_main("--units", "MiB", "--group-by", "user", procfs=sized.root).out.startswith(
        "  Private  +    Shared  =   RAM used\tUser\n\n")


# ----------------------------------------------------------------------------
# A watch: the columns widen with the sizes, and never narrow
# ----------------------------------------------------------------------------

def _grow_then_end(monkeypatch, tree: ProcTree) -> None:
    """At the watch's first sleep "big" grows to 20000 MiB; at the second,
    both processes exit."""
    sleeps: List[int] = []

    def sleep(seconds: float) -> None:
        sleeps.append(1)
        if len(sleeps) == 1:
            tree.remove(20)
            tree.add(20, "big", "/usr/bin/big",
                     maps=[mapping("[heap]", 10 * BIG_KIB, private=10 * BIG_KIB, dirty=True)])
        else:
            tree.remove(10)
            tree.remove(20)
    monkeypatch.setattr(ps_mem.time, "sleep", sleep)


def test_watch_widens_and_says_so(sized, monkeypatch):
    _grow_then_end(monkeypatch, sized)
    result = run_main("-w", "1", "-p", "10,20", "--units", "MiB", procfs=sized.root)
    assert result.status == 0
    assert result.out == (
        "  Private  +    Shared  =   RAM used\tProgram\n"
        "\n"
        "   1.0 MiB +    0.0 MiB =    1.0 MiB\tsmall\n"
        "2000.0 MiB +    0.0 MiB = 2000.0 MiB\tbig\n"
        "------------------------------------\n"
        "                          2001.0 MiB\n"
        "====================================\n"
        # 20000.0 MiB is 11 characters: a new header over wider columns.
        "   Private  +     Shared  =    RAM used\tProgram\n"
        "\n"
        "    1.0 MiB +     0.0 MiB =     1.0 MiB\tsmall\n"
        "20000.0 MiB +     0.0 MiB = 20000.0 MiB\tbig\n"
        "---------------------------------------\n"
        "                            20001.0 MiB\n"
        "=======================================\n"
        # Gone: the columns stay as wide, and the watch says why it ends.
        "---------------------------------------\n"
        "                                0.0 MiB\n"
        "=======================================\n"
        "Process does not exist anymore.\n")


def test_watch_without_header_is_rows_only(sized, monkeypatch):
    _grow_then_end(monkeypatch, sized)
    result = run_main("-w", "1", "-p", "10,20", "--units", "MiB", "--no-header",
                      procfs=sized.root)
    assert result.status == 0
    assert result.out == (
        "   1.0 MiB +    0.0 MiB =    1.0 MiB\tsmall\n"
        "2000.0 MiB +    0.0 MiB = 2000.0 MiB\tbig\n"
        "    1.0 MiB +     0.0 MiB =     1.0 MiB\tsmall\n"
        "20000.0 MiB +     0.0 MiB = 20000.0 MiB\tbig\n")


def test_watch_in_3_14s_units_keeps_its_one_header(sized, monkeypatch):
    _grow_then_end(monkeypatch, sized)
    result = run_main("-w", "1", "-p", "10,20", procfs=sized.root)
    assert result.out.count("RAM used") == 1
    assert result.out.endswith("Process does not exist anymore.\n")


# ----------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--units", "mib"], "argument --units: invalid choice: 'mib' "
                         "(choose from 'B', 'KiB', 'MiB', 'GiB')"),
    (["--units"], "argument --units: expected one argument"),
    (["--units", "TiB"], "argument --units: invalid choice: 'TiB' "
                         "(choose from 'B', 'KiB', 'MiB', 'GiB')"),
])
def test_usage_errors(sized, args, message):
    result = run_ours(*args, procfs=sized.root)
    assert result.status == 2 and result.stdout == b""
    assert result.err.splitlines()[-1] == "ps_mem: error: " + message


def test_options_as_a_user_types_them(sized):
    """Abbreviated and attached: argparse's rules, as for every option."""
    expected = run_main("--units", "MiB", "--no-header", procfs=sized.root).out
    assert run_ours("--units=MiB", "--no-h", procfs=sized.root).out == expected
    assert run_ours("--uni", "MiB", "--no-header", procfs=sized.root).out == expected


# ----------------------------------------------------------------------------
# The live /proc
# ----------------------------------------------------------------------------

@live
def test_live_bytes_are_jsons(tmp_path):
    """One live sample (a capture of this machine), as a table in bytes and
    as JSON: every row's sizes are the same numbers, the total too."""
    capture = tmp_path / "sample.tar.gz"
    assert run_ours("--capture", str(capture)).status == 0
    table = run_ours("--units", "B", "--no-header", "-S", procfs=capture)
    doc = json.loads(run_ours("--json", procfs=capture).stdout)
    assert table.status == 0
    rows = [line.split("\t")[0].split() for line in table.out.splitlines()]
    assert len(rows) == len(doc["programs"]) > 0
    for fields, program in zip(rows, doc["programs"]):
        # PRIVATE B + SHARED B = RAM B SWAP B
        assert [fields[index] for index in (1, 2, 4, 5, 7, 9)] == ["B", "+", "B", "=", "B", "B"]
        assert [int(fields[0]), int(fields[3]), int(fields[6]), int(fields[8])] == \
            [program["private"], program["shared"], program["ram"], program["swap"]]
    total = run_ours("-t", "--units", "B", procfs=capture)
    assert int(total.out) == doc["total"]["ram"]
