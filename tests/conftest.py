"""Fixtures for tests that run ps_mem on fixture /proc trees.

    proc_trees   (session) the trees of tests/trees.py, each built once:
                 proc_trees.get("rollup_6_1") -> ProcTree
                 proc_trees.pruned("vanished_memory") -> the same tree without
                 its `vanished` pids (what 3.14 should be run on instead)
    tree         a factory for a fresh ProcTree in the test's tmp_path:
                 t = tree("2.6.18", omit=("smaps",)); t.add(...)
"""

import shutil
from pathlib import Path
from typing import Dict

import pytest

from tests import trees
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
