"""Stage: parsers.  ps_mem's pure parsers, text in, values out: smaps and
smaps_rollup (the general parser, the reading without a regex, the reading
by layout), statm, status, stat, cmdline, cgroup, the kernel release; and
any malformed text they may be given (garbled real text, hypothesis: each
parser returns, or raises only what its caller turns into "skip this
process").  The table's formatters are test_output.py's.

Inputs are real kernel text captured from a Linux 6.18 x86_64 machine into
tests/data/ (a sleep, a bash and the static clone_vm helper), plus odd and
truncated text.  Expected values were computed apart from ps_mem, with the
awk one-liner

    awk '/^Private_Hugetlb:/{ph+=$2;next} /^Shared_Hugetlb:/{sh+=$2;next}
         /^Private/{p+=$2} /^Shared/{s+=$2} /^Pss:/{pss+=$2;n++}
         /^Swap:/{sw+=$2} /^SwapPss:/{swp+=$2;m++} END{print p,s,ph,sh,pss,n,sw,swp,m}'

(3.14's rules: any key starting Private or Shared but the hugetlb ones;
Pss exactly; 0.5 KiB added per Pss line), or by reading the file.  Two
tests read this kernel's own /proc/self/smaps_rollup (skipped without one).
"""

import contextlib
import os
import re
from pathlib import Path
from typing import Callable, Dict, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.garbling import SAMPLES, garbled
from tests.harness import data, ps_mem


def counters(text: bytes) -> dict:
    """The fields these tests check, by name (new fields do not matter)."""
    found = ps_mem.parse_smaps(text)
    return {field: getattr(found, field) for field in (
        "private", "shared", "private_hugetlb", "shared_hugetlb", "pss", "swap", "swap_pss",
        "has_pss", "has_swap_pss")}


def expected(private=0, shared=0, private_hugetlb=0, shared_hugetlb=0, pss=0.0, swap=0,
             swap_pss=0, has_pss=False, has_swap_pss=False) -> dict:
    return dict(private=private, shared=shared, private_hugetlb=private_hugetlb,
                shared_hugetlb=shared_hugetlb, pss=pss, swap=swap, swap_pss=swap_pss,
                has_pss=has_pss, has_swap_pss=has_swap_pss)


# ----------------------------------------------------------------------------
# parse_smaps on real text
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name,want", [
    # awk: 152 1636 0 0 181 1 0 0 1
    ("sleep.smaps_rollup", expected(152, 1636, pss=181.5, has_pss=True, has_swap_pss=True)),
    # The same sleep's full smaps, 37 mappings: awk 152 1636 0 0 171 37 0 0 37.
    # Each mapping's Pss is truncated on its own (171 against the rollup's
    # 181), which the 0.5 KiB per line makes up for: 171 + 18.5.
    ("sleep.smaps", expected(152, 1636, pss=189.5, has_pss=True, has_swap_pss=True)),
    # 43 mappings: awk 268 2836 0 0 436 43 0 0 43
    ("bash.smaps", expected(268, 2836, pss=457.5, has_pss=True, has_swap_pss=True)),
    # A static binary: 8-digit addresses from 00400000, and the 16-digit
    # [vsyscall] one.  14 mappings: awk 4784 4 0 0 4784 14 0 0 14
    ("clone_vm.smaps", expected(4784, 4, pss=4791.0, has_pss=True, has_swap_pss=True)),
    # awk 4784 4 0 0 4784 1 0 0 1
    ("clone_vm.smaps_rollup", expected(4784, 4, pss=4784.5, has_pss=True, has_swap_pss=True)),
])
def test_parse_smaps_real(name, want):
    assert counters(data(name)) == want


def test_real_smaps_has_the_address_widths_it_is_meant_to():
    starts = re.findall(rb"^([0-9a-f]+)-[0-9a-f]+ ", data("clone_vm.smaps"), re.M)
    assert len(starts) == 14
    assert {len(start) for start in starts} == {8, 12, 16}, starts


def test_parse_smaps_every_truncation_of_real_text():
    """A file cut anywhere (a process that exits mid-read) parses to no more
    than the whole, or is refused with ValueError: never another error."""
    text = data("sleep.smaps_rollup")
    whole = ps_mem.parse_smaps(text)
    for end in range(len(text)):
        try:
            part = ps_mem.parse_smaps(text[:end])
        except ValueError:
            continue
        assert part.private <= whole.private and part.shared <= whole.shared
        assert part.pss <= whole.pss


