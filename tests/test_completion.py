"""Shell completion (contrib/completion/), in the real shells.

bash and zsh run interactively on a pseudo-terminal and are sent the keys a
person types, TAB included.  A recorder beside each script notes the
candidates the shell computed: for bash, COMPREPLY of the function that the
script's `complete` line registers; for zsh, each match added with compadd,
as the command line would hold it.  fish lists its candidates itself, for
`complete -C LINE`.  Candidates are compared whole, as sorted lists.

Pids come from a fixture tree named by --procfs, so that the lists are
exact; one test per shell checks the live /proc with a process it started.
"""

import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

import pytest

from tests.harness import REPO
from tests.procfs_builder import SELF_PID, ProcTree

sys.path.insert(0, str(REPO))
import ps_mem  # noqa: E402

COMPLETION = REPO / "contrib" / "completion"
BASH_SCRIPT = COMPLETION / "bash" / "ps_mem"
ZSH_DIR = COMPLETION / "zsh"
FISH_DIR = COMPLETION / "fish"

# The agreed option names: 3.14's, those added since, and those to come.
SHORT = ["-h", "-s", "-t", "-d", "-S", "-p", "-w"]
LONG = ["--help", "--version", "--split-args", "--show-cmdline", "--total",
        "--discriminate-by-pid", "--swap", "--procfs", "--json", "--sort", "--reverse",
        "--top", "--group-by", "--capture", "--system", "--diff", "--delta", "--units",
        "--no-header", "--prometheus", "--output"]
SORT_KEYS = ["ram", "private", "shared", "swap", "count", "name"]
GROUPINGS = ["program", "pid", "cmdline", "user", "cgroup", "app", "mapping"]
UNITS = ["B", "KiB", "MiB", "GiB"]

# The fixture tree's processes that -p offers (pid: status Name), beside
# ps_mem's own (SELF_PID, named ps_mem); kernel thread 2 and zombie 900
# have an empty command line and are not offered.
HOSTILE_NAME = b"\x1b[31mred\x07"
# An 8-bit CSI as a raw byte (not UTF-8) and as the C1 character U+009B, and
# a right-to-left override (U+202E): none may reach the terminal either.
HIGH_NAME = b"c1\x9b\xc2\x9bx\xe2\x80\xaey"
OFFERED = {1: "systemd", 812: "nginx", 813: "nginx", 1204: "?[31mred?", 1205: "c1??x?y",
           SELF_PID: "ps_mem"}

SHELL_TIMEOUT = 30  # seconds a shell may take to answer before the test fails


def every_pid(prefix: str = "", listed: Sequence[int] = ()) -> List[str]:
    return sorted(prefix + "".join("%d," % pid for pid in listed) + str(pid)
                  for pid in OFFERED if pid not in listed)


def test_every_option_of_the_parser_is_completed():
    """A new option must join the completion scripts (the tests below
    check that each script offers exactly SHORT + LONG)."""
    known = {option for action in ps_mem.build_parser()._actions
             for option in action.option_strings}
    assert known <= set(SHORT + LONG)


# ----------------------------------------------------------------------------
# The situation: a proc tree, a capture, a directory of files
# ----------------------------------------------------------------------------


