"""--system on this machine, with the situations it must find made real:

  * a 200 MiB file on a tmpfs mounted for the test, which nothing maps;
  * a 100 MiB SysV segment that a process made, touched and left (nothing
    attaches it);
  * a process holding 50 MiB of /dev/shm mapped and touched;
  * a 64 MiB file on a tmpfs mounted in another mount namespace (unshare),
    which only that namespace's process can see.

One run's JSON must add up to MemTotal, its processes line be its default
report's total, and each of the four be found within 5% of its size.
Everything made is removed in teardown: the holder and the namespace's
process killed (the namespace, and its tmpfs, go with it), the segment
removed with ipcrm, the tmpfs unmounted.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.harness import live, run_ours
from tests.harness import ps_mem
from tests.realproc import Processes

MIB = 1024 * 1024
TMPFS_FILE = 200 * MIB
SEGMENT = 100 * MIB
DEV_SHM_FILE = 50 * MIB
NAMESPACE_FILE = 64 * MIB

# shmget, touch every page, detach, print the id, exit.
MAKE_SEGMENT = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
size = int(sys.argv[1])
shmid = libc.shmget(0, ctypes.c_size_t(size), 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
if shmid < 0:
    sys.exit("shmget: errno %d" % ctypes.get_errno())
address = libc.shmat(shmid, None, 0)
if address in (None, ctypes.c_void_p(-1).value):
    sys.exit("shmat: errno %d" % ctypes.get_errno())
ctypes.memset(address, 0x5A, size)
libc.shmdt(ctypes.c_void_p(address))
print(shmid)
"""

# Map a /dev/shm file shared, touch it, say so in a file, then wait.
HOLD_DEV_SHM = r"""
import mmap, os, sys, time
path, size, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, size)
area = mmap.mmap(fd, size, mmap.MAP_SHARED)
for offset in range(0, size, mmap.PAGESIZE):
    area[offset] = 0x5A
open(ready, "w").close()
time.sleep(600)
"""


def wait_for(path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not appear in %.0f s" % (path, timeout))
        time.sleep(0.05)


@pytest.fixture
def situations():
    if not os.path.exists("/proc/sysvipc/shm"):
        pytest.skip("this kernel has no SysV IPC")
    for tool in ("mount", "umount", "ipcrm", "unshare"):
        if shutil.which(tool) is None:
            pytest.skip("%s is not installed" % tool)
    work = tempfile.mkdtemp(prefix="ps_mem-system-")
    mount_point = os.path.join(work, "tmpfs")
    namespace_point = os.path.join(work, "namespace")
    dev_shm_path = "/dev/shm/ps_mem-system-%d" % os.getpid()
    os.mkdir(mount_point)
    os.mkdir(namespace_point)
    procs = Processes()
    mounted = False
    shmid = None
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300m", "tmpfs", mount_point],
                       check=True)
        mounted = True
        with open(os.path.join(mount_point, "unmapped"), "wb") as stream:
            for _ in range(TMPFS_FILE // MIB):
                stream.write(b"\x5a" * MIB)
        made = subprocess.run([sys.executable, "-c", MAKE_SEGMENT, str(SEGMENT)], check=True,
                              stdout=subprocess.PIPE, timeout=60)
        shmid = int(made.stdout)
        holder = procs.command([sys.executable, "-c", HOLD_DEV_SHM, dev_shm_path,
                                str(DEV_SHM_FILE), os.path.join(work, "holder-ready")],
                               exe=os.path.realpath(sys.executable), settle=False)
        wait_for(os.path.join(work, "holder-ready"))
        script = ("mount -t tmpfs -o size=100m tmpfs %s && head -c %d /dev/zero > %s/file"
                  " && touch %s/namespace-ready && exec sleep 600"
                  % (namespace_point, NAMESPACE_FILE, namespace_point, work))
        hidden = procs.command(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                script], settle=False, wait_exec=False)
        wait_for(os.path.join(work, "namespace-ready"))
        yield {"mount_point": mount_point, "shmid": shmid, "holder": holder.pid,
               "namespace_point": namespace_point, "namespace_pid": hidden.pid}
    finally:
        procs.close()
        if os.path.exists(dev_shm_path):
            os.unlink(dev_shm_path)
        if shmid is not None:
            subprocess.run(["ipcrm", "-m", str(shmid)], check=False)
        if mounted:
            subprocess.run(["umount", mount_point], check=False)
        shutil.rmtree(work, ignore_errors=True)


def within(found: int, expected: int) -> bool:
    return abs(found - expected) <= 0.05 * expected


def lines_of(ledger: dict, key: str) -> list:
    return [line for line in ledger["lines"] if line["key"] == key]