# ----------------------------------------------------------------------------
# smaps_rollup by its layout, the one fast path: it answers for every rollup
# the kernel makes, and always as the general reading does
# ----------------------------------------------------------------------------


def fast(text: bytes, layouts=None):
    """The fast path's answer for TEXT (None: declined), learning into
    LAYOUTS (a fresh dict unless given)."""
    return ps_mem._rollup_by_layout(text, {} if layouts is None else layouts)


def general(text: bytes):
    return ps_mem._smaps_by_lines(text)


def learnt(text: bytes) -> dict:
    """The layouts parse_smaps() keeps after reading TEXT."""
    layouts = {}
    with contextlib.suppress(ValueError):  # refused: what it learnt is still kept
        ps_mem.parse_smaps(text, layouts)
    return layouts


def read_both_ways(text: bytes, layouts: dict):
    """(parse_smaps() with LAYOUTS, without): counters or ValueError."""
    answers = []
    for kept in (dict(layouts), None):
        try:
            answers.append(ps_mem.parse_smaps(text, kept))
        except ValueError:
            answers.append(ValueError)
    return answers


def renumbered(text: bytes, numbers) -> bytes:
    """TEXT with its numbers replaced as the kernel writes them: each
    right-aligned in its old width (8 digits), wider where it has more."""
    numbers = iter(numbers)

    def replace(match):
        number = str(next(numbers)).encode()
        return number.rjust(len(match.group(0))) if len(number) < len(match.group(0)) else number
    return re.sub(rb"(?<=:)[ ]*[0-9]+(?= kB)", replace, text)


def this_kernels_rollup() -> bytes:
    try:
        with open("/proc/self/smaps_rollup", "rb") as handle:
            return handle.read()
    except OSError:
        pytest.skip("no /proc/self/smaps_rollup here")


def kernel_rollups():
    """Rollups a kernel made: tests/data's, and every captured tree's."""
    texts = [data("sleep.smaps_rollup"), data("clone_vm.smaps_rollup")]
    for path in sorted(Path(__file__).parent.glob("trees_captured/*/*/smaps_rollup")):
        texts.append(path.read_bytes())
    return texts


KERNEL_ROLLUPS = kernel_rollups()


@pytest.mark.parametrize("index", range(len(KERNEL_ROLLUPS)))
def test_fast_path_answers_for_kernel_rollups(index):
    text = KERNEL_ROLLUPS[index]
    assert text.count(b"\n") > 10, "not a rollup"
    assert fast(text) is not None, text
    assert fast(text) == general(text) == ps_mem.parse_smaps(text, {})


def test_fast_path_answers_for_this_kernels_rollups():
    texts = [this_kernels_rollup()]
    for entry in os.listdir("/proc"):
        if entry.isdigit() and len(texts) < 200:
            try:
                with open("/proc/%s/smaps_rollup" % entry, "rb") as handle:
                    text = handle.read()
            except OSError:
                continue
            if text:  # a kernel thread's is empty
                texts.append(text)
    layouts = {}
    for text in texts:
        assert fast(text, layouts) == general(text), text
        assert fast(text, layouts) is not None, text
    assert 1 <= len(layouts) <= 3  # a kernel makes few layouts


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(KERNEL_ROLLUPS),
       st.lists(st.integers(0, 10 ** 12), min_size=30, max_size=30), st.booleans())
def test_fast_path_answers_for_any_numbers_the_kernel_writes(text, numbers, known):
    """Any numbers, written as the kernel writes them: the fast path reads
    them (a wider number makes another layout, learnt as it comes), and
    reads what the general reading reads.  A fast path that stopped
    answering fails here."""
    layouts = learnt(text) if known else {}
    other = renumbered(text, numbers)
    answer = fast(other, layouts)
    assert answer is not None, other
    assert answer == general(other)
    assert ps_mem.parse_smaps(other, layouts) == answer


