"""Fixtures for tests that run ps_mem on fixture /proc trees.

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
"""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict

import pytest

from tests import prometheus_harness, trees
from tests.harness import REPO
from tests.procfs_builder import ProcTree


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
