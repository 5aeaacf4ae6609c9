"""ps_mem.py and ps_mem 3.14 over /proc trees captured from a real machine.

Each tree under tests/trees_captured/ was taken with tests/capture_tree.py
from a Linux 6.x machine (its README says what each holds), so the text
is the kernel's own, not a builder's imitation.  Both programs read the
same tree and must print the same bytes and exit with the same status,
with the one deliberate difference that ps_mem.py shows a control
character in a name as "?" where 3.14 prints it raw.
"""

import os
from pathlib import Path
from typing import Dict, List

import pytest

from tests.harness import Result, run_ours, run_reference, tree_self_pid

TREES_DIR = Path(__file__).resolve().parent / "trees_captured"
TREES = sorted(path for path in TREES_DIR.iterdir() if (path / "self").is_symlink())
# What ps_mem.py shows as "?" in a name: C0, DEL and C1 controls.
CONTROLS = {code: "?" for code in [*range(0x20), *range(0x7F, 0xA0)]}

OPTIONS = [[], ["-s"], ["-t"], ["-d"], ["-S"], ["-S", "-t"], ["-d", "-S"], ["-s", "-d"]]


def _pids(tree: Path) -> List[int]:
    self_pid = tree_self_pid(tree)
    return sorted(int(entry) for entry in os.listdir(tree)
                  if entry.isdigit() and entry != self_pid)


def _pid_pairs(tree: Path) -> Dict[str, str]:
    """Two -p lists: two processes of one executable, and two of the tree's
    first and last pids."""
    by_exe: Dict[str, List[int]] = {}
    for pid in _pids(tree):
        by_exe.setdefault(os.readlink(tree / str(pid) / "exe"), []).append(pid)
    same = next(pids for pids in by_exe.values() if len(pids) > 1)
    pids = _pids(tree)
    return {"same-exe": "%d,%d" % tuple(same[:2]), "apart": "%d,%d" % (pids[0], pids[-1])}


def _printable_names(stdout: bytes) -> bytes:
    """3.14's output as ps_mem.py prints it: names (after each line's first
    tab) with control characters as "?".  Only for trees whose names hold
    no newline, so that lines are rows."""
    lines = []
    for line in stdout.decode("utf-8").split("\n"):
        head, tab, name = line.partition("\t")
        lines.append(head + tab + name.translate(CONTROLS))
    return "\n".join(lines).encode("utf-8")


def _expected(reference: Result) -> Result:
    return reference._replace(stdout=_printable_names(reference.stdout))


CASES = [(tree, options) for tree in TREES for options in OPTIONS]


@pytest.mark.parametrize("tree,options", CASES,
                         ids=["%s:%s" % (tree.name, " ".join(options) or "default")
                              for tree, options in CASES])
def test_same_as_3_14(tree, options):
    ours = run_ours(*options, procfs=tree)
    reference = run_reference(*options, procfs=tree)
    assert ours == _expected(reference)
    assert ours.status in (0, 1) and b"Traceback" not in ours.stderr


@pytest.mark.parametrize("tree", TREES, ids=[tree.name for tree in TREES])
@pytest.mark.parametrize("pair", ["same-exe", "apart"])
def test_two_pids_same_as_3_14(tree, pair):
    pids = _pid_pairs(tree)[pair]
    ours = run_ours("-p", pids, procfs=tree)
    assert ours == _expected(run_reference("-p", pids, procfs=tree))
    assert ours.status == 0 and ours.stdout.count(b"\t") >= 2  # header and a row


def test_trees_are_real_captures():
    """Each tree has what capture_tree.py writes, and the situations the
    tests above are meant to cover are still in them."""
    assert {tree.name for tree in TREES} >= {"sleeps_shell_python", "helpers", "no_rollup"}
    for tree in TREES:
        assert (tree / "sys" / "kernel" / "osrelease").read_bytes()[:1].isdigit()
        assert (tree / "meminfo").read_bytes().startswith(b"MemTotal:")
        self_pid = tree_self_pid(tree)
        assert (tree / self_pid / "smaps").exists(), "the accuracy probe reads self's smaps"
        for pid in _pids(tree) + [int(self_pid)]:
            files = {path.name for path in (tree / str(pid)).iterdir()}
            assert {"cmdline", "status", "statm", "smaps", "exe"} <= files, pid
            assert os.readlink(tree / str(pid) / "exe").startswith("/")
            assert ("smaps_rollup" in files) == (tree.name != "no_rollup"), pid
    helpers = TREES_DIR / "helpers"
    names = {(helpers / str(pid) / "status").read_bytes().split(b"\n")[0]
             for pid in _pids(helpers)}
    assert "Name:\tпример".encode() in names
    assert any(b"\x1b" in name for name in names)


def test_clone_vm_rule_on_captured_tree():
    """The captured CLONE_VM family (one address space, identical
    smaps_rollup text) is one row of four with the 32 MiB counted once;
    the forked family (different texts) is not divided."""
    ours = run_ours(procfs=TREES_DIR / "helpers").out
    rows = {line.split("\t")[1]: line.split("\t")[0] for line in ours.splitlines()
            if "\t" in line}
    assert rows["clone_vm (4)"].startswith(" 32.7 MiB +")
    assert rows["forkshare (4)"].startswith("624.0 KiB +")
