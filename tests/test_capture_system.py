"""Captures keep what --system reads: /proc/sysvipc/shm as it was, and the
tmpfs mounts' use and zram's (which statvfs and /sys answer only then) as
proc/ps_mem-system.json.  Read back, a capture's ledger is the one its
capturing run printed; a member that is not as ps_mem writes it makes the
capture unusable, with one line that says why.
"""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Dict

import pytest

from tests.harness import OURS, Result, child_env, live, run_ours
from tests.harness import run_main
from tests.system_trees import MEMINFO_BY_HAND, SYSTEM_RECORD, SYSVIPC_3_10, machine


def member_data(capture: Path) -> Dict[str, bytes]:
    with tarfile.open(str(capture)) as archive:
        return {member.name: archive.extractfile(member).read()
                for member in archive if member.isfile()}


@pytest.fixture
def by_hand(tmp_path: Path):
    return machine(tmp_path / "proc", "6.1", meminfo=MEMINFO_BY_HAND)


def test_a_capture_of_a_tree_keeps_what_the_ledger_reads(by_hand, tmp_path):
    capture = tmp_path / "c.tar.gz"
    taken = run_main("--system", "--capture", str(capture), procfs=by_hand.root)
    assert taken.status == 0
    kept = member_data(capture)
    assert kept["proc/sysvipc/shm"] == SYSVIPC_3_10
    assert json.loads(kept["proc/ps_mem-system.json"]) == SYSTEM_RECORD
    assert kept["proc/meminfo"] == MEMINFO_BY_HAND
    for args in (["--system"], ["--system", "--json"]):
        read = run_main(*args, procfs=capture)
        assert (read.out, read.err, read.status) == (
            run_main(*args, procfs=by_hand.root).out, taken.err, 0)
    assert run_main("--system", procfs=capture).out == taken.out


def test_an_unpacked_capture_is_a_tree_for_the_ledger(by_hand, tmp_path):
    capture = tmp_path / "c.tar.gz"
    run_main("--capture", str(capture), procfs=by_hand.root)
    with tarfile.open(str(capture)) as archive:
        # The capture is ps_mem's own; the filter, where this Python has
        # one (3.11.4 and later), only keeps tarfile from warning.
        safe = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}
        archive.extractall(str(tmp_path / "unpacked"), **safe)
    assert run_main("--system", procfs=tmp_path / "unpacked" / "proc").out == \
        run_main("--system", procfs=by_hand.root).out


def test_a_capture_without_the_mounts_record(tmp_path):
    tree = machine(tmp_path / "proc", "6.1", meminfo=MEMINFO_BY_HAND, record=None)
    capture = tmp_path / "c.tar.gz"
    run_main("--capture", str(capture), procfs=tree.root)
    assert "proc/ps_mem-system.json" not in member_data(capture)
    done = run_main("--system", procfs=capture)
    assert done.status == 0
    assert ("Note: The proc root holds no record of its tmpfs mounts' use"
            " (ps_mem-system.json): their pages are in the rest of shared memory.\n") in done.out


def _rewrite(source: Path, target: Path, name: str, data: bytes) -> None:
    """SOURCE with member NAME's data replaced, and the end record's byte
    count with it, so that only the member is wrong."""
    with tarfile.open(str(source)) as original:
        members = [(member, original.extractfile(member).read() if member.isfile() else None)
                   for member in original]
    old = dict((member.name, content) for member, content in members)[name]
    with tarfile.open(str(target), "w:gz", format=tarfile.PAX_FORMAT) as copy:
        for member, content in members:
            if member.name == name:
                content = data
            elif member.name == "ps_mem-capture.end":
                end = json.loads(content)
                end["bytes"] += len(data) - len(old)
                content = json.dumps(end).encode()
            if content is not None:
                member.size = len(content)
            copy.addfile(member, io.BytesIO(content) if content is not None else None)


@pytest.mark.parametrize("record, reason", [
    (b"{oops", "not JSON: Expecting property name enclosed in double quotes: line 1"
               " column 2 (char 1)"),
    (json.dumps({"mounts": [{"mount_point": "/dev/shm", "fs_type": "tmpfs",
                             "used_bytes": 10, "size_bytes": 5}]}).encode(),
     "a mount uses more than its size"),
    (json.dumps({"zram_used_bytes": {"zram0": -1}}).encode(),
     "its zram_used_bytes is not a table of byte counts"),
])
def test_a_capture_whose_record_ps_mem_did_not_write(by_hand, tmp_path, record, reason):
    good, bad = tmp_path / "good.tar.gz", tmp_path / "bad.tar.gz"
    run_main("--capture", str(good), procfs=by_hand.root)
    _rewrite(good, bad, "proc/ps_mem-system.json", record)
    for args in ([], ["--system"]):
        done = run_main(*args, procfs=bad)
        assert (done.status, done.stdout) == (2, b"")
        assert done.err == ("ps_mem: cannot read %s: not a usable capture: its"
                            " ps_mem-system.json is not as ps_mem writes it: %s\n"
                            % (bad, reason))


# ----------------------------------------------------------------------------
# The live /proc
# ----------------------------------------------------------------------------


@live
def test_a_live_capture_replays_its_ledger(tmp_path):
    capture = tmp_path / "live.tar.gz"
    done = subprocess.run([sys.executable, str(OURS), "--system", "--json", "--capture",
                           str(capture)], capture_output=True, timeout=300, env=child_env())
    taken = Result(done.stdout, done.stderr, done.returncode)
    assert taken.status == 0, taken.err
    replay = run_ours("--system", "--json", procfs=capture)
    assert (replay.out, replay.err, replay.status) == (taken.out, taken.err, taken.status)
    kept = member_data(capture)
    record = json.loads(kept["proc/ps_mem-system.json"])
    # This machine's tmpfs mounts, as its own mount table lists them.
    with open("/proc/self/mountinfo", "rb") as handle:
        table = handle.read().decode("utf-8", "surrogateescape")
    devices = {line.split(" ")[2] for line in table.splitlines()
               if line.split(" - ")[1].split(" ")[0] in ("tmpfs", "devtmpfs")}
    assert devices <= {mount["device"] for mount in record["mounts"]} or not devices
    if os.path.exists("/proc/sysvipc/shm"):
        assert kept["proc/sysvipc/shm"].startswith(b"       key      shmid")
    ledger = json.loads(taken.out)["system"]
    assert ledger["lines"][0]["bytes"] == json.loads(taken.out)["total"]["ram"]
