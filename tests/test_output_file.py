"""--output FILE: any view, written to a temp file beside FILE and renamed
over it, so that a reader (node_exporter's textfile collector) sees the old
file or the new one, never half of one.

What is checked, on fixture trees, by running ps_mem.py as a command:
  * permissions: a new file 0644 whatever the umask (node_exporter reads it
    as its own user), an existing regular file's kept (without set-id);
  * a link planted at FILE is replaced, never followed; a hard link keeps
    the old contents;
  * no temp file is left, and FILE is unchanged, when a write fails (a
    full tmpfs, a failing fsync), or when SIGINT, SIGTERM or SIGHUP comes
    while the file is written.  The signal is delivered by strace when ps_mem
    enters fsync(): after the temp file is written, before the rename, at
    the same point of every run;
  * with -w, each sample replaces FILE: the whole sample, a table's header
    included.
"""

import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import pytest

from tests.harness import OURS, Result, child_env
from tests.harness import ps_mem, run_main
from tests.test_output_prometheus import DOCUMENT, maps, small_tree, without_times

STRACE = shutil.which("strace")
needs_strace = pytest.mark.skipif(STRACE is None, reason="strace is not installed "
                                  "(apt-get install strace)")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small(tmp_path):
    return small_tree(tmp_path / "proc")


def ours(*args: str, procfs, umask: Optional[int] = None,
         strace: Optional[List[str]] = None, timeout: float = 120) -> Result:
    """ps_mem.py --procfs PROCFS ARGS, as a command; under strace with the
    STRACE options (its log in STRACE's -o file)."""
    command = [sys.executable, str(OURS), "--procfs", str(procfs), *args]
    if strace is not None:
        command = [STRACE, "-q", *strace, "--", *command]
    # A session of its own: a killed strace would leave its tracee running,
    # so on a timeout the whole group is killed.
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=child_env(), start_new_session=True,
                             preexec_fn=None if umask is None else lambda: os.umask(umask))
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        raise
    return Result(stdout, stderr, child.returncode)


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def temp_files(directory) -> List[str]:
    return [name for name in os.listdir(directory) if name.endswith("~")]


# ----------------------------------------------------------------------------
# What is written
# ----------------------------------------------------------------------------

VIEWS = [[], ["-S"], ["-d"], ["-t"], ["--json"], ["--prometheus"]]


def comparable(text: str) -> str:
    """TEXT without what changes from run to run: the time of a JSON
    document, the scan's times of a Prometheus one."""
    if text.startswith("{"):
        return json.dumps(dict(json.loads(text), time=None))
    return without_times(text)


@pytest.mark.parametrize("view", VIEWS, ids=lambda args: " ".join(args) or "table")
def test_file_holds_what_stdout_would(small, tmp_path, view):
    target = tmp_path / "out"
    written = ours(*view, "--output", str(target), procfs=small.root)
    printed = ours(*view, procfs=small.root)
    assert (written.status, written.stdout, written.stderr) == (printed.status, b"",
                                                               printed.stderr)
    assert comparable(target.read_text()) == comparable(printed.out)
    assert sorted(os.listdir(tmp_path)) == ["out", "proc"]


def test_warnings_stay_on_stderr(small, tmp_path):
    small.add(30, "bad", "/usr/bin/bad", replace={"status": b"garbage\n"})
    target = tmp_path / "out.prom"
    done = ours("--prometheus", "--output", str(target), procfs=small.root)
    assert (done.status, done.out) == (0, "")
    assert done.err == ("Warning: 1 process could not be parsed (their files are not what a "
                        "kernel writes); their memory is not included.\n")
    assert 'ps_mem_unparsable_processes{group_by="program"} 1\n' in target.read_text()


