"""--group-by mapping: one process's rows (read_mappings()) and the rows
over processes (aggregate_mappings()).

Processes are real smaps from tests/data/mappings/ (see
test_parsers_mapping.py: the segments helper, its child, redis), put in a
small proc root of their own, or samples written by hand.  Expected values
are worked out by hand from oracle.awk's sums of each fixture, or taken
from parse_smaps() of the rollup the kernel wrote beside it.
"""

import sys
from pathlib import Path

import pytest

from tests.harness import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import ps_mem  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "data" / "mappings"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def procfs(tmp_path):
    """A proc root of fixture smaps: procfs.add(pid, "segments.smaps")."""
    class Root(ps_mem.ProcFS):
        def add(self, pid: int, name: str) -> None:
            (tmp_path / str(pid)).mkdir()
            (tmp_path / str(pid) / "smaps").write_bytes(fixture(name))
            (tmp_path / str(pid) / "statm").write_bytes(b"1 1 1 1 0 1 0\n")

    return Root(str(tmp_path), ps_mem.TREE)


def sample(procfs, pid: int, name: str, program: str = "segments") -> ps_mem.ProcessSample:
    procfs.add(pid, name)
    memory, rows = ps_mem.read_mappings(procfs, pid, {})
    return ps_mem.ProcessSample(pid, program, *memory, mappings=rows)


def rows(report) -> dict:
    return {program.name: (program.processes, program.private_kib, program.shared_kib,
                           program.ram_kib) for program in report.programs}


# ----------------------------------------------------------------------------
# One process
# ----------------------------------------------------------------------------


def test_a_process_rows_add_up_to_its_own_fields(procfs):
    found = sample(procfs, 1, "segments.smaps")
    # oracle.awk, summed: Private 488, Pss 8298 on 27 lines, 20 of them of
    # mappings with shared pages.
    assert found.private_kib == 488
    assert found.shared_kib == 8298 + 0.5 * 20 - 488
    assert (found.shared_hugetlb_kib, found.swap_kib) == (0, 0)
    assert found.has_pss and found.has_swap_pss
    assert found.mappings["[heap]"] == (12, 0, 0, 0)  # private only: exact
    assert found.mappings["[SysV key=0x50532f7f shmid=23]"] == (0, 1536.5, 0, 0)
    assert sum(row[0] + row[1] for row in found.mappings.values()) == (
        found.private_kib + found.shared_kib)


def test_swap_is_swap_pss_where_the_kernel_shows_it(procfs, tmp_path):
    text = fixture("segments.smaps").replace(
        b"Swap:                  0 kB\nSwapPss:               0 kB",
        b"Swap:                 12 kB\nSwapPss:               5 kB", 1)
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "smaps").write_bytes(text)
    (tmp_path / "7" / "statm").write_bytes(b"1 1 1 1 0 1 0\n")
    memory, found = ps_mem.read_mappings(procfs, 7)
    assert found["/tmp/mvh/segments"][3] == 5
    without = b"\n".join(line for line in text.split(b"\n") if not line.startswith(b"SwapPss"))
    (tmp_path / "7" / "smaps").write_bytes(without)
    memory, found = ps_mem.read_mappings(procfs, 7)
    assert found["/tmp/mvh/segments"][3] == 12
    assert memory[3] == 12  # the process's swap


def test_a_process_without_smaps_or_with_garbage_is_left_out(procfs, tmp_path):
    procfs.add(1, "segments.smaps")
    (tmp_path / "1" / "smaps").unlink()
    with pytest.raises(ps_mem.ProcessGone) as gone:
        ps_mem.read_mappings(procfs, 1)
    assert not gone.value.unparsable
    (tmp_path / "1" / "smaps").write_bytes(b"Pss: 12 kB\n")
    with pytest.raises(ps_mem.ProcessGone) as gone:
        ps_mem.read_mappings(procfs, 1)
    assert gone.value.unparsable


# ----------------------------------------------------------------------------
# Rows over processes
# ----------------------------------------------------------------------------


def test_a_segment_shared_by_two_processes_is_one_row(procfs):
    report = ps_mem.aggregate_mappings([sample(procfs, 1, "segments.smaps"),
                                        sample(procfs, 2, "segments-child.smaps")])
    found = rows(report)
    # Each process has half of each page (mapcount 2), and 0.5 KiB is added
    # to each Pss line of a mapping with shared pages.
    assert found["/dev/shm/ps_mem-segments-12159"] == (2, 0, 1025, 1025)
    assert found["[memfd:ps_mem-memfd]"] == (2, 0, 2049, 2049)
    assert found["[SysV key=0x50532f7f shmid=23]"] == (2, 0, 3073, 3073)
    assert found["[anon_shmem]"] == (2, 0, 5121, 5121)
    assert found["[heap]"] == (2, 20, 0, 20)  # 12 + 8: by awk on each fixture
    assert "[vvar]" not in found  # no RAM: no row
    assert report.programs[-1].name == "[anon_shmem]"  # ascending by RAM
    assert report.programs[-1].pids == (1, 2)
    assert report.total_ram_kib == sum(program.ram_kib for program in report.programs)
    assert report.pss_seen and report.swap_pss_seen


