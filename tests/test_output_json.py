"""Stage: output, --json: one JSON document on stdout instead of the table
(README.md, "JSON").

The document is checked against the table of the same run's options, on the
same tree: same rows in the same order (name and count), each size in bytes
printing as the table's column with ps_mem.human(bytes / 1024), totals equal
to the footer and to -t's byte count, nulls exactly where 3.14 prints no
total, and a warnings list that is stderr's texts.  (On the live /proc, in
test_live.py, a table and a document from two runs cannot be compared, so
that check reads one capture both ways.)
"""

import json
import re
import time
from pathlib import Path
from typing import Sequence

import pytest

from tests.harness import (TIME, assert_same_as_table, assert_schema,
                           assert_warnings_are_stderr, document, is_int, member_data,
                           rewrite_capture, run_main, run_ours, without_time)
from tests import diff_trees
from tests.procfs_builder import ProcTree, program_maps


def check_against_table(procfs, options: Sequence[str]) -> dict:
    """Run ps_mem with OPTIONS as a table, as --json and as -t, and check
    that all three agree; the document."""
    table = run_main(*options, procfs=procfs)
    as_json = run_main("--json", *options, procfs=procfs)
    assert (as_json.stderr, as_json.status) == (table.stderr, table.status)
    doc = document(as_json.stdout)
    release = Path(procfs, "sys/kernel/osrelease").read_text().strip() \
        if Path(procfs).is_dir() else doc["kernel"]
    assert_schema(doc, release)
    assert_warnings_are_stderr(doc, as_json.stderr)
    assert_same_as_table(doc, table.out, options)
    # -t prints the total in bytes where (and only where) it is a true one.
    only_total = run_main("-t", *options, procfs=procfs)
    total = doc["total"]["swap" if "-S" in options else "ram"]
    if total is None:
        # (with no process at all 3.14 prints no total either, but exits 0)
        assert only_total.stdout == b""
        assert only_total.status == (1 if doc["programs"] else 0)
    elif doc["programs"]:
        assert only_total.status == 0
        assert int(only_total.stdout) == total
    # The rows add up to the total (each row is rounded to whole bytes).
    if doc["total"]["ram"] is not None:
        rows = sum(program["ram"] for program in doc["programs"])
        assert abs(rows - doc["total"]["ram"]) <= len(doc["programs"])
    return doc


# ----------------------------------------------------------------------------
# Fixture trees: the document against the table
# ----------------------------------------------------------------------------

MAIN = [[], ["-S"], ["-d"], ["-s"], ["-d", "-S"], ["-s", "-d"], ["-p", "<pids>"],
        ["--top", "3"], ["--top", "3", "-S"], ["--sort", "private", "--reverse"],
        ["--sort", "name"], ["--group-by", "user"], ["--group-by", "cgroup"]]
CASES = [("rollup_6_1", options) for options in MAIN] + [
    ("swap_with_swappss", ["-S"]), ("swap_with_swappss", ["-S", "--top", "2"]),
    ("smaps_no_pss", []), ("smaps_no_pss", ["-S"]), ("smaps_no_pss", ["-d"]),
    ("smaps_no_pss", ["-s"]), ("smaps_no_pss", ["--top", "2"]),
    ("swap_without_swappss", ["-S"]), ("swap_without_swappss", []),
    ("statm_2_6_18", []), ("statm_2_6_9", ["-S"]), ("kernel_2_4_rmap", []),
    ("hugetlb", []), ("hugetlb", ["-d"]), ("clone_vm", []), ("clone_vm_smaps", ["-d"]),
    ("smaps_pss_per_line", []), ("renamed_children", ["-p", "<pids>"]),
    ("zero_memory_rollup", []), ("ties", []), ("self_only", []),
    ("non_utf8", []), ("non_utf8", ["-s"]), ("hostile_names", ["-d"]),
    ("hostile_names", ["-s"]), ("vanished_rollup_unreadable", []),
]


@pytest.mark.parametrize("name, options", CASES,
                         ids=["%s:%s" % (name, " ".join(options)) for name, options in CASES])
