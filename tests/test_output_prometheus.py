"""--prometheus: the report in Prometheus' text exposition format.

Read back with prometheus_client's parser (tests/prometheus_harness.py's
families()), which fails on text the format does not allow.  The sizes
expected of the small tree below are worked out by hand from its maps;
totals are also taken from ps_mem 3.14 (-t).  That node_exporter serves
the file is tests/test_prometheus.py's.
"""

import io
import json
import math
import re
import tarfile
import time

import pytest

from tests.harness import REFERENCE_DIR, printable, run_main, run_reference
from tests.procfs_builder import ProcTree, mapping
from tests.prometheus_harness import families, series
from tests import diff_trees, system_trees
from tests.trees import ALL as ALL_TREES

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
POSTGRES = "/usr/lib/postgresql/15/bin/postgres"


def maps(private_kib: int, swap_kib: int = 0):
    """A heap of PRIVATE_KIB (SWAP_KIB more swapped out) and 60 KiB of libc
    shared by three processes: Pss = PRIVATE_KIB + 20, printed as an
    integer, to which ps_mem adds 0.5 KiB: Shared is 20.5 KiB = 20992
    bytes."""
    return [mapping("[heap]", private_kib + swap_kib, private=private_kib, dirty=True,
                    swap=swap_kib),
            mapping(LIBC, 60, "r-xp", shared=60, sharers=3)]


def cgroup(path: str) -> bytes:
    return ("0::%s\n" % path).encode()


def small_tree(root) -> ProcTree:
    t = ProcTree(root, "6.1")
    t.add(10, "nginx", "/usr/sbin/nginx", maps=maps(1000),
          cmdline=["nginx: master process /usr/sbin/nginx"],
          replace={"cgroup": cgroup("/system.slice/nginx.service")})
    t.add(11, "nginx", "/usr/sbin/nginx", ppid=10, maps=maps(500),
          cmdline=["nginx: worker process"],
          replace={"cgroup": cgroup("/system.slice/nginx.service")})
    t.add(20, "postgres", POSTGRES, maps=maps(2000, swap_kib=100),
          cmdline=[POSTGRES, "-D", "/var/lib/postgresql/15/main"],
          replace={"cgroup": cgroup("/system.slice/postgresql.service")})
    return t


@pytest.fixture
def small(tmp_path) -> ProcTree:
    return small_tree(tmp_path / "proc")


# Bytes, by hand (see maps()): pid 10 has 1000 KiB private, pid 11 500 KiB,
# pid 20 2000 KiB and 100 KiB of swap; each 20.5 KiB shared.
PID_RAM = {10: (1000 + 20.5) * 1024, 11: (500 + 20.5) * 1024, 20: (2000 + 20.5) * 1024}
TOTAL_RAM = sum(PID_RAM.values())  # 3646976

