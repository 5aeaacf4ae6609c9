"""--group-by app on fixture /proc trees: the application each process runs.

The trees are made from real programs' /proc, recorded into
tests/data/apps/ (see tests/app_fixtures.py; each file's header says what
ran, from which Debian packages).  What each process should be named is
written here by hand, from what each program is.  Each tree is read as
--procfs reads a tree, by the live /proc's path (comm and stat), by forked
readers, and from a capture of it.  Then the walk up the parents on trees
made for it: workers of workers, cycles, chains too deep, parents gone,
and what is read.
"""

import json
from typing import Dict, List

import pytest

from tests.app_fixtures import add_fixture, fixture_names, load_fixture
from tests.harness import REFERENCE_DIR, parse_table, printable, ps_mem, run_main, run_reference
from tests.procfs_builder import PYTHON, ProcTree, program_maps

# Every fixture's programs were started by sh -c '"$@" & wait' launcher ...
LAUNCHER = "sh"

# Fixture -> role -> the row the process belongs to.
EXPECTED: Dict[str, Dict[str, str]] = {
    "gunicorn": {"main": "gunicorn [python3.11]", "child1": "gunicorn [python3.11]",
                 "child2": "gunicorn [python3.11]"},
    # setproctitle rewrote argv and comm ("gunicorn: maste", "gunicorn: worke").
    "gunicorn-setproctitle": {"main": "gunicorn [python3.11]", "child1": "gunicorn [python3.11]",
                              "child2": "gunicorn [python3.11]"},
    # "[celeryd: celery@vm:MainProcess] -active- (...)", "[celeryd: ...:ForkPoolWorker-1]"
    "celery": {"main": "celeryd [python3.11]", "child1": "celeryd [python3.11]",
               "child2": "celeryd [python3.11]"},
    # uwsgi is a C program that embeds Python: its default name.
    "uwsgi": {"main": "uwsgi-core", "child1": "uwsgi-core", "child2": "uwsgi-core"},
    "python-m": {"main": "http.server [python3.11]"},
    "python-script": {"main": "job.py [python3.11]"},
    # Code on the command line or on standard input names nothing: the
    # default name.
    "python-c": {"main": "python3.11"},
    "python-stdin": {"main": "python3.11"},
    "multiprocessing-fork": {"main": "pool.py [python3.11]", "child1": "pool.py [python3.11]",
                             "child2": "pool.py [python3.11]"},
    # The resource tracker and the spawned workers are `python3 -c ...`.
    "multiprocessing-spawn": {"main": "pool.py [python3.11]", "child1": "pool.py [python3.11]",
                              "child2": "pool.py [python3.11]", "child3": "pool.py [python3.11]"},
    # The workers are the fork server's children, two below pool.py.
    "multiprocessing-forkserver": {
        "main": "pool.py [python3.11]", "child1": "pool.py [python3.11]",
        "child2": "pool.py [python3.11]", "child2.1": "pool.py [python3.11]",
        "child2.2": "pool.py [python3.11]"},
    # exe is redis-check-rdb, comm redis-server; the child's argv is
    # "redis-rdb-bgsave 127.0.0.1:PORT".  3.14 names the child redis-check-rdb.
    "redis-bgsave": {"main": "redis-server", "child1": "redis-server"},
    "postgres": {"main": "postgres", **{"child%d" % n: "postgres" for n in range(1, 7)}},
    "php-fpm": {"main": "php-fpm8.2", "child1": "php-fpm8.2", "child2": "php-fpm8.2"},
    "java-main-class": {"main": "com.example.HoldA [java]"},
    "java-jar": {"main": "holdb.jar [java]"},
    "node": {"main": "app.js [node]"},
    "node-options": {"main": "app.js [node]"},
    # process.title = "mynode: master", in the parent and in its forked child.
    "node-title": {"main": "mynode [node]", "child1": "mynode [node]"},
    # npm's title is "npm start"; it runs sh -c "node server.js".
    "npm-start": {"main": "npm [node]", "child1": "sh", "child1.1": "server.js [node]"},
    # The node was read mid-exec, with an empty command line (and launched
    # by the recorder itself, then `.venv/bin/python -m wip.record_fixtures`).
    "exec-race-node": {"launcher": "wip.record_fixtures [python3.11]", "main": "node"},
    "perl": {"main": "job.pl [perl]"},
    # $0 = "myperl: master", and the worker's $0 = "myperl worker".
    "perl-title": {"main": "myperl [perl]", "child1": "myperl [perl]"},
    "ruby": {"main": "job.rb [ruby3.1]"},
    "ruby-title": {"main": "myruby [ruby3.1]", "child1": "myruby [ruby3.1]"},
    "php": {"main": "job.php [php8.2]"},
    # A subshell is a fork with the script's command line; sleep is its own.
    "bash": {"main": "job.sh [bash]", "child1": "job.sh [bash]", "child2": "sleep",
             "child1.1": "sleep"},
    "dash": {"main": "job.sh [dash]", "child1": "job.sh [dash]", "child2": "sleep",
             "child1.1": "sleep"},
    "zsh": {"main": "job.zsh [zsh]", "child1": "job.zsh [zsh]", "child2": "sleep",
            "child1.1": "sleep"},
    # ksh93's sleep is a builtin: its background job is a fork of the script.
    "ksh": {"main": "job.ksh [ksh93]", "child1": "job.ksh [ksh93]", "child2": "job.ksh [ksh93]"},
    "mksh": {"main": "job.sh [mksh]", "child1": "job.sh [mksh]", "child2": "sleep",
             "child1.1": "sleep"},
    # #!/bin/bash -e: argv is /bin/bash -e ./run.sh, comm run.sh.
    "shebang": {"main": "run.sh [bash]", "child1": "run.sh [bash]", "child2": "sleep",
                "child1.1": "sleep"},
}
FAST = ps_mem.LIVE._replace(kcmp=False, root_only=False, as_data=True)