@pytest.mark.parametrize("text", [
    data("sleep.smaps"),  # many mappings
    data("sleep.smaps").split(b"\nVmFlags")[0] + b"\n",  # one mapping: Pss once
    b"",  # a kernel thread's
    b"Pss: 3 kB\n",  # no first line
    b"x [rollup]\nPss: 3 kB\nFuture: yes\n",  # a line of another shape
    b"x [rollup]\nPss: 3 kB\nRss 1: 4 kB\n",  # a key the regex would not see as one
    b"x [rollup]\nPss: 3 kB\nPrivate1: 4 kB\n",  # a digit in a key: free in a layout
    b"x [rollup]\nPss: 3 kB",  # no newline at the end
    b"x [rollup]\nPss: 3 kB\nSwap: 4 MB\n",  # another unit: its space is free in a layout
    b"x [rollup]\nPss: " + b"1" * 40 + b" kB\n",  # a number no kernel writes
    b"x [rollup]\nPss: \r12 kB\n",  # whitespace int() skips and the regex does not
    b"x [rollup]\nPss: \x0b12 kB\n",
    b"x [rollup]\nPss:    12 kB\nRss:\x0c 3 kB\n",
])
def test_fast_path_declines_other_shapes(text):
    assert fast(text) is None
    assert learnt(text) == {}
    assert read_both_ways(text, {})[0] == read_both_ways(text, {})[1]


@pytest.mark.parametrize("text, pss", [
    (b"x [rollup]\nPss:\t3 kB\n", 3),  # tab-separated: [ \t]* in the regex
    (b"x [rollup]\nPss: +3 kB\n", 3),  # the token the regex takes is "+3"
    (b"x [rollup]\nPss:  12  kB\n", 12),
    (b"x [rollup]\nPss:   -7 kB\n", -7),
])
def test_fast_path_reads_what_the_regex_reads(text, pss):
    assert fast(text) == general(text)
    assert general(text).pss == pss + 0.5


def test_layouts_a_scan_keeps_are_bounded():
    text = data("sleep.smaps_rollup")
    layouts = {}
    for width in range(1, 2 * ps_mem._MAX_LAYOUTS):
        # A wider first number: another layout each time.
        ps_mem.parse_smaps(renumbered(text, [10 ** (8 + width)] + [1] * 30), layouts)
    assert len(layouts) == ps_mem._MAX_LAYOUTS


@pytest.mark.parametrize("change, why", [
    ((b"Pss:       ", b"Pss:    1 2"), "two numbers in one field"),
    ((b"Pss:       ", b"Pss:  12345"), "a number running into the next"),
    ((b" kB\nPss_Dirty", b"9kB\nPss_Dirty"), "a number running into its unit"),
])
def test_layout_declines_what_it_cannot_read_as_the_regex(change, why):
    text = data("sleep.smaps_rollup")
    layouts = learnt(text)
    changed = text.replace(*change, 1)
    assert changed != text and len(changed) == len(text), why
    assert fast(changed, layouts) is None, why
    with_layout, without = read_both_ways(changed, layouts)
    assert with_layout == without, why


def test_layout_declines_a_first_line_that_counts():
    text = data("sleep.smaps_rollup")
    layouts = learnt(text)
    start = text.index(b"\n")
    changed = b"Pss:" + b" " * (start - 4) + text[start:]
    assert fast(changed, layouts) is None
    assert read_both_ways(changed, layouts)[0] == read_both_ways(changed, layouts)[1]


def test_layout_refuses_a_number_past_any_memory():
    text = renumbered(data("sleep.smaps_rollup"), [7] * 30)
    layouts = learnt(text)
    # Pss's field is 17 wide: room for a number no kernel counts to.
    huge = renumbered(text, [7, 10 ** 16] + [7] * 30)
    assert len(huge) == len(text)
    assert fast(huge, layouts) is None
    assert read_both_ways(huge, layouts) == [ValueError, ValueError]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(data("sleep.smaps_rollup").split()
                    + [b"Pss:", b"Private_X:", b"Swap", b"kB", b"7", b"-1", b"x"]),
    st.sampled_from([b" ", b"\n", b"\t", b"  ", b"", b"\r"])), max_size=50))