# The whole document for the default view, but for how long the scan took
# and when it was taken (TIMES).
DOCUMENT = """\
# HELP ps_mem_private_bytes Private: memory mapped only by the row's processes, in bytes.
# TYPE ps_mem_private_bytes gauge
ps_mem_private_bytes{program="nginx",group_by="program"} 1536000
ps_mem_private_bytes{program="postgres",group_by="program"} 2048000
# HELP ps_mem_shared_bytes Shared: the row's proportional share (PSS) of memory its processes \
map with others, in bytes.
# TYPE ps_mem_shared_bytes gauge
ps_mem_shared_bytes{program="nginx",group_by="program"} 41984
ps_mem_shared_bytes{program="postgres",group_by="program"} 20992
# HELP ps_mem_ram_bytes RAM used by the row's processes: Private + Shared.
# TYPE ps_mem_ram_bytes gauge
ps_mem_ram_bytes{program="nginx",group_by="program"} 1577984
ps_mem_ram_bytes{program="postgres",group_by="program"} 2068992
# HELP ps_mem_swap_bytes Swap used by the row's processes (SwapPss where the kernel has it), \
in bytes.
# TYPE ps_mem_swap_bytes gauge
ps_mem_swap_bytes{program="nginx",group_by="program"} 0
ps_mem_swap_bytes{program="postgres",group_by="program"} 102400
# HELP ps_mem_processes Processes in the row.
# TYPE ps_mem_processes gauge
ps_mem_processes{program="nginx",group_by="program"} 2
ps_mem_processes{program="postgres",group_by="program"} 1
# HELP ps_mem_total_ram_bytes RAM used by all rows.
# TYPE ps_mem_total_ram_bytes gauge
ps_mem_total_ram_bytes{group_by="program"} 3646976
# HELP ps_mem_total_swap_bytes Swap used by all rows.
# TYPE ps_mem_total_swap_bytes gauge
ps_mem_total_swap_bytes{group_by="program"} 102400
# HELP ps_mem_accuracy How exact the kernel lets the measure be: 2 accurate, 1 over-estimated \
per row, 0 shared memory estimated, -1 not reported.
# TYPE ps_mem_accuracy gauge
ps_mem_accuracy{measure="ram",group_by="program"} 2
ps_mem_accuracy{measure="swap",group_by="program"} 2
# HELP ps_mem_unreadable_processes Processes that could not be read (permission denied): their \
memory is in no row.
# TYPE ps_mem_unreadable_processes gauge
ps_mem_unreadable_processes{group_by="program"} 0
# HELP ps_mem_unparsable_processes Processes whose files could not be parsed: their memory is \
in no row.
# TYPE ps_mem_unparsable_processes gauge
ps_mem_unparsable_processes{group_by="program"} 0
# HELP ps_mem_scan_duration_seconds How long reading the processes took.
# TYPE ps_mem_scan_duration_seconds gauge
ps_mem_scan_duration_seconds{group_by="program"} SECONDS
# HELP ps_mem_scan_timestamp_seconds When the processes were read (a capture's own time), in \
Unix time.
# TYPE ps_mem_scan_timestamp_seconds gauge
ps_mem_scan_timestamp_seconds{group_by="program"} SECONDS
# HELP ps_mem_info ps_mem's version, the kernel's release and the labels of the rows.
# TYPE ps_mem_info gauge
ps_mem_info{version="4.0",kernel="6.1.0-13-amd64",group_by="program"} 1
"""
TIMES = re.compile(r"^(ps_mem_scan_(?:duration|timestamp)_seconds)(\{[^}]*\}) (\S+)$", re.M)

FAMILIES = ["ps_mem_private_bytes", "ps_mem_shared_bytes", "ps_mem_ram_bytes",
            "ps_mem_swap_bytes", "ps_mem_processes", "ps_mem_total_ram_bytes",
            "ps_mem_total_swap_bytes", "ps_mem_accuracy", "ps_mem_unreadable_processes",
            "ps_mem_unparsable_processes", "ps_mem_scan_duration_seconds",
            "ps_mem_scan_timestamp_seconds", "ps_mem_info"]
ROW_FAMILIES = FAMILIES[:5]


def prometheus(*args: str, procfs) -> str:
    """ps_mem --prometheus ARGS on PROCFS: the text, checked to be UTF-8
    and to parse."""
    result = run_main("--prometheus", *args, procfs=procfs)
    assert result.status == 0, result.err
    text = result.stdout.decode("utf-8")  # strictly: node_exporter wants UTF-8
    read(text)
    return text


def read(text: str):
    """{family: {labels: value}}, labels as sorted (name, value) pairs but
    for group_by, which every series must have, the same in all."""
    found = {}
    group_by = set()
    for name, family in families(text).items():
        found[name] = {}
        for labels, value in family.samples.items():
            group_by.add(dict(labels).get("group_by"))
            found[name][tuple(pair for pair in labels if pair[0] != "group_by")] = value
    assert len(group_by) == 1 and None not in group_by, group_by
    return found


