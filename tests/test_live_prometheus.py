"""--prometheus --output on this machine's /proc, served by node_exporter, as
contrib/systemd's service runs it: every process, names chosen by whoever
started them, and a process ps_mem may not read."""

import os
import shutil
import subprocess

import pytest

from tests.harness import OURS, live, run_ours
from tests.prometheus_harness import families, series
from tests.realproc import Processes

# A file name with a quote, a backslash, a newline, an escape sequence and a
# byte that is not UTF-8.  The row shows it as the table does: the kernel's
# name, cut at 15 bytes, with the backslash and the newline escaped by
# status (as \\ and \n), and ESC as "?".
HOSTILE = b'we"ird\\na\nme\x1b[1m\xff'
SHOWN = 'we"ird\\\\na\\nme?[1'


@live
def test_live_textfile_is_served(node_exporter):
    target = node_exporter.directory / "ps_mem.prom"
    with Processes() as procs:
        named = procs.sleep_named(HOSTILE)
        done = run_ours("--prometheus", "--output", str(target))
        assert (done.status, done.out) == (0, ""), done.err
        text = node_exporter.scrape()
    assert families(text)["node_textfile_scrape_error"].samples[()] == 0, node_exporter.log()
    assert series(text, "ps_mem_") == series(target.read_text(), "ps_mem_")
    served = families(text)
    assert served["ps_mem_processes"].samples[(("group_by", "program"),
                                               ("program", SHOWN))] == 1
    assert 'program="we\\"ird\\\\\\\\na\\\\nme?[1"' in text
    assert "\x1b" not in text
    # ps_mem itself is in no row; every other process is in one.
    assert sum(served["ps_mem_processes"].samples.values()) >= 2
    assert served["ps_mem_total_ram_bytes"].samples[(("group_by", "program"),)] == sum(
        served["ps_mem_ram_bytes"].samples.values())
    assert named.pid  # the sleep ran while the scan was made


PYTHON = "/usr/bin/python3"


@live
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
@pytest.mark.skipif(not os.path.exists(PYTHON), reason="needs %s, for another user to run" % PYTHON)
def test_live_unreadable_processes_are_counted():
    """Run as nobody, ps_mem may read nobody's sleep, not root's."""
    setpriv = [shutil.which("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"]
    with Processes() as procs:
        roots = procs.sleep()
        nobodys = procs.command(setpriv + [shutil.which("sleep"), "600"],
                                exe=os.path.realpath(shutil.which("sleep")))
        done = subprocess.run(setpriv + [PYTHON, str(OURS), "--prometheus",
                                         "-p", "%d,%d" % (roots.pid, nobodys.pid)],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ("Warning: 1 process could not be read (permission denied); "
                           "their memory is not included.\n")
    found = families(done.stdout)
    assert found["ps_mem_unreadable_processes"].samples[(("group_by", "program"),)] == 1
    assert found["ps_mem_processes"].samples == {(("group_by", "program"),
                                                  ("program", "sleep")): 1}
