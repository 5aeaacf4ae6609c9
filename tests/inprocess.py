"""Helpers for the tests of the options added since 3.14 (test_json.py,
test_sort_top.py, test_group_by.py, test_capture.py).

run_main() calls ps_mem.main() in this process with stdout and stderr
captured: the same code path as `python ps_mem.py ARGS` but without a
Python start-up per run, so that option matrices over many trees stay fast.
Where the process itself matters (exit by signal, flushing to a pipe, the
live /proc as a child process sees it) the tests use harness.run_ours().

parse_table() reads ps_mem's table back into rows and totals, strictly: it
fails unless the whole output has 3.14's layout.
"""

import contextlib
import io
import re
import sys
from typing import List, NamedTuple, Optional


from tests.harness import REPO, Result, live  # noqa: F401 (live: for the test modules)

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
import ps_mem  # noqa: E402


def run_main(*args: str, procfs: Optional[object] = None) -> Result:
    """ps_mem.main([--procfs PROCFS] ARGS) in this process."""
    argv = (["--procfs", str(procfs)] if procfs is not None else []) + list(args)
    stdout_bytes = io.BytesIO()
    stdout = io.TextIOWrapper(stdout_bytes, encoding="utf-8", write_through=True)
    stderr = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = ps_mem.main(argv)
    stdout.flush()
    return Result(stdout_bytes.getvalue(), stderr.getvalue().encode("utf-8"), status)


class Row(NamedTuple):
    private: str  # as printed, without padding
    shared: str
    ram: str
    swap: Optional[str]  # with -S
    name: str  # with the " (N)" count, as printed


class Table(NamedTuple):
    header: str
    rows: List[Row]
    total_ram: Optional[str]  # the footer's sizes, None without a footer
    total_swap: Optional[str]
    rest: str  # after the footer ("Process does not exist anymore.\n"...)


_SIZE = r" *\d+\.\d [KMGT]iB"
_ROW = re.compile(r"(%s) \+ (%s) = (%s)(?:   (%s))?\t([^\t\n]*)\n" % ((_SIZE,) * 4))
_FOOTER = re.compile(r"-{33}\n {24}(%s)\n={33}\n|-{45}\n {24}(%s)   (%s)\n={45}\n"
                     % ((_SIZE,) * 3))


def parse_table(stdout: str) -> Table:
    """The table's parts; AssertionError unless it is all rows and footer."""
    header, blank, body = stdout.partition("\n\n")
    assert blank and header.startswith(" Private  +   Shared  =  RAM used"), stdout[:200]
    rows = []
    while True:
        match = _ROW.match(body)
        if not match:
            break
        private, shared, ram, swap, name = match.groups()
        rows.append(Row(private.strip(), shared.strip(), ram.strip(),
                        swap.strip() if swap else None, name))
        body = body[match.end():]
    total_ram = total_swap = None
    match = _FOOTER.match(body)
    if match:
        if match.group(1):
            total_ram = match.group(1).strip()
        else:
            total_ram, total_swap = match.group(2).strip(), match.group(3).strip()
        body = body[match.end():]
    return Table(header + "\n\n", rows, total_ram, total_swap, body)


def human_bytes(value: int) -> str:
    """A byte count as the table prints it."""
    return ps_mem.human(value / 1024)


def display_name(program: dict) -> str:
    """A JSON program's name as the table shows it, with its count."""
    if program["count"] > 1:
        return "%s (%d)" % (program["name"], program["count"])
    return program["name"]