def rows(text: str, family: str = "ps_mem_ram_bytes"):
    """{labels: value} of one row family (as read())."""
    return read(text)[family]


def group_by(text: str) -> str:
    labels, = families(text)["ps_mem_info"].samples
    return dict(labels)["group_by"]


def without_times(text: str) -> str:
    return TIMES.sub(r"\1\2 SECONDS", text)


def times(text: str):
    """{family: value} of the two families of times."""
    return {family: float(value) for family, _labels, value in TIMES.findall(text)}


# ----------------------------------------------------------------------------
# The document
# ----------------------------------------------------------------------------


def test_document_as_written(small):
    before = time.time()
    text = prometheus(procfs=small.root)
    after = time.time()
    assert without_times(text) == DOCUMENT
    found = times(text)
    assert before <= found["ps_mem_scan_timestamp_seconds"] <= after
    assert 0 <= found["ps_mem_scan_duration_seconds"] <= after - before
    assert list(families(text)) == FAMILIES
    assert {family.type for family in families(text).values()} == {"gauge"}


def test_totals_are_3_14s(small):
    if not (REFERENCE_DIR / "ps_mem.py").exists():
        pytest.skip("ps_mem 3.14 is not installed in %s" % REFERENCE_DIR)
    found = read(prometheus(procfs=small.root))
    assert int(run_reference("-t", procfs=small.root).out) == TOTAL_RAM
    assert found["ps_mem_total_ram_bytes"][()] == TOTAL_RAM
    assert found["ps_mem_total_swap_bytes"][()] == \
        int(run_reference("-t", "-S", procfs=small.root).out) == 102400


def test_nothing_on_stdout_but_the_document(small):
    """No table header, and the warnings stay on stderr."""
    small.add(30, "bad", "/usr/bin/bad", maps=maps(10), replace={"status": b"garbage\n"})
    result = run_main("--prometheus", procfs=small.root)
    assert result.status == 0
    assert without_times(result.out) == DOCUMENT.replace(
        'ps_mem_unparsable_processes{group_by="program"} 0',
        'ps_mem_unparsable_processes{group_by="program"} 1')
    assert result.err == ("Warning: 1 process could not be parsed (their files are not what a "
                          "kernel writes); their memory is not included.\n")


# ----------------------------------------------------------------------------
# Labels: one per grouping, pid besides with -d
# ----------------------------------------------------------------------------

NGINX_MASTER = "nginx: master process /usr/sbin/nginx"
POSTGRES_CMDLINE = POSTGRES + " -D /var/lib/postgresql/15/main"
BY_PID = {(("pid", "10"), ("program", "nginx")): PID_RAM[10],
          (("pid", "11"), ("program", "nginx")): PID_RAM[11],
          (("pid", "20"), ("program", "postgres")): PID_RAM[20]}
GROUPINGS = [
    ([], "program", {(("program", "nginx"),): PID_RAM[10] + PID_RAM[11],
                     (("program", "postgres"),): PID_RAM[20]}),
    (["-d"], "program,pid", BY_PID),
    (["--group-by", "pid"], "program,pid", BY_PID),
    (["-s"], "cmdline", {(("cmdline", NGINX_MASTER),): PID_RAM[10],
                         (("cmdline", "nginx: worker process"),): PID_RAM[11],
                         (("cmdline", POSTGRES_CMDLINE),): PID_RAM[20]}),
    # -s wins over -d, as in the table: rows are command lines.
    (["-s", "-d"], "cmdline", {(("cmdline", NGINX_MASTER),): PID_RAM[10],
                               (("cmdline", "nginx: worker process"),): PID_RAM[11],
                               (("cmdline", POSTGRES_CMDLINE),): PID_RAM[20]}),
    (["--group-by", "cmdline"], "cmdline", {(("cmdline", NGINX_MASTER),): PID_RAM[10],
                                            (("cmdline", "nginx: worker process"),): PID_RAM[11],
                                            (("cmdline", POSTGRES_CMDLINE),): PID_RAM[20]}),
    (["--group-by", "user"], "user", {(("user", "root"),): TOTAL_RAM}),
    (["--group-by", "user", "-d"], "user,pid",
     {(("pid", "10"), ("user", "root")): PID_RAM[10],
      (("pid", "11"), ("user", "root")): PID_RAM[11],
      (("pid", "20"), ("user", "root")): PID_RAM[20]}),
    (["--group-by", "cgroup"], "cgroup",
     {(("cgroup", "/system.slice/nginx.service"),): PID_RAM[10] + PID_RAM[11],
      (("cgroup", "/system.slice/postgresql.service"),): PID_RAM[20]}),
]