def expected(fixture: str) -> Dict[str, str]:
    return {"launcher": LAUNCHER, **EXPECTED[fixture]}


def names_by_pid(*args: str, procfs) -> Dict[int, str]:
    """pid -> the name of its row, from the JSON document."""
    result = run_main("--json", *args, procfs=procfs)
    assert result.status == 0 and result.stderr == b"", result.err
    return {pid: row["name"] for row in json.loads(result.stdout)["programs"]
            for pid in row["pids"]}


def fixture_tree(tree, fixture: str) -> "tuple[ProcTree, Dict[int, str]]":
    proc = tree()
    roles = add_fixture(proc, load_fixture(fixture))
    return proc, roles


def test_every_fixture_has_expectations() -> None:
    assert fixture_names() == sorted(EXPECTED)


def test_fixture_comm_is_status_name() -> None:
    """comm and status's Name are one text in every fixture, so that a tree
    made from one reads alike both ways."""
    for fixture in fixture_names():
        for block in load_fixture(fixture):
            assert block.comm == block.name, (fixture, block.role)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture(tree, fixture: str) -> None:
    proc, roles = fixture_tree(tree, fixture)
    found = names_by_pid("--group-by", "app", procfs=proc.root)
    assert {roles[pid]: name for pid, name in found.items()} == expected(fixture)


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_fixture_read_every_way(tree, tmp_path, monkeypatch, fixture: str) -> None:
    """As --procfs reads a tree, as the live /proc is read (comm, stat, no
    command line where no name needs it), by forked readers (each with a
    Namer of its own), and from a capture: the same samples."""
    monkeypatch.setattr(ps_mem, "_CHUNK_PIDS", 2)  # several chunks in a small tree
    proc, _ = fixture_tree(tree, fixture)
    options = ps_mem.Options(group_by="app")

    def sample(reading, readers):
        procfs = ps_mem.ProcFS(str(proc.root), reading)
        kernel = ps_mem.kernel_version(procfs.read_global("sys/kernel/osrelease"))
        return ps_mem.collect(procfs, options, kernel, procfs.self_pid(), readers=readers)
    as_tree = sample(ps_mem.TREE, 1)
    assert len(as_tree.samples) == len(proc.pids)
    assert sample(FAST, 1) == as_tree
    assert sample(FAST, 3) == as_tree
    capture = tmp_path / "capture.tar.gz"
    assert run_main("--capture", str(capture), procfs=proc.root).status == 0
    for args in (["--group-by", "app"], ["--group-by", "app", "-d", "-S"]):
        assert run_main(*args, procfs=capture).stdout == run_main(*args, procfs=proc.root).stdout


