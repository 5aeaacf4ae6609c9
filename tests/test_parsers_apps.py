"""The parsers of --group-by app: which executables are interpreters, what
each one's command line says it runs (app_name()), and which workers go
with their parent (joins_parent()); then cgroup_hierarchy() and
parse_cgroup() for --group-by cgroup.

Command lines are as real programs have them (the fixtures of
tests/data/apps/ were recorded from real ones; see tests/app_fixtures.py),
and as their documentation says each interpreter reads its options.
Every expected name is written by hand.
"""

from typing import List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.harness import ps_mem

_MAX_ARGS, _MAX_NAME = ps_mem._MAX_ARGS, ps_mem._MAX_NAME
app_name, interpreter, joins_parent = ps_mem.app_name, ps_mem.interpreter, ps_mem.joins_parent
runs_scripts, parse_cmdline = ps_mem.runs_scripts, ps_mem.parse_cmdline


# ----------------------------------------------------------------------------
# Which executables are interpreters
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("basename, family", [
    ("python", "python"), ("python3", "python"), ("python3.11", "python"),
    ("python3.11d", "python"), ("python3.13t", "python"), ("python3.6m", "python"),
    ("python2.7", "python"), ("pypy3", "python"), ("pypy3.10", "python"),
    ("perl", "perl"), ("perl5.36.0", "perl"), ("ruby", "ruby"), ("ruby3.1", "ruby"),
    ("php", "php"), ("php8.2", "php"), ("node", "node"), ("nodejs", "node"),
    ("java", "java"), ("bash", "shell"), ("sh", "shell"), ("dash", "shell"), ("zsh", "shell"),
    ("ksh93", "shell"), ("mksh", "shell"),
    # Not interpreters of a script named on their command line.
    ("php-fpm8.2", None), ("php-cgi8.2", None), ("phpdbg8.2", None),
    ("perl5.36-x86_64-linux-gnu", None), ("python3-config", None), ("python3.11-config", None),
    ("pythonm", None), ("python3.", None), ("python3..11", None), ("javac", None),
    ("jshell", None), ("busybox", None), ("uwsgi-core", None), ("gunicorn", None),
    ("python\u00b3", None), ("", None),
])
def test_interpreter(basename: str, family: Optional[str]) -> None:
    assert interpreter(basename) == family


# ----------------------------------------------------------------------------
# What an interpreter runs, by its options
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("argv, expected", [
    (["python3", "app.py"], "app.py"),
    (["/usr/bin/python3", "/srv/a/app.py", "--port", "8"], "app.py"),
    (["python3", "./job.py"], "job.py"),
    (["python3", "-u", "-B", "-W", "ignore", "-X", "dev", "job.py"], "job.py"),
    (["python3", "-Wignore", "-Xdev", "-OO", "job.py"], "job.py"),
    (["python3", "-m", "http.server", "8000"], "http.server"),
    (["python3", "-mhttp.server"], "http.server"),
    (["python3", "-um", "pip", "install", "x"], "pip"),
    (["python3", "-I", "-m", "venv", "x"], "venv"),
    (["python3", "-c", "import x", "arg.py"], None),
    (["python3", "-uBc", "code"], None),
    (["python3", "-ccode", "arg.py"], None),
    (["python3", "-"], None),
    (["python3", "-i"], None),
    (["python3"], None),
    (["python3", "-m"], None),
    (["python3", "-W"], None),
    (["python3", "--", "-weird.py"], "-weird.py"),
    (["python3", "--check-hash-based-pycs", "always", "job.py"], "job.py"),
    (["python3", "--version"], None),
    (["python3", "/dev/fd/3"], None),
    (["python3", "/proc/self/fd/3"], None),
    (["python3", "/dev/stdin"], None),
    (["python3", "pkg/"], "pkg"),
    (["python3", "."], None),
    (["python3", "app.zip"], "app.zip"),
    (["python", "app.py"], "app.py"),
])
def test_python(argv: List[str], expected: Optional[str]) -> None:
    assert app_name("python3.11", argv) == (expected and expected + " [python3.11]")


