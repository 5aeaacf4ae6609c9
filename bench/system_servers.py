#!/usr/bin/env python3
"""`ps_mem --system` on a machine running real servers (issue 11).

    python3 bench/system_servers.py            # as root; about a minute
    python3 bench/system_servers.py --install  # apt-get the servers first

Starts, from Debian's packages, each on loopback and in a directory of its
own: PostgreSQL with 512 MB of shared_buffers and a table of about 400 MB,
nginx with two workers, redis with about 100 MB of keys; and makes what no
process maps: a 500 MiB file on a tmpfs mounted for the purpose, and a
300 MiB SysV segment that nothing attaches.  Then:

  1. a ledger (`--system --json --capture`, read back as the table from
     the capture, so that both are one sample), and `free` beside it;
  2. one PostgreSQL backend prewarms the table into shared_buffers
     (pg_prewarm) and exits; a second ledger shows the pages it touched as
     shared memory that no process maps, and the postgres row unchanged.

Checks, on each ledger: its lines add up to MemTotal; its processes line is
the default report's total (the same capture read without --system); the
tmpfs file and the segment are each found within 5% of their size; after
the prewarm, "shared memory no process maps" grew by at least 90% of what
was prewarmed.  Exit status 1 if any check fails.

This is a bench script rather than a test: installing and starting the
servers takes too long for CI.  Everything it starts or makes is stopped
and removed at the end, whatever happens.
"""

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PS_MEM = os.path.join(ROOT, "ps_mem.py")
MIB = 1024 * 1024
TMPFS_FILE = 500 * MIB
SEGMENT = 300 * MIB
PACKAGES = ["postgresql", "postgresql-contrib", "nginx", "redis-server", "redis-tools"]
PG_PORT, NGINX_PORT, REDIS_PORT = 54329, 18080, 16379
# About 430 bytes a row: some 400 MB of table.
PG_ROWS = 900000

MAKE_SEGMENT = r"""
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
size = int(sys.argv[1])
shmid = libc.shmget(0, ctypes.c_size_t(size), 0o1600)
if shmid < 0:
    sys.exit("shmget: errno %d" % ctypes.get_errno())
address = libc.shmat(shmid, None, 0)
ctypes.memset(address, 0x5A, size)
libc.shmdt(ctypes.c_void_p(address))
print(shmid)
"""


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class Servers:
    """What the run starts and makes, each undone by close()."""

    def __init__(self, work: str) -> None:
        self.work = work
        self.running: List[subprocess.Popen] = []
        self.mount_point: Optional[str] = None
        self.shmid: Optional[int] = None

    def start(self, name: str, argv: List[str], user: Optional[str] = None) -> None:
        if user is not None:
            argv = ["runuser", "-u", user, "--"] + argv
        log("starting " + " ".join(argv))
        with open(os.path.join(self.work, name + ".log"), "wb") as output:
            self.running.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                                 stderr=output, start_new_session=True))

    def close(self) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                # SIGINT is PostgreSQL's fast shutdown; nginx and redis end on SIGTERM.
                os.killpg(process.pid, signal.SIGINT)
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.running.clear()
        if self.shmid is not None:
            subprocess.run(["ipcrm", "-m", str(self.shmid)], check=False)
            self.shmid = None
        if self.mount_point is not None:
            subprocess.run(["umount", self.mount_point], check=False)
            self.mount_point = None
        shutil.rmtree(self.work, ignore_errors=True)


