"""parse_smaps_mappings(): full smaps summed per mapping (--group-by mapping).

Inputs are real smaps captured from a Linux 6.18 x86_64 machine into
tests/data/mappings/: the segments helper (tests/helpers/segments.c, run as
`segments 1 FILE...` with the hostile file names below) and its child, and
a redis-server.  segments-named.smaps is segments.smaps with two headers
edited to the names the kernel gives with CONFIG_ANON_VMA_NAME (which that
kernel lacks): "[anon:ps_mem-anon]" and "[anon_shmem:ps_mem-shmem]".

Expected values were computed apart from the code under test, with
tests/data/mappings/oracle.awk (per mapping: Private, Shared, the hugetlb
ones, Pss, Swap, SwapPss, Pss lines, and Pss lines of mappings that show
shared pages), or by hand from the fixture; the sums over all rows are
checked against parse_smaps(), the reading of the default report.
"""

import contextlib
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import ps_mem  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "data" / "mappings"
ORACLE = FIXTURES / "oracle.awk"
SMAPS = ["segments.smaps", "segments-child.smaps", "segments-named.smaps", "redis.smaps"]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def read(text: bytes, fast: bool = True) -> ps_mem.MappingCounters:
    """Parsed with a fresh layout cache (the layout reader) or without."""
    return ps_mem.parse_smaps_mappings(text, {} if fast else None)


def outcome(text: bytes, fast: bool):
    try:
        return read(text, fast)
    except ValueError as error:
        return "ValueError", str(error)


# ----------------------------------------------------------------------------
# Per mapping, on real text
# ----------------------------------------------------------------------------

# segments.smaps by oracle.awk, read by hand into row names:
# (private, shared, private_hugetlb, shared_hugetlb, pss, swap, swap_pss,
#  pss_lines, rounded_pss_lines)
FILE = (0, 4, 0, 0, 2, 0, 0, 1, 1)  # each hostile file: one page, mapped by two
SEGMENTS = {
    "[anon]": (12, 4096, 0, 0, 2060, 0, 0, 2, 1),
    "[heap]": (12, 0, 0, 0, 12, 0, 0, 1, 0),
    "[stack]": (4, 12, 0, 0, 10, 0, 0, 1, 1),
    "[vdso]": (0, 4, 0, 0, 0, 0, 0, 1, 1),
    "[vsyscall]": (0, 0, 0, 0, 0, 0, 0, 1, 0),
    "[vvar]": (0, 0, 0, 0, 0, 0, 0, 1, 0),
    "[vvar_vclock]": (0, 0, 0, 0, 0, 0, 0, 1, 0),
    "[memfd:ps_mem-memfd]": (0, 2048, 0, 0, 1024, 0, 0, 1, 1),
    "[anon_shmem]": (0, 5120, 0, 0, 2560, 0, 0, 1, 1),
    "[SysV key=0x50532f7f shmid=23]": (0, 3072, 0, 0, 1536, 0, 0, 1, 1),
    "/dev/shm/ps_mem-segments-12159": (0, 1024, 0, 0, 512, 0, 0, 1, 1),
    "/tmp/mvh/segments": (460, 208, 0, 0, 564, 0, 0, 5, 3),
    # The kernel escapes "\n" alone, as \012, and nothing else.
    "/tmp/mvh/files/gone (deleted)": FILE,
    "/tmp/mvh/files/nl\\012name": FILE,
    "/tmp/mvh/files/lit\\012esc": FILE,  # a real backslash, 0, 1, 2
    "/tmp/mvh/files/tab\tname": FILE,
    "/tmp/mvh/files/cr\rname": FILE,
    "/tmp/mvh/files/back\\slash": FILE,
    "/tmp/mvh/files/sp  ace ": FILE,  # spaces kept, the last one too
    "/tmp/mvh/files/Pss:   99 kB": FILE,
    "/tmp/mvh/files/x\\012Pss: 1000 kB": FILE,  # counts nothing
    "/tmp/mvh/files/bad??": FILE,  # bytes ff fe: not UTF-8
}


@pytest.mark.parametrize("fast", [True, False], ids=["layout", "general"])
def test_rows_of_the_segments_helper(fast):
    found = read(fixture("segments.smaps"), fast)
    assert found.rows == SEGMENTS
    assert found.has_pss and found.has_swap_pss


