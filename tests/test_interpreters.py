"""ps_mem.py under every CPython from 3.6 up that this machine has.

ps_mem.py must run on CPython 3.6 and later: vermin checks its syntax, this
runs it.  The interpreters are looked for where machines keep them: pyenv's
versions ($PYENV_ROOT, else ~/.pyenv), python3.N on the PATH (but pyenv's
shims, which run those versions), and /usr/bin and /usr/local/bin; one run
each, whatever the number of names it has.  The
suite's own interpreter runs every other test module, so it is left out
here.  Where none is found the test is skipped, saying where it looked.

Each runs ps_mem.py as `python ps_mem.py` runs it (from its code, compiled
once by that interpreter: harness.ours_command()) on fixture trees, with
options that take each stage's code (smaps_rollup, smaps with and without
Pss, statm, 2.4's status, shared address spaces, hostile and undecodable
names, a missing kernel release, a watch), and must print what ps_mem 3.14
prints on the same tree (its golden text, or 3.14 run by the harness), byte
for byte, with the same exit status.  3.14 has none of the new options:
with those (--json, --group-by, --sort, --top, --capture) the expected
output is ps_mem.py's under the suite's interpreter, which the other test
modules check.
"""

import glob
import os
import shutil
import subprocess
import sys
from typing import Dict, List, NamedTuple, Sequence, Tuple

import pytest

from tests.harness import (Result, child_env, golden, need_reference, ours_command,
                           printable_names, run_ours, run_reference, without_time)

OLDEST = (3, 6)


class Python(NamedTuple):
    path: str
    version: Tuple[int, int, int]

    @property
    def name(self) -> str:
        return "%s (%s)" % (".".join(map(str, self.version)), self.path)


def _candidates() -> List[str]:
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python3")))
    for minor in range(OLDEST[1], 30):
        found.append(shutil.which("python3.%d" % minor) or "")
        found += ["/usr/bin/python3.%d" % minor, "/usr/local/bin/python3.%d" % minor]
    # A pyenv shim (on the PATH before the others) runs one of pyenv's
    # versions, each listed above, or fails where none is selected; asking
    # it costs a dozen shell scripts, in each xdist worker's collection.
    shims = os.path.join(pyenv, "shims") + os.sep
    return [path for path in found
            if path and not path.startswith(shims) and os.access(path, os.X_OK)]


_ABOUT = ("import os, sys; print(sys.implementation.name, *sys.version_info[:3],"
          " os.path.realpath(sys.executable))")