def test_the_file_is_utf8_whatever_the_locale(small, tmp_path):
    """stdout takes the locale's encoding, the file UTF-8 (node_exporter's)."""
    small.add(31, "café", "/usr/bin/café", maps=maps(10))
    target = tmp_path / "out.prom"
    command = [sys.executable, str(OURS), "--procfs", str(small.root), "--prometheus"]
    env = dict(child_env(), LC_ALL="C", PYTHONIOENCODING="ascii")
    done = subprocess.run(command + ["--output", str(target)], env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    assert 'program="café"' in target.read_text(encoding="utf-8")


@needs_strace
def test_the_temp_file_is_a_dotfile_not_ending_in_prom(small, tmp_path):
    """node_exporter reads every *.prom of its directory, dotfiles too."""
    target = tmp_path / "ps_mem.prom"
    log = tmp_path / "strace.log"
    done = ours("--prometheus", "--output", str(target), procfs=small.root,
                strace=["-o", str(log), "-e", "trace=rename,renameat,renameat2"])
    assert done.status == 0, done.err
    renames = re.findall(r'rename\w*\((?:AT_FDCWD, )?"([^"]+)", (?:AT_FDCWD, )?"([^"]+)"',
                         log.read_text())
    assert len(renames) == 1
    temp, final = renames[0]
    assert final == str(target)
    assert os.path.dirname(temp) == str(tmp_path)
    name = os.path.basename(temp)
    assert name.startswith(".ps_mem.prom.") and not name.endswith(".prom")


# ----------------------------------------------------------------------------
# Permissions and links
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_is_readable_by_all(small, tmp_path, umask):
    target = tmp_path / "ps_mem.prom"
    assert ours("--prometheus", "--output", str(target), procfs=small.root,
                umask=umask).status == 0
    assert mode(target) == 0o644


@pytest.mark.parametrize("before, after", [(0o600, 0o600), (0o640, 0o640), (0o444, 0o444),
                                           (0o666, 0o666), (0o4755, 0o755), (0o2644, 0o644)])
def test_an_existing_file_keeps_its_permissions(small, tmp_path, before, after):
    """chmod 600 keeps a file (of command lines, say) to its owner; set-id
    bits are never given to what ps_mem writes."""
    target = tmp_path / "ps_mem.prom"
    target.write_text("old\n")
    os.chmod(target, before)
    assert ours("--prometheus", "--output", str(target), procfs=small.root).status == 0
    assert mode(target) == after
    assert without_times(target.read_text()) == DOCUMENT


def test_a_link_at_file_is_replaced_not_followed(small, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.chmod(victim, 0o600)
    target = tmp_path / "ps_mem.prom"
    os.symlink(victim, target)
    assert ours("--prometheus", "--output", str(target), procfs=small.root).status == 0
    assert (victim.read_text(), mode(victim)) == ("precious\n", 0o600)
    assert stat.S_ISREG(os.lstat(target).st_mode)
    assert mode(target) == 0o644  # the link's target lends its mode to nothing
    assert without_times(target.read_text()) == DOCUMENT


def test_a_dangling_link_at_file_creates_nothing_where_it_points(small, tmp_path):
    nowhere = tmp_path / "nowhere"
    target = tmp_path / "ps_mem.prom"
    os.symlink(nowhere, target)
    assert ours("--prometheus", "--output", str(target), procfs=small.root).status == 0
    assert not nowhere.exists()
    assert stat.S_ISREG(os.lstat(target).st_mode)


def test_a_hard_link_keeps_the_old_contents(small, tmp_path):
    target = tmp_path / "ps_mem.prom"
    target.write_text("old\n")
    os.link(target, tmp_path / "other")
    assert ours("--prometheus", "--output", str(target), procfs=small.root).status == 0
    assert (tmp_path / "other").read_text() == "old\n"
    assert without_times(target.read_text()) == DOCUMENT


def test_a_file_another_user_planted_lends_no_mode(small, tmp_path):
    """In a sticky /tmp another user may plant FILE, mode 4777: root's
    file would keep their write access.  A new file's mode instead."""
    target = tmp_path / "ps_mem.prom"
    target.write_text("planted\n")
    os.chmod(target, 0o4777)
    os.chown(target, 65534, 65534)
    assert ours("--prometheus", "--output", str(target), procfs=small.root).status == 0
    status = os.lstat(target)
    assert (stat.S_IMODE(status.st_mode), status.st_uid) == (0o644, os.geteuid())


def _special(kind: str, path: Path) -> None:
    if kind == "device":
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/proc/self/fd/1", path)  # /dev/stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
@pytest.mark.parametrize("kind", ["device", "fifo", "link to stdout"])
@pytest.mark.parametrize("option", ["--output", "--capture"])
def test_a_device_or_fifo_at_file_is_refused(small, tmp_path, kind, option):
    """`--output /dev/null` would make /dev/null a plain file for every
    program on the machine; so would `--output /dev/stdout` of its link."""
    target = tmp_path / "special"
    _special(kind, target)
    before = os.lstat(target)
    done = ours(option, str(target), procfs=small.root)
    assert done.err == "ps_mem: cannot write %s: it is not a regular file\n" % target
    assert done.status == 2
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (
        before.st_mode, before.st_ino, before.st_rdev)
    assert temp_files(tmp_path) == []


def test_a_name_of_255_bytes_is_written(small, tmp_path):
    """A temp name cut by characters would pass 255 bytes for a name of
    two-byte characters."""
    target = tmp_path / ("\u00e9" * 127)  # 254 bytes of UTF-8
    done = ours("--output", str(target), procfs=small.root)
    assert (done.status, done.err) == (0, "")
    assert target.read_text().startswith(" Private")
    assert temp_files(tmp_path) == []


# ----------------------------------------------------------------------------
# Failures: one line, status 2, nothing left behind
# ----------------------------------------------------------------------------


def test_a_directory_at_file(small, tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    done = ours("--output", str(target), procfs=small.root)
    assert (done.status, done.out) == (2, "")
    assert done.err == "ps_mem: cannot write %s: Is a directory\n" % target
    assert os.listdir(target) == [] and temp_files(tmp_path) == []


@pytest.mark.parametrize("where, reason", [("missing/out", "No such file or directory"),
                                           ("file/out", "Not a directory")])
def test_a_directory_that_is_not_there(small, tmp_path, where, reason):
    (tmp_path / "file").write_text("")
    done = ours("--output", str(tmp_path / where), procfs=small.root)
    assert (done.status, done.out) == (2, "")
    assert done.err == "ps_mem: cannot write %s: %s\n" % (tmp_path / where, reason)


def test_a_name_to_escape(small, tmp_path):
    done = ours("--output", str(tmp_path / "no\nsuch" / "out\x1b"), procfs=small.root)
    assert done.err == "ps_mem: cannot write %s: No such file or directory\n" % (
        str(tmp_path / "no\\nsuch" / "out\\x1b"))


def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "ps_mem-test", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % done.stderr.strip())


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs holding FILE's old contents ("old") and then full."""
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "size=64k,mode=0755")
    try:
        (disk / "ps_mem.prom").write_text("old\n")
        filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError as error:
            assert error.errno == errno.ENOSPC
        finally:
            os.close(filler)
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@needs_root
@pytest.mark.parametrize("view", [["--prometheus"], []], ids=["prometheus", "table"])
def test_a_full_disk(small, small_disk, view):
    target = small_disk / "ps_mem.prom"
    done = ours(*view, "--output", str(target), procfs=small.root)
    assert (done.status, done.out) == (2, "")
    assert done.err == "ps_mem: cannot write %s: No space left on device\n" % target
    assert sorted(os.listdir(small_disk)) == ["filler", "ps_mem.prom"]
    assert target.read_text() == "old\n"


@needs_root
def test_a_read_only_file_system(small, tmp_path):
    disk = tmp_path / "ro"
    mount_tmpfs(disk, "size=64k,ro")
    try:
        done = ours("--output", str(disk / "out"), procfs=small.root)
        assert (done.status, done.out) == (2, "")
        assert done.err == "ps_mem: cannot write %s: Read-only file system\n" % (disk / "out")
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@needs_strace
@pytest.mark.parametrize("error, reason", [("ENOSPC", "No space left on device"),
                                           ("EIO", "Input/output error")])
def test_a_failing_fsync(small, tmp_path, error, reason):
    """Where the disk fills only when the data is flushed (NFS, delayed
    allocation), fsync() is what fails."""
    target = tmp_path / "ps_mem.prom"
    target.write_text("old\n")
    done = ours("--prometheus", "--output", str(target), procfs=small.root,
                strace=["-o", str(tmp_path / "strace.log"), "-e", "trace=fsync",
                        "-e", "inject=fsync:error=%s" % error])
    assert (done.status, done.out) == (2, "")
    assert done.err == "ps_mem: cannot write %s: %s\n" % (target, reason)
    assert target.read_text() == "old\n"
    assert temp_files(tmp_path) == []


# ----------------------------------------------------------------------------
# Signals while the file is written
# ----------------------------------------------------------------------------


def signalled(small, tmp_path, sig: signal.Signals, *args: str, when: int = 1):
    """ps_mem --prometheus --output FILE ARGS, given SIG by strace as it
    enters its WHEN-th fsync(); FILE held "old" before.  The strace log."""
    target = tmp_path / "ps_mem.prom"
    target.write_text("old\n")
    log = tmp_path / "strace.log"
    # A watch that is never signalled would run on: bounded by the timeout.
    done = ours("--prometheus", "--output", str(target), *args, procfs=small.root,
                strace=["-o", str(log), "-e", "trace=fsync,rename,unlink",
                        "-e", "inject=fsync:signal=%s:when=%d" % (sig.name, when)], timeout=30)
    return done, log.read_text()


@needs_strace
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=lambda sig: sig.name)
def test_a_signal_while_writing_leaves_the_old_file(small, tmp_path, sig):
    done, log = signalled(small, tmp_path, sig)
    # Killed by the signal (which strace then sends itself), after removing
    # the temp file, and with no rename.
    assert "+++ killed by %s +++" % sig.name in log, log
    assert done.status == -sig
    assert re.search(r'^unlink\(".*/\.ps_mem\.prom\.[0-9a-f]+~"\) += 0$', log, re.M), log
    assert "rename" not in log
    assert (tmp_path / "ps_mem.prom").read_text() == "old\n"
    assert temp_files(tmp_path) == []