@pytest.mark.parametrize("argv, expected", [
    (["perl", "job.pl"], "job.pl"),
    (["/usr/bin/perl", "-wT", "/usr/sbin/munin-node"], "munin-node"),
    (["perl", "-I", "/opt/lib", "-Mstrict", "job.pl"], "job.pl"),
    (["perl", "-I/opt/lib", "-mData::Dumper", "-w", "job.pl"], "job.pl"),
    (["perl", "-l012", "-w", "job.pl"], "job.pl"),
    (["perl", "-0777", "job.pl"], "job.pl"),
    (["perl", "-CSDA", "job.pl"], "job.pl"),
    (["perl", "-x", "job.pl"], "job.pl"),
    (["perl", "-d:NYTProf", "job.pl"], "job.pl"),
    (["perl", "-e", "print 1", "arg.pl"], None),
    (["perl", "-wle", "print 1"], None),
    (["perl", "-Eprint 1", "arg.pl"], None),
    (["perl", "-pi.bak", "-e", "s/a/b/", "file.txt"], None),
    (["perl", "-ne", "print", "file.txt"], None),
    (["perl", "--", "job.pl"], "job.pl"),
    (["perl", "-"], None),
    (["perl"], None),
])
def test_perl(argv: List[str], expected: Optional[str]) -> None:
    assert app_name("perl", argv) == (expected and expected + " [perl]")


@pytest.mark.parametrize("argv, expected", [
    (["ruby", "job.rb"], "job.rb"),
    (["ruby", "-I", "lib", "-r", "set", "bin/rails", "server"], "rails"),
    (["ruby", "-Ilib", "-rset", "-w", "job.rb"], "job.rb"),
    (["ruby", "-C", "/srv", "-E", "UTF-8", "job.rb"], "job.rb"),
    (["ruby", "--enable", "frozen-string-literal", "job.rb"], "job.rb"),
    (["ruby", "--enable=yjit", "--jit", "job.rb"], "job.rb"),
    (["ruby", "-W0", "-Ku", "job.rb"], "job.rb"),
    (["ruby", "-S", "rake", "test"], "rake"),
    (["ruby", "-e", "sleep", "arg.rb"], None),
    (["ruby", "-ne", "print", "file.txt"], None),
    (["ruby", "-"], None),
    (["ruby"], None),
])
def test_ruby(argv: List[str], expected: Optional[str]) -> None:
    assert app_name("ruby3.1", argv) == (expected and expected + " [ruby3.1]")


@pytest.mark.parametrize("argv, expected", [
    (["php", "artisan", "serve"], "artisan"),
    (["php", "-d", "memory_limit=1G", "-c", "/etc/php.ini", "job.php"], "job.php"),
    (["php", "-dmemory_limit=1G", "job.php"], "job.php"),
    (["php", "-f", "/srv/job.php", "--", "x"], "job.php"),
    (["php", "--file", "job.php"], "job.php"),
    (["php", "-B", "$n=0;", "-F", "count.php"], "count.php"),
    (["php", "-S", "127.0.0.1:8000", "-t", "public", "router.php"], "router.php"),
    (["php", "-S", "127.0.0.1:8000", "-t", "public"], None),
    (["php", "-r", "sleep(9);", "arg.php"], None),
    (["php", "--run", "sleep(9);"], None),
    (["php", "--", "arg"], None),
    (["php", "-a"], None),
    (["php"], None),
])
def test_php(argv: List[str], expected: Optional[str]) -> None:
    assert app_name("php8.2", argv) == (expected and expected + " [php8.2]")