def test_the_total_is_the_default_reports_within_the_rounding(procfs):
    """The default adds 0.5 KiB to each process's one rollup Pss; the view
    adds 0.5 to each Pss line of a mapping with shared pages, k of them in a
    process, and each such line is truncated by 0 to 1 KiB.  So they differ
    by at most (k - 1) / 2 KiB a process; here by the most, every shared
    page being mapcount 2, whose halves are whole KiB."""
    view = ps_mem.aggregate_mappings([sample(procfs, 1, "segments.smaps"),
                                      sample(procfs, 2, "segments-child.smaps")]).total_ram_kib
    default = 0.0
    for name in ("segments", "segments-child"):
        rollup = ps_mem.parse_smaps(fixture(name + ".smaps_rollup"))
        default += rollup.pss + rollup.private_hugetlb + rollup.shared_hugetlb
    assert default == 8298.5 + 7846.5  # awk on the rollups
    # k = 20 and 19 mappings with shared pages (oracle.awk, summed)
    assert view - default == (20 - 1) / 2 + (19 - 1) / 2


def usage(private=0, shared=0, shared_hugetlb=0, swap=0):
    return (private, shared, shared_hugetlb, swap)


def hand_sample(pid, mappings, has_pss=True, has_swap_pss=True, program="p", mem_id=None):
    return ps_mem.ProcessSample(pid, program, 0, 0, 0, 0, mem_id, has_pss, has_swap_pss,
                                mappings=mappings)


def test_an_address_space_is_counted_once():
    shown = {"/lib": usage(10, 30, swap=6)}
    samples = [hand_sample(pid, shown) for pid in (1, 2, 3)]
    # 1 and 2 share one space (CLONE_VM, as kcmp says); 3 has its own.
    report = ps_mem.aggregate_mappings(samples, address_spaces={1: 1, 2: 1})
    assert rows(report) == {"/lib": (3, 20, 60, 80)}
    assert report.total_swap_kib == 12
    # A space only guessed (3.14's rule: the same text) keeps its swap whole.
    report = ps_mem.aggregate_mappings(
        samples, address_spaces={1: ("same text", 7), 2: ("same text", 7)})
    assert rows(report) == {"/lib": (3, 20, 60, 80)}
    assert report.total_swap_kib == 18


def test_without_a_map_of_spaces_3_14s_rule_guesses_by_program():
    shown = {"/lib": usage(10, 30, swap=6)}
    # A program all of whose processes show the same text is one space.
    clones = [hand_sample(pid, shown, program="clone", mem_id=5) for pid in (1, 2)]
    others = [hand_sample(3, shown, program="other", mem_id=5),
              hand_sample(4, shown, program="two", mem_id=6),
              hand_sample(5, shown, program="two", mem_id=7)]
    report = ps_mem.aggregate_mappings(clones + others)
    assert rows(report) == {"/lib": (5, 40, 120, 160)}
    assert report.total_swap_kib == 30  # a guessed space's swap is not divided


def test_without_pss_a_row_gets_its_largest_shared():
    samples = [hand_sample(1, {"/lib": usage(10, 30)}, False, False),
               hand_sample(2, {"/lib": usage(5, 50)}, False, False)]
    report = ps_mem.aggregate_mappings(samples)
    assert rows(report) == {"/lib": (2, 15, 50, 65)}
    assert not report.pss_seen and not report.swap_pss_seen


def test_a_hugetlb_segment_is_counted_once_per_row():
    samples = [hand_sample(1, {"/SYSV": usage(0, 0, 2048)}),
               hand_sample(2, {"/SYSV": usage(0, 0, 4096)})]
    assert rows(ps_mem.aggregate_mappings(samples)) == {"/SYSV": (2, 0, 4096, 4096)}


def test_a_row_of_no_ram_is_left_out_but_its_swap_counts():
    samples = [hand_sample(1, {"/gone": usage(swap=8), "/lib": usage(4)})]
    report = ps_mem.aggregate_mappings(samples, 3, {}, 2)
    assert rows(report) == {"/lib": (1, 4, 0, 4)}
    assert (report.total_ram_kib, report.total_swap_kib) == (4, 8)
    assert (report.unreadable, report.unparsable) == (3, 2)


def test_rows_of_equal_ram_keep_the_order_they_were_first_seen():
    samples = [hand_sample(1, {"/b": usage(4), "/a": usage(4)}),
               hand_sample(2, {"/c": usage(4), "/a": usage(0)})]
    report = ps_mem.aggregate_mappings(samples)
    assert [program.name for program in report.programs] == ["/b", "/a", "/c"]
    assert report.programs[1].processes == 2  # one maps it with nothing resident