@needs_strace
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda sig: sig.name)
def test_a_signal_in_a_watch_leaves_the_last_sample(small, tmp_path, sig):
    done, log = signalled(small, tmp_path, sig, "-w", "1", when=2)
    assert "+++ killed by %s +++" % sig.name in log, log
    assert log.count("rename(") == 1
    assert without_times((tmp_path / "ps_mem.prom").read_text()) == DOCUMENT
    assert temp_files(tmp_path) == []


@needs_strace
def test_ctrl_c_in_a_watch_ends_it_with_the_last_sample(small, tmp_path):
    done, log = signalled(small, tmp_path, signal.SIGINT, "-w", "1", when=2)
    assert (done.status, done.out, done.err) == (0, "", "")
    assert "+++ exited with 0 +++" in log, log
    assert without_times((tmp_path / "ps_mem.prom").read_text()) == DOCUMENT
    assert temp_files(tmp_path) == []


# ----------------------------------------------------------------------------
# -w: each sample replaces the file
# ----------------------------------------------------------------------------

HEADER = " Private  +   Shared  =  RAM used\tProgram\n\n"
# The small tree's rows (tests/test_output_prometheus.py works them out).
NGINX_ROW = "  1.5 MiB +  41.0 KiB =   1.5 MiB\tnginx (2)\n"
NGINX_ONE_ROW = "500.0 KiB +  20.5 KiB = 520.5 KiB\tnginx\n"
POSTGRES_ROW = "  2.0 MiB +  20.5 KiB =   2.0 MiB\tpostgres\n"