@pytest.mark.parametrize("argv, expected", [
    (["node", "app.js"], "app.js"),
    (["node", "--require", "x.js", "--inspect", "app.js"], "app.js"),
    (["node", "-r", "ts-node/register", "src/main.ts"], "main.ts"),
    (["node", "--inspect=0.0.0.0:9229", "--max-old-space-size=4096", "dist/index.js"],
     "index.js"),
    (["node", "--title", "web", "--import", "./hooks.mjs", "server.mjs"], "server.mjs"),
    (["node", "--env-file", ".env", "-C", "dev", "app.js"], "app.js"),
    (["node", "/usr/bin/npm", "start"], "npm"),
    (["node", "/usr/bin/npx", "tsc"], "npx"),
    (["node", "--", "app.js"], "app.js"),
    (["node", "-e", "setInterval(()=>{}, 9)"], None),
    (["node", "-pe", "1"], None),
    (["node", "--print", "1"], None),
    (["node", "-"], None),
    (["node", "."], None),
    (["node"], None),
])
def test_node(argv: List[str], expected: Optional[str]) -> None:
    assert app_name("node", argv) == (expected and expected + " [node]")


@pytest.mark.parametrize("argv, expected", [
    (["java", "-jar", "/opt/holdb/holdb.jar", "--port", "1"], "holdb.jar"),
    (["java", "-Xmx1g", "-XX:+UseG1GC", "-Dx=-jar", "-jar", "app.jar"], "app.jar"),
    (["java", "-cp", "a.jar:b.jar", "com.example.HoldA"], "com.example.HoldA"),
    (["java", "-classpath", "lib/*", "-Dlog=x", "org.apache.catalina.startup.Bootstrap",
      "start"], "org.apache.catalina.startup.Bootstrap"),
    (["java", "--class-path", "x", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
      "--add-exports", "a/b=c", "-javaagent:/opt/agent.jar", "-ea", "Main"], "Main"),
    (["java", "--class-path=x", "--add-opens=java.base/java.lang=ALL-UNNAMED", "Main"], "Main"),
    (["java", "-p", "mods", "-m", "com.greet/com.greet.Main"], "com.greet"),
    (["java", "--module-path", "mods", "--module=com.greet"], "com.greet"),
    (["java", "--source", "21", "/tmp/Hello.java"], "Hello.java"),
    (["java", "@/tmp/args", "Main"], "Main"),
    (["java", "com/example/Main"], "com.example.Main"),
    (["java", "@/tmp/args"], None),
    (["java", "-version"], None),
    (["java", "-jar"], None),
    (["java"], None),
])
def test_java(argv: List[str], expected: Optional[str]) -> None:
    assert app_name("java", argv) == (expected and expected + " [java]")


@pytest.mark.parametrize("exe, argv, expected", [
    ("bash", ["bash", "job.sh"], "job.sh [bash]"),
    ("bash", ["/bin/bash", "-e", "/srv/run.sh", "x"], "run.sh [bash]"),
    ("bash", ["bash", "-x", "-o", "pipefail", "-O", "extglob", "job.sh"], "job.sh [bash]"),
    ("bash", ["bash", "-eo", "pipefail", "job.sh"], "job.sh [bash]"),
    ("bash", ["bash", "--norc", "--rcfile", "rc", "job.sh"], "job.sh [bash]"),
    ("bash", ["bash", "+x", "job.sh"], "job.sh [bash]"),
    ("bash", ["bash", "--", "job.sh"], "job.sh [bash]"),
    ("bash", ["bash", "-c", "sleep 9", "name"], None),
    ("bash", ["bash", "-lc", "sleep 9"], None),
    ("bash", ["bash", "-s", "arg"], None),
    ("bash", ["-bash"], None),
    ("bash", ["bash", "-i"], None),
    ("bash", ["bash", "/dev/fd/3"], None),
    ("dash", ["/bin/sh", "job.sh"], "job.sh [dash]"),
    ("dash", ["sh", "-c", "x"], None),
    ("zsh", ["zsh", "-f", "--emulate", "sh", "job.zsh"], "job.zsh [zsh]"),
    ("ksh93", ["ksh", "job.ksh"], "job.ksh [ksh93]"),
])
def test_shells(exe: str, argv: List[str], expected: Optional[str]) -> None:
    assert app_name(exe, argv) == expected