@pytest.mark.parametrize("args, labels, expected", GROUPINGS,
                         ids=[" ".join(args) or "default" for args, _, _ in GROUPINGS])
def test_rows_are_labelled_by_the_grouping(small, args, labels, expected):
    text = prometheus(*args, procfs=small.root)
    found = read(text)
    assert found["ps_mem_ram_bytes"] == expected
    for family in ROW_FAMILIES:  # every row family has the same series
        assert set(found[family]) == set(expected), family
    assert group_by(text) == labels
    # However the rows are cut, the total is the default view's.
    assert found["ps_mem_total_ram_bytes"][()] == TOTAL_RAM


def test_help_and_type_are_the_same_whatever_the_options(small, proc_trees):
    """node_exporter drops a family whose HELP differs from the same family's
    in another textfile: two files of different options must agree."""
    seen = {}
    runs = [(args, small.root) for args, _, _ in GROUPINGS]
    runs += [(["-S"], small.root), (["-p", "20"], small.root), (["--top", "1"], small.root),
             ([], proc_trees.get("smaps_no_pss").root), ([], proc_trees.get("statm_2_6_9").root)]
    for args, root in runs:
        for name, family in families(prometheus(*args, procfs=root)).items():
            seen.setdefault(name, set()).add((family.help, family.type))
    assert sorted(seen) == sorted(FAMILIES)
    assert all(len(texts) == 1 for texts in seen.values()), seen


def test_rows_shown_alike_are_one_series(tree):
    """Names that differ only by control characters show alike ("a?b"):
    node_exporter would serve only the first of two equal series, so they
    are one, summed."""
    t = tree()
    t.add(40, "a\x01b", "/usr/bin/a-one", maps=maps(300))
    t.add(41, "a\x02b", "/usr/bin/a-two", maps=maps(400))
    t.add(42, "other", "/usr/bin/other", maps=maps(1000))
    doc = json.loads(run_main("--json", procfs=t.root).out)
    # Two names that the table shows alike (JSON has them whole).
    assert [printable(program["name"]) for program in doc["programs"]] == ["a?b", "a?b", "other"]
    found = read(prometheus(procfs=t.root))
    assert found["ps_mem_ram_bytes"] == {
        (("program", "a?b"),): (300 + 20.5 + 400 + 20.5) * 1024,
        (("program", "other"),): (1000 + 20.5) * 1024}
    assert found["ps_mem_processes"][(("program", "a?b"),)] == 2
    assert found["ps_mem_private_bytes"][(("program", "a?b"),)] == 700 * 1024
    # By pid they stay apart.
    assert set(rows(prometheus("-d", procfs=t.root))) == {
        (("pid", "40"), ("program", "a?b")), (("pid", "41"), ("program", "a?b")),
        (("pid", "42"), ("program", "other"))}