def test_document_matches_table(proc_trees, name, options):
    tree = proc_trees.get(name)
    options = [",".join(map(str, tree.probe_pids)) if option == "<pids>" else option
               for option in options]
    doc = check_against_table(tree.root, options)
    if "-p" in options:
        wanted = {int(pid) for pid in options[options.index("-p") + 1].split(",")}
        assert {pid for program in doc["programs"] for pid in program["pids"]} <= wanted
        assert doc["programs"], "none of %s found" % wanted
    if "-d" in options and "-s" not in options:  # (-s -d: one row per pid, no [pid])
        for program in doc["programs"]:
            assert program["name"].endswith(" [%d]" % program["pids"][0]), program
    if "--top" in options:
        assert len(doc["programs"]) == int(options[options.index("--top") + 1])


def test_pids_and_counts(proc_trees):
    """Each program lists the processes it sums: rollup_6_1's sshd is 688 and
    1201, postgres three, and every process once."""
    doc = document(run_main("--json", procfs=proc_trees.get("rollup_6_1").root).stdout)
    pids = {program["name"]: sorted(program["pids"]) for program in doc["programs"]}
    assert pids["sshd"] == [688, 1201]
    assert pids["postgres"] == [3100, 3104, 3105]
    assert pids["nginx"] == [2000, 2001, 2002]
    assert pids["python3.11"] == [4000]
    everyone = sorted(pid for program in doc["programs"] for pid in program["pids"])
    assert everyone == [1, 412, 688, 1201, 1203, 1302, 2000, 2001, 2002, 3100, 3104, 3105, 4000]


def test_split_args_names_are_command_lines(proc_trees):
    doc = document(run_main("--json", "-s", procfs=proc_trees.get("rollup_6_1").root).stdout)
    names = {program["name"] for program in doc["programs"]}
    assert "/bin/bash ./backup.sh --full" in names and "-bash" in names
    assert "nginx: worker process" in names


# ----------------------------------------------------------------------------
# Totals and accuracy: nulls where 3.14 prints no total
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, options, total, accuracy", [
    ("rollup_6_1", ["-S"], ("int", "int"), (2, 2)),
    ("swap_with_swappss", ["-S"], ("int", "int"), (2, 2)),
    ("swap_without_swappss", ["-S"], ("int", None), (2, 1)),
    ("smaps_no_pss", [], (None, None), (1, 1)),
    ("smaps_no_pss", ["-S"], (None, None), (1, 1)),
    ("statm_2_6_18", ["-S"], (None, None), (0, -1)),
    ("statm_2_6_9", ["-S"], (None, None), (-1, -1)),
    ("kernel_2_4", ["-S"], (None, None), (1, -1)),
    ("kernel_2_4_rmap", ["-S"], (None, None), (0, -1)),
])
def test_totals_and_accuracy(proc_trees, name, options, total, accuracy):
    doc = document(run_main("--json", *options, procfs=proc_trees.get(name).root).stdout)
    kinds = tuple("int" if is_int(value) else value for value in
                  (doc["total"]["ram"], doc["total"]["swap"]))
    assert kinds == total
    assert (doc["accuracy"]["ram"], doc["accuracy"]["swap"]) == accuracy


def test_accuracy_of_swap_does_not_depend_on_S(proc_trees):
    root = proc_trees.get("rollup_6_1").root
    without = document(run_main("--json", procfs=root).stdout)
    with_swap = document(run_main("--json", "-S", procfs=root).stdout)
    assert without["total"]["swap"] is not None
    assert without["accuracy"] == with_swap["accuracy"] == {"ram": 2, "swap": 2}


def test_with_t_still_one_document(proc_trees):
    """-t with --json: the document (not the bare number), -t's "Error:"
    warnings, and -t's exit status."""
    good = run_main("--json", "-t", procfs=proc_trees.get("rollup_6_1").root)
    assert good.status == 0 and good.stderr == b""
    assert int(run_main("-t", procfs=proc_trees.get("rollup_6_1").root).stdout) == \
        document(good.stdout)["total"]["ram"]
    bad = run_main("--json", "-t", procfs=proc_trees.get("smaps_no_pss").root)
    assert bad.status == 1
    doc = document(bad.stdout)
    assert doc["total"]["ram"] is None and doc["programs"]
    assert doc["warnings"] == ["Error: Shared memory is slightly over-estimated by this system"
                               "\nfor each program, so totals are not reported."]
    assert_warnings_are_stderr(doc, bad.stderr)


