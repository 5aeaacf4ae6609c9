"""Prometheus textfiles, served by Debian's node_exporter and scraped.

The harness is tested on hand-written textfiles in the format of README.md's
"Prometheus" section, then node_exporter serves the files ps_mem.py writes
with --prometheus --output.  (The document itself, read back with
prometheus_client's parser, is tested in test_output_prometheus.py.)
"""

import json
import os
import stat

import pytest

from tests import diff_trees, system_trees
from tests.harness import printable, run_ours, run_reference
from tests.procfs_builder import ProcTree, program_maps
from tests.prometheus_harness import families, series

# A program name with each character a label value must escape.
HOSTILE = 'we"ird\\na\nme'
TEXTFILE = """\
# HELP ps_mem_ram_bytes RAM used by the row's processes: Private + Shared.
# TYPE ps_mem_ram_bytes gauge
ps_mem_ram_bytes{program="nginx"} 13631488
ps_mem_ram_bytes{program="we\\"ird\\\\na\\nme"} 1138176
# HELP ps_mem_processes Processes in the row.
# TYPE ps_mem_processes gauge
ps_mem_processes{program="nginx"} 5
ps_mem_processes{program="we\\"ird\\\\na\\nme"} 1
# HELP ps_mem_total_ram_bytes RAM used by all rows.
# TYPE ps_mem_total_ram_bytes gauge
ps_mem_total_ram_bytes 14769664
"""
SERIES = {
    ("ps_mem_ram_bytes", (("program", "nginx"),)): 13631488,
    ("ps_mem_ram_bytes", (("program", HOSTILE),)): 1138176,
    ("ps_mem_processes", (("program", "nginx"),)): 5,
    ("ps_mem_processes", (("program", HOSTILE),)): 1,
    ("ps_mem_total_ram_bytes", ()): 14769664,
}


def scrape_error(text: str) -> float:
    return families(text)["node_textfile_scrape_error"].samples[()]


# ----------------------------------------------------------------------------
# The parser helpers
# ----------------------------------------------------------------------------


def test_families_unescape_label_values():
    found = families(TEXTFILE)
    assert found["ps_mem_ram_bytes"].help == "RAM used by the row's processes: Private + Shared."
    assert found["ps_mem_ram_bytes"].type == "gauge"
    assert series(TEXTFILE) == SERIES


def test_a_series_given_twice_is_refused():
    # node_exporter serves the first and drops the second, saying nothing
    # in node_textfile_scrape_error: ps_mem's rows must have distinct labels.
    twice = TEXTFILE.replace('ps_mem_processes{program="nginx"} 5\n',
                             'ps_mem_processes{program="nginx"} 5\n'
                             'ps_mem_processes{program="nginx"} 6\n')
    with pytest.raises(ValueError, match="appears twice"):
        families(twice)


def test_series_keep_only_the_prefix():
    assert series(TEXTFILE, "ps_mem_total_") == {("ps_mem_total_ram_bytes", ()): 14769664}


# ----------------------------------------------------------------------------
# node_exporter serving a textfile
# ----------------------------------------------------------------------------


def test_exporter_serves_a_textfile_escaped(node_exporter):
    (node_exporter.directory / "ps_mem.prom").write_text(TEXTFILE)
    text = node_exporter.scrape()
    assert series(text, "ps_mem_") == SERIES
    assert scrape_error(text) == 0
    assert families(text)["ps_mem_processes"].help == "Processes in the row."
    # As written: the exporter escapes the value again, as the format wants.
    assert 'ps_mem_ram_bytes{program="we\\"ird\\\\na\\nme"} 1.138176e+06\n' in text


def test_exporter_reports_a_file_it_cannot_parse(node_exporter):
    """The check of node_textfile_scrape_error can fail: a label value that
    is not UTF-8 makes node_exporter drop the whole file."""
    (node_exporter.directory / "ps_mem.prom").write_bytes(
        TEXTFILE.encode().replace(b"nginx", b"ngin\xff"))
    text = node_exporter.scrape()
    assert scrape_error(text) == 1
    assert series(text, "ps_mem_") == {}
    assert "invalid label value" in node_exporter.log()


def test_exporter_reads_only_prom_files(node_exporter):
    # Where --output writes its temp file before the rename: not *.prom.
    (node_exporter.directory / ".ps_mem.prom.tmp").write_text(TEXTFILE)
    text = node_exporter.scrape()
    assert (series(text, "ps_mem_"), scrape_error(text)) == ({}, 0)


# ----------------------------------------------------------------------------
# ps_mem's own textfile
# ----------------------------------------------------------------------------


# status Name as the kernel escapes it (a quote, two backslashes, a
# backslash-n), and one with a control character, shown as "?".
QUOTED = 'q"uo\\\\te\\nnl'
ESCAPE = "\x1b[2Jevil"


def hostile_tree(root) -> ProcTree:
    t = ProcTree(root)
    t.add(1, "systemd", "/usr/lib/systemd/systemd", ppid=0,
          maps=program_maps("/usr/lib/systemd/systemd", heap_kib=5000))
    # Heaps apart: alike maps would be taken for one address space.
    t.add(812, "nginx", "/usr/sbin/nginx", maps=program_maps("/usr/sbin/nginx", heap_kib=2000))
    t.add(813, "nginx", "/usr/sbin/nginx", ppid=812,
          maps=program_maps("/usr/sbin/nginx", heap_kib=1500))
    t.add(4242, QUOTED, "/opt/bin/" + QUOTED, maps=program_maps("/opt/bin/q", heap_kib=3000))
    t.add(4243, ESCAPE, "/opt/bin/" + ESCAPE, maps=program_maps("/opt/bin/e", heap_kib=700))
    return t


