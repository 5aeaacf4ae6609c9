"""The slow lane's fuzzer (issue 10): mutated captures and trees, under the
limits a stranger's input must keep ps_mem within.

    pytest -m slow tests/test_hostile_fuzz.py         # ten minutes
    PS_MEM_FUZZ_SECONDS=120 pytest -m slow tests/test_hostile_fuzz.py

Seeds are captures ps_mem.py writes (`--capture`) of fixture trees and, as
root, of the live /proc.  Hypothesis draws, for each run, a seed and a few
mutations of its manifest (fields set, dropped, of any JSON type, or its
text garbled), of its proc files' bytes and member types, of the tar
headers (any field, checksum fixed or not, an extended header inserted),
of the gzip stream (bytes flipped, header flags, cut, junk appended) or a
cut of the tar stream; then runs `python ps_mem.py --procfs FILE` with a
drawn set of options, or unpacks the mutated capture (safely, see
tests/hostile.py) and makes the tree hostile too (FIFOs, symlinks to
/dev/zero or to a stand-in for /etc/shadow, pid directories of other
digits, garbled files) and runs `--procfs DIR`.

Every run is under a 512 MiB address-space limit and PS_MEM_FUZZ_TIMEOUT
seconds (default 30).  A run fails on a traceback, an exit status other
than 0, 1 or 2, death by a signal, or the timeout.  Failures are gathered
for the whole duration, one example kept per kind (exception and the line
of ps_mem.py it came from), and reported together at the end; their inputs
are kept in PS_MEM_FUZZ_KEEP (a directory) if set, else in the test's
tmp_path.
"""

import os
import re
import shutil
import stat
import tarfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests import hostile
from tests.harness import run_ours
from tests.hostile import MANIFEST, Bounded, Member, run_bounded

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("PS_MEM_FUZZ_SECONDS", "600"))
RUN_TIMEOUT = float(os.environ.get("PS_MEM_FUZZ_TIMEOUT", "30"))
BATCH = 10  # examples per Hypothesis run; runs follow each other until SECONDS

SEED_TREES = ["rollup_6_1", "smaps_pss_per_line", "statm_2_6_9", "kernel_2_4_rmap",
              "hostile_names", "clone_vm", "non_utf8", "swap_with_swappss"]
OPTIONS = [(), ("-s",), ("-t",), ("-d",), ("-S",), ("-S", "-t"), ("--json",), ("--json", "-S"),
           ("--group-by", "user"), ("--group-by", "cgroup"), ("-p", "1,688,1203"),
           ("--sort", "name", "--top", "3")]

# ----------------------------------------------------------------------------
# Mutations
# ----------------------------------------------------------------------------

TOKENS = [b"\0", b"\r", b"\n", b"\r\n", b"\t", b" kB", b"Pss:", b"Private_Dirty:",
          b"Shared_Clean:", b"Swap:", b"SwapPss:", b"Private_Hugetlb:", b"Name:\t", b"PPid:\t",
          b"Uid:\t", b"0::", b"1" * 40, b"9" * 400, b"-1", b"nan", b"\xff\xfe", b"\xc3",
          "²".encode(), "５".encode(), "\u202e".encode(), b" (deleted)", b"/", b"../"]
JSON_KEYS = ["format", "pids", "self", "errors", "users", "path_exists", "address_spaces",
             "time", "ps_mem"]
HOSTILE_NUMBERS = [0, -1, 1, 2 ** 31, 2 ** 63, 2 ** 64, 10 ** 30, -10 ** 30, 1e30, -1e30,
                   float("nan"), float("inf"), float("-inf"), 1e-300, 0.5, True, False]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.sampled_from(HOSTILE_NUMBERS)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8) | st.integers(0, 5000).map(str), children, max_size=5),
    max_leaves=12)


