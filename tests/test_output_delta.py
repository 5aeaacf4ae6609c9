"""-w N --delta on fixture trees: each row's change of RAM used since the
watch's first sample.

The watch runs in this process (ps_mem.main()) on a proc root that is a
link to one tree per sample: its sleep between samples is replaced by one
that moves the link to the next tree, and ends the watch with Ctrl-C after
the last, as a user would.  Sizes are worked out by hand (see
tests/diff_trees.py: RAM used = heap + 231.5 KiB, Private = heap + 108).
"""

import json
import os
from pathlib import Path
from typing import List

import pytest

from tests.diff_trees import program
from tests.harness import ps_mem, run_main
from tests.procfs_builder import ProcTree

HEADER = " Private  +   Shared  =  RAM used       Delta\tProgram\n\n"


class Samples:
    """A proc root at LINK that shows the next of TREES at each sleep."""

    def __init__(self, link: Path, trees: List[ProcTree]) -> None:
        self.link = link
        self.trees = list(trees)
        os.symlink(str(self.trees.pop(0).root), str(link))
        self.sleeps = 0

    def sleep(self, seconds: float) -> None:
        assert seconds == 1
        self.sleeps += 1
        if not self.trees:
            raise KeyboardInterrupt  # Ctrl-C: the watch ends normally
        moved = self.link.with_name(self.link.name + ".new")
        os.symlink(str(self.trees.pop(0).root), str(moved))
        os.replace(str(moved), str(self.link))


def versions(tmp_path: Path, *populations) -> List[ProcTree]:
    """A tree per sample, of (pid, name, heap KiB[, start]) each."""
    trees = []
    for index, population in enumerate(populations):
        tree = ProcTree(tmp_path / ("v%d" % index))
        for pid, name, heap, *start in population:
            program(tree, pid, name, heap, start=start[0] if start else None)
        trees.append(tree)
    return trees


@pytest.fixture
def watch(tmp_path, monkeypatch):
    """watch(trees, *options) -> the result of `ps_mem -w 1 --delta`."""
    runs = []

    def run(trees: List[ProcTree], *options: str):
        runs.append(trees)
        samples = Samples(tmp_path / ("proc%d" % len(runs)), trees)
        monkeypatch.setattr(ps_mem.time, "sleep", samples.sleep)
        result = run_main("-w", "1", "--delta", *options, procfs=samples.link)
        assert samples.sleeps == len(trees)  # every tree was a sample
        return result
    return run


IDLE = (200, "idle", 500)


@pytest.fixture
def growing(tmp_path):
    """leaky grows by 1024 KiB a sample; newbie starts in the second."""
    return versions(tmp_path,
                    [IDLE, (100, "leaky", 1000)],
                    [IDLE, (100, "leaky", 2024), (300, "newbie", 800)],
                    [IDLE, (100, "leaky", 3048)])


def test_table(watch, growing):
    result = watch(growing)
    rule, double = "-" * 45 + "\n", "=" * 45 + "\n"
    assert (result.err, result.status) == ("", 0)
    assert result.out == (
        HEADER
        + "608.0 KiB + 123.5 KiB = 731.5 KiB     0.0 KiB\tidle\n"
        "  1.1 MiB + 123.5 KiB =   1.2 MiB     0.0 KiB\tleaky\n"
        + rule + " " * 24 + "  1.9 MiB     0.0 KiB\n" + double
        + "608.0 KiB + 123.5 KiB = 731.5 KiB     0.0 KiB\tidle\n"
        "908.0 KiB + 123.5 KiB =   1.0 MiB         new\tnewbie\n"
        "  2.1 MiB + 123.5 KiB =   2.2 MiB    +1.0 MiB\tleaky\n"
        + rule + " " * 24 + "  3.9 MiB    +2.0 MiB\n" + double
        + "608.0 KiB + 123.5 KiB = 731.5 KiB     0.0 KiB\tidle\n"
        "  3.1 MiB + 123.5 KiB =   3.2 MiB    +2.0 MiB\tleaky\n"
        + rule + " " * 24 + "  3.9 MiB    +2.0 MiB\n" + double)


