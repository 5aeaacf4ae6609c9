"""Hostile versions of real kernel text, for the tests of what ps_mem
does with files it cannot parse (hypothesis strategies).

    SAMPLES["status"]     real text of each file ps_mem reads, to garble
    garbled(base)         BASE cut short, flipped, repeated, renumbered,
                          oversized, emptied or replaced by noise
"""

import re
from typing import Dict

from hypothesis import strategies as st

from tests.harness import data

CGROUP = (b"12:memory:/user.slice/user-1000.slice\n11:cpu,cpuacct:/user.slice\n"
          b"0::/user.slice/user-1000.slice/session-3.scope\n")
# Real text of each file, to garble.
SAMPLES: Dict[str, bytes] = {
    "smaps_rollup": data("sleep.smaps_rollup"),
    "smaps": data("sleep.smaps")[:6000],
    "status": data("sleep.status"),
    "statm": data("sleep.statm"),
    "cmdline": data("bash.cmdline"),
    "cgroup": CGROUP,
}

NOISE = st.binary(max_size=40) | st.sampled_from([
    b"\0", b"\r", b"\n", b"\r\n", b":", b" ", b"\t", b"-", b"kB", b"\xff\xfe", b"\xc3",
    b"Pss:", b"Private_Dirty:", b"Shared_Clean:", b"SwapPss:", b"Swap:", b"PPid:", b"Uid:",
    b"Name:\t", b"Private_Hugetlb:", b"Shared_Hugetlb:", b"Private:", b"Shared:",
    b"-5", b"+5", b"1_000", b"0x10", b"1e5", b"nan", b"\xd9\xa3", b"\xef\xbc\x91",
    b" " * 300, b"0" * 30])
NUMBER = st.sampled_from([b"", b"-1", b"+7", b"1_0", b"0x1f", b"1.5", b"nan", b"\xd9\xa3",
                          b"9" * 25, b"9" * 5000]) | st.integers(0, 2 ** 70).map(
    lambda n: str(n).encode())


@st.composite
def garbled(draw, base: bytes) -> bytes:
    """BASE cut short, with bytes changed, lines dropped or repeated,
    numbers replaced, made huge, emptied, or replaced by noise."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "lines", "number",
                                 "oversized", "empty", "noise", "mixed"]))
    text = base
    if kind in ("truncate", "mixed"):
        text = text[:draw(st.integers(0, len(text)))]
    if kind in ("flip", "mixed"):
        for _ in range(draw(st.integers(1, 8))):
            if text:
                at = draw(st.integers(0, len(text) - 1))
                text = text[:at] + bytes([draw(st.integers(0, 255))]) + text[at + 1:]
    if kind in ("insert", "mixed"):
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(NOISE) + text[at:]
    if kind in ("lines", "mixed"):
        lines = text.split(b"\n")
        order = draw(st.lists(st.integers(0, max(0, len(lines) - 1)), max_size=len(lines) + 3))
        text = b"\n".join(lines[index] for index in order)
    if kind == "number":
        numbers = list(re.finditer(rb"\d+", text))
        for _ in range(draw(st.integers(1, 3))):
            if numbers:
                match = numbers[draw(st.integers(0, len(numbers) - 1))]
                text = text[:match.start()] + draw(NUMBER) + text[match.end():]
                numbers = list(re.finditer(rb"\d+", text))
    if kind == "oversized":
        text = text * draw(st.integers(50, 400)) + draw(NOISE) * draw(st.integers(0, 2000))
    if kind == "empty":
        text = b""
    if kind == "noise":
        text = draw(st.binary(max_size=3000))
    return text