@pytest.mark.parametrize("fast", [True, False], ids=["layout", "general"])
def test_named_anonymous_memory_keeps_the_kernels_names(fast):
    found = read(fixture("segments-named.smaps"), fast).rows
    assert found["[anon:ps_mem-anon]"] == (0, 4096, 0, 0, 2048, 0, 0, 1, 1)
    assert found["[anon]"] == (12, 0, 0, 0, 12, 0, 0, 1, 0)  # what is left unnamed
    assert found["[anon_shmem:ps_mem-shmem]"] == (0, 5120, 0, 0, 2560, 0, 0, 1, 1)
    assert "[anon_shmem]" not in found


def oracle(name: str) -> dict:
    """oracle.awk's sums for fixture NAME, keyed "inode|name"."""
    if shutil.which("awk") is None:
        pytest.skip("awk is not installed")
    done = subprocess.run(["awk", "-f", str(ORACLE), str(FIXTURES / name)],
                          stdout=subprocess.PIPE, check=True)
    sums = {}
    for line in done.stdout.split(b"\n"):
        if line:
            key, _, numbers = line.rpartition(b"\t")
            sums[key] = tuple(int(number) for number in numbers.split())
    return sums


@pytest.mark.parametrize("name", SMAPS)
def test_each_mapped_object_sums_as_awk_sums_it(name):
    # Rows from awk's keys by hand-written rules, not mapping_name(): for
    # these fixtures the only renamings are these.
    renamed = {b"": "[anon]", b"/dev/zero (deleted)": "[anon_shmem]",
               b"/memfd:ps_mem-memfd (deleted)": "[memfd:ps_mem-memfd]",
               b"/SYSV50532f7f (deleted)": "[SysV key=0x50532f7f shmid=23]"}
    want: dict = {}
    for key, sums in oracle(name).items():
        _, _, path = key.partition(b"|")
        row = renamed.get(path) or path.decode("utf-8", "replace").replace("\ufffd", "?")
        if row in want:
            sums = tuple(a + b for a, b in zip(want[row], sums))
        want[row] = sums
    for fast in (True, False):
        assert read(fixture(name), fast).rows == want


@pytest.mark.parametrize("name", SMAPS)
def test_sums_over_all_rows_are_parse_smaps_sums(name):
    text = fixture(name)
    whole = ps_mem.parse_smaps(text)
    rows = read(text).rows.values()
    total = [sum(row[index] for row in rows) for index in range(9)]
    assert total[:7] == [whole.private, whole.shared, whole.private_hugetlb,
                         whole.shared_hugetlb, total[4], whole.swap, whole.swap_pss]
    assert total[4] + 0.5 * total[7] == whole.pss


def test_the_layout_reader_reads_every_mapping_itself(monkeypatch):
    """Once the layout is learnt (from the first mapping, read both ways),
    the general reader sees none of this kernel's lines (this fails if the
    layout stops answering)."""
    layouts: dict = {}
    for name in SMAPS:
        ps_mem.parse_smaps_mappings(fixture(name), layouts)
    assert len(layouts) == 1  # one kernel, one layout, for the whole scan
    want = {name: read(fixture(name), fast=False) for name in SMAPS}
    seen = []
    general = ps_mem._read_lines

    def spy(lines, raw, state):
        seen.extend(line for line in lines if line)
        general(lines, raw, state)

    monkeypatch.setattr(ps_mem, "_read_lines", spy)
    for name in SMAPS:
        assert ps_mem.parse_smaps_mappings(fixture(name), layouts) == want[name]
    assert seen == []


def test_a_mapping_of_another_layout_is_read_generally():
    # A size too wide for its field (10 digits: over 9 TiB of address
    # space, as sanitizers reserve) moves every later byte of the mapping.
    text = fixture("segments.smaps")
    wide = text.replace(b"\nSize:               5120 kB", b"\nSize:         9999995120 kB", 1)
    assert wide != text
    assert read(wide) == read(wide, fast=False) == read(text)