def test_fast_path_agrees_on_any_arrangement(pieces):
    """However rollup words are strung together, the fast path declines, or
    finds what the regex finds."""
    text = b"".join(word + separator for word, separator in pieces)
    answer = fast(text)
    if answer is not None:
        assert answer == general(text)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_layout_agrees_on_altered_real_text(draw):
    """Rollups of a known layout with bytes changed (mostly digits and
    spaces, which keep the layout): read by it as without it, or declined."""
    text = bytearray(draw.draw(st.sampled_from(KERNEL_ROLLUPS)))
    layouts = learnt(bytes(text))
    for _ in range(draw.draw(st.integers(1, 6))):
        index = draw.draw(st.integers(0, len(text) - 1))
        text[index] = draw.draw(st.sampled_from(b"0123456789      \t\n:kBPS_-+\r"))
    with_layout, without = read_both_ways(bytes(text), layouts)
    assert with_layout == without


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_layout_agrees_where_digits_and_spaces_move(draw):
    """Digits and spaces changed only where the layout leaves them free, and
    the first line's first byte."""
    text = bytearray(data("sleep.smaps_rollup"))
    layouts = learnt(bytes(text))
    first_line = text.index(b"\n")
    free = [index for index, byte in enumerate(text)
            if byte in b"0123456789 " and index > first_line]
    for _ in range(draw.draw(st.integers(1, 12))):
        text[draw.draw(st.sampled_from(free))] = draw.draw(st.sampled_from(b"0123456789 "))
    if draw.draw(st.booleans()):
        text[0] = draw.draw(st.sampled_from(b"PS0a \t:"))
    with_layout, without = read_both_ways(bytes(text), layouts)
    assert with_layout == without


# ----------------------------------------------------------------------------
# parse_smaps on odd text
# ----------------------------------------------------------------------------


def test_parse_smaps_empty():
    assert counters(b"") == expected()


def test_parse_smaps_headers_and_unknown_lines_only():
    text = (b"00400000-00401000 r--p 00000000 fe:00 5317451   /bin/x\n"
            b"Rss:                   4 kB\nVmFlags: rd mr mw me\nTHPeligible:    0\n"
            b"FutureCounter:        99 kB\n")
    assert counters(text) == expected()


def test_parse_smaps_pss_parts_are_not_pss():
    text = (b"Pss:                  10 kB\nPss_Dirty:             4 kB\n"
            b"Pss_Anon:              4 kB\nPss_File:              6 kB\n"
            b"Pss_Shmem:             0 kB\n")
    assert counters(text) == expected(pss=10.5, has_pss=True)


def test_parse_smaps_new_private_and_shared_keys_count_by_prefix():
    # 3.14 takes any key starting "Private" or "Shared" into its sum.
    text = (b"Private_Clean: 1 kB\nPrivate_Dirty: 2 kB\nPrivate_Future: 4 kB\n"
            b"Shared_Clean: 8 kB\nShared_Dirty: 16 kB\nShared_Future: 32 kB\n")
    assert counters(text) == expected(private=7, shared=56)


def test_parse_smaps_hugetlb_kept_apart():
    text = (b"Private_Dirty:         4 kB\nPrivate_Hugetlb:    2048 kB\n"
            b"Shared_Clean:          8 kB\nShared_Hugetlb:     4096 kB\n"
            b"Pss:                   6 kB\n")
    assert counters(text) == expected(private=4, shared=8, private_hugetlb=2048,
                                      shared_hugetlb=4096, pss=6.5, has_pss=True)


def test_parse_smaps_swap_and_swap_pss():
    text = b"Swap:       100 kB\nSwapPss:     40 kB\nSwap:        20 kB\n"
    assert counters(text) == expected(swap=120, swap_pss=40, has_swap_pss=True)


def test_parse_smaps_swap_without_swap_pss():
    # Kernels before 4.3: Swap only, and swap cannot be totalled.
    assert counters(b"Swap:  12 kB\n") == expected(swap=12)


def test_parse_smaps_without_pss():
    # Kernels before 2.6.25 have smaps but no Pss line.
    text = b"Rss: 30 kB\nShared_Clean: 20 kB\nShared_Dirty: 0 kB\nPrivate_Clean: 4 kB\n" \
           b"Private_Dirty: 6 kB\n"
    assert counters(text) == expected(private=10, shared=20)


def test_parse_smaps_tab_separated_value():
    assert counters(b"Pss:\t5 kB\n") == expected(pss=5.5, has_pss=True)