class Place(NamedTuple):
    tree: Path  # a fixture proc root with the processes of OFFERED
    capture: Path  # a file, as --procfs names a capture
    files: Path  # the shell's working directory
    home: Path


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> Place:
    base = tmp_path_factory.mktemp("completion")
    tree = ProcTree(base / "proc")
    tree.add(1, "systemd", "/usr/lib/systemd/systemd", cmdline=["/sbin/init"], ppid=0)
    tree.add(2, "kthreadd", None, ppid=0)
    tree.add(812, "nginx", "/usr/sbin/nginx", cmdline=["nginx: master process"])
    tree.add(813, "nginx", "/usr/sbin/nginx", cmdline=["nginx: worker process"], ppid=812)
    tree.add(900, "defunct", "/usr/bin/defunct", replace={"cmdline": b""})
    tree.add(1204, HOSTILE_NAME, "/tmp/red")
    tree.add(1205, HIGH_NAME, "/tmp/high")
    files = base / "files"
    (files / "dir with space").mkdir(parents=True)
    for name in ("before.tar.gz", "after.tar.gz", "dir with space/x.prom",
                 "dir with space/other"):
        (files / name).write_text("")
    capture = files / "before.tar.gz"
    home = base / "home"
    (home / "bin").mkdir(parents=True)
    # fish completes only commands it can find.
    stub = home / "bin" / "ps_mem"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    return Place(tree.root, capture, files, home)


def shell_env(place: Place, **extra: str) -> Dict[str, str]:
    env = {"HOME": str(place.home), "PATH": "%s:%s" % (place.home / "bin", os.environ["PATH"]),
           "TERM": "xterm", "LC_ALL": "C.UTF-8", "XDG_CONFIG_HOME": str(place.home / ".config"),
           "XDG_DATA_HOME": str(place.home / ".local" / "share")}
    env.update(extra)
    return env


# The cases every shell is asked: the line typed before TAB, and the
# candidates for the word being completed, as the shell puts them on the
# line (bash: as COMPREPLY holds them, after "=" where readline splits the
# word there).  {tree} and {capture} are filled in from `place`.
class Case(NamedTuple):
    line: str
    expected: List[str]
    bash: Optional[List[str]] = None
    zsh: Optional[List[str]] = None
    fish: Optional[List[str]] = None


CASES = [
    Case("ps_mem -", sorted(SHORT + LONG)),
    Case("ps_mem --", sorted(LONG)),
    Case("ps_mem --gr", ["--group-by"]),
    Case("ps_mem --s", ["--show-cmdline", "--sort", "--split-args", "--swap", "--system"]),
    Case("ps_mem --no", ["--no-header"]),
    Case("ps_mem --sort ", sorted(SORT_KEYS)),
    Case("ps_mem --sort s", ["shared", "swap"]),
    Case("ps_mem --sort=p", ["--sort=private"], bash=["private"]),
    Case("ps_mem --group-by ", sorted(GROUPINGS)),
    Case("ps_mem --group-by=c", ["--group-by=cgroup", "--group-by=cmdline"],
         bash=["cgroup", "cmdline"]),
    Case("ps_mem -d --units ", sorted(UNITS)),
    Case("ps_mem --units M", ["MiB"]),
    Case("ps_mem -w ", []),
    Case("ps_mem --top ", []),
    Case("ps_mem --capture b", ["before.tar.gz"]),
    Case("ps_mem --diff ", ["after.tar.gz", "before.tar.gz", "dir with space/"],
         bash=["after.tar.gz", "before.tar.gz", "dir with space"],
         zsh=["after.tar.gz", "before.tar.gz", "dir\\ with\\ space"]),
    Case("ps_mem --output dir\\ with\\ space/", ["dir with space/other", "dir with space/x.prom"],
         zsh=["dir\\ with\\ space/other", "dir\\ with\\ space/x.prom"]),
    Case("ps_mem --output=dir\\ with\\ space/x", ["--output=dir with space/x.prom"],
         bash=["dir with space/x.prom"], zsh=["--output=dir\\ with\\ space/x.prom"]),
    Case("ps_mem --procfs di", ["dir with space/"], bash=["dir with space"],
         zsh=["dir\\ with\\ space"]),
    Case("ps_mem --procfs {tree} -p ", every_pid()),
    Case("ps_mem --procfs {tree} -p 8", ["812", "813"]),
    Case("ps_mem --procfs {tree} -p 812,", every_pid(listed=[812])),
    Case("ps_mem --procfs {tree} -p 1,812,8", ["1,812,813"]),
    Case("ps_mem --procfs={tree} -p 1", ["1", "1204", "1205"]),
    Case("ps_mem --procfs {tree} -p81", ["-p812", "-p813"]),
    Case("ps_mem --procfs {tree} -sp 812,", every_pid(listed=[812])),
    Case("ps_mem --procfs {capture} -p ", []),
]