def test_exporter_serves_ps_mem_textfile(node_exporter, tmp_path):
    tree = hostile_tree(tmp_path / "proc")
    target = node_exporter.directory / "ps_mem.prom"
    done = run_ours("--prometheus", "--output", str(target), procfs=tree.root)
    assert (done.status, done.out, done.err) == (0, "", "")
    assert os.listdir(node_exporter.directory) == ["ps_mem.prom"]
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644  # the exporter's user reads it
    written = target.read_text()
    text = node_exporter.scrape()
    assert scrape_error(text) == 0
    # What ps_mem wrote is what the exporter serves, every family of it.
    assert series(text, "ps_mem_") == series(written, "ps_mem_")
    assert sorted(name for name in families(text) if name.startswith("ps_mem_")) == sorted(
        FAMILIES)
    report = json.loads(run_ours("--json", procfs=tree.root).out)
    assert [printable(program["name"]) for program in report["programs"]] == [
        "?[2Jevil", QUOTED, "nginx", "systemd"]  # as the table shows them
    served = families(text)
    for program in report["programs"]:
        labels = (("group_by", "program"), ("program", printable(program["name"])))
        for family, field in (("ps_mem_private_bytes", "private"),
                              ("ps_mem_shared_bytes", "shared"), ("ps_mem_ram_bytes", "ram"),
                              ("ps_mem_swap_bytes", "swap"), ("ps_mem_processes", "count")):
            assert served[family].type == "gauge"
            assert served[family].samples[labels] == program[field], (family, labels)
    # The total as 3.14 gives it for the same tree.
    total = int(run_reference("-t", procfs=tree.root).out)
    assert served["ps_mem_total_ram_bytes"].samples[(("group_by", "program"),)] == total
    assert served["ps_mem_accuracy"].samples == {
        (("group_by", "program"), ("measure", "ram")): 2,
        (("group_by", "program"), ("measure", "swap")): 2}
    assert served["ps_mem_info"].samples == {
        (("group_by", "program"), ("kernel", "6.1.0-13-amd64"), ("version", "4.0")): 1}
    # Escaped as the format requires, in the file and in the scrape.
    for raw in (written, text):
        assert 'program="q\\"uo\\\\\\\\te\\\\nnl"' in raw
        assert 'program="?[2Jevil"' in raw
        assert "\x1b" not in raw


FAMILIES = ["ps_mem_private_bytes", "ps_mem_shared_bytes", "ps_mem_ram_bytes",
            "ps_mem_swap_bytes", "ps_mem_processes", "ps_mem_total_ram_bytes",
            "ps_mem_total_swap_bytes", "ps_mem_accuracy", "ps_mem_unreadable_processes",
            "ps_mem_unparsable_processes", "ps_mem_scan_duration_seconds",
            "ps_mem_scan_timestamp_seconds", "ps_mem_info"]
GROUPINGS = {"ps_mem.prom": [], "ps_mem_pid.prom": ["-d"], "ps_mem_user.prom": ["--group-by",
                                                                                "user"],
             "ps_mem_cgroup.prom": ["--group-by", "cgroup"], "ps_mem_cmdline.prom": ["-s"]}


def write_side_by_side(node_exporter, root, files, stderr="") -> dict:
    """Write each of FILES ({file name: ps_mem's arguments}) into the
    exporter's directory from ROOT (ps_mem saying STDERR), scrape, and
    check that the exporter serves every series of every file, none
    dropped as shared by two: {series: value} of them all."""
    written = {}
    for file_name, args in files.items():
        target = node_exporter.directory / file_name
        done = run_ours("--prometheus", "--output", str(target), *args, procfs=root)
        assert done.status == 0 and stderr in (None, done.err), (file_name, done.err)
        written[file_name] = series(target.read_text(), "ps_mem_")
    text = node_exporter.scrape()
    assert scrape_error(text) == 0, node_exporter.log()
    everything = {}
    for file_series in written.values():
        everything.update(file_series)
    assert len(everything) == sum(map(len, written.values()))  # no series in common
    # The exporter gives every series of a family the same label names, an
    # empty value where one had none: the same series, to Prometheus.
    served = {(family, tuple(pair for pair in labels if pair[1] != "")): value
              for (family, labels), value in series(text, "ps_mem_").items()}
    assert served == everything
    return everything


def test_exporter_serves_files_of_every_grouping_side_by_side(node_exporter, proc_trees):
    """Textfiles of several groupings in one directory: node_exporter serves
    every series of each (it would drop a series that two files share, and
    a family whose HELP differs between them), on trees whose names are
    not UTF-8 or hold control characters."""
    for name in ("non_utf8", "hostile_names"):
        write_side_by_side(node_exporter, proc_trees.get(name).root, GROUPINGS)
    assert "error" not in node_exporter.log()


def test_exporter_serves_the_ledger_and_a_diff_beside_the_rows(node_exporter, tmp_path):
    """--system's and --diff's textfiles beside the default one."""
    tree = system_trees.machine(tmp_path / "proc", "6.1", meminfo=system_trees.MEMINFO_BY_HAND)
    before = diff_trees.captured(tree, tmp_path / "before.tar.gz")
    everything = write_side_by_side(node_exporter, tree.root, {
        "ps_mem.prom": [], "ps_mem_system.prom": ["--system"],
        "ps_mem_diff.prom": ["--diff", str(before)]}, stderr=None)
    memtotal = [value for (family, _), value in everything.items()
                if family == "ps_mem_system_memtotal_bytes"]
    assert memtotal == [1000000 * 1024]
    assert "error" not in node_exporter.log()