def rows(table_text: str) -> Dict[str, str]:
    """name (with its count) -> RAM used, of a table."""
    return {row.name: row.ram for row in parse_table(table_text).rows}


def issue_tree(tree, *fixtures: str) -> ProcTree:
    """One tree of several fixtures, without their launchers (their pids
    do not meet)."""
    proc = tree()
    for fixture in fixtures:
        add_fixture(proc, [block for block in load_fixture(fixture) if block.role != "launcher"])
    return proc


@pytest.mark.parametrize("fixtures, app_rows, default_rows", [
    # gunicorn's master and workers: one row.  3.14: the master by its
    # title's comm, the workers with every other python3.11.
    (["gunicorn-setproctitle"], ["gunicorn [python3.11] (3)"],
     ["gunicorn: maste", "python3.11 (2)"]),
    (["gunicorn"], ["gunicorn [python3.11] (3)"], ["gunicorn", "python3.11 (2)"]),
    # Two Java programs, -jar and a main class: two rows.
    (["java-main-class", "java-jar"], ["com.example.HoldA [java]", "holdb.jar [java]"],
     ["java (2)"]),
    # redis-server and its BGSAVE child: one row.
    (["redis-bgsave"], ["redis-server (2)"], ["redis-check-rdb", "redis-server"]),
    # postgres and its backends: one row, as by default.
    (["postgres"], ["postgres (7)"], ["postgres (7)"]),
    (["python-m", "node", "bash"],
     ["http.server [python3.11]", "app.js [node]", "job.sh [bash] (2)", "sleep (2)"],
     ["python3.11", "node", "bash (2)", "sleep (2)"]),
])
def test_the_issues_cases_as_rows(tree, fixtures: List[str], app_rows: List[str],
                                  default_rows: List[str]) -> None:
    proc = issue_tree(tree, *fixtures)
    by_app = run_main("--group-by", "app", procfs=proc.root)
    default = run_main(procfs=proc.root)
    assert sorted(rows(by_app.out)) == sorted(app_rows)
    assert sorted(rows(default.out)) == sorted(default_rows)
    # The total is the default view's: rows are only cut differently.
    assert parse_table(by_app.out).total_ram == parse_table(default.out).total_ram
    assert run_main("-t", "--group-by", "app", procfs=proc.root).out == \
        run_main("-t", procfs=proc.root).out
    if (REFERENCE_DIR / "ps_mem.py").exists():
        assert run_reference(procfs=proc.root).out == default.out


def test_app_with_d(tree) -> None:
    proc = issue_tree(tree, "redis-bgsave")
    found = names_by_pid("--group-by", "app", "-d", procfs=proc.root)
    assert found == {18081: "redis-server [18081]", 18090: "redis-server [18090]"}
    table = run_main("--group-by", "app", "-d", procfs=proc.root).out
    assert table.startswith(" Private  +   Shared  =  RAM used\tApp[pid]\n\n")
    assert sorted(rows(table)) == ["redis-server [18081]", "redis-server [18090]"]


# ----------------------------------------------------------------------------
# The walk up the parents, on trees made for it
# ----------------------------------------------------------------------------

PY = "/usr/bin/python3.11"


class Counting(ps_mem.ProcFS):
    """A tree whose reads are counted: (pid, file) -> times read."""

    def __init__(self, root) -> None:
        super().__init__(str(root), ps_mem.TREE)
        self.reads: Dict[tuple, int] = {}

    def _count(self, pid: int, name: str) -> None:
        self.reads[pid, name] = self.reads.get((pid, name), 0) + 1

    def read(self, pid: int, name: str) -> bytes:
        self._count(pid, name)
        return super().read(pid, name)

    def read_optional(self, pid: int, name: str):
        self._count(pid, name)
        return super().read_optional(pid, name)

    def readlink(self, pid: int, name: str) -> str:
        self._count(pid, name)
        return super().readlink(pid, name)

    def pids_read(self) -> List[int]:
        return sorted({pid for pid, _ in self.reads})


def add_python(proc: ProcTree, pid: int, ppid: int, *args: str, name: str = "python3",
               exe: str = PY) -> None:
    proc.add(pid, name, exe, ppid=ppid, cmdline=["python3", *args],
             maps=program_maps(exe, heap_kib=1000 + pid))