def test_row_names_are_one_copy_for_the_scan():
    layouts: dict = {}
    first = ps_mem.parse_smaps_mappings(fixture("segments.smaps"), layouts).rows
    second = ps_mem.parse_smaps_mappings(fixture("segments-child.smaps"), layouts).rows
    name = "/tmp/mvh/files/back\\slash"
    assert [row for row in first if row == name][0] is [row for row in second if row == name][0]


# ----------------------------------------------------------------------------
# Row names
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("inode,name,row", [
    (b"0", b"", "[anon]"),
    (b"0", b"[heap]", "[heap]"),
    (b"0", b"[stack]", "[stack]"),
    (b"0", b"[stack:1234]", "[stack]"),  # a thread's, Linux 3.5 to 4.4
    (b"0", b"[stack:12x]", "[stack:12x]"),
    (b"0", b"[vdso]", "[vdso]"),
    (b"0", b"[uprobes]", "[uprobes]"),
    (b"0", b"[anon:malloc]", "[anon:malloc]"),
    (b"77", b"[anon_shmem:pool]", "[anon_shmem:pool]"),
    (b"15", b"/SYSV0000abcd (deleted)", "[SysV key=0x0000abcd shmid=15]"),
    (b"16", b"/SYSV00000000 (deleted)", "[SysV key=0x00000000 shmid=16]"),
    (b"16", b"/SYSV0000abcd", "/SYSV0000abcd"),  # linked: a file of that name
    (b"16", b"/SYSV0000ABCD (deleted)", "/SYSV0000ABCD (deleted)"),  # the kernel's is lowercase
    (b"16", b"/SYSV+000abcd (deleted)", "/SYSV+000abcd (deleted)"),
    (b"16", b"/SYSV00+0abcd (deleted)", "/SYSV00+0abcd (deleted)"),
    (b"x", b"/SYSV0000abcd (deleted)", "/SYSV0000abcd (deleted)"),
    (b"9" * 40, b"/SYSV0000abcd (deleted)", "/SYSV0000abcd (deleted)"),  # no such id
    (b"9", b"/memfd:wayland-shm (deleted)", "[memfd:wayland-shm]"),
    (b"9", b"/memfd: (deleted)", "[memfd:]"),
    (b"9", b"/memfd:a (deleted) (deleted)", "[memfd:a (deleted)]"),
    (b"9", b"/memfd:caf\xc3\xa9\xff (deleted)", "[memfd:caf\u00e9?]"),
    (b"140", b"/dev/zero (deleted)", "[anon_shmem]"),
    (b"141", b"/anon_hugepage (deleted)", "[anon_hugepage]"),
    (b"5", b"/dev/zero", "/dev/zero"),
    (b"5", b"/usr/lib/libc.so.6 (deleted)", "/usr/lib/libc.so.6 (deleted)"),
    (b"5", b"/tmp/caf\xc3\xa9", "/tmp/caf\u00e9"),
    (b"5", b"/tmp/\xe2\x82", "/tmp/??"),  # a cut character: each byte a "?"
    (b"5", b"/tmp/\x1b[2J", "/tmp/\x1b[2J"),  # made printable where printed
])
def test_mapping_name(inode, name, row):
    assert ps_mem.mapping_name(inode, name) == row


# ----------------------------------------------------------------------------
# Hostile, odd and truncated text
# ----------------------------------------------------------------------------

HEADER = b"7f0000000000-7f0000001000 r--p 00000000 fe:00 42                         /x\n"
BODY = fixture("segments.smaps").split(b"\n", 1)[1].split(b"\nVmFlags:", 1)[0] + b"\n"


def mapping(header: bytes = HEADER, body: bytes = BODY, flags: bytes = b"VmFlags: rd\n") -> bytes:
    return header + body + flags


@pytest.mark.parametrize("text,message", [
    (b"Pss: 4 kB\n" + mapping(), "smaps counter before any mapping"),
    (b"7f00-7f01 r--p 00000000\nPss: 4 kB\n", "smaps mapping header without a device"),
    (b"7f00-7f01 r--p 00000000 fe:00\nPss: 4 kB\n", "smaps mapping header without an inode"),
    (mapping() + b"Pss:\n", "smaps counter without a number"),
    (mapping() + b"Pss: \x0b4 kB\n", "smaps counter without a number"),
    (mapping() + b"Pss: 4kB\n", "invalid literal for int() with base 10: b'4kB'"),
    (mapping() + b"Pss: %s kB\n" % (b"1" * 40), "number too long"),
    (mapping() + b"Private_Dirty: %d kB\n" % 2 ** 54, "smaps counter out of range"),
    (mapping(body=BODY.replace(b"Pss:                   4 kB", b"Pss:                  4x kB")),
     "invalid literal for int() with base 10: b'4x'"),
])
def test_text_that_is_not_smaps_is_refused(text, message):
    assert outcome(text, True) == outcome(text, False) == ("ValueError", message)