def footer(total: str) -> str:
    return "-" * 33 + "\n" + " " * 24 + "%9s\n" % total + "=" * 33 + "\n"


def test_each_sample_replaces_the_file(small, tmp_path, monkeypatch):
    """Between samples the watched processes exit one by one: the file holds
    one whole sample each time, the last one saying they are gone."""
    target = tmp_path / "out"
    seen = []

    def sleep(seconds):
        seen.append(target.read_text())
        small.remove([10, 11, 20][len(seen) - 1])

    monkeypatch.setattr(ps_mem.time, "sleep", sleep)
    result = run_main("-w", "5", "-p", "10,11,20", "--output", str(target), procfs=small.root)
    assert (result.status, result.out, result.err) == (0, "", "")
    seen.append(target.read_text())
    assert seen == [
        HEADER + NGINX_ROW + POSTGRES_ROW + footer("3.5 MiB"),
        HEADER + NGINX_ONE_ROW + POSTGRES_ROW + footer("2.5 MiB"),
        HEADER + POSTGRES_ROW + footer("2.0 MiB"),
        HEADER + footer("0.0 KiB") + "Process does not exist anymore.\n"]
    assert sorted(os.listdir(tmp_path)) == ["out", "proc"]


def test_each_prometheus_sample_replaces_the_file(small, tmp_path, monkeypatch):
    target = tmp_path / "out.prom"
    seen = []

    def sleep(seconds):
        seen.append(without_times(target.read_text()))
        small.remove(20)

    monkeypatch.setattr(ps_mem.time, "sleep", sleep)
    result = run_main("-w", "5", "-p", "20", "--prometheus", "--output", str(target),
                      procfs=small.root)
    assert (result.status, result.out, result.err) == (0, "", "")
    seen.append(without_times(target.read_text()))
    first = [line for line in DOCUMENT.splitlines(True) if 'program="nginx"' not in line]
    assert seen[0] == "".join(first).replace(" 3646976\n", " 2068992\n")
    # Gone: no rows, totals of nothing.
    assert 'ps_mem_total_ram_bytes{group_by="program"} 0\n' in seen[1]
    assert "ps_mem_ram_bytes{" not in seen[1] and "anymore" not in seen[1]