def wait_until(check, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("%s: not ready in %.0f s" % (what, timeout))
        time.sleep(0.2)


def quiet(argv: List[str]) -> bool:
    return subprocess.run(argv, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def start_postgres(servers: Servers) -> List[str]:
    """PostgreSQL with 512 MB of shared_buffers and a table of PG_ROWS;
    the psql command line that talks to it."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    data = os.path.join(servers.work, "pg")
    sockets = os.path.join(servers.work, "pgsock")
    os.mkdir(sockets)
    subprocess.run(["chown", "postgres", servers.work, sockets], check=True)
    subprocess.run(["runuser", "-u", "postgres", "--", os.path.join(binaries, "initdb"),
                    "-D", data, "-A", "trust", "--no-sync"], check=True,
                   stdout=subprocess.DEVNULL)
    servers.start("postgres", [
        os.path.join(binaries, "postgres"), "-D", data, "-c", "shared_buffers=512MB",
        "-c", "port=%d" % PG_PORT, "-c", "listen_addresses=127.0.0.1",
        "-c", "unix_socket_directories=" + sockets, "-c", "huge_pages=off", "-c", "fsync=off",
    ], user="postgres")
    psql = ["runuser", "-u", "postgres", "--", os.path.join(binaries, "psql"), "-X", "-q",
            "-h", sockets, "-p", str(PG_PORT), "-d", "postgres", "-tA"]
    wait_until(lambda: quiet(psql + ["-c", "select 1"]), "postgres")
    log("loading %d rows into postgres" % PG_ROWS)
    subprocess.run(psql + ["-c", "create extension pg_prewarm; create table big as select g as"
                           " id, repeat('x', 400) as pad from generate_series(1, %d) g;"
                           % PG_ROWS], check=True, stdout=subprocess.DEVNULL)
    # A bulk write goes through a small ring of buffers: shared_buffers
    # stays mostly untouched until the prewarm.
    return psql


def start_nginx(servers: Servers) -> None:
    conf = os.path.join(servers.work, "nginx.conf")
    with open(conf, "w") as handle:
        handle.write("daemon off; worker_processes 2; pid %s/nginx.pid;\n"
                     "error_log %s/nginx-error.log;\n"
                     "events {}\n"
                     "http { access_log off; server { listen 127.0.0.1:%d;"
                     " location / { return 200 \"ok\\n\"; } } }\n"
                     % (servers.work, servers.work, NGINX_PORT))
    servers.start("nginx", [shutil.which("nginx") or "/usr/sbin/nginx", "-e",
                            os.path.join(servers.work, "nginx-error.log"), "-p", servers.work,
                            "-c", conf])

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", NGINX_PORT), timeout=1):
                return True
        except OSError:
            return False

    wait_until(answers, "nginx")


def start_redis(servers: Servers) -> None:
    servers.start("redis", [shutil.which("redis-server") or "/usr/bin/redis-server", "--port",
                            str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                            "no", "--dir", servers.work, "--enable-debug-command", "yes"])
    cli = [shutil.which("redis-cli") or "/usr/bin/redis-cli", "-p", str(REDIS_PORT)]
    wait_until(lambda: quiet(cli + ["ping"]), "redis")
    subprocess.run(cli + ["debug", "populate", "200000", "key", "512"], check=True,
                   stdout=subprocess.DEVNULL)


def make_unmapped(servers: Servers) -> None:
    point = os.path.join(servers.work, "tmpfs")
    os.mkdir(point)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600m", "tmpfs", point], check=True)
    servers.mount_point = point
    with open(os.path.join(point, "unmapped"), "wb") as handle:
        for _ in range(TMPFS_FILE // MIB):
            handle.write(b"\x5a" * MIB)
    made = subprocess.run([sys.executable, "-c", MAKE_SEGMENT, str(SEGMENT)], check=True,
                          stdout=subprocess.PIPE)
    servers.shmid = int(made.stdout)


def ledger(servers: Servers, name: str) -> Dict:
    """A ledger and the default report of one sample, the table, and free."""
    capture = os.path.join(servers.work, name + ".tar.gz")
    done = subprocess.run([sys.executable, PS_MEM, "--system", "--json", "--capture", capture],
                          capture_output=True, check=True)
    free = subprocess.run(["free", "-b"], capture_output=True, text=True).stdout
    table = subprocess.run([sys.executable, PS_MEM, "--system", "--procfs", capture],
                           capture_output=True, text=True, check=True).stdout
    plain = json.loads(subprocess.run([sys.executable, PS_MEM, "--json", "--procfs", capture],
                                      capture_output=True, check=True).stdout)
    document = json.loads(done.stdout)
    return {"document": document, "plain": plain, "table": table, "free": free}


def line(document: Dict, key: str, **detail) -> List[Dict]:
    return [found for found in document["system"]["lines"] if found["key"] == key
            and all(found["detail"].get(name) == value for name, value in detail.items())]


def check(taken: Dict, servers: Servers, failures: List[str], label: str) -> None:
    document = taken["document"]
    system = document["system"]
    top = sum(found["bytes"] for found in system["lines"] if found["depth"] == 0
              and found["counted"])
    if top != system["total"]:
        failures.append("%s: the lines add up to %d, MemTotal is %d" % (label, top,
                                                                         system["total"]))
    if system["lines"][0]["bytes"] != taken["plain"]["total"]["ram"]:
        failures.append("%s: processes line %d, the default report's total %d" % (
            label, system["lines"][0]["bytes"], taken["plain"]["total"]["ram"]))
    for what, found, size in (
            ("tmpfs file", line(document, "shmem.mount", mount_point=servers.mount_point),
             TMPFS_FILE),
            ("SysV segment", line(document, "shmem.sysv", shmid=servers.shmid), SEGMENT)):
        if len(found) != 1 or abs(found[0]["bytes"] - size) > 0.05 * size:
            failures.append("%s: the %s is not found within 5%%: %r" % (label, what, found))
        else:
            print("%s: %s found: %.1f MiB of %.0f MiB" % (label, what,
                                                         found[0]["bytes"] / MIB, size / MIB))


def used_by_free(text: str) -> int:
    return int(text.splitlines()[1].split()[2])


def postgres_ram(document: Dict) -> int:
    return sum(program["ram"] for program in document["programs"]
               if program["name"] == "postgres")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--install", action="store_true",
                        help="apt-get install -y the servers that are missing first")
    parser.add_argument("--keep-captures", metavar="DIR",
                        help="copy the two samples' captures (before.tar.gz, after.tar.gz)"
                             " into DIR, to read again with --procfs")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        log("system_servers.py: run as root (servers, a tmpfs mount, every process's memory)")
        return 2
    missing = [tool for tool in ("nginx", "redis-server", "redis-cli")
               if shutil.which(tool) is None]
    if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        missing.append("postgres")
    if missing and args.install:
        subprocess.run(["apt-get", "install", "-y"] + PACKAGES, check=True)
    elif missing:
        log("missing: %s; run with --install, or: apt-get install -y %s"
            % (", ".join(missing), " ".join(PACKAGES)))
        return 2
    servers = Servers(tempfile.mkdtemp(prefix="ps_mem-servers-"))
    failures: List[str] = []
    try:
        psql = start_postgres(servers)
        start_nginx(servers)
        start_redis(servers)
        make_unmapped(servers)
        time.sleep(1)
        before = ledger(servers, "before")
        print("== the ledger, with PostgreSQL, nginx, redis, a 500 MiB tmpfs file and a"
              " 300 MiB SysV segment\n")
        print(before["table"])
        print("== free -b, right after\n")
        print(before["free"])
        check(before, servers, failures, "before")
        total = before["document"]["total"]["ram"]
        free_used = used_by_free(before["free"])
        print("ps_mem's total %.1f MiB; free's used %.1f MiB (MemTotal - MemAvailable)\n"
              % (total / MIB, free_used / MIB))

        log("prewarming the table into shared_buffers, from one backend that then exits")
        blocks = int(subprocess.run(psql + ["-c", "select pg_prewarm('big', 'buffer')"],
                                    capture_output=True, text=True, check=True).stdout)
        prewarmed = min(blocks * 8192, 512 * MIB)
        time.sleep(1)
        after = ledger(servers, "after")
        print("== after one backend prewarmed %.0f MiB of shared_buffers and exited\n"
              % (prewarmed / MIB))
        print(after["table"])
        check(after, servers, failures, "after")
        if args.keep_captures:
            for name in ("before", "after"):
                shutil.copy(os.path.join(servers.work, name + ".tar.gz"), args.keep_captures)
        grew = line(after["document"], "shmem")[0]["bytes"] - \
            line(before["document"], "shmem")[0]["bytes"]
        row = postgres_ram(after["document"]) - postgres_ram(before["document"])
        print("shared memory no process maps grew by %.1f MiB; the postgres row by %.1f MiB"
              % (grew / MIB, row / MIB))
        if grew < 0.9 * prewarmed:
            failures.append("after the prewarm, unmapped shared memory grew by %d bytes, not"
                            " %d" % (grew, prewarmed))
    finally:
        servers.close()
    for failure in failures:
        print("FAILED: " + failure)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