def mutate_bytes(draw, data: bytes, max_ops: int = 4) -> bytes:
    """DATA with a few edits: flips, inserted tokens, deletions, a cut, a
    repeat, random bytes."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "token", "delete", "cut", "repeat", "random"]))
        at = draw(st.integers(0, len(data))) if data else 0
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= draw(st.integers(1, 255))
        elif op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "cut":
            del data[at:]
        elif op == "repeat" and data:
            piece = data[at:at + draw(st.integers(1, 80))]
            data[at:at] = bytes(piece) * draw(st.integers(2, 2000))
        elif op == "random":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)


def mutate_manifest(draw, members: List[Member]) -> List[Member]:
    try:
        document = hostile.manifest_of(members)
    except (ValueError, KeyError):  # garbled or gone already: garble on
        document = None
    op = draw(st.sampled_from(["set", "set", "set", "drop", "pids", "entry", "entry", "raw"]))
    if not isinstance(document, dict):
        op = "raw"
    if op == "set":
        key = draw(st.sampled_from(JSON_KEYS * 4 + ["(any)"]))
        if key == "(any)":
            key = draw(st.text(max_size=8))
        document[key] = draw(st.sampled_from(HOSTILE_NUMBERS) | st.just([]) | st.just({})
                             | json_values)
    elif op == "drop" and document:
        document.pop(draw(st.sampled_from(sorted(document))))
    elif op == "pids" and isinstance(document.get("pids"), list):
        pids = document["pids"]
        extra = draw(st.lists(st.integers(-2 ** 70, 2 ** 70) | st.sampled_from(pids or [1]),
                              max_size=20))
        document["pids"] = draw(st.permutations(pids + extra)) if draw(st.booleans()) \
            else extra + pids
    elif op == "entry":
        table = draw(st.sampled_from(["errors", "users", "path_exists", "address_spaces"]))
        if not isinstance(document.get(table), dict):
            document[table] = {}
        pids = document.get("pids")
        pid = draw(st.sampled_from([str(p) for p in pids] if isinstance(pids, list) and pids
                                   else ["1"]))
        key = draw(st.sampled_from([pid, pid + "/smaps_rollup", pid + "/status", "0", "x"]))
        document[table][key] = draw(json_values | st.integers(-5, 200))
    else:
        try:
            text = members[hostile.find(members, MANIFEST)].data
        except KeyError:
            return members
        assert isinstance(text, bytes)
        return hostile.with_manifest(members, mutate_bytes(draw, text))
    return hostile.with_manifest(members, document)


def mutate_content(draw, members: List[Member]) -> List[Member]:
    files = [item.info.name for item in members
             if item.info.name.startswith("proc/") and item.info.isfile()]
    name = draw(st.sampled_from(files))
    op = draw(st.sampled_from(["bytes", "bytes", "bytes", "special", "duplicate", "drop"]))
    if op == "bytes":
        data = members[hostile.find(members, name)].data
        assert isinstance(data, bytes)
        return hostile.with_data(members, name, mutate_bytes(draw, data))
    if op == "special":
        kind = draw(st.sampled_from(hostile.SPECIAL_KINDS))
        return hostile.replacing(members, name, hostile.special_member(name, kind))
    if op == "duplicate":
        return members + [hostile.member(name, draw(st.binary(max_size=100)))]
    return hostile.replacing(members, name, None)


# (offset, length) of each field of a ustar header.
HEADER_FIELDS = {"name": (0, 100), "mode": (100, 8), "uid": (108, 8), "gid": (116, 8),
                 "size": (124, 12), "mtime": (136, 12), "chksum": (148, 8), "type": (156, 1),
                 "linkname": (157, 100), "magic": (257, 8), "prefix": (345, 155)}
FIELD_VALUES = [b"77777777777", b"\x80" + b"\xff" * 11, b"\xff" * 12, b"00000000000",
                b"-1", b"", b"0" * 12, b"1" * 11, b"x", b"../../etc/passwd", b"/etc/shadow",
                b"proc/1/status", MANIFEST.encode(), b"ustar\x0000", b"ustar  \0"]


def _fix_checksum(block: bytearray) -> None:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)


def mutate_headers(draw, members: Sequence[Member], stream: bytes) -> bytes:
    data = bytearray(stream)
    chosen = draw(st.lists(st.sampled_from(hostile.extents(members)), min_size=1, max_size=3,
                           unique=True))
    # From the last: an inserted header moves what follows it.
    for extent in sorted(chosen, key=lambda extent: -extent.header):
        if draw(st.integers(0, 4)) == 0:
            # An extended header of drawn records before this member.
            records = b""
            for _record in range(draw(st.integers(1, 3))):
                key = draw(st.sampled_from([b"size", b"path", b"linkpath", b"uid", b"mtime",
                                            b"comment", b"GNU.sparse.map", b"hdrcharset"]))
                value = draw(st.sampled_from([b"99999999999999", b"-1", b"1e9", b"x" * 300,
                                              b"../x", b"proc/1/status", b"\xff"]))
                body = b" " + key + b"=" + value + b"\n"
                length = len(body) + len(str(len(body) + 3))
                length = draw(st.sampled_from([length, length + 1, 0, 10 ** 12]))
                records += str(length).encode() + body
            header = hostile.member("././@PaxHeader", records, type=tarfile.XHDTYPE)
            raw = bytes(next(hostile.tar_pieces([header], end=False)))  # type: ignore[arg-type]
            pad = bytes(-len(records) % 512)
            data[extent.header:extent.header] = raw + records + pad
            continue
        block = bytearray(data[extent.header:extent.header + 512])
        field = draw(st.sampled_from(sorted(HEADER_FIELDS)))
        start, length = HEADER_FIELDS[field]
        if field == "type":
            value = draw(st.sampled_from([b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"x",
                                          b"g", b"L", b"K", b"S", b"\0", b"Z"]))
        else:
            value = draw(st.sampled_from(FIELD_VALUES) | st.binary(max_size=length))
        block[start:start + length] = value[:length].ljust(length, b"\0")
        if field != "chksum" and draw(st.booleans()):
            _fix_checksum(block)
        data[extent.header:extent.header + 512] = block
    return bytes(data)


def mutate_gzip(draw, compressed: bytes) -> bytes:
    data = bytearray(compressed)
    op = draw(st.sampled_from(["bytes", "flags", "trailer", "append", "concatenate"]))
    if op == "bytes":
        return mutate_bytes(draw, compressed, max_ops=2)
    if op == "flags":
        data[3] = draw(st.integers(0, 255))
    elif op == "trailer":
        data[-8:] = draw(st.binary(min_size=8, max_size=8))
    elif op == "append":
        data += draw(st.binary(max_size=64) | st.just(bytes(4096)))
    else:
        data += hostile.gzip_bytes(draw(st.binary(max_size=2048) | st.just(bytes(1024))))
    return bytes(data)


class Input(NamedTuple):
    capture: Path
    tree: Optional[Path]  # with --procfs DIR
    args: Tuple[str, ...]
    description: str


def draw_capture(draw, seed: List[Member], path: Path) -> List[str]:
    """A mutated SEED written at PATH; what was done to it."""
    steps = draw(st.lists(st.sampled_from(["manifest", "manifest", "manifest", "content",
                                           "header", "header", "gzip", "cut"]),
                          min_size=1, max_size=3))
    members = list(seed)
    for step in steps:
        if step == "manifest":
            members = mutate_manifest(draw, members)
        elif step == "content":
            members = mutate_content(draw, members)
    stream = hostile.tar_bytes(members)
    if "header" in steps:
        stream = mutate_headers(draw, members, stream)
    if "cut" in steps:
        stream = stream[:draw(st.integers(0, len(stream)))]
    compressed = hostile.gzip_bytes(stream)
    if "gzip" in steps:
        compressed = mutate_gzip(draw, compressed)
    path.write_bytes(compressed)
    return steps


# Weighted by repeats; a FIFO costs a hanging run its whole timeout.
TREE_STEPS = ["fifo", "dev zero", "shadow", "lookalike", "garble", "garble", "garble", "huge",
              "none", "none"]


def _special_files(directory: str, names: List[str]) -> List[str]:
    """The names in DIRECTORY that are neither files, links nor directories."""
    kept = []
    for name in names:
        mode = os.lstat(os.path.join(directory, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode) or stat.S_ISDIR(mode)):
            kept.append(name)
    return kept


def draw_tree(draw, root: Path, shadow: Path) -> List[str]:
    """Make the unpacked tree at ROOT hostile; what was done."""
    files = sorted(str(path.relative_to(root)) for path in root.rglob("*")
                   if path.is_file() and not path.is_symlink())
    done = []
    for step in draw(st.lists(st.sampled_from(TREE_STEPS), min_size=1, max_size=2)):
        if not files or step == "none":
            continue
        name = draw(st.sampled_from(files))
        path = root / name
        if not path.is_file():
            continue
        if step == "fifo":
            hostile.fifo(path)
        elif step == "dev zero":
            hostile.symlink(path, "/dev/zero")
        elif step == "shadow":
            hostile.symlink(path, shadow)
        elif step == "lookalike":
            pids = [entry for entry in os.listdir(root) if entry.isascii() and entry.isdigit()]
            if pids:
                pid = draw(st.sampled_from(sorted(pids)))
                lookalike = draw(st.sampled_from(hostile.PID_LOOKALIKES))
                if not (root / lookalike).exists():
                    # A FIFO an earlier step made cannot be copied: left out.
                    shutil.copytree(root / pid, root / lookalike, symlinks=True,
                                    ignore=_special_files)
        elif step == "garble":
            path.write_bytes(mutate_bytes(draw, path.read_bytes()))
        elif step == "huge":
            line = draw(st.sampled_from([b"Pss: 1 kB\n", b"x" * 1000 + b"\n", b"\0" * 4096]))
            with open(path, "ab") as out:
                out.write(line * (8 * hostile.MIB // len(line)))
        done.append("%s %s" % (step, name))
    return done


# ----------------------------------------------------------------------------
# Judging runs
# ----------------------------------------------------------------------------

FRAME = re.compile(r'File "[^"]*ps_mem\.py", line (\d+), in (\w+)')


def failure_kind(run: Bounded) -> Optional[str]:
    """None for a run within the limits; else what went wrong, as a key
    that the same defect gives again (exception, and where)."""
    result = run.result
    if run.timed_out:
        return "timeout (%d s)" % RUN_TIMEOUT
    if b"Traceback" in result.stderr:
        lines = result.err.strip().splitlines()
        frames = FRAME.findall(result.err)
        where = "%s:%s" % (frames[-1][1], frames[-1][0]) if frames else "?"
        exception = lines[-1].split(":")[0] if lines else "?"
        return "%s at %s" % (exception, where)
    if result.status < 0:
        return "killed by signal %d" % -result.status
    if result.status not in (0, 1, 2):
        return "exit status %d" % result.status
    return None


class Findings:
    def __init__(self, keep: Path) -> None:
        self.keep = keep
        self.runs = 0
        self.counts: Dict[str, int] = {}
        self.examples: Dict[str, str] = {}
        self.started = time.monotonic()
        self.max_rss_kib = 0
        self.slowest = 0.0

    def judge(self, run: Bounded, given: Input) -> None:
        self.runs += 1
        self.max_rss_kib = max(self.max_rss_kib, run.max_rss_kib)
        self.slowest = max(self.slowest, run.seconds)
        kind = failure_kind(run)
        if kind is None:
            return
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if kind not in self.examples:
            kept = self.keep / ("finding-%02d.tar.gz" % len(self.examples))
            shutil.copyfile(given.capture, kept)
            last = run.result.err.strip().splitlines()[-1:] or [""]
            self.examples[kind] = "%s (args %s; %s; %s) -> %s" % (
                kept, " ".join(given.args) or "-", given.description,
                "--procfs DIR" if given.tree else "--procfs FILE", last[0][:160])

    def summary(self) -> str:
        lines = ["fuzzer: %d runs in %.0f s, %d failing (%d kinds); peak RSS %d MiB, slowest "
                 "run %.1f s" % (self.runs, time.monotonic() - self.started,
                                 sum(self.counts.values()), len(self.counts),
                                 self.max_rss_kib // 1024, self.slowest)]
        for kind, count in sorted(self.counts.items(), key=lambda item: -item[1]):
            lines.append("  %5d  %s\n         e.g. %s" % (count, kind, self.examples[kind]))
        return "\n".join(lines)


# ----------------------------------------------------------------------------
# The fuzzer
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds(proc_trees, tmp_path_factory) -> List[List[Member]]:
    where = tmp_path_factory.mktemp("fuzz-seeds")
    found = []
    for name in SEED_TREES:
        path = where / (name + ".tar.gz")
        made = run_ours("--capture", str(path), procfs=proc_trees.get(name).root)
        assert made.status == 0, made
        found.append(hostile.read_members(path))
    if os.geteuid() == 0 and os.path.exists("/proc/self/smaps"):
        path = where / "live.tar.gz"
        made = run_ours("--capture", str(path))
        assert made.status == 0, made
        found.append(hostile.read_members(path))
    return found


def test_fuzz_captures_and_trees(seeds, tmp_path, request):
    keep = Path(os.environ.get("PS_MEM_FUZZ_KEEP") or tmp_path / "findings")
    keep.mkdir(parents=True, exist_ok=True)
    shadow = hostile.shadow_standin(tmp_path)
    findings = Findings(keep)
    deadline = time.monotonic() + SECONDS
    work = tmp_path / "work"

    @settings(max_examples=BATCH, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data) -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        draw = data.draw
        seed = seeds[draw(st.integers(0, len(seeds) - 1))]
        capture = work / "fuzzed.tar.gz"
        done = draw_capture(draw, seed, capture)
        args = draw(st.sampled_from(OPTIONS))
        tree = None
        if draw(st.sampled_from(["file", "file", "file", "dir", "dir"])) == "dir":
            tree = hostile.unpack_safely(capture, work / "unpacked")
            if not tree.is_dir():
                return
            done += draw_tree(draw, tree, shadow)
        given_input = Input(capture, tree, args, ", ".join(done))
        run = run_bounded(*args, procfs=tree or capture, timeout=RUN_TIMEOUT)
        findings.judge(run, given_input)

    while time.monotonic() < deadline:
        one()
    shutil.rmtree(work, ignore_errors=True)  # FIFOs and all
    summary = findings.summary()
    request.node.user_properties.append(("fuzzer", summary))
    print("\n" + summary)
    assert not findings.counts, summary