@live
def test_the_ledger_finds_what_no_process_maps(situations):
    done = run_ours("--system", "--json", timeout=300)
    assert done.status == 0, done.err
    document = json.loads(done.out)
    ledger = document["system"]
    with open("/proc/meminfo", "rb") as handle:
        memtotal = int(handle.read().split(b"MemTotal:")[1].split()[0]) * 1024
    assert ledger["total"] == memtotal
    assert sum(line["bytes"] for line in ledger["lines"]
               if line["depth"] == 0 and line["counted"]) == memtotal
    # The processes line is this sample's default report's total.
    assert ledger["lines"][0]["key"] == "processes"
    assert ledger["lines"][0]["bytes"] == document["total"]["ram"]

    (tmpfs,) = [line for line in lines_of(ledger, "shmem.mount")
                if line["detail"]["mount_point"] == situations["mount_point"]]
    assert within(tmpfs["bytes"], TMPFS_FILE), tmpfs

    (segment,) = [line for line in lines_of(ledger, "shmem.sysv")
                  if line["detail"]["shmid"] == situations["shmid"]]
    assert within(segment["bytes"], SEGMENT), segment
    assert segment["detail"]["nattch"] == 0 and "exited, 0 attached" in segment["name"]

    (hidden,) = [line for line in lines_of(ledger, "shmem.mount")
                 if line["detail"]["namespace_pid"] == situations["namespace_pid"]]
    assert hidden["detail"]["mount_point"] == situations["namespace_point"]
    assert within(hidden["bytes"], NAMESPACE_FILE), hidden
    assert hidden["name"].endswith("(mount namespace of pid %d, sleep)"
                                   % situations["namespace_pid"])

    # The holder's /dev/shm pages are the processes' shmem, and in /dev/shm's use.
    (holder,) = [program for program in document["programs"]
                 if situations["holder"] in program["pids"]]
    assert holder["ram"] >= 0.95 * DEV_SHM_FILE
    assert lines_of(ledger, "processes.shmem")[0]["bytes"] >= 0.95 * DEV_SHM_FILE
    dev_shm = [line for line in lines_of(ledger, "shmem.mount")
               if line["detail"]["mount_point"] == "/dev/shm"
               and line["detail"]["namespace_pid"] is None]
    assert dev_shm and dev_shm[0]["bytes"] >= 0.95 * DEV_SHM_FILE

    # What no process maps holds the three files and the segment, at least.
    (unmapped,) = lines_of(ledger, "shmem")
    assert unmapped["bytes"] >= 0.95 * (TMPFS_FILE + SEGMENT + NAMESPACE_FILE)


@live
def test_the_table_shows_them(situations):
    done = run_ours("--system", timeout=300)
    assert done.status == 0, done.err
    table = done.out
    assert table.startswith(" RAM used    Where\n\n")
    assert "   tmpfs %s\n" % situations["mount_point"] in table
    assert " id %d (" % situations["shmid"] in table
    assert "tmpfs %s (mount namespace of pid %d, sleep)\n" % (
        situations["namespace_point"], situations["namespace_pid"]) in table
    assert "\n---------------------------------\n" in table and "   MemTotal\n" in table


@live
def test_a_capture_of_them_reads_back_both_ways(situations, tmp_path):
    capture = tmp_path / "c.tar.gz"
    taken = run_ours("--system", "--json", "--capture", str(capture), timeout=300)
    assert taken.status == 0, taken.err
    ledger = json.loads(taken.out)["system"]
    # The default report read from the capture: the same total.
    plain = json.loads(run_ours("--json", procfs=capture).out)
    assert ledger["lines"][0]["bytes"] == plain["total"]["ram"]
    found = [line for line in lines_of(ledger, "shmem.mount")
             if line["detail"]["mount_point"] in (situations["mount_point"],
                                                   situations["namespace_point"])]
    assert sorted(round(line["bytes"] / MIB) for line in found) == [64, 200]
    assert Path(capture).stat().st_size < 64 * MIB


@live
def test_forked_readers_bring_the_parts_and_namespaces():
    """Seven idle processes read by three readers and by one: the same
    anonymous PSS and mount namespace each."""
    with Processes() as processes:
        started = [processes.sleep_named(b"ledger-%d" % index) for index in range(7)]
        options = ps_mem.Options(pids=tuple(process.pid for process in started), system=True)
        procfs = ps_mem.ProcFS("/proc", ps_mem.LIVE)
        kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
        one = ps_mem.collect(procfs, options, kernel, os.getpid(), readers=1)
        three = ps_mem.collect(procfs, options, kernel, os.getpid(), readers=3)
    ours = os.stat("/proc/self/ns/mnt").st_ino

    def brought(scan):
        # Their shares of libc move while the readers run: the anonymous part does not.
        return [(sample.pid, sample.pss_parts[0], sample.mount_namespace)
                for sample in scan.samples]

    assert brought(three) == brought(one)
    assert {sample.mount_namespace for sample in one.samples} == {ours}
    if kernel >= (5, 3, 0):
        assert all(sample.pss_parts[0] is not None for sample in one.samples)