# ----------------------------------------------------------------------------
# -w: JSON Lines
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, accuracy, warnings", [
    ("rollup_6_1", '{"ram": 2, "swap": 2}', []),
    ("smaps_no_pss", '{"ram": 1, "swap": 1}',
     ["Warning: Shared memory is slightly over-estimated by this system\n"
      "for each program, so totals are not reported.",
      "Warning: Swap is over-estimated by this system for each program,\n"
      "so totals are not reported."]),
])
def test_watch_of_missing_pid_prints_one_empty_document(proc_trees, name, accuracy, warnings):
    """With -w and a -p pid that does not exist the table prints its header
    and "Process does not exist anymore."; --json prints one document with
    no programs and no total, and nothing else (a JSON Lines reader gets
    only JSON), and ends at once."""
    tree = proc_trees.get(name)
    started = time.monotonic()
    result = run_ours("--json", "-S", "-w", "1", "-p", "99999", procfs=tree.root)
    assert time.monotonic() - started < 5
    release = tree.kernel.osrelease
    expected = ('{"ps_mem_version": "4.0", "time": "T", "kernel": "%s", "programs": [], '
                '"total": {"ram": null, "swap": null}, "accuracy": %s, "warnings": %s}\n'
                % (release, accuracy, json.dumps(warnings)))
    assert without_time(result).out == expected
    assert TIME.fullmatch(json.loads(result.out)["time"])
    assert result.err == "".join(text + "\n" for text in warnings)
    assert result.status == 0
    table = run_ours("-S", "-w", "1", "-p", "99999", procfs=tree.root)
    assert table.out.endswith("\n\nProcess does not exist anymore.\n")


# ----------------------------------------------------------------------------
# Names: valid JSON whatever they hold
# ----------------------------------------------------------------------------

HOSTILE = [
    (9001, 'say "hi"', '/usr/bin/say "hi"', None),
    (9002, "back\\slash", "/usr/bin/back\\slash", None),
    (9003, "ctl\x01\x1b[31m\x7f", "/usr/bin/ctl-x", None),
    (9004, b"bytes\xff\xfe", b"/usr/bin/bytes\xff\xfe-bin", [b"/usr/bin/bytes\xff", b"\xc3("]),
    (9005, "sep\u2028\u2029", "/usr/bin/sep\u2028\u2029", ["sep", "a\u2028b"]),
    (9006, "emoji-\U0001F600", "/usr/bin/emoji-\U0001F600", ['"quoted"', "\\n", "\t", "\x00x"]),
    (9007, "nul", "/usr/bin/nul", ["\x85next-line", "\\u0041", "{}[],:"]),
]


@pytest.fixture(scope="module")
def hostile_json_tree(tmp_path_factory) -> ProcTree:
    tree = ProcTree(tmp_path_factory.mktemp("hostile") / "proc", "6.1")
    for pid, name, exe, args in HOSTILE:
        cgroup = b'0::/system.slice/"q"\\b\x01\xff\xfe.service\n'
        tree.add(pid, name, exe, cmdline=args, replace={"cgroup": cgroup},
                 maps=program_maps("/usr/bin/h", heap_kib=1000 + pid - 9000))
    return tree


@pytest.mark.parametrize("options", [[], ["-s"], ["-d"], ["--group-by", "cgroup"],
                                     ["--group-by", "user", "-d"], ["-s", "--sort", "name"]])
