"""Fixture trees for --diff and --delta: the same machine before and after.

    before, after = pair(tmp_path)     # BEFORE and AFTER trees of one boot
    a = captured(before, tmp_path / "a.tar.gz")   # ps_mem --procfs TREE --capture

Every process's memory is program_maps(exe, heap_kib=HEAP), whose sizes
are worked out by hand here once (see procfs_builder.program_maps): the
executable's data page 8 KiB, each of the 5 libraries 4 + 8 KiB, the stack
40 KiB, so Private = HEAP + 108 KiB; the shared pages' Pss comes to
123.088 KiB, which the kernel's rollup adds to Private and truncates once,
and ps_mem adds 0.5 KiB back: Pss = HEAP + 231.5 KiB, Shared 123.5 KiB.
"""

import io
import json
import tarfile
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

from tests.harness import run_main
from tests.procfs_builder import ProcTree, program_maps

BOOT_ID = "0d3c7a52-91e4-4f7b-a0a5-2c8e6b1f9d47"
HOST = "build-1"
SHARED_KIB = 123.5
PRIVATE_EXTRA_KIB = 108


def ram_kib(heap_kib: int) -> float:
    """RAM used by one process of program_maps(heap_kib=HEAP_KIB)."""
    return heap_kib + PRIVATE_EXTRA_KIB + SHARED_KIB


def machine(tree: ProcTree, boot_id: Optional[str] = BOOT_ID,
            host: Optional[str] = HOST) -> ProcTree:
    """Give TREE the files that say which machine and boot it shows, as
    /proc/sys/kernel has them (a newline after each)."""
    kernel = tree.root / "sys" / "kernel"
    if boot_id is not None:
        (kernel / "random").mkdir(parents=True, exist_ok=True)
        (kernel / "random" / "boot_id").write_text(boot_id + "\n")
    if host is not None:
        (kernel / "hostname").write_text(host + "\n")
    return tree


def program(tree: ProcTree, pid: int, name: str, heap_kib: int, **options) -> int:
    exe = "/usr/bin/" + name
    return tree.add(pid, name, exe, maps=program_maps(exe, heap_kib=heap_kib), **options)


def pair(tmp_path: Path, **identity) -> Tuple[ProcTree, ProcTree]:
    """BEFORE and AFTER of one machine: leaky's heap grows by 2048 KiB,
    idle's two processes stay as they are, goner exits and newbie starts.

        BEFORE  leaky 100 (1000 KiB)  idle 200, 201 (500, 700)  goner 400 (900)
        AFTER   leaky 100 (3048 KiB)  idle 200, 201 (500, 700)  newbie 300 (800)
    """
    before = machine(ProcTree(tmp_path / "before"), **identity)
    after = machine(ProcTree(tmp_path / "after"), **identity)
    for tree, leaky_heap in ((before, 1000), (after, 3048)):
        program(tree, 100, "leaky", leaky_heap)
        program(tree, 200, "idle", 500)
        program(tree, 201, "idle", 700)
    program(before, 400, "goner", 900)
    program(after, 300, "newbie", 800)
    return before, after


def captured(tree: ProcTree, path: Path, *options: str) -> Path:
    """`ps_mem --procfs TREE --capture PATH`, as a user makes a capture."""
    done = run_main("--capture", str(path), *options, procfs=tree.root)
    assert done.status == 0 and done.stdout, done
    return path


def manifest(capture: Path) -> dict:
    with tarfile.open(str(capture)) as archive:
        return json.loads(archive.extractfile("ps_mem-capture.json").read())


def rewritten(source: Path, target: Path, changes: Optional[Dict[str, object]] = None,
              drop: Iterable[str] = (), replace: Optional[Dict[str, bytes]] = None,
              moved: Optional[Tuple[int, int]] = None) -> Path:
    """A copy of capture SOURCE, still whole: its manifest's fields
    CHANGES changed, the members DROP left out, those of REPLACE given
    new contents (or added), the process MOVED (old pid, new pid) under
    another pid, and the end record counting what is left."""
    replace = dict(replace or {})
    dropped = set(drop)
    changes = dict(changes or {})
    with tarfile.open(str(source)) as original:
        entries = [(member, original.extractfile(member).read() if member.isfile() else None)
                   for member in original]
    if moved is not None:
        old, new = moved
        for member, _data in entries:
            if member.name.startswith("proc/%d/" % old):
                member.name = "proc/%d/" % new + member.name[len("proc/%d/" % old):]
        pids = manifest(source)["pids"]
        changes["pids"] = [new if pid == old else pid for pid in pids]
    buffer = io.BytesIO()
    count = size = 0
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as copy:
        def add(member: tarfile.TarInfo, data: Optional[bytes]) -> None:
            if data is not None:
                member.size = len(data)
            copy.addfile(member, io.BytesIO(data) if data is not None else None)

        for member, data in entries:
            if member.name == "ps_mem-capture.json" and changes:
                document = json.loads(data)
                document.update(changes)
                data = json.dumps(document).encode()
            elif member.name == "ps_mem-capture.end":
                for name, extra in replace.items():  # members added, before the end
                    add(tarfile.TarInfo(name), extra)
                    count, size = count + 1, size + len(extra)
                data = json.dumps({"files": count, "bytes": size}).encode()
            elif member.name in dropped:
                continue
            elif member.name in replace:
                data = replace.pop(member.name)
            if member.name.startswith("proc/"):
                count += 1
                size += len(data) if data is not None else 0
            add(member, data)
    target.write_bytes(buffer.getvalue())
    return target