def test_label_values_are_escaped(tree):
    """A quote, a backslash and a newline (the only escapes the format has);
    control and format characters as "?" (node_exporter passes them on
    raw); bytes that are not UTF-8 as "?" (it drops a file holding them)."""
    t = tree()
    # Status escapes a backslash in the name as "\\\\" and a newline as "\\n".
    t.add(50, 'q"uo\\\\te\\nnl', "/opt/bin/quote", maps=maps(100),
          cmdline=["/opt/bin/quote", 'say "hi"\\', "two\nlines"])
    t.add(51, "bidi\u202eevil", "/opt/bin/bidi", maps=maps(200), cmdline=["\x1b[2J", "\x9b"])
    t.add(52, "raw", b"/opt/bin/raw\xff\xfe", maps=maps(300),
          replace={"cgroup": b"0::/user.slice/odd\xff\r\\x\"y\n"})
    t.add(53, "tab", "/opt/bin/tab\tbed", maps=maps(400))
    text = prometheus(procfs=t.root)
    assert set(rows(text)) == {(("program", 'q"uo\\\\te\\nnl'),), (("program", "bidi?evil"),),
                               (("program", "raw??"),), (("program", "tab?bed"),)}
    assert 'program="q\\"uo\\\\\\\\te\\\\nnl"' in text
    # As in the table: the newline of an argument is a space under -s, and
    # bytes of a command line that are not UTF-8 are dropped.
    assert set(rows(prometheus("-s", procfs=t.root))) == {
        (("cmdline", '/opt/bin/quote say "hi"\\ two lines'),), (("cmdline", "?[2J ?"),),
        (("cmdline", "/opt/bin/raw"),), (("cmdline", "/opt/bin/tab?bed"),)}
    cgroups = prometheus("--group-by", "cgroup", procfs=t.root)
    assert (("cgroup", '/user.slice/odd?\\x"y'),) in rows(cgroups)
    assert 'cgroup="/user.slice/odd?\\\\x\\"y"' in cgroups
    for written in (text, cgroups):
        assert not [char for char in written if char != "\n" and not char.isprintable()]


def test_a_hostile_kernel_release_is_escaped(small):
    (small.root / "sys" / "kernel" / "osrelease").write_bytes(b'6.1"\\\x1b[0m\xff\n')
    info, = families(prometheus(procfs=small.root))["ps_mem_info"].samples
    assert dict(info)["kernel"] == '6.1"\\?[0m\ufffd'


# ----------------------------------------------------------------------------
# What the kernel lets be measured
# ----------------------------------------------------------------------------

# tree: (accuracy of RAM, of swap; whether a RAM and a swap total exist),
# as the warnings of each tree say (see the man page's ACCURACY).
ACCURACY = {
    "rollup_6_1": (2, 2, True, True),
    "smaps_no_pss": (1, 1, False, False),
    "statm_2_6_18": (0, -1, False, False),
    "statm_2_6_9": (-1, -1, False, False),
    "swap_without_swappss": (2, 1, True, False),
}


@pytest.mark.parametrize("name", sorted(ACCURACY))
def test_accuracy_and_totals_only_where_meaningful(proc_trees, name):
    ram, swap, ram_total, swap_total = ACCURACY[name]
    found = read(prometheus(procfs=proc_trees.get(name).root))
    assert found["ps_mem_accuracy"] == {(("measure", "ram"),): ram,
                                                (("measure", "swap"),): swap}
    assert ("ps_mem_total_ram_bytes" in found, "ps_mem_total_swap_bytes" in found) == \
        (ram_total, swap_total)
    assert found["ps_mem_ram_bytes"]  # rows are there all the same


def test_unparsable_processes_are_counted(proc_trees):
    tree = proc_trees.get("vanished_status_short")
    result = run_main("--prometheus", procfs=tree.root)
    found = read(result.out)
    assert found["ps_mem_unparsable_processes"][()] == 1
    assert found["ps_mem_unreadable_processes"][()] == 0
    assert "1 process could not be parsed" in result.err


# ----------------------------------------------------------------------------
# With the other options
# ----------------------------------------------------------------------------


