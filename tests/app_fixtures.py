"""Real programs' /proc, as recorded for --group-by app: tests/data/apps/*.txt.

Each file holds what /proc showed of one real program's processes (see
its header: what ran, from which Debian packages, on which kernel) and of
the shell that launched it, in blocks separated by a blank line:

    # what was running, and where it was recorded
    role main            (the program's first process; launcher: its parent)
    pid 5352
    ppid 5346
    exe b'/usr/bin/python3.11'
    comm b'gunicorn: maste'                 (/proc/PID/comm less its newline)
    name b'gunicorn: maste'                 (status's Name line)
    cmdline b'gunicorn: master [app:app]\\x00\\x00'

Values are Python bytes literals, byte for byte as the kernel gave them.
Roles name a process by its place in the tree (main, child1, child1.2),
so that a test can say what it expects of each.

add_fixture() makes a fixture part of a fixture /proc tree (its memory is
made up: the fixtures record names, not memory).  The recorder
(`python -m tests.app_programs [CASE...]`, as root) starts the programs
of tests/app_programs.py and writes the files with read_raw() and tree().
"""

import ast
import os
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

from tests.procfs_builder import ProcTree, program_maps

FIXTURES = Path(__file__).resolve().parent / "data" / "apps"
FIELDS = ("role", "pid", "ppid", "exe", "comm", "name", "cmdline")
HEAP_KIB = 2000


class Raw(NamedTuple):
    """One process's files as read, and its role in a fixture."""

    pid: int
    ppid: int
    exe: bytes  # the exe link's target
    comm: bytes  # less its newline
    name: bytes  # status's Name line, less "Name:\t"
    cmdline: bytes
    role: str = ""


def load_fixture(name: str) -> List[Raw]:
    path = FIXTURES / (name + ".txt")
    blocks: List[Raw] = []
    fields: Dict[str, object] = {}
    for line in path.read_text().split("\n") + [""]:
        if line.startswith("#"):
            continue
        if not line:
            if fields:
                if set(fields) != set(FIELDS):
                    raise ValueError("%s: a block with fields %s" % (path, sorted(fields)))
                blocks.append(Raw(**fields))  # type: ignore[arg-type]
                fields = {}
            continue
        field, _, value = line.partition(" ")
        if field == "role":
            fields[field] = value
        elif field in ("pid", "ppid"):
            fields[field] = int(value)
        elif field in FIELDS:
            fields[field] = ast.literal_eval(value)
            if not isinstance(fields[field], bytes):
                raise ValueError("%s: %s is not bytes: %r" % (path, field, value))
        else:
            raise ValueError("%s: unknown field %r" % (path, field))
    return blocks


def fixture_names() -> List[str]:
    return sorted(path.stem for path in FIXTURES.glob("*.txt"))


def write_fixture(path: Path, comments: List[str], blocks: List[Raw]) -> None:
    lines = ["# " + comment for comment in comments]
    for block in blocks:
        lines.append("")
        for field in FIELDS:
            value = getattr(block, field)
            lines.append("%s %s" % (field, value if isinstance(value, (str, int)) else repr(value)))
    path.write_text("\n".join(lines) + "\n")


def add_fixture(tree: ProcTree, blocks: List[Raw], heap_kib: int = HEAP_KIB) -> Dict[int, str]:
    """Add every process of BLOCKS to TREE, its exe link, status Name (and
    comm), ppid and command line as recorded (a rewritten title's NUL
    padding included); return pid -> role.  Each process's heap differs,
    so that no two look like one address space (3.14's CLONE_VM rule)."""
    for block in blocks:
        exe = block.exe.decode("utf-8", "surrogateescape")
        tree.add(block.pid, block.name, block.exe, ppid=block.ppid,
                 replace={"cmdline": block.cmdline},
                 maps=program_maps(exe, heap_kib=heap_kib + block.pid))
    return {block.pid: block.role for block in blocks}


# ----------------------------------------------------------------------------
# The live /proc, for the recorder and the live tests
# ----------------------------------------------------------------------------

def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _stat_ppid(stat: bytes) -> int:
    # The name in parentheses may hold any byte, ")" and spaces included.
    return int(stat[stat.rindex(b")") + 2:].split(b" ", 2)[1])


def read_raw(pid: int) -> Optional[Raw]:
    """PID's files, raw; None if it is gone or is a kernel thread."""
    base = "/proc/%d/" % pid
    try:
        exe = os.readlink(os.fsencode(base + "exe"))
        name = _read(base + "status").split(b"\n", 1)[0][len(b"Name:\t"):]
        cmdline = _read(base + "cmdline")
        comm = _read(base + "comm")
        ppid = _stat_ppid(_read(base + "stat"))
    except (OSError, ValueError, IndexError):
        return None
    return Raw(pid, ppid, exe, comm[:-1] if comm.endswith(b"\n") else comm, name, cmdline)


def children(pid: int) -> List[int]:
    """PID's children, from every process's stat (the children files need
    CONFIG_PROC_CHILDREN)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _stat_ppid(_read("/proc/%s/stat" % entry)) == pid:
                    found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return sorted(found)


def tree(pid: int) -> List[Tuple[str, int]]:
    """(role, pid) of PID ("main") and its descendants ("child1",
    "child1.2", ...), parents before their children."""
    found = [("main", pid)]
    at = 0
    while at < len(found):
        role, parent = found[at]
        at += 1
        prefix = "child" if role == "main" else role + "."
        for number, child in enumerate(children(parent), 1):
            found.append(("%s%d" % (prefix, number), child))
    return found
