"""The parsers --system adds: /proc/meminfo, /proc/sysvipc/shm, the mount
tables, zram's mm_stat, namespace links, the Pss_Anon/Pss_File/Pss_Shmem
split of smaps_rollup, and the ps_mem-system.json a tree or capture keeps.

Each against real kernel text (tests/data/system/, SOURCES.md there says
where each comes from, and this machine's /proc), with expected values
written from the text, and against text no kernel writes.
"""

import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import ps_mem
from tests.system_trees import DATA, KIB, MIB

TESTS = DATA.parent


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


# ----------------------------------------------------------------------------
# meminfo
# ----------------------------------------------------------------------------


def test_meminfo_of_this_generation():
    values = ps_mem.parse_meminfo(fixture("meminfo-6.18"))
    assert values["MemTotal"] == 24683664
    assert values["Active(anon)"] == 1548
    assert values["SecPageTables"] == 0 and values["Balloon"] == 0
    # HugePages_* are counts, Hugepagesize is KiB: both kept as printed.
    assert values["HugePages_Total"] == 0 and values["Hugepagesize"] == 2048
    assert values["VmallocTotal"] == 34359738367
    assert len(values) == 54


def test_meminfo_2_4_skips_the_table_at_the_top():
    assert ps_mem.parse_meminfo(fixture("meminfo-2.4")) == {
        "MemTotal": 255576, "MemFree": 8264, "MemShared": 0, "Buffers": 12608,
        "Cached": 154748, "SwapCached": 1540, "Active": 83476, "Inactive": 134252,
        "HighTotal": 0, "HighFree": 0, "LowTotal": 255576, "LowFree": 8264,
        "SwapTotal": 522072, "SwapFree": 520520,
    }


def test_meminfo_2_6_18_has_the_fields_of_its_time():
    values = ps_mem.parse_meminfo(fixture("meminfo-2.6.18"))
    assert values["HugePages_Rsvd"] == 0 and "HugePages_Surp" not in values
    assert values["Slab"] == 94412 and "SReclaimable" not in values
    assert "Shmem" not in values and "KernelStack" not in values


@pytest.mark.live
@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="no /proc/meminfo")
def test_meminfo_of_this_machine_agrees_with_sysconf():
    # sysinfo's totalram, which sysconf reads, is MemTotal.
    with open("/proc/meminfo", "rb") as handle:
        values = ps_mem.parse_meminfo(handle.read())
    assert values["MemTotal"] * KIB == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("text, expected", [
    (b"MemTotal: -5 kB\nMemFree: 3 kB\n", {"MemFree": 3}),
    (b"MemTotal: 99999999999999999999 kB\n", {}),
    (b"MemTotal: 9007199254740993 kB\n", {}),  # 2**53 + 1
    (b"MemTotal: 12 MB\nCached: 12\n", {}),  # no unit but kB; no count but HugePages_
    (b"MemTotal: 1 kB\nMemTotal: 2 kB\n", {"MemTotal": 1}),  # the first counts
    (b"MemTotal: +5 kB\nMemFree: 1_0 kB\nBuffers: \xd9\xa3 kB\n", {}),
    (b"HugePages_Total: 4\nHugePages_Free: 4 kB\nHugepagesize: 2048\n",
     {"HugePages_Total": 4, "HugePages_Free": 4}),
    (b"\x00\xff: 1 kB\nMem\x1bTotal: 1 kB\n: 1 kB\nMemFree 1 kB\n", {}),
    (b"", {}),
])
def test_meminfo_lines_no_kernel_writes_are_skipped(text, expected):
    assert ps_mem.parse_meminfo(text) == expected


def test_meminfo_is_read_a_bounded_number_of_lines():
    text = b"X: 1 kB\n" * 2000 + b"MemTotal: 5 kB\n"
    assert "MemTotal" not in ps_mem.parse_meminfo(text)


# ----------------------------------------------------------------------------
# sysvipc/shm
# ----------------------------------------------------------------------------


def test_sysvipc_with_rss_and_swap():
    assert ps_mem.parse_sysvipc_shm(fixture("sysvipc-shm-6.18")) == [
        ps_mem.ShmSegment(5432001, 7, 8 * MIB, 14451, 1, 6 * MIB, 0),
        ps_mem.ShmSegment(0, 8, 4 * MIB, 14451, 0, 4 * MIB, 0),
    ]


def test_sysvipc_before_3_10_has_no_rss():
    assert ps_mem.parse_sysvipc_shm(fixture("sysvipc-shm-2.6")) == [
        ps_mem.ShmSegment(0, 131072, MIB, 2720, 1, None, None)]