def test_parse_smaps_no_newline_at_end():
    assert counters(b"Pss:   7 kB") == expected(pss=7.5, has_pss=True)
    assert counters(b"Pss:   7") == expected(pss=7.5, has_pss=True)


@pytest.mark.parametrize("text", [
    b"Pss:\n",  # cut after the key
    b"Pss:",
    b"Pss:      \n",
    b"Private_Dirty: kB\n",
    b"Shared_Clean: abc kB\n",
    b"SwapPss: -\n",
])
def test_parse_smaps_counted_line_without_number(text):
    with pytest.raises(ValueError):
        ps_mem.parse_smaps(text)


# ----------------------------------------------------------------------------
# statm, status, cmdline
# ----------------------------------------------------------------------------


def test_parse_statm_real():
    # sleep.statm is "730 447 419 5 0 89 0": resident 447, shared 419 pages.
    assert ps_mem.parse_statm(data("sleep.statm")) == (447, 419)


@pytest.mark.parametrize("text", [b"", b"\n", b"730 447", b"730 x 419 5 0 89 0\n"])
def test_parse_statm_odd(text):
    # read_memory() turns either error into "skip this process".
    with pytest.raises((ValueError, IndexError)):
        ps_mem.parse_statm(text)


@pytest.mark.parametrize("name,want", [
    ("sleep.status", ("sleep", 9325)),  # lines 1 and 7 of the file
    ("bash.status", ("bash", 9325)),
])
def test_parse_status_real(name, want):
    assert ps_mem.parse_status(data(name)) == want


def test_parse_status_odd():
    # No PPid in ten lines: 0, no parent to consult.  No PPid in a status
    # shorter than that: None, for 3.14 runs off its end (IndexError, a
    # LookupError, so it leaves the process out where it needs the parent).
    ten_lines = b"Name:\tfoo\n" + b"Other:\t0\n" * 9
    assert ps_mem.parse_status(ten_lines) == ("foo", 0)
    assert ps_mem.parse_status(b"Name:\tfoo\nUmask:\t0022\n") == ("foo", None)
    assert ps_mem.parse_status(b"Name:\ta\tb\nPPid:\t7\n") == ("a\tb", 7)
    # Bytes that are not UTF-8 are dropped (from a prctl name, say).
    assert ps_mem.parse_status(b"Name:\tab\xffc\nPPid:\t1\n") == ("abc", 1)
    assert ps_mem.parse_status("Name:\tпример\nPPid:\t1\n".encode()) == ("пример", 1)
    # PPid is only looked for in the first ten lines, as 3.14 does.
    late = b"Name:\tx\n" + b"Other:\t0\n" * 10 + b"PPid:\t5\n"
    assert ps_mem.parse_status(late) == ("x", 0)
    # A status cut after the name line's last byte loses that byte, as in
    # 3.14, which always drops the line's last character (its newline).
    assert ps_mem.parse_status(b"Name:\tfoo") == ("fo", None)


def test_parse_status_empty():
    with pytest.raises(ValueError):
        ps_mem.parse_status(b"")


def test_parse_status_bad_ppid():
    with pytest.raises(ValueError):
        ps_mem.parse_status(b"Name:\tx\nPPid:\tnope\n")


def test_parse_stat_ppid_of_a_hostile_name():
    # A process renamed (prctl) to "x) S 1 (y\n z": the parenthesis that
    # ends the name is the last one; status says the same parent.
    stat = data("renamed.stat")
    assert b"(x) S 1 (y\n z) S 23170 " in stat
    assert ps_mem.parse_stat_ppid(stat) == 23170
    assert ps_mem.parse_status(data("renamed.status"))[1] == 23170


@pytest.mark.parametrize("text", [b"", b"7 (x)", b"7 (x) S", b"7 (x) S nope 1\n", b"7 x S 1 2\n"])
def test_parse_stat_ppid_odd(text):
    with pytest.raises(ValueError):
        ps_mem.parse_stat_ppid(text)


def test_parse_cmdline_real():
    assert ps_mem.parse_cmdline(data("sleep.cmdline")) == ["/usr/bin/sleep", "600"]
    args = ps_mem.parse_cmdline(data("bash.cmdline"))
    assert args[:5] == ["/usr/bin/bash", "--norc", "--noprofile", "-c",
                        'exec 3<>"$1"; read -r -u 3 line']
    assert len(args) == 7 and args[5] == "bash" and args[6].endswith("/fifo")


