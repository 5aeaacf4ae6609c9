"""--group-by app on real programs: the issue's cases, live.

Each case of tests/app_programs.py starts a real program from Debian's
packages (skipped where it is not installed), and ps_mem.py names its
processes on the live /proc, as the fixture recorded from the same
program expects (test_collection_apps.EXPECTED).  Then the issue's cases
as rows, beside what ps_mem 3.14 shows for the same processes.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pytest

from tests.app_fixtures import read_raw, tree
from tests.app_programs import CASES, Programs
from tests.harness import REFERENCE_DIR, child_env, live, run_ours
from tests.test_collection_apps import EXPECTED, LAUNCHER


class Started:
    """Cases started side by side, each with its processes by role."""

    def __init__(self, procs: Programs, work: Path) -> None:
        self._procs = procs
        self._work = work
        self.roles: Dict[str, List[Tuple[str, int]]] = {}

    def start(self, name: str) -> List[Tuple[str, int]]:
        """Start case NAME: its processes by role, the launching shell first."""
        work = self._work / name
        work.mkdir()
        members = tree(CASES[name].start(self._procs, work))
        main = read_raw(members[0][1])
        assert main is not None
        self.roles[name] = [("launcher", main.ppid)] + members
        return self.roles[name]

    def pids(self, *names: str) -> List[int]:
        """The processes of NAMES, without their launchers."""
        return [pid for name in names for role, pid in self.roles[name] if role != "launcher"]

    def names(self, *extra: str) -> Dict[str, Dict[str, str]]:
        """case -> role -> its row's name, from one run of ps_mem.py over
        every case's processes."""
        pids = [pid for members in self.roles.values() for _, pid in members]
        result = run_ours("--json", "--group-by", "app", *extra,
                          "-p", ",".join(map(str, pids)))
        assert result.status == 0, result.err
        found = {pid: row["name"] for row in json.loads(result.stdout)["programs"]
                 for pid in row["pids"]}
        assert sorted(found) == sorted(pids), "a process was not reported"
        return {name: {role: found[pid] for role, pid in members}
                for name, members in self.roles.items()}

    def table(self, *names: str) -> Dict[str, str]:
        """name (with its count) -> RAM used, as the table shows the rows
        of NAMES' processes."""
        result = run_ours("--group-by", "app", "-p", ",".join(map(str, self.pids(*names))))
        assert result.status == 0, result.err
        assert result.out.startswith(" Private  +   Shared  =  RAM used\tApp\n\n")
        return dict((name, size) for size, name in
                    re.findall(r"= +([\d.]+ [KMG]iB)\t(.+)\n", result.out))


@pytest.fixture
def started() -> Iterator[Started]:
    with Programs() as procs, tempfile.TemporaryDirectory(prefix="ps_mem-apps-") as work:
        yield Started(procs, Path(work))


def reference_rows(pids: List[int]) -> List[str]:
    """The names ps_mem 3.14 gives the rows of PIDS."""
    if not (REFERENCE_DIR / "ps_mem.py").exists():
        pytest.skip("ps_mem 3.14 is not installed in %s: run tests/run" % REFERENCE_DIR)
    done = subprocess.run([sys.executable, str(REFERENCE_DIR / "ps_mem.py"),
                           "-p", ",".join(map(str, pids))],
                          capture_output=True, timeout=60, env=child_env(), check=True)
    return sorted(re.findall(r"= +[\d.]+ [KMG]iB\t(.+)\n", done.stdout.decode()))


@live
@pytest.mark.parametrize("name", sorted(set(CASES) & set(EXPECTED)))
def test_case(started: Started, name: str) -> None:
    """Each real program is named as its recorded fixture is, and so is the
    shell that launched it."""
    started.start(name)
    assert started.names()[name] == {"launcher": LAUNCHER, **EXPECTED[name]}


@live
def test_launcher_and_d(started: Started) -> None:
    """With -d each row is a process, named APP [PID]."""
    (_, launcher), (_, main) = started.start("python-m")
    assert started.names("-d")["python-m"] == {
        "launcher": "sh [%d]" % launcher, "main": "http.server [python3.11] [%d]" % main}


@live
def test_gunicorn_is_one_row(started: Started) -> None:
    started.start("gunicorn")
    assert list(started.table("gunicorn")) == ["gunicorn [python3.11] (3)"]
    # 3.14: the master by its comm, the workers with every python3.11.
    assert reference_rows(started.pids("gunicorn")) == ["gunicorn", "python3.11 (2)"]


@live
def test_gunicorn_with_setproctitle_is_one_row(started: Started) -> None:
    started.start("gunicorn-setproctitle")
    assert list(started.table("gunicorn-setproctitle")) == ["gunicorn [python3.11] (3)"]
    assert reference_rows(started.pids("gunicorn-setproctitle")) == \
        ["gunicorn: maste", "python3.11 (2)"]


@live
def test_two_java_programs_are_two_rows(started: Started) -> None:
    started.start("java-main-class")
    started.start("java-jar")
    assert sorted(started.table("java-main-class", "java-jar")) == \
        ["com.example.HoldA [java]", "holdb.jar [java]"]
    assert reference_rows(started.pids("java-main-class", "java-jar")) == ["java (2)"]


@live
def test_redis_and_its_bgsave_child_are_one_row(started: Started) -> None:
    members = started.start("redis-bgsave")
    assert [role for role, _ in members] == ["launcher", "main", "child1"]
    assert list(started.table("redis-bgsave")) == ["redis-server (2)"]
    assert reference_rows(started.pids("redis-bgsave")) == ["redis-check-rdb", "redis-server"]


@live
def test_postgres_and_its_backends_are_one_row(started: Started) -> None:
    started.start("postgres")
    count = len(started.pids("postgres"))
    assert count >= 7  # the postmaster, 5 helpers, a backend
    assert list(started.table("postgres")) == ["postgres (%d)" % count]
    assert reference_rows(started.pids("postgres")) == ["postgres (%d)" % count]


@live
def test_named_by_what_they_run(started: Started) -> None:
    for name in ("python-m", "node", "bash"):
        started.start(name)
    names = started.names()
    assert names["python-m"] == {"launcher": "sh", "main": "http.server [python3.11]"}
    assert names["node"] == {"launcher": "sh", "main": "app.js [node]"}
    assert names["bash"]["main"] == "job.sh [bash]"
    assert sorted(started.table("bash")) == ["job.sh [bash] (2)", "sleep (2)"]


@live
def test_the_total_is_the_default_views(started: Started) -> None:
    """Rows are cut differently, memory is not: in a capture (one sample),
    the app view's total is the default's, to the byte."""
    for name in ("gunicorn", "redis-bgsave"):
        started.start(name)
    pids = ",".join(map(str, started.pids("gunicorn", "redis-bgsave")))
    with tempfile.TemporaryDirectory(prefix="ps_mem-apps-") as work:
        capture = str(Path(work) / "sample.tar.gz")
        assert run_ours("--capture", capture, "-p", pids).status == 0
        by_app = run_ours("-t", "--group-by", "app", "-p", pids, procfs=capture)
        default = run_ours("-t", "-p", pids, procfs=capture)
        rows = json.loads(run_ours("--json", "--group-by", "app", "-p", pids,
                                   procfs=capture).stdout)["programs"]
    assert by_app.status == 0 and by_app.out == default.out
    assert sorted(row["name"] for row in rows) == ["gunicorn [python3.11]", "redis-server"]
