"""One fixture /proc tree per situation ps_mem must handle like 3.14.

Each function builds its tree at `root` (a directory that does not exist
yet) and returns the ProcTree, with `probe_pids` set to the pids a `-p` test
should name, and `vanished` to the pids whose files were made to vanish in
a way that crashes 3.14 (see the "Processes that vanish" section).

Memory sizes are chosen so that no two rows tie unless a tree is about
ties: the order of tied rows follows the directory's listing order, which
a copied tree need not keep.
"""

from pathlib import Path
from typing import Callable, Dict, Sequence

from tests.procfs_builder import PYTHON, ProcTree, mapping, program_maps

TreeBuilder = Callable[[Path], ProcTree]
ALL: Dict[str, TreeBuilder] = {}


def tree(function: TreeBuilder) -> TreeBuilder:
    ALL[function.__name__] = function
    return function


# ----------------------------------------------------------------------------
# Populations shared by several trees
# ----------------------------------------------------------------------------


def kernel_threads(t: ProcTree) -> None:
    """kthreadd and a few of its children: no exe link, empty cmdline, no
    memory (smaps empty, statm all zero)."""
    for pid, name in ((2, "kthreadd"), (3, "rcu_gp"), (14, "kworker/0:1H-kblockd"),
                      (87, "ksoftirqd/1")):
        t.add(pid, name, None, ppid=0 if pid == 2 else 2, statm=(0,) * 7)


def server(t: ProcTree, *, swap: bool = True) -> None:
    """A small server: init, journald, sshd and shells, nginx, postgres, a
    python app.  Heaps differ so no two rows tie; with `swap`, some memory
    is swapped out, postgres's shared among its three processes."""
    sw = 1 if swap else 0
    t.add(1, "systemd", "/usr/lib/systemd/systemd", cmdline=["/sbin/init", "splash"], ppid=0,
          maps=program_maps("/usr/lib/systemd/systemd", heap_kib=5200, swap_kib=12 * sw))
    kernel_threads(t)
    # Name is cut to 15 characters: shown as the exe's basename.
    t.add(412, "systemd-journal", "/usr/lib/systemd/systemd-journald",
          maps=program_maps("/usr/lib/systemd/systemd-journald", heap_kib=3100,
                            swap_kib=200 * sw))
    t.add(688, "sshd", "/usr/sbin/sshd",
          cmdline=["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"],
          maps=program_maps("/usr/sbin/sshd", heap_kib=1300))
    t.add(1201, "sshd", "/usr/sbin/sshd", cmdline=["sshd: alice [priv]"], ppid=688,
          maps=program_maps("/usr/sbin/sshd", heap_kib=1500, swap_kib=36 * sw))
    t.add(1203, "bash", "/usr/bin/bash", cmdline=["-bash"], ppid=1201,
          maps=program_maps("/usr/bin/bash", heap_kib=2400))
    t.add(1302, "bash", "/usr/bin/bash", cmdline=["/bin/bash", "./backup.sh", "--full"],
          ppid=1201, maps=program_maps("/usr/bin/bash", heap_kib=2100, swap_kib=52 * sw))
    master = "nginx: master process /usr/sbin/nginx -g daemon on; master_process on;"
    t.add(2000, "nginx", "/usr/sbin/nginx", cmdline=[master],
          maps=program_maps("/usr/sbin/nginx", heap_kib=1800))
    for pid, heap in ((2001, 4100), (2002, 4260)):
        t.add(pid, "nginx", "/usr/sbin/nginx", cmdline=["nginx: worker process"], ppid=2000,
              maps=program_maps("/usr/sbin/nginx", heap_kib=heap, sharers=3))
    postgres = "/usr/lib/postgresql/15/bin/postgres"
    shm = mapping("/SYSV0052e2c1 (deleted)", 145408, "rw-s", shared=37000, sharers=3,
                  dirty=True)
    for pid, heap, args in (
            (3100, 9300, [postgres, "-D", "/var/lib/postgresql/15/main", "-c",
                          "config_file=/etc/postgresql/15/main/postgresql.conf"]),
            (3104, 2900, ["postgres: 15/main: checkpointer "]),
            (3105, 2650, ["postgres: 15/main: walwriter "])):
        t.add(pid, "postgres", postgres, cmdline=args, ppid=1 if pid == 3100 else 3100,
              maps=program_maps(postgres, heap_kib=heap, swap_kib=300 * sw, swap_sharers=3,
                                extra=[shm]))
    # Name "python3" is a prefix of python3.11: shown as python3.11.
    t.add(4000, "python3", PYTHON, cmdline=["/usr/bin/python3", "/srv/app/manage.py",
                                            "runserver", "0.0.0.0:8000"],
          maps=program_maps(PYTHON, heap_kib=25000, lib_kib=400, swap_kib=1000 * sw))
    t.probe_pids = [1203, 2001]