def app_of(proc: ProcTree, *pids: int, procfs=None) -> Dict[int, str]:
    namer = ps_mem.Namer(procfs or ps_mem.ProcFS(str(proc.root), ps_mem.TREE),
                         ps_mem.Options(group_by="app"))
    return {pid: namer.names(pid)[0] for pid in pids}


def test_a_worker_of_a_worker(tree) -> None:
    """multiprocessing's fork server: the workers are forks of `python3 -c`,
    itself a child of the application; the parents are read once however
    many workers ask."""
    proc = tree()
    proc.add(1, "init", "/sbin/init", ppid=0, maps=program_maps("/sbin/init", heap_kib=100))
    add_python(proc, 10, 1, "pool.py")
    add_python(proc, 11, 10, "-c", "from multiprocessing.forkserver import main")
    for pid in range(12, 32):
        add_python(proc, pid, 11, "-c", "from multiprocessing.forkserver import main")
    procfs = Counting(proc.root)
    procfs.reading = FAST  # the live /proc's path
    found = app_of(proc, *range(12, 32), procfs=procfs)
    assert set(found.values()) == {"pool.py [python3.11]"}
    def reads_of(pid: int) -> Dict[str, int]:
        return {name: count for (read, name), count in procfs.reads.items() if read == pid}
    # The fork server names nothing and looks at its parent (stat, for the
    # parent's pid); pool.py is named by its command line.
    assert reads_of(11) == {"exe": 1, "comm": 1, "cmdline": 1, "stat": 1}
    assert reads_of(10) == {"exe": 1, "comm": 1, "cmdline": 1}
    assert 1 not in procfs.pids_read()  # pool.py is named by its own command line


def test_a_program_by_its_own_name_reads_no_parent(tree) -> None:
    """A program that is no interpreter and whose comm begins its
    executable's name is named so by 3.14, and so is any parent it could
    join: no parent is read.  One renamed (redis-server, from
    redis-check-rdb) reads its parent's."""
    proc = tree()
    proc.add(1, "init", "/sbin/init", ppid=0, maps=program_maps("/sbin/init", heap_kib=100))
    for pid, name, exe, ppid, title in (
            (10, "nginx", "/usr/sbin/nginx", 1, "nginx: master process"),
            (11, "nginx", "/usr/sbin/nginx", 10, "nginx: worker process"),
            (20, "redis-server", "/usr/bin/redis-check-rdb", 1, "redis-server *:6379"),
            (21, "redis-server", "/usr/bin/redis-check-rdb", 20, "redis-rdb-bgsave")):
        proc.add(pid, name, exe, ppid=ppid, cmdline=[title],
                 maps=program_maps(exe, heap_kib=1000 + pid))
    procfs = Counting(proc.root)
    assert app_of(proc, 11, procfs=procfs) == {11: "nginx"}
    assert procfs.pids_read() == [11]
    assert app_of(proc, 21, procfs=procfs) == {21: "redis-server"}
    assert procfs.pids_read() == [1, 11, 20, 21]


def test_a_login_shell_reads_only_its_parents_exe(tree) -> None:
    """A login shell names nothing; its parent, sshd, runs another program,
    so it cannot be joined: only its exe link is read (as 3.14's name of a
    renamed child reads it)."""
    proc = tree()
    proc.add(10, "sshd", "/usr/sbin/sshd", ppid=1, cmdline=["sshd: root@pts/0"],
             maps=program_maps("/usr/sbin/sshd", heap_kib=1000))
    proc.add(11, "bash", "/usr/bin/bash", ppid=10, cmdline=["-bash"],
             maps=program_maps("/usr/bin/bash", heap_kib=1100))
    procfs = Counting(proc.root)
    procfs.reading = FAST
    assert app_of(proc, 11, procfs=procfs) == {11: "bash"}
    assert sorted(name for pid, name in procfs.reads if pid == 10) == ["exe"]