def test_sysvipc_without_a_header_is_read_in_the_kernels_order():
    row = b"  -1   3   600   4096 10 10   0  0 0 0 0 1 1 1   8192 4096\n"
    assert ps_mem.parse_sysvipc_shm(row) == [ps_mem.ShmSegment(-1, 3, 4096, 10, 0, 8192, 4096)]


@pytest.mark.parametrize("text", [
    b"",
    b"       key      shmid\n 1 2\n",  # a header without the columns needed
    b"key shmid perms size cpid lpid nattch\n1 2 600 -5 1 1 0\n",
    b"key shmid perms size cpid lpid nattch\n1 2 600 4096 1\n",  # a row cut short
    b"key shmid perms size cpid lpid nattch\nx 2 600 4096 1 1 0\n",
    b"key shmid perms size cpid lpid nattch rss swap\n1 2 600 4096 1 1 0 lots 0\n",
    b"\xff\x00\n\n\n",
])
def test_sysvipc_rows_no_kernel_writes_are_skipped(text):
    assert ps_mem.parse_sysvipc_shm(text) == []


def test_sysvipc_rss_past_any_memory_is_refused():
    header = fixture("sysvipc-shm-6.18").split(b"\n")[0] + b"\n"
    row = b"1 2 600 4096 1 1 0 0 0 0 0 0 0 0 %d 0\n" % (2 ** 70)
    assert ps_mem.parse_sysvipc_shm(header + row) == []


@pytest.mark.live
@pytest.mark.skipif(not os.path.exists("/proc/sysvipc/shm"), reason="no SysV IPC here")
def test_sysvipc_of_this_machine_parses_every_row():
    with open("/proc/sysvipc/shm", "rb") as handle:
        text = handle.read()
    rows = [line for line in text.split(b"\n")[1:] if line.strip()]
    segments = ps_mem.parse_sysvipc_shm(text)
    assert len(segments) == len(rows)
    for segment, row in zip(segments, rows):
        fields = row.split()
        assert (segment.key, segment.shmid, segment.size_bytes) == (
            int(fields[0]), int(fields[1]), int(fields[3]))
        assert segment.rss_bytes == int(fields[14])


# ----------------------------------------------------------------------------
# Mount tables, zram, namespaces
# ----------------------------------------------------------------------------


def test_mountinfo_decodes_escapes_and_keeps_devices():
    mounts = ps_mem.parse_mountinfo(fixture("mountinfo-6.18"))
    assert ps_mem.Mount("/tmp/ps_mem ledger\ttab", "tmpfs", "0:40") in mounts
    assert [(mount.mount_point, mount.device) for mount in mounts
            if mount.fs_type in ("tmpfs", "devtmpfs")] == [
        ("/dev", "0:6"), ("/dev/shm", "0:23"),
        ("/mnt/sandboxing/model_tools_env/v1/python", "0:25"),
        ("/dev/shm", "0:27"), ("/sys/fs/cgroup", "0:28"),
        ("/tmp/ps_mem ledger\ttab", "0:40"),
    ]


def test_mounts_decode_escapes_without_devices():
    mounts = ps_mem.parse_mounts(fixture("mounts-6.18"))
    assert ps_mem.Mount("/tmp/ps_mem ledger\ttab", "tmpfs", None) in mounts
    assert [mount.mount_point for mount in mounts].count("/dev/shm") == 2


def test_mount_table_lines_no_kernel_writes():
    text = (b"1 2 0:1 / /a rw - tmpfs\n"  # cut short after the type
            b"1 2 x:1 / /b rw - tmpfs tmpfs rw\n"
            b"1 2 0:1 / relative rw - tmpfs tmpfs rw\n"
            b"1 2 0:3 / /ok\\1\\400\\134\\\\ rw shared:1 - tmpfs tmpfs rw\n"
            b"\xff\xfe\n")
    # Only what the kernel writes is decoded: three octal digits up to \377.
    assert ps_mem.parse_mountinfo(text) == [ps_mem.Mount("/ok\\1\\400\\\\\\", "tmpfs", "0:3")]


@pytest.mark.live
@pytest.mark.skipif(not os.path.exists("/proc/self/mountinfo"), reason="no mountinfo")
def test_mountinfo_of_this_machine_has_every_mount():
    with open("/proc/self/mountinfo", "rb") as handle:
        text = handle.read()
    mounts = ps_mem.parse_mountinfo(text)
    assert len(mounts) == text.count(b"\n")
    assert ps_mem.Mount("/", mounts[0].fs_type, mounts[0].device) == mounts[0] or any(
        mount.mount_point == "/" for mount in mounts)