def test_p_shows_only_those_processes(small):
    found = read(prometheus("-p", "11,20", procfs=small.root))
    assert found["ps_mem_ram_bytes"] == {(("program", "nginx"),): PID_RAM[11],
                                                 (("program", "postgres"),): PID_RAM[20]}
    assert found["ps_mem_total_ram_bytes"][()] == PID_RAM[11] + PID_RAM[20]


def test_top_keeps_its_rows_and_their_total(small):
    found = read(prometheus("--top", "1", procfs=small.root))
    assert found["ps_mem_ram_bytes"] == {(("program", "postgres"),): PID_RAM[20]}
    assert found["ps_mem_total_ram_bytes"][()] == PID_RAM[20]


def test_swap_is_there_with_or_without_S(small):
    assert without_times(prometheus("-S", procfs=small.root)) == DOCUMENT


def test_a_watch_whose_processes_are_gone_ends_without_a_line_of_text(small):
    """-w ends when the -p processes are gone; the table then says so in
    words, which would not parse here."""
    text = prometheus("-w", "1", "-p", "99", procfs=small.root)
    found = read(text)
    assert all(name not in found for name in ROW_FAMILIES)
    # No process seen, so nothing says whether the kernel has PSS: no
    # total, as the table has no footer.
    assert "ps_mem_total_ram_bytes" not in found
    assert found["ps_mem_accuracy"][(("measure", "ram"),)] == 2
    assert "anymore" not in text


def test_a_capture_gives_the_trees_series_at_its_own_time(small, tmp_path):
    saved = tmp_path / "saved.tar.gz"
    direct = prometheus("--capture", str(saved), procfs=small.root)
    with tarfile.open(saved) as archive:
        manifest = json.load(io.TextIOWrapper(archive.extractfile("ps_mem-capture.json")))
    replayed = prometheus(procfs=saved)
    assert without_times(replayed) == without_times(direct) == DOCUMENT
    assert times(replayed)["ps_mem_scan_timestamp_seconds"] == manifest["time"]


@pytest.mark.parametrize("name", sorted(set(ALL_TREES) - {"no_osrelease"}))
@pytest.mark.parametrize("args", [[], ["-d"], ["-s"], ["--group-by", "user"],
                                  ["--group-by", "cgroup"]], ids=lambda args: " ".join(args))
def test_every_tree_parses(proc_trees, name, args):
    """Whatever the names, one series per row key, every value a number,
    and no total where the table has none."""
    root = proc_trees.get(name).root
    text = prometheus(*args, procfs=root)
    doc = json.loads(run_main("--json", *args, procfs=root).out)
    found = series(text)
    assert all(math.isfinite(value) for value in found.values())
    assert sum(value for (family, _), value in found.items() if family == "ps_mem_processes") \
        == sum(program["count"] for program in doc["programs"])
    assert ("ps_mem_total_ram_bytes" in families(text)) == (doc["total"]["ram"] is not None)


# ----------------------------------------------------------------------------
# --system and --diff
# ----------------------------------------------------------------------------

LEDGER_FAMILIES = ["ps_mem_system_bytes", "ps_mem_system_beside_bytes",
                   "ps_mem_system_memtotal_bytes"] + FAMILIES[5:]


def ledger_sums_to_memtotal(text: str) -> dict:
    """The ledger's lines, checked: those whose key has no dot add up to
    MemTotal."""
    found = read(text)
    lines = found["ps_mem_system_bytes"]
    memtotal, = found["ps_mem_system_memtotal_bytes"].values()
    assert sum(value for labels, value in lines.items() if "." not in dict(labels)["line"]) \
        == memtotal
    return found