# ----------------------------------------------------------------------------
# Usage errors
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--output", ""], "argument --output: the file name is empty"),
    (["--output", "x.tar.gz", "--capture", "./x.tar.gz"],
     "--output would replace the --capture file"),
])
def test_output_usage_errors(small, args, message):
    result = run_main(*args, procfs=small.root)
    assert (result.status, result.stdout) == (2, b"")
    assert result.err.splitlines()[-1] == "ps_mem: error: " + message


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_output_may_not_replace_the_capture_read_by_another_name(small, tmp_path, link):
    saved = tmp_path / "saved.tar.gz"
    assert run_main("--capture", str(saved), procfs=small.root).status == 0
    before = saved.read_bytes()
    other = tmp_path / "other.tar.gz"
    (os.symlink if link == "symbolic" else os.link)(saved, other)
    for args, message in ((["--procfs", str(other), "--output", str(saved)],
                           "--output would replace the --procfs file"),
                          (["--diff", str(other), "--capture", str(saved)],
                           "--capture would replace the --diff file"),
                          (["--diff", str(other), "--output", str(saved)],
                           "--output would replace the --diff file")):
        result = run_main(*args, procfs=small.root) if args[0] == "--diff" else run_main(*args)
        assert result.status == 2, args
        assert result.err.splitlines()[-1] == "ps_mem: error: " + message
    assert saved.read_bytes() == before


def test_output_may_not_replace_the_capture_read(small, tmp_path):
    saved = tmp_path / "saved.tar.gz"
    assert run_main("--capture", str(saved), procfs=small.root).status == 0
    before = saved.read_bytes()
    result = run_main("--procfs", str(saved), "--output", str(saved))
    assert result.status == 2
    assert result.err.splitlines()[-1] == "ps_mem: error: --output would replace the --procfs file"
    assert saved.read_bytes() == before


# ----------------------------------------------------------------------------
# write_atomically() in this process
# ----------------------------------------------------------------------------


def test_a_name_ending_in_a_slash_is_a_directory(small, tmp_path):
    result = run_main("--output", str(tmp_path) + "/", procfs=small.root)
    assert (result.status, result.stdout) == (2, b"")
    assert result.err == "ps_mem: cannot write %s/: Is a directory\n" % tmp_path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda sig: sig.name)
def test_sigterm_while_writing_raises_terminated(tmp_path, sig):
    """The signal becomes Terminated inside the write (main() then ends by
    it); the temp file goes, and the handlers are given back."""
    target = tmp_path / "out"
    before = signal.getsignal(sig)

    def write(file):
        file.write(b"half")
        assert temp_files(tmp_path) != []
        os.kill(os.getpid(), sig)

    ps_mem.write_output(str(target), "x")
    with pytest.raises(ps_mem.Terminated) as raised:
        ps_mem.write_atomically(str(target), write, 0o644)
    assert raised.value.signal_number == sig
    assert target.read_text() == "x"
    assert temp_files(tmp_path) == []
    assert signal.getsignal(sig) == before