def old_server(t: ProcTree) -> None:
    """A 2.6 or 2.4 era server: prefork httpd, crond, sshd, bash, and six
    mingetty (alike but for their argument, which -s shows)."""
    t.add(1, "init", "/sbin/init", cmdline=["init [3]"], ppid=0,
          maps=program_maps("/sbin/init", heap_kib=120))
    kernel_threads(t)
    httpd = "/usr/sbin/httpd"
    t.add(2301, "httpd", httpd, maps=program_maps(httpd, heap_kib=3000))
    for pid, heap, lib_kib in ((2305, 5400, 96), (2306, 5104, 128), (2307, 6000, 64)):
        t.add(pid, "httpd", httpd, ppid=2301,
              maps=program_maps(httpd, heap_kib=heap, lib_kib=lib_kib))
    t.add(1950, "crond", "/usr/sbin/crond", maps=program_maps("/usr/sbin/crond", heap_kib=400))
    t.add(1800, "sshd", "/usr/sbin/sshd", maps=program_maps("/usr/sbin/sshd", heap_kib=700))
    t.add(2500, "bash", "/bin/bash", cmdline=["-bash"], ppid=1800,
          maps=program_maps("/bin/bash", heap_kib=1400))
    for tty in range(1, 7):
        t.add(2400 + tty, "mingetty", "/sbin/mingetty", cmdline=["/sbin/mingetty", "tty%d" % tty],
              maps=program_maps("/sbin/mingetty", heap_kib=88))
    t.probe_pids = [2500, 2305]


def few(t: ProcTree) -> None:
    """Three ordinary processes with clearly different sizes."""
    t.add(1, "systemd", "/usr/lib/systemd/systemd", ppid=0,
          maps=program_maps("/usr/lib/systemd/systemd", heap_kib=5200))
    t.add(688, "sshd", "/usr/sbin/sshd", maps=program_maps("/usr/sbin/sshd", heap_kib=1300))
    t.add(1203, "bash", "/usr/bin/bash", cmdline=["-bash"], ppid=688,
          maps=program_maps("/usr/bin/bash", heap_kib=2400))
    t.probe_pids = [1203, 688]


# ----------------------------------------------------------------------------
# Kernels: where the numbers come from
# ----------------------------------------------------------------------------


@tree
def rollup_6_1(root: Path) -> ProcTree:
    """Linux 6.1: smaps_rollup, with Pss_Dirty/Pss_Anon/... (not Pss) and
    SwapPss."""
    t = ProcTree(root, "6.1")
    server(t)
    return t