# ----------------------------------------------------------------------------
# Command lines the process rewrote
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("exe, argv, expected", [
    ("python3.11", ["gunicorn: worker [app:app]"], "gunicorn [python3.11]"),
    ("python3.11", ["[celeryd: celery@host:ForkPoolWorker-1]"], "celeryd [python3.11]"),
    ("ruby3.1", ["puma 6.4.0 (tcp://0.0.0.0:3000) [app]"], "puma [ruby3.1]"),
    ("ruby3.1", ["puma: cluster worker 0: 1234 [app]"], "puma [ruby3.1]"),
    ("perl", ["/usr/sbin/spamd -d --pidfile=/run/spamd.pid"], "spamd [perl]"),
    ("perl", ["spamd child"], "spamd [perl]"),
    ("node", ["mynode: m"], "mynode [node]"),  # cut to the length of the argv it replaced
    ("node", ["PM2 v5.3.0: God Daemon (/root/.pm2)"], "PM2 [node]"),
    # exec -a: argv[0] chosen by whoever started it.
    ("python3.11", ["myname", "job.py"], "myname [python3.11]"),
    # A title that is a command line is read as one.
    ("python3.11", ["python3 worker.py --id 3"], "worker.py [python3.11]"),
    ("python3.11", ["/usr/bin/python3 -m celery worker"], "celery [python3.11]"),
    ("python3.11", ["python3 -c x"], None),
    # Titles that name nothing.
    ("python3.11", ["python3.11: idle"], None),
    ("python3.11", ["   "], None),
    ("python3.11", [""], None),
    ("python3.11", ["-x worker"], None),
    ("python3.11", ["::: ---"], None),
    ("python3.11", ["[]"], None),
])
def test_titles(exe: str, argv: List[str], expected: Optional[str]) -> None:
    assert app_name(exe, argv) == expected


def test_not_interpreters() -> None:
    assert app_name("postgres", ["postgres: checkpointer"]) is None
    assert app_name("php-fpm8.2", ["php-fpm: pool www"]) is None
    assert app_name("redis-check-rdb", ["redis-rdb-bgsave 127.0.0.1:6379"]) is None
    assert app_name("uwsgi-core", ["uwsgi", "--ini", "app.ini"]) is None


def test_marks_follow_the_brackets() -> None:
    assert app_name("python3.11 [updated]", ["python3", "app.py"]) == \
        "app.py [python3.11] [updated]"
    assert app_name("node [deleted]", ["node", "app.js"]) == "app.js [node] [deleted]"
    assert app_name("node [deleted]", ["node"]) is None


# ----------------------------------------------------------------------------
# Workers and their parents
# ----------------------------------------------------------------------------

PY = "/usr/bin/python3.11"



@pytest.mark.parametrize("exe, comm, parent_exe, parent_comm, joins", [
    (PY, "python3", PY, "pool.py", True),  # an interpreter: comm does not matter
    (PY, "python3", "/root/.pyenv/versions/3.11.7/bin/python3.11", "python3", False),
    (PY, "python3", None, None, False),
    (PY + " (deleted)", "x", PY + " (deleted)", "y", True),
    ("/usr/bin/redis-check-rdb", "redis-server", "/usr/bin/redis-check-rdb", "redis-server",
     True),
    # A renamed child keeps 3.14's name, which is already its parent's.
    ("/usr/lib/firefox-esr/firefox-esr", "Web Content", "/usr/lib/firefox-esr/firefox-esr",
     "firefox-esr", False),
    # An applet exec'd by the same multi-call binary is its own program.
    ("/bin/busybox", "httpd", "/bin/busybox", "sh", False),
    ("/usr/bin/redis-check-rdb", "redis-server", "/usr/bin/bash", "bash", False),
])
def test_joins_parent(exe: str, comm: str, parent_exe: Optional[str],
                      parent_comm: Optional[str], joins: bool) -> None:
    assert joins_parent(exe, comm, parent_exe, parent_comm) is joins