def test_zram_mm_stat():
    # orig_data_size compr_data_size mem_used_total mem_limit ...
    assert ps_mem.parse_zram_mm_stat(b"  8192  2048  12288  0  12288  0  0  0  0\n") == 12288
    assert ps_mem.parse_zram_mm_stat(b"1 2\n") is None
    assert ps_mem.parse_zram_mm_stat(b"1 2 -3\n") is None


@pytest.mark.parametrize("link, inode", [
    ("mnt:[4026531841]", 4026531841),
    ("mnt:[]", None), ("mnt:[12", None), ("mnt:12]", None), ("[12]", None),
    ("mnt:[+12]", None), ("mnt:[\u0663]", None),
])
def test_namespace_links(link, inode):
    assert ps_mem.parse_namespace(link) == inode


@pytest.mark.live
@pytest.mark.skipif(not os.path.exists("/proc/self/ns/mnt"), reason="no namespaces")
def test_namespace_of_this_process_is_its_inode():
    assert ps_mem.parse_namespace(os.readlink("/proc/self/ns/mnt")) == \
        os.stat("/proc/self/ns/mnt").st_ino


# ----------------------------------------------------------------------------
# The split of Pss: read only when asked, by the fast path too
# ----------------------------------------------------------------------------

ROLLUP = (TESTS / "sleep.smaps_rollup").read_bytes()  # Linux 6.18's


def test_split_of_a_kernel_rollup():
    # Pss_Anon 112, Pss_File 69, Pss_Shmem 0 in the text.
    for layouts in ({}, None):
        counters = ps_mem.parse_smaps(ROLLUP, layouts, split=True)
        assert counters.pss_parts == (112, 69, 0)
        assert counters._replace(pss_parts=None) == ps_mem.parse_smaps(ROLLUP, layouts)


def test_split_is_read_by_the_layout():
    layouts: dict = {}
    answer = ps_mem._rollup_by_layout(ROLLUP, layouts, True)
    assert answer is not None and answer.pss_parts == (112, 69, 0)
    assert answer == ps_mem._smaps_by_lines(ROLLUP, True)
    (layout,) = layouts.values()
    assert layout.parts


def test_one_table_of_layouts_read_with_and_without_the_split():
    layouts: dict = {}
    for split, parts in ((True, (112, 69, 0)), (False, None), (True, (112, 69, 0))):
        assert ps_mem.parse_smaps(ROLLUP, layouts, split).pss_parts == parts
    assert len(layouts) == 2


def test_the_default_reading_learns_no_part():
    layouts: dict = {}
    assert ps_mem.parse_smaps(ROLLUP, layouts).pss_parts is None
    (layout,) = layouts.values()
    assert not layout.parts
    kinds = sorted(kind for _start, _end, kind in layout.fields)
    assert kinds == sorted([ps_mem._PRIVATE] * 2 + [ps_mem._SHARED] * 2 + [
        ps_mem._PRIVATE_HUGE, ps_mem._SHARED_HUGE, ps_mem._PSS, ps_mem._SWAP,
        ps_mem._SWAP_PSS])


@pytest.mark.parametrize("text", [
    # Linux 4.14 to 5.2: no parts; smaps: never any.
    re.sub(rb"Pss_(Anon|File|Shmem):[^\n]*\n", b"", ROLLUP),
    (TESTS / "sleep.smaps").read_bytes(),
    ROLLUP.replace(b"Pss_File:", b"Pss_Anon:"),  # one twice, one missing
    ROLLUP.replace(b"Pss_Shmem:             0 kB\n", b""),
])
def test_no_split_where_the_parts_are_not_each_there_once(text):
    assert ps_mem.parse_smaps(text, {}, split=True).pss_parts is None
    assert ps_mem._smaps_by_lines(text, True).pss_parts is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10 ** 12), min_size=22, max_size=22))
def test_split_by_layout_reads_what_the_lines_read(numbers):
    numbers = iter(numbers)
    text = re.sub(rb"(?<=:)[ ]*[0-9]+(?= kB)",
                  lambda match: str(next(numbers)).encode().rjust(len(match.group(0))), ROLLUP)
    answer = ps_mem._rollup_by_layout(text, {}, True)
    assert answer is not None
    assert answer == ps_mem._smaps_by_lines(text, True)