@pytest.mark.parametrize("text,want", [
    (b"", [""]),
    (b"\0", [""]),
    (b"a\0\0\0", ["a"]),  # trailing empty arguments dropped
    (b"a\0\0b\0", ["a", "", "b"]),  # inner ones kept
    (b"\xffab\0c\0", ["ab", "c"]),  # bytes that are not UTF-8 dropped
    (b"a\r\nb\rc\0", ["a\nb\nc"]),  # read as text: \r and \r\n are newlines
    (b"no-nul-at-end", ["no-nul-at-end"]),  # a process that rewrote its argv
])
def test_parse_cmdline_odd(text, want):
    assert ps_mem.parse_cmdline(text) == want


# ----------------------------------------------------------------------------
# kernel_version
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("release,want", [
    (data("osrelease"), (6, 18, 44)),  # "6.18.44-fc-v782\n"
    (b"2.6.9-5.EL\n", (2, 6, 9)),
    (b"2.6.9-5.ELsmp", (2, 6, 9)),
    (b"6.1.0-13-amd64\n", (6, 1, 0)),
    (b"5.10\n", (5, 10, 0)),
    (b"4.19.0_rc1\n", (4, 19, 0)),
    (b"2.4.21-4.ELsmp\n", (2, 4, 21)),
    (b"3.10.0-1160.el7.x86_64\n", (3, 10, 0)),
    (b"4.14.rc5\n", (4, 14, 0)),  # not a number after cutting: 0
    # 3.14 fails with IndexError on a bare major number; ours reads 3.0.0.
    (b"3\n", (3, 0, 0)),
])
def test_kernel_version(release, want):
    assert ps_mem.kernel_version(release) == want


@pytest.mark.parametrize("text, expected", [
    (b"0::/system.slice/nginx.service\n", "/system.slice/nginx.service"),
    (b"12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n", "memory:/docker/abc"),
    # hybrid: the memory controller's hierarchy accounts memory, marked v1
    (b"4:cpu,memory:/lxc/x\n0::/init.scope\n", "memory:/lxc/x"),
    (b"4:memory:/process_api/4630\n1:name=systemd:/\n0::/\n", "memory:/process_api/4630"),
    (b"1:name=systemd:/\n0::/\n", "/"),
    (b"", "-"),
    (b"garbage\n", "-"),
])
def test_parse_cgroup(text, expected):
    assert ps_mem.parse_cgroup(text) == expected


# ----------------------------------------------------------------------------
# The parsers
# ----------------------------------------------------------------------------


# What each parser may raise: what its caller in collect() turns into
# ProcessGone (read_memory: ValueError for smaps, ValueError and IndexError
# for statm; Namer: ValueError for status and Uid; nothing for cmdline and
# cgroup, which cannot fail).
PARSERS: Dict[str, Tuple[Callable, Tuple[type, ...]]] = {
    "smaps_rollup": (ps_mem.parse_smaps, (ValueError,)),
    "smaps": (ps_mem.parse_smaps, (ValueError,)),
    "statm": (ps_mem.parse_statm, (ValueError,)),
    "status": (ps_mem.parse_status, (ValueError,)),
    "uid": (ps_mem.parse_uid, (ValueError,)),
    "cmdline": (ps_mem.parse_cmdline, ()),
    "cgroup": (ps_mem.parse_cgroup, ()),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_parser_raises_only_what_collect_catches(name, data):
    parse, allowed = PARSERS[name]
    text = data.draw(garbled(SAMPLES["status" if name == "uid" else name]), label="text")
    try:
        value = parse(text)
    except allowed:
        return
    if parse is ps_mem.parse_smaps:
        # What read_memory computes from it must be numbers, not errors.
        value.pss - value.private
    elif parse is ps_mem.parse_status:
        # PPid None: a status too short to hold it (3.14 then skips the
        # process where it needs the parent).
        assert isinstance(value[0], str) and (value[1] is None or isinstance(value[1], int))
    elif parse is ps_mem.parse_cmdline:
        assert value and all(isinstance(arg, str) for arg in value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_kernel_version_never_fails(release):
    major, minor, patch = ps_mem.kernel_version(release)
    assert all(isinstance(part, int) for part in (major, minor, patch))