def test_an_interpreters_command_line_is_read_only_for_it(tree) -> None:
    """On the live /proc's path a command line is read only where the name
    needs it: an interpreter's."""
    proc = tree()
    add_python(proc, 10, 1, "app.py")
    proc.add(11, "sleep", "/usr/bin/sleep", ppid=10, maps=program_maps("/usr/bin/sleep",
                                                                       heap_kib=100))
    procfs = Counting(proc.root)
    procfs.reading = FAST
    assert app_of(proc, 10, 11, procfs=procfs) == {10: "app.py [python3.11]", 11: "sleep"}
    assert (10, "cmdline") in procfs.reads and (11, "cmdline") not in procfs.reads


def test_an_unreadable_parent(tree) -> None:
    """A worker whose parent is gone, or shows no exe link: its own name."""
    proc = tree()
    add_python(proc, 11, 10, "-c", "x")  # 10 is not in the tree
    add_python(proc, 21, 20, "-c", "x")
    proc.add(20, "python3", PY, ppid=1, cmdline=["python3", "app.py"], omit=("exe",),
             maps=program_maps(PY, heap_kib=1000))
    assert app_of(proc, 11, 21) == {11: "python3.11", 21: "python3.11"}


def test_another_installation_is_another_program(tree) -> None:
    """A python3 -c under a script run by another python3.11 (a pyenv's):
    not its worker."""
    proc = tree()
    add_python(proc, 10, 1, "app.py", exe="/root/.pyenv/versions/3.11.7/bin/python3.11")
    add_python(proc, 11, 10, "-c", "x")
    assert app_of(proc, 10, 11) == {10: "app.py [python3.11]", 11: "python3.11"}


def test_a_cycle_of_parents(tree) -> None:
    """A hostile tree: each is the other's parent, or its own."""
    proc = tree()
    add_python(proc, 11, 12, "-c", "x")
    add_python(proc, 12, 11, "-c", "x", name="twelve")
    add_python(proc, 13, 13, "-c", "x", name="thirteen")
    # Each python names nothing: the walk stops where the pid comes again,
    # and the last process reached gives its program (by comm: its parent's
    # exe is its own, so 3.14 names it by the executable).
    assert app_of(proc, 11, 12, 13) == {11: "python3.11", 12: "python3.11", 13: "python3.11"}
    result = run_main("--group-by", "app", procfs=proc.root)
    assert result.status == 0 and rows(result.out).keys() == {"python3.11 (3)"}


def test_a_chain_too_deep(tree) -> None:
    """An application under more forks than the walk goes up is not
    reached: the walk gives up and the process keeps its program."""
    proc = tree()
    add_python(proc, 100, 1, "app.py")
    for pid in range(101, 300):
        add_python(proc, pid, pid - 1, "-c", "x")
    found = app_of(proc, 100 + ps_mem._MAX_PARENTS, 299)
    assert found == {100 + ps_mem._MAX_PARENTS: "app.py [python3.11]", 299: "python3.11"}
    result = run_main("--group-by", "app", procfs=proc.root)
    assert result.status == 0


def test_a_parent_whose_status_cannot_be_parsed(tree) -> None:
    """A tree's parent with a status no kernel writes: the child, which
    would join it, keeps its own program; the parent is left out."""
    proc = tree()
    proc.add(10, "redis-server", "/usr/bin/redis-check-rdb", ppid=1,
             cmdline=["redis-server *:6379"], replace={"status": b"Name:\tredis-server\n"},
             maps=program_maps("/usr/bin/redis-check-rdb", heap_kib=1000))
    proc.add(11, "redis-server", "/usr/bin/redis-check-rdb", ppid=10,
             cmdline=["redis-rdb-bgsave"], maps=program_maps("/usr/bin/redis-check-rdb",
                                                             heap_kib=1100))
    result = run_main("--json", "--group-by", "app", procfs=proc.root)
    assert [(row["name"], row["pids"]) for row in json.loads(result.stdout)["programs"]] == \
        [("redis-check-rdb", [11])]
    assert result.err == ("Warning: 1 process could not be parsed (their files are not what a "
                          "kernel writes); their memory is not included.\n")


def test_ps_mem_itself_is_left_out(tree) -> None:
    """The tree's self (ps_mem, a python3.11 running /usr/bin/ps_mem) is
    no row, but a worker of it would still be named after it."""
    proc = tree()
    assert proc.self_pid is not None
    add_python(proc, 40000, proc.self_pid, "-c", "x", exe=PYTHON)
    assert names_by_pid("--group-by", "app", procfs=proc.root) == {40000: "ps_mem [python3.11]"}