def filled(case: Case, place: Place) -> str:
    return case.line.format(tree=place.tree, capture=place.capture)


def expected_for(case: Case, shell: str) -> List[str]:
    own = getattr(case, shell)
    return sorted(own if own is not None else case.expected)


# ----------------------------------------------------------------------------
# A shell on a pseudo-terminal
# ----------------------------------------------------------------------------


# The prompt every shell's rc sets (PROMPT_RC): keys are typed only once
# it shows, since a shell may drop what was typed while it started.
PROMPT = "ps_mem-test> "
PROMPT_RC = "PS1='%s'\n" % PROMPT


class Terminal:
    """An interactive shell on a pseudo-terminal, typed into as a person
    types, once it shows its prompt (its rc must end with PROMPT_RC).  What
    it prints is read and kept, so that it never blocks."""

    def __init__(self, argv: Sequence[str], env: Dict[str, str], cwd: Path) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: the shell
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], list(argv), env)
            finally:
                os._exit(127)
        self.output = b""
        self._prompted = False

    def type(self, keys: str) -> None:
        if not self._prompted:
            self.wait_for_output(PROMPT.encode())
            self._prompted = True
        os.write(self.fd, keys.encode())

    def wait_for(self, path: Path) -> None:
        """Read the terminal until `path` exists."""
        self._read_until(path.exists)

    def wait_for_output(self, *texts: bytes) -> None:
        """Read the terminal until it has shown each of TEXTS."""
        self._read_until(lambda: all(text in self.output for text in texts))

    def _read_until(self, done) -> None:
        deadline = time.monotonic() + SHELL_TIMEOUT
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError("the shell did not answer; it printed:\n%r"
                                     % self.output[-2000:])
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536)
                except OSError:  # the shell is gone
                    raise AssertionError("the shell exited; it printed:\n%r"
                                         % self.output[-2000:]) from None

    def close(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def read_words(path: Path) -> List[str]:
    """NUL-terminated words, as the recorders write them."""
    data = path.read_bytes().decode("utf-8", "surrogateescape")
    return data.split("\0")[:-1]


# ----------------------------------------------------------------------------
# bash
# ----------------------------------------------------------------------------

# The script as the user's shell loads it, then its `complete` line again
# with a recorder in place of the function, so that what the function left
# in COMPREPLY is saved for each TAB.
BASH_RC = r"""
source {script}
_ps_mem_recorded() {{
    _ps_mem "$@"
    {{ ((${{#COMPREPLY[@]}})) && printf '%s\0' "${{COMPREPLY[@]}}"; }} > {out}.part
    mv {out}.part {out}
}}
spec=$(complete -p ps_mem)
eval "${{spec/-F _ps_mem /-F _ps_mem_recorded }}"
""" + PROMPT_RC

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def bash_complete(line: str, place: Place, tmp_path: Path) -> List[str]:
    out = tmp_path / "compreply"
    rc = tmp_path / "bashrc"
    rc.write_text(BASH_RC.format(script=BASH_SCRIPT, out=out))
    terminal = Terminal(["bash", "--noprofile", "--rcfile", str(rc), "-i"],
                        shell_env(place), place.files)
    try:
        terminal.type(line + "\t")
        terminal.wait_for(out)
    finally:
        terminal.close()
    return sorted(read_words(out))


@needs_bash
@pytest.mark.parametrize("case", CASES, ids=[case.line for case in CASES])
def test_bash(case, place, tmp_path):
    assert bash_complete(filled(case, place), place, tmp_path) == expected_for(case, "bash")


@needs_bash
def test_bash_registers_both_names():
    done = subprocess.run(["bash", "--norc", "-c", "source %s; complete -p" % BASH_SCRIPT],
                          capture_output=True, text=True)
    assert sorted(done.stdout.splitlines()) == ["complete -F _ps_mem ps_mem",
                                                "complete -F _ps_mem ps_mem.py"]


# ----------------------------------------------------------------------------
# zsh
# ----------------------------------------------------------------------------

# compinit finds _ps_mem on fpath, as it finds an installed one; the first
# shell of the module writes the dump (DUMP: the #compdef lines compinit
# found), which every later one loads instead of reading each function on
# fpath again, as a user's shell does.  compadd,
# through which every match goes, is wrapped: a call that adds matches is
# first made with -A, which stores the matches (as the line would show
# them) instead of adding them, and each is recorded after the part of the
# word that completion set aside (IPREFIX: "--sort=", "812,") and the
# prefixes compadd was given (a directory's path).  Calls that
# only ask what would match (-O, -A, -D) are passed on untouched.
ZSH_RC = r"""
bindkey -e
fpath=({functions} $fpath)
autoload -Uz compinit && compinit -u -d {dump}
compadd() {{
    if (( ${{@[(I)-[OAD]]}} )); then
        builtin compadd "$@"
        return
    fi
    local -a __matched
    local __word __prefix=$IPREFIX
    # -P and -p: what goes on the line before each match (a directory).
    (( ${{@[(I)-P]}} )) && __prefix+=${{@[${{@[(i)-P]}}+1]}}
    (( ${{@[(I)-p]}} )) && __prefix+=${{@[${{@[(i)-p]}}+1]}}
    builtin compadd -A __matched "$@"
    for __word in $__matched; do
        print -rn -- "$__prefix$__word"$'\0' >> {out}
    done
    builtin compadd "$@"
}}
_ps_mem_test_done() {{ print -n >> {out}; print -n > {out}.done }}
_ps_mem_test_complete() {{
    comppostfuncs=(_ps_mem_test_done)
    zle complete-word
}}
zle -N ps-mem-test-complete _ps_mem_test_complete
bindkey '^I' ps-mem-test-complete
"""

needs_zsh = pytest.mark.skipif(shutil.which("zsh") is None,
                               reason="zsh is not installed (apt-get install zsh)")


def zsh_complete(line: str, place: Place, tmp_path: Path, functions: Path = ZSH_DIR,
                 listing: Sequence[bytes] = ()) -> Tuple[List[str], bytes]:
    """zsh's candidates for LINE; with LISTING, once the terminal shows
    each of those texts."""
    out = tmp_path / "matches"
    zdotdir = tmp_path / "zdotdir"
    zdotdir.mkdir(exist_ok=True)
    # One dump for each directory of functions, beside the module's files.
    dump = place.home / ("zcompdump" + str(functions).replace("/", "-"))
    (zdotdir / ".zshrc").write_text(ZSH_RC.format(functions=functions, out=out, dump=dump)
                                    + PROMPT_RC)
    terminal = Terminal(["zsh", "-i"], shell_env(place, ZDOTDIR=str(zdotdir)), place.files)
    try:
        terminal.type(line + "\t")
        terminal.wait_for(Path(str(out) + ".done"))
        if listing:
            terminal.wait_for_output(*listing)
    finally:
        terminal.close()
    return sorted(read_words(out)), terminal.output


@needs_zsh
@pytest.mark.parametrize("case", CASES, ids=[case.line for case in CASES])
def test_zsh(case, place, tmp_path):
    assert zsh_complete(filled(case, place), place, tmp_path)[0] == expected_for(case, "zsh")


@needs_zsh
def test_zsh_lists_pids_by_name_without_control_characters(place, tmp_path):
    listed = [b"-- ?[31mred?"] + [b"-- " + name.encode() for name in OFFERED.values()]
    _, shown = zsh_complete("ps_mem --procfs %s -p " % place.tree, place, tmp_path,
                            listing=listed)
    for name in OFFERED.values():
        assert b"-- " + name.encode() in shown
    assert HOSTILE_NAME[:4] not in shown
    assert b"\x9b" not in shown and "\u202e".encode() not in shown


# ----------------------------------------------------------------------------
# fish
# ----------------------------------------------------------------------------

needs_fish = pytest.mark.skipif(shutil.which("fish") is None,
                                reason="fish is not installed (apt-get install fish)")


def fish_complete(line: str, place: Place, directory: Path = FISH_DIR, quiet: bool = True,
                  **env: str) -> List[str]:
    """fish's candidates for LINE, each "word" or "word<TAB>description".
    quiet: fish said nothing on stderr."""
    command = "set -p fish_complete_path %s; complete -C %s" % (fish_quote(str(directory)),
                                                                fish_quote(line))
    # Decoded leniently: a byte that is not UTF-8 must fail the test that
    # looks for it, not every other test of the live /proc.
    done = subprocess.run(["fish", "-c", command], capture_output=True, text=True,
                          errors="surrogateescape", env=shell_env(place, **env),
                          cwd=place.files, timeout=SHELL_TIMEOUT)
    assert done.returncode == 0
    if quiet:
        assert done.stderr == ""
    return done.stdout.splitlines()


def fish_quote(text: str) -> str:
    """TEXT as one fish word: single-quoted, with \\ and ' escaped."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


@needs_fish
@pytest.mark.parametrize("case", CASES, ids=[case.line for case in CASES])
def test_fish(case, place):
    words = [candidate.split("\t")[0] for candidate in fish_complete(filled(case, place), place)]
    assert sorted(words) == expected_for(case, "fish")


@needs_fish
def test_fish_describes_pids_by_name_without_control_characters(place):
    candidates = fish_complete("ps_mem --procfs %s -p " % place.tree, place)
    assert sorted(candidates) == sorted("%d\t%s" % item for item in OFFERED.items())


@needs_fish
def test_fish_describes_values(place):
    assert fish_complete("ps_mem --units ", place) == [
        "B\tBytes", "GiB\tGibibytes", "KiB\tKibibytes", "MiB\tMebibytes"]


# ----------------------------------------------------------------------------
# The live /proc, and the scripts where `pip install .` puts them
# ----------------------------------------------------------------------------


@pytest.fixture
def sleeper():
    process = subprocess.Popen(["sleep", "600"])
    yield process.pid
    process.kill()
    process.wait()


def kernel_threads() -> Set[str]:
    """Live kernel threads: kthreadd (2) and its children, which never have
    a command line (unlike a zombie, which other tests' processes may
    briefly be)."""
    threads = set()
    for entry in os.listdir("/proc"):
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry == "2" or stat.rsplit(")", 1)[1].split()[1] == "2":
            threads.add(entry)
    return threads


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"),
                                reason="needs a Linux /proc")


def check_live(candidates: List[str], pid: int, threads: Set[str]) -> None:
    assert str(pid) in candidates
    assert all(candidate.isdigit() for candidate in candidates)
    # Those that were kernel threads before and after the completion.
    threads &= kernel_threads()
    if not threads:  # a pid namespace (a container) shows none
        pytest.skip("no kernel thread is visible here to be left out")
    assert not threads & set(candidates)


@needs_proc
@needs_bash
def test_bash_live_pids(sleeper, place, tmp_path):
    threads = kernel_threads()
    check_live(bash_complete("ps_mem -p ", place, tmp_path), sleeper, threads)


@needs_proc
@needs_zsh
def test_zsh_live_pids(sleeper, place, tmp_path):
    threads = kernel_threads()
    check_live(zsh_complete("ps_mem -p ", place, tmp_path)[0], sleeper, threads)


@needs_proc
@needs_fish
def test_fish_live_pids(sleeper, place):
    threads = kernel_threads()
    # Not quiet: fish warns of a file it could not open whatever 2> says,
    # and a process of another test may exit while it is read.
    candidates = fish_complete("ps_mem -p ", place, quiet=False)
    check_live([line.split("\t")[0] for line in candidates], sleeper, threads)


def test_pip_install_puts_each_script_where_its_shell_looks(installed_root):
    installed = installed_root / "usr" / "local"
    share = sorted(str(path.relative_to(installed)) for path in (installed / "share").rglob("*")
                   if path.is_file())
    assert share == ["share/bash-completion/completions/ps_mem",
                     "share/fish/vendor_completions.d/ps_mem.fish",
                     "share/man/man1/ps_mem.1",
                     "share/zsh/site-functions/_ps_mem"]
    assert (installed / "share/bash-completion/completions/ps_mem").read_bytes() == \
        BASH_SCRIPT.read_bytes()


# The line as TAB left it becomes the arguments of printf, which saves them:
# Ctrl-A goes to the start of the line, and the command is typed before it.
# printf writes a file beside OUT, which mv then puts in place (Ctrl-E: the
# end of the line): the redirection makes OUT before printf has written it,
# and a test that read it then read nothing.
SAVE_LINE = "\x01printf '%%s\\0' >%(out)s.part \x05 && mv %(out)s.part %(out)s\r"


def line_after_tab(argv: Sequence[str], env: Dict[str, str], place: Place, typed: str,
                   tmp_path: Path) -> List[str]:
    out = tmp_path / "line"
    terminal = Terminal(argv, env, place.files)
    try:
        terminal.type(typed + "\t" + SAVE_LINE % {"out": out})
        terminal.wait_for(out)
    finally:
        terminal.close()
    return read_words(out)


BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


@needs_bash
@pytest.mark.skipif(not BASH_COMPLETION.exists(),
                    reason="bash-completion is not installed (apt-get install bash-completion)")
def test_bash_completion_loads_the_installed_script(installed_root, place, tmp_path):
    installed = installed_root / "usr" / "local"
    rc = tmp_path / "bashrc"
    rc.write_text("source %s\n" % BASH_COMPLETION + PROMPT_RC)
    env = shell_env(place, XDG_DATA_DIRS=str(installed / "share"))
    words = line_after_tab(["bash", "--noprofile", "--rcfile", str(rc), "-i"], env, place,
                           "ps_mem --gr", tmp_path)
    assert words == ["ps_mem", "--group-by"]


@needs_zsh
def test_zsh_loads_the_installed_script(installed_root, place, tmp_path):
    installed = installed_root / "usr" / "local"
    zdotdir = tmp_path / "zdotdir"
    zdotdir.mkdir()
    (zdotdir / ".zshrc").write_text(
        "bindkey -e\nfpath=(%s $fpath)\nautoload -Uz compinit && compinit -u -D\n"
        % (installed / "share" / "zsh" / "site-functions") + PROMPT_RC)
    env = shell_env(place, ZDOTDIR=str(zdotdir))
    words = line_after_tab(["zsh", "-i"], env, place, "ps_mem --units=G", tmp_path)
    assert words == ["ps_mem", "--units=GiB"]


@needs_fish
def test_fish_loads_the_installed_script(installed_root, place):
    installed = installed_root / "usr" / "local"
    # fish looks in DIR/fish/vendor_completions.d for each DIR of
    # XDG_DATA_DIRS; the installed console script is the command completed.
    env = shell_env(place, XDG_DATA_DIRS=str(installed / "share"),
                    PATH="%s:%s" % (installed / "bin", os.environ["PATH"]))
    done = subprocess.run(["fish", "-c", "complete -C 'ps_mem --gr'"], capture_output=True,
                          text=True, env=env, timeout=SHELL_TIMEOUT)
    assert (done.stdout, done.stderr) == ("--group-by\tWhat a row is\n", "")
