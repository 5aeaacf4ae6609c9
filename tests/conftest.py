"""Fixtures shared by the test modules.

Fixture /proc trees:

    proc_trees   (session) the trees of tests/trees.py, each built once:
                 proc_trees.get("rollup_6_1") -> ProcTree
                 proc_trees.pruned("vanished_memory") -> the same tree without
                 its `vanished` pids (what 3.14 should be run on instead)
    tree         a factory for a fresh ProcTree in the test's tmp_path:
                 t = tree("2.6.18", omit=("smaps",)); t.add(...)
    installed_root  (session) a directory holding ROOT/usr/local as
                 `pip install .` fills it from a copy of the project
    node_exporter  Debian's node_exporter on loopback, reading the textfile
                 directory node_exporter.directory (see prometheus_harness)
    three        a 6.1 tree of init and three programs (alpha, beta, gamma)

Forked readers:
    small_chunks forked readers take two pids at a time
    children     the pids of the readers forked during the test

The live /proc:
    procs        a tests.realproc.Processes, closed (its processes ended) after the test
    static_groups  pids of two `setarch -R clone_vm 2 16` groups whose memory
                 files are all the same text (3.14 takes them for one space)
"""

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from tests import prometheus_harness, trees
from tests.harness import REPO, ps_mem
from tests.procfs_builder import ProcTree, program_maps
from tests.realproc import Processes, build, memory_text


def pytest_configure(config: pytest.Config) -> None:
    # Started in the background by a shell without job control (`nohup
    # bash .ci/run &`, some CI runners), the tests inherit SIGINT ignored,
    # and so would every ps_mem they start: the tests of Ctrl-C would see
    # it do nothing.  A handled signal is reset to its default at exec.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class BuiltTrees:
    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._built: Dict[str, ProcTree] = {}
        self._pruned: Dict[str, Path] = {}

    def get(self, name: str) -> ProcTree:
        if name not in self._built:
            self._built[name] = trees.ALL[name](self._factory.mktemp(name) / "proc")
        return self._built[name]

    def pruned(self, name: str) -> Path:
        """A copy of tree `name` without its vanished pids: the processes
        ps_mem.py leaves out where 3.14 crashes."""
        if name not in self._pruned:
            original = self.get(name)
            copy = self._factory.mktemp(name + "-pruned") / "proc"
            # symlinks=True: exe links are copied as links, dangling or not.
            shutil.copytree(original.root, copy, symlinks=True)
            for pid in original.vanished:
                shutil.rmtree(copy / str(pid))
            self._pruned[name] = copy
        return self._pruned[name]


@pytest.fixture(scope="session")
def proc_trees(tmp_path_factory: pytest.TempPathFactory) -> BuiltTrees:
    return BuiltTrees(tmp_path_factory)


@pytest.fixture
def tree(tmp_path: Path):
    """Make a ProcTree at tmp_path/proc (one per test)."""
    def make(kernel: str = "6.1", **options) -> ProcTree:
        return ProcTree(tmp_path / "proc", kernel, **options)
    return make


@pytest.fixture(scope="session")
def installed_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT, with ROOT/usr/local filled by `pip install --prefix` from a copy
    of what the project ships (so that the build leaves nothing in REPO)."""
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.cfg", "ps_mem.py", "ps_mem.1", "README.md",
                 "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "contrib", source / "contrib")
    root = base / "root"
    # The test's Python has setuptools and wheel: nothing is downloaded.
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--no-build-isolation", "--disable-pip-version-check",
                           "--prefix", str(root / "usr" / "local"), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def node_exporter(tmp_path: Path):
    reason = prometheus_harness.missing()
    if reason:
        pytest.skip(reason)
    directory = tmp_path / "textfiles"
    directory.mkdir()
    exporter = prometheus_harness.NodeExporter(directory, log=tmp_path / "node_exporter.log")
    yield exporter
    exporter.stop()
@pytest.fixture
def three(tree):
    t = tree("6.1")
    t.add(1, "init", "/sbin/init", ppid=0, maps=program_maps("/sbin/init", heap_kib=900))
    for pid, name, heap in ((300, "alpha", 1200), (301, "beta", 5100), (302, "gamma", 2300)):
        t.add(pid, name, "/usr/bin/" + name, maps=program_maps("/usr/bin/" + name, heap_kib=heap))
    return t


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of two pids, so that the small trees make several."""
    monkeypatch.setattr(ps_mem, "_CHUNK_PIDS", 2)


@pytest.fixture
def children(monkeypatch) -> List[int]:
    """The pids of the readers forked during the test (not kcmp's helper)."""
    forked: List[int] = []
    original = ps_mem._Reader.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        forked.append(self._child.pid)

    monkeypatch.setattr(ps_mem._Reader, "__init__", record)
    return forked


@pytest.fixture
def procs():
    with Processes() as started:
        yield started


@pytest.fixture
def static_groups(procs):
    """Static processes only, so that ours and 3.14 read the same bytes:
    two setarch -R clone_vm groups of 16 MiB with identical memory files,
    which 3.14 merges into one."""
    helper = str(build("clone_vm"))
    pids = procs.no_aslr([helper, "2", "16"], processes=3)
    pids += procs.no_aslr([helper, "2", "16"], processes=3)
    if len({memory_text(pid) for pid in pids}) != 1:
        pytest.skip("the two groups' memory files differ here: nothing for 3.14 to merge")
    return pids