def test_app_with_s_is_a_usage_error(tree) -> None:
    """-s rows are command lines: an application is not one."""
    proc = issue_tree(tree, "python-m")
    for args in (["--group-by", "app", "-s"], ["--group-by", "app", "--show-cmdline"]):
        result = run_main(*args, procfs=proc.root)
        assert result.status == 2 and result.stdout == b""
        assert result.err.splitlines()[-1] == \
            "ps_mem: error: --group-by app cannot be combined with -s"


@pytest.mark.parametrize("args, title", [
    ([], "Program"), (["--group-by", "program"], "Program"), (["-d"], "Program[pid]"),
    (["--group-by", "pid"], "Program[pid]"), (["-s"], "Program"),
    (["--group-by", "cmdline"], "Program"), (["--group-by", "user"], "User"),
    (["--group-by", "user", "-d"], "User[pid]"), (["--group-by", "cgroup", "-S"], "Cgroup"),
    (["--group-by", "app"], "App"), (["--group-by", "app", "-d", "-S"], "App[pid]"),
])
def test_the_header_names_the_grouping(tree, args: List[str], title: str) -> None:
    """The last column says what the rows are; 3.14's own views (by
    program, -d, -s) keep its header."""
    proc = issue_tree(tree, "python-m")
    swap = "   Swap used" if "-S" in args else ""
    assert run_main(*args, procfs=proc.root).out.startswith(
        " Private  +   Shared  =  RAM used%s\t%s\n\n" % (swap, title))


# ----------------------------------------------------------------------------
# Command lines are whatever their processes made them
# ----------------------------------------------------------------------------

def test_hostile_command_lines(tree) -> None:
    """Escape sequences, newlines, bidi overrides and bytes that are not
    UTF-8 in a script's name or a title: shown as "?" (or dropped, for the
    bytes), never sent to the terminal; a huge argument is cut."""
    proc = tree()
    scripts = {
        10: [b"python3", b"/srv/\x1b]0;owned\x07job.py"],
        11: [b"python3", b"line\nbreak.py"],
        12: [b"python3", b"\xe2\x80\xaeyp.evil"],  # U+202E, right-to-left override
        13: [b"python3", b"\xff\xfebytes.py"],
        14: [b"python3", b"x" * (1 << 20) + b".py"],
        15: [b"\x1b[31mred: master"],  # a title
    }
    for pid, args in scripts.items():
        proc.add(pid, "python3", PY, ppid=1, cmdline=args,
                 maps=program_maps(PY, heap_kib=1000 + pid))
    result = run_main("--group-by", "app", procfs=proc.root)
    assert result.status == 0 and result.stderr == b""
    names = sorted(row.name for row in parse_table(result.out).rows)
    assert names == sorted([
        "?]0;owned?job.py [python3.11]", "line?break.py [python3.11]",
        "?yp.evil [python3.11]", "bytes.py [python3.11]",
        "x" * ps_mem._MAX_NAME + " [python3.11]", "?[31mred [python3.11]"])
    # JSON has the names whole, escaped by JSON; the table shows them printable.
    doc = json.loads(run_main("--json", "--group-by", "app", procfs=proc.root).stdout)
    assert sorted(printable(row["name"]) for row in doc["programs"]) == names
    assert any("\x1b" in row["name"] for row in doc["programs"])


def test_a_long_command_line_costs_no_more_than_its_bounds(tree) -> None:
    """A java with a million options (a tree's command line can be that
    long; the kernel's too, up to its ARG_MAX): the first 1024 are looked
    at, and past them nothing is named."""
    proc = tree()
    options = [b"-Dkey=value"] * 1000000
    proc.add(10, "java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", ppid=1,
             cmdline=[b"java", *options, b"Main"],
             maps=program_maps("/usr/bin/java", heap_kib=1000))
    proc.add(11, "java", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java", ppid=1,
             cmdline=[b"java", *options[:1000], b"Main"],
             maps=program_maps("/usr/bin/java", heap_kib=1100))
    assert names_by_pid("--group-by", "app", procfs=proc.root) == {10: "java",
                                                                  11: "Main [java]"}