def test_hostile_names_make_valid_ascii_json(hostile_json_tree, options):
    table = run_main(*options, procfs=hostile_json_tree.root)
    as_json = run_main("--json", *options, procfs=hostile_json_tree.root)
    doc = document(as_json.stdout)  # one line, ASCII only, valid
    assert_schema(doc, hostile_json_tree.kernel.osrelease)
    assert_same_as_table(doc, table.out, options)
    names = [program["name"] for program in doc["programs"]]
    for name in names:
        # The names themselves, which JSON escapes (the document is ASCII):
        # no character is lost to "?", and none is made up.
        assert "\ufffd" not in name and not re.search("[\ud800-\udfff]", name), repr(name)
    if options == []:
        assert 'say "hi"' in names and "back\\slash" in names
        assert "emoji-\U0001F600" in names and "sep\u2028\u2029" in names
        assert "ctl\x01\x1b[31m\x7f" in names
        assert "bytes??-bin" in names  # the exe's bytes that are not UTF-8
    if options == ["-s"]:
        assert '"quoted" \\n \t  x' in names  # a tab, and a NUL inside an argument
        assert "\x85next-line \\u0041 {}[],:" in names  # U+0085, a C1 control
        assert "sep a\u2028b" in names and "/usr/bin/bytes (" in names
    if options == ["--group-by", "cgroup"]:
        assert [(program["name"], program["count"]) for program in doc["programs"]] == \
            [('/system.slice/"q"\\b\x01.service', len(HOSTILE))]


# ----------------------------------------------------------------------------
# Warnings
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, options, count", [
    ("smaps_no_pss", ["-S"], 2), ("smaps_no_pss", ["-S", "-t"], 1),
    ("statm_2_6_9", [], 1), ("swap_without_swappss", ["-S", "-t"], 1),
    ("rollup_6_1", ["-S"], 0),
])
def test_warnings_are_the_tables_stderr(proc_trees, name, options, count):
    root = proc_trees.get(name).root
    table = run_main(*options, procfs=root)
    doc = document(run_main("--json", *options, procfs=root).stdout)
    assert len(doc["warnings"]) == count
    assert_warnings_are_stderr(doc, table.stderr)
    level = "Error: " if "-t" in options else "Warning: "
    assert all(text.startswith(level) for text in doc["warnings"])


def _denied_capture(tmp_path: Path, tree: ProcTree) -> Path:
    """A capture of TREE in which one process could not be read (EACCES on
    its exe link), as a capture of the live /proc records a sandbox's pid 1:
    root cannot be denied on a fixture directory."""
    capture = tmp_path / "capture.tar.gz"
    assert run_main("--capture", str(capture), procfs=tree.root).status == 0
    manifest = json.loads(member_data(capture)["ps_mem-capture.json"])
    manifest["errors"]["1203/exe"] = 13  # EACCES
    return rewrite_capture(capture, tmp_path / "denied.tar.gz",
                           {"ps_mem-capture.json": json.dumps(manifest).encode()},
                           drop=["proc/1203/exe"])


def test_unreadable_process_warning_in_document(proc_trees, tmp_path):
    denied = _denied_capture(tmp_path, proc_trees.get("rollup_6_1"))
    table = run_main(procfs=denied)
    assert table.err == ("Warning: 1 process could not be read (permission denied); "
                         "their memory is not included.\n")
    doc = check_against_table(denied, [])
    assert doc["warnings"] == [table.err.rstrip("\n")]
    assert 1203 not in [pid for program in doc["programs"] for pid in program["pids"]]


def test_a_name_that_is_not_utf8_is_unicode_in_json(tmp_path):
    """A capture's user names (and a live system's, from NSS) may hold bytes
    that are not UTF-8, which Python keeps as lone surrogates: written as
    "\\udcff", strict parsers (serde_json) refuse the document.  U+FFFD."""
    tree = ProcTree(tmp_path / "proc", "6.1")
    tree.add(100, "daemon", "/usr/bin/daemon",
             maps=program_maps("/usr/bin/daemon", heap_kib=1000))
    capture = diff_trees.captured(tree, tmp_path / "c.tar.gz")
    crafted = diff_trees.rewritten(capture, tmp_path / "crafted.tar.gz",
                                   {"users": {"0": "ro\udcffot"}})
    done = run_main("--json", "--group-by", "user", procfs=crafted)
    assert done.status == 0, done.err
    assert "\\udc" not in done.out
    doc = json.loads(done.out)
    assert [program["name"] for program in doc["programs"]] == ["ro\ufffdot"]
    doc["programs"][0]["name"].encode("utf-8")  # strictly Unicode
    table = run_main("--group-by", "user", procfs=crafted).out
    assert "\tro?ot\n" in table  # as the table shows it