@pytest.fixture
def mounts():
    """Mounts of this namespace, each removed in teardown: a tmpfs with a
    1 MiB file, bound a second time elsewhere; a tmpfs with no size limit; a
    ramfs; a tmpfs with another on top of it."""
    if shutil.which("mount") is None:
        pytest.skip("mount is not installed")
    work = tempfile.mkdtemp(prefix="ps_mem-mounts-")
    points = {name: os.path.join(work, name) for name in ("sized", "bound", "unlimited",
                                                        "ramfs", "hidden")}
    for point in points.values():
        os.mkdir(point)
    done: list = []
    try:
        for argv in (["-t", "tmpfs", "-o", "size=10m", "tmpfs", points["sized"]],
                     ["--bind", points["sized"], points["bound"]],
                     ["-t", "tmpfs", "-o", "size=0", "tmpfs", points["unlimited"]],
                     ["-t", "ramfs", "ramfs", points["ramfs"]],
                     ["-t", "tmpfs", "-o", "size=4m", "tmpfs", points["hidden"]],
                     ["-t", "tmpfs", "-o", "size=8m", "tmpfs", points["hidden"]]):
            subprocess.run(["mount"] + argv, check=True)
            done.append(argv[-1])
        with open(os.path.join(points["sized"], "file"), "wb") as stream:
            stream.write(b"\x5a" * MIB)
        yield points
    finally:
        for point in reversed(done):
            subprocess.run(["umount", point], check=False)
        shutil.rmtree(work, ignore_errors=True)


@live
def test_the_mounts_of_this_namespace(mounts):
    record = ps_mem.live_system_record(ps_mem.ProcFS("/proc", ps_mem.LIVE), {})
    found = {}
    for mount in record.mounts:
        found.setdefault(mount.mount_point, []).append(mount)
    (sized,) = found[mounts["sized"]]
    assert sized.used_bytes == MIB and sized.size_bytes == 10 * MIB
    assert sized.device == "%d:%d" % (os.major(os.stat(mounts["sized"]).st_dev),
                                      os.minor(os.stat(mounts["sized"]).st_dev))
    assert mounts["bound"] not in found  # the same tmpfs: counted once
    (unlimited,) = found[mounts["unlimited"]]
    assert unlimited.used_bytes is None and unlimited.size_bytes is None
    assert mounts["ramfs"] in record.ramfs and mounts["ramfs"] not in found
    # The lower one cannot be asked through its mount point: the one on top answers.
    lower, upper = found[mounts["hidden"]]
    assert (lower.used_bytes, upper.used_bytes, upper.size_bytes) == (None, 0, 8 * MIB)
    assert all(mount.namespace_pid is None for mount in record.mounts)


@live
def test_mount_use_of_what_is_not_a_mounted_directory(tmp_path):
    mount = ps_mem.Mount(str(tmp_path / "gone"), "tmpfs", "0:99")
    assert ps_mem._mount_use(mount, mount.mount_point, None) == ps_mem.ShmMount(
        mount.mount_point, "tmpfs", "0:99", None, None, None)
    (tmp_path / "file").write_bytes(b"")
    assert ps_mem._mount_use(mount._replace(mount_point=str(tmp_path / "file")),
                             str(tmp_path / "file"), None).used_bytes is None
    # A directory of another filesystem than the mount's device says.
    assert ps_mem._mount_use(mount, str(tmp_path), None).used_bytes is None


@live
def test_mount_namespaces_past_the_bound_are_named_in_a_note(monkeypatch):
    monkeypatch.setattr(ps_mem, "_MAX_NAMESPACES", 1)
    notes: list = []
    # Two made-up namespaces, each "in" a pid: the first is looked into, the other not.
    record = ps_mem.live_system_record(ps_mem.ProcFS("/proc", ps_mem.LIVE),
                                       {1: os.getpid(), 2: os.getpid() + 1}, notes)
    assert notes == ["Mount namespaces not looked into: 1 (past 1 namespaces, 64 MiB of mount"
                     " tables or 65536 mounts); their tmpfs pages are in the rest of shared"
                     " memory."]
    assert all(mount.namespace_pid in (None, os.getpid()) for mount in record.mounts)
