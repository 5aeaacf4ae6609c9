"""The man page and README stay true to the command line."""

import os
import shutil
import subprocess

import pytest

from tests.harness import REPO, ps_mem

MAN_PAGE = REPO / "ps_mem.1"


def every_option():
    return [option for action in ps_mem.build_parser()._actions
            for option in action.option_strings]


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_page_renders_without_warnings():
    done = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", str(MAN_PAGE)],
                          capture_output=True)
    assert (done.returncode, done.stderr) == (0, b"")


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_renders_the_file():
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    done = subprocess.run(["man", "--warnings", "-l", str(MAN_PAGE)], env=env,
                          capture_output=True)
    assert done.returncode == 0
    assert done.stderr == b""
    assert b"ps_mem - show how much RAM each program uses" in done.stdout


def test_every_option_is_documented():
    man = MAN_PAGE.read_text().replace("\\-", "-")
    readme = (REPO / "README.md").read_text()
    for option in every_option():
        assert option in man, option
        assert option in readme, option