def test_text_parse_smaps_refuses_is_refused():
    # The same texts the default report's reader refuses: one process is
    # left out of both views alike.
    for text in (mapping() + b"Pss:\n", mapping() + b"Pss: %s kB\n" % (b"1" * 40)):
        with pytest.raises(ValueError):
            ps_mem.parse_smaps(text)


def test_no_name_can_make_a_line():
    # "\r" and the kernel's "\012" end no line: the names count nothing.
    names = [b"/x\rPss: 1000 kB", b"/x\\012Pss: 1000 kB", b"/x\tPss: 1000 kB"]
    text = b"".join(mapping(HEADER.replace(b"/x", name)) for name in names)
    rows = read(text).rows
    assert sorted(rows) == sorted(name.decode() for name in names)
    assert {row[ps_mem._PSS] for row in rows.values()} == {4}
    assert read(text, fast=False) == read(text)


def test_lines_a_kernel_may_add_between_mappings_count_where_they_fall():
    # Lines the layout does not know, between one mapping's VmFlags and the
    # next header, belong to the mapping before, as the general reader reads.
    text = (mapping() + b"Private_Future: 7 kB\nFuture: 1 kB\n"
            + mapping(HEADER.replace(b"/x", b"/y")))
    rows = read(text).rows
    assert rows["/x"][ps_mem._PRIVATE] == 4 + 7
    assert rows["/y"][ps_mem._PRIVATE] == 4
    assert read(text, fast=False) == read(text)


def test_smaps_of_kernels_without_vmflags_or_pss():
    # Linux before 3.8 printed no VmFlags, before 2.6.23 no Pss (nor Swap,
    # SwapPss, hugetlb): the general reader reads what is there.
    text = b"".join(line + b"\n" for line in fixture("segments.smaps").split(b"\n")
                    if line and not line.startswith((b"VmFlags:", b"Pss", b"Swap")))
    found = read(text)
    assert found == read(text, fast=False)
    assert not found.has_pss and not found.has_swap_pss
    assert found.rows["[memfd:ps_mem-memfd]"] == (0, 2048, 0, 0, 0, 0, 0, 0, 0)


def test_every_cut_of_a_text_reads_as_the_general_reader_reads_it():
    text = fixture("segments.smaps")[:6000]  # the first few mappings
    for end in range(len(text) + 1):
        cut = text[:end]
        assert outcome(cut, True) == outcome(cut, False), end


def cut_and_paste():
    """Edits of a real text: a piece replaced by bytes that matter to the
    readers (newlines, digits, spaces, keys, header starts)."""
    text = fixture("segments.smaps")
    alphabet = st.sampled_from([b"\n", b" ", b"\t", b"\r", b"\x0b", b"0", b"7", b"12", b"-",
                                b"Pss:", b"Private_Dirty:", b"Shared_Foo:", b"Swap:",
                                b"SwapPss:", b"VmFlags:", b" kB", b"7f00-7f01 r--p 0 0:0 1 ",
                                b"\nVmFlags: rd\n", b"x"])
    return st.tuples(st.integers(0, len(text)), st.integers(0, 200),
                     st.lists(alphabet, max_size=8)).map(
        lambda edit: text[:edit[0]] + b"".join(edit[2]) + text[edit[0] + edit[1]:])


@settings(max_examples=300, deadline=None)
@given(cut_and_paste())
def test_the_readers_agree_on_any_edit_and_with_parse_smaps(text):
    fast, general = outcome(text, True), outcome(text, False)
    assert fast == general
    if isinstance(general, ps_mem.MappingCounters):
        rows = general.rows.values()
        whole = ps_mem.parse_smaps(text)
        total = [sum(row[index] for row in rows) for index in range(9)]
        assert (total[0], total[1], total[5], total[6]) == (
            whole.private, whole.shared, whole.swap, whole.swap_pss)
        assert total[4] + 0.5 * total[7] == whole.pss