def test_the_ledger_adds_up_to_memtotal(tmp_path):
    """The ledger's lines by their key (a mount's and a segment's with its
    own label), its sample's families, and no rows: with group_by="system"
    on every series, a textfile of the ledger shares none with one of
    rows."""
    tree = system_trees.machine(tmp_path / "proc", "6.1", meminfo=system_trees.MEMINFO_BY_HAND)
    text = prometheus("--system", procfs=tree.root)
    assert list(families(text)) == LEDGER_FAMILIES
    assert group_by(text) == "system"
    found = ledger_sums_to_memtotal(text)
    assert found["ps_mem_system_memtotal_bytes"] == {(): 1000000 * 1024}  # MEMINFO_BY_HAND's
    lines = found["ps_mem_system_bytes"]
    assert found["ps_mem_system_beside_bytes"] == {
        (("line", "processes.swap"),): 0, (("line", "not_read.mapped"),): 910 * 1024}
    # By hand, as tests/test_output_system.py's table shows them.
    assert lines[(("line", "processes"),)] == 23890 * 1024
    assert lines[(("line", "shmem.mount"), ("mount", "/dev/shm"))] == 8 << 20
    assert lines[(("line", "shmem.mount"), ("mount", "/run"))] == 1 << 20
    assert lines[(("line", "shmem.sysv"), ("shmid", "32769"))] == 6 << 20
    assert lines[(("line", "shmem.mapped"),)] == -10 << 20
    # The total of the processes is the rows' total, as without --system.
    assert found["ps_mem_total_ram_bytes"] == {(): 23890 * 1024}
    # The note the table prints under the ledger goes to stderr.
    done = run_main("--system", "--prometheus", procfs=tree.root)
    assert done.err.startswith("Note: tmpfs /mnt/scratch: its use is unknown")


@pytest.mark.parametrize("release", ["2.4", "2.6.18", "4.19", "6.1"])
def test_the_ledger_of_any_kernel_adds_up(tmp_path, release):
    tree = system_trees.machine(tmp_path / "proc", release)
    ledger_sums_to_memtotal(prometheus("--system", procfs=tree.root))


def test_help_of_the_ledger_is_the_same_on_any_kernel(tmp_path):
    seen = {}
    for release in ("6.1", "2.4"):
        tree = system_trees.machine(tmp_path / release / "proc", release)
        for name, family in families(prometheus("--system", procfs=tree.root)).items():
            seen.setdefault(name, set()).add(family.help)
    assert all(len(texts) == 1 for texts in seen.values()), seen
    # Without PSS the processes are shown beside, adding to nothing.
    tree = system_trees.machine(tmp_path / "old" / "proc", "2.4")
    beside = read(prometheus("--system", procfs=tree.root))["ps_mem_system_beside_bytes"]
    assert (("line", "processes"),) in beside


def diff(*args: str, tmp_path) -> str:
    before, after = diff_trees.pair(tmp_path)
    capture = diff_trees.captured(before, tmp_path / "before.tar.gz")
    return prometheus("--diff", str(capture), *args, procfs=after.root)


def diff_group_by(text: str) -> str:
    labels, = families(text)["ps_mem_diff_info"].samples
    return dict(labels)["group_by"]