@tree
def smaps_pss_per_line(root: Path) -> ProcTree:
    """Linux 4.4: smaps only, many mappings, so the 0.5 KiB ps_mem adds per
    Pss line shows.  "many-maps" has 300 mappings of 3 KiB private each:
    Private 900 KiB, Pss 900 + 300 * 0.5 = 1050 KiB, so it prints
    "900.0 KiB + 150.0 KiB = 1.0 MiB" (without the 0.5s: 900.0 KiB)."""
    t = ProcTree(root, "4.4")
    server(t, swap=False)
    many = [mapping("/usr/lib/x86_64-linux-gnu/libmany%d.so" % (i // 2), 4,
                    "r-xp" if i % 2 else "r--p", private=3) for i in range(300)]
    t.add(5000, "many-maps", "/usr/local/bin/many-maps", maps=many)
    libs = ["/usr/lib/x86_64-linux-gnu/libgtk-%d.so.0" % i for i in range(60)]
    t.add(5100, "gnome-shell", "/usr/bin/gnome-shell",
          maps=program_maps("/usr/bin/gnome-shell", heap_kib=180000, libs=libs, lib_kib=388,
                            sharers=7))
    t.probe_pids = [5000, 5100]
    return t


@tree
def smaps_no_pss(root: Path) -> ProcTree:
    """Linux 2.6.18 (RHEL 5): smaps without Pss.  Shared is each process's
    Shared_* sum and a program gets its largest; -t has no total (exit 1)."""
    t = ProcTree(root, "2.6.18")
    old_server(t)
    return t


@tree
def statm_2_6_18(root: Path) -> ProcTree:
    """Linux 2.6.18 without smaps: statm's shared pages."""
    t = ProcTree(root, "2.6.18", omit=("smaps",))
    old_server(t)
    return t


@tree
def statm_2_6_9(root: Path) -> ProcTree:
    """Linux 2.6.9: statm's shared column is the file-backed extent, so
    Shared is taken as 0 ("not reported" warning)."""
    t = ProcTree(root, "2.6.9")
    old_server(t)
    return t


@tree
def statm_modern(root: Path) -> ProcTree:
    """A recent kernel built without smaps (CONFIG_PROC_PAGE_MONITOR=n, as
    on some embedded systems): statm, and 3.14's "slightly over-estimated"
    for any kernel after 2.6 without smaps."""
    t = ProcTree(root, "6.1", omit=("smaps", "smaps_rollup"))
    old_server(t)
    return t


@tree
def kernel_2_4(root: Path) -> ProcTree:
    """Mainline 2.4: meminfo has Inactive: but no Inact_ (level 1)."""
    t = ProcTree(root, "2.4")
    old_server(t)
    return t


@tree
def kernel_2_4_rmap(root: Path) -> ProcTree:
    """Red Hat's rmap 2.4: Inact_dirty and friends in meminfo (level 0)."""
    t = ProcTree(root, "2.4-rmap")
    old_server(t)
    return t


@tree
def swap_without_swappss(root: Path) -> ProcTree:
    """Linux 3.10: smaps with Swap but no SwapPss (before 4.3): swap is
    over-estimated per program and -S -t has no total."""
    t = ProcTree(root, "3.10")
    server(t)
    return t


@tree
def swap_with_swappss(root: Path) -> ProcTree:
    """Linux 4.4: smaps with SwapPss.  Postgres's swap is shared by its
    three processes, so Swap and SwapPss differ."""
    t = ProcTree(root, "4.4")
    server(t)
    return t


@tree
def hugetlb(root: Path) -> ProcTree:
    """Hugetlb pages are in no Pss: Private_Hugetlb adds to Private,
    Shared_Hugetlb to Shared, taking each program's largest."""
    t = ProcTree(root, "6.1")
    few(t)
    qemu = "/usr/bin/qemu-system-x86_64"
    t.add(6100, "qemu-system-x86", qemu,
          maps=program_maps(qemu, heap_kib=52000, extra=[
              mapping("/anon_hugepage (deleted)", 2097152, private_hugetlb=2097152)]))
    postgres = "/usr/lib/postgresql/15/bin/postgres"
    for pid, huge in ((6200, 126976), (6201, 131072), (6202, 129024)):
        t.add(pid, "postgres", postgres, ppid=1 if pid == 6200 else 6200,
              maps=program_maps(postgres, heap_kib=3000 + pid - 6200, extra=[
                  mapping("/anon_hugepage (deleted)", 131072, "rw-s", shared_hugetlb=huge)]))
    t.add(6300, "dbwriter", "/opt/db/bin/dbwriter",
          maps=program_maps("/opt/db/bin/dbwriter", heap_kib=800, extra=[
              mapping("/dev/hugepages/db-private", 4096, private_hugetlb=4096),
              mapping("/dev/hugepages/db-shared", 8192, "rw-s", shared_hugetlb=6144)]))
    t.probe_pids = [6100, 6201]
    return t


# ----------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------


@tree
def exe_updated(root: Path) -> ProcTree:
    """The executable was replaced by a package upgrade: the link says
    "(deleted)" but the path exists again: "NAME [updated]"."""
    t = ProcTree(root, "6.1")
    few(t)
    path = t.real_file("/usr/sbin/updated-daemon")
    t.add(7000, "updated-daemon", path + " (deleted)", cmdline=[path, "--foreground"],
          maps=program_maps(path, heap_kib=3300))
    t.probe_pids = [7000, 1203]
    return t


@tree
def exe_deleted(root: Path) -> ProcTree:
    """The executable is gone: "NAME [deleted]"."""
    t = ProcTree(root, "6.1")
    few(t)
    path = str(t.root.parent / "gone" / "usr/bin/gone-daemon")
    t.add(7100, "gone-daemon", path + " (deleted)", cmdline=[path],
          maps=program_maps(path, heap_kib=3500))
    t.probe_pids = [7100, 1203]
    return t


@tree
def exe_prelinked(root: Path) -> ProcTree:
    """prelink rewrote the binary under a temporary name and renamed it:
    the link names the temporary (gone), the command line the real path
    (present): "CMDLINE[0] [updated]"."""
    t = ProcTree(root, "6.1")
    few(t)
    real = t.real_file("/usr/libexec/notification-area-applet")
    temporary = real.replace("notification-area-applet",
                             "notification-area-applet.#prelink#.fX7LCT")
    t.add(7200, "notification-are", temporary + " (deleted)", cmdline=[real],
          maps=program_maps(real, heap_kib=3700))
    t.probe_pids = [7200, 1203]
    return t


@tree
def truncated_name(root: Path) -> ProcTree:
    """status's Name is the first 15 bytes of the command name: shown as
    the exe's basename when it is a prefix of it, else as it is."""
    t = ProcTree(root, "6.1")
    few(t)
    t.add(412, "systemd-journal", "/usr/lib/systemd/systemd-journald",
          maps=program_maps("/usr/lib/systemd/systemd-journald", heap_kib=3100))
    t.add(900, "gnome-session-b", "/usr/libexec/gnome-session-binary",
          maps=program_maps("/usr/libexec/gnome-session-binary", heap_kib=7100))
    t.add(901, "gnome-session-c", "/usr/libexec/gnome-session-ctl", ppid=900,
          maps=program_maps("/usr/libexec/gnome-session-ctl", heap_kib=610))
    # A script that set its own name: not a prefix of python3.11, and its
    # parent runs something else.
    t.add(950, "my-long-script-", PYTHON, cmdline=["python3", "/opt/my-long-script-name.py"],
          maps=program_maps(PYTHON, heap_kib=14100))
    t.add(951, "python3", PYTHON, cmdline=["python3", "-m", "http.server"],
          maps=program_maps(PYTHON, heap_kib=11900))
    # Run through a symlink (/usr/bin/vim -> vim.basic): comm "vim".
    t.add(960, "vim", "/usr/bin/vim.basic", ppid=1203,
          maps=program_maps("/usr/bin/vim.basic", heap_kib=5900))
    t.add(961, "view", "/usr/bin/vim.basic", ppid=1203,
          maps=program_maps("/usr/bin/vim.basic", heap_kib=5950))
    # An empty Name (prctl(PR_SET_NAME, "")) is a prefix of anything.
    t.add(970, "", "/usr/local/bin/nameless",
          maps=program_maps("/usr/local/bin/nameless", heap_kib=770))
    t.probe_pids = [412, 961]
    return t


@tree
def renamed_children(root: Path) -> ProcTree:
    """Children that renamed themselves join a parent running the same
    exe (firefox's "Web Content"); with a parent running something else,
    a parent that is gone or a kernel thread, they stay apart."""
    t = ProcTree(root, "6.1")
    few(t)
    kernel_threads(t)
    firefox = "/usr/lib/firefox-esr/firefox-esr"
    t.add(2000, "firefox-esr", firefox, ppid=1203,
          maps=program_maps(firefox, heap_kib=310000, sharers=9))
    for number, (pid, name, ppid) in enumerate((
            (2100, "Web Content", 2000), (2101, "Web Content", 2000),
            (2102, "WebExtensions", 2000), (2103, "Isolated Web Co", 2000),
            (2104, "RDD Process", 2000), (2105, "Privileged Cont", 2000),
            (2200, "Socket Process", 2101))):  # a grandchild: its parent is a child
        t.add(pid, name, firefox, ppid=ppid,
              cmdline=[firefox, "-contentproc", "-childID", str(number + 1), "-isForBrowser",
                       "-prefsLen", "30975", "{5f1b8a4e}", "2000", "true", "tab"],
              maps=program_maps(firefox, heap_kib=41000 + 3100 * number, sharers=9))
    t.add(3000, "bash", "/usr/bin/bash", ppid=1203,
          maps=program_maps("/usr/bin/bash", heap_kib=2700))
    # Same exe as firefox, but the parent runs bash / is gone / is kthreadd.
    for pid, ppid in ((3001, 3000), (3002, 4321), (3003, 2)):
        t.add(pid, "Web Content", firefox, ppid=ppid,
              maps=program_maps(firefox, heap_kib=20000 + pid, sharers=9))
    # A parent whose cmdline is gone cannot be named, so no joining.
    t.add(2300, "firefox-esr", firefox, ppid=1203, omit=("cmdline",),
          maps=program_maps(firefox, heap_kib=90000, sharers=9))
    t.add(2301, "Web Content", firefox, ppid=2300,
          maps=program_maps(firefox, heap_kib=33000, sharers=9))
    t.add(3004, "chrome_crashpad", "/opt/google/chrome/chrome_crashpad_handler", ppid=3000,
          maps=program_maps("/opt/google/chrome/chrome_crashpad_handler", heap_kib=1900))
    t.probe_pids = [2000, 2100]
    return t


@tree
def non_utf8(root: Path) -> ProcTree:
    """Bytes that are not UTF-8: dropped from Name and cmdline, "?" in the
    exe path.  None of these paths exist, so the output does not depend on
    where the tree is."""
    t = ProcTree(root, "6.1")
    few(t)
    cafe = b"/opt/caf\xe9/bin/caf\xe9d"  # Latin-1 e-acute
    # Name reads "cafd" (the byte dropped), no prefix of the exe's
    # "caf\udce9d": shown as "cafd".
    t.add(6000, b"caf\xe9d", cafe, cmdline=[cafe, b"--port=80\xff"],
          maps=program_maps(cafe.decode("latin-1"), heap_kib=4400))
    # Its child, another Name and the same exe, takes the exe's name, shown
    # "caf?d": a row apart from its parent's.
    t.add(6005, b"helper", cafe, ppid=6000, maps=program_maps("/opt/cafe", heap_kib=1450))
    # "w\xf6rker" reads "wrker": no prefix of worker-bin, shown as is.
    t.add(6001, b"w\xf6rker", "/usr/bin/worker-bin", cmdline=[b"w\xf6rker", b"-q"],
          maps=program_maps("/usr/bin/worker-bin", heap_kib=1660))
    t.add(6002, "café", "/usr/bin/café-daemon", cmdline=["café-daemon", "--menu=crème"],
          maps=program_maps("/usr/bin/café-daemon", heap_kib=2270))
    # Nothing left of the Name: the empty string is a prefix of the exe.
    t.add(6003, b"\xff\xfe", "/usr/bin/odd-bin", maps=program_maps("/usr/bin/odd", heap_kib=880))
    # comm cut at 15 bytes in the middle of a two-byte character.
    long_name = "é" * 9
    t.add(6004, long_name.encode()[:15], "/usr/bin/" + long_name,
          maps=program_maps("/usr/bin/e", heap_kib=990))
    t.probe_pids = [6000, 6001]
    return t


@tree
def newlines_in_args(root: Path) -> ProcTree:
    """Arguments with newlines and carriage returns (read as newlines),
    empty arguments, rewritten command lines; -s shows them."""
    t = ProcTree(root, "6.1")
    few(t)
    t.add(7000, "python3", PYTHON,
          cmdline=["/usr/bin/python3", "-c", "import time\nwhile True:\n    time.sleep(1)\n"],
          maps=program_maps(PYTHON, heap_kib=8100))
    t.add(7001, "sh", "/usr/bin/dash", cmdline=["/bin/sh", "-c", "echo a\r\necho b\rdone"],
          maps=program_maps("/usr/bin/dash", heap_kib=310))
    t.add(7002, "env", "/usr/bin/env", cmdline=["/usr/bin/env", "", "X=1", "", ""],
          maps=program_maps("/usr/bin/env", heap_kib=150))
    # setproctitle: one argument padded with NULs.
    t.add(7003, "sshd", "/usr/sbin/sshd", replace={"cmdline": b"sshd: bob@pts/1" + b"\0" * 24},
          maps=program_maps("/usr/sbin/sshd", heap_kib=1310))
    t.add(7004, "app", "/usr/bin/app", replace={"cmdline": b"/usr/bin/app\0--no-final-nul"},
          maps=program_maps("/usr/bin/app", heap_kib=2330))
    t.add(7005, "blank", "/usr/bin/blank", replace={"cmdline": b"\0\0\0"},
          maps=program_maps("/usr/bin/blank", heap_kib=460))
    # Alike once newlines are spaces: one row under -s.
    t.add(7006, "logger", "/usr/bin/logger", cmdline=["logger", "two\nlines"],
          maps=program_maps("/usr/bin/logger", heap_kib=170))
    t.add(7007, "logger", "/usr/bin/logger", cmdline=["logger", "two lines"],
          maps=program_maps("/usr/bin/logger", heap_kib=175))
    t.probe_pids = [7000, 7001]
    return t


@tree
def kernel_threads_only(root: Path) -> ProcTree:
    """Kernel threads (no exe link, empty cmdline) are never shown; a
    process that emptied its cmdline still is."""
    t = ProcTree(root, "6.1")
    kernel_threads(t)
    t.add(800, "weird", "/usr/bin/weird", cmdline=[], ppid=2,
          maps=program_maps("/usr/bin/weird", heap_kib=500))
    t.probe_pids = [2, 800]
    return t


# ----------------------------------------------------------------------------
# Counting: shared address spaces, zero rows, ties, self
# ----------------------------------------------------------------------------


@tree
def clone_vm(root: Path) -> ProcTree:
    """Processes of one program with identical memory-file text are taken
    as one address space (CLONE_VM without CLONE_THREAD) and counted once;
    the same program with differing text is summed."""
    t = ProcTree(root, "6.1")
    few(t)
    pool = program_maps("/usr/local/bin/vfork-pool", heap_kib=6000)
    for pid in (5000, 5001, 5002):
        t.add(pid, "vfork-pool", "/usr/local/bin/vfork-pool", maps=pool)
    for pid, heap in ((5100, 3000), (5101, 3010)):
        t.add(pid, "worker", "/usr/local/bin/worker",
              maps=program_maps("/usr/local/bin/worker", heap_kib=heap))
    # Two alike and one not: not all identical, so summed.
    tmux = program_maps("/usr/bin/tmux", heap_kib=2000)
    for pid, maps in ((5200, tmux), (5201, tmux),
                      (5202, program_maps("/usr/bin/tmux", heap_kib=2050))):
        t.add(pid, "tmux: server", "/usr/bin/tmux", maps=maps)
    t.probe_pids = [5000, 5001]
    return t


@tree
def clone_vm_smaps(root: Path) -> ProcTree:
    """The CLONE_VM rule on a kernel without smaps_rollup (4.4), where the
    whole smaps text is compared."""
    t = ProcTree(root, "4.4")
    few(t)
    pool = program_maps("/usr/local/bin/vfork-pool", heap_kib=6000)
    for pid in (5000, 5001, 5002, 5003):
        t.add(pid, "vfork-pool", "/usr/local/bin/vfork-pool", maps=pool)
    t.probe_pids = [5000, 5003]
    return t


@tree
def clone_vm_undecodable(root: Path) -> ProcTree:
    """Two processes whose smaps differ only in a non-UTF-8 byte of a
    mapped file's name (hard links: same inode).  3.14 reads smaps as text
    with undecodable bytes dropped, so it finds them identical."""
    t = ProcTree(root, "4.4")
    few(t)
    for pid, byte in ((5300, "\udcff"), (5301, "\udcfe")):
        t.add(pid, "indexer", "/usr/bin/indexer",
              maps=program_maps("/usr/bin/indexer", heap_kib=4000, extra=[
                  mapping("/srv/index/" + byte + ".db", 4096, "r--s", shared=4096,
                          inode=424242)]))
    t.probe_pids = [5300, 5301]
    return t


@tree
def cr_in_mapped_path(root: Path) -> ProcTree:
    """A mapped file whose name holds a carriage return and what looks like
    a smaps line.  The kernel escapes "\\n" in smaps paths but not "\\r";
    3.14 reads smaps as text with universal newlines, so it takes the rest
    of the name for a line of its own and counts that Pss."""
    t = ProcTree(root, "4.4")
    few(t)
    t.add(5400, "mapper", "/usr/bin/mapper",
          maps=program_maps("/usr/bin/mapper", heap_kib=2000, extra=[
              mapping("/tmp/x\rPss:            1048576 kB", 4, "r--p", shared=4)]))
    t.probe_pids = [5400, 1203]
    return t


@tree
def zero_memory(root: Path) -> ProcTree:
    """Without Pss (2.6.18 smaps) a process with nothing resident adds 0:
    a program whose processes all have 0 is dropped; one with some 0 and
    some not is shown with all of them counted."""
    t = ProcTree(root, "2.6.18")
    few(t)
    idle = [mapping("/usr/sbin/idled", 64, "r-xp"), mapping("[heap]", 132),
            mapping("[stack]", 132)]
    for pid in (900, 901):
        t.add(pid, "idled", "/usr/sbin/idled", maps=idle)
    t.add(910, "half", "/usr/bin/half", maps=idle)
    t.add(911, "half", "/usr/bin/half", maps=program_maps("/usr/bin/half", heap_kib=640))
    t.probe_pids = [900, 910]
    return t


@tree
def zero_memory_rollup(root: Path) -> ProcTree:
    """With Pss, a rollup of zeros still has one Pss line, so 0.5 KiB; an
    empty rollup (a process exiting) adds 0 and its row is dropped."""
    t = ProcTree(root, "6.1")
    few(t)
    t.add(920, "exiting", "/usr/bin/exiting", empty=("smaps_rollup",),
          maps=program_maps("/usr/bin/exiting", heap_kib=100))
    t.add(921, "tiny", "/usr/bin/tiny", maps=[mapping("/usr/bin/tiny", 64, "r-xp")])
    t.probe_pids = [920, 921]
    return t


@tree
def ties(root: Path) -> ProcTree:
    """Five programs with the same RAM: their order is the directory's."""
    t = ProcTree(root, "6.1")
    few(t)
    for pid, name in ((907, "alpha"), (45, "bravo"), (30001, "charlie"), (12, "delta"),
                      (600, "echo")):
        exe = "/usr/bin/" + name
        t.add(pid, name, exe, maps=program_maps("/usr/bin/same", heap_kib=777))
    t.probe_pids = [907, 45]
    return t


@tree
def self_only(root: Path) -> ProcTree:
    """Only ps_mem itself: it leaves itself out, so nothing is shown (and
    -t prints nothing and exits 0)."""
    t = ProcTree(root, "6.1")
    t.probe_pids = [t.self_pid, 1]
    return t


# ----------------------------------------------------------------------------
# Processes that vanish between reads
# ----------------------------------------------------------------------------
# 3.14 dies with a traceback on some of these; ps_mem.py leaves the process
# out, so the expected output is 3.14's on the tree without it.  Others 3.14
# skips itself: an IndexError while naming a process is a LookupError, which
# it takes for "gone".


def _vanishing(root: Path, kernel: str = "6.1", tree_omit: Sequence[str] = (),
               **files) -> ProcTree:
    """A few processes, and pid 5555 with `files` (ProcTree.add's omit,
    empty, replace...) made to look half gone."""
    t = ProcTree(root, kernel, omit=tree_omit)
    few(t)
    t.add(5555, "rsync", "/usr/bin/rsync", cmdline=["rsync", "-a", "/src", "/dst"],
          maps=program_maps("/usr/bin/rsync", heap_kib=3900), **files)
    t.vanished = [5555]  # only used where 3.14 crashes
    t.probe_pids = [5555, 1203]
    return t


@tree
def vanished_memory(root: Path) -> ProcTree:
    """Named, then gone: smaps, smaps_rollup and statm missing (3.14:
    LookupError from statm)."""
    return _vanishing(root, omit=("smaps", "smaps_rollup", "statm"))


@tree
def vanished_statm(root: Path) -> ProcTree:
    """No smaps kernel, statm gone (3.14: LookupError)."""
    return _vanishing(root, "2.6.18", tree_omit=("smaps",), omit=("statm",))


@tree
def vanished_statm_only(root: Path) -> ProcTree:
    """statm gone, smaps and smaps_rollup still there (3.14 reads statm
    first, always: LookupError)."""
    return _vanishing(root, omit=("statm",))


@tree
def vanished_status_empty(root: Path) -> ProcTree:
    """An empty status: 3.14's IndexError on its first line is caught as a
    LookupError, so it skips the process (with -s status is not read)."""
    return _vanishing(root, empty=("status",))


@tree
def vanished_status_short(root: Path) -> ProcTree:
    """status cut after three lines, before PPid, and Name no prefix of the
    exe: 3.14 looks for PPid in ten lines, and its IndexError, a
    LookupError, makes it skip the process."""
    return _vanishing(root, replace={"status": b"Name:\tdata-sync\nUmask:\t0022\n"
                                               b"State:\tX (dead)\n"})


@tree
def vanished_rollup_unreadable(root: Path) -> ProcTree:
    """smaps_rollup exists but cannot be read (here: a directory, EISDIR;
    live kernels answer ESRCH): 3.14 re-raises the error."""
    t = _vanishing(root, omit=("smaps_rollup",))
    (t.root / "5555" / "smaps_rollup").mkdir()
    return t


@tree
def vanished_rollup_truncated(root: Path) -> ProcTree:
    """smaps_rollup cut just after "Pss:" (3.14: IndexError)."""
    t = _vanishing(root)
    rollup = (t.root / "5555" / "smaps_rollup").read_bytes()
    (t.root / "5555" / "smaps_rollup").write_bytes(rollup[:rollup.index(b"Pss:") + 4])
    return t


@tree
def vanished_quietly(root: Path) -> ProcTree:
    """Gone before they could be named: exe link, cmdline or status
    missing.  3.14 skips these too."""
    t = ProcTree(root, "6.1")
    few(t)
    for pid, missing in ((5600, "exe"), (5601, "cmdline"), (5602, "status")):
        t.add(pid, "rsync", "/usr/bin/rsync", omit=(missing,),
              maps=program_maps("/usr/bin/rsync", heap_kib=3900 + pid))
    t.probe_pids = [5600, 5602]
    return t


# ----------------------------------------------------------------------------
# Start-up
# ----------------------------------------------------------------------------


@tree
def no_osrelease(root: Path) -> ProcTree:
    """No sys/kernel/osrelease: "Couldn't access", exit 2."""
    t = ProcTree(root, "6.1", omit=("osrelease",))
    few(t)
    return t


# ----------------------------------------------------------------------------
# Hostile names (see issue 3)
# ----------------------------------------------------------------------------


@tree
def hostile_names(root: Path) -> ProcTree:
    """Names and arguments with control characters: C0 (ESC, BEL, tab...),
    DEL and C1 (U+009B CSI).  3.14 prints them raw."""
    t = ProcTree(root, "6.1")
    few(t)
    for pid, name, exe, args in (
            (8000, "\x1b]0;pwned\x07", "/usr/bin/evil", None),
            (8001, "red\x1b[31mtext", "/usr/bin/colour", None),
            (8002, "del\x7fdel", "/usr/bin/deleter", None),
            (8003, "csi\u009b2J", "/usr/bin/c1", None),
            (8004, "\x1b[2Jclear", "/tmp/\x1b[2Jclear-screen", None),
            (8005, "printf", "/usr/bin/printf",
             ["/usr/bin/printf", "\t\x1b[1mbold\x07", "\x0b\x0c\x01", "x\x7f"]),
            (8006, b"raw\x9bbyte", "/usr/bin/rawbyte-x", None),
            (8007, "rawexe", b"/usr/bin/rawexe\x9b\x1b[5m", None),
            # A carriage return ends the Name line for 3.14 (universal newlines).
            (8008, "cr\rname", "/usr/bin/other-cr", None)):
        t.add(pid, name, exe, cmdline=args,
              maps=program_maps("/usr/bin/h", heap_kib=1000 + (pid - 8000) * 37))
    t.probe_pids = [8000, 8005]
    return t