@pytest.mark.live
@pytest.mark.skipif(not os.path.exists("/proc/self/smaps_rollup"), reason="no smaps_rollup")
def test_split_of_this_kernels_rollup_adds_up_to_its_pss():
    with open("/proc/self/smaps_rollup", "rb") as handle:
        text = handle.read()
    if b"Pss_Anon:" not in text:
        pytest.skip("this kernel does not split Pss (before 5.3)")
    counters = ps_mem.parse_smaps(text, {}, split=True)
    assert counters.pss_parts is not None
    # Each part is truncated to whole KiB on its own: at most 2 KiB lost.
    whole = counters.pss - 0.5
    assert whole - 2 <= sum(counters.pss_parts) <= whole


# ----------------------------------------------------------------------------
# ps_mem-system.json: what a tree or a capture holds of the mounts' use
# ----------------------------------------------------------------------------

RECORD = {
    "mounts": [{"mount_point": "/dev/shm", "fs_type": "tmpfs", "device": "0:23",
                "used_bytes": 4096, "size_bytes": 8192, "namespace_pid": None},
               {"mount_point": "/dev", "fs_type": "devtmpfs", "device": None,
                "used_bytes": None, "size_bytes": None, "namespace_pid": 812}],
    "ramfs": ["/mnt/ram"],
    "zram_used_bytes": {"zram0": 1000, "zram1": 24},
}


def test_system_record_round_trip():
    record = ps_mem._parse_system_record(json.dumps(RECORD).encode())
    assert record == ps_mem.SystemRecord(
        [ps_mem.ShmMount("/dev/shm", "tmpfs", "0:23", 4096, 8192, None),
         ps_mem.ShmMount("/dev", "devtmpfs", None, None, None, 812)],
        ["/mnt/ram"], {"zram0": 1000, "zram1": 24})
    assert ps_mem._parse_system_record(ps_mem._system_record_json(record)) == record


def test_system_record_passes_over_keys_it_does_not_know():
    later = dict(RECORD, hugetlbfs=[{"mount_point": "/dev/hugepages"}])
    later["mounts"] = [dict(RECORD["mounts"][0], inodes=12)]
    assert len(ps_mem._parse_system_record(json.dumps(later).encode()).mounts) == 1


def mount(**changes) -> dict:
    return {"mounts": [dict(RECORD["mounts"][0], **changes)]}


@pytest.mark.parametrize("document, reason", [
    (b"\xff", "not JSON: "),
    (b"[]", "not a JSON object"),
    (b"{" * 100000 + b"}" * 100000, None),  # nested too deeply, or not JSON
    (json.dumps({"mounts": {}}), "its mounts are not a list of at most 65536"),
    (json.dumps({"mounts": [{}] * 65537}), "its mounts are not a list of at most 65536"),
    (json.dumps(mount(fs_type="ext4")), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(mount_point="relative")), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(mount_point="/" * 4097)), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(device="0:x")), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(device="1:2:3")), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(used_bytes=True)), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(used_bytes=1.5)), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(used_bytes=-1)), "a mount is not a tmpfs mount point"),
    (json.dumps(mount(size_bytes=2 ** 63)), "a mount is not a tmpfs mount point"),
    (b'{"mounts": [{"mount_point": "/a", "fs_type": "tmpfs", "used_bytes": NaN}]}',
     "a mount is not a tmpfs mount point"),
    (json.dumps(mount(used_bytes=9000)), "a mount uses more than its size"),
    (json.dumps(mount(namespace_pid=0)), "a mount's namespace_pid is not a pid"),
    (json.dumps(mount(namespace_pid="12")), "a mount's namespace_pid is not a pid"),
    (json.dumps({"ramfs": "/mnt"}), "its ramfs are not a list of mount points"),
    (json.dumps({"ramfs": [3]}), "its ramfs are not a list of mount points"),
    (json.dumps({"zram_used_bytes": {"zram0": None}}), "its zram_used_bytes is not"),
    (json.dumps({"zram_used_bytes": {"z" * 65: 1}}), "its zram_used_bytes is not"),
    (json.dumps({"zram_used_bytes": [1]}), "its zram_used_bytes is not"),
])
def test_system_record_that_ps_mem_does_not_write(document, reason):
    if isinstance(document, str):
        document = document.encode()
    with pytest.raises(ValueError) as refused:
        ps_mem._parse_system_record(document)
    if reason is not None:
        assert str(refused.value).startswith(reason)
    else:
        assert str(refused.value) in ("nested too deeply",) or str(refused.value).startswith(
            "not JSON")