def test_runs_scripts() -> None:
    assert runs_scripts("python3.11") and runs_scripts("node [deleted]")
    assert not runs_scripts("nginx") and not runs_scripts("php-fpm8.2 [updated]")




# ----------------------------------------------------------------------------
# Hostile command lines
# ----------------------------------------------------------------------------

def test_options_past_the_bound_name_nothing() -> None:
    """At most _MAX_ARGS arguments are looked at."""
    options = ["-Dkey=value"] * (_MAX_ARGS - 1)
    assert app_name("java", ["java", *options, "Main"]) == "Main [java]"
    assert app_name("java", ["java", *options, "-Dx", "Main"]) is None
    assert app_name("python3.11", ["python3"] + ["-u"] * 10 ** 6 + ["job.py"]) is None


def test_long_names_are_cut() -> None:
    script = "a" * (200 * 1024) + ".py"
    assert app_name("python3.11", ["python3", script]) == "a" * _MAX_NAME + " [python3.11]"
    title = "x" * (10 * 1024 * 1024)  # one word, 10 MiB: only its head is read
    assert app_name("perl", [title]) == "x" * _MAX_NAME + " [perl]"


@pytest.mark.parametrize("argv", [
    [], [""], ["", ""], ["\0"], ["python3", "\0"], ["python3", "-m", "\0"], ["\udcff\udcfe"],
    ["python3", "\udcffjob.py"], ["\n\t\r"], ["python3", "-" * 5000], ["python3", "--"],
    ["/"], ["python3", "/"], ["python3", "-m", ""], ["python3", ""],
])
def test_odd_command_lines(argv: List[str]) -> None:
    name = app_name("python3.11", argv)
    assert name is None or name.endswith(" [python3.11]")


def test_cmdline_bytes_that_are_not_utf8() -> None:
    argv = parse_cmdline(b"/usr/bin/python3\0/srv/\xff\xfejob\xc3.py\0\0\0")
    assert app_name("python3.11", argv) == "job.py [python3.11]"


@settings(max_examples=400, deadline=None)
@given(exe=st.sampled_from(["python3.11", "perl", "ruby3.1", "php8.2", "node", "java", "bash",
                            "dash", "sleep", "python3.11 [deleted]"]),
       argv=st.lists(st.one_of(st.text(max_size=40),
                               st.sampled_from(["-c", "-m", "-e", "-jar", "-cp", "--", "-",
                                                "-o", "-r", "-I", "-f", "-S", "-W", "-X"])),
                     max_size=12))
def test_any_command_line(exe: str, argv: List[str]) -> None:
    name = app_name(exe, argv)
    if name is not None:
        target, _, rest = name.partition(" [")
        assert 0 < len(target) <= _MAX_NAME
        assert "[" + rest in ("[%s]" % exe, "[python3.11] [deleted]")
    # Different comms: only an interpreter joins its parent.
    link = "/x/" + exe.replace(" [deleted]", " (deleted)")
    assert joins_parent(link, "c", link, "d") is (exe != "sleep")


def test_an_unreadable_link_joins_nothing() -> None:
    assert not joins_parent(None, "python3", None, "python3")
    assert not joins_parent(None, "python3", PY, "python3")


# ----------------------------------------------------------------------------
# cgroup: which hierarchy accounts memory, and a process's path in it
# ----------------------------------------------------------------------------