def test_a_diff_by_hand(tmp_path):
    """tests/diff_trees.py's pair: leaky grows by 2048 KiB, goner is gone,
    newbie is new (sizes by hand there)."""
    text = diff(tmp_path=tmp_path)
    assert list(families(text)) == ["ps_mem_diff_bytes", "ps_mem_diff_processes",
                                    "ps_mem_diff_total_bytes", "ps_mem_diff_timestamp_seconds",
                                    "ps_mem_diff_info"]
    found = read(text)
    (info, _), = found["ps_mem_diff_info"].items()
    assert dict(info)["before_kernel"] == dict(info)["kernel"] == "6.1.0-13-amd64"

    def row(name, measure):
        return {dict(labels)["sample"]: value
                for labels, value in found["ps_mem_diff_bytes"].items()
                if dict(labels)["program"] == name and dict(labels)["measure"] == measure}

    kib = 1024
    assert row("leaky", "ram") == {"before": 1261056, "after": 3358208, "change": 2048 * kib}
    assert row("leaky", "private") == {"before": 1108 * kib, "after": 3156 * kib,
                                       "change": 2048 * kib}
    assert row("leaky", "shared") == {"before": 126464, "after": 126464, "change": 0}
    assert row("idle", "ram")["change"] == 0
    # A new row has no "before", a gone one no "after".
    assert row("newbie", "ram") == {"after": 1031.5 * kib, "change": 1031.5 * kib}
    assert row("goner", "ram") == {"before": 1131.5 * kib, "change": -1131.5 * kib}
    counts = {(dict(labels)["program"], dict(labels)["sample"]): value
              for labels, value in found["ps_mem_diff_processes"].items()}
    assert counts[("idle", "before")] == counts[("idle", "after")] == 2
    assert counts[("goner", "change")] == -1 and ("goner", "after") not in counts
    totals = {(dict(labels)["measure"], dict(labels)["sample"]): value
              for labels, value in found["ps_mem_diff_total_bytes"].items()}
    assert totals[("ram", "before")] == 4026 * kib
    assert totals[("ram", "after")] == 5974 * kib
    assert totals[("ram", "change")] == 1948 * kib
    stamps = {dict(labels)["sample"]: value
              for labels, value in found["ps_mem_diff_timestamp_seconds"].items()}
    assert stamps["before"] == int(diff_trees.manifest(tmp_path / "before.tar.gz")["time"])


def test_a_diff_by_pid_and_to_a_file(tmp_path):
    out = tmp_path / "diff.prom"
    before, after = diff_trees.pair(tmp_path)
    capture = diff_trees.captured(before, tmp_path / "before.tar.gz")
    done = run_main("--prometheus", "--diff", str(capture), "-d", "--output", str(out),
                    procfs=after.root)
    assert (done.stdout, done.err, done.status) == (b"", "", 0)  # all of it in the file
    written = out.read_text()
    assert diff_group_by(written) == "program,pid"
    keys = {(dict(labels)["program"], dict(labels)["pid"])
            for labels in read(written)["ps_mem_diff_bytes"]}
    assert keys == {("leaky", "100"), ("idle", "200"), ("idle", "201"), ("goner", "400"),
                    ("newbie", "300")}


# ----------------------------------------------------------------------------
# Usage errors
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--prometheus", "--json"], "--prometheus cannot be combined with --json"),
    (["--prometheus", "-t"], "--prometheus cannot be combined with -t"),
])
def test_one_view_at_a_time(small, args, message):
    result = run_main(*args, procfs=small.root)
    assert (result.status, result.stdout) == (2, b"")
    assert result.err.splitlines()[-1] == "ps_mem: error: " + message


def with_users(capture, users: dict, path) -> None:
    """A copy at PATH of CAPTURE whose manifest names uids as USERS does."""
    with tarfile.open(capture) as source, tarfile.open(path, "w:gz",
                                                       format=tarfile.PAX_FORMAT) as copy:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name == "ps_mem-capture.json":
                manifest = json.loads(data)
                manifest["users"] = users
                data = json.dumps(manifest).encode()  # ASCII: "\udcff" escaped
                member.size = len(data)
            copy.addfile(member, io.BytesIO(data) if data is not None else None)


def test_a_user_name_from_a_capture_is_made_utf8(small, tmp_path):
    """A capture's manifest is JSON, which can spell a lone surrogate: a
    label value that is not UTF-8 would make node_exporter drop the file."""
    saved = tmp_path / "saved.tar.gz"
    run_main("--capture", str(saved), "--group-by", "user", procfs=small.root)
    hostile = tmp_path / "hostile.tar.gz"
    with_users(saved, {"0": 'r\udcffo"o\nt\u202e'}, hostile)
    text = prometheus("--group-by", "user", procfs=hostile)
    assert set(rows(text)) == {(("user", 'r?o"o?t?'),)}
    assert 'user="r?o\\"o?t?"' in text