@pytest.mark.parametrize("name", SMAPS)
def test_reading_a_piece_at_a_time_changes_nothing(monkeypatch, name):
    text = fixture(name)
    want = read(text, fast=False)
    monkeypatch.setattr(ps_mem, "_PIECE", 100)  # a cut in nearly every mapping
    assert read(text) == read(text, fast=False) == want


def many_mappings(count: int) -> bytes:
    return b"".join(mapping(HEADER.replace(b"/x", b"/lib%d" % (number % 500)))
                    for number in range(count))


# Each text made by the test that reads it: made at collection, the tens of
# MiB would stay in every worker's memory for the whole run, and make each
# fork of it (the forked readers' tests) slower.
BIG_TEXTS = {
    "many mappings": lambda: many_mappings(20000),  # about 13 MiB of smaps
    "short lines": lambda: b"x\n" * 5000000,  # lines of two bytes: each a bytes object of 35
    "short chunks": lambda: HEADER + b"\nVmFlags:ab" * 1000000,  # chunks of two bytes
    "many counters": lambda: mapping() + b"Pss: 1 kB\n" * 100000,  # a list of these: 4 MiB
    "long name": lambda: HEADER.replace(b"/x", b"/" + b"n" * 1000000) + BODY,
}


@pytest.mark.stress  # tens of MiB parsed under tracemalloc: seconds
@pytest.mark.parametrize("name", list(BIG_TEXTS))
def test_memory_is_a_small_multiple_of_the_text(name):
    text = BIG_TEXTS[name]()
    for layouts in ({}, None):
        tracemalloc.start()
        with contextlib.suppress(ValueError):  # the long name
            ps_mem.parse_smaps_mappings(text, layouts)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 3 * len(text)


def test_a_name_longer_than_the_kernel_writes_is_refused():
    # The kernel's longest: a path of PATH_MAX bytes, each a newline.
    longest = b"/" + b"\\012" * 4095
    found = read(mapping(HEADER.replace(b"/x", longest))).rows
    assert list(found) == [longest.decode()]
    longer = mapping(HEADER.replace(b"/x", b"/" + b"n" * 70000))
    for fast in (True, False):
        assert outcome(longer, fast) == ("ValueError", "smaps mapping header too long")


def test_many_mappings_are_summed():
    rows = read(many_mappings(20000)).rows
    assert len(rows) == 500
    assert rows["/lib7"] == (4 * 40, 0, 0, 0, 4 * 40, 0, 0, 40, 0)


def test_the_caches_a_scan_keeps_are_bounded(monkeypatch):
    monkeypatch.setattr(ps_mem, "_MAX_CACHED_NAMES", 10)
    monkeypatch.setattr(ps_mem, "_MAX_CACHED", 3)
    layouts: dict = {}
    text = many_mappings(100)
    assert ps_mem.parse_smaps_mappings(text, layouts) == read(text, fast=False)
    (layout,) = layouts.values()
    assert len(layout.names) == 10 and len(layout.cache) <= 3


def learnt() -> dict:
    layouts: dict = {}
    ps_mem.parse_smaps_mappings(fixture("segments.smaps"), layouts)
    return layouts


def test_a_field_of_the_layout_that_is_not_one_number_is_read_generally():
    # The same width as the kernel's field, but two numbers: the general
    # reader takes the first, as parse_smaps() does.
    odd = BODY.replace(b"Pss:                   4 kB", b"Pss:                 1 2 kB")
    assert odd != BODY
    text = mapping() + mapping(HEADER.replace(b"/x", b"/y"), odd)
    found = ps_mem.parse_smaps_mappings(text, learnt())
    assert found == read(text, fast=False)
    assert found.rows["/y"][ps_mem._PSS] == 1


def test_lines_of_the_layout_before_any_header_are_refused():
    text = b"\n" + BODY + b"VmFlags: rd\n"
    with pytest.raises(ValueError, match="smaps counter before any mapping"):
        ps_mem.parse_smaps_mappings(text, learnt())
    assert outcome(text, False) == ("ValueError", "smaps counter before any mapping")