def interpreters() -> List[Python]:
    """Every CPython from 3.6 up found here, but the suite's own."""
    own = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    seen = {own, os.path.realpath(sys.executable)}
    found = []
    for path in _candidates():
        try:
            done = subprocess.run([path, "-I", "-S", "-c", _ABOUT], capture_output=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        words = done.stdout.decode("utf-8", "replace").split()
        if done.returncode != 0 or len(words) != 5 or words[0] != "cpython":
            continue
        version = tuple(int(word) for word in words[1:4])
        if version[:2] < OLDEST or words[4] in seen:
            continue
        seen.add(words[4])
        found.append(Python(path, version))
    return sorted(found, key=lambda python: python.version)


PYTHONS = interpreters()
WHERE = "pyenv's versions, python3.N on the PATH, /usr/bin, /usr/local/bin"

# (tree, options, where the expected output comes from): "golden" (tests/
# golden, with its exit status), "reference" (3.14 on the tree), "ours"
# (ps_mem.py under the suite's Python: options 3.14 does not have).
CASES = [
    ("rollup_6_1", [], "golden", 0),
    ("rollup_6_1", ["-S"], "golden", 0),
    ("rollup_6_1", ["-t"], "golden", 0),
    ("rollup_6_1", ["-s", "-d"], "golden", 0),
    ("smaps_pss_per_line", ["-d"], "golden", 0),
    ("smaps_no_pss", ["-S", "-t"], "golden", 1),
    ("non_utf8", ["-s"], "golden", 0),
    ("statm_2_6_9", [], "reference", None),
    ("kernel_2_4", ["-d", "-S"], "reference", None),
    ("clone_vm", ["-t"], "reference", None),
    ("hostile_names", ["-d"], "reference", None),
    ("swap_without_swappss", ["-S"], "reference", None),
    ("no_osrelease", [], "reference", None),
    ("smaps_no_pss", ["-w", "1", "-p", "99999"], "reference", None),
    ("rollup_6_1", ["--json", "-S"], "ours", None),
    ("rollup_6_1", ["--group-by", "user", "-d"], "ours", None),
    ("renamed_children", ["--group-by", "cgroup"], "ours", None),
    ("rollup_6_1", ["--sort", "name", "--reverse", "--top", "4", "-S"], "ours", None),
    ("rollup_6_1", ["--sort", "size"], "ours", None),  # a usage error, by argparse
]


def _case_id(case) -> str:
    tree, options, _, _ = case
    return ":".join([tree] + options)


class Expected:
    """Each case's expected output, made once for all the interpreters."""

    def __init__(self, proc_trees) -> None:
        self.proc_trees = proc_trees
        self._made: Dict[Tuple[str, Tuple[str, ...]], Result] = {}

    def __call__(self, tree: str, options: Sequence[str], source: str, status) -> Result:
        key = (tree, tuple(options))
        if key not in self._made:
            root = self.proc_trees.get(tree).root
            if source == "golden":
                result = golden(tree, options, status)
            elif source == "reference":
                need_reference()
                # Names print as "?" where 3.14 prints control characters raw.
                result = printable_names(run_reference(*options, procfs=root))
            else:
                result = run_ours(*options, procfs=root)
            self._made[key] = result
        return self._made[key]


@pytest.fixture(scope="module")
def expected(proc_trees) -> Expected:
    return Expected(proc_trees)


def run_under(python: Python, *args: str, procfs: os.PathLike) -> Result:
    done = subprocess.run(ours_command(procfs, args, python.path),
                          capture_output=True, timeout=60, env=child_env())
    return Result(done.stdout, done.stderr, done.returncode)


needs_pythons = pytest.mark.skipif(
    not PYTHONS, reason="no CPython %d.%d or later but the suite's own found in %s"
    % (OLDEST + (WHERE,)))
by_python = pytest.mark.parametrize("python", PYTHONS, ids=[python.name for python in PYTHONS])


@needs_pythons
@by_python
@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_same_output_under_every_python(proc_trees, expected, python, case):
    tree, options, source, status = case
    result = run_under(python, *options, procfs=proc_trees.get(tree).root)
    assert b"Traceback" not in result.stderr, result.err
    want = expected(tree, options, source, status)
    if "--json" in options:
        result, want = without_time(result), without_time(want)
    assert (result.out, result.err, result.status) == (want.out, want.err, want.status)
    assert result == want  # byte for byte


@needs_pythons
@by_python
def test_capture_written_and_read_under_every_python(proc_trees, tmp_path, python):
    """--capture (tar, gzip, JSON) made under each interpreter: the
    capturing run prints the tree's report, and the capture read back
    under that interpreter answers as the tree does."""
    root = proc_trees.get("rollup_6_1").root
    capture = tmp_path / "capture.tar.gz"
    capturing = run_under(python, "--capture", str(capture), "-S", procfs=root)
    assert capturing == run_ours("-S", procfs=root)
    for options in ([], ["-d"], ["--json", "--group-by", "user"]):
        replay = run_under(python, *options, procfs=capture)
        assert without_time(replay) == without_time(run_ours(*options, procfs=root)), options


def test_interpreters_found_are_what_they_say():
    """Each interpreter found reports the version it is listed under, and
    none is listed twice: the matrix above is what it claims to be."""
    if not PYTHONS:
        pytest.skip("no CPython %d.%d or later but the suite's own found in %s"
                    % (OLDEST + (WHERE,)))
    assert len({os.path.realpath(python.path) for python in PYTHONS}) == len(PYTHONS)
    for python in PYTHONS:
        done = subprocess.run([python.path, "-I", "-S", "-c",
                               "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                              capture_output=True, timeout=30)
        assert done.stdout.decode().strip() == ".".join(map(str, python.version)), python
        assert python.version[:2] >= OLDEST