# /proc/self/cgroup as each kind of machine writes it.
V2 = b"0::/system.slice/nginx.service\n"
# systemd's hybrid layout, this machine's (Linux 6.18, v1 controllers and
# the unified hierarchy mounted at /sys/fs/cgroup/unified, with no
# controllers of its own).
HYBRID = (b"9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
          b"4:memory:/process_api/5e93677b76f92891ac367aaef000b510\n3:cpuset:/\n2:cpuacct:/\n"
          b"1:cpu:/\n0::/\n")
# A hybrid machine whose unified hierarchy tracks systemd's units.
HYBRID_UNITS = (b"12:memory:/system.slice/docker-4f1e.scope\n11:cpu,cpuacct:/system.slice\n"
                b"1:name=systemd:/system.slice/docker-4f1e.scope\n"
                b"0::/system.slice/docker-4f1e.scope\n")
# cgroup v1 only (the unified hierarchy never mounted: no 0:: line), the
# memory controller mounted with others.
V1 = b"11:pids:/docker/abc\n4:cpu,memory,blkio:/docker/abc\n1:name=systemd:/docker/abc\n"
# v1 without the memory controller mounted.
V1_NO_MEMORY = b"2:cpu:/cpu-only\n1:name=systemd:/x\n"


@pytest.mark.parametrize("text, hierarchy", [
    (V2, "v2"), (HYBRID, "v1"), (HYBRID_UNITS, "v1"), (V1, "v1"), (V1_NO_MEMORY, None),
    (b"", None), (b"0::/\n", "v2"), (b"garbage\n", None),
    # The memory controller bound to the unified hierarchy of a hybrid
    # machine: v1 lines without memory, and 0::.
    (b"3:cpu:/x\n0::/system.slice/a.service\n", "v2"),
])
def test_cgroup_hierarchy(text: bytes, hierarchy: Optional[str]) -> None:
    assert ps_mem.cgroup_hierarchy(text) == hierarchy


@pytest.mark.parametrize("text, hierarchy, path", [
    (V2, "v2", "/system.slice/nginx.service"),
    (V2, "v1", "-"),  # a v2 file on a machine decided v1: no memory line
    (HYBRID, "v1", "memory:/process_api/5e93677b76f92891ac367aaef000b510"),
    (HYBRID, "v2", "/"),
    (HYBRID_UNITS, "v1", "memory:/system.slice/docker-4f1e.scope"),
    (V1, "v1", "memory:/docker/abc"),
    (V1, "v2", "-"),
    (V1_NO_MEMORY, "v1", "-"),
    (b"0::/odd: path with colons:and spaces\n", "v2", "/odd: path with colons:and spaces"),
    (b"4:memory:/a\r5:memory:/b\n", "v1", "memory:/a\r5:memory:/b"),  # lines end at \n only
    # Undecided: the file decides for itself.
    (V2, None, "/system.slice/nginx.service"),
    (HYBRID, None, "memory:/process_api/5e93677b76f92891ac367aaef000b510"),
    (V1_NO_MEMORY, None, "-"),
    (b"", None, "-"),
])
def test_parse_cgroup(text: bytes, hierarchy: Optional[str], path: str) -> None:
    assert ps_mem.parse_cgroup(text, hierarchy) == path


# ----------------------------------------------------------------------------
# --units
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("kib, unit, text", [
    (0, "B", "0 B"), (1, "B", "1024 B"), (0.5, "B", "512 B"), (1.5, "KiB", "1.5 KiB"),
    (1000, "KiB", "1000.0 KiB"), (1000, "MiB", "1.0 MiB"), (1024, "MiB", "1.0 MiB"),
    (10 * 1024 * 1024, "MiB", "10240.0 MiB"), (1536 * 1024, "GiB", "1.5 GiB"),
    (0.04, "GiB", "0.0 GiB"), (123456789, "B", "126419751936 B"),
    (7.25, "KiB", "7.2 KiB"),  # %.1f rounds half to even, as 3.14's sizes do
])
def test_in_units(kib: float, unit: str, text: str) -> None:
    assert ps_mem.in_units(kib, unit) == text