def test_json_lines(watch, growing):
    result = watch(growing, "--json")
    samples = [json.loads(line) for line in result.out.splitlines()]
    assert [{program["name"]: (program["delta"], program["new"])
             for program in sample["programs"]} for sample in samples] == [
        {"idle": (0, False), "leaky": (0, False)},
        {"idle": (0, False), "newbie": (1056256, True), "leaky": (1048576, False)},
        {"idle": (0, False), "leaky": (2097152, False)}]
    assert [sample["total"]["delta"] for sample in samples] == [0, 2104832, 2097152]
    # The fields of the plain document are all still there.
    assert list(samples[0]["programs"][0]) == ["name", "count", "pids", "private", "shared",
                                                "ram", "swap", "delta", "new"]


def test_only_the_total(watch, growing):
    result = watch(growing, "-t")
    assert (result.out, result.status) == ("+0\n+2104832\n+2097152\n", 0)


def test_with_swap(watch, growing):
    result = watch(growing, "-S")
    lines = result.out.splitlines()
    assert lines[0] == " Private  +   Shared  =  RAM used   Swap used       Delta\tProgram"
    assert lines[2] == "608.0 KiB + 123.5 KiB = 731.5 KiB     0.0 KiB     0.0 KiB\tidle"
    assert lines[4:7] == ["-" * 57, " " * 24 + "  1.9 MiB     0.0 KiB     0.0 KiB", "=" * 57]


def test_top_totals_the_rows_shown(watch, growing):
    result = watch(growing, "--top", "1")
    samples = result.out[len(HEADER):].split("=" * 45 + "\n")
    assert samples[1] == ("  2.1 MiB + 123.5 KiB =   2.2 MiB    +1.0 MiB\tleaky\n"
                          + "-" * 45 + "\n" + " " * 24 + "  2.2 MiB    +1.0 MiB\n")


def test_by_pid_a_restarted_process_is_new(watch, tmp_path):
    """With -d a row is a process: one that took the pid of another since
    the first sample is new."""
    trees = versions(tmp_path,
                     [IDLE, (100, "leaky", 1000)],
                     [(200, "idle", 500, 5000), (100, "leaky", 2024)])
    result = watch(trees, "-d")
    assert result.out.startswith(" Private  +   Shared  =  RAM used       Delta\tProgram[pid]\n")
    second = result.out.split("=" * 45 + "\n")[1]
    assert second.splitlines()[:2] == [
        "608.0 KiB + 123.5 KiB = 731.5 KiB         new\tidle [200]",
        "  2.1 MiB + 123.5 KiB =   2.2 MiB    +1.0 MiB\tleaky [100]"]
    by_name = watch(versions(tmp_path / "again",
                             [IDLE, (100, "leaky", 1000)],
                             [(200, "idle", 500, 5000), (100, "leaky", 2024)]))
    assert "731.5 KiB     0.0 KiB\tidle\n" in by_name.out.split("=" * 45 + "\n")[1]


def test_a_row_that_goes_and_comes_back(watch, tmp_path):
    """A watch's rows are its current sample's: a row that went is not
    shown; when it is back it is compared with the first sample again."""
    trees = versions(tmp_path,
                     [IDLE, (100, "leaky", 1000)],
                     [(100, "leaky", 1000)],
                     [(201, "idle", 600), (100, "leaky", 1000)])
    samples = [json.loads(line) for line in watch(trees, "--json").out.splitlines()]
    assert [[(p["name"], p["delta"], p["new"]) for p in sample["programs"]]
            for sample in samples] == [
        [("idle", 0, False), ("leaky", 0, False)],
        [("leaky", 0, False)],
        [("idle", 100 * 1024, False), ("leaky", 0, False)]]
    assert [sample["total"]["delta"] for sample in samples] == [0, -731.5 * 1024, 100 * 1024]


def test_without_delta_the_watch_is_as_before(growing, monkeypatch, tmp_path):
    """--delta changes nothing else: without it, each sample of the same
    watch is what a run on its tree alone prints (3.14's table)."""
    samples = Samples(tmp_path / "plain", growing)
    monkeypatch.setattr(ps_mem.time, "sleep", samples.sleep)
    plain = run_main("-w", "1", procfs=samples.link)
    header = " Private  +   Shared  =  RAM used\tProgram\n\n"
    alone = [run_main(procfs=tree.root).out for tree in growing]
    assert all(out.startswith(header) for out in alone)
    assert plain.out == header + "".join(out[len(header):] for out in alone)
