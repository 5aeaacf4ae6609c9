"""contrib/systemd/: the textfile service and its timer, checked by
systemd's own tools (systemd need not be running): `systemd-analyze
verify` loads them as systemd would, in a root where `pip install .` put
ps_mem and its man page, and `systemd-analyze security` rates the
sandbox.  What the sandbox allows ps_mem to read is told in the service's
comments (tested by hand as root: see the README's Prometheus section)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import REPO

UNITS = REPO / "contrib" / "systemd"
NAMES = ("ps_mem-textfile.service", "ps_mem-textfile.timer")
SYSTEM_UNITS = Path("/lib/systemd/system")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not (SYSTEM_UNITS / "sysinit.target").exists(),
    reason="needs systemd-analyze and systemd's own units (apt-get install systemd)")


@pytest.fixture(scope="module")
def root(installed_root):
    """The installed root, with the units in /etc/systemd/system and the
    units they depend on (sysinit.target, timers.target ...) from this
    machine's systemd."""
    unit_dir = installed_root / "etc" / "systemd" / "system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        shutil.copy(UNITS / name, unit_dir / name)
    shutil.copytree(SYSTEM_UNITS, installed_root / "lib" / "systemd" / "system", symlinks=True,
                    dirs_exist_ok=True)
    return installed_root


def analyze(root, *args):
    # man(1) looks for Documentation=man:ps_mem(1) among the installed pages.
    env = dict(os.environ, MANPATH=str(root / "usr" / "local" / "share" / "man"),
               SYSTEMD_COLORS="0", SYSTEMD_PAGER="")
    return subprocess.run(["systemd-analyze", "--root", str(root), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_units_load_without_a_warning(root):
    # verify exits 0 on an unknown key, with a warning: stderr must be empty.
    done = analyze(root, "verify", *("/etc/systemd/system/" + name for name in NAMES))
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


def test_verify_finds_a_missing_command(root, tmp_path):
    """The check above can fail: without ps_mem at ExecStart's path it does."""
    missing = tmp_path / "root"
    (missing / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(root / "etc" / "systemd" / "system" / NAMES[0],
                missing / "etc" / "systemd" / "system" / NAMES[0])
    shutil.copytree(root / "lib", missing / "lib", symlinks=True)
    done = analyze(missing, "--man=no", "verify", "/etc/systemd/system/" + NAMES[0])
    assert "Command /usr/local/bin/ps_mem is not executable" in done.stderr


def test_service_sandbox_is_rated_ok(root):
    # --threshold is the exposure times ten: at most 2.0 of systemd's 10.
    done = analyze(root, "security", "--offline=yes", "--threshold=20",
                   "/etc/systemd/system/" + NAMES[0])
    assert done.returncode == 0, done.stdout
    assert "CapabilityBoundingSet=~CAP_SYS_ADMIN" in done.stdout
