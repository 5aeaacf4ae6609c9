"""ps_mem under process churn: hundreds of runs while processes fork, exec,
rename themselves and exit around it (tests/churn.py's forker).

Every run must end with the documented exit status (0 here; -t's 1 only
where the kernel lacks Pss or SwapPss), nothing on stderr but ps_mem.py's
permission warning, never a traceback, and stdout in the layout of its
options.  3.14 fails about one whole-system run in forty under such churn
(ProcessLookupError on a smaps_rollup or cmdline of a process that just
exited), and far more often when -p names only churning processes.

The default suite runs ps_mem's main() in this process, which costs no
interpreter start-up, so that a few seconds hold about a hundred runs (more
on an idle machine), and a handful of real commands, watches ended with a
real SIGINT among them.
`-m slow` runs the long version (about 10 minutes): hundreds of commands of
ours and of 3.14, with each one's failure rate reported (also `python
tests/churn.py --reference`).
"""

import contextlib
import io
import os
import signal
import sys
import time
from typing import List, Sequence

import pytest

from tests.churn import (
    OPTIONS_3_14, OPTIONS_NEW, REFERENCE, WATCH, Churn, Tally, frozen_copy, judge, run_command,
    stress,
)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ps_mem  # noqa: E402

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.path.exists("/proc/self/smaps"),
                       reason="needs a Linux /proc with smaps"),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read every process's memory"),
]

# Seconds of in-process runs in the default suite; at least MIN_RUNS runs.
BUDGET = float(os.environ.get("PS_MEM_CHURN_SECONDS", "5"))
MIN_RUNS = 60
# Commands of each program in the slow test.
SLOW_RUNS = int(os.environ.get("PS_MEM_CHURN_RUNS", "300"))


def report(request, text: str) -> None:
    """Show TEXT in the test output, captured or not."""
    request.node.user_properties.append(("churn", text))
    capture = request.config.pluginmanager.getplugin("capturemanager")
    context = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with context:
        sys.stdout.write("\n" + text + "\n")
        sys.stdout.flush()


@pytest.fixture(scope="module")
def churn():
    with Churn(target=100, min_ms=10, max_ms=400) as running:
        yield running


class _Interrupt:
    """A Ctrl-C for an in-process watch: KeyboardInterrupt from a timer
    signal after SECONDS, raised only while armed."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.armed = False

    def _fire(self, *_):
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt

    def __enter__(self):
        self.previous = signal.signal(signal.SIGALRM, self._fire)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info):
        self.armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)


def run_in_process(args: Sequence[str], interrupt_after: float = 0):
    """ps_mem.main(ARGS) here, its output caught: (stdout, stderr, status),
    or the exception it let out as a traceback text in stderr."""
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    stderr = io.StringIO()
    interrupt = _Interrupt(interrupt_after) if interrupt_after else contextlib.nullcontext()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), interrupt:
            status = ps_mem.main(list(args))
    except BaseException as error:  # noqa: B036 - anything out of main() is a failure
        import traceback

        stderr.write("Traceback (from main()):\n" + "".join(
            traceback.format_exception(type(error), error, error.__traceback__)))
        status = -1
    stdout.flush()
    return out.getvalue(), stderr.getvalue().encode("utf-8"), status


def test_hundreds_of_runs_in_process(churn, request):
    """Every option combination over the churning processes (-p) in each
    cycle, and over the whole system in turn while the budget lasts (a
    whole-system run costs ten of the others on a crowded machine)."""
    combinations = OPTIONS_3_14 + OPTIONS_NEW
    tally = Tally("ps_mem.py main(), in process")
    whole_system = 0
    started = time.monotonic()
    while time.monotonic() - started < BUDGET or tally.runs < MIN_RUNS:
        pids = ["-p", ",".join(map(str, churn.pids()))]
        for options in combinations:
            args = options + pids
            tally.add(args, judge(args, *run_in_process(args)))
        if time.monotonic() - started < BUDGET or not whole_system:
            options = combinations[whole_system % len(combinations)]
            tally.add(options, judge(options, *run_in_process(options)))
            whole_system += 1
    # A watch of the whole system, ended by "Ctrl-C" mid-sample or asleep.
    stdout, stderr, status = run_in_process(WATCH, interrupt_after=1.2)
    tally.add(WATCH, judge(WATCH, stdout, stderr, status, interrupted=True))
    report(request, "%s; in %.1f s; churn: %d children now"
           % (tally.summary(), time.monotonic() - started, len(churn.children())))
    assert not tally.failures, "\n".join(tally.failures[:20])


def test_commands_with_real_signals(churn, request, tmp_path):
    """Real commands, as a user runs them: one over the churning pids, one
    over the whole system, and two watches ended by a real SIGINT after
    1.2 s (exit 0, as 3.14's watch)."""
    pids = ["-p", ",".join(map(str, churn.pids()))]
    ours = frozen_copy(str(tmp_path))
    runs = [run_command(ours, args) for args in (
        ["-d", "-S"] + pids, ["-s"], WATCH + pids, WATCH)]
    tally = Tally("ps_mem.py commands")
    for run in runs:
        tally.add(run.args, judge(run.args, run.stdout, run.stderr, run.status,
                                  interrupted=run.interrupted))
    report(request, tally.summary())
    assert not tally.failures, "\n".join(tally.failures)
    # The whole-system watch was interrupted, not ended by itself.
    assert runs[-1].interrupted and runs[-1].status == 0


@pytest.mark.slow
def test_long_churn_ours_and_3_14(request, tmp_path):
    """SLOW_RUNS commands of ours over every combination (whole system,
    churning pids, watches), then as many of 3.14 over its own options:
    ours never fails; 3.14's failure rate is reported."""
    with Churn(target=150, min_ms=10, max_ms=400) as running:
        ours = stress(running, SLOW_RUNS, frozen_copy(str(tmp_path)), "ps_mem.py", ours=True)
        reference = None
        if REFERENCE.exists():
            reference = stress(running, SLOW_RUNS, REFERENCE, "ps_mem 3.14", ours=False)
    lines: List[str] = [ours.summary()]
    if reference is not None:
        lines.append(reference.summary())
    lines.append("churn: " + running.rate())
    report(request, "\n".join(lines))
    assert not ours.failures, "\n".join(ours.failures[:20])
    if reference is not None and reference.runs >= 200:
        # The churn does reach the races that this suite is about.
        assert reference.failures, "3.14 never failed: the churn is too gentle to test anything"

