"""Real programs for --group-by app, started and stopped for the tests.

Each case starts one real program (Debian's packages: see CASES) with
tests/realproc.py's Processes, in its own session, ended with its whole
process group; it returns once the program has the processes a test looks
at (gunicorn's workers, redis-server's BGSAVE child, a postgres backend
running a query).  A case whose program is not installed raises
Unavailable, which skips the test.

    with Programs() as procs:
        pid = CASES["gunicorn-setproctitle"].start(procs, Path(tmp))

Used by tests/test_live_apps.py, and to record the fixtures of
tests/data/apps/ (see tests/app_fixtures.py):

    .venv/bin/python -m tests.app_programs [CASE...]    (as root, from the repo)
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from tests.app_fixtures import FIXTURES, children, read_raw, tree, write_fixture
from tests.realproc import Processes, Unavailable

# The programs see a Debian system's PATH, not this session's (pyenv's
# shims come first there, and celery's launcher runs `python3` from PATH).
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PYTHON = "/usr/bin/python3"
PYTHON_EXE = os.path.realpath(PYTHON)
JAVA_17 = "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
JAVA_25 = "/usr/lib/jvm/temurin-25-jdk-amd64/bin/java"
PG_BIN = "/usr/lib/postgresql/15/bin"


class Programs(Processes):
    """Processes, and programs that left its process groups: php-fpm
    calls setsid() even in the foreground, so ending the launcher's group
    leaves it running.  Each is ended with its own group, if the pid still
    runs the executable it ran.  A program that must shut down in its own
    way first (postgres) registers how, with at_close()."""

    def __init__(self) -> None:
        super().__init__()
        self._own_groups: List[Tuple[int, bytes]] = []
        self._shutdowns: List[Callable[[], None]] = []

    def __enter__(self) -> "Programs":
        return self

    def own_group(self, pid: int) -> None:
        self._own_groups.append((pid, os.readlink("/proc/%d/exe" % pid).encode()))

    def at_close(self, shutdown: Callable[[], None]) -> None:
        """Call SHUTDOWN on close(), before any group is killed."""
        self._shutdowns.append(shutdown)

    def close(self) -> None:
        while self._shutdowns:
            self._shutdowns.pop()()
        while self._own_groups:
            _end_group(*self._own_groups.pop())
        super().close()


def _end_group(pid: int, exe: bytes) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if _gone(pid, exe):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not _gone(pid, exe):
            time.sleep(0.02)


def _field(pid: int, field: str) -> bytes:
    """A field of read_raw(PID), b"" if PID is gone."""
    raw = read_raw(pid)
    return b"" if raw is None else getattr(raw, field)


def _gone(pid: int, exe: bytes) -> bool:
    try:
        return os.readlink(b"/proc/%d/exe" % pid) != exe
    except OSError:  # gone, or a zombie: its exe link reads ENOENT
        return True


def need(path: str) -> str:
    """PATH, or a skip where it is not installed."""
    found = path if os.path.isabs(path) else shutil.which(path, path=PATH)
    if not found or not os.path.exists(found):
        raise Unavailable("%s is not installed" % path)
    return found


def wait_for(what: str, test: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise RuntimeError("gave up waiting for %s after %.0f s" % (what, timeout))
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The launcher: a shell that starts the program and waits, as a service
# manager or a terminal's shell would.  Not this process: it is a python3.11
# too, and 3.14 names a child by its parent's executable where the two are
# alike.
LAUNCHER = ["/bin/sh", "-c", '"$@" & wait', "launcher"]


def start(procs: Programs, argv: List[str], exe: str, env: Optional[Dict[str, str]] = None,
          cwd: Optional[Path] = None) -> int:
    """Start ARGV from the launcher, under env(1) in CWD with a Debian PATH
    and ENV only (env execs it), wait until it runs EXE with its command
    line set up, and return its pid."""
    settings = ["PATH=" + PATH] + ["%s=%s" % item for item in (env or {}).items()]
    chdir = ["-C", str(cwd)] if cwd is not None else []
    launcher = procs.command([*LAUNCHER, need("env"), "-i", *chdir, *settings, *argv],
                             exe=os.path.realpath(LAUNCHER[0]), settle=False)
    target = os.path.realpath(exe)
    found: List[int] = []

    def running() -> bool:
        for child in children(launcher.pid):
            raw = read_raw(child)
            # The exe link changes before the kernel has set the new command
            # line up: until then cmdline reads empty.
            if raw is not None and os.fsdecode(raw.exe) == target and raw.cmdline:
                found.append(child)
                return True
        return False
    wait_for("%s to run %s" % (argv[0], target), running)
    return found[0]


def write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


class Case:
    """One real program: what it is, the packages it comes from, and how
    to start it (START(procs, work_dir) -> the pid of its first process)."""

    def __init__(self, name: str, about: str, packages: List[str],
                 start: Callable[[Programs, Path], int]) -> None:
        self.name = name
        self.about = about
        self.packages = packages
        self.start = start


CASES: Dict[str, Case] = {}


def case(name: str, about: str, *packages: str) -> Callable[[Callable[[Programs, Path], int]],
                                                              Callable[[Programs, Path], int]]:
    def register(function: Callable[[Programs, Path], int]) -> Callable[[Programs, Path], int]:
        CASES[name] = Case(name, about, list(packages), function)
        return function
    return register


# ----------------------------------------------------------------------------
# Python and its servers
# ----------------------------------------------------------------------------

WSGI_APP = '''def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello\\n"]
'''


def _gunicorn(procs: Programs, work: Path, setproctitle: bool) -> int:
    need("gunicorn")
    write(work / "hello.py", WSGI_APP)
    env = {"PYTHONPATH": str(work)}
    if not setproctitle:
        # gunicorn renames its processes only where setproctitle imports.
        stub = work / "no-setproctitle"
        stub.mkdir()
        write(stub / "setproctitle.py", "raise ImportError('left out for this test')\n")
        env["PYTHONPATH"] = "%s:%s" % (stub, work)
    pid = start(procs, ["gunicorn", "-w", "2", "-b", "127.0.0.1:%d" % free_port(), "hello:app"],
                PYTHON_EXE, env)
    wait_for("gunicorn's 2 workers", lambda: len(children(pid)) >= 2)
    if setproctitle:
        wait_for("gunicorn's titles",
                 lambda: all(_field(p, "cmdline").startswith(b"gunicorn:")
                             for p in [pid, *children(pid)]))
    return pid


@case("gunicorn", "gunicorn -w 2 without setproctitle: a master and 2 workers",
      "gunicorn", "python3.11")
def gunicorn_plain(procs: Programs, work: Path) -> int:
    return _gunicorn(procs, work, setproctitle=False)


@case("gunicorn-setproctitle", "gunicorn -w 2 with setproctitle: a master and 2 workers",
      "gunicorn", "python3-setproctitle", "python3.11")
def gunicorn_setproctitle(procs: Programs, work: Path) -> int:
    try:
        subprocess.run([PYTHON, "-c", "import setproctitle"], check=True,
                       stderr=subprocess.DEVNULL)
    except (OSError, subprocess.CalledProcessError) as error:
        raise Unavailable("python3-setproctitle is not installed") from error
    return _gunicorn(procs, work, setproctitle=True)


@case("celery", "celery worker -P prefork --concurrency 2 (with setproctitle): a master "
      "and 2 pool processes", "celery", "python3-celery", "python3-setproctitle")
def celery(procs: Programs, work: Path) -> int:
    need("celery")
    write(work / "tasks.py", "from celery import Celery\n"
          "app = Celery('tasks', broker='memory://')\n")
    pid = start(procs, ["celery", "-A", "tasks", "-b", "memory://", "worker", "--concurrency", "2",
                        "-P", "prefork", "--loglevel", "warning"], PYTHON_EXE,
                {"PYTHONPATH": str(work), "HOME": str(work)})
    wait_for("celery's 2 pool processes", lambda: len(children(pid)) >= 2, timeout=60)
    wait_for("celery's titles",
             lambda: all(_field(p, "cmdline").startswith(b"[celeryd")
                         for p in [pid, *children(pid)]), timeout=60)
    return pid


@case("uwsgi", "uwsgi --master --processes 2 with the python3 plugin",
      "uwsgi-core", "uwsgi-plugin-python3")
def uwsgi(procs: Programs, work: Path) -> int:
    write(work / "hello.py", WSGI_APP)
    pid = start(procs, [need("uwsgi"), "--plugin", "python3", "--http-socket",
                        "127.0.0.1:%d" % free_port(), "--wsgi-file", str(work / "hello.py"),
                        "--callable", "app", "--master", "--processes", "2"],
                need("uwsgi"))
    wait_for("uwsgi's 2 workers", lambda: len(children(pid)) >= 2)
    return pid


@case("python-m", "python3 -m http.server", "python3.11")
def python_module(procs: Programs, work: Path) -> int:
    return start(procs, [PYTHON, "-m", "http.server", "--bind", "127.0.0.1", str(free_port())],
                 PYTHON_EXE)


SLEEPER_PY = "import time\ntime.sleep(600)\n"


@case("python-script", "python3 -u job.py, by a relative path", "python3.11")
def python_script(procs: Programs, work: Path) -> int:
    write(work / "job.py", SLEEPER_PY)
    return start(procs, [PYTHON, "-u", "./job.py"], PYTHON_EXE, cwd=work)


@case("python-c", "python3 -c CODE", "python3.11")
def python_code(procs: Programs, work: Path) -> int:
    return start(procs, [PYTHON, "-c", "import time; time.sleep(600)"], PYTHON_EXE)


@case("python-stdin", "python3 - < job.py, started by sh", "python3.11", "dash")
def python_stdin(procs: Programs, work: Path) -> int:
    write(work / "job.py", SLEEPER_PY)
    return start(procs, ["sh", "-c", 'exec %s - < "%s"' % (PYTHON, work / "job.py")], PYTHON_EXE)


MULTIPROCESSING = '''import multiprocessing, sys, time
def work(_):
    time.sleep(600)
if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[1])
    with multiprocessing.Pool(2) as pool:
        pool.map(work, range(2))
'''


def _multiprocessing(procs: Programs, work: Path, method: str, processes: int) -> int:
    write(work / "pool.py", MULTIPROCESSING)
    pid = start(procs, [PYTHON, str(work / "pool.py"), method], PYTHON_EXE)

    def started() -> bool:
        # A spawned child is a fork of ours until it execs python -c.
        members = tree(pid)[1:]
        return len(members) >= processes and (method == "fork" or all(
            b"multiprocessing" in _field(member, "cmdline")
            for _, member in members))
    wait_for("the pool's %d processes" % processes, started)
    return pid


@case("multiprocessing-fork", "pool.py: multiprocessing.Pool(2), fork", "python3.11")
def multiprocessing_fork(procs: Programs, work: Path) -> int:
    return _multiprocessing(procs, work, "fork", 2)


@case("multiprocessing-spawn", "pool.py: multiprocessing.Pool(2), spawn (and its resource "
      "tracker)", "python3.11")
def multiprocessing_spawn(procs: Programs, work: Path) -> int:
    return _multiprocessing(procs, work, "spawn", 3)


@case("multiprocessing-forkserver", "pool.py: multiprocessing.Pool(2), forkserver (the "
      "workers are the fork server's children)", "python3.11")
def multiprocessing_forkserver(procs: Programs, work: Path) -> int:
    return _multiprocessing(procs, work, "forkserver", 4)


# ----------------------------------------------------------------------------
# Servers written in C
# ----------------------------------------------------------------------------

@case("redis-bgsave", "redis-server during BGSAVE (Debian's redis-server is a link to "
      "redis-check-rdb)", "redis-server", "redis-tools")
def redis_bgsave(procs: Programs, work: Path) -> int:
    server, cli = need("redis-server"), need("redis-cli")
    port = free_port()
    pid = start(procs, [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
                        "--save", "", "--appendonly", "no", "--daemonize", "no",
                        "--enable-debug-command", "yes"], server)

    def ask(*command: str) -> bytes:
        return subprocess.run([cli, "-p", str(port), *command], check=True,
                              stdout=subprocess.PIPE, timeout=120).stdout

    wait_for("redis to answer", lambda: subprocess.run(
        [cli, "-p", str(port), "PING"], stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL).stdout.strip() == b"PONG")
    # Enough data that the child writes for a second or more.
    ask("DEBUG", "POPULATE", "2000000", "key", "64")
    for _ in range(5):
        ask("BGSAVE")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if children(pid):
                return pid
            time.sleep(0.002)
    raise RuntimeError("no BGSAVE child was seen")


@case("postgres", "postgres 15: postmaster, its helpers and a backend running a query",
      "postgresql-15")
def postgres(procs: Programs, work: Path) -> int:
    postgres_bin, psql = need(PG_BIN + "/postgres"), need(PG_BIN + "/psql")
    setpriv = need("setpriv")
    as_postgres = [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups"]
    for directory in (work, work.parent):  # for the postgres user
        directory.chmod(0o755)
    data, sockets = work / "data", work / "sockets"
    for directory in (data, sockets):
        directory.mkdir()
        shutil.chown(str(directory), "postgres", "postgres")
    subprocess.run([*as_postgres, PG_BIN + "/initdb", "-D", str(data), "-A", "trust"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    port = str(free_port())
    since = time.time()
    pid = start(procs, [*as_postgres, postgres_bin, "-D", str(data), "-p", port, "-k",
                        str(sockets), "-c", "listen_addresses="], postgres_bin)
    exe = os.readlink("/proc/%d/exe" % pid).encode()
    procs.at_close(lambda: _shut_down_postgres(pid, exe, since))
    wait_for("postgres to listen", lambda: (sockets / (".s.PGSQL." + port)).exists())
    procs.command([psql, "-h", str(sockets), "-p", port, "-U", "postgres", "-c",
                   "select pg_sleep(600)"], settle=False)

    def querying() -> bool:
        return any(b"SELECT" in _field(child, "cmdline")
                   for child in children(pid))
    wait_for("a backend running the query", querying)
    return pid


def _shut_down_postgres(postmaster: int, exe: bytes, since: float) -> None:
    """Stop a postmaster as its service would, so that it removes its SysV
    segment: one killed (SIGKILL, as ending the launcher's group does)
    leaves it behind, 0 attached, until the machine restarts (ipcs -m).
    Fast shutdown (SIGINT) ends the backends, the one in pg_sleep too,
    where smart shutdown (SIGTERM) would wait for its client; then
    immediate shutdown (SIGQUIT), then SIGKILL.  A segment it made that
    is still there once it is gone is removed: /proc/sysvipc/shm names
    each segment's creator and the time it was made (to tell ours from
    an earlier process's with the same pid)."""
    for sig, seconds in ((signal.SIGINT, 30), (signal.SIGQUIT, 10), (signal.SIGKILL, 5)):
        if _gone(postmaster, exe):
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(postmaster, sig)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not _gone(postmaster, exe):
            time.sleep(0.02)
    for shmid in _segments_made_by(postmaster, since):
        subprocess.run(["ipcrm", "-m", str(shmid)], check=False, stderr=subprocess.DEVNULL)


def _segments_made_by(pid: int, since: float) -> List[int]:
    """The ids of the SysV segments PID created at or after SINCE (a time)."""
    try:
        with open("/proc/sysvipc/shm") as handle:
            header, *lines = handle.read().splitlines()
    except OSError:
        return []
    columns = header.split()
    found = []
    for line in lines:
        segment = dict(zip(columns, line.split()))
        if int(segment["cpid"]) == pid and int(segment["ctime"]) >= int(since):
            found.append(int(segment["shmid"]))
    return found


FPM_CONF = '''[global]
pid = {work}/fpm.pid
error_log = {work}/fpm.log
daemonize = no
[www]
user = www-data
group = www-data
listen = 127.0.0.1:{port}
pm = static
pm.max_children = 2
'''


@case("php-fpm", "php-fpm8.2 -F: a master and a pool of 2", "php8.2-fpm")
def php_fpm(procs: Programs, work: Path) -> int:
    fpm = need("php-fpm8.2")
    conf = write(work / "fpm.conf", FPM_CONF.format(work=work, port=free_port()))
    pid = start(procs, [fpm, "-F", "-y", str(conf)], fpm)
    wait_for("php-fpm's session", lambda: os.getsid(pid) == pid)
    procs.own_group(pid)
    wait_for("php-fpm's pool", lambda: len(children(pid)) >= 2)
    return pid


# ----------------------------------------------------------------------------
# Java
# ----------------------------------------------------------------------------

HOLD_JAVA = '''package %s;
public class %s {
    public static void main(String[] args) throws Exception { Thread.sleep(600000); }
}
'''


def _compile_java(work: Path, package: str, name: str) -> Path:
    javac = need("javac")
    source = work / "src" / package.replace(".", "/") / (name + ".java")
    source.parent.mkdir(parents=True)
    write(source, HOLD_JAVA % (package, name))
    classes = work / "classes"
    subprocess.run([javac, "-d", str(classes), str(source)], check=True, timeout=300)
    return classes


@case("java-main-class", "java -cp classes -D... --add-opens ... com.example.HoldA (OpenJDK 17)",
      "openjdk-17-jre-headless")
def java_main_class(procs: Programs, work: Path) -> int:
    java = need(JAVA_17)
    classes = _compile_java(work, "com.example", "HoldA")
    return start(procs, [java, "-Xmx32m", "-cp", str(classes), "-Dhold.name=a", "--add-opens",
                         "java.base/java.lang=ALL-UNNAMED", "com.example.HoldA"], java)


@case("java-jar", "java -XX:+UseSerialGC -jar holdb.jar (Temurin 25)", "temurin-25-jdk")
def java_jar(procs: Programs, work: Path) -> int:
    java = need(JAVA_25)
    classes = _compile_java(work, "hold", "HoldB")
    jar = work / "holdb.jar"
    subprocess.run([need("jar"), "--create", "--file", str(jar), "--main-class", "hold.HoldB",
                    "-C", str(classes), "."], check=True, timeout=300)
    return start(procs, [java, "-Xmx32m", "-XX:+UseSerialGC", "-jar", str(jar)], java)


# ----------------------------------------------------------------------------
# node, perl, ruby, php
# ----------------------------------------------------------------------------

SLEEPER_JS = "setInterval(() => {}, 600000);\n"


@case("node", "node app.js", "nodejs")
def node(procs: Programs, work: Path) -> int:
    node_bin = need("node")
    write(work / "app.js", SLEEPER_JS)
    return start(procs, [node_bin, str(work / "app.js")], node_bin)


@case("node-options", "node --require preload.js --inspect=127.0.0.1:0 app.js", "nodejs")
def node_options(procs: Programs, work: Path) -> int:
    node_bin = need("node")
    write(work / "app.js", SLEEPER_JS)
    write(work / "preload.js", "globalThis.preloaded = true;\n")
    return start(procs, [node_bin, "--require", str(work / "preload.js"),
                         "--inspect=127.0.0.1:0", str(work / "app.js")], node_bin)


TITLED_JS = '''process.title = "mynode: master";
if (process.argv[2] !== "child") {
    require("child_process").fork(__filename, ["child"]);
}
setInterval(() => {}, 600000);
'''


@case("node-title", "node titled.js: sets process.title and forks itself (child_process.fork)",
      "nodejs")
def node_title(procs: Programs, work: Path) -> int:
    node_bin = need("node")
    write(work / "titled.js", TITLED_JS)
    pid = start(procs, [node_bin, str(work / "titled.js")], node_bin)
    wait_for("the forked child", lambda: len(children(pid)) >= 1)
    wait_for("the child's title", lambda: _field(children(pid)[0], "cmdline").startswith(b"mynode"))
    return pid


@case("npm-start", "npm start, whose package.json runs node server.js", "nodejs")
def npm_start(procs: Programs, work: Path) -> int:
    npm, node_bin = need("npm"), need("node")
    write(work / "server.js", SLEEPER_JS)
    write(work / "package.json", '{"name": "demo", "version": "1.0.0", '
          '"scripts": {"start": "node server.js"}}\n')
    pid = start(procs, [npm, "start"], node_bin, {"HOME": str(work)}, cwd=work)
    wait_for("npm's node server.js", lambda: any(
        b"server.js" in _field(p, "cmdline") for _, p in tree(pid)))
    return pid


@case("perl", "perl -w job.pl", "perl")
def perl(procs: Programs, work: Path) -> int:
    write(work / "job.pl", "sleep 600;\n")
    return start(procs, [need("perl"), "-w", str(work / "job.pl")], need("perl"))


TITLED_PL = '''$0 = "myperl: master";
if (fork() == 0) { $0 = "myperl worker"; sleep 600; exit 0; }
sleep 600;
'''


@case("perl-title", "perl titled.pl: sets $0 and forks a worker that sets its own", "perl")
def perl_title(procs: Programs, work: Path) -> int:
    write(work / "titled.pl", TITLED_PL)
    pid = start(procs, [need("perl"), str(work / "titled.pl")], need("perl"))
    wait_for("the worker's title", lambda: any(
        _field(child, "cmdline").startswith(b"myperl worker")
        for child in children(pid)))
    return pid


@case("ruby", "ruby -I lib -r set job.rb", "ruby3.1")
def ruby(procs: Programs, work: Path) -> int:
    write(work / "job.rb", "sleep 600\n")
    (work / "lib").mkdir()
    return start(procs, [need("ruby"), "-I", str(work / "lib"), "-r", "set",
                         str(work / "job.rb")], need("ruby"))


TITLED_RB = '''$0 = "myruby master"
fork { Process.setproctitle("myruby: worker 1"); sleep 600 }
sleep 600
'''


@case("ruby-title", "ruby titled.rb: sets $0 and forks a worker that sets its own", "ruby3.1")
def ruby_title(procs: Programs, work: Path) -> int:
    write(work / "titled.rb", TITLED_RB)
    pid = start(procs, [need("ruby"), str(work / "titled.rb")], need("ruby"))
    wait_for("the worker's title", lambda: any(
        _field(child, "cmdline").startswith(b"myruby:")
        for child in children(pid)))
    return pid


@case("php", "php -d memory_limit=64M job.php", "php8.2-cli")
def php(procs: Programs, work: Path) -> int:
    write(work / "job.php", "<?php sleep(600);\n")
    return start(procs, [need("php"), "-d", "memory_limit=64M", str(work / "job.php")],
                 need("php"))


# ----------------------------------------------------------------------------
# Shells
# ----------------------------------------------------------------------------

# A subshell (a fork with the same command line) and a sleep in it, and a
# sleep of the script's own.
JOB_SH = '''( while :; do sleep 600; done ) &
sleep 600 &
wait
'''


def _sleeping(pid: int, sleeps: int = 2) -> bool:
    """Whether PID's script runs its subshell and both sleeps: a sleep is
    a fork of the shell until it execs, and ksh93's sleep is a builtin,
    which runs in the fork."""
    comms = [_field(member, "comm") for _, member in tree(pid)]
    return len(comms) == 3 + (sleeps > 0) and comms.count(b"sleep") == sleeps


def _shell(procs: Programs, work: Path, shell: str, script: str, sleeps: int = 2) -> int:
    shell_bin = need(shell)
    write(work / script, JOB_SH)
    pid = start(procs, [shell_bin, str(work / script)], shell_bin)
    wait_for("the script's subshell and sleeps", lambda: _sleeping(pid, sleeps))
    return pid


@case("bash", "bash job.sh: a subshell and two sleeps", "bash")
def bash(procs: Programs, work: Path) -> int:
    return _shell(procs, work, "bash", "job.sh")


@case("dash", "sh job.sh (sh is dash)", "dash")
def dash(procs: Programs, work: Path) -> int:
    return _shell(procs, work, "sh", "job.sh")


@case("zsh", "zsh job.zsh", "zsh")
def zsh(procs: Programs, work: Path) -> int:
    return _shell(procs, work, "zsh", "job.zsh")


@case("ksh", "ksh job.ksh (ksh is ksh93, whose sleep is a builtin)", "ksh")
def ksh(procs: Programs, work: Path) -> int:
    return _shell(procs, work, "ksh", "job.ksh", sleeps=0)


@case("mksh", "mksh job.sh", "mksh")
def mksh(procs: Programs, work: Path) -> int:
    return _shell(procs, work, "mksh", "job.sh")


@case("shebang", "./run.sh, a #!/bin/bash -e script run as a program", "bash")
def shebang(procs: Programs, work: Path) -> int:
    script = write(work / "run.sh", "#!/bin/bash -e\n" + JOB_SH, 0o755)
    pid = start(procs, ["./run.sh"], need("bash"), cwd=work)
    wait_for("the script's subshell and sleeps", lambda: _sleeping(pid))
    assert script.exists()
    return pid


# ----------------------------------------------------------------------------
# Recording the fixtures
# ----------------------------------------------------------------------------

def _version(package: str) -> str:
    done = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return done.stdout.decode() if done.returncode == 0 else "?"


def record(case: Case) -> Path:
    """Start CASE, read its processes and their launcher once all are
    there, write tests/data/apps/CASE.txt, stop them."""
    import platform
    import tempfile

    with Programs() as procs, tempfile.TemporaryDirectory(prefix="apps-") as work:
        pid = case.start(procs, Path(work))
        blocks = []
        for role, member in tree(pid):
            raw = read_raw(member)
            if raw is None:
                raise RuntimeError("%s: pid %d vanished while being read" % (case.name, member))
            blocks.append(raw._replace(role=role))
        launcher = read_raw(blocks[0].ppid)
        if launcher is None:
            raise RuntimeError("%s: the launcher vanished" % case.name)
        blocks.insert(0, launcher._replace(role="launcher"))
    comments = [case.about,
                "Debian 12: " + ", ".join("%s %s" % (p, _version(p)) for p in case.packages),
                "Linux %s, recorded %s by tests/app_programs.py"
                % (platform.release(), time.strftime("%Y-%m-%d"))]
    path = FIXTURES / (case.name + ".txt")
    write_fixture(path, comments, blocks)
    return path


def main(names: List[str]) -> int:
    status = 0
    for name in names or sorted(CASES):
        try:
            print("recorded", record(CASES[name]))
        except Unavailable as error:
            print("skipped %s: %s" % (name, error))
        except Exception as error:  # noqa: BLE001 - one case failing leaves the others
            print("FAILED %s: %r" % (name, error))
            status = 1
    return status


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
